"""Proration and cycle rules (docs/billing.md): tables for the cases merchants ask about,
hypothesis for the invariants."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing import domain
from services.billing.domain import (
    DEFAULT_PLANS,
    Catalogue,
    add_months,
    advance,
    apply_change,
    cycle_index_at,
    prorate_cents,
    quote_change,
    start_subscription,
)

CATALOGUE = Catalogue(DEFAULT_PLANS)
PRICE = {plan.code: plan.price_cents for plan in DEFAULT_PLANS}


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def subscribed(anchor: datetime, plan: str = "free") -> domain.SubscriptionState:
    state = start_subscription("s1", CATALOGUE.start_plan, anchor).state
    if plan == "free":
        return state
    return domain.SubscriptionState(state.store_hash, state.status,
                                    domain.PlanSnapshot.of(CATALOGUE.get(plan)), state.anchor_at, 0)


def change(state: domain.SubscriptionState, plan: str, now: datetime) -> tuple[domain.Quote, domain.Outcome]:
    current = advance(state, CATALOGUE, now).state
    quote = quote_change(current, CATALOGUE, plan, now)
    return quote, apply_change(current, CATALOGUE, quote, now, charge_key="k")


# ---------------------------------------------------------------- tables

@pytest.mark.parametrize(
    ("case", "anchor", "now", "old", "new", "days_charged", "days_in_cycle", "cents"),
    [
        ("upgrade at the first second pays the full difference", at(2026, 3, 1), at(2026, 3, 1), "free", "starter",
         31, 31, 999),
        ("mid-cycle, a started day counts whole", at(2026, 1, 15), at(2026, 1, 30, 12), "starter", "growth",
         16, 31, 1032),
        ("28-day month (February 2026)", at(2026, 2, 1), at(2026, 2, 15), "starter", "growth", 14, 28, 1000),
        ("29-day month (February 2028, leap)", at(2028, 2, 1), at(2028, 2, 15), "starter", "growth", 15, 29, 1034),
        ("30-day month (April)", at(2026, 4, 1), at(2026, 4, 16), "starter", "growth", 15, 30, 1000),
        ("31-day month (March)", at(2026, 3, 1), at(2026, 3, 16), "starter", "growth", 16, 31, 1032),
        ("exact half cent rounds up (166.5 -> 167, not banker's 166)", at(2026, 4, 1), at(2026, 4, 26), "free",
         "starter", 5, 30, 167),
        ("one second before the cycle end charges one day", at(2026, 1, 31), at(2026, 2, 27, 23, 59, 59), "starter",
         "growth", 1, 28, 71),
        ("at the cycle boundary the next cycle (Feb 28 -> Mar 31) is charged whole", at(2026, 1, 31),
         at(2026, 2, 28), "starter", "growth", 31, 31, 2000),
        ("free to unlimited in the last day of a 30-day cycle", at(2026, 6, 1), at(2026, 6, 30, 23), "free",
         "unlimited", 1, 30, 267),
    ],
)
def test_upgrade_proration_table(case: str, anchor: datetime, now: datetime, old: str, new: str,
                                 days_charged: int, days_in_cycle: int, cents: int) -> None:
    quote, outcome = change(subscribed(anchor, old), new, now)
    assert quote.kind == domain.UPGRADE, case
    assert (quote.days_charged, quote.days_in_cycle, quote.amount_cents) == (days_charged, days_in_cycle, cents), case
    assert outcome.state.plan.code == new
    assert [c.amount_cents for c in outcome.charges if c.kind == "proration"] == [cents]


def test_two_upgrades_in_a_cycle_each_charge_their_own_difference() -> None:
    state = subscribed(at(2026, 3, 1))
    first, outcome = change(state, "starter", at(2026, 3, 11))
    second, outcome = change(outcome.state, "growth", at(2026, 3, 21))
    assert (first.days_charged, first.amount_cents) == (21, 677)  # 999 * 21/31 = 676.74
    assert (second.days_charged, second.amount_cents) == (11, 710)  # 2000 * 11/31 = 709.68
    assert outcome.state.plan.code == "growth"
    assert first.amount_cents + second.amount_cents == 1387


def test_downgrade_then_upgrade_charges_from_the_current_plan_and_drops_the_downgrade() -> None:
    state = subscribed(at(2026, 3, 1), "growth")
    scheduled, outcome = change(state, "starter", at(2026, 3, 5))
    assert scheduled.kind == domain.DOWNGRADE and scheduled.amount_cents == 0
    assert scheduled.effective_at == at(2026, 4, 1)
    assert outcome.state.plan.code == "growth" and outcome.state.pending.code == "starter"
    upgrade, outcome = change(outcome.state, "unlimited", at(2026, 3, 16))
    assert (upgrade.from_plan, upgrade.amount_cents) == ("growth", 2581)  # 5000 * 16/31 = 2580.65
    assert outcome.state.plan.code == "unlimited" and outcome.state.pending is None
    assert "downgrade to starter is cancelled" in outcome.history[0].message


def test_choosing_the_current_plan_cancels_a_pending_downgrade() -> None:
    _, outcome = change(subscribed(at(2026, 3, 1), "growth"), "free", at(2026, 3, 2))
    quote, outcome = change(outcome.state, "growth", at(2026, 3, 3))
    assert quote.kind == domain.CANCEL_PENDING and quote.amount_cents == 0
    assert outcome.state.pending is None and outcome.charges == []


def test_choosing_the_current_plan_without_pending_change_is_refused() -> None:
    with pytest.raises(domain.AlreadyOnPlan) as caught:
        change(subscribed(at(2026, 3, 1), "growth"), "growth", at(2026, 3, 2))
    assert caught.value.details["plan"] == "growth"


def test_unknown_plan_is_a_validation_error_naming_the_field() -> None:
    with pytest.raises(domain.ValidationFailed) as caught:
        change(subscribed(at(2026, 3, 1)), "platinum", at(2026, 3, 2))
    assert caught.value.details["errors"][0]["field"] == "plan"
    assert caught.value.details["errors"][0]["value"] == "platinum"


@pytest.mark.parametrize("store_hash", ["", "a" * 65, "has space", "semi;colon", "dot.ted", "star*"])
def test_bad_store_hashes_are_refused(store_hash: str) -> None:
    with pytest.raises(domain.ValidationFailed):
        domain.validate_store_hash(store_hash)


# ---------------------------------------------------------------- cycles and renewal

def test_cycles_anchor_on_the_start_day_with_real_month_lengths() -> None:
    anchor = at(2026, 1, 31, 10, 30)
    starts = [add_months(anchor, n) for n in range(6)]
    assert [s.date().isoformat() for s in starts] == [
        "2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30"]
    assert all(s.time() == anchor.time() for s in starts)
    assert add_months(at(2028, 1, 31), 1).date().isoformat() == "2028-02-29"


def test_renewal_after_downtime_charges_every_missed_cycle_once_and_applies_the_downgrade_first() -> None:
    state = subscribed(at(2026, 1, 31), "growth")
    _, outcome = change(state, "starter", at(2026, 2, 10))
    # Down from Feb 10 until May 5: three boundaries passed (Feb 28, Mar 31, Apr 30).
    caught_up = advance(outcome.state, CATALOGUE, at(2026, 5, 5))
    assert caught_up.state.cycle_index == 3
    assert caught_up.state.plan.code == "starter" and caught_up.state.pending is None
    assert [(c.plan, c.amount_cents, c.cycle_start.date().isoformat()) for c in caught_up.charges] == [
        ("starter", 999, "2026-02-28"), ("starter", 999, "2026-03-31"), ("starter", 999, "2026-04-30")]
    reasons = [c.reason for c in caught_up.changes]
    assert reasons == ["downgrade", "renewal", "renewal", "renewal"]
    downgrade = caught_up.changes[0]
    assert downgrade.effective_at == at(2026, 2, 28) and downgrade.over_limit is not None
    assert (downgrade.over_limit.rule, downgrade.over_limit.keep) == ("keep_earliest_assigned", 25)
    assert advance(caught_up.state, CATALOGUE, at(2026, 5, 5)).charges == []


def test_a_due_downgrade_governs_the_entitlement_before_the_scheduler_applied_it() -> None:
    _, outcome = change(subscribed(at(2026, 3, 1), "growth"), "free", at(2026, 3, 2))
    assert domain.effective_plan(outcome.state, CATALOGUE, at(2026, 3, 31, 23)).code == "growth"
    assert domain.effective_plan(outcome.state, CATALOGUE, at(2026, 4, 1)).code == "free"
    assert domain.effective_plan(None, CATALOGUE, at(2026, 4, 1)).code == "free"


def test_over_limit_note_says_what_happens_and_why() -> None:
    decision = domain.over_limit_decision(domain.PlanSnapshot.of(CATALOGUE.get("free")))
    assert decision is not None and decision.keep == 1 and decision.restore_tracking
    assert "assigned earliest stay assigned" in decision.note and "tracking" in decision.note
    assert domain.over_limit_decision(domain.PlanSnapshot.of(CATALOGUE.get("unlimited"))) is None


# ---------------------------------------------------------------- properties

instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC))
prices = st.integers(min_value=0, max_value=10_000_000)


@given(prices, prices, st.integers(1, 31).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_proration_is_between_zero_and_the_difference_and_monotone(old: int, new: int, days: tuple[int, int]) -> None:
    charged, length = days
    amount = prorate_cents(old, new, charged, length)
    assert 0 <= amount <= max(0, new - old)
    if charged < length:
        assert amount <= prorate_cents(old, new, charged + 1, length)
    assert prorate_cents(old, new, length, length) == max(0, new - old)
    assert prorate_cents(old, new, 0, length) == 0
    # Exact rational rounding, half up.
    exact_twice = 2 * max(0, new - old) * charged
    assert abs(2 * amount * length - exact_twice) <= length


@given(instants, st.integers(0, 240))
def test_cycles_are_contiguous_and_28_to_31_days(anchor: datetime, index: int) -> None:
    start, end = domain.cycle_bounds(anchor, index)
    assert timedelta(days=28) <= end - start <= timedelta(days=31)
    assert domain.cycle_bounds(anchor, index + 1)[0] == end
    assert end.day == min(anchor.day, calendar.monthrange(end.year, end.month)[1])
    assert end.time() == anchor.time()


@given(instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
def test_cycle_index_at_contains_now(anchor: datetime, offset: timedelta) -> None:
    now = anchor + offset
    start, end = domain.cycle_bounds(anchor, cycle_index_at(anchor, now))
    assert start <= now < end


@given(instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=31)),
       st.sampled_from(["free", "starter", "growth"]))
def test_stepwise_upgrades_at_one_instant_differ_from_a_direct_one_by_at_most_a_cent(
        anchor: datetime, offset: timedelta, first: str) -> None:
    anchor = anchor.replace(microsecond=0)
    state = subscribed(anchor, first)
    now = anchor + offset
    current = advance(state, CATALOGUE, now).state
    direct = quote_change(current, CATALOGUE, "unlimited", now).amount_cents
    total, step_state = 0, current
    for plan in [p.code for p in DEFAULT_PLANS if PRICE[p.code] > PRICE[first]]:
        quote, outcome = change(step_state, plan, now)
        total, step_state = total + quote.amount_cents, outcome.state
    roundings = sum(1 for p in DEFAULT_PLANS if PRICE[p.code] > PRICE[first])
    # Each step rounds once; the direct upgrade rounds once: at most half a cent per extra step.
    assert abs(total - direct) <= roundings - 1


@given(instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2000)))
def test_advance_is_idempotent_and_charges_each_cycle_once(anchor: datetime, downtime: timedelta) -> None:
    start = start_subscription("s1", CATALOGUE.start_plan, anchor)
    now = start.state.anchor_at + downtime
    once = advance(start.state, CATALOGUE, now)
    assert once.state.cycle_index == cycle_index_at(start.state.anchor_at, now)
    assert len(once.charges) == once.state.cycle_index
    keys = [c.idempotency_key for c in start.charges + once.charges]
    assert len(keys) == len(set(keys))
    assert advance(once.state, CATALOGUE, now).charges == []
