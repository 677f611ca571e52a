"""Billing on real databases, real NATS and real gRPC, with a clock the test moves."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import nats
import pytest
from backorder.billing.v1 import billing_pb2, billing_pb2_grpc
from backorder.events.v1 import billing_events_pb2, envelope_pb2

from services.billing import server
from services.common.errors import DomainError, error_from_rpc
from services.common.grpc_server import DeadlineStub, insecure_channel
from tests.plugins.services import wait_until as shared_wait_until


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, by: timedelta) -> None:
        self.now += by


@dataclass
class Billing:
    runner: Any
    stub: Any
    clock: FakeClock
    database_url: str
    channel: grpc.aio.Channel

    @property
    def handlers(self) -> Any:
        return self.runner.ctx.state["handlers"]

    async def start_store(self) -> str:
        store_hash = f"s{uuid.uuid4().hex[:8]}"
        await self.stub.StartSubscription(billing_pb2.StartSubscriptionRequest(store_hash=store_hash))
        return store_hash

    async def entitlement(self, store_hash: str) -> tuple[str, int, bool]:
        reply = await self.stub.GetEntitlement(billing_pb2.GetEntitlementRequest(store_hash=store_hash))
        return reply.plan, reply.max_assigned_products, reply.unlimited

    async def change(self, store_hash: str, plan: str) -> Any:
        return await self.stub.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=store_hash, plan=plan))

    async def charges(self, store_hash: str) -> list[Any]:
        reply = await self.stub.ListCharges(billing_pb2.ListChargesRequest(store_hash=store_hash))
        return list(reply.charges)

    async def fails(self, call: Awaitable[Any]) -> DomainError:
        try:
            await call
        except grpc.RpcError as exc:
            error = error_from_rpc(exc)
            error.status = exc.code()  # type: ignore[attr-defined]
            return error
        raise AssertionError("the call succeeded")


@pytest.fixture
async def billing_factory(start_service: Callable[..., Awaitable[Any]], nats_server: Any
                          ) -> AsyncIterator[Callable[..., Awaitable[Billing]]]:
    channels: list[grpc.aio.Channel] = []

    async def start(database_url: str, *, clock: FakeClock | None = None, **setup_options: Any) -> Billing:
        clock = clock or FakeClock()
        setup_options.setdefault("scheduler_interval_s", 0.05)
        runner = await start_service("billing", functools.partial(server.setup, clock=clock, **setup_options),
                                     database_url)
        channel = insecure_channel(f"127.0.0.1:{runner.port}")
        channels.append(channel)
        stub = DeadlineStub(billing_pb2_grpc.BillingServiceStub(channel), 10.0)
        return Billing(runner, stub, clock, database_url, channel)

    yield start
    for channel in channels:
        await channel.close()


@pytest.fixture
async def billing(billing_factory: Callable[..., Awaitable[Billing]], database_url: Callable[[], str]) -> Billing:
    return await billing_factory(database_url())


async def wait_for(condition: Callable[[], Awaitable[bool]], *, timeout_s: float = 15.0, what: str = "") -> None:
    """Poll `condition` until true or fail after the deadline (no sleeps as synchronisation)."""
    await shared_wait_until(condition, timeout_s, what=what or str(condition))


class PlanEvents:
    """Every billing.plan.changed of one store, read from JetStream from the start."""

    def __init__(self, nc: Any, sub: Any) -> None:
        self.nc = nc
        self.sub = sub
        self.seen: list[tuple[envelope_pb2.Envelope, billing_events_pb2.PlanChanged]] = []

    async def next(self, timeout_s: float = 15.0) -> tuple[envelope_pb2.Envelope, billing_events_pb2.PlanChanged]:
        message = await self.sub.next_msg(timeout=timeout_s)
        envelope = envelope_pb2.Envelope.FromString(message.data)
        payload = billing_events_pb2.PlanChanged()
        assert envelope.payload.Unpack(payload)
        self.seen.append((envelope, payload))
        return envelope, payload

    async def until(self, reason: str, timeout_s: float = 15.0) -> billing_events_pb2.PlanChanged:
        deadline = time.monotonic() + timeout_s
        while True:
            _, payload = await self.next(max(0.1, deadline - time.monotonic()))
            if payload.reason == reason:
                return payload


@pytest.fixture
async def plan_events(nats_server: Any) -> AsyncIterator[Callable[[str], Awaitable[PlanEvents]]]:
    connections: list[Any] = []

    async def subscribe(store_hash: str) -> PlanEvents:
        nc = await nats.connect(nats_server.url)
        connections.append(nc)
        js = nc.jetstream()
        sub = await js.subscribe(f"backorder.{store_hash}.billing.plan.changed", ordered_consumer=True)
        return PlanEvents(nc, sub)

    yield subscribe
    for nc in connections:
        await nc.close()
