"""The table shapes every service declares the same way, defined once.

- `service_metadata()`: a service's `MetaData` with the event bus's `outbox` and `inbox`
  (services.common.bus writes and reads them) already in it.
- Tables of one store's rows: `store_table()` (keyed by `store_hash`, alone or with more
  key columns) and `store_log()` (a surrogate `id`, then `store_hash`).
- Columns spelled alike everywhere: `store_hash()`, `row_id()`, `timestamp()`, `blank_string()`.
- For a service's first migration: `create_bus_tables(op)` / `drop_bus_tables(op)`.

Both `services/<svc>/tables.py` and the migrations build their columns with these helpers,
so what a helper returns is part of every schema already deployed: never change it. A
column of another shape is spelled out where it is used (and migrated like any other).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary, MetaData, String, Table
from sqlalchemy.sql.schema import SchemaItem

# SQLite autoincrements only an INTEGER PRIMARY KEY.
ID = BigInteger().with_variant(Integer, "sqlite")


def row_id() -> Column[int]:
    """`id`, the surrogate key of an append-mostly table (BIGINT, autoincrementing)."""
    return Column("id", ID, primary_key=True, autoincrement=True)


def store_hash(*, primary_key: bool = False) -> Column[str]:
    """`store_hash` VARCHAR(64), the tenant every row belongs to; NOT NULL either way."""
    if primary_key:
        return Column("store_hash", String(64), primary_key=True)
    return Column("store_hash", String(64), nullable=False)


def timestamp(name: str, *, nullable: bool = False) -> Column[datetime]:
    """A moment: TIMESTAMP WITH TIME ZONE on PostgreSQL; SQLite keeps no zone, so read it
    back through services.common.clock.as_utc."""
    return Column(name, DateTime(timezone=True), nullable=nullable)


def blank_string(name: str, length: int) -> Column[str]:
    """VARCHAR(length) NOT NULL DEFAULT '': the empty string stands for "not known"."""
    return Column(name, String(length), nullable=False, server_default="")


def store_table(name: str, metadata: MetaData, *items: SchemaItem) -> Table:
    """A table keyed by store: `store_hash` first, the whole primary key or its first column
    (the key columns among `items` follow it)."""
    return Table(name, metadata, store_hash(primary_key=True), *items)


def store_log(name: str, metadata: MetaData, *items: SchemaItem) -> Table:
    """A store's growing list of rows (ledgers, histories): `id` (surrogate key), `store_hash`."""
    return Table(name, metadata, row_id(), store_hash(), *items)


# ---------------------------------------------------------------- the event bus's tables

def outbox_table(metadata: MetaData) -> Table:
    """Events written in the producer's transaction; the relay publishes them in `seq` order."""
    return Table(
        "outbox",
        metadata,
        Column("seq", ID, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        timestamp("created_at"),
        timestamp("published_at", nullable=True),
        Index("ix_outbox_unpublished", "published_at", "seq"),
    )


def inbox_table(metadata: MetaData) -> Table:
    """The messages each durable consumer has handled (its dedupe key)."""
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("message_id", String(100), primary_key=True),
        timestamp("received_at"),
    )


def bus_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The outbox and inbox tables, added to `metadata`."""
    return outbox_table(metadata), inbox_table(metadata)


def service_metadata() -> tuple[MetaData, Table, Table]:
    """A service's `metadata`, with its `outbox` and `inbox` already declared in it."""
    metadata = MetaData()
    outbox, inbox = bus_tables(metadata)
    return metadata, outbox, inbox


def create_bus_tables(op: Any) -> None:
    """For a service's first migration: create the outbox and inbox exactly as declared here."""
    for table in bus_tables(MetaData()):
        op.create_table(table.name, *(column._copy() for column in table.columns))
        for index in table.indexes:
            op.create_index(index.name, table.name, [c.name for c in index.columns])


def drop_bus_tables(op: Any) -> None:
    """The inverse of `create_bus_tables`, for the first migration's downgrade."""
    op.drop_table("inbox")
    op.drop_table("outbox")
