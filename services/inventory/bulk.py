"""Set-based writes. On PostgreSQL many rows go in with COPY (and updates through a
staging table and one UPDATE … FROM); on SQLite executemany is already fast.

Why not SQLAlchemy's multi-row INSERT on PostgreSQL: psycopg parses every statement's
placeholders in Python, and a 1,000-row × 20-column INSERT costs far more to parse than
to run. COPY has no placeholders.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from backorder.events.v1 import envelope_pb2
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from sqlalchemy import Table, bindparam, update

from services.common.bus import event_subject
from services.common.clock import utcnow
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


async def fill_temporary(uow: UnitOfWork, table: Table, rows: Sequence[Sequence[Any]]) -> None:
    """Create the temporary `table` in this transaction and insert `rows` (tuples in column
    order; COPY on PostgreSQL). Drop it with drop_temporary before committing (SQLite keeps
    temporary tables for the connection's life)."""
    await uow.conn.run_sync(table.create)
    if not rows:
        return
    columns = [c.name for c in table.columns]
    if uow.dialect != "postgresql":
        await uow.conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    driver = await _driver(uow)
    async with driver.cursor() as cursor, cursor.copy(
            f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            await copy.write_row(row)


async def drop_temporary(uow: UnitOfWork, table: Table) -> None:
    await uow.conn.run_sync(table.drop)


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


def outbox_rows(service: str, events: Iterable[tuple[str, str, Message]]) -> list[dict[str, Any]]:
    """Outbox rows for (store_hash, event_type, payload): the same rows as
    services.common.bus.add_events makes (byte for byte the Envelope build_envelope makes),
    with one timestamp for all.

    `events` may be a generator: each payload is serialized as soon as it is built, so a
    100,000-event import never holds 100,000 messages (each keeps its own arena; holding
    them cost more than building them). One Envelope per (store, type) is reused for every
    event of that kind, as building a fresh Envelope, Any and Timestamp per event did."""
    created = utcnow()
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(created)
    randomness, offset = b"", 0
    templates: dict[tuple[str, str, str], tuple[envelope_pb2.Envelope, str]] = {}
    rows = []
    for store_hash, event_type, payload in events:
        kind = (store_hash, event_type, payload.DESCRIPTOR.full_name)
        template = templates.get(kind)
        if template is None:
            envelope = envelope_pb2.Envelope(store_hash=store_hash, type=event_type, occurred_at=occurred,
                                             producer=service)
            envelope.payload.Pack(payload)  # the type URL Any.Pack writes
            template = templates[kind] = (envelope, event_subject(store_hash, service, event_type))
        envelope, subject = template
        if offset == len(randomness):
            randomness, offset = os.urandom(16 * 1024), 0
        event_id = str(uuid.UUID(bytes=randomness[offset:offset + 16], version=4))
        offset += 16
        envelope.event_id = event_id
        envelope.payload.value = payload.SerializeToString()
        rows.append({"event_id": event_id, "subject": subject, "payload": envelope.SerializeToString(),
                     "created_at": created})
    return rows


async def add_events_copy(uow: UnitOfWork, outbox: Table, service: str,
                          events: Iterable[tuple[str, str, Message]]) -> None:
    """Like services.common.bus.add_events, written with COPY (`events` may be a generator)."""
    rows = outbox_rows(service, events)
    if not rows:
        return
    await copy_rows(uow, outbox, rows)
    uow.wrote_events = True


_one_statement_sql: dict[tuple[Any, ...], str] = {}


def _json_value(value: Any) -> str:
    """JSON for what json.dumps cannot write itself, in PostgreSQL's input syntax."""
    if isinstance(value, dt.date):  # datetime included: ISO 8601, with its UTC offset
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _one_statement(update: tuple[Table, str, list[str]] | None, inserts: list[tuple[Table, list[str]]]) -> str:
    parts = []
    if update is not None:
        table, key, columns = update
        parts.append(f"UPDATE {table.name} AS t SET {', '.join(f'{c} = s.{c}' for c in columns)} "
                     f"FROM json_populate_recordset(NULL::{table.name}, %s::json) AS s WHERE t.{key} = s.{key}")
    for table, columns in inserts:
        parts.append(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                     f"SELECT {', '.join(columns)} FROM json_populate_recordset(NULL::{table.name}, %s::json)")
    *ctes, last = parts
    return ("WITH " + ", ".join(f"w{i} AS ({cte})" for i, cte in enumerate(ctes)) + " " if ctes else "") + last


async def write_in_one_statement(uow: UnitOfWork, update: tuple[Table, str, Sequence[dict[str, Any]]],
                                 inserts: Sequence[tuple[Table, Sequence[dict[str, Any]]]]) -> None:
    """PostgreSQL: UPDATE `update`'s table SET … WHERE key = row[key] for each of its rows,
    and INSERT the rows of each of `inserts`, all in one statement (data-modifying CTEs),
    so a small change set costs one round trip whatever its tables. Each table's rows go
    as one JSON parameter read back with json_populate_recordset (the table's own column
    types, lengths checked): json.dumps writes them far faster than the driver adapts an
    array per column. Rows of one table have the same keys. Raises DuplicateKey on a
    UNIQUE violation (the transaction is aborted; roll back)."""
    import psycopg

    table, key, update_rows_ = update
    update_shape = (table, key, [c for c in update_rows_[0] if c != key]) if update_rows_ else None
    inserted = [(t, rows) for t, rows in inserts if rows]
    if update_shape is None and not inserted:
        return
    insert_shapes = [(t, list(rows[0])) for t, rows in inserted]
    shape = (update_shape and (table.name, key, *update_shape[2]), *((t.name, *c) for t, c in insert_shapes))
    sql = _one_statement_sql.get(shape)
    if sql is None:
        sql = _one_statement_sql[shape] = _one_statement(update_shape, insert_shapes)
    params = [json.dumps(rows, default=_json_value, ensure_ascii=False, separators=(",", ":"))
              for rows in ([update_rows_] if update_rows_ else []) + [rows for _, rows in inserted]]
    driver = await _driver(uow)
    try:
        await driver.execute(sql, params)
    except psycopg.errors.UniqueViolation as exc:
        raise DuplicateKey(str(exc)) from exc
