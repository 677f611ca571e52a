"""POST /webhooks/bigcommerce: constant-time token, validation, publish-then-200."""

from __future__ import annotations

import json
import time
import uuid

import nats
import pytest

from services.catalog_sync import domain
from services.catalog_sync.settings import DEV_WEBHOOK_SECRET_KEY
from services.common.bus import MSG_ID_HEADER, STREAM_WEBHOOKS


def delivery(store_hash: str, scope: str = "store/product/updated", product_id: int = 1) -> dict:
    return {"scope": scope, "store_id": "1001", "data": {"type": "product", "id": product_id},
            "hash": uuid.uuid4().hex + "00000000", "created_at": int(time.time()), "producer": f"stores/{store_hash}"}


def token(store_hash: str) -> dict[str, str]:
    return {domain.HOOK_TOKEN_HEADER: domain.webhook_secret(DEV_WEBHOOK_SECRET_KEY, store_hash)}


async def last_message(platform, subject: str):
    js = platform.stack.runners["catalog_sync"].bus.js
    try:
        return await js.get_last_msg(STREAM_WEBHOOKS, subject)
    except nats.js.errors.NotFoundError:
        return None


async def test_accepted_delivery_is_published_with_its_hash_as_message_id(platform):
    body = delivery(platform.store_hash, product_id=987654)
    response = await platform.http.post("/webhooks/bigcommerce", content=json.dumps(body),
                                        headers=token(platform.store_hash))
    assert response.status_code == 200
    stored = await last_message(platform, domain.webhook_subject(platform.store_hash, body["scope"]))
    assert stored is not None and json.loads(stored.data) == body
    assert stored.headers[MSG_ID_HEADER] == body["hash"]


async def test_duplicate_delivery_is_stored_once(platform):
    body = delivery(platform.store_hash, product_id=987655)
    subject = domain.webhook_subject(platform.store_hash, body["scope"])
    first = await platform.http.post("/webhooks/bigcommerce", json=body, headers=token(platform.store_hash))
    stored = await last_message(platform, subject)
    second = await platform.http.post("/webhooks/bigcommerce", json=body, headers=token(platform.store_hash))
    assert first.status_code == second.status_code == 200
    assert (await last_message(platform, subject)).seq == stored.seq


@pytest.mark.parametrize("headers", [{}, {domain.HOOK_TOKEN_HEADER: "wrong"},
                                     {domain.HOOK_TOKEN_HEADER: domain.webhook_secret("other-key", "x")}])
async def test_bad_token_is_401_and_not_published(platform, headers):
    body = delivery(platform.store_hash, scope="store/order/created")
    response = await platform.http.post("/webhooks/bigcommerce", json=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert await last_message(platform, domain.webhook_subject(platform.store_hash, body["scope"])) is None


@pytest.mark.parametrize("mutate", [
    lambda b: b.pop("hash"),
    lambda b: b.update(scope="store/product/*"),
    lambda b: b.update(producer="nobody"),
    lambda b: b.update(data="x"),
    lambda b: b.update(created_at="yesterday"),
])
async def test_bad_payload_is_400_and_not_published(platform, mutate):
    body = delivery(platform.store_hash, scope="store/product/deleted")
    mutate(body)
    response = await platform.http.post("/webhooks/bigcommerce", json=body, headers=token(platform.store_hash))
    assert response.status_code == 400
    assert await last_message(platform, domain.webhook_subject(platform.store_hash, "store/product/deleted")) is None


async def test_not_json_is_400(platform):
    response = await platform.http.post("/webhooks/bigcommerce", content=b"{nope", headers=token(platform.store_hash))
    assert response.status_code == 400


async def test_unknown_store_is_404_and_not_published(platform):
    store_hash = f"s{uuid.uuid4().hex[:8]}"
    body = delivery(store_hash)
    response = await platform.http.post("/webhooks/bigcommerce", json=body, headers=token(store_hash))
    assert response.status_code == 404
    assert await last_message(platform, domain.webhook_subject(store_hash, body["scope"])) is None
