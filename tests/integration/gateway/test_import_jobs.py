"""Import jobs are readable from every gateway process: the one running a job shares its
state through JetStream's key-value store (real nats-server)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.common.bus import EventBus
from services.common.errors import NotFound
from services.gateway.admin.import_jobs import ImportJob, ImportJobs
from tests.plugins.services import wait_until

pytestmark = pytest.mark.services


async def connected_bus(url: str, name: str) -> EventBus:
    bus = EventBus(url, name)
    await bus.connect()
    return bus


async def test_a_job_run_by_one_gateway_is_polled_from_another(nats_server):
    running_bus, polling_bus = (await connected_bus(nats_server.url, "gw-a"),
                                await connected_bus(nats_server.url, "gw-b"))
    runner, poller = await ImportJobs.open(running_bus), await ImportJobs.open(polling_bus)
    job = ImportJob(id=uuid.uuid4().hex, store_hash="store1", mode="assign", dry_run=False, overwrite=[],
                    file_name="products.csv")
    finish = asyncio.Event()

    async def run() -> None:
        job.status, job.rows, job.processed = "applying", 10, 4
        await finish.wait()
        job.status, job.processed, job.applied = "completed", 10, 10
        job.errors = [{"row": 3, "column": "x", "code": "c", "message": "m"}]

    try:
        runner.add(job)
        job.task = asyncio.create_task(run())
        runner.track(job)

        async def seen_applying() -> bool:
            try:
                return (await poller.get_json("store1", job.id))["status"] == "applying"
            except NotFound:
                return False
        await wait_until(seen_applying)
        assert (await poller.get_json("store1", job.id))["processed"] == 4
        finish.set()

        async def seen_completed() -> dict:
            state = await poller.get_json("store1", job.id)
            return state if state["done"] else {}
        final = await wait_until(seen_completed)
        assert (final["status"], final["applied"], final["errors"][0]["row"]) == ("completed", 10, 3)
        assert final == job.to_json()
        with pytest.raises(NotFound):
            await poller.get_json("store2", job.id)  # another store never reads it
        with pytest.raises(NotFound):
            await poller.get_json("store1", uuid.uuid4().hex)
        with pytest.raises(NotFound):
            await poller.get_json("store1", "../" + job.id)
    finally:
        finish.set()
        await runner.close()
        await poller.close()
        await running_bus.close()
        await polling_bus.close()
