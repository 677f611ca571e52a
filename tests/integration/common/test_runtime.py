"""A service turns SERVING only once its database and NATS are up, and follows NATS."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from services.billing.server import setup as billing_setup
from services.common.grpc_server import check_health
from services.common.runtime import ServiceRunner
from tests.plugins.services import NatsServer, service_settings

pytestmark = pytest.mark.services


async def wait_health(address: str, expected: bool, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while await check_health(address, timeout_s=0.5) is not expected:
        assert time.monotonic() < deadline, f"health never became {expected}"
        await asyncio.sleep(0.05)


async def test_not_serving_until_nats_is_up_and_while_it_is_down(sqlite_database_url):
    nats = NatsServer()  # not started yet
    settings = service_settings("billing", sqlite_database_url(), nats.url)
    runner = ServiceRunner(settings, billing_setup)
    starting = asyncio.create_task(runner.start())
    try:
        while runner.port is None:  # the gRPC port is bound before NATS is reached
            assert not starting.done(), starting.exception()
            await asyncio.sleep(0.02)
        address = f"127.0.0.1:{runner.port}"
        assert await check_health(address) is False
        await asyncio.to_thread(nats.start)
        await starting
        await wait_health(address, True)
        await asyncio.to_thread(nats.stop)
        await wait_health(address, False)
        await asyncio.to_thread(nats.start)
        await wait_health(address, True)
    finally:
        if not starting.done():
            starting.cancel()
        await runner.stop()
        nats.stop()


async def test_a_stop_waits_at_most_the_grace_period_for_a_stuck_handler_and_the_message_comes_back(
        nats_server, sqlite_database_url):
    """A handler that never returns must not hold a stopping service forever (Kubernetes would
    kill it at its grace period anyway): stop cancels it after the grace, nothing is acked, and
    the next process to run the consumer gets the message again."""
    from services.billing.tables import inbox
    from services.common.bus import STREAM_EVENTS, ConsumerSpec, EventBus, decode_raw

    store = f"s{uuid.uuid4().hex[:10]}"
    started, never = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def stuck(message) -> None:
        seen.append(message.message_id)
        started.set()
        await never.wait()

    def setup_with(handler):
        async def setup(ctx) -> None:
            ctx.add_consumer(ConsumerSpec(durable=f"stuck-{store}", stream=STREAM_EVENTS,
                                          subjects=[f"backorder.{store}.>"], decode=decode_raw, effect=handler,
                                          ack_wait_s=3.0), inbox)
        return setup

    database_url = sqlite_database_url()
    runner = ServiceRunner(service_settings("billing", database_url, nats_server.url, shutdown_grace_s=0.5),
                           setup_with(stuck))
    await runner.start()
    publisher = EventBus(nats_server.url, "test")
    await publisher.connect()
    try:
        await publisher.publish(f"backorder.{store}.test.stuck", b"{}", msg_id=f"m-{store}")
        await asyncio.wait_for(started.wait(), 30)
        began = time.monotonic()
        await asyncio.wait_for(runner.stop(), 20)  # before the bound, this waited forever
        assert time.monotonic() - began < 10
    finally:
        await publisher.close()
    # Never acked: after AckWait (3 s here) JetStream hands it to the next process on the durable.
    redelivered = asyncio.Event()

    async def done(message) -> None:
        seen.append(message.message_id)
        redelivered.set()

    again = ServiceRunner(service_settings("billing", database_url, nats_server.url), setup_with(done))
    await again.start()
    try:
        await asyncio.wait_for(redelivered.wait(), 60)
    finally:
        await again.stop()
    assert seen == [f"m-{store}", f"m-{store}"]
