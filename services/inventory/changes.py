"""What a stock-changing transaction writes, and how it runs.

`ledger_row` is the one shape of a stock_ledger row; `ChangeSet` gathers a transaction's
changed products, ledger rows, report rows and events and writes them together;
`Transactions` runs a use case's body in a unit of work, again on a deadlock, a
serialization failure or a raced idempotency key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.common.clock import utcnow
from services.common.db import Database, UnitOfWork, insert_ignore
from services.inventory import bulk, domain, events
from services.inventory.repository import ProductRow, StoreSettingsRow
from services.inventory.tables import assigned_products, backorder_report, outbox, stock_ledger

log = logging.getLogger(__name__)

SERVICE = "inventory"
T = TypeVar("T")

# An event's payload, or a builder of it from the ledger ids by idempotency key.
EventPayload = Message | Callable[[dict[str, int]], Message]


class KeyRaced(Exception):
    """An idempotency key was written by a concurrent transaction after this one began."""


def ledger_row(store_hash: str, product_id: int, *, kind: str, stock_before: int, stock_after: int, source: str,
               actor: str, key: str, created_at: dt.datetime, absolute: int | None = None, request_hash: str = "",
               note: str = "", order_id: str | None = None, line_id: str | None = None, quantity: int | None = None,
               backordered_qty: int = 0, over_threshold: bool = False) -> dict[str, Any]:
    """A stock_ledger row (every column but the id), delta = stock_after − stock_before."""
    return {
        "store_hash": store_hash, "product_id": product_id, "variant_id": None, "location_id": None, "kind": kind,
        "delta": stock_after - stock_before, "absolute": absolute, "stock_before": stock_before,
        "stock_after": stock_after, "source": source, "actor": actor[:255], "idempotency_key": key,
        "request_hash": request_hash, "order_id": order_id, "line_id": line_id, "quantity": quantity,
        "backordered_qty": backordered_qty, "over_threshold": over_threshold, "note": note, "created_at": created_at,
    }


def source_name(source: str, default: str) -> str:
    return source if source in domain.SOURCES else default


class Entry:
    """A ledger/token row written in this transaction, readable like a fetched Row."""

    id: int

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
        self.__dict__.setdefault("id", 0)

    def __getattr__(self, name: str) -> Any:  # the row's other columns
        raise AttributeError(name)


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
    events: list[tuple[str, str, EventPayload]] = field(default_factory=list)

    def settings_for(self, store_hash: str) -> StoreSettingsRow:
        return self.settings.get(store_hash) or StoreSettingsRow(store_hash)

    def record(self, product: ProductRow, *, kind: str, new_stock: int, source: str, actor: str, key: str,
               request_hash: str = "", absolute: int | None = None, note: str = "",
               sellable_before: bool | None = None, order_id: str | None = None, line_id: str | None = None,
               quantity: int | None = None, backordered_qty: int = 0, over_threshold: bool = False
               ) -> dict[str, Any]:
        """Apply a stock change to `product` in memory and queue its ledger row and events."""
        before = product.stock
        was_sellable = sellable_before if sellable_before is not None else (
            product.salable is None or product.salable > 0)
        product.stock = new_stock
        product.version += 1
        product.updated_at = self.now
        self.products[product.id] = product
        ledger_key = key or f"auto:{uuid.uuid4()}"
        row = ledger_row(product.store_hash, product.product_id, kind=kind, stock_before=before, stock_after=new_stock,
                         source=source, actor=actor, key=ledger_key, created_at=product.updated_at, absolute=absolute,
                         request_hash=request_hash, note=note, order_id=order_id, line_id=line_id, quantity=quantity,
                         backordered_qty=backordered_qty, over_threshold=over_threshold)
        self.ledger_rows.append(row)
        state = events.product_state(product, self.settings_for(product.store_hash))

        def stock_changed(ids: dict[str, int]) -> Message:
            return events.stock_changed(state, before=before, after=new_stock, source=source, kind=kind,
                                        ledger_id=ids.get(ledger_key, 0), key=ledger_key)

        self.events.append((product.store_hash, "stock.changed", stock_changed))
        self.events.extend(events.availability_events(product.store_hash, state, product.salable,
                                                      was_sellable=was_sellable))
        return row

    def _built_events(self, ids: dict[str, int]) -> list[tuple[str, str, Message]]:
        return [(store, kind, payload(ids) if callable(payload) else payload) for store, kind, payload in self.events]

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
        await bulk.add_events_copy(uow, outbox, SERVICE, self._built_events(ids))
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
        built = self._built_events(ids)
        try:
            await bulk.write_in_one_statement(uow, (assigned_products, "id", self._product_rows()), [
                (stock_ledger, self.ledger_rows), (backorder_report, self.report_rows),
                (outbox, bulk.outbox_rows(SERVICE, built))])
        except bulk.DuplicateKey as exc:
            raise KeyRaced() from exc
        uow.wrote_events = uow.wrote_events or bool(built)
        return ids

    def _product_rows(self) -> list[dict[str, Any]]:
        return [{
            "id": p.id, "stock": p.stock, "threshold": p.threshold, "incoming_stock": p.incoming_stock,
            "back_in_stock_date": p.back_in_stock_date, "name": p.name, "sku": p.sku, "category_key": p.category_key,
            "brand_id": p.brand_id, "version": p.version, "updated_at": p.updated_at,
        } for p in self.products.values()]


def is_retryable(exc: DBAPIError) -> bool:
    """Deadlock / serialization failure / unique race: run the transaction again."""
    if isinstance(exc, IntegrityError):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return sqlstate in {"40P01", "40001"}


class Transactions:
    """Runs use cases in units of work; `ledger_written` is set (and replaced) after every
    commit, so a stream of ledger entries (the ERP's) wakes without polling this process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.ledger_written = asyncio.Event()

    async def run(self, body: Callable[[UnitOfWork], Awaitable[T]], attempts: int = 4) -> T:
        """Run `body(uow)` in a transaction, again on deadlock/serialization failure/KeyRaced."""
        for attempt in range(attempts):
            try:
                async with self.db.unit_of_work() as uow:
                    result = await body(uow)
                    await uow.commit()
                self.ledger_written.set()
                self.ledger_written = asyncio.Event()
                return result
            except (DBAPIError, KeyRaced) as exc:
                if attempt == attempts - 1 or (isinstance(exc, DBAPIError) and not is_retryable(exc)):
                    raise
                log.info("retrying transaction after %s", type(exc).__name__)
        raise AssertionError("unreachable")
