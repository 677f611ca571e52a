"""A service turns SERVING only once its database and NATS are up, and follows NATS."""

from __future__ import annotations

import asyncio
import time

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
