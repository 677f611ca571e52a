"""Queries on the storefront tables (SQLAlchemy Core; PostgreSQL and SQLite alike)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.clock import utcnow
from services.storefront.domain import ProductState, Settings
from services.storefront.tables import product_states, store_settings


async def load_settings(conn: AsyncConnection, store_hash: str, *, for_update: bool = False
                        ) -> tuple[Settings, int] | None:
    """The store's saved settings and revision, or None when it never saved any.

    With `for_update` the row is locked (PostgreSQL) until the transaction ends.
    """
    query = select(store_settings.c.settings, store_settings.c.revision).where(
        store_settings.c.store_hash == store_hash)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return Settings.from_dict(row.settings), row.revision


async def save_settings(conn: AsyncConnection, store_hash: str, settings: Settings, revision: int) -> None:
    """Insert (revision 1) or update the row; an insert racing another raises IntegrityError."""
    values: dict[str, Any] = {"settings": settings.as_dict(), "revision": revision, "updated_at": utcnow()}
    if revision == 1:
        await conn.execute(store_settings.insert().values(store_hash=store_hash, **values))
    else:
        await conn.execute(store_settings.update().where(store_settings.c.store_hash == store_hash).values(**values))


def _state_row(store_hash: str, state: ProductState, occurred_at_us: int) -> dict[str, Any]:
    return {
        "store_hash": store_hash, "product_id": state.product_id, "assigned": state.assigned,
        "stock": state.stock, "threshold": state.threshold, "incoming_stock": state.incoming_stock,
        "back_in_stock_date": state.back_in_stock_date[:10], "name": state.name[:255], "sku": state.sku[:255],
        "version": state.version, "occurred_at_us": occurred_at_us, "updated_at": utcnow(),
    }


async def upsert_state(conn: AsyncConnection, store_hash: str, state: ProductState, occurred_at_us: int) -> bool:
    """Store `state` unless a newer one is stored; True when it was applied.

    Newer means a higher (version, occurred_at_us); one atomic INSERT … ON CONFLICT DO
    UPDATE … WHERE, so concurrent consumers cannot let an older event win.
    """
    return await upsert_states(conn, [(store_hash, state, occurred_at_us)]) > 0


async def upsert_states(conn: AsyncConnection, states: Sequence[tuple[str, ProductState, int]]) -> int:
    """`upsert_state` for many (store_hash, state, occurred_at_us) in one statement; each
    (store, product) at most once. Returns how many were applied."""
    if not states:
        return 0
    rows = [_state_row(store_hash, state, occurred_at_us) for store_hash, state, occurred_at_us in states]
    row = rows[0]
    # executemany (one compiled statement, sent as multi-row INSERTs by SQLAlchemy).
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(product_states)
    newer = or_(
        product_states.c.version < insert.excluded.version,
        and_(product_states.c.version == insert.excluded.version,
             product_states.c.occurred_at_us < insert.excluded.occurred_at_us),
    )
    statement = insert.on_conflict_do_update(
        index_elements=["store_hash", "product_id"],
        set_={key: insert.excluded[key] for key in row if key not in {"store_hash", "product_id"}},
        where=newer,
    )
    result = await conn.execute(statement.returning(product_states.c.product_id), rows)
    return len(result.all())


async def load_states(conn: AsyncConnection, store_hash: str, product_ids: Iterable[int]) -> dict[int, ProductState]:
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    rows = (await conn.execute(
        select(product_states).where(product_states.c.store_hash == store_hash,
                                     product_states.c.product_id.in_(ids))
    )).all()
    return {
        row.product_id: ProductState(
            product_id=row.product_id, assigned=row.assigned, stock=row.stock, threshold=row.threshold,
            incoming_stock=row.incoming_stock, back_in_stock_date=row.back_in_stock_date, version=row.version,
            name=row.name, sku=row.sku,
        )
        for row in rows
    }


async def store_known(conn: AsyncConnection, store_hash: str) -> bool:
    """A store is known once it saved settings or inventory told us about one of its products."""
    if (await conn.execute(select(store_settings.c.revision).where(store_settings.c.store_hash == store_hash))).first():
        return True
    return (await conn.execute(
        select(product_states.c.product_id).where(product_states.c.store_hash == store_hash).limit(1)
    )).first() is not None
