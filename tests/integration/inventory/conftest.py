"""Fixtures for the inventory service over real gRPC sockets, real NATS, PostgreSQL and SQLite."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from backorder.billing.v1 import billing_pb2, billing_pb2_grpc
from backorder.inventory.v1 import (
    erp_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    report_pb2_grpc,
    token_pb2_grpc,
)

from services.common.grpc_server import insecure_channel
from services.inventory.server import setup
from tests.plugins.services import wait_until as shared_wait_until


def store() -> str:
    return f"s{uuid.uuid4().hex[:8]}"


class FakeBilling(billing_pb2_grpc.BillingServiceServicer):
    """A BillingService on a real socket: the free plan (1 product) unless a store is given
    another limit in `plans`."""

    def __init__(self) -> None:
        self.plans: dict[str, tuple[str, int | None]] = {}
        self.calls = 0

    async def GetEntitlement(self, request: Any, context: Any) -> Any:
        self.calls += 1
        plan, limit = self.plans.get(request.store_hash, ("free", 1))
        return billing_pb2.GetEntitlementResponse(store_hash=request.store_hash, plan=plan,
                                                  max_assigned_products=limit or 0, unlimited=limit is None)


@pytest.fixture
async def fake_billing() -> AsyncIterator[tuple[FakeBilling, str]]:
    server = grpc.aio.server()
    servicer = FakeBilling()
    billing_pb2_grpc.add_BillingServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(0)


@pytest.fixture
async def real_billing_addr(start_service: Any, sqlite_database_url: Callable[[], str],
                            fake_billing: tuple[FakeBilling, str]) -> str:
    """The real billing service when it is importable (built in parallel), else the fake
    one answering the free plan."""
    try:
        from services.billing.server import setup as billing_setup
    except ImportError:
        return fake_billing[1]
    runner = await start_service("billing", billing_setup, sqlite_database_url())
    return f"127.0.0.1:{runner.port}"


@dataclass
class Inventory:
    runner: Any
    channel: grpc.aio.Channel
    erp_port: int
    handlers: Any
    inventory: Any = None
    report: Any = None
    tokens: Any = None
    erp: Any = None
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def erp_on(self, port: int) -> Any:
        channel = insecure_channel(f"127.0.0.1:{port}")
        self.channels.append(channel)
        return erp_pb2_grpc.ErpInventoryServiceStub(channel)

    async def assign(self, store_hash: str, *items: dict[str, Any]) -> Any:
        return await self.inventory.AssignProducts(inventory_pb2.AssignProductsRequest(
            store_hash=store_hash, items=[inventory_pb2.AssignItem(**i) for i in items], actor="test"), timeout=10)

    async def product(self, store_hash: str, product_id: int) -> Any:
        reply = await self.inventory.GetProduct(inventory_pb2.GetProductRequest(store_hash=store_hash,
                                                                                product_id=product_id), timeout=10)
        return reply.product


StartInventory = Callable[..., Awaitable[Inventory]]


@pytest.fixture
async def start_inventory(start_service: Any, fake_billing: tuple[FakeBilling, str]) -> AsyncIterator[StartInventory]:
    opened: list[Inventory] = []

    async def start(database_url: str, *, billing_addr: str | None = None, **extra: Any) -> Inventory:
        values = {"billing_addr": billing_addr or fake_billing[1], "erp_grpc_port": 0, "receipt_interval_s": 3600.0,
                  **extra}
        runner = await start_service("inventory", setup, database_url, extra=values)
        channel = insecure_channel(f"127.0.0.1:{runner.port}")
        inventory = Inventory(runner, channel, runner.grpc.ports[-1], runner.ctx.state["handlers"])
        inventory.inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
        inventory.report = report_pb2_grpc.ReportServiceStub(channel)
        inventory.tokens = token_pb2_grpc.TokenServiceStub(channel)
        inventory.erp = erp_pb2_grpc.ErpInventoryServiceStub(channel)
        opened.append(inventory)
        return inventory

    yield start
    for inventory in opened:
        for channel in [inventory.channel, *inventory.channels]:
            await channel.close()


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 10.0, what: str = "condition") -> None:
    await shared_wait_until(predicate, timeout_s, interval_s=0.05, what=what)


async def outbox_drained(inventory: Inventory) -> bool:
    from sqlalchemy import func, select

    from services.inventory.tables import outbox

    async with inventory.handlers.db.read() as conn:
        pending = (await conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))).scalar_one()
    return pending == 0


async def published_events(nats_url: str, store_hash: str, event_type: str = "*.*",
                           expected: int | None = None, timeout_s: float = 10.0,
                           service: str = "inventory") -> list[Any]:
    """Envelopes published on backorder.<store>.<service>.<event_type>, read back from JetStream."""
    import nats
    from backorder.events.v1 import envelope_pb2

    from services.common.bus import STREAM_EVENTS

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"backorder.{store_hash}.{service}.{event_type}", stream=STREAM_EVENTS)
        found: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(batch=500, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                if expected is None or len(found) >= expected:
                    break
                continue
            for msg in msgs:
                envelope = envelope_pb2.Envelope()
                envelope.ParseFromString(msg.data)
                found.append(envelope)
                await msg.ack()
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()
