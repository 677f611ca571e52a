"""Store settings: read, change, and a short-lived cache for event payloads."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import UnitOfWork
from services.common.errors import ValidationFailed
from services.inventory import domain, repository
from services.inventory.changes import Transactions
from services.inventory.repository import StoreSettingsRow

CACHE_S = 5.0


def zone(name: str, strict: bool = False) -> ZoneInfo:
    """The store's time zone; UTC for an unknown name unless `strict` (ValidationFailed)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        if strict:
            raise ValidationFailed(f"timezone: unknown zone {name!r}") from exc
        return ZoneInfo("UTC")


class StoreSettings:
    def __init__(self, tx: Transactions) -> None:
        self.tx = tx
        self._cache: dict[str, tuple[StoreSettingsRow, float]] = {}

    async def get(self, store_hash: str) -> StoreSettingsRow:
        domain.check_store_hash(store_hash)
        async with self.tx.db.read() as conn:
            return await repository.get_settings(conn, store_hash)

    async def update(self, store_hash: str, changes: dict[str, Any]) -> StoreSettingsRow:
        """Locks the store's settings row."""
        domain.check_store_hash(store_hash)
        errors: list[dict[str, Any]] = []
        if "low_stock_level" in changes:
            domain.check_quantity(errors, None, "low_stock_level", changes["low_stock_level"])
        if "timezone" in changes:
            try:
                zone(changes["timezone"], strict=True)
            except ValidationFailed:
                errors.append(domain.field_error(None, "timezone", "invalid", "must be an IANA time zone"))
        domain.raise_if_errors(errors)

        async def body(uow: UnitOfWork) -> StoreSettingsRow:
            current = await repository.lock_store(uow.conn, uow.dialect, store_hash)
            updated = replace(current, **changes)
            await repository.save_settings(uow.conn, updated)
            return updated

        updated = await self.tx.run(body)
        self._cache.pop(store_hash, None)
        return updated

    async def cached(self, conn: AsyncConnection, store_hashes: set[str]) -> dict[str, StoreSettingsRow]:
        """Store settings for event payloads, cached briefly (they change rarely, and only
        the low-stock status in events depends on them)."""
        now = time.monotonic()
        missing = {s for s in store_hashes if s not in self._cache or self._cache[s][1] < now}
        if missing:
            for store_hash, settings in (await repository.get_settings_many(conn, missing)).items():
                self._cache[store_hash] = (settings, now + CACHE_S)
        return {s: self._cache[s][0] for s in store_hashes}
