"""The bus says nothing alarming in normal operation: an idle consumer's fetch and a
service's own shutdown log no warning."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import MetaData

from services.common.bus import STREAM_EVENTS, Consumer, ConsumerSpec, EventBus
from services.common.db import Database
from services.common.tables import bus_tables

pytestmark = pytest.mark.services

_, inbox = bus_tables(MetaData())


async def test_an_idle_fetch_and_closing_the_bus_log_no_warning(nats_server, sqlite_database_url, caplog):
    store = f"s{uuid.uuid4().hex[:10]}"
    bus = EventBus(nats_server.url, "test")
    await bus.connect()
    await bus.ensure_streams()
    db = Database(sqlite_database_url())
    consumer = Consumer(ConsumerSpec(durable=f"test-{store}", stream=STREAM_EVENTS, subjects=[f"backorder.{store}.>"]),
                        bus, db, inbox)
    try:
        await consumer._subscribe()
        with caplog.at_level(logging.INFO):
            with pytest.raises(TimeoutError):  # nothing to fetch: the loop takes this as an empty fetch
                await consumer._fetch(1)
            await consumer.drain()
            await bus.close()
    finally:
        await bus.close()
        await db.dispose()
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert "nats connection closed" in caplog.messages
