"""Producing events: the envelope, outbox rows written in the producer's transaction, and
the relay that publishes them after commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from backorder.events.v1 import envelope_pb2
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from prometheus_client import Counter, Gauge
from sqlalchemy import Table, select, update

from services.common.bus.connection import EventBus
from services.common.clock import utcnow
from services.common.db import Database, UnitOfWork

log = logging.getLogger(__name__)

OUTBOX_PUBLISHED = Counter("backorder_outbox_published_total", "Outbox events published", ["service"])
OUTBOX_PENDING = Gauge("backorder_outbox_pending", "Outbox rows seen unpublished at the last relay pass", ["service"])


def event_subject(store_hash: str, service: str, event_type: str) -> str:
    return f"backorder.{store_hash}.{service}.{event_type}"


def build_envelope(store_hash: str, service: str, event_type: str, payload: Message, *, event_id: str | None = None,
                   occurred_at: datetime | None = None) -> envelope_pb2.Envelope:
    packed = any_pb2.Any()
    packed.Pack(payload)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(occurred_at or utcnow())
    return envelope_pb2.Envelope(
        event_id=event_id or str(uuid.uuid4()),
        store_hash=store_hash,
        type=event_type,
        occurred_at=stamp,
        producer=service,
        payload=packed,
    )


async def add_event(uow: UnitOfWork, outbox: Table, *, store_hash: str, service: str, event_type: str,
                    payload: Message, event_id: str | None = None) -> str:
    """Write one event into the outbox inside `uow`'s transaction; returns its event id."""
    envelope = build_envelope(store_hash, service, event_type, payload, event_id=event_id)
    await uow.conn.execute(
        outbox.insert().values(
            event_id=envelope.event_id,
            subject=event_subject(store_hash, service, event_type),
            payload=envelope.SerializeToString(),
            created_at=utcnow(),
        )
    )
    uow.wrote_events = True
    return envelope.event_id


async def add_events(uow: UnitOfWork, outbox: Table, service: str,
                     events: Sequence[tuple[str, str, Message]]) -> list[str]:
    """Many (store_hash, event_type, payload) in one INSERT."""
    if not events:
        return []
    rows: list[dict[str, Any]] = []
    for store_hash, event_type, payload in events:
        envelope = build_envelope(store_hash, service, event_type, payload)
        rows.append({
            "event_id": envelope.event_id,
            "subject": event_subject(store_hash, service, event_type),
            "payload": envelope.SerializeToString(),
            "created_at": utcnow(),
        })
    await uow.conn.execute(outbox.insert(), rows)
    uow.wrote_events = True
    return [row["event_id"] for row in rows]


class OutboxRelay:
    """Publishes committed outbox rows in order and marks them sent after the ack.

    On PostgreSQL rows are claimed with `FOR UPDATE SKIP LOCKED`, so several replicas can
    relay side by side. Woken at once by a commit that wrote events; polls as a fallback.
    """

    def __init__(self, db: Database, bus: EventBus, outbox: Table, service: str, *, batch: int = 500,
                 poll_interval_s: float = 1.0, retention_s: float = 24 * 3600) -> None:
        self.db = db
        self.bus = bus
        self.outbox = outbox
        self.service = service
        self.batch = batch
        self.poll_interval_s = poll_interval_s
        self.retention_s = retention_s
        self._wake = asyncio.Event()
        self._stopping = False
        db.on_events_committed(self.wake)
        # On PostgreSQL a pass claims and marks its rows in one statement, as fixed SQL
        # text on the driver: under load a pass runs after nearly every commit, and each
        # statement's round trip and SQLAlchemy's work per statement dominated its cost.
        # The mark commits only after every ack (a failed pass rolls it back).
        self._claim_and_mark_sql = (
            f"UPDATE {outbox.name} SET published_at = statement_timestamp() WHERE seq IN ("
            f"SELECT seq FROM {outbox.name} WHERE published_at IS NULL ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED"
            ") RETURNING seq, event_id, subject, payload")

    def wake(self) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        """One pass: claim up to `batch` unpublished rows (row locks, skipping rows another
        relay holds), publish them, mark them sent and commit; returns how many were
        published. Raises if NATS refuses or does not ack any of them (nothing is marked)."""
        async with self.db.unit_of_work() as uow:
            postgresql = uow.dialect == "postgresql"
            rows: list[Any]
            if postgresql:
                driver = await uow.driver_connection()
                claimed: list[Any] = await (await driver.execute(self._claim_and_mark_sql, (self.batch,))).fetchall()
                rows = sorted(claimed)
            else:
                rows = list((await uow.conn.execute(
                    select(self.outbox.c.seq, self.outbox.c.event_id, self.outbox.c.subject, self.outbox.c.payload)
                    .where(self.outbox.c.published_at.is_(None)).order_by(self.outbox.c.seq).limit(self.batch)
                )).all())
            OUTBOX_PENDING.labels(self.service).set(len(rows))
            if not rows:
                return 0
            # Published concurrently, each with its own ack timeout: consumers never rely on
            # order across events (each carries its own state); any refused ack fails the pass.
            await asyncio.gather(*(self.bus.publish(subject, payload, event_id)
                                   for _, event_id, subject, payload in rows))
            if not postgresql:
                await uow.conn.execute(update(self.outbox).where(self.outbox.c.seq.in_([row[0] for row in rows]))
                                       .values(published_at=utcnow()))
            await uow.commit()
        OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    async def purge_published(self) -> None:
        cutoff = datetime.fromtimestamp(time.time() - self.retention_s, UTC)
        async with self.db.unit_of_work() as uow:
            await uow.conn.execute(
                self.outbox.delete().where(self.outbox.c.published_at.is_not(None), self.outbox.c.published_at < cutoff)
            )
            await uow.commit()

    async def run(self) -> None:
        failures = 0
        last_purge = time.monotonic()
        while not self._stopping:
            try:
                published = await self.publish_pending()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS or DB down: back off and retry
                failures += 1
                delay = min(5.0, 0.1 * 2 ** min(failures, 6)) * (0.5 + random.random() / 2)
                log.warning("outbox relay pass failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            if published:
                continue
            if time.monotonic() - last_purge > 3600:
                last_purge = time.monotonic()
                with contextlib.suppress(Exception):
                    await self.purge_published()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

