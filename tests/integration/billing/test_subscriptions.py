"""BillingService end to end over gRPC on SQLite and PostgreSQL with real NATS."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from backorder.billing.v1 import billing_pb2

from services.billing import server
from services.billing.domain import InvalidPlanConfig
from tests.integration.billing.conftest import Billing, wait_for


async def test_a_store_without_subscription_is_free_and_start_is_idempotent(billing: Billing, plan_events) -> None:
    store = f"s{uuid.uuid4().hex[:8]}"
    assert await billing.entitlement(store) == ("free", 1, False)
    events = await plan_events(store)
    first = await billing.stub.StartSubscription(billing_pb2.StartSubscriptionRequest(store_hash=store))
    again = await billing.stub.StartSubscription(billing_pb2.StartSubscriptionRequest(store_hash=store))
    assert first.created and not again.created
    assert first.subscription.plan.code == "free" and first.subscription.status == "active"
    assert first.subscription.cycle_start.ToDatetime(UTC) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert first.subscription.cycle_end.ToDatetime(UTC) == datetime(2026, 4, 1, 12, tzinfo=UTC)
    charges = await billing.charges(store)
    assert [(c.kind, c.plan, c.amount.amount_cents) for c in charges] == [("cycle", "free", 0)]
    started = await events.until("start")
    assert (started.new_plan, started.max_assigned_products, started.unlimited) == ("free", 1, False)


async def test_upgrade_takes_effect_at_once_with_a_prorated_charge(billing: Billing, plan_events) -> None:
    store = await billing.start_store()
    events = await plan_events(store)
    billing.clock.set(datetime(2026, 3, 16, 12, tzinfo=UTC))  # 16 of 31 days left (15.5 rounded up)
    quote = await billing.stub.QuotePlanChange(billing_pb2.QuotePlanChangeRequest(store_hash=store, plan="growth"))
    assert (quote.kind, quote.amount.amount_cents, quote.days_charged, quote.days_in_cycle) == (
        "upgrade", 1548, 16, 31)  # 2999 * 16/31 = 1547.87
    reply = await billing.change(store, "growth")
    assert (reply.kind, reply.amount.amount_cents, reply.amount.currency) == ("upgrade", 1548, "USD")
    assert reply.effective_at.ToDatetime(UTC) == billing.clock.now
    assert reply.charge.kind == "proration" and reply.charge.from_plan == "free"
    assert await billing.entitlement(store) == ("growth", 250, False)
    subscription = (await billing.stub.GetSubscription(billing_pb2.GetSubscriptionRequest(store_hash=store))
                    ).subscription
    assert subscription.plan.code == "growth" and subscription.last_charge.amount.amount_cents == 1548
    assert subscription.history[0].kind == "upgrade" and "16/31" in subscription.history[0].message
    upgraded = await events.until("upgrade")
    assert (upgraded.old_plan, upgraded.new_plan, upgraded.max_assigned_products) == ("free", "growth", 250)
    reply = await billing.change(store, "unlimited")
    assert reply.amount.amount_cents == 2581  # 5000 * 16/31 = 2580.65
    assert await billing.entitlement(store) == ("unlimited", 0, True)
    assert [c.amount.amount_cents for c in await billing.charges(store)] == [2581, 1548, 0]


async def test_downgrade_waits_for_the_cycle_end_can_be_cancelled_and_applies_the_over_limit_policy(
        billing: Billing, plan_events) -> None:
    store = await billing.start_store()
    events = await plan_events(store)
    await billing.change(store, "growth")
    reply = await billing.change(store, "free")
    assert (reply.kind, reply.amount.amount_cents) == ("downgrade", 0)
    assert reply.effective_at.ToDatetime(UTC) == datetime(2026, 4, 1, 12, tzinfo=UTC)
    assert reply.subscription.pending_change.plan == "free"
    assert await billing.entitlement(store) == ("growth", 250, False)
    cancelled = await billing.stub.CancelPendingChange(billing_pb2.CancelPendingChangeRequest(store_hash=store))
    assert not cancelled.subscription.HasField("pending_change")
    assert cancelled.subscription.history[0].kind == "downgrade_cancelled"
    await billing.change(store, "starter")

    billing.clock.set(datetime(2026, 4, 1, 12, 0, 1, tzinfo=UTC))

    async def renewed() -> bool:
        return any(c.kind == "cycle" and c.plan == "starter" for c in await billing.charges(store))

    await wait_for(renewed, what="the scheduler to apply the downgrade and renew")
    assert await billing.entitlement(store) == ("starter", 25, False)
    downgrade = await events.until("downgrade")
    assert (downgrade.old_plan, downgrade.new_plan, downgrade.max_assigned_products) == ("growth", "starter", 25)
    policy = downgrade.over_limit_policy
    assert (policy.rule, policy.keep, policy.restore_tracking) == ("keep_earliest_assigned", 25, True)
    assert downgrade.effective_at.ToDatetime(UTC) == datetime(2026, 4, 1, 12, tzinfo=UTC)
    subscription = (await billing.stub.GetSubscription(billing_pb2.GetSubscriptionRequest(store_hash=store))
                    ).subscription
    applied = [h for h in subscription.history if h.kind == "downgrade_applied"]
    assert len(applied) == 1 and "25 assigned earliest stay assigned" in applied[0].message
    assert not subscription.HasField("pending_change")
    assert subscription.cycle_start.ToDatetime(UTC) == datetime(2026, 4, 1, 12, tzinfo=UTC)


async def test_renewal_after_downtime_charges_each_missed_cycle_once(billing_factory, database_url) -> None:
    url = database_url()
    first = await billing_factory(url)
    store = await first.start_store()
    await first.change(store, "starter")
    await first.runner.stop()
    # Down for three and a half months: boundaries Apr 1, May 1, Jun 1 passed.
    clock = first.clock
    clock.set(datetime(2026, 6, 15, tzinfo=UTC))
    second = await billing_factory(url, clock=clock)

    async def caught_up() -> bool:
        return len([c for c in await second.charges(store) if c.kind == "cycle"]) >= 4

    await wait_for(caught_up, what="the scheduler to catch up the missed cycles")
    # Again, concurrently with itself and the running scheduler: nothing more to charge.
    assert sum(await asyncio.gather(*(second.handlers.run_due() for _ in range(4)))) == 0
    charges = await second.charges(store)
    cycles = [(c.cycle_start.ToDatetime(UTC).date().isoformat(), c.amount.amount_cents)
              for c in charges if c.kind == "cycle"]
    assert cycles == [("2026-06-01", 999), ("2026-05-01", 999), ("2026-04-01", 999), ("2026-03-01", 0)]
    subscription = (await second.stub.GetSubscription(billing_pb2.GetSubscriptionRequest(store_hash=store))
                    ).subscription
    assert subscription.cycle_start.ToDatetime(UTC) == datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert [h.kind for h in subscription.history[:3]] == ["renewal"] * 3
    assert len(await second.charges(store)) == len(charges)


async def test_concurrent_upgrades_change_the_plan_and_charge_once(billing: Billing) -> None:
    store = await billing.start_store()
    await billing.change(store, "starter")
    results = await asyncio.gather(*(billing.change(store, "growth") for _ in range(8)), return_exceptions=True)
    succeeded = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, grpc.RpcError)]
    assert len(succeeded) == 1 and len(refused) == 7
    assert all(r.code() == grpc.StatusCode.FAILED_PRECONDITION for r in refused)
    prorations = [c for c in await billing.charges(store) if c.kind == "proration" and c.plan == "growth"]
    assert len(prorations) == 1


async def test_serialized_assigns_at_the_limit_never_exceed_the_entitlement_during_an_upgrade(
        billing: Billing) -> None:
    """Inventory's side of the contract, played here: assigns of a store run one at a time
    and each reads the limit from GetEntitlement. An upgrade racing them is seen at once."""
    store = await billing.start_store()
    assigned: list[int] = []
    lock = asyncio.Lock()

    async def assign(product_id: int) -> int:
        async with lock:
            _, limit, unlimited = await billing.entitlement(store)
            if unlimited or len(assigned) < limit:
                assigned.append(product_id)
            return limit

    await asyncio.gather(*(assign(i) for i in range(20)))
    assert len(assigned) == 1

    async def upgrade_then_assign() -> int:
        await billing.change(store, "starter")
        return await assign(1000)

    results = await asyncio.gather(*(assign(i) for i in range(20, 40)), upgrade_then_assign(),
                                   *(assign(i) for i in range(40, 60)))
    assert results[20] == 25  # the first assign after ChangePlan returned saw the new limit
    assert 1 < len(assigned) <= 25
    await asyncio.gather(*(assign(i) for i in range(60, 80)))
    assert len(assigned) == 25 and len(set(assigned)) == 25


async def test_end_subscription_falls_back_to_free_and_a_reinstall_starts_again(billing: Billing,
                                                                                plan_events) -> None:
    store = await billing.start_store()
    events = await plan_events(store)
    await billing.change(store, "growth")
    ended = await billing.stub.EndSubscription(billing_pb2.EndSubscriptionRequest(store_hash=store))
    assert ended.subscription.status == "ended"
    again = await billing.stub.EndSubscription(billing_pb2.EndSubscriptionRequest(store_hash=store))
    assert again.subscription.status == "ended"
    assert await billing.entitlement(store) == ("free", 1, False)
    end = await events.until("end")
    assert end.new_plan == "free" and end.over_limit_policy.keep == 1
    billing.clock.advance(timedelta(days=3))
    restarted = await billing.stub.StartSubscription(billing_pb2.StartSubscriptionRequest(store_hash=store))
    assert restarted.created and restarted.subscription.plan.code == "free"
    assert restarted.subscription.cycle_start.ToDatetime(UTC) == billing.clock.now


async def test_bad_input_is_refused_and_writes_nothing(billing: Billing) -> None:
    store = await billing.start_store()
    before = await billing.charges(store)

    error = await billing.fails(billing.change(store, "platinum"))
    assert error.status == grpc.StatusCode.INVALID_ARGUMENT and error.code == "validation_failed"
    assert error.details["errors"][0]["field"] == "plan"
    error = await billing.fails(billing.stub.QuotePlanChange(
        billing_pb2.QuotePlanChangeRequest(store_hash=store, plan="")))
    assert error.status == grpc.StatusCode.INVALID_ARGUMENT
    error = await billing.fails(billing.change("Not A Hash", "starter"))
    assert error.details["errors"][0]["field"] == "store_hash"
    error = await billing.fails(billing.entitlement(""))
    assert error.status == grpc.StatusCode.INVALID_ARGUMENT
    error = await billing.fails(billing.change(store, "free"))
    assert (error.status, error.code) == (grpc.StatusCode.FAILED_PRECONDITION, "already_on_plan")
    error = await billing.fails(billing.stub.CancelPendingChange(
        billing_pb2.CancelPendingChangeRequest(store_hash=store)))
    assert error.code == "no_pending_change"
    error = await billing.fails(billing.change("snotinstalled", "starter"))
    assert error.code == "subscription_not_active"
    error = await billing.fails(billing.stub.ListCharges(billing_pb2.ListChargesRequest(store_hash=store, limit=500)))
    assert error.details["errors"][0]["field"] == "limit"

    assert await billing.charges(store) == before
    assert await billing.entitlement(store) == ("free", 1, False)
    subscription = (await billing.stub.GetSubscription(billing_pb2.GetSubscriptionRequest(store_hash=store))
                    ).subscription
    assert [h.kind for h in subscription.history] == ["start"]


async def test_list_plans_returns_the_catalogue_in_cents(billing: Billing) -> None:
    plans = (await billing.stub.ListPlans(billing_pb2.ListPlansRequest())).plans
    assert [(p.code, p.max_assigned_products, p.unlimited, p.price.amount_cents, p.price.currency) for p in plans] == [
        ("free", 1, False, 0, "USD"), ("starter", 25, False, 999, "USD"), ("growth", 250, False, 2999, "USD"),
        ("unlimited", 0, True, 7999, "USD")]


async def test_a_bad_plan_catalogue_stops_the_service_at_start_naming_plan_and_field(
        start_service, sqlite_database_url, monkeypatch) -> None:
    monkeypatch.setenv("BACKORDER_BILLING_PLANS_JSON",
                       '[{"code": "free", "name": "Free", "max_assigned_products": 1, "price_cents": "zero"}]')
    try:
        await start_service("billing", server.setup, sqlite_database_url())
    except InvalidPlanConfig as exc:
        assert (exc.plan, exc.field_name) == ("free", "price_cents")
    else:
        raise AssertionError("the service started with a bad catalogue")
