"""Helpers for storefront integration tests: inventory events on real NATS, waiting on conditions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from backorder.events.v1 import inventory_events_pb2 as inv

from services.common.bus import EventBus, build_envelope, event_subject
from tests.plugins.services import wait_until as shared_wait_until

PAYLOADS = {
    "product.assigned": inv.ProductAssigned,
    "product.unassigned": inv.ProductUnassigned,
    "stock.changed": inv.StockChanged,
    "product.sold_out": inv.ProductSoldOut,
    "product.back_in_stock": inv.ProductBackInStock,
}


def new_store() -> str:
    return f"s{uuid.uuid4().hex[:8]}"


async def publish_inventory(bus: EventBus, store_hash: str, event_type: str, product_id: int, *, stock: int,
                            threshold: int | None = 5, version: int = 1, back_in_stock_date: str = "",
                            occurred_at: datetime | None = None, event_id: str | None = None,
                            assigned: bool = True, msg_id: str | None = None) -> str:
    """Publish one inventory event as the inventory service would (envelope, Nats-Msg-Id)."""
    state = inv.InventoryProductState(product_id=product_id, assigned=assigned, stock=stock, version=version,
                                      back_in_stock_date=back_in_stock_date, name=f"Product {product_id}",
                                      sku=f"SKU-{product_id}")
    if threshold is not None:
        state.threshold = threshold
        state.salable_qty = stock + threshold
    payload = PAYLOADS[event_type](product=state)
    envelope = build_envelope(store_hash, "inventory", event_type, payload, event_id=event_id,
                              occurred_at=occurred_at or datetime.now(UTC))
    await bus.publish(event_subject(store_hash, "inventory", event_type), envelope.SerializeToString(),
                      msg_id or envelope.event_id)
    return envelope.event_id


def earlier(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def wait_until(predicate: Callable[[], object], timeout_s: float = 20.0, interval_s: float = 0.02) -> object:
    """Poll `predicate` (sync or async) until truthy; fail after the deadline."""
    return await shared_wait_until(predicate, timeout_s, interval_s=interval_s)
