"""Use cases of the storefront service: settings, product views, cart checks, order notes,
and applying inventory events to the product states."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backorder.events.v1 import inventory_events_pb2, storefront_events_pb2
from sqlalchemy.exc import IntegrityError

from services.common.bus import IncomingMessage, add_event
from services.common.db import Database, UnitOfWork
from services.common.errors import NotFound
from services.common.product_events import PRODUCT_STATE_EVENTS, is_assigned_after, product_event_version
from services.common.stores import is_store_hash
from services.storefront import domain, repository
from services.storefront.tables import outbox

log = logging.getLogger(__name__)

SERVICE = "storefront"
SETTINGS_CHANGED = "settings.changed"


class UnknownStore(NotFound):
    def __init__(self) -> None:
        super().__init__("not found")


@dataclass(frozen=True)
class StoreSettings:
    settings: domain.Settings
    revision: int  # 0 = never saved (defaults)
    known: bool = True  # saved settings or has product states

    @property
    def customized(self) -> bool:
        return self.revision > 0


def state_from_event(product: inventory_events_pb2.InventoryProductState, *, assigned: bool,
                     version: int) -> domain.ProductState:
    return domain.ProductState(
        product_id=product.product_id,
        assigned=assigned,
        stock=product.stock,
        threshold=product.threshold if product.HasField("threshold") else None,
        incoming_stock=product.incoming_stock,
        back_in_stock_date=product.back_in_stock_date,
        version=version,
        name=product.name,
        sku=product.sku,
    )


class StorefrontHandlers:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------ settings

    async def get_settings(self, store_hash: str) -> StoreSettings:
        self._check_store_hash(store_hash)
        async with self.db.read() as conn:
            saved = await repository.load_settings(conn, store_hash)
            if saved is None:
                return StoreSettings(domain.DEFAULT_SETTINGS, 0, await repository.store_known(conn, store_hash))
        return StoreSettings(*saved)

    async def update_settings(self, store_hash: str, changes: Mapping[str, Any], *, reset: bool = False
                              ) -> StoreSettings:
        """Validate and save; publishes settings.changed (outbox, same transaction) when
        anything changed. Locks the store's settings row. Raises ValidationFailed."""
        self._check_store_hash(store_hash)
        for attempt in range(3):
            try:
                return await self._update_settings_once(store_hash, changes, reset)
            except IntegrityError:
                # Two first saves of one store raced on the insert: the loser reads the winner's row.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _update_settings_once(self, store_hash: str, changes: Mapping[str, Any], reset: bool
                                    ) -> StoreSettings:
        async with self.db.unit_of_work() as uow:
            saved = await repository.load_settings(uow.conn, store_hash, for_update=True)
            current, revision = saved if saved is not None else (domain.DEFAULT_SETTINGS, 0)
            updated = domain.apply_changes(current, changes, reset=reset)
            changed = domain.changed_fields(current, updated)
            if not changed and saved is not None:
                return StoreSettings(current, revision)
            revision += 1
            await repository.save_settings(uow.conn, store_hash, updated, revision)
            await add_event(uow, outbox, store_hash=store_hash, service=SERVICE, event_type=SETTINGS_CHANGED,
                            payload=storefront_events_pb2.StorefrontSettingsChanged(
                                store_hash=store_hash, revision=revision, changed_fields=changed))
            await uow.commit()
        return StoreSettings(updated, revision)

    # ------------------------------------------------------------ views

    async def product_views(self, store_hash: str, product_ids: Sequence[int]) -> list[domain.ProductView]:
        """Views in the order asked. Raises NotFound for an unknown store."""
        self._check_store_hash(store_hash)
        async with self.db.read() as conn:
            saved = await repository.load_settings(conn, store_hash)
            states = await repository.load_states(conn, store_hash, product_ids)
            if saved is None and not states and not await repository.store_known(conn, store_hash):
                raise UnknownStore()
        settings, revision = saved if saved is not None else (domain.DEFAULT_SETTINGS, 0)
        return [domain.build_view(states.get(pid), pid, settings, revision) for pid in product_ids]

    async def check_cart(self, store_hash: str, lines: Sequence[domain.CartLine]) -> domain.CartCheck:
        self._check_store_hash(store_hash)
        checked = domain.validate_cart(lines)
        async with self.db.read() as conn:
            saved = await repository.load_settings(conn, store_hash)
            states = await repository.load_states(conn, store_hash, [line.product_id for line in checked])
            if saved is None and not states and not await repository.store_known(conn, store_hash):
                raise UnknownStore()
        settings = saved[0] if saved is not None else domain.DEFAULT_SETTINGS
        return domain.check_cart(checked, states, settings)

    async def order_note(self, store_hash: str, lines: Sequence[domain.OrderNoteLine]) -> str:
        """The note with the store's saved message (or the default one)."""
        return (await self.order_notes(store_hash, [lines]))[0]

    async def order_notes(self, store_hash: str, orders: Sequence[Sequence[domain.OrderNoteLine]]) -> list[str]:
        """One note per order, in order, from one read of the store's settings."""
        self._check_store_hash(store_hash)
        async with self.db.read() as conn:
            saved = await repository.load_settings(conn, store_hash)
        settings = saved[0] if saved is not None else domain.DEFAULT_SETTINGS
        return [domain.render_order_note(lines, settings) for lines in orders]

    # ------------------------------------------------------------ inventory events

    async def apply_inventory_events(self, uow: UnitOfWork, messages: Sequence[IncomingMessage]) -> None:
        """Batch consumer handler: the newest state per product among `messages`, each
        stored unless a newer one is (one statement for the batch)."""
        newest: dict[tuple[str, int], tuple[str, domain.ProductState, int]] = {}
        for message in messages:
            found = self._state_of(message)
            if found is None:
                continue
            store_hash, state, occurred_at_us = found
            key = (store_hash, state.product_id)
            kept = newest.get(key)
            if kept is None or (state.version, occurred_at_us) > (kept[1].version, kept[2]):
                newest[key] = found
        applied = await repository.upsert_states(uow.conn, list(newest.values()))
        if applied < len(newest):
            log.debug("%d stale inventory event(s) ignored", len(newest) - applied)

    @staticmethod
    def _state_of(message: IncomingMessage) -> tuple[str, domain.ProductState, int] | None:
        """(store_hash, product state, occurred_at µs) carried by an inventory event, or None."""
        envelope = message.envelope
        if envelope is None:
            return None
        payload_type = PRODUCT_STATE_EVENTS.get(envelope.type)
        if payload_type is None:
            return None
        payload = message.unpack(payload_type)
        if not isinstance(payload, payload_type):
            return None
        state = state_from_event(payload.product, assigned=is_assigned_after(envelope.type, payload),
                                 version=product_event_version(payload))
        occurred_at_us = envelope.occurred_at.seconds * 1_000_000 + envelope.occurred_at.nanos // 1000
        store_hash = envelope.store_hash
        if not is_store_hash(store_hash) or not domain.valid_product_id(state.product_id):
            log.warning("ignoring inventory event %s for %r/%s", message.message_id, store_hash, state.product_id)
            return None
        return store_hash, state, occurred_at_us

    @staticmethod
    def _check_store_hash(store_hash: str) -> None:
        if not is_store_hash(store_hash):
            raise UnknownStore()

