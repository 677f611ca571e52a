"""Stock commands (set, adjust, incoming: from the admin, BigCommerce and partner ERPs),
the ledger they write, and scheduled receipts.

Each command locks its products in primary-key order, then reads the idempotency keys
(so a concurrent duplicate that committed first is seen), computes with domain.py and
writes back through a ChangeSet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.clock import utcnow
from services.common.db import UnitOfWork
from services.common.errors import DomainError, ValidationFailed
from services.inventory import domain, repository
from services.inventory.changes import ChangeSet, Entry, Transactions, source_name
from services.inventory.repository import ProductRow
from services.inventory.store_settings import zone

log = logging.getLogger(__name__)

RECEIPT_BATCH = 500


@dataclass(frozen=True)
class StockItem:
    """One stock command: kind is "set", "adjust" or "incoming"."""

    kind: str
    product_id: int
    value: int
    idempotency_key: str = ""
    back_in_stock_date: str = ""

    def fingerprint(self) -> str:
        return domain.request_fingerprint({"kind": self.kind, "product_id": self.product_id, "value": self.value,
                                           "date": self.back_in_stock_date})


@dataclass(frozen=True)
class StockItemResult:
    item: StockItem
    status: str  # applied | replayed | invalid | not_found | conflict
    error: DomainError | None = None
    entry: Any = None  # the ledger row
    product: ProductRow | None = None
    low_stock_level: int = 0


class Stock:
    def __init__(self, tx: Transactions) -> None:
        self.tx = tx

    async def apply_items(self, store_hash: str, items: Sequence[StockItem], *, source: str, actor: str = "",
                                require_keys: bool = False) -> list[StockItemResult]:
        """Each item gets its own result; invalid/unknown/conflicting items write nothing,
        the others are applied in one transaction (products locked in PK order)."""
        domain.check_store_hash(store_hash)
        domain.check_count(len(items), domain.MAX_ERP_ITEMS)
        source = source_name(source, "admin")
        pre: dict[int, StockItemResult] = {}
        for index, item in enumerate(items):
            errors: list[dict[str, Any]] = []
            domain.check_product_id(errors, index, item.product_id)
            domain.check_idempotency_key(errors, index, item.idempotency_key, required=require_keys)
            if item.kind in ("set", "incoming"):
                domain.check_quantity(errors, index, "stock" if item.kind == "set" else "incoming_stock", item.value,
                                      product_id=item.product_id)
            else:
                domain.check_quantity(errors, index, "delta", abs(item.value), product_id=item.product_id)
            if item.kind == "incoming":
                domain.check_date(errors, index, "back_in_stock_date", item.back_in_stock_date,
                                  product_id=item.product_id)
            if errors:
                try:
                    domain.raise_if_errors(errors)
                except ValidationFailed as exc:
                    pre[index] = StockItemResult(item, "invalid", exc)

        async def body(uow: UnitOfWork) -> list[StockItemResult]:
            valid = [(i, item) for i, item in enumerate(items) if i not in pre]
            locked = await repository.lock_products(uow.conn, store_hash, [item.product_id for _, item in valid])
            existing = await repository.ledger_by_keys(
                uow.conn, [(store_hash, item.idempotency_key) for _, item in valid if item.idempotency_key])
            settings = await repository.get_settings(uow.conn, store_hash)
            changes = ChangeSet({store_hash: settings})
            results = dict(pre)
            in_batch: dict[str, tuple[str, dict[str, Any]]] = {}
            for index, item in valid:
                key = item.idempotency_key
                earlier = existing.get((store_hash, key)) if key else None
                product = locked.get(item.product_id)
                if earlier is not None or key in in_batch:
                    fingerprint = earlier.request_hash if earlier is not None else in_batch[key][0]
                    if fingerprint != item.fingerprint():
                        results[index] = StockItemResult(item, "conflict", domain.IdempotencyConflict(key, item=index))
                    else:
                        entry = earlier if earlier is not None else Entry(in_batch[key][1])
                        results[index] = StockItemResult(item, "replayed", entry=entry, product=product,
                                                         low_stock_level=settings.low_stock_level)
                    continue
                if product is None:
                    results[index] = StockItemResult(item, "not_found", ValidationFailed(
                        f"items[{index}].product_id: product {item.product_id} is not assigned",
                        [domain.field_error(index, "product_id", "not_assigned",
                                            f"product {item.product_id} is not assigned",
                                            product_id=item.product_id)]))
                    continue
                if item.kind == "set":
                    row = changes.record(product, kind="set", new_stock=item.value, absolute=item.value, source=source,
                                         actor=actor, key=key, request_hash=item.fingerprint())
                elif item.kind == "adjust":
                    row = changes.record(product, kind="adjust", new_stock=product.stock + item.value, source=source,
                                         actor=actor, key=key, request_hash=item.fingerprint())
                else:
                    product.incoming_stock = item.value
                    product.back_in_stock_date = domain.parse_date(item.back_in_stock_date)
                    row = changes.record(product, kind="edit", new_stock=product.stock, source=source, actor=actor,
                                         key=key, request_hash=item.fingerprint(),
                                         note=f"incoming_stock={item.value} back_in_stock_date={item.back_in_stock_date}")
                if key:
                    in_batch[key] = (item.fingerprint(), row)
                results[index] = StockItemResult(item, "applied", entry=Entry(row), product=product,
                                                 low_stock_level=settings.low_stock_level)
            ids = await changes.flush(uow)
            for result in results.values():
                if result.status == "applied" and isinstance(result.entry, Entry):
                    result.entry.id = ids.get(result.entry.idempotency_key, 0)
            return [results[i] for i in range(len(items))]

        return await self.tx.run(body)

    async def apply_item(self, store_hash: str, item: StockItem, *, source: str, actor: str = ""
                               ) -> StockItemResult:
        """One item; its error (validation, unknown product, key conflict) is raised."""
        (result,) = await self.apply_items(store_hash, [item], source=source, actor=actor)
        if result.error is not None:
            raise result.error
        return result

    async def list_ledger(self, store_hash: str, product_id: int = 0, page: int = 1, limit: int = 50
                          ) -> tuple[list[Any], int]:
        domain.check_store_hash(store_hash)
        page, limit = domain.paging(page, limit, 500)
        async with self.tx.db.read() as conn:
            return await repository.list_ledger(conn, store_hash, product_id, (page - 1) * limit, limit)

    async def ledger_after(self, store_hash: str, cursor: int, limit: int = 500) -> list[Any]:
        async with self.tx.db.read() as conn:
            return await repository.ledger_after(conn, store_hash, cursor, limit)


class Receipts:
    """Scheduled incoming stock: received on its back-in-stock date in the store's zone."""

    def __init__(self, tx: Transactions, *, today: Callable[[str], dt.date] | None = None) -> None:
        self.tx = tx
        self._today = today

    def today_in(self, timezone: str) -> dt.date:
        if self._today is not None:
            return self._today(timezone)
        return dt.datetime.now(zone(timezone)).date()

    async def apply_due(self, limit: int = 500) -> int:
        """Receives every scheduled incoming stock whose date (in the store's zone) has come.

        Each receipt is one conditional change on a locked row (the date and quantity must
        still be the scheduled ones) with the ledger key receipt:<product>:<date>:<version>,
        so it is applied once even when several replicas or a restart run it again."""
        applied = 0
        horizon = utcnow().date() + dt.timedelta(days=1)
        if self._today is not None:
            horizon = max(horizon, self._today("UTC") + dt.timedelta(days=1))
        async with self.tx.db.read() as conn:
            candidates = await repository.due_receipts(conn, horizon, limit)
            settings = await repository.get_settings_many(conn, {c.store_hash for c in candidates})
        for candidate in candidates:
            if not domain.receipt_due(candidate.back_in_stock_date,
                                      self.today_in(settings[candidate.store_hash].timezone)):
                continue

            async def body(uow: UnitOfWork, scheduled: ProductRow = candidate) -> bool:
                locked = await repository.lock_products(uow.conn, scheduled.store_hash, [scheduled.product_id])
                product = locked.get(scheduled.product_id)
                if (product is None or product.id != scheduled.id
                        or product.back_in_stock_date != scheduled.back_in_stock_date
                        or product.incoming_stock != scheduled.incoming_stock):
                    return False
                changes = ChangeSet({product.store_hash: settings[product.store_hash]})
                received = product.incoming_stock
                date = product.back_in_stock_date
                product.incoming_stock = 0
                product.back_in_stock_date = None
                changes.record(product, kind="receipt", new_stock=domain.receive(product.stock, received),
                               source="receipt", actor="scheduler",
                               key=f"receipt:{product.product_id}:{date}:{product.version}",
                               note=f"received {received} due {date}")
                await changes.flush(uow)
                return True

            if await self.tx.run(body):
                applied += 1
        return applied

    async def run(self, interval_s: float) -> None:
        """The scheduler: a pass at start (catching up after downtime), then every interval."""
        while True:
            try:
                count = await self.apply_due(limit=RECEIPT_BATCH)
                if count:
                    log.info("applied %d due receipt(s)", count)
                if count >= RECEIPT_BATCH:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next pass retries
                log.exception("receipt pass failed")
            await asyncio.sleep(interval_s)

