"""Durable pull consumers with an inbox: a message is acked only after its transaction
committed, and one already in the inbox changes nothing. A consumer handles messages one by
one, or (with a batch handler or effect) every message of a fetch together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from sqlalchemy import Table, select

from services.common.bus.connection import EventBus
from services.common.bus.messages import ConsumerSpec, IncomingMessage, PermanentError
from services.common.clock import utcnow
from services.common.db import Database, insert_ignore

log = logging.getLogger(__name__)

FETCH_WAIT_S = 1.0  # how long a consumer's fetch waits for messages
FETCH_GIVE_UP_S = 10.0  # past this a fetch counts as stuck (see Consumer._fetch)

CONSUMED = Counter("backorder_events_consumed_total", "Messages handled", ["consumer", "outcome"])


def _abandon(fetch: asyncio.Future[Any]) -> None:
    """Cancel a fetch nobody waits for any more; how it ends (often ConnectionClosedError
    while the service stops) is of no interest, so it is not logged as never retrieved."""
    fetch.cancel()
    fetch.add_done_callback(lambda done: done.cancelled() or done.exception())


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
                    consumer=spec.durable, message_id=incoming.message_id, received_at=utcnow()
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
        received = utcnow()
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
            if fetch.done():
                raise  # the fetch's own timeout (nats' TimeoutError is one): no messages this time
            _abandon(fetch)
            if not self._stopping.is_set():
                log.warning("consumer %s: a fetch outlived its timeout; fetching again", self.spec.durable)
            return []
        except asyncio.CancelledError:
            _abandon(fetch)
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
