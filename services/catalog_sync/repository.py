"""Queries on catalog_sync's tables (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, and_, any_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.catalog_sync.tables import products, stores, webhook_registrations
from services.common.clock import utcnow
from services.common.text import LIKE_ESCAPE, like_contains

MIRROR_COLUMNS = ("name", "sku", "is_visible", "availability", "inventory_level", "inventory_tracking",
                  "category_ids", "brand_id", "date_modified")


def _insert(dialect: str, table: Any) -> Any:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


# ---------------------------------------------------------------- stores

async def get_store(conn: AsyncConnection, store_hash: str) -> Row[Any] | None:
    return (await conn.execute(select(stores).where(stores.c.store_hash == store_hash))).first()


async def upsert_store(conn: AsyncConnection, dialect: str, values: dict[str, Any]) -> bool:
    """Insert or refresh a store on install; returns True when it was not installed before.

    Locks the store's row (FOR UPDATE on PostgreSQL; SQLite's writer lock otherwise).
    """
    query = select(stores.c.installed).where(stores.c.store_hash == values["store_hash"])
    if dialect == "postgresql":
        query = query.with_for_update()
    existing = (await conn.execute(query)).first()
    now = utcnow()
    if existing is None:
        await conn.execute(stores.insert().values(**values, installed=True, installed_at=now, updated_at=now))
        return True
    changes = {**values, "installed": True, "uninstalled_at": None, "updated_at": now}
    if not existing.installed:
        changes["installed_at"] = now
    await conn.execute(update(stores).where(stores.c.store_hash == values["store_hash"]).values(**changes))
    return not existing.installed


async def update_store(conn: AsyncConnection, store_hash: str, **values: Any) -> None:
    await conn.execute(update(stores).where(stores.c.store_hash == store_hash).values(**values, updated_at=utcnow()))


async def mark_uninstalled(conn: AsyncConnection, store_hash: str) -> bool:
    result = await conn.execute(
        update(stores).where(stores.c.store_hash == store_hash)
        .values(installed=False, access_token=None, uninstalled_at=utcnow(), updated_at=utcnow())
    )
    return result.rowcount > 0


async def stores_to_purge(conn: AsyncConnection, before: datetime) -> list[str]:
    rows = await conn.execute(
        select(stores.c.store_hash).where(stores.c.installed.is_(False), stores.c.uninstalled_at < before)
    )
    return [row.store_hash for row in rows]


async def purge_store(conn: AsyncConnection, store_hash: str) -> None:
    """Delete everything kept for a store (only called for a store still uninstalled)."""
    await conn.execute(delete(products).where(products.c.store_hash == store_hash))
    await conn.execute(delete(webhook_registrations).where(webhook_registrations.c.store_hash == store_hash))
    await conn.execute(delete(stores).where(stores.c.store_hash == store_hash, stores.c.installed.is_(False)))


async def save_registrations(conn: AsyncConnection, dialect: str, store_hash: str,
                             hooks: Iterable[tuple[str, int]]) -> None:
    now = utcnow()
    for scope, hook_id in hooks:
        statement = _insert(dialect, webhook_registrations).values(
            store_hash=store_hash, scope=scope, hook_id=hook_id, registered_at=now)
        await conn.execute(statement.on_conflict_do_update(
            index_elements=["store_hash", "scope"], set_={"hook_id": hook_id, "registered_at": now}))


async def product_count(conn: AsyncConnection, store_hash: str) -> int:
    return int((await conn.execute(
        select(func.count()).select_from(products).where(products.c.store_hash == store_hash))).scalar_one())


# ---------------------------------------------------------------- mirror

async def upsert_products(conn: AsyncConnection, dialect: str, store_hash: str, rows: Sequence[dict[str, Any]],
                          *, marker: str | None = None, only_if_newer: bool = False) -> None:
    """Insert or refresh mirror rows; the assignment columns are never touched here.

    `only_if_newer` keeps a row whose date_modified is newer than the incoming one (a
    slower fetch of the same product finishing after a faster, fresher one).
    """
    if not rows:
        return
    now = utcnow()
    values = [{**row, "store_hash": store_hash, "updated_at": now,
               **({"pull_marker": marker} if marker else {})} for row in rows]
    statement = _insert(dialect, products).values(values)
    excluded = statement.excluded
    changes: dict[str, Any] = {name: getattr(excluded, name) for name in MIRROR_COLUMNS}
    changes["updated_at"] = excluded.updated_at
    if marker:
        changes["pull_marker"] = excluded.pull_marker
    where = None
    if only_if_newer:
        where = or_(products.c.date_modified.is_(None), excluded.date_modified.is_(None),
                    products.c.date_modified <= excluded.date_modified)
    await conn.execute(statement.on_conflict_do_update(index_elements=["store_hash", "product_id"], set_=changes,
                                                       where=where))


async def remove_unseen(conn: AsyncConnection, store_hash: str, marker: str, pulled_before: datetime) -> int:
    """After a full pull: drop rows the pull did not see (and no webhook refreshed since it began)."""
    result = await conn.execute(delete(products).where(
        products.c.store_hash == store_hash, products.c.pull_marker != marker, products.c.updated_at < pulled_before))
    return result.rowcount


async def get_product(conn: AsyncConnection, store_hash: str, product_id: int) -> Row[Any] | None:
    return (await conn.execute(select(products).where(
        products.c.store_hash == store_hash, products.c.product_id == product_id))).first()


# What a product's view (servicer.add_product) and an order's lines read: not the
# bookkeeping timestamps, whose conversion cost more than the rest of a row.
PRODUCT_VIEW_COLUMNS = [products.c[name] for name in (
    "product_id", "name", "sku", "is_visible", "availability", "inventory_level", "inventory_tracking", "assigned",
    "category_ids", "brand_id", "date_modified")]


async def get_products(conn: AsyncConnection, store_hash: str, product_ids: Sequence[int]) -> dict[int, Row[Any]]:
    """The mirror's rows (PRODUCT_VIEW_COLUMNS) of these products, by id: one query with an
    array on PostgreSQL; IN lists of 500 on SQLite (its bound-parameter cap)."""
    ids = list(dict.fromkeys(product_ids))
    query = select(*PRODUCT_VIEW_COLUMNS).where(products.c.store_hash == store_hash)
    if conn.dialect.name == "postgresql":
        rows = await conn.execute(query.where(products.c.product_id == any_(
            bindparam("product_ids", ids, type_=postgresql.ARRAY(BigInteger)))))
        return {row.product_id: row for row in rows}
    found: dict[int, Row[Any]] = {}
    for start in range(0, len(ids), 500):
        rows = await conn.execute(query.where(products.c.product_id.in_(ids[start:start + 500])))
        found.update({row.product_id: row for row in rows})
    return found


async def list_products(conn: AsyncConnection, store_hash: str, *, q: str = "", is_visible: bool | None = None,
                        availability: str | None = None, assigned: bool | None = None, page: int = 1,
                        limit: int = 50) -> tuple[list[Row[Any]], int]:
    conditions = [products.c.store_hash == store_hash]
    if q:
        pattern = like_contains(q)
        conditions.append(or_(func.lower(products.c.name).like(pattern, escape=LIKE_ESCAPE),
                              func.lower(products.c.sku).like(pattern, escape=LIKE_ESCAPE)))
    if is_visible is not None:
        conditions.append(products.c.is_visible.is_(is_visible))
    if availability:
        conditions.append(products.c.availability == availability)
    if assigned is not None:
        conditions.append(products.c.assigned.is_(assigned))
    where = and_(*conditions)
    total = int((await conn.execute(select(func.count()).select_from(products).where(where))).scalar_one())
    rows = (await conn.execute(select(products).where(where).order_by(products.c.product_id)
                               .limit(limit).offset((page - 1) * limit))).all()
    return list(rows), total


async def delete_product(conn: AsyncConnection, store_hash: str, product_id: int) -> None:
    await conn.execute(delete(products).where(products.c.store_hash == store_hash, products.c.product_id == product_id))


async def update_product(conn: AsyncConnection, store_hash: str, product_id: int, **values: Any) -> int:
    result = await conn.execute(update(products).where(
        products.c.store_hash == store_hash, products.c.product_id == product_id).values(**values, updated_at=utcnow()))
    return result.rowcount
