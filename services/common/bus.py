"""The event bus: JetStream connection and streams, the transactional outbox and its relay,
and durable pull consumers with an inbox.

Guarantees (documented for subscribers in docs/events.md):
- A producer writes its event rows in the same transaction as the change (`add_event`);
  the relay publishes them with `Nats-Msg-Id` = event id and marks them sent only after
  JetStream's ack. A relay killed between publish and mark publishes again on restart and
  JetStream drops the duplicate inside its duplicate window; past the window the
  consumer's inbox drops it.
- A consumer acks only after its transaction committed; a message delivered again (ack
  lost, consumer killed, AckWait passed) finds its id in the inbox and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats
from backorder.events.v1 import envelope_pb2
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from prometheus_client import Counter, Gauge
from sqlalchemy import Table, select, update

from services.common.db import Database, UnitOfWork, insert_ignore
from services.common.settings import env

log = logging.getLogger(__name__)

STREAM_EVENTS = "BACKORDER_EVENTS"
STREAM_WEBHOOKS = "BC_WEBHOOKS"
EVENTS_SUBJECTS = ["backorder.>"]
WEBHOOK_SUBJECTS = ["bc.webhooks.>"]
DUPLICATE_WINDOW_S = 120.0
MSG_ID_HEADER = "Nats-Msg-Id"
FETCH_WAIT_S = 1.0  # how long a consumer's fetch waits for messages
FETCH_GIVE_UP_S = 10.0  # past this a fetch counts as stuck (see Consumer._fetch)

OUTBOX_PUBLISHED = Counter("backorder_outbox_published_total", "Outbox events published", ["service"])
OUTBOX_PENDING = Gauge("backorder_outbox_pending", "Outbox rows seen unpublished at the last relay pass", ["service"])
CONSUMED = Counter("backorder_events_consumed_total", "Messages handled", ["consumer", "outcome"])


class TransientError(Exception):
    """Try again later (nak with delay)."""


class PermanentError(Exception):
    """This message can never be handled (term)."""


# ---------------------------------------------------------------- producing

def now_utc() -> datetime:
    return datetime.now(UTC)


def event_subject(store_hash: str, service: str, event_type: str) -> str:
    return f"backorder.{store_hash}.{service}.{event_type}"


def build_envelope(store_hash: str, service: str, event_type: str, payload: Message, *, event_id: str | None = None,
                   occurred_at: datetime | None = None) -> envelope_pb2.Envelope:
    packed = any_pb2.Any()
    packed.Pack(payload)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(occurred_at or now_utc())
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
            created_at=now_utc(),
        )
    )
    uow.wrote_events = True
    return envelope.event_id


async def add_events(uow: UnitOfWork, outbox: Table, service: str,
                     events: Sequence[tuple[str, str, Message]]) -> list[str]:
    """Many (store_hash, event_type, payload) in one INSERT."""
    if not events:
        return []
    rows = []
    for store_hash, event_type, payload in events:
        envelope = build_envelope(store_hash, service, event_type, payload)
        rows.append({
            "event_id": envelope.event_id,
            "subject": event_subject(store_hash, service, event_type),
            "payload": envelope.SerializeToString(),
            "created_at": now_utc(),
        })
    await uow.conn.execute(outbox.insert(), rows)
    uow.wrote_events = True
    return [row["event_id"] for row in rows]


# ---------------------------------------------------------------- connection

class EventBus:
    """One NATS connection per process, reconnecting forever."""

    def __init__(self, url: str, name: str, *, replicas: int | None = None) -> None:
        self.url = url
        self.name = name
        # ensure_streams sets the streams' replicas, so every process must agree: a gateway
        # left at 1 would scale the R3 streams of a JetStream cluster down at each start.
        self.replicas = env("BACKORDER_NATS_REPLICAS", 1, int) if replicas is None else replicas
        self.nc: nats.NATS | None = None
        self.js: Any = None
        self._state_listeners: list[Callable[[bool], None]] = []

    def on_connection_change(self, callback: Callable[[bool], None]) -> None:
        self._state_listeners.append(callback)

    def _set_state(self, up: bool) -> None:
        for callback in self._state_listeners:
            callback(up)

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self, *, timeout_s: float = 30.0) -> None:
        """Connect, retrying until `timeout_s` (the server may still be starting)."""

        async def disconnected() -> None:
            log.warning("nats disconnected")
            self._set_state(False)

        async def reconnected() -> None:
            log.info("nats reconnected")
            self._set_state(True)

        async def error(exc: Exception) -> None:
            log.debug("nats error: %s", exc)

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.nc = await nats.connect(
                    servers=[self.url],
                    name=self.name,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25,
                    connect_timeout=2,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=error,
                    allow_reconnect=True,
                )
                break
            except Exception as exc:  # noqa: BLE001 - any connect failure is retried until the deadline
                if time.monotonic() > deadline:
                    raise ConnectionError(f"cannot reach NATS at {self.url}: {exc}") from exc
                await asyncio.sleep(0.2)
        self.js = self.nc.jetstream(timeout=10)
        self._set_state(True)

    async def ensure_streams(self) -> None:
        """Create or update the platform's streams (file storage)."""
        for name, subjects, max_age in (
            (STREAM_EVENTS, EVENTS_SUBJECTS, 7 * 24 * 3600),
            (STREAM_WEBHOOKS, WEBHOOK_SUBJECTS, 7 * 24 * 3600),
        ):
            config = StreamConfig(
                name=name,
                subjects=subjects,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                duplicate_window=DUPLICATE_WINDOW_S,
                max_age=max_age,
            )
            try:
                await self.js.stream_info(name)
                await self.js.update_stream(config)
            except nats.js.errors.NotFoundError:
                await self.js.add_stream(config)

    async def publish(self, subject: str, data: bytes, msg_id: str, *, timeout: float = 5.0) -> Any:
        """Publish and wait for JetStream's ack (raises on timeout or no responders)."""
        return await self.js.publish(subject, data, timeout=timeout, headers={MSG_ID_HEADER: msg_id})

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
            with contextlib.suppress(Exception):
                await self.nc.close()


# ---------------------------------------------------------------- relay

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
            if postgresql:
                driver = await uow.driver_connection()
                rows = sorted(await (await driver.execute(self._claim_and_mark_sql, (self.batch,))).fetchall())
            else:
                rows = (await uow.conn.execute(
                    select(self.outbox.c.seq, self.outbox.c.event_id, self.outbox.c.subject, self.outbox.c.payload)
                    .where(self.outbox.c.published_at.is_(None)).order_by(self.outbox.c.seq).limit(self.batch)
                )).all()
            OUTBOX_PENDING.labels(self.service).set(len(rows))
            if not rows:
                return 0
            # Published concurrently, each with its own ack timeout: consumers never rely on
            # order across events (each carries its own state); any refused ack fails the pass.
            await asyncio.gather(*(self.bus.publish(subject, payload, event_id)
                                   for _, event_id, subject, payload in rows))
            if not postgresql:
                await uow.conn.execute(update(self.outbox).where(self.outbox.c.seq.in_([row[0] for row in rows]))
                                       .values(published_at=now_utc()))
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


# ---------------------------------------------------------------- consuming

@dataclass
class IncomingMessage:
    """One delivered message. `envelope` is set for domain events (protobuf)."""

    subject: str
    data: bytes
    message_id: str
    num_delivered: int
    envelope: envelope_pb2.Envelope | None = None

    def unpack(self, message_type: type[Message]) -> Message:
        if self.envelope is None:
            raise PermanentError("not a domain event")
        payload = message_type()
        if not self.envelope.payload.Unpack(payload):
            raise PermanentError(f"payload is {self.envelope.payload.type_url}, not {message_type.DESCRIPTOR.full_name}")
        return payload


def decode_envelope(msg: Msg) -> IncomingMessage:
    envelope = envelope_pb2.Envelope()
    try:
        envelope.ParseFromString(msg.data)
    except DecodeError as exc:
        raise PermanentError(f"undecodable envelope: {exc}") from exc
    if not envelope.event_id:
        raise PermanentError("envelope without event_id")
    return IncomingMessage(msg.subject, msg.data, envelope.event_id, msg.metadata.num_delivered, envelope)


def decode_raw(msg: Msg) -> IncomingMessage:
    msg_id = (msg.headers or {}).get(MSG_ID_HEADER) or f"seq-{msg.metadata.sequence.stream}"
    return IncomingMessage(msg.subject, msg.data, msg_id, msg.metadata.num_delivered)


TransactionalHandler = Callable[[UnitOfWork, IncomingMessage], Awaitable[None]]
Effect = Callable[[IncomingMessage], Awaitable[None]]
# Batch forms: the handler gets every fresh message of a fetch in one transaction; the
# effect gets them all at once and answers one outcome per message (None = done).
BatchHandler = Callable[[UnitOfWork, list[IncomingMessage]], Awaitable[None]]
BatchEffect = Callable[[list[IncomingMessage]], Awaitable[Sequence[BaseException | None]]]


async def no_transactional_work(_uow: UnitOfWork, _message: IncomingMessage) -> None:
    return None


@dataclass
class ConsumerSpec:
    """A durable pull consumer.

    `handler(uow, message)` runs inside one transaction that also records the message id
    in the inbox; the message is acked only after that transaction committed. A message
    whose id is already in the inbox is acked without calling anything.

    `effect(message)`, when given, runs first and outside any transaction: for work on
    other systems (BigCommerce, another service over gRPC) that must not hold a database
    transaction open (on SQLite, the write lock). Such an effect must itself be idempotent
    — it runs again if the process dies between the effect and the inbox commit.
    """

    durable: str
    stream: str
    subjects: list[str]
    handler: TransactionalHandler = no_transactional_work
    decode: Callable[[Msg], IncomingMessage] = decode_envelope
    effect: Effect | None = None
    batch_handler: BatchHandler | None = None
    batch_effect: BatchEffect | None = None
    batch: int = 64
    concurrency: int = 16
    ack_wait_s: float = 30.0
    max_deliver: int = 50
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)


class Consumer:
    def __init__(self, spec: ConsumerSpec, bus: EventBus, db: Database, inbox: Table) -> None:
        self.spec = spec
        self.bus = bus
        self.db = db
        self.inbox = inbox
        self._stopping = asyncio.Event()
        self._subscription: Any = None
        self._slots = asyncio.Semaphore(spec.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()

    async def _subscribe(self) -> None:
        spec = self.spec
        config = ConsumerConfig(
            durable_name=spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=spec.ack_wait_s,
            max_deliver=spec.max_deliver,
            max_ack_pending=max(1000, spec.batch * 4),
        )
        if len(spec.subjects) == 1:
            config.filter_subject = spec.subjects[0]
        else:
            config.filter_subjects = spec.subjects
        await self.bus.js.add_consumer(spec.stream, config)
        self._subscription = await self.bus.js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)

    async def _already_applied(self, message_id: str) -> bool:
        async with self.db.read() as conn:
            found = await conn.execute(select(self.inbox.c.message_id).where(
                self.inbox.c.consumer == self.spec.durable, self.inbox.c.message_id == message_id))
            return found.first() is not None

    async def _apply(self, incoming: IncomingMessage) -> str:
        """Run the effect (if any) and the handler once; returns the outcome label."""
        spec = self.spec
        if spec.effect is not None:
            if await self._already_applied(incoming.message_id):
                return "duplicate"
            await spec.effect(incoming)
        async with self.db.unit_of_work() as uow:
            fresh = await uow.conn.execute(
                insert_ignore(self.db.dialect, self.inbox, ["consumer", "message_id"]).values(
                    consumer=spec.durable, message_id=incoming.message_id, received_at=now_utc()
                )
            )
            if fresh.first() is None:
                return "duplicate"
            await spec.handler(uow, incoming)
            await uow.commit()
        return "applied"

    async def handle(self, msg: Msg) -> None:
        """Decode, apply once, ack — or nak with backoff (any error) / term (PermanentError)."""
        incoming = await self._decode(msg)
        if incoming is None:
            return
        try:
            outcome = await self._apply(incoming)
        except Exception as exc:  # noqa: BLE001 - settled as a term (PermanentError) or a retry with backoff
            await self._settle(msg, incoming, exc)
            return
        await self._settle(msg, incoming, None, duplicate=outcome == "duplicate")

    async def _decode(self, msg: Msg) -> IncomingMessage | None:
        """The decoded message, or None after terminating one that cannot be decoded."""
        try:
            return self.spec.decode(msg)
        except PermanentError as exc:
            log.error("consumer %s: terminating undecodable message on %s: %s", self.spec.durable, msg.subject, exc)
            CONSUMED.labels(self.spec.durable, "poison").inc()
            with contextlib.suppress(Exception):
                await msg.term()
            return None

    async def _run_one(self, msg: Msg) -> None:
        try:
            await self.handle(msg)
        finally:
            self._slots.release()

    # -- batch mode

    @property
    def batched(self) -> bool:
        return self.spec.batch_handler is not None or self.spec.batch_effect is not None

    async def _fresh_ids(self, message_ids: list[str]) -> set[str]:
        """The ids not yet in the inbox (for effects, which run before the inbox insert)."""
        async with self.db.read() as conn:
            found = await conn.execute(select(self.inbox.c.message_id).where(
                self.inbox.c.consumer == self.spec.durable, self.inbox.c.message_id.in_(message_ids)))
            return set(message_ids) - {row.message_id for row in found}

    async def _record_batch(self, incoming: list[IncomingMessage]) -> set[str]:
        """One transaction: the inbox rows of `incoming` and, for those not seen before, the
        batch handler. Returns the ids that were not seen before."""
        spec = self.spec
        received = now_utc()
        async with self.db.unit_of_work() as uow:
            # executemany with RETURNING: SQLAlchemy sends it as multi-row INSERTs ("insertmanyvalues")
            # and compiles the statement once, whatever the batch's size.
            statement = insert_ignore(self.db.dialect, self.inbox, ["consumer", "message_id"]).returning(
                self.inbox.c.message_id)
            inserted = await uow.conn.execute(statement, [
                {"consumer": spec.durable, "message_id": m.message_id, "received_at": received} for m in incoming])
            fresh = {row.message_id for row in inserted}
            if spec.batch_handler is not None and fresh:
                await spec.batch_handler(uow, [m for m in incoming if m.message_id in fresh])
            await uow.commit()
        return fresh

    async def _apply_batch(self, incoming: list[IncomingMessage]) -> tuple[list[BaseException | None], set[str]]:
        """Effect (if any) then the inbox transaction; one outcome per message (None = done)
        and the ids that were duplicates. Raises when the inbox transaction fails (the
        caller then handles the messages one by one)."""
        spec = self.spec
        # Two deliveries of one message in one fetch are applied once and share its outcome
        # (acking the copy while the first is nak'ed would lose the message).
        first_of: dict[str, IncomingMessage] = {}
        for message in incoming:
            first_of.setdefault(message.message_id, message)
        unique = list(first_of.values())
        failed: dict[str, BaseException] = {}
        fresh = {m.message_id for m in unique}
        if spec.batch_effect is not None:
            fresh = await self._fresh_ids([m.message_id for m in unique])
            pending = [m for m in unique if m.message_id in fresh]
            results = list(await spec.batch_effect(pending)) if pending else []
            failed = {m.message_id: r for m, r in zip(pending, results, strict=True) if r is not None}
        todo = [m for m in unique if m.message_id not in failed]
        if todo:
            fresh &= await self._record_batch(todo)
        duplicates = {m.message_id for m in unique if m.message_id not in fresh}
        return [failed.get(m.message_id) for m in incoming], duplicates

    async def _settle(self, msg: Msg, incoming: IncomingMessage, outcome: BaseException | None,
                      duplicate: bool = False) -> None:
        """Ack, or term (PermanentError), or nak with backoff (anything else)."""
        spec = self.spec
        if outcome is None:
            CONSUMED.labels(spec.durable, "duplicate" if duplicate else "applied").inc()
            with contextlib.suppress(Exception):
                await msg.ack()
            return
        if isinstance(outcome, PermanentError):
            log.error("consumer %s: terminating message %s: %s", spec.durable, incoming.message_id, outcome)
            CONSUMED.labels(spec.durable, "poison").inc()
            with contextlib.suppress(Exception):
                await msg.term()
            return
        attempt = incoming.num_delivered
        delay = min(spec.backoff_max_s, spec.backoff_base_s * 2 ** min(attempt - 1, 10))
        level = logging.ERROR if attempt >= spec.max_deliver else logging.WARNING
        log.log(level, "consumer %s: message %s failed (attempt %d): %r; retry in %.1fs",
                spec.durable, incoming.message_id, attempt, outcome, delay)
        CONSUMED.labels(spec.durable, "retry").inc()
        with contextlib.suppress(Exception):
            await msg.nak(delay=delay)

    async def handle_batch(self, msgs: list[Msg]) -> None:
        """Decode all, apply them as one batch, settle each; on a failed batch transaction,
        apply the messages again one by one."""
        decoded = [(msg, incoming) for msg in msgs if (incoming := await self._decode(msg)) is not None]
        if not decoded:
            return
        duplicates: set[str] = set()
        try:
            outcomes, duplicates = await self._apply_batch([incoming for _, incoming in decoded])
        except Exception as exc:  # noqa: BLE001 - isolate the message that failed the batch
            if len(decoded) == 1:
                outcomes = [exc]
            else:
                log.info("consumer %s: batch of %d failed (%r); handling its messages one by one",
                         self.spec.durable, len(decoded), exc)
                for msg, incoming in decoded:
                    try:
                        single_outcomes, single_duplicates = await self._apply_batch([incoming])
                        outcome = single_outcomes[0]
                    except Exception as single:  # noqa: BLE001 - settled below as a retry or a term
                        outcome, single_duplicates = single, set()
                    await self._settle(msg, incoming, outcome, incoming.message_id in single_duplicates)
                return
        await asyncio.gather(*(self._settle(msg, incoming, outcome, incoming.message_id in duplicates)
                               for (msg, incoming), outcome in zip(decoded, outcomes, strict=True)))

    async def _keep_in_progress(self, msgs: list[Msg]) -> None:
        """Tell JetStream the batch's messages are still being worked on (resets their
        AckWait) every third of it: one slow message holds its whole batch, and the others
        must not be redelivered meanwhile."""
        interval = max(self.spec.ack_wait_s / 3, 0.1)
        while True:
            await asyncio.sleep(interval)
            for msg in msgs:
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def _run_batch(self, msgs: list[Msg]) -> None:
        heartbeat = asyncio.create_task(self._keep_in_progress(msgs))
        try:
            await self.handle_batch(msgs)
        finally:
            heartbeat.cancel()
            for _ in msgs:
                self._slots.release()

    async def _take_free_slots(self) -> int:
        """Wait for one free handling slot, then take every other free one (at most `batch`)."""
        await self._slots.acquire()
        free = 1
        while free < self.spec.batch and not self._slots.locked():
            await self._slots.acquire()
            free += 1
        return free

    async def _fetch(self, count: int) -> list[Msg]:
        """The subscription's fetch (1 s wait) in its own task, bounded from outside: seen in
        a kill-and-restart test, a fetch that outlived its timeout and then ignored the
        consumer task's cancel, which left a stopping service waiting forever. Now a cancel
        of the consumer takes effect at once, and a fetch stuck past FETCH_GIVE_UP_S counts
        as empty (its task is cancelled; anything it still gets is redelivered after AckWait)."""
        fetch = asyncio.ensure_future(self._subscription.fetch(batch=count, timeout=FETCH_WAIT_S))
        try:
            return await asyncio.wait_for(asyncio.shield(fetch), FETCH_GIVE_UP_S)
        except TimeoutError:
            fetch.cancel()
            if not self._stopping.is_set():
                log.warning("consumer %s: a fetch outlived its timeout; fetching again", self.spec.durable)
            return []
        except asyncio.CancelledError:
            fetch.cancel()
            raise

    async def run(self) -> None:
        """Fetch only as many messages as there are free slots: a fetched message's AckWait
        runs from delivery, so messages queued here behind busy slots would be redelivered
        (and handled twice) under load."""
        await self._subscribe()
        while not self._stopping.is_set():
            free = await self._take_free_slots()
            try:
                msgs = await self._fetch(free)
            except (nats.errors.TimeoutError, TimeoutError):
                msgs = []
            except asyncio.CancelledError:
                for _ in range(free):
                    self._slots.release()
                raise
            except Exception as exc:  # noqa: BLE001 - connection trouble: wait for the reconnect
                log.warning("consumer %s: fetch failed: %s", self.spec.durable, exc)
                msgs = []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 0.5)
            for _ in range(free - len(msgs)):
                self._slots.release()
            runs = [self._run_batch(msgs)] if self.batched and msgs else [self._run_one(msg) for msg in msgs]
            for run in runs:
                task = asyncio.create_task(run)
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def drain(self) -> None:
        """Stop fetching and finish the messages in hand."""
        self._stopping.set()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
