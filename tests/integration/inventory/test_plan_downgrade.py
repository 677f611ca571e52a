"""Inventory carries out billing's over-limit policy: the real billing service downgrades a
store at its cycle end (a clock the test moves), publishes plan.changed through its outbox,
and inventory's durable consumer unassigns the products beyond the new limit."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats
from backorder.billing.v1 import billing_pb2, billing_pb2_grpc
from backorder.events.v1 import billing_events_pb2, envelope_pb2
from backorder.events.v1 import inventory_events_pb2 as events_pb
from backorder.inventory.v1 import inventory_pb2
from sqlalchemy import select

from services.billing import server as billing_server
from services.billing.domain import parse_plans_json
from services.common.bus import STREAM_EVENTS
from services.common.grpc_server import DeadlineStub, insecure_channel
from services.inventory.consumers import BILLING_DURABLE
from services.inventory.tables import stock_ledger, store_plans
from tests.integration.inventory.conftest import published_events, store, wait_until

PLANS = parse_plans_json(
    '[{"code": "free", "name": "Free", "max_assigned_products": 1, "price_cents": 0},'
    ' {"code": "small", "name": "Small", "max_assigned_products": 2, "price_cents": 500},'
    ' {"code": "big", "name": "Big", "max_assigned_products": 5, "price_cents": 1000}]')
CYCLE_END = datetime(2026, 4, 1, 12, 0, 1, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


async def start_billing(start_service: Any, database_url: str) -> tuple[Any, Clock, Any, int]:
    clock = Clock()
    runner = await start_service("billing", functools.partial(
        billing_server.setup, clock=clock, catalogue=PLANS, scheduler_interval_s=0.05), database_url)
    channel = insecure_channel(f"127.0.0.1:{runner.port}")
    return DeadlineStub(billing_pb2_grpc.BillingServiceStub(channel), 10.0), clock, channel, runner.port


async def assigned_ids(inv: Any, store_hash: str) -> list[int]:
    reply = await inv.inventory.ListProducts(inventory_pb2.ListProductsRequest(store_hash=store_hash, limit=250),
                                             timeout=10)
    return sorted(p.product_id for p in reply.products)


async def ledger(inv: Any, store_hash: str) -> list[Any]:
    reply = await inv.inventory.ListLedger(inventory_pb2.ListLedgerRequest(store_hash=store_hash, limit=500),
                                           timeout=10)
    return list(reply.entries)


async def plan_changes(nats_url: str, store_hash: str, reason: str) -> list[envelope_pb2.Envelope]:
    """billing.plan.changed envelopes of one store with `reason`, read back from JetStream."""
    found = []
    for envelope in await published_events(nats_url, store_hash, "plan.changed", service="billing"):
        payload = billing_events_pb2.PlanChanged()
        assert envelope.payload.Unpack(payload)
        if payload.reason == reason:
            found.append(envelope)
    return found


async def republish(nats_url: str, subject: str, envelope: envelope_pb2.Envelope) -> None:
    """Publish `envelope` again as a new stream message (no Nats-Msg-Id, so JetStream keeps
    it) and wait until inventory's durable consumer has acked it."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        ack = await js.publish(subject, envelope.SerializeToString(), stream=STREAM_EVENTS)

        async def handled() -> bool:
            info = await js.consumer_info(STREAM_EVENTS, BILLING_DURABLE)
            return info.ack_floor.stream_seq >= ack.seq

        await wait_until(handled, what="inventory to handle the replayed plan.changed")
    finally:
        await nc.close()


async def test_a_downgrade_keeps_the_earliest_assigned_and_a_replay_changes_nothing(
        database_url, start_service, start_inventory, nats_server):
    billing, clock, channel, billing_port = await start_billing(start_service, database_url())
    inv = await start_inventory(database_url(), billing_addr=f"127.0.0.1:{billing_port}")
    store_hash = store()
    await billing.StartSubscription(billing_pb2.StartSubscriptionRequest(store_hash=store_hash))
    await billing.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=store_hash, plan="big"))
    # Assignment order 50, 10, (20, 40 in one call: same instant, product id breaks the tie), 30.
    await inv.assign(store_hash, {"product_id": 50, "stock": 5})
    await inv.assign(store_hash, {"product_id": 10, "stock": 1})
    await inv.assign(store_hash, {"product_id": 40, "stock": 4}, {"product_id": 20, "stock": 2})
    await inv.assign(store_hash, {"product_id": 30, "stock": 3, "threshold": 10})
    reply = await billing.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=store_hash, plan="small"))
    assert reply.kind == "downgrade"
    assert await assigned_ids(inv, store_hash) == [10, 20, 30, 40, 50]  # nothing before the cycle end

    clock.now = CYCLE_END

    async def downgraded() -> bool:
        return await assigned_ids(inv, store_hash) == [10, 50]

    await wait_until(downgraded, timeout_s=15, what="inventory to apply the downgrade's over-limit policy")
    unassigned = await published_events(nats_server.url, store_hash, "product.unassigned", expected=3)
    payloads = [events_pb.ProductUnassigned() for _ in unassigned]
    for envelope, payload in zip(unassigned, payloads, strict=True):
        assert envelope.payload.Unpack(payload)
    # Most recently assigned first, tracking restored, nothing disabled, stock carried.
    assert [(p.product.product_id, p.restore_tracking, p.disable_product, p.stock, p.actor) for p in payloads] == [
        (30, True, False, 3, "billing"), (40, True, False, 4, "billing"), (20, True, False, 2, "billing")]
    entries = [e for e in await ledger(inv, store_hash) if e.kind == inventory_pb2.LEDGER_KIND_UNASSIGN]
    assert sorted(e.product_id for e in entries) == [20, 30, 40]
    for entry in entries:
        assert entry.actor == "billing"
        assert entry.note.startswith("plan downgrade to small: limit 2, kept the 2 earliest assigned")
        assert "restore_tracking=True" in entry.note
    async with inv.handlers.db.read() as conn:
        sources = (await conn.execute(select(stock_ledger.c.source).where(
            stock_ledger.c.store_hash == store_hash, stock_ledger.c.kind == "unassign"))).scalars().all()
    assert sources == ["billing"] * 3
    ledger_before = len(await ledger(inv, store_hash))

    # The merchant upgrades again and assigns a third product: a replay of the old
    # downgrade (same event id, or the same payload under a new id) must not remove it.
    clock.now = datetime(2026, 4, 2, 9, tzinfo=UTC)
    await billing.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=store_hash, plan="big"))

    async def upgrade_seen() -> bool:
        async with inv.handlers.db.read() as conn:
            plan = (await conn.execute(select(store_plans.c.plan).where(
                store_plans.c.store_hash == store_hash))).scalar_one_or_none()
        return plan == "big"

    await wait_until(upgrade_seen, what="inventory to record the upgrade")
    await inv.assign(store_hash, {"product_id": 60, "stock": 6})
    [downgrade] = await plan_changes(nats_server.url, store_hash, "downgrade")
    subject = f"backorder.{store_hash}.billing.plan.changed"
    await republish(nats_server.url, subject, downgrade)
    renamed = envelope_pb2.Envelope()
    renamed.CopyFrom(downgrade)
    renamed.event_id = str(uuid.uuid4())
    await republish(nats_server.url, subject, renamed)
    assert await assigned_ids(inv, store_hash) == [10, 50, 60]
    assert len(await ledger(inv, store_hash)) == ledger_before + 1  # only product 60's assign
    await channel.close()


async def test_a_store_within_the_new_limit_loses_nothing(database_url, start_service, start_inventory, nats_server):
    billing, clock, channel, billing_port = await start_billing(start_service, database_url())
    inv = await start_inventory(database_url(), billing_addr=f"127.0.0.1:{billing_port}")
    store_hash = store()
    await billing.StartSubscription(billing_pb2.StartSubscriptionRequest(store_hash=store_hash))
    await billing.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=store_hash, plan="big"))
    await inv.assign(store_hash, {"product_id": 7, "stock": 1}, {"product_id": 8, "stock": 1})
    await billing.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=store_hash, plan="small"))
    clock.now = CYCLE_END

    async def downgrade_handled() -> bool:
        async with inv.handlers.db.read() as conn:
            plan = (await conn.execute(select(store_plans.c.plan).where(
                store_plans.c.store_hash == store_hash))).scalar_one_or_none()
        return plan == "small"

    await wait_until(downgrade_handled, timeout_s=15, what="inventory to handle the downgrade")
    assert await assigned_ids(inv, store_hash) == [7, 8]
    assert [e.kind for e in await ledger(inv, store_hash)] == [inventory_pb2.LEDGER_KIND_ASSIGN] * 2
    assert await published_events(nats_server.url, store_hash, "product.unassigned", timeout_s=1) == []
    await channel.close()


async def test_an_ended_subscription_falls_back_to_free_and_keeps_the_first_assigned(
        database_url, start_service, start_inventory, nats_server):
    billing, clock, channel, billing_port = await start_billing(start_service, database_url())
    inv = await start_inventory(database_url(), billing_addr=f"127.0.0.1:{billing_port}")
    store_hash = store()
    await billing.StartSubscription(billing_pb2.StartSubscriptionRequest(store_hash=store_hash))
    await billing.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=store_hash, plan="big"))
    await inv.assign(store_hash, {"product_id": 9, "stock": 1})
    await inv.assign(store_hash, {"product_id": 3, "stock": 1}, {"product_id": 4, "stock": 1})
    await billing.EndSubscription(billing_pb2.EndSubscriptionRequest(store_hash=store_hash))

    async def ended() -> bool:
        return await assigned_ids(inv, store_hash) == [9]

    await wait_until(ended, timeout_s=15, what="inventory to fall back to the free plan's limit")
    notes = {e.product_id: e.note for e in await ledger(inv, store_hash) if e.kind == inventory_pb2.LEDGER_KIND_UNASSIGN}
    assert sorted(notes) == [3, 4]
    assert all(n.startswith("subscription ended, back to free: limit 1, kept the 1 earliest assigned")
               for n in notes.values())
    await channel.close()
