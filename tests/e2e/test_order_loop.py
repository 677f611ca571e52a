"""The whole loop on a live sandbox store: install, assign, orders, stock webhooks, unassign."""

from __future__ import annotations

import json

from backorder.catalog.v1 import catalog_pb2
from backorder.inventory.v1 import inventory_pb2, report_pb2

from services.catalog_sync import domain
from services.catalog_sync.consumers import WEBHOOKS_DURABLE
from services.common.bus import STREAM_WEBHOOKS, IncomingMessage


async def first_product(platform, **filters) -> dict:
    params = {"inventory_tracking": "product", **filters}
    response = await platform.call(platform.store.api, "GET", "/v3/catalog/products", params=params)
    return next(p for p in response.json()["data"] if p.get("base_variant_id"))


async def app_api_list(platform, path: str) -> list[dict]:
    """Hooks and scripts are visible only to the app's own token (kept encrypted by catalog_sync)."""
    api = await platform.catalog_app.store_api(platform.store_hash)
    return await api.list_all(path)


async def test_install_registers_hooks_script_plan_and_pulls_the_catalog(platform):
    hooks = await app_api_list(platform, "/v3/hooks")
    assert {h["scope"] for h in hooks} == set(domain.WEBHOOK_SCOPES)
    assert all(h["destination"] == f"{platform.gateway_url}/webhooks/bigcommerce" for h in hooks)
    assert all(h["headers"][domain.HOOK_TOKEN_HEADER] == domain.webhook_secret(
        "dev-webhook-secret-key-change-me", platform.store_hash) for h in hooks)
    scripts = await app_api_list(platform, "/v3/content/scripts")
    assert len(scripts) == 1
    assert scripts[0]["location"] == "footer" and scripts[0]["consent_category"] == "essential"
    assert scripts[0]["auto_uninstall"] is True
    listing = await platform.catalog.ListProducts(catalog_pb2.ListProductsRequest(
        store_hash=platform.store_hash, limit=250))
    count = (await platform.call(platform.store.api, "GET", "/v3/catalog/products")).json()["meta"]["pagination"]
    assert listing.total == count["total"] > 0
    store = (await platform.catalog.GetStore(catalog_pb2.GetStoreRequest(store_hash=platform.store_hash))).store
    assert store.installed and store.timezone == "America/New_York"


async def test_reinstall_is_idempotent(platform):
    result = await platform.call(platform.store.install)
    assert result["installed"], result
    hooks = await app_api_list(platform, "/v3/hooks")
    assert len(hooks) == len(domain.WEBHOOK_SCOPES)
    scripts = await app_api_list(platform, "/v3/content/scripts")
    assert len(scripts) == 1


async def test_assigned_product_order_writes_report_row_and_staff_note(platform):
    product = await first_product(platform)
    await platform.assign(product["id"], stock=1, threshold=10)

    async def tracking_off():
        return (await platform.bc_product(product["id"]))["inventory_tracking"] == "none"

    await platform.wait_for(tracking_off, message="tracking switched off on BigCommerce")
    order_id = await platform.create_order([(product["id"], 3)])

    async def report_row():
        reply = await platform.reports.ListBackorders(report_pb2.ListBackordersRequest(
            store_hash=platform.store_hash))
        return [row for row in reply.rows if row.order_id == str(order_id)]

    rows = await platform.wait_for(report_row, message="report row")
    assert rows[0].purchased_qty == 3 and rows[0].backordered_qty == 2

    async def noted():
        order = (await platform.call(platform.store.api, "GET", f"/v2/orders/{order_id}")).json()
        return order["staff_notes"]

    note = await platform.wait_for(noted, message="order note")
    assert product["name"] in note or product["sku"] in note
    got = await platform.inventory.GetProduct(inventory_pb2.GetProductRequest(
        store_hash=platform.store_hash, product_id=product["id"]))
    assert got.product.stock == -2


async def test_a_batch_of_new_orders_reads_them_through_one_orders_list_request(platform):
    """catalog_sync's batch path: nearby new orders are read with one GET /v2/orders
    (min_id/max_id) instead of one GET each; each order is applied and noted once."""
    product = await first_product(platform)
    await platform.assign(product["id"], stock=0, threshold=None)

    async def tracking_off():
        return (await platform.bc_product(product["id"]))["inventory_tracking"] == "none"

    await platform.wait_for(tracking_off, message="tracking switched off on BigCommerce")
    # Hold the store's deliveries back: the test hands the webhooks to catalog_sync itself.
    await platform.call(platform.store.set_webhook_time_scale, 100000)
    await platform.call(platform.store.fail_next, 100, 503, "deliveries")
    order_ids = [await platform.create_order([(product["id"], n)]) for n in (1, 2, 3, 4)]

    async def queued():
        found = await platform.call(platform.store.deliveries, scope="store/order/created")
        return [d for d in found if d["payload"]["data"]["id"] in order_ids]

    deliveries = await platform.wait_for(lambda: _at_least(queued, 4), message="deliveries queued")
    messages = [IncomingMessage("bc.webhooks", json.dumps(d["payload"]).encode(), d["payload"]["hash"], 1)
                for d in deliveries[:4]]
    # The assign's write-back set off a store/product/updated delivery that catalog_sync
    # answers with a GET: let it finish before counting requests.
    js = platform.stack.runners["catalog_sync"].bus.js

    async def webhooks_settled():
        info = await js.consumer_info(STREAM_WEBHOOKS, WEBHOOKS_DURABLE)
        return info.num_pending == 0 and info.num_ack_pending == 0

    await platform.wait_for(webhooks_settled, message="catalog_sync idle")
    await platform.call(platform.store.reset_stats)
    outcomes = await platform.catalog_app.handle_webhooks(messages)
    assert outcomes == [None] * 4
    served = (await platform.call(platform.store.stats))["requests_served"]
    # 1 orders list + 4 order-products reads + 4 staff-notes PUTs (12 with a GET per order).
    assert served == 9, served
    got = await platform.inventory.GetProduct(inventory_pb2.GetProductRequest(
        store_hash=platform.store_hash, product_id=product["id"]))
    assert got.product.stock == -10
    for order_id in order_ids:
        order = (await platform.call(platform.store.api, "GET", f"/v2/orders/{order_id}")).json()
        assert order["staff_notes"].count("Backorder") == 1


async def _at_least(query, count: int):
    found = await query()
    return found if len(found) >= count else None
