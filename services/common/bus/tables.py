"""The outbox and inbox tables every service with events adds to its metadata."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary, MetaData, String, Table


def _seq_type() -> Any:
    # SQLite autoincrements only an INTEGER PRIMARY KEY.
    return BigInteger().with_variant(Integer, "sqlite")


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("seq", _seq_type(), primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index("ix_outbox_unpublished", "published_at", "seq"),
    )


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("message_id", String(100), primary_key=True),
        Column("received_at", DateTime(timezone=True), nullable=False),
    )


def bus_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The outbox and inbox tables, added to a service's metadata."""
    return outbox_table(metadata), inbox_table(metadata)


def create_bus_tables(op: Any) -> None:
    """For a service's first migration: create the outbox and inbox exactly as declared here."""
    scratch = MetaData()
    for table in bus_tables(scratch):
        op.create_table(table.name, *(column._copy() for column in table.columns))
        for index in table.indexes:
            op.create_index(index.name, table.name, [c.name for c in index.columns])

