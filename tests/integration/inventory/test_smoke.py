from __future__ import annotations

from backorder.inventory.v1 import inventory_pb2

from tests.integration.inventory.conftest import store


async def test_assign_then_order_splits_the_line(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    store_hash = store()
    fake_billing[0].plans[store_hash] = ("pro", 10)
    await inv.assign(store_hash, {"product_id": 1, "name": "Widget", "sku": "W-1", "stock": 2, "threshold": 5})
    reply = await inv.inventory.ApplyOrder(inventory_pb2.ApplyOrderRequest(
        store_hash=store_hash, order_id="100", order_email="a@example.com",
        lines=[inventory_pb2.OrderLine(line_id="1", product_id=1, quantity=3)]), timeout=10)
    assert reply.lines[0].backordered_qty == 1
    product = await inv.product(store_hash, 1)
    assert product.stock == -1
    assert product.salable_qty == 4
    assert product.status == inventory_pb2.PRODUCT_STATUS_BACKORDER
