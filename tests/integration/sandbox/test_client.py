"""The BigCommerce client against a running sandbox: pagination, batches, quota, retries, errors, auth."""

from __future__ import annotations

import asyncio
import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from services.common.bigcommerce import (
    BigCommerceError,
    RetryPolicy,
    SignedPayloadError,
    exchange_oauth_code,
    verify_signed_payload_jwt,
)
from tests.plugins.bigcommerce_typed import TypedClient as BigCommerceClient


async def test_iter_products_paginates_past_250(sandbox_server):
    store = sandbox_server.create_store(seed_demo=False)
    store.generate_products(620)
    client = store.client()
    ids = [product.id async for product in client.iter_products()]
    assert len(ids) == 620 and ids == sorted(ids) and len(set(ids)) == 620
    assert store.stats()["requests_served"] == 3
    prefetched = [product.id async for product in client.iter_products(concurrency=3)]
    assert prefetched == ids


async def test_iter_products_applies_filters_and_typed_variants(sandbox):
    client = sandbox.client()
    products = [p async for p in client.iter_products(inventory_tracking="variant", include=["variants"])]
    assert products and all(len(p.variants) >= 2 for p in products)
    assert all(v.product_id == p.id for p in products for v in p.variants)
    low = [p async for p in client.iter_products(inventory_level__max=2, inventory_tracking="product")]
    assert low and all(p.inventory_level <= 2 for p in low)


async def test_update_products_splits_into_batches_of_ten(sandbox):
    client = sandbox.client()
    products = [p async for p in client.iter_products(limit=25)][:25]
    sandbox.reset_stats()
    updated = await client.update_products({"id": p.id, "inventory_warning_level": 7} for p in products)
    assert len(updated) == 25 and all(p.inventory_warning_level == 7 for p in updated)
    assert sandbox.stats()["requests_served"] == 3


async def test_update_variants_splits_into_batches_of_fifty(sandbox_server):
    store = sandbox_server.create_store(seed_demo=False)
    client = store.client()
    product = await client.create_product({
        "name": "Many sizes", "type": "physical", "weight": 1, "price": 3, "inventory_tracking": "variant",
        "variants": [{"sku": f"MS-{i}", "option_values": [{"option_display_name": "Size", "label": str(i)}]}
                     for i in range(60)]})
    variants = [v async for v in client.iter_variants(product.id)]
    assert len(variants) == 60
    store.reset_stats()
    updated = await client.update_variants({"id": v.id, "inventory_level": 2} for v in variants)
    assert len(updated) == 60 and store.stats()["requests_served"] == 2
    assert (await client.get_product(product.id)).inventory_level == 120


async def test_twenty_concurrent_callers_never_exceed_a_small_quota(sandbox):
    sandbox.set_rate_limit(8, window_ms=300)
    sandbox.reset_stats()
    client = sandbox.client()

    async def caller(index: int) -> int:
        info = await client.get_store_info()
        page = await client.list_products(limit=1, page=index + 1)
        return len(page.items) + bool(info.name)

    results = await asyncio.gather(*(caller(i) for i in range(20)))
    assert results == [2] * 20
    stats = sandbox.stats()
    assert stats["requests_served"] == 40
    assert stats["requests_throttled"] == 0
    assert stats["max_used_in_window"] <= 8


async def test_separate_clients_share_the_store_budget(sandbox):
    sandbox.set_rate_limit(5, window_ms=300)
    sandbox.reset_stats()
    clients = [sandbox.client() for _ in range(4)]
    await asyncio.gather(*(c.get_store_info() for c in clients for _ in range(4)))
    assert sandbox.stats()["requests_throttled"] == 0 and sandbox.stats()["requests_served"] == 16


async def test_waits_out_a_429_then_succeeds(sandbox):
    client = sandbox.client()
    await client.get_store_info()
    sandbox.fail_next(1, status=429, reset_ms=150)
    started = time.monotonic()
    info = await client.get_store_info()
    assert info.id == sandbox.store_hash
    assert time.monotonic() - started >= 0.14


async def test_retries_5xx_then_succeeds(sandbox):
    client = sandbox.client()
    product = (await client.list_products(limit=1)).items[0]
    sandbox.reset_stats()
    sandbox.fail_next(2, status=500)
    assert (await client.get_product(product.id)).id == product.id
    assert sandbox.stats()["requests_failed_on_purpose"] == 2


async def test_retry_budget_exhausted_raises_the_error(sandbox):
    client = sandbox.client(retry=RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.02, budget_seconds=1))
    sandbox.fail_next(10, status=503)
    with pytest.raises(BigCommerceError) as raised:
        await client.get_store_info()
    error = raised.value
    assert error.status == 503 and error.method == "GET"
    assert error.url.endswith(f"/stores/{sandbox.store_hash}/v2/store")
    assert error.message == "Injected failure from the sandbox"
    assert sandbox.stats()["requests_failed_on_purpose"] == 4


async def test_network_errors_are_retried_within_budget_then_raised():
    client = BigCommerceClient("nowhere", "token", api_base_url="http://127.0.0.1:9",
                               retry=RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02))
    with pytest.raises(BigCommerceError) as raised:
        await client.get_store_info()
    assert raised.value.status == 0 and "network error" in raised.value.message


async def test_client_errors_carry_bigcommerce_message_without_retry(sandbox):
    client = sandbox.client()
    sandbox.reset_stats()
    with pytest.raises(BigCommerceError) as raised:
        await client.get_product(987654321)
    assert raised.value.status == 404 and "987654321" in raised.value.message
    assert raised.value.body["status"] == 404
    with pytest.raises(BigCommerceError) as raised:
        await client.get_order(987654321)
    assert raised.value.status == 404 and raised.value.message == "The requested resource was not found."
    assert sandbox.stats()["requests_served"] == 2


async def test_orders_hooks_scripts_and_inventory_round_trip(sandbox):
    client = sandbox.client()
    product = [p async for p in client.iter_products(inventory_tracking="product", inventory_level__min=5)][0]
    order = await client.create_order({"billing_address": {"email": "buyer@example.com"},
                                       "products": [{"product_id": product.id, "quantity": 2}]})
    assert order.email == "buyer@example.com"
    lines = await client.list_order_products(order.id)
    assert [(line.product_id, line.quantity) for line in lines] == [(product.id, 2)]
    assert (await client.get_product(product.id)).inventory_level == product.inventory_level - 2
    updated = await client.update_order(order.id, {"status_id": 11, "staff_notes": "2 backordered"})
    assert updated.status_id == 11 and updated.staff_notes == "2 backordered"
    hook = await client.create_hook("store/order/created", "https://app.example.com/webhooks/bigcommerce",
                                    headers={"X-Backorder-Hook-Token": "t"})
    assert [h.id for h in await client.list_hooks()] == [hook.id]
    script = await client.create_script({"name": "bo", "kind": "src", "src": "https://cdn.example.com/bo.js"})
    assert [s.uuid for s in await client.list_scripts()] == [script.uuid]
    await client.adjust_inventory_absolute([{"location_id": 1, "product_id": product.id, "quantity": 42}])
    items = [i async for i in client.iter_inventory_items(product_id__in=[product.id])]
    assert items[0].locations[0].total_inventory_onhand == 42
    settings = await client.get_inventory_settings()
    assert "stock_level_display" in settings
    info = await client.get_store_info()
    assert info.timezone_name == "America/New_York"


async def test_install_handshake_exchanges_the_code(sandbox_server, serve_asgi):
    store = sandbox_server.create_store(seed_demo=False)
    received = {}

    async def bc_auth(request: Request) -> HTMLResponse:
        token = await exchange_oauth_code(
            request.query_params["code"], request.query_params["scope"], request.query_params["context"],
            client_id=sandbox_server.client_id, client_secret=sandbox_server.client_secret,
            redirect_uri=f"{app_url}/bc/auth", login_base_url=sandbox_server.base_url)
        received["token"] = token
        return HTMLResponse("<p>installed</p>")

    app_url = serve_asgi(Starlette(routes=[Route("/bc/auth", bc_auth)]))
    result = store.install(app_url=app_url)
    assert result["installed"] and result["code_exchanged"] and result["auth_status"] == 200
    token = received["token"]
    assert token.store_hash == store.store_hash and token.access_token and "store_v2_products" in token.scope
    app_client = store.client(token=token.access_token)
    assert (await app_client.get_store_info()).id == store.store_hash
    await app_client.create_hook("store/order/created", "https://app.example.com/hook")
    assert await store.client().list_hooks() == []  # hooks are visible only to the client that made them
    with pytest.raises(BigCommerceError) as raised:
        await exchange_oauth_code("used-or-unknown", "x", f"stores/{store.store_hash}",
                                  client_id=sandbox_server.client_id, client_secret=sandbox_server.client_secret,
                                  redirect_uri="x", login_base_url=sandbox_server.base_url)
    assert raised.value.status == 400


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_signed_payload_jwt_verification(sandbox, sandbox_server):
    keys = {"client_id": sandbox_server.client_id, "client_secret": sandbox_server.client_secret}
    payload = verify_signed_payload_jwt(sandbox.signed_payload("load", user_id=42, email="staff@example.com"),
                                        **keys)
    assert payload.store_hash == sandbox.store_hash
    assert payload.user == {"id": 42, "email": "staff@example.com", "locale": "en-US"}
    assert payload.claims["iss"] == "bc" and payload.claims["exp"] - payload.claims["nbf"] == 24 * 3600
    expired = sandbox.signed_payload("load", issued_at=int(time.time()) - 3 * 24 * 3600)
    with pytest.raises(SignedPayloadError, match="expired"):
        verify_signed_payload_jwt(expired, **keys)
    with pytest.raises(SignedPayloadError, match="signature"):
        verify_signed_payload_jwt(sandbox.signed_payload("load", secret="someone-else"), **keys)
    with pytest.raises(SignedPayloadError, match="audience"):
        verify_signed_payload_jwt(sandbox.signed_payload("load", audience="another-app"), **keys)
    uninstall = verify_signed_payload_jwt(sandbox.signed_payload("uninstall"), **keys)
    assert uninstall.store_hash == sandbox.store_hash
    url = sandbox.callback_url("remove_user", user_id=7, app_url="http://127.0.0.1:8000")
    assert url.startswith("http://127.0.0.1:8000/bc/remove_user?signed_payload_jwt=")
    removed = verify_signed_payload_jwt(url.split("=", 1)[1], **keys)
    assert removed.user["id"] == 7


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_uninstall_calls_the_app_and_revokes_its_access(sandbox_server, serve_asgi):
    store = sandbox_server.create_store(seed_demo=False)
    seen: dict[str, object] = {}

    async def bc_auth(request: Request) -> HTMLResponse:
        seen["token"] = await exchange_oauth_code(
            request.query_params["code"], request.query_params["scope"], request.query_params["context"],
            client_id=sandbox_server.client_id, client_secret=sandbox_server.client_secret,
            redirect_uri="unused", login_base_url=sandbox_server.base_url)
        return HTMLResponse("ok")

    async def bc_uninstall(request: Request) -> HTMLResponse:
        seen["uninstall"] = verify_signed_payload_jwt(request.query_params["signed_payload_jwt"],
                                                      client_id=sandbox_server.client_id,
                                                      client_secret=sandbox_server.client_secret)
        return HTMLResponse("")

    app_url = serve_asgi(Starlette(routes=[Route("/bc/auth", bc_auth), Route("/bc/uninstall", bc_uninstall)]))
    assert store.install(app_url=app_url)["installed"]
    app_client = store.client(token=seen["token"].access_token)
    await app_client.create_hook("store/app/uninstalled", store.server.inbox_url("uninstalled-" + store.store_hash))
    await app_client.create_script({"name": "bo", "kind": "src", "src": "https://cdn.example.com/bo.js"})
    assert store.uninstall(app_url=app_url)["uninstall_status"] == 200
    assert seen["uninstall"].store_hash == store.store_hash
    delivery = store.wait_for_deliveries(lambda d: d and d[0]["status"] == "delivered")[0]
    assert delivery["scope"] == "store/app/uninstalled"
    with pytest.raises(BigCommerceError) as raised:
        await app_client.list_hooks()
    assert raised.value.status == 401
    assert "bo.js" not in store.server.http.get(f"{store.storefront_url}/").text
