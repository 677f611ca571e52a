"""Queries on the inventory tables. Locks are always taken in primary-key order.

On PostgreSQL `FOR UPDATE` row locks serialize writers per product; on SQLite every
write transaction already holds the database write lock (BEGIN IMMEDIATE), so the
same statements are correct there too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import DateTime, String, and_, cast, func, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.clock import as_utc, utcnow
from services.common.db import insert_ignore
from services.common.product_status import salable_qty, status_condition
from services.common.text import LIKE_ESCAPE, like_contains
from services.inventory import domain
from services.inventory.tables import (
    api_tokens,
    assigned_products,
    backorder_report,
    import_rows,
    stock_ledger,
    store_plans,
    store_settings,
)

P = assigned_products
L = stock_ledger


@dataclass
class ProductRow:
    """An assigned product as loaded (and then changed in memory before it is written back)."""

    id: int
    store_hash: str
    product_id: int
    name: str
    sku: str
    stock: int
    threshold: int | None
    incoming_stock: int
    back_in_stock_date: dt.date | None
    category_key: str
    brand_id: int
    version: int
    assigned_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> ProductRow:
        # Columns are selected in field order (PRODUCT_COLUMNS).
        product = cls(*row)
        product.assigned_at = as_utc(product.assigned_at)
        product.updated_at = as_utc(product.updated_at)
        return product

    @property
    def salable(self) -> int | None:
        return salable_qty(self.stock, self.threshold)


PRODUCT_COLUMNS = [P.c[f.name] for f in fields(ProductRow)]


def product_level() -> Any:
    """Today's rows are product-level: no variant, no location."""
    return and_(P.c.variant_id.is_(None), P.c.location_id.is_(None))


@dataclass(frozen=True)
class StoreSettingsRow:
    store_hash: str
    low_stock_level: int = 0
    return_stock_on_cancel: bool = True
    keep_assigned_when_tracking_enabled: bool = False
    timezone: str = "UTC"


async def get_settings(conn: AsyncConnection, store_hash: str) -> StoreSettingsRow:
    row = (await conn.execute(select(store_settings).where(store_settings.c.store_hash == store_hash))).first()
    if row is None:
        return StoreSettingsRow(store_hash)
    return StoreSettingsRow(row.store_hash, row.low_stock_level, bool(row.return_stock_on_cancel),
                            bool(row.keep_assigned_when_tracking_enabled), row.timezone)


async def get_settings_many(conn: AsyncConnection, store_hashes: Iterable[str]) -> dict[str, StoreSettingsRow]:
    wanted = set(store_hashes)
    found = {s: StoreSettingsRow(s) for s in wanted}
    rows = (await conn.execute(select(store_settings).where(store_settings.c.store_hash.in_(wanted)))).all()
    for row in rows:
        found[row.store_hash] = StoreSettingsRow(row.store_hash, row.low_stock_level, bool(row.return_stock_on_cancel),
                                                 bool(row.keep_assigned_when_tracking_enabled), row.timezone)
    return found


async def lock_store(conn: AsyncConnection, dialect: str, store_hash: str) -> StoreSettingsRow:
    """Create the store's settings row if needed and lock it FOR UPDATE.

    This row is the per-store mutex that serializes assignments, so two concurrent assigns
    at the plan limit cannot both pass the count check.
    """
    await conn.execute(insert_ignore(dialect, store_settings, ["store_hash"]).values(
        store_hash=store_hash, updated_at=utcnow()))
    row = (await conn.execute(
        select(store_settings).where(store_settings.c.store_hash == store_hash).with_for_update()
    )).one()
    return StoreSettingsRow(row.store_hash, row.low_stock_level, bool(row.return_stock_on_cancel),
                            bool(row.keep_assigned_when_tracking_enabled), row.timezone)


async def save_settings(conn: AsyncConnection, settings: StoreSettingsRow) -> None:
    await conn.execute(update(store_settings).where(store_settings.c.store_hash == settings.store_hash).values(
        low_stock_level=settings.low_stock_level,
        return_stock_on_cancel=settings.return_stock_on_cancel,
        keep_assigned_when_tracking_enabled=settings.keep_assigned_when_tracking_enabled,
        timezone=settings.timezone,
        updated_at=utcnow(),
    ))


async def get_store_plan(conn: AsyncConnection, store_hash: str) -> domain.PlanLimit | None:
    row = (await conn.execute(select(store_plans).where(store_plans.c.store_hash == store_hash))).first()
    if row is None:
        return None
    return domain.PlanLimit(row.plan, row.max_assigned_products, as_utc(row.effective_at))


async def save_store_plan(conn: AsyncConnection, store_hash: str, plan: domain.PlanLimit, event_id: str, *,
                          exists: bool) -> None:
    """Record the newest plan change; the caller holds the store lock (no insert race)."""
    values = {"plan": plan.plan, "max_assigned_products": plan.limit, "effective_at": plan.effective_at,
              "event_id": event_id, "updated_at": utcnow()}
    if exists:
        await conn.execute(update(store_plans).where(store_plans.c.store_hash == store_hash).values(**values))
    else:
        await conn.execute(store_plans.insert().values(store_hash=store_hash, **values))


async def count_assigned(conn: AsyncConnection, store_hash: str) -> int:
    return (await conn.execute(
        select(func.count()).select_from(P).where(P.c.store_hash == store_hash, product_level())
    )).scalar_one()


async def lock_products(conn: AsyncConnection, store_hash: str, product_ids: Iterable[int]) -> dict[int, ProductRow]:
    """SELECT … FOR UPDATE the store's product-level rows, in primary-key order.

    Beyond 1,000 ids every row of the store is locked instead of binding a huge
    IN list; the lock order is the same."""
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    conditions = [P.c.store_hash == store_hash, product_level()]
    if len(ids) <= 1000:
        conditions.append(P.c.product_id.in_(ids))
    rows = (await conn.execute(
        select(*PRODUCT_COLUMNS).where(*conditions).order_by(P.c.id).with_for_update()
    )).all()
    wanted = set(ids)
    return {row.product_id: ProductRow.from_row(row) for row in rows if row.product_id in wanted}


IMPORT_LOCK_COLUMNS = [P.c.id, P.c.product_id, P.c.stock, P.c.threshold, P.c.incoming_stock, P.c.back_in_stock_date,
                       P.c.name, P.c.sku, P.c.version]


async def lock_import_products(conn: AsyncConnection, store_hash: str, product_ids: Sequence[int]) -> dict[int, Any]:
    """Like lock_products (same rows, same lock order) but only the columns an import's
    update reads, as plain rows: building 100,000 ProductRows cost more than the query."""
    conditions = [P.c.store_hash == store_hash, product_level()]
    if len(product_ids) <= 1000:
        conditions.append(P.c.product_id.in_(sorted(set(product_ids))))
    rows = (await conn.execute(select(*IMPORT_LOCK_COLUMNS).where(*conditions).order_by(P.c.id)
                               .with_for_update())).all()
    return {row.product_id: row for row in rows}


def insert_imported_products(store_hash: str, now: dt.datetime) -> Any:
    """INSERT … SELECT the staged rows (import_rows) as newly assigned products, in row order."""
    s = import_rows
    stamp = literal(now, DateTime(timezone=True))
    return P.insert().from_select(
        ["store_hash", "product_id", "name", "sku", "stock", "threshold", "incoming_stock", "back_in_stock_date",
         "category_key", "brand_id", "version", "assigned_at", "updated_at"],
        select(literal(store_hash, String), s.c.product_id, s.c.name, s.c.sku, s.c.stock, s.c.threshold,
               s.c.incoming_stock, s.c.back_in_stock_date, s.c.category_key, s.c.brand_id, s.c.version, stamp,
               stamp).order_by(s.c.file_row))


def update_imported_products(now: dt.datetime) -> Any:
    """UPDATE … FROM the staged rows (import_rows): the columns an import sets, the new version."""
    s = import_rows
    return update(P).where(P.c.id == s.c.id).values(
        stock=s.c.stock, threshold=s.c.threshold, incoming_stock=s.c.incoming_stock,
        back_in_stock_date=s.c.back_in_stock_date, version=s.c.version,
        updated_at=literal(now, DateTime(timezone=True)))


def insert_import_ledger(store_hash: str, actor: str, key_prefix: str, now: dt.datetime, *,
                         returning: bool = False) -> Any:
    """INSERT … SELECT one ledger entry per staged row (import_rows), in row order, keyed
    `<key_prefix><row>`; with `returning`, the rows (idempotency key, ledger id)."""
    s = import_rows
    statement = L.insert().from_select(
        ["store_hash", "product_id", "kind", "delta", "absolute", "stock_before", "stock_after", "source", "actor",
         "idempotency_key", "request_hash", "note", "created_at"],
        select(literal(store_hash, String), s.c.product_id, s.c.kind, s.c.stock - s.c.stock_before, s.c.absolute,
               s.c.stock_before, s.c.stock, literal("import", String), literal(actor, String),
               literal(key_prefix, String) + cast(s.c.file_row, String), literal("", String), s.c.note,
               literal(now, DateTime(timezone=True))).order_by(s.c.file_row))
    if returning:
        return statement.returning(L.c.idempotency_key, L.c.id)
    return statement


async def lock_store_products(conn: AsyncConnection, store_hash: str) -> list[ProductRow]:
    """SELECT … FOR UPDATE every product-level row of the store, in primary-key order (the
    order lock_products uses, so the two cannot deadlock)."""
    rows = (await conn.execute(
        select(*PRODUCT_COLUMNS).where(P.c.store_hash == store_hash, product_level()).order_by(P.c.id)
        .with_for_update()
    )).all()
    return [ProductRow.from_row(row) for row in rows]


# lock_products_many's usual statement (one store) as fixed SQL text for the driver: it runs
# once per order batch, and building and compiling it through SQLAlchemy cost more than running it.
LOCK_STORE_PRODUCTS_SQL = (
    f"SELECT {', '.join(c.name for c in PRODUCT_COLUMNS)} FROM {P.name} "
    "WHERE store_hash = %s AND product_id = ANY(%s) AND variant_id IS NULL AND location_id IS NULL "
    "ORDER BY id FOR UPDATE"
)


async def lock_products_many(conn: AsyncConnection, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], ProductRow]:
    """Lock (store, product) rows across stores in one statement, in primary-key order."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    stores = {store_hash for store_hash, _ in wanted}
    if len(stores) == 1 and conn.dialect.name == "postgresql":
        driver: Any = (await conn.get_raw_connection()).driver_connection
        cursor = await driver.execute(LOCK_STORE_PRODUCTS_SQL, (wanted[0][0], [p for _, p in wanted]))
        products = [ProductRow.from_row(row) for row in await cursor.fetchall()]
        return {(p.store_hash, p.product_id): p for p in products}
    if len(stores) == 1:
        # The usual batch: one store, a plain IN on the (store, product) index.
        condition = and_(P.c.store_hash == next(iter(stores)), P.c.product_id.in_([p for _, p in wanted]))
    else:
        condition = tuple_(P.c.store_hash, P.c.product_id).in_(wanted)
    rows = (await conn.execute(
        select(*PRODUCT_COLUMNS).where(condition, product_level()).order_by(P.c.id).with_for_update()
    )).all()
    return {(row.store_hash, row.product_id): ProductRow.from_row(row) for row in rows}


async def load_products(conn: AsyncConnection, store_hash: str, product_ids: Iterable[int]) -> dict[int, ProductRow]:
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    rows = (await conn.execute(
        select(*PRODUCT_COLUMNS).where(P.c.store_hash == store_hash, P.c.product_id.in_(ids), product_level())
    )).all()
    return {row.product_id: ProductRow.from_row(row) for row in rows}


async def assigned_ids(conn: AsyncConnection, store_hash: str) -> set[int]:
    rows = await conn.execute(select(P.c.product_id).where(P.c.store_hash == store_hash, product_level()))
    return {r.product_id for r in rows}


async def ledger_key_prefix_used(conn: AsyncConnection, store_hash: str, prefix: str) -> bool:
    """Whether any of the store's ledger entries has an idempotency key starting with `prefix`."""
    found = await conn.execute(select(L.c.id).where(
        L.c.store_hash == store_hash, L.c.idempotency_key.startswith(prefix, autoescape=True)).limit(1))
    return found.first() is not None


async def ledger_by_keys(conn: AsyncConnection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Existing ledger rows for (store, idempotency_key) pairs."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found: dict[tuple[str, str], Any] = {}
    # Chunked: SQLite caps bound parameters.
    for start in range(0, len(wanted), 400):
        chunk = wanted[start:start + 400]
        rows = await conn.execute(select(L).where(tuple_(L.c.store_hash, L.c.idempotency_key).in_(chunk)))
        for row in rows:
            found[(row.store_hash, row.idempotency_key)] = row
    return found


async def ledger_for_order(conn: AsyncConnection, store_hash: str, order_id: str) -> list[Any]:
    return list((await conn.execute(
        select(L).where(L.c.store_hash == store_hash, L.c.order_id == order_id).order_by(L.c.id)
    )).all())


async def list_ledger(conn: AsyncConnection, store_hash: str, product_id: int, offset: int,
                      limit: int) -> tuple[list[Any], int]:
    conditions = [L.c.store_hash == store_hash]
    if product_id:
        conditions.append(L.c.product_id == product_id)
    total = (await conn.execute(select(func.count()).select_from(L).where(*conditions))).scalar_one()
    rows = (await conn.execute(
        select(L).where(*conditions).order_by(L.c.id.desc()).offset(offset).limit(limit)
    )).all()
    return list(rows), total


async def ledger_after(conn: AsyncConnection, store_hash: str, cursor: int, limit: int) -> list[Any]:
    return list((await conn.execute(
        select(L).where(L.c.store_hash == store_hash, L.c.id > cursor).order_by(L.c.id).limit(limit)
    )).all())


def _search(columns: Sequence[Any], q: str) -> Any:
    pattern = like_contains(q)
    return or_(*(func.lower(c).like(pattern, escape=LIKE_ESCAPE) for c in columns))


async def list_products(conn: AsyncConnection, store_hash: str, *, q: str, status: str | None,
                        low_stock_level: int, product_ids: Sequence[int], offset: int,
                        limit: int) -> tuple[list[ProductRow], int]:
    conditions = [P.c.store_hash == store_hash, product_level()]
    if q:
        conditions.append(_search([P.c.name, P.c.sku], q))
    if status:
        conditions.append(status_condition(status, P.c.stock, P.c.threshold, low_stock_level))
    if product_ids:
        conditions.append(P.c.product_id.in_(list(product_ids)))
    total = (await conn.execute(select(func.count()).select_from(P).where(*conditions))).scalar_one()
    rows = (await conn.execute(
        select(*PRODUCT_COLUMNS).where(*conditions).order_by(P.c.product_id).offset(offset).limit(limit)
    )).all()
    return [ProductRow.from_row(r) for r in rows], total


async def due_receipts(conn: AsyncConnection, on_or_before: dt.date, limit: int) -> list[ProductRow]:
    rows = (await conn.execute(
        select(*PRODUCT_COLUMNS)
        .where(P.c.back_in_stock_date.is_not(None), P.c.back_in_stock_date <= on_or_before)
        # Oldest dates first: rows not yet due in their store's zone (the latest dates)
        # come last and cannot hide due ones behind the limit.
        .order_by(P.c.back_in_stock_date, P.c.id)
        .limit(limit)
    )).all()
    return [ProductRow.from_row(r) for r in rows]


def report_conditions(store_hash: str, *, q: str, start: dt.datetime | None, end: dt.datetime | None,
                      category_id: int, brand_id: int) -> list[Any]:
    R = backorder_report
    conditions = [R.c.store_hash == store_hash]
    if q:
        conditions.append(_search([R.c.product_name, R.c.sku], q))
    if start is not None:
        conditions.append(R.c.order_date >= start)
    if end is not None:
        conditions.append(R.c.order_date < end)
    if category_id:
        conditions.append(R.c.category_key.like(f"%,{int(category_id)},%"))
    if brand_id:
        conditions.append(R.c.brand_id == brand_id)
    return conditions


async def list_report(conn: AsyncConnection, conditions: list[Any], offset: int,
                      limit: int) -> tuple[list[Any], int]:
    R = backorder_report
    total = (await conn.execute(select(func.count()).select_from(R).where(*conditions))).scalar_one()
    rows = (await conn.execute(
        select(R).where(*conditions).order_by(R.c.order_date.desc(), R.c.id.desc()).offset(offset).limit(limit)
    )).all()
    return list(rows), total


async def report_after(conn: AsyncConnection, conditions: list[Any], after_id: int, limit: int) -> list[Any]:
    """Keyset pages for the CSV export (stable under concurrent inserts)."""
    R = backorder_report
    return list((await conn.execute(
        select(R).where(*conditions, R.c.id > after_id).order_by(R.c.id).limit(limit)
    )).all())


async def token_by_hash(conn: AsyncConnection, token_hash: str) -> Any:
    return (await conn.execute(select(api_tokens).where(api_tokens.c.token_hash == token_hash))).first()
