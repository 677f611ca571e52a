"""Webhook deliveries: documented payloads, custom headers, retry schedule, deactivation, replay."""

from __future__ import annotations

import json
import re
import secrets

from sandbox.bigcommerce.webhooks import RETRY_SCHEDULE_SECONDS
from tests.plugins.sandbox import wait_until


def hook_into_inbox(store, scope, status=200, statuses=()):
    key = "hooks-" + secrets.token_hex(4)
    store.server.configure_inbox(key, status=status, statuses=statuses)
    response = store.api("POST", "/v3/hooks", json={
        "scope": scope, "destination": store.server.inbox_url(key), "is_active": True,
        "headers": {"X-Backorder-Hook-Token": "per-store-secret"}})
    assert response.status_code == 200, response.text
    return key, response.json()["data"]


def received(store, key, count):
    return wait_until(lambda: (r := store.server.inbox_requests(key)) and len(r) >= count and r)


def test_inventory_update_delivers_documented_payload_with_custom_headers(sandbox):
    key, _ = hook_into_inbox(sandbox, "store/product/inventory/updated")
    product = sandbox.api("GET", "/v3/catalog/products", params={"inventory_tracking": "none"}).json()["data"][0]
    sandbox.set_inventory(product["id"], 77)
    request = received(sandbox, key, 1)[0]
    assert request["headers"]["x-backorder-hook-token"] == "per-store-secret"
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["webhook-signature"].startswith("v1,") and request["headers"]["webhook-id"]
    payload = json.loads(request["body"])
    assert list(payload) == ["scope", "store_id", "data", "hash", "created_at", "producer"]
    assert payload["scope"] == "store/product/inventory/updated"
    assert isinstance(payload["store_id"], str) and payload["store_id"].isdigit()
    assert payload["producer"] == f"stores/{sandbox.store_hash}"
    assert isinstance(payload["created_at"], int) and re.fullmatch(r"[0-9a-f]{40}", payload["hash"])
    assert payload["data"] == {"type": "product", "id": product["id"],
                               "inventory": {"product_id": product["id"], "method": "absolute", "value": 77}}


def test_tracking_none_level_change_does_not_fire_product_updated(sandbox):
    key, _ = hook_into_inbox(sandbox, "store/product/*")
    product = sandbox.api("GET", "/v3/catalog/products", params={"inventory_tracking": "none"}).json()["data"][0]
    sandbox.api("PUT", f"/v3/catalog/products/{product['id']}", json={"inventory_level": 5})
    sandbox.api("PUT", f"/v3/catalog/products/{product['id']}", json={"inventory_tracking": "product"})
    sandbox.wait_for_deliveries(lambda d: len(d) == 2 and all(x["status"] == "delivered" for x in d))
    scopes = sorted(json.loads(r["body"])["scope"] for r in sandbox.server.inbox_requests(key))
    assert scopes == ["store/product/inventory/updated", "store/product/updated"]


def test_orders_fire_created_inventory_and_status_events(sandbox):
    key, _ = hook_into_inbox(sandbox, "store/order/*")
    inventory_key, _ = hook_into_inbox(sandbox, "store/product/inventory/order/updated")
    product = sandbox.api("GET", "/v3/catalog/products", params={
        "inventory_tracking": "product", "inventory_level:min": 10}).json()["data"][0]
    order = sandbox.api("POST", "/v2/orders", json={"billing_address": {"email": "a@example.com"},
                                                    "products": [{"product_id": product["id"], "quantity": 3}]}).json()
    sandbox.api("PUT", f"/v2/orders/{order['id']}", json={"status_id": 11})
    bodies = [json.loads(r["body"]) for r in received(sandbox, key, 3)]
    by_scope = {b["scope"]: b["data"] for b in bodies}
    assert by_scope["store/order/created"] == {"type": "order", "id": order["id"]}
    assert by_scope["store/order/updated"] == {"type": "order", "id": order["id"]}
    assert by_scope["store/order/statusUpdated"] == {"type": "order", "id": order["id"], "status": {
        "previous_status_id": 1, "new_status_id": 11}}
    inventory = json.loads(received(sandbox, inventory_key, 1)[0]["body"])
    assert inventory["data"]["inventory"] == {"product_id": product["id"], "method": "relative", "value": -3}


def test_failed_delivery_retries_on_schedule_then_succeeds(sandbox):
    scale = 0.0002
    sandbox.set_webhook_time_scale(scale)
    key, hook = hook_into_inbox(sandbox, "store/order/created", statuses=(500, 502))
    sandbox.api("POST", "/v2/orders", json={"billing_address": {"email": "a@example.com"},
                                            "products": [{"name": "Custom", "quantity": 1, "price_inc_tax": 1}]})
    delivery = sandbox.wait_for_deliveries(lambda d: d and d[0]["status"] == "delivered")[0]
    assert delivery["attempt_count"] == 3
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 502, 200]
    times = [a["at"] for a in delivery["attempts"]]
    for gap, expected in zip([b - a for a, b in zip(times, times[1:], strict=False)], RETRY_SCHEDULE_SECONDS,
                             strict=False):
        assert gap >= expected * scale * 0.95
    assert len(sandbox.server.inbox_requests(key)) == 3
    assert sandbox.api("GET", f"/v3/hooks/{hook['id']}").json()["data"]["is_active"] is True


def test_hook_is_deactivated_after_the_last_retry(sandbox):
    scale = 0.00002  # the ~48 h schedule in about 3.5 s
    sandbox.set_webhook_time_scale(scale)
    key, hook = hook_into_inbox(sandbox, "store/order/created", status=503)
    sandbox.api("POST", "/v2/orders", json={"billing_address": {"email": "a@example.com"},
                                            "products": [{"name": "Custom", "quantity": 1, "price_inc_tax": 1}]})
    delivery = sandbox.wait_for_deliveries(lambda d: d and d[0]["status"] == "failed", timeout=30)[0]
    assert delivery["attempt_count"] == len(RETRY_SCHEDULE_SECONDS) + 1
    times = [a["at"] for a in delivery["attempts"]]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(gap >= expected * scale * 0.95 for gap, expected in zip(gaps, RETRY_SCHEDULE_SECONDS, strict=True))
    assert sandbox.api("GET", f"/v3/hooks/{hook['id']}").json()["data"]["is_active"] is False
    # An inactive hook gets nothing new until it is reactivated.
    sandbox.api("POST", "/v2/orders", json={"billing_address": {"email": "a@example.com"},
                                            "products": [{"name": "Custom", "quantity": 1, "price_inc_tax": 1}]})
    assert len(sandbox.deliveries()) == 1
    sandbox.api("PUT", f"/v3/hooks/{hook['id']}", json={"is_active": True})
    sandbox.server.configure_inbox(key, status=200)
    sandbox.api("POST", "/v2/orders", json={"billing_address": {"email": "a@example.com"},
                                            "products": [{"name": "Custom", "quantity": 1, "price_inc_tax": 1}]})
    sandbox.wait_for_deliveries(lambda d: len(d) == 2 and d[1]["status"] == "delivered")


def test_injected_delivery_failures_are_retried(sandbox):
    sandbox.set_webhook_time_scale(0.0002)
    key, _ = hook_into_inbox(sandbox, "store/order/created")
    sandbox.fail_next(2, status=500, target="deliveries")
    sandbox.api("POST", "/v2/orders", json={"billing_address": {"email": "a@example.com"},
                                            "products": [{"name": "Custom", "quantity": 1, "price_inc_tax": 1}]})
    delivery = sandbox.wait_for_deliveries(lambda d: d and d[0]["status"] == "delivered")[0]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert len(sandbox.server.inbox_requests(key)) == 1


def test_replayed_delivery_carries_the_same_bytes_and_hash(sandbox):
    key, _ = hook_into_inbox(sandbox, "store/order/created")
    sandbox.api("POST", "/v2/orders", json={"billing_address": {"email": "a@example.com"},
                                            "products": [{"name": "Custom", "quantity": 1, "price_inc_tax": 1}]})
    original = sandbox.wait_for_deliveries(lambda d: d and d[0]["status"] == "delivered")[0]
    replay = sandbox.replay(original["id"])
    assert replay["replay_of"] == original["id"] and replay["hash"] == original["hash"]
    first, second = received(sandbox, key, 2)[:2]
    assert first["body"] == second["body"]
    assert json.loads(second["body"])["hash"] == original["hash"]


def test_deliveries_survive_a_sandbox_restart(sandbox_factory):
    from sandbox.bigcommerce.app import create_app
    from tests.plugins.sandbox import LoopbackServer

    server = sandbox_factory()
    store = server.create_store(seed_demo=False)
    store.set_webhook_time_scale(1.0)  # the first retry is due in 60 s: it is still queued at shutdown
    key, _ = hook_into_inbox(store, "store/order/created", statuses=(500,))
    store.api("POST", "/v2/orders", json={"billing_address": {"email": "a@example.com"},
                                          "products": [{"name": "Custom", "quantity": 1, "price_inc_tax": 1}]})
    store.wait_for_deliveries(lambda d: d and d[0]["attempt_count"] == 1)
    server.runner.stop()
    restarted = LoopbackServer(create_app(server.config)).start()
    try:
        import httpx

        control = f"{restarted.url}/_sandbox/stores/{store.store_hash}"
        pending = httpx.get(f"{control}/deliveries").json()["data"]
        assert [(d["status"], d["attempt_count"]) for d in pending] == [("pending", 1)]
    finally:
        restarted.stop()


def test_cancelling_an_order_returns_tracked_stock(sandbox):
    key, _ = hook_into_inbox(sandbox, "store/product/inventory/order/updated")
    product = sandbox.api("GET", "/v3/catalog/products", params={
        "inventory_tracking": "product", "inventory_level:min": 10}).json()["data"][0]
    order = sandbox.api("POST", "/v2/orders", json={"billing_address": {"email": "a@example.com"},
                                                    "products": [{"product_id": product["id"], "quantity": 4}]}).json()
    sandbox.api("PUT", f"/v2/orders/{order['id']}", json={"status_id": 5})
    sandbox.api("PUT", f"/v2/orders/{order['id']}", json={"status_id": 4})
    after = sandbox.api("GET", f"/v3/catalog/products/{product['id']}").json()["data"]
    assert after["inventory_level"] == product["inventory_level"]
    values = sorted(json.loads(r["body"])["data"]["inventory"]["value"] for r in received(sandbox, key, 2))
    assert values == [-4, 4]
