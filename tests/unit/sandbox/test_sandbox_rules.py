"""Pure pieces of the sandbox: scope matching, webhook hashing, filter translation, settings."""

from __future__ import annotations

import hashlib
import json

import pytest

from sandbox.bigcommerce.config import SandboxConfig
from sandbox.bigcommerce.core import scope_matches, webhook_body
from sandbox.bigcommerce.errors import ApiError
from sandbox.bigcommerce.product_listing import product_filters
from sandbox.bigcommerce.webhooks import RETRY_SCHEDULE_SECONDS


@pytest.mark.parametrize(("hook", "event", "expected"), [
    ("store/order/created", "store/order/created", True),
    ("store/order/*", "store/order/created", True),
    ("store/order/*", "store/order/refund/created", True),
    ("store/order/*", "store/product/updated", False),
    ("store/product/*", "store/product/inventory/order/updated", True),
    ("store/product/updated", "store/product/inventory/updated", False),
    ("store/channel/*/inventory/product/stock_changed", "store/channel/1/inventory/product/stock_changed", True),
    ("store/channel/*/inventory/product/stock_changed", "store/channel/1/inventory/product/settings_changed", False),
])
def test_scope_matching(hook, event, expected):
    assert scope_matches(hook, event) is expected


def test_webhook_hash_is_sha1_of_the_payload_without_it():
    body = json.loads(webhook_body("store/order/created", "1000001", "abc", {"type": "order", "id": 5}, 1700000000))
    unsigned = {k: v for k, v in body.items() if k != "hash"}
    expected = hashlib.sha1(json.dumps(unsigned, separators=(",", ":")).encode()).hexdigest()
    assert body["hash"] == expected
    assert body["producer"] == "stores/abc" and body["store_id"] == "1000001"


def test_same_event_content_gives_the_same_hash():
    first = webhook_body("store/order/created", "1", "abc", {"type": "order", "id": 5}, 1)
    assert first == webhook_body("store/order/created", "1", "abc", {"type": "order", "id": 5}, 1)
    assert first != webhook_body("store/order/created", "1", "abc", {"type": "order", "id": 6}, 1)


def test_retry_schedule_is_bigcommerces_48_hours():
    assert RETRY_SCHEDULE_SECONDS[:3] == (60, 180, 300) and RETRY_SCHEDULE_SECONDS[-1] == 86400
    assert 47 * 3600 < sum(RETRY_SCHEDULE_SECONDS) < 49 * 3600


def test_product_filters_translate_documented_parameters():
    where, args = product_filters({"id:in": "1,2", "inventory_level:min": "3", "is_visible": "true",
                                   "categories:in": "7", "date_modified:min": "2024-01-01T05:00:00-05:00"})
    assert "id IN (?,?)" in where and "json_each(doc, '$.categories')" in where
    assert args == [1, 2, 3, 1, 7, "2024-01-01T10:00:00+00:00"]


def test_product_filters_reject_non_numeric_ids():
    with pytest.raises(ApiError) as raised:
        product_filters({"id:in": "1,x"})
    assert raised.value.status == 422


def test_config_reads_environment_and_hides_the_secret():
    config = SandboxConfig.from_env({"BACKORDER_SANDBOX_PORT": "8111", "BACKORDER_APP_URL": "http://app:9/",
                                     "BACKORDER_BC_CLIENT_SECRET": "shh", "BACKORDER_SANDBOX_WEBHOOK_TIME_SCALE": "0.5"})
    assert config.port == 8111 and config.app_url == "http://app:9" and config.webhook_time_scale == 0.5
    assert config.db_path == ".backorder/sandbox.db" and config.client_id == "dev-client"
    assert "shh" not in repr(config)
    with pytest.raises(SystemExit):
        SandboxConfig.from_env({"BACKORDER_SANDBOX_PORT": "eighty"})


def test_standard_webhook_signature_verifies_with_the_client_secret():
    import base64
    import hmac

    from sandbox.bigcommerce.webhooks import standard_webhook_headers

    row = {"id": 12, "replay_of": None, "body": '{"scope":"store/order/created"}'}
    headers = standard_webhook_headers("dev-secret", row, 1700000000)
    assert headers["webhook-id"] == "msg_12" and headers["webhook-timestamp"] == "1700000000"
    expected = hmac.new(b"dev-secret", b'msg_12.1700000000.{"scope":"store/order/created"}', hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    replay = standard_webhook_headers("dev-secret", {**row, "id": 40, "replay_of": 12}, 1700000000)
    assert replay == headers
