"""Inventory use cases: each runs in one unit of work and writes its ledger entries and
outbox events in the same transaction as the change.

Locking: store-wide operations (assign, import) lock the store's settings row first;
stock changes lock the affected product rows with SELECT … FOR UPDATE in primary-key
order, then check idempotency keys (so a concurrent duplicate that committed first is
seen), compute in Python with domain.py, and write back. The UNIQUE (store, key)
constraint on the ledger is the last line of defence against a double apply.

Order lines go through `OrderBatcher`, which applies the ApplyOrder calls that arrive
while a transaction is in flight together in the next one (group commit): the same
locks and checks, fewer round trips and commits per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import hashlib
import io
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backorder.events.v1 import inventory_events_pb2 as events_pb
from google.protobuf.message import Message
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.common.bus import add_events
from services.common.db import Database, UnitOfWork, insert_ignore
from services.common.errors import DomainError, NotFound, Unauthenticated, ValidationFailed
from services.inventory import bulk, domain, repository
from services.inventory.repository import ProductRow, StoreSettingsRow, utcnow
from services.inventory.tables import (
    api_tokens,
    assigned_products,
    backorder_report,
    import_rows,
    outbox,
    stock_ledger,
)

log = logging.getLogger(__name__)

SERVICE = "inventory"
TOKEN_PREFIX = "bo_"
SETTINGS_CACHE_S = 5.0
RECEIPT_BATCH = 500


# ---------------------------------------------------------------- entitlements

@dataclass(frozen=True)
class Entitlement:
    plan: str
    limit: int | None  # None = unlimited


class Entitlements(Protocol):
    async def get(self, store_hash: str) -> Entitlement: ...


# ---------------------------------------------------------------- results

@dataclass(frozen=True)
class LineResult:
    line_id: str
    product_id: int
    applied: bool
    quantity: int
    backordered_qty: int = 0
    over_threshold: bool = False
    stock_before: int = 0
    stock_after: int = 0
    replayed: bool = False


@dataclass(frozen=True)
class OrderResult:
    order_id: str
    lines: tuple[LineResult, ...]


@dataclass(frozen=True)
class ReturnedLineResult:
    line_id: str
    product_id: int
    quantity: int
    stock_before: int
    stock_after: int
    replayed: bool


@dataclass(frozen=True)
class ReturnResult:
    order_id: str
    lines: tuple[ReturnedLineResult, ...]
    returned: bool


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


@dataclass(frozen=True)
class ImportOutcome:
    rows: int
    applied: int
    errors: list[dict[str, Any]]
    dry_run: bool


# ---------------------------------------------------------------- events

def product_state(product: ProductRow, settings: StoreSettingsRow, *, assigned: bool = True
                  ) -> events_pb.InventoryProductState:
    state = events_pb.InventoryProductState(
        product_id=product.product_id,
        assigned=assigned,
        stock=product.stock,
        incoming_stock=product.incoming_stock,
        back_in_stock_date=domain.format_date(product.back_in_stock_date),
        status=domain.product_status(product.stock, product.threshold, settings.low_stock_level) if assigned else "",
        name=product.name,
        sku=product.sku,
        version=product.version,
    )
    if product.threshold is not None:
        state.threshold = product.threshold
        state.salable_qty = product.stock + product.threshold
    return state


@dataclass
class ChangeSet:
    """What one transaction writes: changed product rows, ledger rows, report rows, events.

    Events that name a ledger id are built in `flush`, once the ledger insert returned ids.
    """

    settings: dict[str, StoreSettingsRow]
    now: dt.datetime = field(default_factory=utcnow)
    products: dict[int, ProductRow] = field(default_factory=dict)
    ledger_rows: list[dict[str, Any]] = field(default_factory=list)
    report_rows: list[dict[str, Any]] = field(default_factory=list)
    # (store_hash, event_type, payload or builder(ledger_ids_by_key) -> payload)
    events: list[tuple[str, str, Any]] = field(default_factory=list)

    def settings_for(self, store_hash: str) -> StoreSettingsRow:
        return self.settings.get(store_hash) or StoreSettingsRow(store_hash)

    def record(self, product: ProductRow, *, kind: str, new_stock: int, source: str, actor: str, key: str,
               request_hash: str = "", absolute: int | None = None, note: str = "",
               sellable_before: bool | None = None, **order_fields: Any) -> dict[str, Any]:
        """Apply a stock change to `product` in memory and queue its ledger row and events."""
        before = product.stock
        was_sellable = sellable_before if sellable_before is not None else (
            product.salable is None or product.salable > 0)
        product.stock = new_stock
        product.version += 1
        product.updated_at = self.now
        self.products[product.id] = product
        row = {
            "store_hash": product.store_hash, "product_id": product.product_id, "variant_id": None,
            "location_id": None, "kind": kind, "delta": new_stock - before, "absolute": absolute,
            "stock_before": before, "stock_after": new_stock, "source": source, "actor": actor[:255],
            "idempotency_key": key or f"auto:{uuid.uuid4()}", "request_hash": request_hash, "order_id": None,
            "line_id": None, "quantity": None, "backordered_qty": 0, "over_threshold": False, "note": note,
            "created_at": product.updated_at,
        }
        row.update(order_fields)
        self.ledger_rows.append(row)
        settings = self.settings_for(product.store_hash)
        state = product_state(product, settings)
        ledger_key = row["idempotency_key"]

        def stock_changed(ids: dict[str, int]) -> Message:
            payload = events_pb.StockChanged(
                product=state, before=before, after=new_stock, delta=new_stock - before, source=source, kind=kind,
                status=state.status, ledger_id=ids.get(ledger_key, 0), idempotency_key=ledger_key,
            )
            if state.HasField("salable_qty"):
                payload.salable_qty = state.salable_qty
            return payload

        self.events.append((product.store_hash, "stock.changed", stock_changed))
        transition = domain.availability_event(None, product.salable, was_sellable=was_sellable)
        if transition == "product.sold_out":
            self.events.append((product.store_hash, transition, events_pb.ProductSoldOut(product=state)))
        elif transition == "product.back_in_stock":
            self.events.append((product.store_hash, transition, events_pb.ProductBackInStock(product=state)))
        return row

    async def flush(self, uow: UnitOfWork, *, keys_checked: bool = True) -> dict[str, int]:
        """Write everything; returns ledger ids by idempotency key.

        With keys_checked=False the caller did not read the keys first: the ledger insert
        skips existing keys, and if any was skipped KeyRaced is raised (the caller rolls
        back and runs again, reading the keys)."""
        await bulk.update_rows(uow, assigned_products, "id", self._product_rows())
        ids: dict[str, int] = {}
        allocated = await bulk.allocate_ids(uow, stock_ledger, len(self.ledger_rows))
        if allocated is not None:
            for row, ledger_id in zip(self.ledger_rows, allocated, strict=True):
                row["id"] = ledger_id
            try:
                await bulk.copy_rows(uow, stock_ledger, self.ledger_rows)
            except bulk.DuplicateKey as exc:
                raise KeyRaced() from exc
            ids = {row["idempotency_key"]: row["id"] for row in self.ledger_rows}
        elif self.ledger_rows:
            if keys_checked:
                statement = stock_ledger.insert().returning(stock_ledger.c.id, stock_ledger.c.idempotency_key,
                                                            sort_by_parameter_order=True)
            else:
                statement = insert_ignore(uow.dialect, stock_ledger, ["store_hash", "idempotency_key"]).returning(
                    stock_ledger.c.id, stock_ledger.c.idempotency_key)
            result = await uow.conn.execute(statement, self.ledger_rows)
            ids = {row.idempotency_key: row.id for row in result}
            if len(ids) != len(self.ledger_rows):
                raise KeyRaced()
        await bulk.copy_rows(uow, backorder_report, self.report_rows)
        built = [(store, kind, payload(ids) if callable(payload) else payload) for store, kind, payload in self.events]
        await bulk.add_events_copy(uow, outbox, SERVICE, built)
        return ids

    async def flush_small(self, uow: UnitOfWork, *, keys_checked: bool = True) -> dict[str, int]:
        """`flush` for a change set of a few rows (an order batch). On PostgreSQL the ledger
        ids are drawn first, then every row goes in with one statement
        (bulk.write_in_one_statement) instead of a COPY or UPDATE per table: the same rows
        and events, and KeyRaced if a ledger key already exists, as `flush` raises there."""
        if uow.dialect != "postgresql":
            return await self.flush(uow, keys_checked=keys_checked)
        allocated = await bulk.allocate_ids(uow, stock_ledger, len(self.ledger_rows)) or []
        for row, ledger_id in zip(self.ledger_rows, allocated, strict=True):
            row["id"] = ledger_id
        ids = {row["idempotency_key"]: row["id"] for row in self.ledger_rows}
        events = [(store, kind, payload(ids) if callable(payload) else payload)
                  for store, kind, payload in self.events]
        try:
            await bulk.write_in_one_statement(uow, (assigned_products, "id", self._product_rows()), [
                (stock_ledger, self.ledger_rows), (backorder_report, self.report_rows),
                (outbox, bulk.outbox_rows(SERVICE, events))])
        except bulk.DuplicateKey as exc:
            raise KeyRaced() from exc
        uow.wrote_events = uow.wrote_events or bool(events)
        return ids

    def _product_rows(self) -> list[dict[str, Any]]:
        return [{
            "id": p.id, "stock": p.stock, "threshold": p.threshold, "incoming_stock": p.incoming_stock,
            "back_in_stock_date": p.back_in_stock_date, "name": p.name, "sku": p.sku, "category_key": p.category_key,
            "brand_id": p.brand_id, "version": p.version, "updated_at": p.updated_at,
        } for p in self.products.values()]


class KeyRaced(Exception):
    """An idempotency key was written by a concurrent transaction after this one began."""


def _is_retryable(exc: DBAPIError) -> bool:
    """Deadlock / serialization failure / unique race: run the transaction again."""
    if isinstance(exc, IntegrityError):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return sqlstate in {"40P01", "40001"}


def _source_name(source: str, default: str) -> str:
    return source if source in domain.SOURCES else default


# ---------------------------------------------------------------- the batcher

class OrderBatcher:
    """Applies concurrent ApplyOrder calls together (group commit).

    Up to `workers` transactions run at a time. A call that arrives while they are all
    busy waits, and the next transaction takes every waiting call (up to `max_batch`).
    Calls on a product that a running transaction holds also wait for it, even with a
    transaction to spare: theirs would only wait for the row lock, so orders on one hot
    product go in a few large transactions instead of alternating large and tiny ones.
    Waiting calls are taken in arrival order, and a call that must wait holds back later
    calls on its products. Per-call outcomes are isolated: a call whose key conflicts
    gets its own error and writes nothing; the others are applied.
    """

    def __init__(self, apply_batch: Callable[[list[domain.OrderCommand]], Any], *, workers: int = 4,
                 max_batch: int = 256) -> None:
        self._apply_batch = apply_batch
        self._workers = workers
        self._max_batch = max_batch
        self._waiting: list[_Call] = []
        self._busy_products: set[tuple[str, int]] = set()
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def submit(self, command: domain.OrderCommand) -> OrderResult:
        call = _Call(command, {(command.store_hash, line.product_id) for line in command.lines},
                     asyncio.get_running_loop().create_future())
        self._waiting.append(call)
        if len(self._running) < self._workers and not call.products & self._busy_products:
            self._start_batches()
        return await call.future

    def _start_batches(self) -> None:
        while len(self._running) < self._workers and self._waiting and not self._stopping:
            batch: list[_Call] = []
            held_back: list[_Call] = []
            blocked = set(self._busy_products)
            for call in self._waiting:
                if call.future.done():
                    continue
                if len(batch) < self._max_batch and not call.products & blocked:
                    batch.append(call)
                else:
                    held_back.append(call)
                    blocked |= call.products
            self._waiting = held_back
            if not batch:
                return
            products = set().union(*(call.products for call in batch))
            self._busy_products |= products
            task = asyncio.create_task(self._run(batch, products), name="order-batch")
            self._running.add(task)

    async def _run(self, batch: list[_Call], products: set[tuple[str, int]]) -> None:
        try:
            outcomes = await self._apply_batch([call.command for call in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
            outcomes = [exc] * len(batch)
        finally:
            self._busy_products -= products
            self._running.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._start_batches()
        for call, outcome in zip(batch, outcomes, strict=True):
            if call.future.done():
                continue
            if isinstance(outcome, BaseException):
                call.future.set_exception(outcome)
            else:
                call.future.set_result(outcome)

    async def stop(self) -> None:
        self._stopping = True
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


@dataclass
class _Call:
    command: domain.OrderCommand
    products: set[tuple[str, int]]
    future: asyncio.Future[Any]


# ---------------------------------------------------------------- handlers

class InventoryHandlers:
    def __init__(self, db: Database, entitlements: Entitlements, *,
                 today: Callable[[str], dt.date] | None = None, batch_workers: int = 4) -> None:
        self.db = db
        self.entitlements = entitlements
        self._today = today
        self.batcher = OrderBatcher(self._apply_order_batch, workers=batch_workers)
        self._settings_cache: dict[str, tuple[StoreSettingsRow, float]] = {}
        self.ledger_written = asyncio.Event()

    # -- helpers

    def today_in(self, timezone: str) -> dt.date:
        if self._today is not None:
            return self._today(timezone)
        return dt.datetime.now(_zone(timezone)).date()

    async def _run(self, body: Callable[[UnitOfWork], Any], attempts: int = 4) -> Any:
        """Run `body(uow)` in a transaction, again on deadlock/serialization failure."""
        for attempt in range(attempts):
            try:
                async with self.db.unit_of_work() as uow:
                    result = await body(uow)
                    await uow.commit()
                self._notify_ledger()
                return result
            except (DBAPIError, KeyRaced) as exc:
                if attempt == attempts - 1 or (isinstance(exc, DBAPIError) and not _is_retryable(exc)):
                    raise
                log.info("retrying transaction after %s", type(exc).__name__)
        raise AssertionError("unreachable")

    def _notify_ledger(self) -> None:
        self.ledger_written.set()
        self.ledger_written = asyncio.Event()

    # -- settings

    async def get_settings(self, store_hash: str) -> StoreSettingsRow:
        domain.check_store_hash(store_hash)
        async with self.db.read() as conn:
            return await repository.get_settings(conn, store_hash)

    async def update_settings(self, store_hash: str, changes: dict[str, Any]) -> StoreSettingsRow:
        """Locks the store's settings row."""
        domain.check_store_hash(store_hash)
        errors: list[dict[str, Any]] = []
        if "low_stock_level" in changes:
            domain.check_quantity(errors, None, "low_stock_level", changes["low_stock_level"])
        if "timezone" in changes:
            try:
                _zone(changes["timezone"], strict=True)
            except ValidationFailed:
                errors.append(domain.field_error(None, "timezone", "invalid", "must be an IANA time zone"))
        domain.raise_if_errors(errors)

        async def body(uow: UnitOfWork) -> StoreSettingsRow:
            current = await repository.lock_store(uow.conn, uow.dialect, store_hash)
            updated = replace(current, **changes)
            await repository.save_settings(uow.conn, updated)
            return updated

        updated = await self._run(body)
        self._settings_cache.pop(store_hash, None)
        return updated

    # -- assign / edit / unassign

    async def assign(self, store_hash: str, raw_items: Sequence[dict[str, Any]], *, actor: str = "",
                     source: str = "admin") -> list[ProductRow]:
        """All or nothing. Asks billing for the entitlement first (UNAVAILABLE if it does not
        answer), then locks the store row so concurrent assigns are counted one at a time.
        Raises ValidationFailed, AlreadyAssigned, PlanLimitReached."""
        domain.check_store_hash(store_hash)
        commands = domain.validate_assign_items(raw_items)
        entitlement = await self.entitlements.get(store_hash)
        source = _source_name(source, "admin")

        async def body(uow: UnitOfWork) -> list[ProductRow]:
            settings = await repository.lock_store(uow.conn, uow.dialect, store_hash)
            existing = await repository.load_products(uow.conn, store_hash, [c.product_id for c in commands])
            if existing:
                errors = [domain.field_error(i, "product_id", "already_assigned",
                                             f"product {c.product_id} is already assigned", product_id=c.product_id)
                          for i, c in enumerate(commands) if c.product_id in existing]
                raise domain.AlreadyAssigned(f"items[{errors[0]['item']}].product_id: {errors[0]['message']}",
                                             details={"errors": errors})
            assigned = await repository.count_assigned(uow.conn, store_hash)
            if entitlement.limit is not None and assigned + len(commands) > entitlement.limit:
                raise domain.PlanLimitReached(limit=entitlement.limit, assigned=assigned, requested=len(commands),
                                              plan=entitlement.plan)
            return await self._insert_assigned(uow, settings, commands, actor=actor, source=source,
                                               key_prefix=f"assign:{uuid.uuid4()}")

        return await self._run(body)

    async def _insert_assigned(self, uow: UnitOfWork, settings: StoreSettingsRow,
                               commands: Sequence[domain.AssignCommand], *, actor: str, source: str,
                               key_prefix: str) -> list[ProductRow]:
        now = utcnow()
        # Versions start at the assignment's microsecond and grow by 1 per change, so a
        # re-assigned product's views are newer than those of its previous assignment.
        first_version = time.time_ns() // 1000
        rows = [{
            "store_hash": settings.store_hash, "product_id": c.product_id, "variant_id": None, "location_id": None,
            "name": c.name, "sku": c.sku, "stock": c.stock, "threshold": c.threshold,
            "incoming_stock": c.incoming_stock, "back_in_stock_date": c.back_in_stock_date,
            "category_key": domain.category_key(c.category_ids), "brand_id": c.brand_id, "version": first_version,
            "assigned_at": now, "updated_at": now,
        } for c in commands]
        allocated = await bulk.allocate_ids(uow, assigned_products, len(rows))
        if allocated is not None:
            for row, product_row_id in zip(rows, allocated, strict=True):
                row["id"] = product_row_id
            try:
                await bulk.copy_rows(uow, assigned_products, rows)
            except bulk.DuplicateKey as exc:
                raise KeyRaced() from exc
        else:
            result = await uow.conn.execute(
                assigned_products.insert().returning(assigned_products.c.id, sort_by_parameter_order=True), rows)
            for row, inserted in zip(rows, result, strict=True):
                row["id"] = inserted.id
        products = [ProductRow(**{k: v for k, v in row.items() if k not in ("variant_id", "location_id")})
                    for row in rows]
        ledger_rows = []
        events: list[tuple[str, str, Message]] = []
        for product in products:
            key = f"{key_prefix}:{product.product_id}"
            ledger_rows.append({
                "store_hash": product.store_hash, "product_id": product.product_id, "kind": "assign",
                "delta": product.stock, "absolute": product.stock, "stock_before": 0, "stock_after": product.stock,
                "source": source, "actor": actor[:255], "idempotency_key": key, "request_hash": "",
                "note": "", "created_at": now,
            })
            events.append((product.store_hash, "product.assigned",
                           events_pb.ProductAssigned(product=product_state(product, settings), actor=actor)))
        await bulk.copy_rows(uow, stock_ledger, ledger_rows)
        await bulk.add_events_copy(uow, outbox, SERVICE, events)
        return products

    async def update(self, store_hash: str, raw_items: Sequence[dict[str, Any]], *, actor: str = "",
                     source: str = "admin") -> list[ProductRow]:
        """All or nothing. Locks the products in primary-key order. Unknown products are
        ValidationFailed naming the item."""
        domain.check_store_hash(store_hash)
        commands = domain.validate_update_items(raw_items)
        source = _source_name(source, "admin")

        async def body(uow: UnitOfWork) -> list[ProductRow]:
            locked = await repository.lock_products(uow.conn, store_hash, [c.product_id for c in commands])
            _require_assigned(commands, locked)
            settings = await repository.get_settings(uow.conn, store_hash)
            changes = ChangeSet({store_hash: settings})
            for command in commands:
                product = locked[command.product_id]
                self._apply_update(changes, product, command, actor=actor, source=source)
            await changes.flush(uow)
            return [locked[c.product_id] for c in commands]

        return await self._run(body)

    @staticmethod
    def _apply_update(changes: ChangeSet, product: ProductRow, command: domain.UpdateCommand, *, actor: str,
                      source: str, key: str = "", overwrite: Sequence[str] | None = None) -> None:
        values = command.changes()
        if overwrite is not None:
            values = {k: v for k, v in values.items() if k not in domain.OVERWRITABLE or k in overwrite}
        sellable_before = product.salable is None or product.salable > 0
        edited = []
        for name in ("threshold", "incoming_stock", "back_in_stock_date", "name", "sku", "brand_id"):
            if name in values and getattr(product, name) != values[name]:
                setattr(product, name, values[name])
                edited.append(name)
        if "category_ids" in values:
            new_key = domain.category_key(values["category_ids"])
            if new_key != product.category_key:
                product.category_key = new_key
                edited.append("category_ids")
        if "stock" in values:
            changes.record(product, kind="set", new_stock=values["stock"], absolute=values["stock"], source=source,
                           actor=actor, key=key, sellable_before=sellable_before,
                           note=("edited: " + ", ".join(edited)) if edited else "")
        elif edited:
            changes.record(product, kind="edit", new_stock=product.stock, source=source, actor=actor, key=key,
                           sellable_before=sellable_before, note="edited: " + ", ".join(edited))

    async def unassign(self, store_hash: str, product_ids: Sequence[int], *, restore_tracking: bool,
                       disable_product: bool, actor: str = "") -> list[ProductRow]:
        """All or nothing: every id must be assigned. Locks the rows, deletes them, writes an
        unassign ledger entry and product.unassigned (with the write-back options and stock)."""
        domain.check_store_hash(store_hash)
        domain.check_count(len(product_ids), domain.MAX_BULK_ITEMS, "product_ids")
        errors: list[dict[str, Any]] = []
        for index, product_id in enumerate(product_ids):
            domain.check_product_id(errors, index, product_id)
        domain.check_duplicates(errors, list(product_ids))
        domain.raise_if_errors(errors)

        async def body(uow: UnitOfWork) -> list[ProductRow]:
            locked = await repository.lock_products(uow.conn, store_hash, product_ids)
            _require_assigned([domain.UpdateCommand(product_id=p) for p in product_ids], locked)
            settings = await repository.get_settings(uow.conn, store_hash)
            products = [locked[p] for p in product_ids]
            await self._unassign_locked(uow, settings, products, restore_tracking=restore_tracking,
                                        disable_product=disable_product, actor=actor)
            return products

        return await self._run(body)

    @staticmethod
    async def _unassign_locked(uow: UnitOfWork, settings: StoreSettingsRow, products: Sequence[ProductRow], *,
                               restore_tracking: bool, disable_product: bool, actor: str, source: str = "admin",
                               reason: str = "", key_prefix: str = "") -> None:
        """Unassign product rows the caller has locked: delete them, write one unassign ledger
        entry each (`reason` leads its note; keys `<key_prefix>:<product_id>`, random without a
        prefix) and product.unassigned (with the write-back options and stock), in the caller's
        transaction."""
        if not products:
            return
        store_hash = settings.store_hash
        now = utcnow()
        options = f"restore_tracking={restore_tracking} disable_product={disable_product}"
        for product in products:
            product.version += 1
        for start in range(0, len(products), 500):  # SQLite caps bound parameters
            chunk = products[start:start + 500]
            await uow.conn.execute(delete(assigned_products).where(assigned_products.c.id.in_([p.id for p in chunk])))
        await uow.conn.execute(stock_ledger.insert(), [{
            "store_hash": store_hash, "product_id": p.product_id, "kind": "unassign", "delta": 0,
            "stock_before": p.stock, "stock_after": p.stock, "source": source, "actor": actor[:255],
            "idempotency_key": f"{key_prefix}:{p.product_id}" if key_prefix else f"unassign:{uuid.uuid4()}",
            "request_hash": "", "created_at": now, "note": f"{reason} ({options})" if reason else options,
        } for p in products])
        await add_events(uow, outbox, SERVICE, [
            (store_hash, "product.unassigned", events_pb.ProductUnassigned(
                product=product_state(p, settings, assigned=False), restore_tracking=restore_tracking,
                disable_product=disable_product, stock=p.stock, actor=actor))
            for p in products
        ])

    async def apply_plan_change(self, uow: UnitOfWork, store_hash: str, incoming: domain.PlanLimit, *,
                                event_id: str, policy_keep: int | None, restore_tracking: bool,
                                reason: str) -> domain.OverLimitSelection | None:
        """Handle one billing.plan.changed in the caller's transaction (the consumer's, with
        its inbox row); returns what the over-limit policy kept and unassigned, if it ran.

        Locks the store's settings row first, the same per-store mutex assigns and imports
        take, so no assign slips in between the count and the unassigns. Records the newest
        plan change of the store (store_plans); with a policy (`policy_keep`, rule
        keep_earliest_assigned) locks every product row of the store in primary-key order
        and unassigns those beyond the limit through the same path as UnassignProducts
        (actor and source "billing", the product never disabled). The limit is the newest
        known plan's, so a downgrade handled after a later upgrade unassigns nothing the
        upgrade allows; a store within the limit is left untouched, so a replay changes
        nothing."""
        settings = await repository.lock_store(uow.conn, uow.dialect, store_hash)
        known = await repository.get_store_plan(uow.conn, store_hash)
        newest = domain.newest_plan_limit(known, incoming)
        if newest is incoming:
            await repository.save_store_plan(uow.conn, store_hash, incoming, event_id, exists=known is not None)
        if policy_keep is None:
            return None
        keep = domain.over_limit_keep(policy_keep, incoming, newest)
        if keep is None:
            return None
        products = await repository.lock_store_products(uow.conn, store_hash)
        selection = domain.keep_earliest_assigned([(p.product_id, p.assigned_at) for p in products], keep)
        by_id = {p.product_id: p for p in products}
        await self._unassign_locked(uow, settings, [by_id[p] for p in selection.unassigned],
                                    restore_tracking=restore_tracking, disable_product=False, actor="billing",
                                    source="billing", reason=domain.downgrade_note(reason, newest.plan, keep),
                                    key_prefix=f"plan:{event_id}")
        return selection

    # -- reads

    async def get_product(self, store_hash: str, product_id: int, ledger_limit: int = 20
                          ) -> tuple[ProductRow, list[Any], StoreSettingsRow]:
        domain.check_store_hash(store_hash)
        async with self.db.read() as conn:
            found = await repository.load_products(conn, store_hash, [product_id])
            if product_id not in found:
                raise NotFound(f"product {product_id} is not assigned", details={"product_id": product_id})
            entries, _ = await repository.list_ledger(conn, store_hash, product_id, 0,
                                                      min(max(ledger_limit or 20, 1), 200))
            settings = await repository.get_settings(conn, store_hash)
        return found[product_id], entries, settings

    async def list_products(self, store_hash: str, *, q: str = "", status: str | None = None, page: int = 1,
                            limit: int = 50, product_ids: Sequence[int] = ()
                            ) -> tuple[list[ProductRow], int, StoreSettingsRow, int, int]:
        domain.check_store_hash(store_hash)
        page, limit = _paging(page, limit, 250)
        async with self.db.read() as conn:
            settings = await repository.get_settings(conn, store_hash)
            products, total = await repository.list_products(
                conn, store_hash, q=q, status=status, low_stock_level=settings.low_stock_level,
                product_ids=product_ids, offset=(page - 1) * limit, limit=limit)
        return products, total, settings, page, limit

    async def list_ledger(self, store_hash: str, product_id: int = 0, page: int = 1, limit: int = 50
                          ) -> tuple[list[Any], int]:
        domain.check_store_hash(store_hash)
        page, limit = _paging(page, limit, 500)
        async with self.db.read() as conn:
            return await repository.list_ledger(conn, store_hash, product_id, (page - 1) * limit, limit)

    async def ledger_after(self, store_hash: str, cursor: int, limit: int = 500) -> list[Any]:
        async with self.db.read() as conn:
            return await repository.ledger_after(conn, store_hash, cursor, limit)

    # -- orders

    async def apply_order(self, command: domain.OrderCommand) -> OrderResult:
        """Applies each line once per (order, line); see OrderBatcher and _apply_orders_in."""
        return await self.batcher.submit(command)

    async def _apply_order_batch(self, commands: list[domain.OrderCommand]) -> list[Any]:
        """First optimistically (no key read: new lines are the common case), then, if a
        key turned out to exist, again reading the keys under the locks."""
        for optimistic in (True, False):
            try:
                return await self._run(lambda uow, o=optimistic: self._apply_orders_in(uow, commands, optimistic=o),
                                       attempts=1 if optimistic else 3)
            except KeyRaced:
                continue
            except DBAPIError as exc:
                if not _is_retryable(exc):
                    raise
        # Still racing (only possible across replicas): one call per transaction.
        results: list[Any] = []
        for command in commands:
            try:
                results.extend(await self._run(lambda uow, c=command: self._apply_orders_in(uow, [c])))
            except DomainError as exc:
                results.append(exc)
        return results

    async def _settings_for(self, conn: Any, store_hashes: set[str]) -> dict[str, StoreSettingsRow]:
        """Store settings for event payloads, cached briefly (they change rarely, and only
        the low-stock status in events depends on them)."""
        now = time.monotonic()
        missing = {s for s in store_hashes if s not in self._settings_cache or self._settings_cache[s][1] < now}
        if missing:
            for store_hash, settings in (await repository.get_settings_many(conn, missing)).items():
                self._settings_cache[store_hash] = (settings, now + SETTINGS_CACHE_S)
        return {s: self._settings_cache[s][0] for s in store_hashes}

    async def _apply_orders_in(self, uow: UnitOfWork, commands: list[domain.OrderCommand], *,
                               optimistic: bool = False) -> list[Any]:
        """Locks every product of every line (PK order), then reads the line keys (unless
        optimistic: then the ledger insert detects an existing key and raises KeyRaced), then
        applies each call's new lines in order. Returns one OrderResult or DomainError per call."""
        locked = await repository.lock_products_many(
            uow.conn, ((c.store_hash, line.product_id) for c in commands for line in c.lines))
        existing: dict[tuple[str, str], Any] = {}
        if not optimistic:
            keys = [(c.store_hash, domain.order_line_key(c.order_id, line.line_id))
                    for c in commands for line in c.lines]
            existing = await repository.ledger_by_keys(uow.conn, keys)
        settings = await self._settings_for(uow.conn, {c.store_hash for c in commands})
        changes = ChangeSet(settings)
        applied_in_batch: dict[tuple[str, str], tuple[str, LineResult]] = {}
        outcomes: list[Any] = []
        for command in commands:
            conflict = None
            for line in command.lines:
                key = (command.store_hash, domain.order_line_key(command.order_id, line.line_id))
                earlier = existing.get(key)
                if earlier is not None and earlier.request_hash != line.fingerprint():
                    conflict = key[1]
                elif key in applied_in_batch and applied_in_batch[key][0] != line.fingerprint():
                    conflict = key[1]
                if conflict:
                    break
            if conflict:
                outcomes.append(domain.IdempotencyConflict(conflict, order_id=command.order_id))
                continue
            lines = []
            backordered_lines = []
            for line in command.lines:
                key = (command.store_hash, domain.order_line_key(command.order_id, line.line_id))
                if key in existing:
                    lines.append(_line_from_ledger(line, existing[key]))
                    continue
                if key in applied_in_batch:
                    lines.append(replace(applied_in_batch[key][1], replayed=True))
                    continue
                product = locked.get((command.store_hash, line.product_id))
                if product is None:
                    lines.append(LineResult(line.line_id, line.product_id, applied=False, quantity=line.quantity))
                    continue
                split = domain.split_line(product.stock, line.quantity, product.threshold)
                fingerprint = line.fingerprint()
                changes.record(
                    product, kind="order", new_stock=split.stock_after, source="order", actor="",
                    key=key[1], request_hash=fingerprint, order_id=command.order_id, line_id=line.line_id,
                    quantity=line.quantity, backordered_qty=split.backordered, over_threshold=split.over_threshold,
                )
                result = LineResult(line.line_id, line.product_id, True, line.quantity, split.backordered,
                                    split.over_threshold, split.stock_before, split.stock_after)
                applied_in_batch[key] = (fingerprint, result)
                lines.append(result)
                if split.backordered > 0:
                    backordered_lines.append(events_pb.BackorderedLine(
                        line_id=line.line_id, product_id=line.product_id, quantity=line.quantity,
                        backordered_qty=split.backordered, over_threshold=split.over_threshold,
                        name=line.name or product.name, sku=line.sku or product.sku))
                    changes.report_rows.append({
                        "store_hash": command.store_hash, "order_id": command.order_id, "line_id": line.line_id,
                        "product_id": line.product_id, "product_name": (line.name or product.name)[:255],
                        "sku": (line.sku or product.sku)[:255], "purchased_qty": line.quantity,
                        "backordered_qty": split.backordered, "order_email": command.order_email[:255],
                        "order_date": command.order_date,
                        "category_key": domain.category_key(line.category_ids) or product.category_key,
                        "brand_id": line.brand_id or product.brand_id, "created_at": utcnow(),
                    })
            if backordered_lines:
                order_event = events_pb.OrderBackordered(order_id=command.order_id, order_email=command.order_email,
                                                         lines=backordered_lines)
                order_event.order_date.FromDatetime(command.order_date)
                changes.events.append((command.store_hash, "order.backordered", order_event))
            outcomes.append(OrderResult(command.order_id, tuple(lines)))
        await changes.flush_small(uow, keys_checked=not optimistic)
        return outcomes

    async def return_order_lines(self, store_hash: str, order_id: str, reason: str,
                                 line_ids: Sequence[str] = ()) -> ReturnResult:
        """Returns each applied line of the order once (key return:<order>:<line>). Locks
        the products in PK order; lines of products no longer assigned are skipped."""
        domain.check_store_hash(store_hash)
        if not order_id:
            raise ValidationFailed("order_id: required", [domain.field_error(None, "order_id", "required", "required")])

        async def body(uow: UnitOfWork) -> ReturnResult:
            settings = await repository.get_settings(uow.conn, store_hash)
            if not settings.return_stock_on_cancel:
                return ReturnResult(order_id, (), False)
            entries = await repository.ledger_for_order(uow.conn, store_hash, order_id)
            order_lines = {e.line_id: e for e in entries if e.kind == "order"}
            wanted = list(line_ids) or list(order_lines)
            unknown = [line_id for line_id in wanted if line_id not in order_lines]
            if unknown:
                raise ValidationFailed(f"line_ids: line {unknown[0]} was not applied for order {order_id}", [
                    domain.field_error(None, "line_ids", "not_applied", f"line {u} was not applied") for u in unknown])
            locked = await repository.lock_products(uow.conn, store_hash,
                                                    [order_lines[line_id].product_id for line_id in wanted])
            keys = [(store_hash, domain.return_line_key(order_id, line_id)) for line_id in wanted]
            returned = await repository.ledger_by_keys(uow.conn, keys)
            changes = ChangeSet({store_hash: settings})
            results = []
            for line_id in wanted:
                line = order_lines[line_id]
                key = domain.return_line_key(order_id, line_id)
                if (store_hash, key) in returned:
                    earlier = returned[(store_hash, key)]
                    results.append(ReturnedLineResult(line_id, line.product_id, earlier.delta, earlier.stock_before,
                                                      earlier.stock_after, True))
                    continue
                product = locked.get(line.product_id)
                if product is None:
                    continue
                before = product.stock
                changes.record(product, kind="return", new_stock=domain.return_line(before, line.quantity),
                               source="order", actor=reason[:255], key=key, order_id=order_id, line_id=line_id,
                               quantity=line.quantity, note=f"returned: {reason}")
                results.append(ReturnedLineResult(line_id, line.product_id, line.quantity, before, product.stock,
                                                  False))
            fresh = [r.line_id for r in results if not r.replayed]
            if fresh:
                await uow.conn.execute(delete(backorder_report).where(
                    backorder_report.c.store_hash == store_hash, backorder_report.c.order_id == order_id,
                    backorder_report.c.line_id.in_(fresh)))
            await changes.flush(uow)
            return ReturnResult(order_id, tuple(results), True)

        return await self._run(body)

    # -- stock commands (admin, BigCommerce, ERP)

    async def apply_stock_items(self, store_hash: str, items: Sequence[StockItem], *, source: str, actor: str = "",
                                require_keys: bool = False) -> list[StockItemResult]:
        """Each item gets its own result; invalid/unknown/conflicting items write nothing,
        the others are applied in one transaction (products locked in PK order)."""
        domain.check_store_hash(store_hash)
        domain.check_count(len(items), domain.MAX_ERP_ITEMS)
        source = _source_name(source, "admin")
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
                        entry = earlier if earlier is not None else _Entry(in_batch[key][1])
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
                results[index] = StockItemResult(item, "applied", entry=_Entry(row), product=product,
                                                 low_stock_level=settings.low_stock_level)
            ids = await changes.flush(uow)
            for result in results.values():
                if result.status == "applied" and isinstance(result.entry, _Entry):
                    result.entry.id = ids.get(result.entry.idempotency_key, 0)
            return [results[i] for i in range(len(items))]

        return await self._run(body)

    async def apply_stock_item(self, store_hash: str, item: StockItem, *, source: str, actor: str = ""
                               ) -> StockItemResult:
        """One item; its error (validation, unknown product, key conflict) is raised."""
        (result,) = await self.apply_stock_items(store_hash, [item], source=source, actor=actor)
        if result.error is not None:
            raise result.error
        return result

    # -- receipts

    async def apply_due_receipts(self, limit: int = 500) -> int:
        """Receives every scheduled incoming stock whose date (in the store's zone) has come.

        Each receipt is one conditional change on a locked row (the date and quantity must
        still be the scheduled ones) with the ledger key receipt:<product>:<date>:<version>,
        so it is applied once even when several replicas or a restart run it again."""
        applied = 0
        horizon = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
        if self._today is not None:
            horizon = max(horizon, self._today("UTC") + dt.timedelta(days=1))
        async with self.db.read() as conn:
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

            if await self._run(body):
                applied += 1
        return applied

    async def run_receipts(self, interval_s: float) -> None:
        """The scheduler: a pass at start (catching up after downtime), then every interval."""
        while True:
            try:
                count = await self.apply_due_receipts(limit=RECEIPT_BATCH)
                if count:
                    log.info("applied %d due receipt(s)", count)
                if count >= RECEIPT_BATCH:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next pass retries
                log.exception("receipt pass failed")
            await asyncio.sleep(interval_s)

    # -- import

    async def import_products(self, store_hash: str, *, mode: str, overwrite: Sequence[str],
                              rows: Sequence[domain.ImportRowInput], dry_run: bool, actor: str = "",
                              import_id: str = "") -> ImportOutcome:
        """Validates every row (format, then against the store and the plan); applies all
        rows set-based in one transaction, or none if any row is bad. Locks the store row."""
        domain.check_store_hash(store_hash)
        if mode not in ("assign", "update"):
            raise ValidationFailed("mode: must be assign or update",
                                   [domain.field_error(None, "mode", "invalid", "must be assign or update")])
        bad = [o for o in overwrite if o not in domain.OVERWRITABLE]
        if bad:
            raise ValidationFailed(f"overwrite: unknown column {bad[0]!r}",
                                   [domain.field_error(None, "overwrite", "invalid", f"unknown column {bad[0]!r}")])
        domain.check_count(len(rows), domain.MAX_IMPORT_ROWS, "rows")
        overwrite = list(overwrite) or list(domain.OVERWRITABLE)
        parsed = domain.parse_import_rows(rows, mode=mode)
        entitlement = await self.entitlements.get(store_hash) if mode == "assign" else None
        import_id = import_id or str(uuid.uuid4())

        async def body(uow: UnitOfWork) -> ImportOutcome:
            settings = await repository.lock_store(uow.conn, uow.dialect, store_hash)
            assigned = await repository.assigned_ids(uow.conn, store_hash)
            errors = list(parsed.errors)
            for value in parsed.values:
                if mode == "assign" and value.product_id in assigned:
                    errors.append({"row": value.row, "column": "product_id", "code": "already_assigned",
                                   "message": f"product {value.product_id} is already assigned"})
                if mode == "update" and value.product_id not in assigned:
                    errors.append({"row": value.row, "column": "product_id", "code": "not_assigned",
                                   "message": f"product {value.product_id} is not assigned"})
            if mode == "assign" and entitlement is not None and entitlement.limit is not None:
                room = entitlement.limit - len(assigned)
                for value in parsed.values[max(room, 0):]:
                    errors.append({"row": value.row, "column": "product_id", "code": "plan_limit_reached",
                                   "message": f"over the {entitlement.plan!r} plan's limit of {entitlement.limit}"})
            errors.sort(key=lambda e: (e["row"], domain.IMPORT_COLUMNS.index(e["column"])
                                       if e["column"] in domain.IMPORT_COLUMNS else 99))
            if errors or dry_run:
                return ImportOutcome(len(rows), 0, errors, dry_run)
            if mode == "assign":
                await _import_assign(uow, settings, parsed.values, actor=actor, import_id=import_id)
            else:
                await _import_update(uow, settings, parsed.values, overwrite=overwrite, actor=actor,
                                     import_id=import_id)
            return ImportOutcome(len(rows), len(parsed.values), [], False)

        # One attempt: the store lock serialises imports and assigns, so a taken ledger key
        # is not a race to retry but this import id applied before (a retried call).
        try:
            return await self._run(body, attempts=1)
        except IntegrityError as exc:
            async with self.db.read() as conn:
                applied_before = await repository.ledger_key_prefix_used(conn, store_hash, f"import:{import_id}:")
            if applied_before:
                raise domain.ImportAlreadyApplied(import_id) from exc
            raise

    # -- report

    async def report_filter(self, store_hash: str, *, q: str, from_date: str, to_date: str, category_id: int,
                            brand_id: int) -> tuple[list[Any], ZoneInfo]:
        domain.check_store_hash(store_hash)
        errors: list[dict[str, Any]] = []
        start_day = domain.check_date(errors, None, "from", from_date)
        end_day = domain.check_date(errors, None, "to", to_date)
        if start_day and end_day and end_day < start_day:
            errors.append(domain.field_error(None, "to", "out_of_range", "must not be before from"))
        domain.raise_if_errors(errors)
        async with self.db.read() as conn:
            settings = await repository.get_settings(conn, store_hash)
        zone = _zone(settings.timezone)
        # Bounds in UTC: SQLite stores timestamps as UTC text without an offset.
        start = dt.datetime.combine(start_day, dt.time(), zone).astimezone(dt.UTC) if start_day else None
        end = (dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
               if end_day else None)
        conditions = repository.report_conditions(store_hash, q=q, start=start, end=end, category_id=category_id,
                                                  brand_id=brand_id)
        return conditions, zone

    async def list_report(self, store_hash: str, *, q: str = "", from_date: str = "", to_date: str = "",
                          category_id: int = 0, brand_id: int = 0, page: int = 1, limit: int = 50
                          ) -> tuple[list[Any], int, ZoneInfo, int, int]:
        conditions, zone = await self.report_filter(store_hash, q=q, from_date=from_date, to_date=to_date,
                                                    category_id=category_id, brand_id=brand_id)
        page, limit = _paging(page, limit, 500)
        async with self.db.read() as conn:
            rows, total = await repository.list_report(conn, conditions, (page - 1) * limit, limit)
        return rows, total, zone, page, limit

    async def export_report(self, store_hash: str, *, q: str = "", from_date: str = "", to_date: str = "",
                            category_id: int = 0, brand_id: int = 0, page_size: int = 1000) -> AsyncIterator[bytes]:
        """CSV chunks: the header, then one chunk per page of rows (formula cells neutralised)."""
        conditions, zone = await self.report_filter(store_hash, q=q, from_date=from_date, to_date=to_date,
                                                    category_id=category_id, brand_id=brand_id)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(REPORT_COLUMNS)
        yield buffer.getvalue().encode()
        after = 0
        while True:
            async with self.db.read() as conn:
                rows = await repository.report_after(conn, conditions, after, page_size)
            if not rows:
                return
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            for row in rows:
                writer.writerow([domain.neutralise_cell(str(cell)) for cell in report_csv_row(row, zone)])
            yield buffer.getvalue().encode()
            after = rows[-1].id

    # -- API tokens

    async def create_token(self, store_hash: str, name: str) -> tuple[Any, str]:
        domain.check_store_hash(store_hash)
        if not name or len(name) > 255:
            raise ValidationFailed("name: required (at most 255 characters)",
                                   [domain.field_error(None, "name", "required", "required (at most 255 characters)")])
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = {"id": str(uuid.uuid4()), "store_hash": store_hash, "name": name, "token_hash": hash_token(plaintext),
               "prefix": plaintext[:10], "created_at": utcnow(), "last_used_at": None, "revoked_at": None}

        async def body(uow: UnitOfWork) -> None:
            await uow.conn.execute(api_tokens.insert().values(**row))

        await self._run(body)
        return _Entry(row), plaintext

    async def list_tokens(self, store_hash: str, include_revoked: bool = False) -> list[Any]:
        domain.check_store_hash(store_hash)
        query = select(api_tokens).where(api_tokens.c.store_hash == store_hash).order_by(api_tokens.c.created_at)
        if not include_revoked:
            query = query.where(api_tokens.c.revoked_at.is_(None))
        async with self.db.read() as conn:
            return list((await conn.execute(query)).all())

    async def revoke_token(self, store_hash: str, token_id: str) -> Any:
        domain.check_store_hash(store_hash)

        async def body(uow: UnitOfWork) -> Any:
            await uow.conn.execute(update(api_tokens).where(
                api_tokens.c.id == token_id, api_tokens.c.store_hash == store_hash, api_tokens.c.revoked_at.is_(None),
            ).values(revoked_at=utcnow()))
            return (await uow.conn.execute(select(api_tokens).where(
                api_tokens.c.id == token_id, api_tokens.c.store_hash == store_hash))).first()

        row = await self._run(body)
        if row is None:
            raise NotFound(f"token {token_id} not found", details={"id": token_id})
        return row

    async def verify_token(self, token: str) -> tuple[str, str]:
        """(store_hash, token_id) of a live token; Unauthenticated otherwise."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise Unauthenticated("invalid API token")
        async with self.db.read() as conn:
            row = await repository.token_by_hash(conn, hash_token(token))
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("invalid or revoked API token")
        last_used = repository.as_utc(row.last_used_at)
        if last_used is None or utcnow() - last_used > dt.timedelta(minutes=1):
            with contextlib.suppress(DBAPIError):
                async with self.db.unit_of_work() as uow:
                    await uow.conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(
                        last_used_at=utcnow()))
                    await uow.commit()
        return row.store_hash, row.id


# ---------------------------------------------------------------- the import's apply

async def _import_assign(uow: UnitOfWork, settings: StoreSettingsRow, values: Sequence[domain.ImportRowValues], *,
                         actor: str, import_id: str) -> None:
    """Insert every row's product and its assign ledger entry set-based (through the
    import_rows temporary table) and a product.assigned event per product, in row order.
    A product assigned meanwhile by another transaction fails the unique index
    (IntegrityError: the caller runs the whole import again and reports the row)."""
    now = utcnow()
    # Versions start at the assignment's microsecond, as for an admin assign.
    version = time.time_ns() // 1000
    store_hash, low_stock_level = settings.store_hash, settings.low_stock_level
    await bulk.fill_temporary(uow, import_rows, [
        (v.row, None, v.product_id, "assign", v.name, v.sku, 0, v.stock or 0, v.stock or 0, v.threshold,
         v.incoming_stock or 0, v.back_in_stock_date, domain.category_key(v.category_ids), v.brand_id, version, "")
        for v in values])
    await uow.conn.execute(repository.insert_imported_products(store_hash, now))
    await uow.conn.execute(repository.insert_import_ledger(store_hash, actor[:255], f"import:{import_id}:", now))
    await bulk.drop_temporary(uow, import_rows)
    await bulk.add_events_copy(uow, outbox, SERVICE, (
        (store_hash, "product.assigned", events_pb.ProductAssigned(product=_import_state(
            v.product_id, v.stock or 0, v.threshold, v.incoming_stock or 0, v.back_in_stock_date, v.name, v.sku,
            version, low_stock_level), actor=actor))
        for v in values))


async def _import_update(uow: UnitOfWork, settings: StoreSettingsRow, values: Sequence[domain.ImportRowValues], *,
                         overwrite: Sequence[str], actor: str, import_id: str) -> None:
    """Lock the store's products (primary-key order), work out each row's change
    (domain.import_update) and write the changed products and their ledger entries set-based
    (through the import_rows temporary table), then stock.changed and any sold-out /
    back-in-stock event per changed product, in row order."""
    store_hash, low_stock_level = settings.store_hash, settings.low_stock_level
    locked = await repository.lock_import_products(uow.conn, store_hash, [v.product_id for v in values])
    columns = frozenset(overwrite)
    now = utcnow()
    staged = []
    for v in values:
        product = locked[v.product_id]
        change = domain.import_update(product.stock, product.threshold, product.incoming_stock,
                                      product.back_in_stock_date, v, columns)
        if change is None:
            continue
        kind, stock, threshold, incoming, date, note = change
        staged.append((v.row, product.id, v.product_id, kind, product.name, product.sku, product.stock, stock,
                       stock if kind == "set" else None, threshold, incoming, date, "", 0, product.version + 1,
                       note))
    await bulk.fill_temporary(uow, import_rows, staged)
    await uow.conn.execute(repository.update_imported_products(now))
    prefix = f"import:{import_id}:"
    ledger_ids = dict((await uow.conn.execute(repository.insert_import_ledger(
        store_hash, actor[:255], prefix, now, returning=True))).all())
    await bulk.drop_temporary(uow, import_rows)

    def events() -> Iterator[tuple[str, str, Message]]:
        for (file_row, _, product_id, kind, name, sku, before, stock, _, threshold, incoming, date, _, _, version,
             _) in staged:
            state = _import_state(product_id, stock, threshold, incoming, date, name, sku, version, low_stock_level)
            key = prefix + str(file_row)
            changed = events_pb.StockChanged(product=state, before=before, after=stock, delta=stock - before,
                                             source="import", kind=kind, status=state.status,
                                             ledger_id=ledger_ids[key], idempotency_key=key)
            if threshold is not None:
                changed.salable_qty = state.salable_qty
            yield store_hash, "stock.changed", changed
            old = locked[product_id]
            transition = domain.availability_event(None, domain.salable_qty(stock, threshold),
                                                   was_sellable=old.threshold is None or old.stock + old.threshold > 0)
            if transition == "product.sold_out":
                yield store_hash, transition, events_pb.ProductSoldOut(product=state)
            elif transition == "product.back_in_stock":
                yield store_hash, transition, events_pb.ProductBackInStock(product=state)

    await bulk.add_events_copy(uow, outbox, SERVICE, events())


def _import_state(product_id: int, stock: int, threshold: int | None, incoming_stock: int,
                  back_in_stock_date: dt.date | None, name: str, sku: str, version: int,
                  low_stock_level: int) -> events_pb.InventoryProductState:
    """product_state for an imported product (from its values, without a ProductRow)."""
    state = events_pb.InventoryProductState(
        product_id=product_id, assigned=True, stock=stock, incoming_stock=incoming_stock,
        back_in_stock_date=back_in_stock_date.isoformat() if back_in_stock_date is not None else "",
        status=domain.product_status(stock, threshold, low_stock_level), name=name, sku=sku, version=version)
    if threshold is not None:
        state.threshold = threshold
        state.salable_qty = stock + threshold
    return state


REPORT_COLUMNS = ["product_name", "sku", "purchased_qty", "backordered_qty", "order_id", "order_email", "order_date",
                  "category_ids", "brand_id"]


def report_csv_row(row: Any, zone: ZoneInfo) -> list[Any]:
    return [row.product_name, row.sku, row.purchased_qty, row.backordered_qty, row.order_id, row.order_email,
            local_time(row.order_date, zone).isoformat(),
            " ".join(str(c) for c in domain.category_ids_from_key(row.category_key)), row.brand_id or ""]


def local_time(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return repository.as_utc(value).astimezone(zone)  # type: ignore[union-attr]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _Entry:
    """A ledger/token row written in this transaction, readable like a fetched Row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
        self.__dict__.setdefault("id", 0)


def _line_from_ledger(line: domain.OrderLineCommand, entry: Any) -> LineResult:
    return LineResult(line.line_id, line.product_id, True, line.quantity, entry.backordered_qty,
                      bool(entry.over_threshold), entry.stock_before, entry.stock_after, replayed=True)


def _require_assigned(commands: Sequence[domain.UpdateCommand], locked: dict[int, ProductRow]) -> None:
    errors = [domain.field_error(i, "product_id", "not_assigned", f"product {c.product_id} is not assigned",
                                 product_id=c.product_id)
              for i, c in enumerate(commands) if c.product_id not in locked]
    domain.raise_if_errors(errors)


def _paging(page: int, limit: int, maximum: int) -> tuple[int, int]:
    return max(page or 1, 1), min(max(limit or 50, 1), maximum)


def _zone(name: str, strict: bool = False) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        if strict:
            raise ValidationFailed(f"timezone: unknown zone {name!r}") from exc
        return ZoneInfo("UTC")
