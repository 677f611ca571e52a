"""catalog_sync's durable consumers: BigCommerce webhooks and inventory's product events.

Both use the shared consumer's effect mode: the reaction (BigCommerce and gRPC calls)
runs *before* the inbox transaction, never inside it, so no database transaction (and on
SQLite no write lock) is held across a network call. The price is that a reaction may run
twice (crash after the effect, before the inbox commit; or two copies of one delivery at
once); every reaction is idempotent, so that changes nothing.
"""

from __future__ import annotations

from services.catalog_sync.handlers import CatalogSync
from services.catalog_sync.tables import inbox
from services.common.bus import (
    STREAM_EVENTS,
    STREAM_WEBHOOKS,
    BatchEffect,
    Consumer,
    ConsumerSpec,
    Effect,
    EventBus,
    decode_envelope,
    decode_raw,
)
from services.common.db import Database

WEBHOOKS_DURABLE = "catalog_sync_webhooks"
EVENTS_DURABLE = "catalog_sync_inventory_events"
INVENTORY_PRODUCT_SUBJECTS = ["backorder.*.inventory.product.>"]


def webhook_spec(batch_effect: BatchEffect, concurrency: int, ack_wait_s: float, batch: int = 64) -> ConsumerSpec:
    """Fetches of up to `batch` hooks, each handled side by side and recorded in one inbox
    transaction, with `concurrency` hooks in flight in all. Several smaller batches rather
    than one big one: a batch waits for its slowest hook (a store BigCommerce throttles),
    and only that batch waits."""
    return ConsumerSpec(WEBHOOKS_DURABLE, STREAM_WEBHOOKS, ["bc.webhooks.>"], batch_effect=batch_effect,
                        decode=decode_raw, batch=max(1, min(batch, concurrency)), concurrency=concurrency,
                        ack_wait_s=ack_wait_s, backoff_base_s=0.5, backoff_max_s=60.0, max_deliver=100)


def events_spec(effect: Effect, concurrency: int, ack_wait_s: float) -> ConsumerSpec:
    return ConsumerSpec(EVENTS_DURABLE, STREAM_EVENTS, INVENTORY_PRODUCT_SUBJECTS, effect=effect,
                        decode=decode_envelope, batch=64, concurrency=concurrency, ack_wait_s=ack_wait_s,
                        backoff_base_s=0.5, backoff_max_s=60.0, max_deliver=100)


def build_consumers(app: CatalogSync, bus: EventBus, db: Database) -> list[Consumer]:
    settings = app.settings
    return [
        Consumer(webhook_spec(app.handle_webhooks, settings.webhook_concurrency, settings.consumer_ack_wait_s,
                              batch=settings.webhook_batch), bus, db, inbox),
        Consumer(events_spec(app.handle_inventory_event, settings.event_concurrency, settings.consumer_ack_wait_s),
                 bus, db, inbox),
    ]
