"""The storefront side of the gateway: cache freshness, HTTP caching, CORS, rate limit, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
from backorder.events.v1 import inventory_events_pb2 as inv
from backorder.storefront.v1 import storefront_pb2 as pb
from backorder.storefront.v1 import storefront_pb2_grpc

from services.common.bus import EventBus, build_envelope
from services.common.grpc_server import DeadlineStub, insecure_channel
from services.gateway.storefront_cache import StorefrontConfig
from services.storefront.server import setup
from tests.integration.storefront.gateway_app import gateway_client
from tests.integration.storefront.helpers import new_store, publish_inventory, wait_until
from tests.plugins.services import free_port

pytestmark = pytest.mark.services


@pytest.fixture
async def bus(nats_server) -> AsyncIterator[EventBus]:
    bus = EventBus(nats_server.url, "storefront-gateway-test")
    await bus.connect()
    await bus.ensure_streams()
    yield bus
    await bus.close()


@pytest.fixture
async def service_address(start_service, sqlite_database_url: Callable[[], str]) -> str:
    runner = await start_service("storefront", setup, sqlite_database_url())
    return f"127.0.0.1:{runner.port}"


@pytest.fixture
async def gateway(service_address: str, bus: EventBus):
    async with gateway_client(service_address, bus) as client_app_stub:
        yield client_app_stub


async def assigned_product(client, bus: EventBus, store: str, product_id: int, **state) -> dict:
    await publish_inventory(bus, store, "product.assigned", product_id, **state)

    async def ready():
        response = await client.get(f"/storefront/v1/stores/{store}/products/{product_id}")
        return response.json() if response.status_code == 200 else None

    return await wait_until(ready)


async def test_view_is_cached_with_etag_and_refreshed_by_events(gateway, bus) -> None:
    client, _app, stub = gateway
    store = new_store()
    body = await assigned_product(client, bus, store, 7, stock=10, threshold=5, version=1)
    assert body["status"] == "in_stock" and body["messages"]["inventory"] == "In stock: 10 available."
    assert body["salable_qty"] == 15 and body["threshold"] == 5

    calls = stub.calls.get("GetProductView", 0)
    first = await client.get(f"/storefront/v1/stores/{store}/products/7")
    second = await client.get(f"/storefront/v1/stores/{store}/products/7")
    assert stub.calls.get("GetProductView", 0) == calls  # both from the cache
    assert first.headers["etag"] == second.headers["etag"]
    assert first.headers["cache-control"] == "public, no-cache"
    assert first.headers["content-type"] == "application/json"
    not_modified = await client.get(f"/storefront/v1/stores/{store}/products/7",
                                    headers={"If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""

    await publish_inventory(bus, store, "stock.changed", 7, stock=0, threshold=None, version=2,
                            back_in_stock_date="2026-12-24")

    async def backordered():
        response = await client.get(f"/storefront/v1/stores/{store}/products/7")
        return response.json()["status"] == "backorder" and response

    response = await wait_until(backordered)
    view = response.json()
    assert view["salable_qty"] is None and view["threshold"] is None
    assert view["messages"]["inventory"] == "Out of stock, available on backorder."
    assert view["messages"]["shipping"] == (
        "Ships as soon as new stock arrives. Expected back in stock on December 24, 2026.")
    assert view["messages"]["button_color"] == "#9A3412"
    assert response.headers["etag"] != first.headers["etag"]


async def test_event_ahead_of_the_service_never_leaves_a_stale_view(gateway, bus) -> None:
    client, app, _stub = gateway
    store = new_store()
    await assigned_product(client, bus, store, 8, stock=10, threshold=5, version=1)
    # The gateway hears of version 2 before the storefront service applied it.
    state = inv.InventoryProductState(product_id=8, assigned=True, stock=0, threshold=5, version=2)
    envelope = build_envelope(store, "inventory", "stock.changed", inv.StockChanged(product=state, ledger_id=2))
    app.state.storefront.handle_event(f"backorder.{store}.inventory.stock.changed", envelope.SerializeToString())
    stale = await client.get(f"/storefront/v1/stores/{store}/products/8")
    assert stale.json()["stock"] == 10
    assert stale.headers["cache-control"] == "no-store"
    assert (store, 8) not in app.state.storefront.views
    await publish_inventory(bus, store, "stock.changed", 8, stock=0, threshold=5, version=2)

    async def fresh():
        return (await client.get(f"/storefront/v1/stores/{store}/products/8")).json()["stock"] == 0

    await wait_until(fresh)
    assert (store, 8) in app.state.storefront.views


async def test_settings_change_rerenders_views_as_plain_text(gateway, bus, service_address) -> None:
    client, _app, _stub = gateway
    store = new_store()
    await assigned_product(client, bus, store, 9, stock=3, threshold=5, version=1)
    channel = insecure_channel(service_address)
    stub = DeadlineStub(storefront_pb2_grpc.StorefrontServiceStub(channel), 5)
    await stub.UpdateSettings(pb.UpdateSettingsRequest(
        store_hash=store, low_stock_message="<script>alert('x')</script> only {stock}"))
    await channel.close()

    async def rerendered():
        response = await client.get(f"/storefront/v1/stores/{store}/products/9")
        return "script" in response.json()["messages"]["inventory"] and response

    response = await wait_until(rerendered)
    assert response.json()["messages"]["inventory"] == "<script>alert('x')</script> only 3"
    assert b"<script>" not in response.content and b"\\u003cscript\\u003e" in response.content
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_unknown_store_product_and_bad_ids_look_the_same(gateway, bus) -> None:
    client, _app, _stub = gateway
    store = new_store()
    await assigned_product(client, bus, store, 1, stock=1, version=1)
    await publish_inventory(bus, store, "product.assigned", 2, stock=1, version=1)
    await publish_inventory(bus, store, "product.unassigned", 2, stock=1, version=2, assigned=False)
    bodies = []
    for path in (f"/storefront/v1/stores/{new_store()}/products/1", f"/storefront/v1/stores/{store}/products/999",
                 f"/storefront/v1/stores/{store}/products/abc", f"/storefront/v1/stores/{store}/products/-1",
                 "/storefront/v1/stores/Bad.Hash/products/1", f"/storefront/v1/stores/{new_store()}/settings",
                 f"/storefront/v1/stores/{store}/products/%C2%B2", f"/storefront/v1/stores/{store}/products/{'9' * 17}"):
        response = await client.get(path)
        assert response.status_code == 404, path
        bodies.append(response.content)

    async def unassigned_gone():
        return (await client.get(f"/storefront/v1/stores/{store}/products/2")).status_code == 404

    await wait_until(unassigned_gone)
    assert len(set(bodies)) == 1
    assert json.loads(bodies[0]) == {"error": {"code": "not_found", "message": "Not found.", "details": {}}}


async def test_settings_endpoint_exposes_selectors_only(gateway, bus) -> None:
    client, _app, _stub = gateway
    store = new_store()
    await assigned_product(client, bus, store, 1, stock=1, version=1)
    response = await client.get(f"/storefront/v1/stores/{store}/settings")
    body = response.json()
    assert body["theme_id"] == "cornerstone"
    assert body["selectors"]["add_to_cart_button"] == "#form-action-addToCart"
    assert "order_note_message" not in body and "allowed_origins" not in body
    assert response.headers["etag"]


async def test_cart_check_validates_and_answers(gateway, bus) -> None:
    client, _app, _stub = gateway
    store = new_store()
    await assigned_product(client, bus, store, 4, stock=2, threshold=3, version=1)
    url = f"/storefront/v1/stores/{store}/cart-check"
    ok = await client.post(url, content=json.dumps({"lines": [{"product_id": 4, "quantity": 3, "in_cart_qty": 1}]}),
                           headers={"Content-Type": "text/plain"})
    body = ok.json()
    assert body["lines"][0]["backordered_qty"] == 2 and not body["over_threshold"]
    assert body["mixed_cart_alert"].startswith("You added 3: 2 of them are on backorder")
    assert ok.headers["cache-control"] == "no-store"
    over = (await client.post(url, json={"lines": [{"product_id": 4, "quantity": 6}]})).json()
    assert over["over_threshold"] and over["over_threshold_alert"].startswith("Sorry, only 5")

    for payload, field in (({"lines": [{"product_id": 4, "quantity": "3"}]}, "quantity"),
                           ({"lines": []}, "lines"), ({"nope": 1}, "lines"),
                           ({"lines": [{"product_id": 4, "quantity": 0}]}, "quantity")):
        bad = await client.post(url, json=payload)
        assert bad.status_code == 422, payload
        assert bad.json()["error"]["details"]["errors"][0]["field"] == field
    assert (await client.post(url, content=b"{")).status_code == 422
    assert (await client.post(url, content=b"x" * 20_000)).status_code == 413
    unknown = await client.post(f"/storefront/v1/stores/{new_store()}/cart-check",
                                json={"lines": [{"product_id": 4, "quantity": 1}]})
    assert unknown.status_code == 404


async def test_cors_any_origin_by_default_and_store_origins_when_listed(gateway, bus, service_address) -> None:
    client, _app, _stub = gateway
    store = new_store()
    await assigned_product(client, bus, store, 1, stock=1, version=1)
    path = f"/storefront/v1/stores/{store}/products/1"
    anyone = await client.get(path, headers={"Origin": "https://anything.example"})
    assert anyone.headers["access-control-allow-origin"] == "*"
    assert anyone.headers["vary"] == "Origin"
    preflight = await client.options(f"/storefront/v1/stores/{store}/cart-check",
                                     headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and "POST" in preflight.headers["access-control-allow-methods"]

    channel = insecure_channel(service_address)
    stub = DeadlineStub(storefront_pb2_grpc.StorefrontServiceStub(channel), 5)
    await stub.UpdateSettings(pb.UpdateSettingsRequest(store_hash=store, set_allowed_origins=True,
                                                       allowed_origins=["https://shop.example"]))
    await channel.close()

    async def restricted():
        response = await client.get(path, headers={"Origin": "https://evil.example"})
        return "access-control-allow-origin" not in response.headers

    await wait_until(restricted)
    allowed = await client.get(path, headers={"Origin": "https://shop.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"


async def test_rate_limit_per_store(service_address, bus) -> None:
    config = StorefrontConfig(cache_ttl_s=30, max_entries=1000, rate_per_s=1, burst=3, browser_max_age_s=5,
                              cors_origins=("*",))
    async with gateway_client(service_address, bus, config) as (client, _app, _stub):
        store, other = new_store(), new_store()
        statuses = [(await client.get(f"/storefront/v1/stores/{store}/products/1")).status_code for _ in range(5)]
        assert statuses[:3] == [404, 404, 404] and statuses[3:] == [429, 429]
        limited = await client.get(f"/storefront/v1/stores/{store}/settings")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
        assert limited.json()["error"]["code"] == "rate_limited"
        assert (await client.get(f"/storefront/v1/stores/{other}/products/1")).status_code == 404


async def test_browser_max_age_setting(service_address, bus) -> None:
    config = StorefrontConfig(cache_ttl_s=30, max_entries=1000, rate_per_s=0, burst=0, browser_max_age_s=5,
                              cors_origins=("*",))
    async with gateway_client(service_address, bus, config) as (client, _app, _stub):
        store = new_store()
        await assigned_product(client, bus, store, 3, stock=1, version=1)
        response = await client.get(f"/storefront/v1/stores/{store}/products/3")
        assert response.headers["cache-control"] == "public, max-age=5"


async def test_script_is_served_as_javascript(gateway) -> None:
    client, _app, _stub = gateway
    response = await client.get("/storefront/v1/backorder.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "textContent" in response.text and "innerHTML" not in response.text
    again = await client.get("/storefront/v1/backorder.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


async def test_expired_view_is_served_while_the_service_is_down(gateway, bus) -> None:
    client, app, _stub = gateway
    store = new_store()
    fresh = await assigned_product(client, bus, store, 12, stock=4, threshold=2, version=1)
    dead = insecure_channel(f"127.0.0.1:{free_port()}")
    app.state.backends.stubs["storefront"] = DeadlineStub(storefront_pb2_grpc.StorefrontServiceStub(dead), 1)
    app.state.storefront.views[(store, 12)].expires_at = 0
    stale = await client.get(f"/storefront/v1/stores/{store}/products/12")
    assert stale.status_code == 200 and stale.json() == fresh
    assert stale.headers["cache-control"] == "no-store"
    down = await client.get(f"/storefront/v1/stores/{store}/products/13")
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "unavailable"
    await dead.close()
