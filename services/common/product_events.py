"""The inventory events that carry a product's full state, and which of two states is newer.

Inventory publishes these five; catalog_sync, the storefront service and the gateway's cache
each keep the newest state per product. The version rule: a product's `version` grows with
every change of its row, and a `stock.changed` also carries the ledger id of the change, so
the larger of the two orders states of one product.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from backorder.events.v1 import inventory_events_pb2 as events

ProductStateEvent: TypeAlias = (events.ProductAssigned | events.ProductUnassigned | events.StockChanged
                                | events.ProductSoldOut | events.ProductBackInStock)

PRODUCT_STATE_EVENTS: Mapping[str, type[ProductStateEvent]] = {
    "product.assigned": events.ProductAssigned,
    "product.unassigned": events.ProductUnassigned,
    "stock.changed": events.StockChanged,
    "product.sold_out": events.ProductSoldOut,
    "product.back_in_stock": events.ProductBackInStock,
}


def product_event_version(payload: ProductStateEvent) -> int:
    """The version a product-state event describes (larger is newer)."""
    version = int(payload.product.version)
    if isinstance(payload, events.StockChanged):
        version = max(version, int(payload.ledger_id))
    return version


def is_assigned_after(event_type: str, payload: ProductStateEvent) -> bool:
    """Whether the product is assigned once this event is applied."""
    return event_type != "product.unassigned" and bool(payload.product.assigned)
