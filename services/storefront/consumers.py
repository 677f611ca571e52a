"""The durable consumer that keeps product states fresh from inventory events."""

from __future__ import annotations

from services.common.bus import STREAM_EVENTS, ConsumerSpec
from services.storefront.handlers import StorefrontHandlers

INVENTORY_DURABLE = "storefront-inventory"
# Only the events that carry a product's state (order.backordered, one per order, is not one).
INVENTORY_SUBJECTS = ["backorder.*.inventory.product.>", "backorder.*.inventory.stock.>"]


def inventory_consumer(handlers: StorefrontHandlers) -> ConsumerSpec:
    """Durable pull consumer on every store's inventory events; the inbox drops redeliveries
    and the product-state upsert drops events older than the stored state. Batched: the
    events of one fetch are applied in one transaction (the newest state per product)."""
    return ConsumerSpec(durable=INVENTORY_DURABLE, stream=STREAM_EVENTS, subjects=INVENTORY_SUBJECTS,
                        batch_handler=handlers.apply_inventory_events,
                        batch=256, concurrency=512)
