"""Inventory consumes no events: catalog_sync and the gateway drive it over gRPC
(ApplyOrder, SetStock, UnassignProducts, ...), and it publishes through its outbox."""

from __future__ import annotations

from services.common.bus import ConsumerSpec

CONSUMERS: list[ConsumerSpec] = []
