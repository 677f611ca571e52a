"""What an applied CSV import writes, row by row: product rows, one ledger entry per changed
product and the events of docs/events.md, in row order (PostgreSQL's set-based path and
SQLite's alike)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
import pytest
from backorder.events.v1 import envelope_pb2
from backorder.events.v1 import inventory_events_pb2 as events_pb
from backorder.inventory.v1 import inventory_pb2
from sqlalchemy import select

from services.inventory.tables import assigned_products, outbox, stock_ledger
from tests.integration.inventory.conftest import store

ACTOR = "merchant@example.com"
PAYLOADS = {"product.assigned": events_pb.ProductAssigned, "stock.changed": events_pb.StockChanged,
            "product.sold_out": events_pb.ProductSoldOut, "product.back_in_stock": events_pb.ProductBackInStock}


def row(number: int, product_id: int, stock: str = "", threshold: str = "", incoming: str = "", date: str = "",
        **extra: Any) -> inventory_pb2.ImportRow:
    return inventory_pb2.ImportRow(row=number, product_id=str(product_id), current_stock=stock,
                                   backorder_threshold=threshold, incoming_stock=incoming, back_in_stock_date=date,
                                   **extra)


async def run_import(inv: Any, store_hash: str, mode: int, rows: list[inventory_pb2.ImportRow], import_id: str,
                     overwrite: tuple[str, ...] = ()) -> Any:
    reply = await inv.inventory.ImportProducts(inventory_pb2.ImportProductsRequest(
        store_hash=store_hash, mode=mode, rows=rows, import_id=import_id, actor=ACTOR, overwrite=overwrite),
        timeout=30)
    assert list(reply.errors) == []
    return reply


async def written(inv: Any, store_hash: str) -> tuple[dict[int, Any], list[Any], list[tuple[str, Any]]]:
    """(product rows by product id, ledger rows in id order, (event type, payload) in outbox order)."""
    async with inv.handlers.db.read() as conn:
        products = {r.product_id: r for r in (await conn.execute(select(assigned_products).where(
            assigned_products.c.store_hash == store_hash))).all()}
        ledger = (await conn.execute(select(stock_ledger).where(stock_ledger.c.store_hash == store_hash)
                                     .order_by(stock_ledger.c.id))).all()
        rows = (await conn.execute(select(outbox.c.event_id, outbox.c.subject, outbox.c.payload).where(
            outbox.c.subject.like(f"backorder.{store_hash}.%")).order_by(outbox.c.seq))).all()
    events = []
    for event_id, subject, payload in rows:
        envelope = envelope_pb2.Envelope()
        envelope.ParseFromString(payload)
        assert (envelope.event_id, envelope.store_hash, envelope.producer) == (event_id, store_hash, "inventory")
        assert subject == f"backorder.{store_hash}.inventory.{envelope.type}"
        message = PAYLOADS[envelope.type]()
        assert envelope.payload.Unpack(message)
        events.append((envelope.type, message))
    return products, ledger, events


def state(message: Any) -> tuple[Any, ...]:
    """A product view as (product_id, stock, threshold, salable, incoming, date, status, name, sku)."""
    p = message.product
    return (p.product_id, p.stock, p.threshold if p.HasField("threshold") else None,
            p.salable_qty if p.HasField("salable_qty") else None, p.incoming_stock, p.back_in_stock_date,
            p.status, p.name, p.sku)


def entry(e: Any) -> tuple[Any, ...]:
    return (e.product_id, e.kind, e.delta, e.absolute, e.stock_before, e.stock_after, e.source, e.actor,
            e.idempotency_key, e.request_hash, e.note, e.order_id, e.quantity, e.backordered_qty,
            bool(e.over_threshold))


async def test_import_writes_products_ledger_entries_and_events_row_by_row(database_url, start_inventory,
                                                                           fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 100)
    await inv.handlers.store_settings.update(store_hash, {"low_stock_level": 2})

    # Assign: names with a tab and a backslash go through COPY's escaping unchanged.
    await run_import(inv, store_hash, inventory_pb2.IMPORT_MODE_ASSIGN, [
        row(2, 1, "5", name="One", sku="S-1", category_ids=[5, 3], brand_id=7),
        row(3, 2, "0", "0", "4", "2030-02-03", name="Two\twith\\tab", sku="S-2"),
        row(4, 3, "3", "2", name="Three"),
        row(5, 4, "10"),
        row(6, 5, "1", "0"),
        row(7, 6, "4", "1", "2", "2030-01-01"),
    ], "job-a")
    products, ledger, events = await written(inv, store_hash)
    version = products[1].version
    assert {p.version for p in products.values()} == {version}
    assert [(p.name, p.sku, p.stock, p.threshold, p.incoming_stock, p.back_in_stock_date, p.category_key,
             p.brand_id, p.variant_id, p.location_id) for _, p in sorted(products.items())] == [
        ("One", "S-1", 5, None, 0, None, ",3,5,", 7, None, None),
        ("Two\twith\\tab", "S-2", 0, 0, 4, dt.date(2030, 2, 3), "", 0, None, None),
        ("Three", "", 3, 2, 0, None, "", 0, None, None),
        ("", "", 10, None, 0, None, "", 0, None, None),
        ("", "", 1, 0, 0, None, "", 0, None, None),
        ("", "", 4, 1, 2, dt.date(2030, 1, 1), "", 0, None, None),
    ]
    assert [entry(e) for e in ledger] == [
        (pid, "assign", stock, stock, 0, stock, "import", ACTOR, f"import:job-a:{pid + 1}", "", "", None, None, 0,
         False) for pid, stock in ((1, 5), (2, 0), (3, 3), (4, 10), (5, 1), (6, 4))]
    assert [t for t, _ in events] == ["product.assigned"] * 6
    assert [state(m) for _, m in events] == [
        (1, 5, None, None, 0, "", "in_stock", "One", "S-1"),
        (2, 0, 0, 0, 4, "2030-02-03", "sold_out", "Two\twith\\tab", "S-2"),
        (3, 3, 2, 5, 0, "", "in_stock", "Three", ""),
        (4, 10, None, None, 0, "", "in_stock", "", ""),
        (5, 1, 0, 1, 0, "", "low_stock", "", ""),
        (6, 4, 1, 5, 2, "2030-01-01", "in_stock", "", ""),
    ]
    assert {(m.actor, m.product.assigned, m.product.version) for _, m in events} == {(ACTOR, True, version)}

    # Update every column: a stock set (with or without edits), an edit without stock, a
    # sold-out and a back-in-stock transition, and a row that changes nothing (no entry).
    reply = await run_import(inv, store_hash, inventory_pb2.IMPORT_MODE_UPDATE, [
        row(2, 1, "0"),
        row(3, 2, "4", "0", "4", "2030-02-03"),
        row(4, 3, "3", "5"),
        row(5, 4, "", "", "3", "2031-05-06"),
        row(6, 5, "0", "0"),
        row(7, 6, "", "1", "2", "2030-01-01"),
    ], "job-u")
    assert reply.applied == 6
    products, ledger, events = await written(inv, store_hash)
    assert [(p.stock, p.threshold, p.incoming_stock, p.back_in_stock_date, p.version - version, p.name)
            for _, p in sorted(products.items())] == [
        (0, None, 0, None, 1, "One"),
        (4, 0, 4, dt.date(2030, 2, 3), 1, "Two\twith\\tab"),
        (3, 5, 0, None, 1, "Three"),
        (10, None, 3, dt.date(2031, 5, 6), 1, ""),
        (0, 0, 0, None, 1, ""),
        (4, 1, 2, dt.date(2030, 1, 1), 0, ""),
    ]
    updates = ledger[6:]
    assert [entry(e) for e in updates] == [
        (1, "set", -5, 0, 5, 0, "import", ACTOR, "import:job-u:2", "", "", None, None, 0, False),
        (2, "set", 4, 4, 0, 4, "import", ACTOR, "import:job-u:3", "", "", None, None, 0, False),
        (3, "set", 0, 3, 3, 3, "import", ACTOR, "import:job-u:4", "", "edited: threshold", None, None, 0, False),
        (4, "edit", 0, None, 10, 10, "import", ACTOR, "import:job-u:5", "",
         "edited: incoming_stock, back_in_stock_date", None, None, 0, False),
        (5, "set", -1, 0, 1, 0, "import", ACTOR, "import:job-u:6", "", "", None, None, 0, False),
    ]
    changes = events[6:]
    assert [t for t, _ in changes] == ["stock.changed", "stock.changed", "product.back_in_stock", "stock.changed",
                                       "stock.changed", "stock.changed", "product.sold_out"]
    assert [state(m) for _, m in changes] == [
        (1, 0, None, None, 0, "", "backorder", "One", "S-1"),
        (2, 4, 0, 4, 4, "2030-02-03", "in_stock", "Two\twith\\tab", "S-2"),
        (2, 4, 0, 4, 4, "2030-02-03", "in_stock", "Two\twith\\tab", "S-2"),
        (3, 3, 5, 8, 0, "", "in_stock", "Three", ""),
        (4, 10, None, None, 3, "2031-05-06", "in_stock", "", ""),
        (5, 0, 0, 0, 0, "", "sold_out", "", ""),
        (5, 0, 0, 0, 0, "", "sold_out", "", ""),
    ]
    assert {m.product.version - version for _, m in changes} == {1}
    stock_changes = [m for t, m in changes if t == "stock.changed"]
    assert [(m.before, m.after, m.delta, m.source, m.kind, m.status, m.salable_qty if m.HasField("salable_qty")
             else None, m.idempotency_key) for m in stock_changes] == [
        (5, 0, -5, "import", "set", "backorder", None, "import:job-u:2"),
        (0, 4, 4, "import", "set", "in_stock", 4, "import:job-u:3"),
        (3, 3, 0, "import", "set", "in_stock", 8, "import:job-u:4"),
        (10, 10, 0, "import", "edit", "in_stock", None, "import:job-u:5"),
        (1, 0, -1, "import", "set", "sold_out", 0, "import:job-u:6"),
    ]
    assert [m.ledger_id for m in stock_changes] == [e.id for e in updates]

    # Only the chosen column: stock and incoming stock in the file are ignored.
    reply = await run_import(inv, store_hash, inventory_pb2.IMPORT_MODE_UPDATE, [
        row(2, 1, "9", "3", "8"), row(3, 4, "9", "", "8")], "job-t", overwrite=("threshold",))
    assert reply.applied == 2
    products, ledger, events = await written(inv, store_hash)
    assert (products[1].stock, products[1].threshold, products[1].incoming_stock) == (0, 3, 0)
    assert (products[4].stock, products[4].threshold, products[4].incoming_stock) == (10, None, 3)
    assert [entry(e) for e in ledger[11:]] == [
        (1, "edit", 0, None, 0, 0, "import", ACTOR, "import:job-t:2", "", "edited: threshold", None, None, 0, False)]
    assert [(t, state(m)) for t, m in events[13:]] == [
        ("stock.changed", (1, 0, 3, 3, 0, "", "backorder", "One", "S-1"))]

    # The same import again: its keys are taken, so nothing is written a second time, and the
    # answer says so (ALREADY_EXISTS naming the import), not a retried internal error.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await inv.inventory.ImportProducts(inventory_pb2.ImportProductsRequest(
            store_hash=store_hash, mode=inventory_pb2.IMPORT_MODE_UPDATE, rows=[row(2, 1, "0")],
            import_id="job-u", actor=ACTOR), timeout=30)
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "job-u" in again.value.details()
    assert await written(inv, store_hash) == (products, ledger, events)
