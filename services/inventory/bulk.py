"""Set-based writes. On PostgreSQL many rows go in with COPY (and updates through a
staging table and one UPDATE … FROM); on SQLite executemany is already fast.

Why not SQLAlchemy's multi-row INSERT on PostgreSQL: psycopg parses every statement's
placeholders in Python, and a 1,000-row × 20-column INSERT costs far more to parse than
to run. COPY has no placeholders.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

from backorder.events.v1 import envelope_pb2
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from sqlalchemy import Table, bindparam, update

from services.common.bus import event_subject, now_utc
from services.common.db import UnitOfWork


class DuplicateKey(Exception):
    """COPY hit a UNIQUE constraint (the transaction is aborted; roll back)."""


async def _driver(uow: UnitOfWork) -> Any:
    raw = await uow.conn.get_raw_connection()
    return raw.driver_connection


async def copy_rows(uow: UnitOfWork, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` in this transaction."""
    if not rows:
        return
    if uow.dialect != "postgresql":
        await uow.conn.execute(table.insert(), list(rows))
        return
    import psycopg

    columns = list(rows[0])
    driver = await _driver(uow)
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    try:
        async with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                await copy.write_row([row[c] for c in columns])
    except psycopg.errors.UniqueViolation as exc:
        raise DuplicateKey(str(exc)) from exc



async def allocate_ids(uow: UnitOfWork, table: Table, count: int) -> list[int] | None:
    """`count` ids from the table's sequence (PostgreSQL), None on SQLite (use RETURNING)."""
    if uow.dialect != "postgresql" or count == 0:
        return None
    driver = await _driver(uow)
    async with driver.cursor() as cursor:
        await cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
                             "FROM generate_series(1, %s)", (count,))
        return [row[0] for row in await cursor.fetchall()]


async def update_rows(uow: UnitOfWork, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE table SET <other columns> = row values WHERE <key> = row[key], for every row."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != key]
    if uow.dialect != "postgresql" or len(rows) < 200:
        statement = update(table).where(table.c[key] == bindparam(f"b_{key}")).values(
            {c: bindparam(f"b_{c}") for c in columns})
        await uow.conn.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])
        return
    driver = await _driver(uow)
    staging = f"staging_{table.name}"
    async with driver.cursor() as cursor:
        # Same column types, no constraints; dropped at commit.
        await cursor.execute(f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS "
                             f"SELECT {key}, {', '.join(columns)} FROM {table.name} WITH NO DATA")
        async with cursor.copy(f"COPY {staging} ({key}, {', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                await copy.write_row([row[key], *(row[c] for c in columns)])
        assignments = ", ".join(f"{c} = s.{c}" for c in columns)
        await cursor.execute(f"UPDATE {table.name} AS t SET {assignments} FROM {staging} AS s WHERE t.{key} = s.{key}")


async def add_events_copy(uow: UnitOfWork, outbox: Table, service: str,
                          events: Sequence[tuple[str, str, Message]]) -> None:
    """Like services.common.bus.add_events (same rows, the same Envelope as build_envelope
    makes), written with COPY; one timestamp and one urandom read for the whole batch."""
    if not events:
        return
    created = now_utc()
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(created)
    randomness = os.urandom(16 * len(events))
    rows = []
    for index, (store_hash, event_type, payload) in enumerate(events):
        event_id = str(uuid.UUID(bytes=randomness[16 * index:16 * index + 16], version=4))
        packed = any_pb2.Any()
        packed.Pack(payload)
        envelope = envelope_pb2.Envelope(event_id=event_id, store_hash=store_hash, type=event_type,
                                         occurred_at=occurred, producer=service, payload=packed)
        rows.append({"event_id": event_id, "subject": event_subject(store_hash, service, event_type),
                     "payload": envelope.SerializeToString(), "created_at": created})
    await copy_rows(uow, outbox, rows)
    uow.wrote_events = True
