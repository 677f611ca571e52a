"""Assign / edit / unassign, plan limits, validation, idempotency, returns, settings."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from backorder.events.v1 import inventory_events_pb2 as events_pb
from backorder.inventory.v1 import inventory_pb2, report_pb2
from sqlalchemy import func, select

from services.common.errors import ERROR_METADATA_KEY
from services.common.settings import DEFAULT_GRPC_PORTS
from services.inventory.tables import assigned_products, stock_ledger
from tests.integration.inventory.conftest import outbox_drained, published_events, store, wait_until
from tests.plugins.services import free_port


def error_body(exc: grpc.aio.AioRpcError) -> dict:
    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY:
            return json.loads(value)
    raise AssertionError(f"no error body on {exc}")


async def counts(inv, store_hash):
    async with inv.handlers.db.read() as conn:
        products = (await conn.execute(select(func.count()).select_from(assigned_products).where(
            assigned_products.c.store_hash == store_hash))).scalar_one()
        ledger = (await conn.execute(select(func.count()).select_from(stock_ledger).where(
            stock_ledger.c.store_hash == store_hash))).scalar_one()
    return products, ledger


async def test_free_plan_allows_one_product_and_names_the_limit(database_url, start_inventory, real_billing_addr):
    inv = await start_inventory(database_url(), billing_addr=real_billing_addr)
    store_hash = store()
    await inv.assign(store_hash, {"product_id": 1, "stock": 3})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inv.assign(store_hash, {"product_id": 2, "stock": 3})
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    body = error_body(caught.value)
    assert body["code"] == "plan_limit_reached"
    assert (body["details"]["limit"], body["details"]["assigned"], body["details"]["plan"]) == (1, 1, "free")
    assert await counts(inv, store_hash) == (1, 1)


async def test_two_concurrent_assigns_at_the_limit_cannot_both_pass(database_url, start_inventory, real_billing_addr):
    inv = await start_inventory(database_url(), billing_addr=real_billing_addr)
    for _ in range(3):
        store_hash = store()
        outcomes = await asyncio.gather(inv.assign(store_hash, {"product_id": 1, "stock": 1}),
                                        inv.assign(store_hash, {"product_id": 2, "stock": 1}),
                                        return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert len(failures) == 1
        assert failures[0].code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (await counts(inv, store_hash))[0] == 1


async def test_assign_fails_unavailable_when_billing_does_not_answer(database_url, start_inventory):
    inv = await start_inventory(database_url(), billing_addr=f"127.0.0.1:{free_port()}")
    store_hash = store()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inv.assign(store_hash, {"product_id": 1, "stock": 1})
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await counts(inv, store_hash) == (0, 0)


@pytest.mark.parametrize("items, item, field", [
    ([{"product_id": 1, "stock": 1, "threshold": -1}], 0, "threshold"),
    ([{"product_id": 1, "stock": 1}, {"product_id": 2, "stock": 1, "back_in_stock_date": "2026-02-30"}], 1,
     "back_in_stock_date"),
    ([{"product_id": 1, "stock": 1}, {"product_id": 2, "stock": -5}], 1, "stock"),
])
async def test_bad_bulk_assign_is_invalid_argument_naming_item_and_field(database_url, start_inventory, fake_billing,
                                                                        items, item, field):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inv.assign(store_hash, *items)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = error_body(caught.value)["details"]["errors"][0]
    assert (error["item"], error["field"]) == (item, field)
    assert await counts(inv, store_hash) == (0, 0)


async def test_bulk_edit_with_an_unknown_product_writes_nothing(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "stock": 4, "threshold": 2})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inv.inventory.UpdateProducts(inventory_pb2.UpdateProductsRequest(store_hash=store_hash, items=[
            inventory_pb2.UpdateItem(product_id=1, stock=9), inventory_pb2.UpdateItem(product_id=77, stock=1)]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = error_body(caught.value)["details"]["errors"][0]
    assert (error["item"], error["field"], error["reason"]) == (1, "product_id", "not_assigned")
    assert (await inv.product(store_hash, 1)).stock == 4
    assert await counts(inv, store_hash) == (1, 1)


async def test_edit_touches_only_present_fields_and_can_make_threshold_unlimited(database_url, start_inventory,
                                                                                 fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "name": "A", "stock": 4, "threshold": 2, "incoming_stock": 3,
                                  "back_in_stock_date": "2030-01-01"})
    await inv.inventory.UpdateProducts(inventory_pb2.UpdateProductsRequest(store_hash=store_hash, items=[
        inventory_pb2.UpdateItem(product_id=1, threshold_unlimited=True)]))
    product = await inv.product(store_hash, 1)
    assert not product.HasField("threshold") and not product.HasField("salable_qty")
    assert (product.stock, product.incoming_stock, product.back_in_stock_date, product.name) == (
        4, 3, "2030-01-01", "A")
    await inv.inventory.UpdateProducts(inventory_pb2.UpdateProductsRequest(store_hash=store_hash, items=[
        inventory_pb2.UpdateItem(product_id=1, threshold=0, stock=0)]))
    product = await inv.product(store_hash, 1)
    assert (product.stock, product.threshold, product.status) == (0, 0, inventory_pb2.PRODUCT_STATUS_SOLD_OUT)


async def test_set_stock_replay_returns_the_first_result_and_a_changed_payload_is_already_exists(
        database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "stock": 4, "threshold": 2})
    request = inventory_pb2.SetStockRequest(store_hash=store_hash, product_id=1, stock=10, idempotency_key="bc-hash-1",
                                            source=inventory_pb2.STOCK_SOURCE_BIGCOMMERCE)
    first = await inv.inventory.SetStock(request)
    await inv.inventory.AdjustStock(inventory_pb2.AdjustStockRequest(store_hash=store_hash, product_id=1, delta=-3))
    again = await inv.inventory.SetStock(request)
    assert not first.change.replayed and again.change.replayed
    assert (again.change.entry.id, again.change.entry.stock_before, again.change.entry.stock_after) == (
        first.change.entry.id, 4, 10)
    assert (await inv.product(store_hash, 1)).stock == 7
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inv.inventory.SetStock(inventory_pb2.SetStockRequest(store_hash=store_hash, product_id=1, stock=11,
                                                                   idempotency_key="bc-hash-1"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert (await inv.product(store_hash, 1)).stock == 7
    assert await counts(inv, store_hash) == (1, 3)


async def test_order_replay_with_other_quantity_is_already_exists(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "stock": 4, "threshold": 2})

    def order(quantity):
        return inventory_pb2.ApplyOrderRequest(store_hash=store_hash, order_id="9", lines=[
            inventory_pb2.OrderLine(line_id="1", product_id=1, quantity=quantity),
            inventory_pb2.OrderLine(line_id="2", product_id=555, quantity=1)])

    reply = await inv.inventory.ApplyOrder(order(2))
    assert [line.applied for line in reply.lines] == [True, False]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inv.inventory.ApplyOrder(order(3))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert (await inv.product(store_hash, 1)).stock == 2


async def test_apply_orders_answers_each_order_on_its_own(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "stock": 2, "threshold": 10})

    def order(order_id, quantity):
        return inventory_pb2.ApplyOrderRequest(store_hash=store_hash, order_id=order_id, lines=[
            inventory_pb2.OrderLine(line_id="1", product_id=1, quantity=quantity)])

    await inv.inventory.ApplyOrder(order("50", 1))
    reply = await inv.inventory.ApplyOrders(inventory_pb2.ApplyOrdersRequest(orders=[
        order("51", 2),  # applied: 1 from stock, 1 backordered
        order("52", 0),  # invalid
        order("50", 1),  # replayed: the first result again
        order("50", 4),  # the same line with another quantity: a conflict
        order("53", 1),  # applied after 51 in the same batch or the next one
    ]))
    kinds = [o.WhichOneof("outcome") for o in reply.outcomes]
    assert kinds == ["applied", "error", "applied", "error", "applied"]
    invalid, conflict = reply.outcomes[1].error, reply.outcomes[3].error
    assert (invalid.grpc_code, invalid.code) == (grpc.StatusCode.INVALID_ARGUMENT.value[0], "validation_failed")
    assert "quantity" in json.loads(invalid.details_json)["errors"][0]["field"]
    assert conflict.grpc_code == grpc.StatusCode.ALREADY_EXISTS.value[0]
    assert reply.outcomes[2].applied.lines[0].replayed
    applied = sorted((o.applied.order_id, o.applied.lines[0].stock_before, o.applied.lines[0].stock_after)
                     for o in (reply.outcomes[0], reply.outcomes[4]))
    # 51 and 53 both applied once, one after the other, whichever went first.
    assert {applied[0][1:], applied[1][1:]} in ({(1, -1), (-1, -2)}, {(1, 0), (0, -2)})
    assert (await inv.product(store_hash, 1)).stock == -2
    with pytest.raises(grpc.aio.AioRpcError) as too_many:
        await inv.inventory.ApplyOrders(inventory_pb2.ApplyOrdersRequest(orders=[order(str(n), 1)
                                                                                 for n in range(501)]))
    assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await inv.product(store_hash, 1)).stock == -2


async def test_returned_lines_come_back_once_and_leave_the_report(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "stock": 1, "threshold": 5})
    await inv.inventory.ApplyOrder(inventory_pb2.ApplyOrderRequest(store_hash=store_hash, order_id="7", lines=[
        inventory_pb2.OrderLine(line_id="1", product_id=1, quantity=3)]))
    report = await inv.report.ListBackorders(report_pb2.ListBackordersRequest(store_hash=store_hash))
    assert report.total == 1 and report.rows[0].backordered_qty == 2
    request = inventory_pb2.ReturnOrderLinesRequest(store_hash=store_hash, order_id="7", reason="cancelled")
    first = await inv.inventory.ReturnOrderLines(request)
    second = await inv.inventory.ReturnOrderLines(request)
    assert [(r.quantity, r.replayed) for r in first.lines] == [(3, False)]
    assert [(r.quantity, r.replayed) for r in second.lines] == [(3, True)]
    assert (await inv.product(store_hash, 1)).stock == 1
    report = await inv.report.ListBackorders(report_pb2.ListBackordersRequest(store_hash=store_hash))
    assert report.total == 0


async def test_return_is_skipped_when_the_store_keeps_cancelled_stock(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "stock": 5})
    await inv.inventory.UpdateStoreSettings(inventory_pb2.UpdateStoreSettingsRequest(
        store_hash=store_hash, return_stock_on_cancel=False, low_stock_level=3, timezone="America/New_York"))
    await inv.inventory.ApplyOrder(inventory_pb2.ApplyOrderRequest(store_hash=store_hash, order_id="7", lines=[
        inventory_pb2.OrderLine(line_id="1", product_id=1, quantity=2)]))
    reply = await inv.inventory.ReturnOrderLines(inventory_pb2.ReturnOrderLinesRequest(
        store_hash=store_hash, order_id="7", reason="refunded"))
    assert not reply.returned
    product = await inv.product(store_hash, 1)
    assert (product.stock, product.status) == (3, inventory_pb2.PRODUCT_STATUS_LOW_STOCK)
    settings = (await inv.inventory.GetStoreSettings(inventory_pb2.GetStoreSettingsRequest(
        store_hash=store_hash))).settings
    assert (settings.timezone, settings.keep_assigned_when_tracking_enabled) == ("America/New_York", False)


async def test_unassign_publishes_write_back_options_and_stock(database_url, start_inventory, fake_billing,
                                                               nats_server):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "stock": 6}, {"product_id": 2, "stock": 1})
    reply = await inv.inventory.UnassignProducts(inventory_pb2.UnassignProductsRequest(
        store_hash=store_hash, product_ids=[2, 1], restore_tracking=True, disable_product=False))
    assert [p.product_id for p in reply.products] == [2, 1]
    assert (await counts(inv, store_hash))[0] == 0
    await wait_until(lambda: outbox_drained(inv), 10, "outbox")
    envelopes = await published_events(nats_server.url, store_hash, "product.unassigned", expected=2)
    payloads = []
    for envelope in envelopes:
        payload = events_pb.ProductUnassigned()
        envelope.payload.Unpack(payload)
        payloads.append((payload.product.product_id, payload.stock, payload.restore_tracking, payload.product.assigned))
    assert sorted(payloads) == [(1, 6, True, False), (2, 1, True, False)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inv.inventory.UnassignProducts(inventory_pb2.UnassignProductsRequest(store_hash=store_hash,
                                                                                   product_ids=[1]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Views stay ordered across unassign and re-assign (storefront keeps the highest version).
    await inv.assign(store_hash, {"product_id": 1, "stock": 2})
    await wait_until(lambda: outbox_drained(inv), 10, "outbox")
    versions = []
    for envelope in await published_events(nats_server.url, store_hash, "product.*", expected=5):
        payload = events_pb.ProductAssigned() if envelope.type == "product.assigned" else events_pb.ProductUnassigned()
        envelope.payload.Unpack(payload)
        if payload.product.product_id == 1:
            versions.append((envelope.type, payload.product.version))
    assert [t for t, _ in versions] == ["product.assigned", "product.unassigned", "product.assigned"]
    assert versions[0][1] < versions[1][1] < versions[2][1]


async def test_list_filters_by_status_and_search_with_total(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash,
                     {"product_id": 1, "name": "Red Shirt", "sku": "RS", "stock": 10},
                     {"product_id": 2, "name": "Blue Shirt", "sku": "BS", "stock": 0, "threshold": 3},
                     {"product_id": 3, "name": "Hat", "sku": "H_1", "stock": 0, "threshold": 0},
                     {"product_id": 4, "name": "Cap", "sku": "C", "stock": 0})
    async def ids(**kwargs):
        reply = await inv.inventory.ListProducts(inventory_pb2.ListProductsRequest(store_hash=store_hash, **kwargs))
        return [p.product_id for p in reply.products], reply.total
    assert await ids(q="shirt") == ([1, 2], 2)
    assert await ids(q="h_") == ([3], 1)
    assert await ids(status=inventory_pb2.PRODUCT_STATUS_SOLD_OUT) == ([3], 1)
    assert await ids(status=inventory_pb2.PRODUCT_STATUS_BACKORDER) == ([2, 4], 2)
    assert await ids(status=inventory_pb2.PRODUCT_STATUS_IN_STOCK) == ([1], 1)
    assert await ids(limit=2, page=2) == ([3, 4], 4)


def test_erp_port_default_is_50055():
    assert DEFAULT_GRPC_PORTS["inventory_erp"] == 50055
