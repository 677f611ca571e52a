"""Reactions between a live sandbox store and inventory, through the gateway and JetStream."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from backorder.catalog.v1 import catalog_pb2
from backorder.inventory.v1 import inventory_pb2
from sqlalchemy import select

from services.catalog_sync import domain
from services.catalog_sync.consumers import WEBHOOKS_DURABLE
from services.catalog_sync.tables import inbox
from services.common.bus import STREAM_WEBHOOKS


async def tracked_simple_product(platform, skip: int = 0) -> dict:
    response = await platform.call(platform.store.api, "GET", "/v3/catalog/products",
                                   params={"inventory_tracking": "product", "limit": 250})
    candidates = [p for p in response.json()["data"] if p.get("base_variant_id")]
    return candidates[skip]


async def assigned_product(platform, *, stock: int, threshold: int | None = 10, skip: int = 0) -> dict:
    product = await tracked_simple_product(platform, skip)
    await platform.assign(product["id"], stock=stock, threshold=threshold)

    async def tracking_off():
        return (await platform.bc_product(product["id"]))["inventory_tracking"] == "none"

    await platform.wait_for(tracking_off, message="tracking switched off")
    return product


async def inventory_product(platform, product_id: int):
    try:
        reply = await platform.inventory.GetProduct(inventory_pb2.GetProductRequest(
            store_hash=platform.store_hash, product_id=product_id))
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise
    return reply.product


async def mirror_product(platform, product_id: int):
    reply = await platform.catalog.GetProducts(catalog_pb2.GetProductsRequest(
        store_hash=platform.store_hash, product_ids=[product_id]))
    return reply.products[0] if reply.products else None


async def test_assign_marks_the_mirror_assigned(platform):
    product = await assigned_product(platform, stock=5)

    async def flagged():
        row = await mirror_product(platform, product["id"])
        return row is not None and row.assigned

    await platform.wait_for(flagged, message="assigned flag in the mirror")
    listing = await platform.catalog.ListProducts(catalog_pb2.ListProductsRequest(
        store_hash=platform.store_hash, assigned=catalog_pb2.ASSIGNED_FILTER_ASSIGNED))
    assert [p.product_id for p in listing.products] == [product["id"]]


async def test_unassign_restores_tracking_with_stock_floored_and_disables(platform):
    product = await assigned_product(platform, stock=2)
    order_id = await platform.create_order([(product["id"], 5)])
    assert order_id

    async def stock_negative():
        got = await inventory_product(platform, product["id"])
        return got is not None and got.stock == -3

    await platform.wait_for(stock_negative, message="order applied")
    await platform.inventory.UnassignProducts(inventory_pb2.UnassignProductsRequest(
        store_hash=platform.store_hash, product_ids=[product["id"]], restore_tracking=True, disable_product=True,
        actor="e2e"))

    async def written_back():
        doc = await platform.bc_product(product["id"])
        return doc["inventory_tracking"] == "product" and doc["availability"] == "disabled" and doc

    doc = await platform.wait_for(written_back, message="unassign write-back")
    assert doc["inventory_level"] == 0

    async def unflagged():
        row = await mirror_product(platform, product["id"])
        return row is not None and not row.assigned

    await platform.wait_for(unflagged, message="mirror unassigned")


async def test_sold_out_disables_and_back_in_stock_enables(platform):
    product = await assigned_product(platform, stock=1, threshold=1)
    await platform.create_order([(product["id"], 2)])

    async def availability(value: str):
        async def check():
            return (await platform.bc_product(product["id"]))["availability"] == value
        return check

    await platform.wait_for(await availability("disabled"), message="sold out -> disabled")
    await platform.inventory.SetStock(inventory_pb2.SetStockRequest(
        store_hash=platform.store_hash, product_id=product["id"], stock=4, actor="e2e", idempotency_key="restock-1",
        source=inventory_pb2.STOCK_SOURCE_ADMIN))
    await platform.wait_for(await availability("available"), message="back in stock -> available")


async def test_absolute_inventory_webhook_sets_stock(platform):
    product = await assigned_product(platform, stock=3)
    await platform.call(platform.store.set_inventory, product["id"], 42)

    async def stock_is_42():
        got = await inventory_product(platform, product["id"])
        return got is not None and got.stock == 42

    await platform.wait_for(stock_is_42, message="absolute stock from BigCommerce")


async def test_tracking_switched_on_unassigns(platform):
    product = await assigned_product(platform, stock=3)

    async def flagged():
        row = await mirror_product(platform, product["id"])
        return row is not None and row.assigned

    await platform.wait_for(flagged, message="write-back recorded")
    response = await platform.call(platform.store.api, "PUT", f"/v3/catalog/products/{product['id']}",
                                   json={"inventory_tracking": "product"})
    assert response.status_code == 200

    async def unassigned():
        return await inventory_product(platform, product["id"]) is None

    await platform.wait_for(unassigned, message="unassigned after tracking on")


async def test_tracking_switched_on_with_keep_assigned_switches_it_off_again(platform):
    await platform.inventory.UpdateStoreSettings(inventory_pb2.UpdateStoreSettingsRequest(
        store_hash=platform.store_hash, keep_assigned_when_tracking_enabled=True))
    product = await assigned_product(platform, stock=3)

    async def flagged():
        row = await mirror_product(platform, product["id"])
        return row is not None and row.assigned

    await platform.wait_for(flagged, message="write-back recorded")
    await platform.call(platform.store.api, "PUT", f"/v3/catalog/products/{product['id']}",
                        json={"inventory_tracking": "product"})

    async def tracking_off_again():
        return (await platform.bc_product(product["id"]))["inventory_tracking"] == "none"

    await platform.wait_for(tracking_off_again, message="tracking off again")
    assert await inventory_product(platform, product["id"]) is not None


async def test_deleted_product_is_unassigned_and_dropped(platform):
    product = await assigned_product(platform, stock=3)
    response = await platform.call(platform.store.api, "DELETE", f"/v3/catalog/products/{product['id']}")
    assert response.status_code in (200, 204)

    async def gone():
        return await inventory_product(platform, product["id"]) is None and \
            await mirror_product(platform, product["id"]) is None

    await platform.wait_for(gone, message="unassigned and dropped from the mirror")


@pytest.mark.parametrize("status_id", [5, 6, 4])
async def test_cancelled_declined_refunded_order_returns_lines(platform, status_id):
    product = await assigned_product(platform, stock=5)
    order_id = await platform.create_order([(product["id"], 2)])

    async def stock_is(value: int):
        async def check():
            got = await inventory_product(platform, product["id"])
            return got is not None and got.stock == value
        return check

    await platform.wait_for(await stock_is(3), message="order applied")
    response = await platform.call(platform.store.api, "PUT", f"/v2/orders/{order_id}", json={"status_id": status_id})
    assert response.status_code == 200, response.text
    await platform.wait_for(await stock_is(5), message="lines returned")


async def test_replayed_order_delivery_is_applied_once(platform):
    product = await assigned_product(platform, stock=10)
    order_id = await platform.create_order([(product["id"], 4)])

    async def delivered():
        found = await platform.call(platform.store.deliveries, scope="store/order/created")
        return [d for d in found if d["payload"]["data"]["id"] == order_id and d["status"] == "delivered"]

    original = (await platform.wait_for(delivered, message="order delivery"))[0]

    async def applied():
        return (await inventory_product(platform, product["id"])).stock == 6

    # "delivered" means the gateway published it; catalog_sync applies it afterwards.
    await platform.wait_for(applied, message="order applied")
    for _ in range(3):
        await platform.call(platform.store.replay, original["id"])

    async def replays_delivered():
        found = await platform.call(platform.store.deliveries, scope="store/order/created")
        return len([d for d in found if d.get("replay_of") == original["id"] and d["status"] == "delivered"]) == 3

    await platform.wait_for(replays_delivered, message="replays delivered")
    js = platform.stack.runners["catalog_sync"].bus.js

    async def webhooks_settled():
        info = await js.consumer_info(STREAM_WEBHOOKS, WEBHOOKS_DURABLE)
        return info.num_pending == 0 and info.num_ack_pending == 0

    await platform.wait_for(webhooks_settled, message="catalog_sync idle")
    got = await inventory_product(platform, product["id"])
    assert got.stock == 6
    ledger = await platform.inventory.ListLedger(inventory_pb2.ListLedgerRequest(
        store_hash=platform.store_hash, product_id=product["id"], limit=50))
    assert [e.order_id for e in ledger.entries if e.order_id] == [str(order_id)]


async def test_write_backs_survive_bigcommerce_errors(platform):
    product = await tracked_simple_product(platform)

    async def failures_served(count: int):
        async def check():
            return (await platform.call(platform.store.stats))["requests_failed_on_purpose"] >= count
        return check

    await platform.call(platform.store.reset_stats)
    await platform.call(platform.store.fail_next, 4, 503)
    await platform.assign(product["id"], stock=3)
    # Only the write-back talks to BigCommerce now, so it is the one that meets the failures.
    await platform.wait_for(await failures_served(4), message="5xx served to the write-back")

    async def tracking_off():
        return (await platform.bc_product(product["id"]))["inventory_tracking"] == "none"

    await platform.wait_for(tracking_off, timeout=30, message="write-back after 5xx")
    await platform.call(platform.store.reset_stats)
    await platform.call(platform.store.fail_next, 3, 429, "api", 200)
    await platform.inventory.UnassignProducts(inventory_pb2.UnassignProductsRequest(
        store_hash=platform.store_hash, product_ids=[product["id"]], restore_tracking=True, actor="e2e"))
    await platform.wait_for(await failures_served(3), message="429 served to the write-back")

    async def tracking_on():
        doc = await platform.bc_product(product["id"])
        return doc["inventory_tracking"] == "product" and doc

    doc = await platform.wait_for(tracking_on, timeout=30, message="write-back after 429")
    assert doc["inventory_level"] == 3


async def test_uninstall_stops_processing_and_refuses_webhooks(platform):
    product = await assigned_product(platform, stock=10)
    await platform.call(platform.store.uninstall)
    store = (await platform.catalog.GetStore(catalog_pb2.GetStoreRequest(store_hash=platform.store_hash))).store
    assert not store.installed
    with pytest.raises(domain.StoreNotInstalled):
        await platform.catalog_app.store_api(platform.store_hash)
    body = {"scope": "store/order/created", "store_id": "1", "data": {"type": "order", "id": 1},
            "hash": "f" * 40, "created_at": 1, "producer": f"stores/{platform.store_hash}"}
    token = domain.webhook_secret("dev-webhook-secret-key-change-me", platform.store_hash)

    async def refused():
        response = await platform.http.post("/webhooks/bigcommerce", json=body,
                                            headers={domain.HOOK_TOKEN_HEADER: token})
        return response.status_code == 404

    await platform.wait_for(refused, timeout=10, message="webhooks refused after uninstall")

    # A delivery already in JetStream when the store went away is dropped, not applied.
    order_id = await platform.create_order([(product["id"], 3)])
    stale = {**body, "data": {"type": "order", "id": order_id}, "hash": "e" * 40, "created_at": int(time.time())}
    bus = platform.stack.runners["catalog_sync"].bus
    await bus.publish(domain.webhook_subject(platform.store_hash, "store/order/created"),
                      json.dumps(stale).encode(), stale["hash"])

    async def consumed():
        async with platform.catalog_app.db.read() as conn:
            row = (await conn.execute(select(inbox.c.message_id).where(inbox.c.message_id == stale["hash"]))).first()
        return row is not None

    await platform.wait_for(consumed, message="stale delivery consumed")
    got = await inventory_product(platform, product["id"])
    assert got.stock == 10
