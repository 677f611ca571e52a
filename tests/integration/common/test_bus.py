"""The outbox, the relay and the consumer against real NATS JetStream and real databases."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest
from google.protobuf import wrappers_pb2
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from services.common.bus import (
    STREAM_EVENTS,
    Consumer,
    ConsumerSpec,
    EventBus,
    IncomingMessage,
    OutboxRelay,
    add_event,
    build_envelope,
    event_subject,
)
from services.common.db import Database, UnitOfWork
from services.common.tables import bus_tables
from tests.plugins.services import wait_until

pytestmark = pytest.mark.services

metadata = MetaData()
outbox, inbox = bus_tables(metadata)
applied = Table(
    "applied", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("value", String(100), nullable=False),
)


async def make_database(url: str) -> Database:
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return db


async def stream_messages(bus: EventBus, subject_filter: str) -> list[nats.aio.msg.Msg]:
    """Every message currently in the events stream on the filter (ephemeral consumer)."""
    subscription = await bus.js.pull_subscribe(
        subject_filter, stream=STREAM_EVENTS, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    found: list[nats.aio.msg.Msg] = []
    while True:
        try:
            batch = await subscription.fetch(batch=500, timeout=0.5)
        except (nats.errors.TimeoutError, TimeoutError):
            break
        for msg in batch:
            await msg.ack()
        found.extend(batch)
    await subscription.unsubscribe()
    return found


@pytest.fixture
async def bus(nats_server):
    event_bus = EventBus(nats_server.url, "test")
    await event_bus.connect()
    await event_bus.ensure_streams()
    yield event_bus
    await event_bus.close()


def new_store() -> str:
    return f"s{uuid.uuid4().hex[:10]}"


async def test_committed_events_are_published_once_and_rolled_back_ones_never(database_url, bus):
    db = await make_database(database_url())
    store = new_store()
    async with db.unit_of_work() as uow:
        kept = await add_event(uow, outbox, store_hash=store, service="test", event_type="thing.done",
                               payload=wrappers_pb2.StringValue(value="kept"))
        await uow.commit()
    async with db.unit_of_work() as uow:
        await add_event(uow, outbox, store_hash=store, service="test", event_type="thing.done",
                        payload=wrappers_pb2.StringValue(value="rolled back"))
        # no commit: the change and its event vanish together
    relay = OutboxRelay(db, bus, outbox, "test")
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0
    messages = await stream_messages(bus, f"backorder.{store}.>")
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [kept]
    async with db.read() as conn:
        pending = await conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))
    assert pending == 0
    await db.dispose()


async def test_relay_killed_after_publish_before_mark_publishes_again_and_jetstream_drops_the_copy(database_url, bus):
    db = await make_database(database_url())
    store = new_store()
    async with db.unit_of_work() as uow:
        event_id = await add_event(uow, outbox, store_hash=store, service="test", event_type="thing.done",
                                   payload=wrappers_pb2.StringValue(value="x"))
        await uow.commit()
    # The relay published this row, then died before marking it sent: the row is still pending.
    async with db.read() as conn:
        row = (await conn.execute(select(outbox).where(outbox.c.event_id == event_id))).one()
    first = await bus.publish(row.subject, row.payload, row.event_id)
    assert not first.duplicate
    restarted = OutboxRelay(db, bus, outbox, "test")
    assert await restarted.publish_pending() == 1
    messages = await stream_messages(bus, f"backorder.{store}.>")
    assert len(messages) == 1
    assert messages[0].headers["Nats-Msg-Id"] == event_id
    await db.dispose()


async def test_relay_started_after_commit_delivers_events_written_while_it_was_down(database_url, bus):
    db = await make_database(database_url())
    store = new_store()
    ids = []
    for n in range(25):
        async with db.unit_of_work() as uow:
            ids.append(await add_event(uow, outbox, store_hash=store, service="test", event_type="thing.done",
                                       payload=wrappers_pb2.StringValue(value=str(n))))
            await uow.commit()
    relay = OutboxRelay(db, bus, outbox, "test", poll_interval_s=0.05)
    task = asyncio.create_task(relay.run())
    try:
        async def all_published() -> bool:
            return len(await stream_messages(bus, f"backorder.{store}.>")) >= 25
        await wait_until(all_published)
    finally:
        relay.stop()
        await task
    messages = await stream_messages(bus, f"backorder.{store}.>")
    assert sorted(m.headers["Nats-Msg-Id"] for m in messages) == sorted(ids)
    await db.dispose()


async def record(uow: UnitOfWork, message: IncomingMessage) -> None:
    value = message.unpack(wrappers_pb2.StringValue)
    await uow.conn.execute(applied.insert().values(event_id=message.message_id, value=value.value))


async def count_applied(db: Database, event_id: str | None = None) -> int:
    query = select(func.count()).select_from(applied)
    if event_id is not None:
        query = query.where(applied.c.event_id == event_id)
    async with db.read() as conn:
        return int(await conn.scalar(query) or 0)


async def test_a_redelivered_event_is_applied_once(database_url, bus):
    db = await make_database(database_url())
    store = new_store()
    envelope = build_envelope(store, "test", "thing.done", wrappers_pb2.StringValue(value="once"))
    subject = event_subject(store, "test", "thing.done")
    # The same event twice on the wire (outside JetStream's dedupe, as after the window).
    await bus.publish(subject, envelope.SerializeToString(), envelope.event_id)
    await bus.publish(subject, envelope.SerializeToString(), envelope.event_id + "-again")
    consumer = Consumer(ConsumerSpec(durable=f"test-{store}", stream=STREAM_EVENTS,
                                     subjects=[f"backorder.{store}.>"], handler=record), bus, db, inbox)
    task = asyncio.create_task(consumer.run())
    try:
        async def both_seen() -> bool:
            try:
                info = await bus.js.consumer_info(STREAM_EVENTS, f"test-{store}")
            except nats.js.errors.NotFoundError:
                return False  # the consumer is not created yet
            return info.num_ack_pending == 0 and info.num_pending == 0 and info.ack_floor.consumer_seq >= 2
        await wait_until(both_seen)
    finally:
        await consumer.drain()
        task.cancel()
    assert await count_applied(db, envelope.event_id) == 1
    await db.dispose()


async def test_a_failed_attempt_is_retried_and_applied_once(database_url, bus):
    db = await make_database(database_url())
    store = new_store()
    attempts = []

    async def flaky(uow: UnitOfWork, message: IncomingMessage) -> None:
        attempts.append(message.num_delivered)
        await record(uow, message)
        if len(attempts) == 1:
            raise ConnectionError("peer down")  # after writing: the transaction must roll back

    envelope = build_envelope(store, "test", "thing.done", wrappers_pb2.StringValue(value="retry"))
    await bus.publish(event_subject(store, "test", "thing.done"), envelope.SerializeToString(), envelope.event_id)
    consumer = Consumer(ConsumerSpec(durable=f"test-{store}", stream=STREAM_EVENTS, subjects=[f"backorder.{store}.>"],
                                     handler=flaky, backoff_base_s=0.05), bus, db, inbox)
    task = asyncio.create_task(consumer.run())
    try:
        async def applied_once() -> bool:
            return await count_applied(db, envelope.event_id) == 1
        await wait_until(applied_once)
    finally:
        await consumer.drain()
        task.cancel()
    assert attempts == [1, 2]
    assert await count_applied(db, envelope.event_id) == 1
    await db.dispose()


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
async def test_nats_restarted_under_a_stream_of_events_loses_and_doubles_nothing(pg_database_url, own_nats_server,
                                                                                 batched):
    db = await make_database(pg_database_url())
    bus = EventBus(own_nats_server.url, "test-restart")
    await bus.connect()
    await bus.ensure_streams()
    store = new_store()
    relay = OutboxRelay(db, bus, outbox, "test", poll_interval_s=0.05)
    consumer = Consumer(ConsumerSpec(durable=f"test-{store}", stream=STREAM_EVENTS, subjects=[f"backorder.{store}.>"],
                                     handler=record, batch_handler=record_batch if batched else None,
                                     backoff_base_s=0.05), bus, db, inbox)
    relay_task = asyncio.create_task(relay.run())
    consumer_task = asyncio.create_task(consumer.run())
    total = 300
    try:
        for n in range(total):
            async with db.unit_of_work() as uow:
                await add_event(uow, outbox, store_hash=store, service="test", event_type="thing.done",
                                payload=wrappers_pb2.StringValue(value=str(n)))
                await uow.commit()
            if n == total // 3:
                await asyncio.to_thread(own_nats_server.restart, kill=True)
            if n == 2 * total // 3:
                await asyncio.to_thread(own_nats_server.restart)

        async def all_applied() -> bool:
            return await count_applied(db) >= total
        await wait_until(all_applied, 60)
    finally:
        relay.stop()
        await consumer.drain()
        consumer_task.cancel()
        await relay_task
        await bus.close()
    async with db.read() as conn:
        values = [row.value for row in await conn.execute(select(applied.c.value))]
    assert sorted(values, key=int) == [str(n) for n in range(total)]
    await db.dispose()


# ---------------------------------------------------------------- batch mode

async def record_batch(uow: UnitOfWork, messages: list[IncomingMessage]) -> None:
    for message in messages:
        await record(uow, message)


async def publish_values(bus: EventBus, store: str, values: list[str]) -> list[str]:
    ids = []
    for value in values:
        envelope = build_envelope(store, "test", "thing.done", wrappers_pb2.StringValue(value=value))
        await bus.publish(event_subject(store, "test", "thing.done"), envelope.SerializeToString(), envelope.event_id)
        ids.append(envelope.event_id)
    return ids


async def run_until(consumer: Consumer, condition) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        await wait_until(condition)
    finally:
        await consumer.drain()
        task.cancel()


async def applied_values(db: Database) -> list[str]:
    async with db.read() as conn:
        return sorted(row.value for row in await conn.execute(select(applied.c.value)))


async def test_a_batch_handler_applies_a_fetch_in_one_transaction_and_each_message_once(database_url, bus):
    db = await make_database(database_url())
    store = new_store()
    values = [f"v{n:03d}" for n in range(120)]
    ids = await publish_values(bus, store, values)
    # One event again under a new stream message (past JetStream's window): the inbox drops it.
    again = build_envelope(store, "test", "thing.done", wrappers_pb2.StringValue(value="v000"), event_id=ids[0])
    await bus.publish(event_subject(store, "test", "thing.done"), again.SerializeToString(), ids[0] + "-again")
    batch_sizes: list[int] = []

    async def handler(uow: UnitOfWork, messages: list[IncomingMessage]) -> None:
        batch_sizes.append(len(messages))
        await record_batch(uow, messages)

    consumer = Consumer(ConsumerSpec(durable=f"test-{store}", stream=STREAM_EVENTS, subjects=[f"backorder.{store}.>"],
                                     handler=record, batch_handler=handler, batch=64, concurrency=128), bus, db, inbox)

    async def all_acked() -> bool:
        try:
            info = await bus.js.consumer_info(STREAM_EVENTS, f"test-{store}")
        except nats.js.errors.NotFoundError:
            return False
        return info.num_ack_pending == 0 and info.num_pending == 0 and info.ack_floor.consumer_seq >= 121

    await run_until(consumer, all_acked)
    assert await applied_values(db) == values
    assert max(batch_sizes) > 1, batch_sizes  # fetched messages were handled together
    assert sum(batch_sizes) == 120
    await db.dispose()


async def test_a_failing_message_fails_alone_in_batch_mode(database_url, bus):
    """The batch's transaction fails on one message: the others are applied one by one, the
    poison one is terminated, the flaky one is retried and applied once."""
    from services.common.bus import PermanentError

    db = await make_database(database_url())
    store = new_store()
    values = [f"v{n:02d}" for n in range(30)]
    values[7], values[19] = "poison", "flaky"
    await publish_values(bus, store, values)
    flaky_attempts: list[int] = []

    async def handler(uow: UnitOfWork, messages: list[IncomingMessage]) -> None:
        for message in messages:
            value = message.unpack(wrappers_pb2.StringValue).value
            await record(uow, message)  # written first: a failure must roll it back
            if value == "poison":
                raise PermanentError("cannot be handled")
            if value == "flaky":
                flaky_attempts.append(message.num_delivered)
                if message.num_delivered == 1:
                    raise ConnectionError("peer down")

    consumer = Consumer(ConsumerSpec(durable=f"test-{store}", stream=STREAM_EVENTS, subjects=[f"backorder.{store}.>"],
                                     batch_handler=handler, batch=64, concurrency=64, backoff_base_s=0.05),
                        bus, db, inbox)

    async def settled() -> bool:
        return len(await applied_values(db)) == 29

    await run_until(consumer, settled)
    assert await applied_values(db) == sorted(v for v in values if v != "poison")
    assert flaky_attempts[-1] == 2 and flaky_attempts.count(2) == 1
    await db.dispose()


async def test_a_batch_effect_settles_each_message_by_its_own_outcome(database_url, bus):
    from services.common.bus import TransientError

    db = await make_database(database_url())
    store = new_store()
    values = [f"v{n:02d}" for n in range(40)]
    await publish_values(bus, store, values)
    effects: list[str] = []
    refused_once: set[str] = set()

    async def effect(messages: list[IncomingMessage]) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = []
        for message in messages:
            value = message.unpack(wrappers_pb2.StringValue).value
            if value.endswith("3") and value not in refused_once:
                refused_once.add(value)
                outcomes.append(TransientError("try later"))
                continue
            effects.append(value)
            outcomes.append(None)
        return outcomes

    consumer = Consumer(ConsumerSpec(durable=f"test-{store}", stream=STREAM_EVENTS, subjects=[f"backorder.{store}.>"],
                                     batch_effect=effect, batch=64, concurrency=64, backoff_base_s=0.05),
                        bus, db, inbox)

    async def all_done() -> bool:
        async with db.read() as conn:
            return int(await conn.scalar(select(func.count()).select_from(inbox)) or 0) == 40

    await run_until(consumer, all_done)
    assert sorted(effects) == values  # every effect once: the refused ones on their second delivery
    assert refused_once == {v for v in values if v.endswith("3")}
    await db.dispose()


async def test_a_slow_batch_keeps_its_messages_from_being_redelivered(database_url, bus):
    """One message holds its batch for longer than AckWait: the consumer reports the whole
    batch in progress, so JetStream redelivers none of them and each effect runs once."""
    db = await make_database(database_url())
    store = new_store()
    values = [f"v{n}" for n in range(5)]
    await publish_values(bus, store, values)
    release = asyncio.Event()
    effects: list[str] = []

    async def effect(messages: list[IncomingMessage]) -> list[BaseException | None]:
        effects.extend(m.unpack(wrappers_pb2.StringValue).value for m in messages)
        await release.wait()
        return [None] * len(messages)

    ack_wait_s = 1.0
    consumer = Consumer(ConsumerSpec(durable=f"test-{store}", stream=STREAM_EVENTS, subjects=[f"backorder.{store}.>"],
                                     batch_effect=effect, batch=16, concurrency=16, ack_wait_s=ack_wait_s),
                        bus, db, inbox)
    task = asyncio.create_task(consumer.run())
    loop = asyncio.get_running_loop()
    try:
        await wait_until(lambda: len(effects) == 5)
        held_since = loop.time()
        # AckWait is a clock: hold the batch for three of them, watching for redeliveries.
        redelivered = 0

        async def held_long_enough() -> bool:
            nonlocal redelivered
            info = await bus.js.consumer_info(STREAM_EVENTS, f"test-{store}")
            redelivered = max(redelivered, info.num_redelivered)
            return loop.time() - held_since > 3 * ack_wait_s

        await wait_until(held_long_enough, 10)
        assert redelivered == 0
        release.set()

        async def all_acked() -> bool:
            info = await bus.js.consumer_info(STREAM_EVENTS, f"test-{store}")
            return info.num_ack_pending == 0 and info.ack_floor.consumer_seq >= 5
        await wait_until(all_acked)
    finally:
        release.set()
        await consumer.drain()
        task.cancel()
    assert sorted(effects) == values
    await db.dispose()
