"""Inventory's product events written back to BigCommerce: tracking off when a product is
assigned, back on (or the product disabled) when it is unassigned, availability when it
sells out or comes back in stock.

Serialised per product in this process (striped locks); the mirror remembers the
occurrence time of what it applied, so a stale or replayed event changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from services.catalog_sync import domain, repository
from services.catalog_sync.bc_client import BigCommerceRejected
from services.catalog_sync.store_access import StoreAccess
from services.common.bus import IncomingMessage, PermanentError
from services.common.clock import utcnow
from services.common.db import Database
from services.common.product_events import PRODUCT_STATE_EVENTS

log = logging.getLogger(__name__)

LOCK_STRIPES = 1024  # a product's lock is stripe hash((store, product)) % LOCK_STRIPES


def _stripes() -> list[asyncio.Lock]:
    return [asyncio.Lock() for _ in range(LOCK_STRIPES)]


@dataclass(eq=False)
class Writebacks:
    """The inventory events consumer's effect, one product at a time per stripe lock."""

    db: Database
    stores: StoreAccess
    _locks: list[asyncio.Lock] = field(default_factory=_stripes, init=False, repr=False)

    async def handle(self, message: IncomingMessage) -> None:
        """The events consumer's effect: write one inventory event back to BigCommerce (tracking,
        availability), under the product's lock. PermanentError when BigCommerce refuses the write."""
        envelope = message.envelope
        assert envelope is not None
        payload_type = PRODUCT_STATE_EVENTS.get(envelope.type)
        if payload_type is None:
            return
        payload: Any = message.unpack(payload_type)
        store_hash = envelope.store_hash
        product_id = int(payload.product.product_id)
        if not await self.stores.is_installed(store_hash):
            return
        occurred = envelope.occurred_at.ToDatetime(tzinfo=UTC)
        async with self._locks[hash((store_hash, product_id)) % LOCK_STRIPES]:
            async with self.db.read() as conn:
                row = await repository.get_product(conn, store_hash, product_id)
            state = domain.MirrorState(
                assigned=bool(row.assigned) if row is not None else False,
                assignment_event_at=row.assignment_event_at if row is not None else None,
                availability_event_at=row.availability_event_at if row is not None else None)
            plan = domain.plan_writeback(
                envelope.type, occurred, state, status=payload.product.status,
                restore_tracking=bool(getattr(payload, "restore_tracking", False)),
                disable_product=bool(getattr(payload, "disable_product", False)),
                stock=int(getattr(payload, "stock", payload.product.stock)))
            if plan is None:
                return
            updated = None
            try:
                if plan.fields:
                    api = await self.stores.api(store_hash)
                    updated = await api.update_product(product_id, plan.fields)
                    if updated is None:
                        log.info("store %s product %s: gone from BigCommerce, no write-back", store_hash, product_id)
                        return
            except domain.StoreNotInstalled:
                return
            except BigCommerceRejected as exc:
                raise PermanentError(str(exc)) from exc
            await self._record_writeback(store_hash, product_id, plan, updated)

    async def _record_writeback(self, store_hash: str, product_id: int, plan: domain.WritebackPlan,
                                updated: dict[str, Any] | None) -> None:
        changes: dict[str, Any] = {}
        if plan.assigned is not None:
            changes["assigned"] = plan.assigned
            changes["assignment_event_at"] = plan.assignment_event_at
            if plan.assigned:
                changes["assigned_at"] = plan.assignment_event_at
                changes["tracking_off_at"] = utcnow()
            else:
                changes["tracking_off_at"] = None
        if plan.availability_event_at is not None:
            changes["availability_event_at"] = plan.availability_event_at
        async with self.db.unit_of_work() as uow:
            if updated is not None:
                await repository.upsert_products(uow.conn, self.db.dialect, store_hash,
                                                 [domain.mirror_fields(updated)])
            if changes:
                await repository.update_product(uow.conn, store_hash, product_id, **changes)
            await uow.commit()

