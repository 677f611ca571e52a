"""Database plumbing shared by every service: engines, a unit of work, idempotent inserts.

Services use SQLAlchemy 2 Core on an async engine. The same code runs on SQLite (the
embedded default) and PostgreSQL (production):
- `postgresql://` URLs use psycopg 3; `sqlite:///` URLs use aiosqlite.
- On SQLite every transaction starts with BEGIN IMMEDIATE, so a read-then-write
  transaction takes the write lock up front instead of failing to upgrade later, and
  WAL plus busy_timeout let readers and the single writer proceed without errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

READ_ONLY_OPTION = "backorder_read_only"
# Connections a process keeps per engine (plus as many overflow ones); BACKORDER_DB_POOL_SIZE overrides.
DEFAULT_POOL_SIZE = 5


def async_url(url: str) -> str:
    """The async-driver form of a database URL."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"}:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.drivername in {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"}:
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r} (use postgresql:// or sqlite:///)")


def sync_url(url: str) -> str:
    """The sync-driver form (Alembic runs migrations synchronously)."""
    parsed = make_url(url)
    if parsed.drivername.startswith("postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.drivername.startswith("sqlite"):
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")


def is_sqlite(url: str) -> bool:
    return make_url(url).drivername.startswith("sqlite")


def _ensure_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def configure_sqlite(sync_engine: Any) -> None:
    """WAL, busy timeout, foreign keys and BEGIN IMMEDIATE on every connection of `sync_engine`."""

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event (below) own the transaction start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers (Database.read) take no write lock; writers take it up front.
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, pool_size: int | None = None, echo: bool = False) -> AsyncEngine:
    """Build the process's engine (call at start-up, never at import)."""
    target = async_url(url)
    if is_sqlite(url):
        _ensure_sqlite_folder(url)
        engine = create_async_engine(target, echo=echo)
        configure_sqlite(engine.sync_engine)
        return engine
    # Every replica of every service holds up to 2 × pool_size connections: keep it small
    # (PostgreSQL's default max_connections is 100) and raise it per service if measured.
    if pool_size is None:
        pool_size = DEFAULT_POOL_SIZE
    return create_async_engine(
        target,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def insert_ignore(conn_dialect: str, table: Table, index_elements: Sequence[str]) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING RETURNING <first key column>` for the dialect.

    The result has a row when the insert happened and none when the key existed. (Use the
    RETURNING row, not rowcount: psycopg's async cursor reports -1 for this statement.)
    """
    dialect_insert = postgresql.insert if conn_dialect == "postgresql" else sqlite.insert
    return (
        dialect_insert(table)
        .on_conflict_do_nothing(index_elements=list(index_elements))
        .returning(table.c[index_elements[0]])
    )


class UnitOfWork:
    """One transaction. Rolls back unless `commit()` is called.

    `conn` is the AsyncConnection for Core statements. `after_commit` callbacks run once
    the commit succeeded (used to wake the outbox relay). Events are written with
    `services.common.bus.add_event(uow, ...)` so they commit or vanish with the change.
    """

    def __init__(self, engine: AsyncEngine, on_commit: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self.conn: AsyncConnection
        self.committed = False
        self.wrote_events = False

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def __aenter__(self) -> UnitOfWork:
        self.conn = await self._engine.connect()
        await self.conn.begin()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if not self.committed and self.conn.in_transaction():
                await asyncio.shield(self.conn.rollback())
        finally:
            await asyncio.shield(self.conn.close())

    async def driver_connection(self) -> Any:
        """The driver's own connection in this transaction (psycopg's AsyncConnection on
        PostgreSQL), for hot statements kept as fixed SQL text: they skip SQLAlchemy's
        statement building and compile-cache lookup, which cost several times the
        statement's own work on small queries."""
        raw = await self.conn.get_raw_connection()
        return raw.driver_connection

    async def commit(self) -> None:
        await self.conn.commit()
        self.committed = True
        if self.wrote_events and self._on_commit is not None:
            self._on_commit()


class Database:
    """An engine plus a factory of units of work."""

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size)
        self._commit_listeners: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def on_events_committed(self, callback: Callable[[], None]) -> None:
        self._commit_listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._commit_listeners:
            callback()

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.engine, self._notify)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection (on SQLite it does not take the write lock)."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{READ_ONLY_OPTION: True})
            yield conn

    async def ping(self) -> None:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
