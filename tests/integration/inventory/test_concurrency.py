"""Correct under load: concurrent, duplicated order calls on real PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

from backorder.events.v1 import inventory_events_pb2 as events_pb
from backorder.inventory.v1 import inventory_pb2
from sqlalchemy import select

from services.inventory.tables import backorder_report, stock_ledger
from tests.integration.inventory.conftest import outbox_drained, published_events, store, wait_until

PRODUCTS = 20
LINES = 2_000
WORKERS = 32


async def test_32_workers_applying_2000_duplicated_lines_apply_each_line_once(
        database_url, start_inventory, fake_billing, nats_server):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 100)
    rng = random.Random(7)
    initial = {pid: rng.randint(0, 60) for pid in range(1, PRODUCTS + 1)}
    thresholds = {pid: rng.choice([0, 5, 20, 50]) for pid in initial}
    await inv.assign(store_hash, *({"product_id": pid, "name": f"P{pid}", "sku": f"SKU-{pid}", "stock": initial[pid],
                                    "threshold": thresholds[pid]} for pid in initial))

    orders = []
    line_count = 0
    while line_count < LINES:
        size = min(rng.randint(1, 3), LINES - line_count)
        products = rng.sample(range(1, PRODUCTS + 1), size)
        orders.append(inventory_pb2.ApplyOrderRequest(
            store_hash=store_hash, order_id=f"o{len(orders)}", order_email="buyer@example.com",
            lines=[inventory_pb2.OrderLine(line_id=f"l{i}", product_id=pid, quantity=rng.randint(1, 4))
                   for i, pid in enumerate(products)]))
        line_count += size
    queue: asyncio.Queue = asyncio.Queue()
    for order in orders:
        queue.put_nowait(order)
    replies: dict[str, list] = {}

    async def worker() -> None:
        while not queue.empty():
            order = queue.get_nowait()
            first, second = await asyncio.gather(inv.inventory.ApplyOrder(order, timeout=60),
                                                 inv.inventory.ApplyOrder(order, timeout=60))
            replies[order.order_id] = [first, second]

    await asyncio.gather(*(worker() for _ in range(WORKERS)))

    # Both calls answer the same per-line result; exactly one of them applied each line.
    for order in orders:
        first, second = replies[order.order_id]
        for a, b in zip(first.lines, second.lines, strict=True):
            assert (a.backordered_qty, a.stock_before, a.stock_after) == (b.backordered_qty, b.stock_before,
                                                                         b.stock_after)
            assert a.applied and b.applied
            assert sorted([a.replayed, b.replayed]) == [False, True]

    async with inv.handlers.db.read() as conn:
        ledger = (await conn.execute(select(stock_ledger).where(stock_ledger.c.store_hash == store_hash)
                                     .order_by(stock_ledger.c.id))).all()
        report = (await conn.execute(select(backorder_report).where(
            backorder_report.c.store_hash == store_hash))).all()
    order_entries = [e for e in ledger if e.kind == "order"]
    assert len(order_entries) == LINES
    assert len({(e.order_id, e.line_id) for e in order_entries}) == LINES

    ordered = defaultdict(int)
    for order in orders:
        for line in order.lines:
            ordered[line.product_id] += line.quantity
    backordered = defaultdict(int)
    reported = defaultdict(int)
    for entry in order_entries:
        backordered[entry.product_id] += entry.backordered_qty
    for row in report:
        reported[row.product_id] += row.backordered_qty
    crossings = defaultdict(int)
    for entry in ledger:
        threshold = thresholds[entry.product_id]
        if entry.stock_before + threshold > 0 >= entry.stock_after + threshold:
            crossings[entry.product_id] += 1
    for pid in initial:
        product = await inv.product(store_hash, pid)
        deltas = sum(e.delta for e in ledger if e.product_id == pid and e.kind != "assign")
        assert product.stock == initial[pid] + deltas
        assert product.stock == initial[pid] - ordered[pid]
        # Lines are applied one after another, so stock serves exactly min(initial, ordered).
        assert backordered[pid] == max(ordered[pid] - initial[pid], 0)
        assert reported[pid] == backordered[pid]
        # Per line: backordered = q - min(q, max(stock_before, 0)).
        for entry in (e for e in order_entries if e.product_id == pid):
            assert entry.backordered_qty == entry.quantity - min(entry.quantity, max(entry.stock_before, 0))

    await wait_until(lambda: outbox_drained(inv), 30, "the outbox to be published")
    sold_out = await published_events(nats_server.url, store_hash, "product.sold_out",
                                      expected=sum(crossings.values()))
    per_product = defaultdict(int)
    for envelope in sold_out:
        payload = events_pb.ProductSoldOut()
        envelope.payload.Unpack(payload)
        per_product[payload.product.product_id] += 1
        assert payload.product.salable_qty <= 0
    assert dict(per_product) == dict(crossings)
    assert sum(crossings.values()) > 0


async def test_a_batch_spanning_two_stores_changes_each_store_own_products(database_url, start_inventory,
                                                                          fake_billing):
    import datetime as dt

    from services.inventory import domain

    inv = await start_inventory(database_url())
    stores = [store(), store()]
    for index, store_hash in enumerate(stores):
        fake_billing[0].plans[store_hash] = ("pro", 10)
        await inv.assign(store_hash, {"product_id": 5, "stock": 10 * (index + 1), "threshold": 0})
    commands = [domain.validate_order(store_hash, "o1", "", dt.datetime.now(dt.UTC),
                                      [{"line_id": "1", "product_id": 5, "quantity": 3}]) for store_hash in stores]
    outcomes = await inv.handlers.orders.apply_batch(commands)
    assert [(o.lines[0].stock_before, o.lines[0].stock_after) for o in outcomes] == [(10, 7), (20, 17)]
    assert [(await inv.product(s, 5)).stock for s in stores] == [7, 17]
