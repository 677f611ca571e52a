"""The backorder report and its CSV, the CSV import, scheduled receipts, event payloads."""

from __future__ import annotations

import csv
import datetime as dt
import io

import grpc
import pytest
from backorder.events.v1 import inventory_events_pb2 as events_pb
from backorder.inventory.v1 import inventory_pb2, report_pb2
from google.protobuf import timestamp_pb2

from tests.integration.inventory.conftest import outbox_drained, published_events, store, wait_until


def at(text: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(dt.datetime.fromisoformat(text))
    return stamp


async def test_report_filters_in_the_store_time_zone_and_exports_safe_csv(database_url, start_inventory,
                                                                          fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.inventory.UpdateStoreSettings(inventory_pb2.UpdateStoreSettingsRequest(
        store_hash=store_hash, timezone="America/New_York"))
    await inv.assign(store_hash, {"product_id": 1, "name": "=HYPERLINK(\"x\")", "sku": "-SKU", "stock": 0,
                                  "threshold": 100, "category_ids": [5, 9], "brand_id": 3},
                     {"product_id": 2, "name": "Plain", "sku": "P", "stock": 0, "threshold": 100})
    # 2026-03-01 03:30 UTC is still 2026-02-28 in New York.
    for order_id, when, product_id in (("a", "2026-03-01T03:30:00+00:00", 1), ("b", "2026-03-01T15:00:00+00:00", 1),
                                       ("c", "2026-03-02T15:00:00+00:00", 2)):
        await inv.inventory.ApplyOrder(inventory_pb2.ApplyOrderRequest(
            store_hash=store_hash, order_id=order_id, order_email="@evil.example", order_date=at(when),
            lines=[inventory_pb2.OrderLine(line_id="1", product_id=product_id, quantity=2)]))

    async def orders(**filters):
        reply = await inv.report.ListBackorders(report_pb2.ListBackordersRequest(
            store_hash=store_hash, filter=report_pb2.BackorderFilter(**filters)))
        return sorted(r.order_id for r in reply.rows), reply.total

    assert await orders(from_date="2026-03-01", to_date="2026-03-01") == (["b"], 1)
    assert await orders(to_date="2026-02-28") == (["a"], 1)
    assert await orders(category_id=9) == (["a", "b"], 2)
    assert await orders(category_id=1) == ([], 0)
    assert await orders(brand_id=3, q="hyperlink") == (["a", "b"], 2)
    assert await orders(q="plain") == (["c"], 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders(from_date="03/01/2026")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    chunks = [m.chunk async for m in inv.report.ExportBackorders(report_pb2.ExportBackordersRequest(
        store_hash=store_hash, filter=report_pb2.BackorderFilter(category_id=5)))]
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert rows[0][:7] == ["product_name", "sku", "purchased_qty", "backordered_qty", "order_id", "order_email",
                           "order_date"]
    assert len(rows) == 3
    for row in rows[1:]:
        assert row[0] == "'=HYPERLINK(\"x\")" and row[1] == "'-SKU" and row[5] == "'@evil.example"
        assert row[7] == "5 9" and row[8] == "3"
    dates = sorted(row[6] for row in rows[1:])
    assert dates[0].startswith("2026-02-28T22:30:00-05:00")


async def test_import_validates_every_row_and_applies_all_or_nothing(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 100)
    rows = [inventory_pb2.ImportRow(row=n + 2, product_id=str(n + 1), current_stock=str(n), backorder_threshold="")
            for n in range(50)]
    bad = list(rows)
    bad[10] = inventory_pb2.ImportRow(row=12, product_id="11", current_stock="2.5")
    bad[20] = inventory_pb2.ImportRow(row=22, product_id="21", current_stock="1", back_in_stock_date="2026-99-01")
    reply = await inv.inventory.ImportProducts(inventory_pb2.ImportProductsRequest(
        store_hash=store_hash, mode=inventory_pb2.IMPORT_MODE_ASSIGN, rows=bad))
    assert [(e.row, e.column, e.code) for e in reply.errors] == [
        (12, "current_stock", "not_integer"), (22, "back_in_stock_date", "invalid_date")]
    assert reply.applied == 0
    listed = await inv.inventory.ListProducts(inventory_pb2.ListProductsRequest(store_hash=store_hash))
    assert listed.total == 0

    dry = await inv.inventory.ImportProducts(inventory_pb2.ImportProductsRequest(
        store_hash=store_hash, mode=inventory_pb2.IMPORT_MODE_ASSIGN, rows=rows, dry_run=True))
    assert (dry.errors, dry.applied, dry.dry_run) == ([], 0, True)
    done = await inv.inventory.ImportProducts(inventory_pb2.ImportProductsRequest(
        store_hash=store_hash, mode=inventory_pb2.IMPORT_MODE_ASSIGN, rows=rows, import_id="job1"))
    assert (list(done.errors), done.applied) == ([], 50)
    assert (await inv.inventory.ListProducts(inventory_pb2.ListProductsRequest(store_hash=store_hash))).total == 50

    again = await inv.inventory.ImportProducts(inventory_pb2.ImportProductsRequest(
        store_hash=store_hash, mode=inventory_pb2.IMPORT_MODE_ASSIGN, rows=rows[:2]))
    assert {e.code for e in again.errors} == {"already_assigned"}

    update = await inv.inventory.ImportProducts(inventory_pb2.ImportProductsRequest(
        store_hash=store_hash, mode=inventory_pb2.IMPORT_MODE_UPDATE, overwrite=["threshold"], rows=[
            inventory_pb2.ImportRow(row=2, product_id="1", current_stock="99", backorder_threshold="7"),
            inventory_pb2.ImportRow(row=3, product_id="2", current_stock="99", backorder_threshold="")]))
    assert (list(update.errors), update.applied) == ([], 2)
    first, second = await inv.product(store_hash, 1), await inv.product(store_hash, 2)
    assert (first.stock, first.threshold) == (0, 7)
    assert (second.stock, second.HasField("threshold")) == (1, False)
    missing = await inv.inventory.ImportProducts(inventory_pb2.ImportProductsRequest(
        store_hash=store_hash, mode=inventory_pb2.IMPORT_MODE_UPDATE, rows=[
            inventory_pb2.ImportRow(row=2, product_id="999", current_stock="1")]))
    assert [(e.row, e.code) for e in missing.errors] == [(2, "not_assigned")]


async def test_import_over_the_plan_limit_reports_the_rows_beyond_it(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("starter", 3)
    reply = await inv.inventory.ImportProducts(inventory_pb2.ImportProductsRequest(
        store_hash=store_hash, mode=inventory_pb2.IMPORT_MODE_ASSIGN,
        rows=[inventory_pb2.ImportRow(row=n, product_id=str(n), current_stock="1") for n in range(2, 7)]))
    assert [(e.row, e.code) for e in reply.errors] == [(5, "plan_limit_reached"), (6, "plan_limit_reached")]
    assert (await inv.inventory.ListProducts(inventory_pb2.ListProductsRequest(store_hash=store_hash))).total == 0


async def test_due_receipts_are_received_once(database_url, start_inventory, fake_billing, nats_server):
    today = dt.date(2026, 6, 1)
    inv = await start_inventory(database_url(), today=lambda zone: today)
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "stock": 0, "threshold": 0, "incoming_stock": 8,
                                  "back_in_stock_date": "2026-06-01"},
                     {"product_id": 2, "stock": 1, "incoming_stock": 4, "back_in_stock_date": "2026-06-02"})
    assert await inv.handlers.receipts.apply_due() == 1
    assert await inv.handlers.receipts.apply_due() == 0
    received = await inv.product(store_hash, 1)
    assert (received.stock, received.incoming_stock, received.back_in_stock_date) == (8, 0, "")
    assert received.status == inventory_pb2.PRODUCT_STATUS_IN_STOCK
    assert (await inv.product(store_hash, 2)).incoming_stock == 4
    await wait_until(lambda: outbox_drained(inv), 10, "outbox")
    back = await published_events(nats_server.url, store_hash, "product.back_in_stock", expected=1)
    payload = events_pb.ProductBackInStock()
    back[0].payload.Unpack(payload)
    assert (payload.product.product_id, payload.product.stock, payload.product.salable_qty) == (1, 8, 8)


async def test_the_scheduler_catches_up_on_start_after_downtime(database_url, start_inventory, fake_billing):
    url = database_url()
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    first = await start_inventory(url, receipt_interval_s=3600.0, today=lambda zone: dt.date(2026, 1, 1))
    await first.assign(store_hash, {"product_id": 1, "stock": 2, "incoming_stock": 5,
                                    "back_in_stock_date": "2026-01-05"})
    await first.runner.stop()
    second = await start_inventory(url, receipt_interval_s=3600.0, today=lambda zone: dt.date(2026, 1, 9))

    async def received() -> bool:
        return (await second.product(store_hash, 1)).stock == 7

    await wait_until(received, 10, "the overdue receipt")


async def test_stock_changed_events_carry_a_renderable_view(database_url, start_inventory, fake_billing, nats_server):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "stock": 1, "threshold": 1, "incoming_stock": 3,
                                  "back_in_stock_date": "2031-01-01"})
    await inv.inventory.ApplyOrder(inventory_pb2.ApplyOrderRequest(store_hash=store_hash, order_id="1", lines=[
        inventory_pb2.OrderLine(line_id="1", product_id=1, quantity=2)]))
    await wait_until(lambda: outbox_drained(inv), 10, "outbox")
    envelopes = await published_events(nats_server.url, store_hash, expected=4)
    types = sorted(e.type for e in envelopes)
    assert types == ["order.backordered", "product.assigned", "product.sold_out", "stock.changed"]
    changed = events_pb.StockChanged()
    next(e for e in envelopes if e.type == "stock.changed").payload.Unpack(changed)
    assert (changed.before, changed.after, changed.delta, changed.source, changed.kind, changed.status) == (
        1, -1, -2, "order", "order", "sold_out")
    view = changed.product
    assert (view.assigned, view.stock, view.threshold, view.salable_qty, view.incoming_stock,
            view.back_in_stock_date) == (True, -1, 1, 0, 3, "2031-01-01")
    backordered = events_pb.OrderBackordered()
    next(e for e in envelopes if e.type == "order.backordered").payload.Unpack(backordered)
    assert [(line.backordered_qty, line.over_threshold) for line in backordered.lines] == [(1, False)]


async def test_receipts_not_yet_due_do_not_hide_due_ones(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url(), today=lambda zone: dt.date(2026, 6, 1))
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 50)
    await inv.assign(store_hash, {"product_id": 1, "stock": 0, "incoming_stock": 2, "back_in_stock_date": "2026-06-02"},
                     {"product_id": 2, "stock": 0, "incoming_stock": 3, "back_in_stock_date": "2026-06-01"})
    assert await inv.handlers.receipts.apply_due(limit=1) == 1
    assert ((await inv.product(store_hash, 1)).stock, (await inv.product(store_hash, 2)).stock) == (0, 3)
