"""Billing's over-limit rule keep_earliest_assigned, as inventory applies it on a downgrade."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.inventory import domain

BASE = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

# Few distinct instants, so ties on assigned_at (one bulk assign) are common.
assignments = st.lists(
    st.tuples(st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=5)),
    unique_by=lambda pair: pair[0], max_size=40,
).map(lambda pairs: [(product_id, BASE + dt.timedelta(seconds=second)) for product_id, second in pairs])
keeps = st.integers(min_value=0, max_value=50)


@given(assignments, keeps)
def test_keeps_exactly_the_earliest_and_unassigns_the_rest_latest_first(assigned, keep):
    selection = domain.keep_earliest_assigned(assigned, keep)
    order = {product_id: (at, product_id) for product_id, at in assigned}
    assert len(selection.kept) == min(keep, len(assigned))
    assert sorted(selection.kept + selection.unassigned) == sorted(order)
    assert list(selection.kept) == sorted(selection.kept, key=order.__getitem__)
    assert list(selection.unassigned) == sorted(selection.unassigned, key=order.__getitem__, reverse=True)
    if selection.kept and selection.unassigned:
        assert max(order[p] for p in selection.kept) < min(order[p] for p in selection.unassigned)


@given(assignments, keeps, st.randoms(use_true_random=False))
def test_depends_only_on_the_assignments_not_their_order(assigned, keep, random):
    shuffled = list(assigned)
    random.shuffle(shuffled)
    assert domain.keep_earliest_assigned(shuffled, keep) == domain.keep_earliest_assigned(assigned, keep)


@given(assignments, keeps)
def test_applying_the_rule_again_to_what_was_kept_unassigns_nothing(assigned, keep):
    kept = set(domain.keep_earliest_assigned(assigned, keep).kept)
    again = domain.keep_earliest_assigned([pair for pair in assigned if pair[0] in kept], keep)
    assert again.unassigned == () and set(again.kept) == kept


def test_ties_on_assignment_time_are_broken_by_product_id():
    later = BASE + dt.timedelta(minutes=1)
    selection = domain.keep_earliest_assigned([(9, later), (30, BASE), (7, later), (12, BASE)], 3)
    assert selection.kept == (12, 30, 7)
    assert selection.unassigned == (9,)


def test_a_negative_keep_is_refused():
    with pytest.raises(ValueError, match="keep"):
        domain.keep_earliest_assigned([(1, BASE)], -1)


def test_the_ledger_note_says_which_plan_and_how_many_stay():
    assert domain.downgrade_note("downgrade", "starter", 25) == (
        "plan downgrade to starter: limit 25, kept the 25 earliest assigned")
    assert domain.downgrade_note("end", "free", 1) == "subscription ended, back to free: limit 1, kept the 1 earliest assigned"


limits = st.one_of(st.none(), st.integers(min_value=0, max_value=1_000))
plan_limits = st.builds(domain.PlanLimit, st.sampled_from(["free", "small", "big"]), limits,
                        st.integers(min_value=0, max_value=5).map(lambda d: BASE + dt.timedelta(days=d)))


@given(st.lists(plan_limits, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_the_newest_plan_change_wins_whatever_order_they_are_handled_in(changes, random):
    handled = list(changes)
    random.shuffle(handled)
    known = None
    for change in handled:
        known = domain.newest_plan_limit(known, change)
    assert known.effective_at == max(c.effective_at for c in changes)


def test_a_downgrade_handled_after_a_later_upgrade_keeps_what_the_upgrade_allows():
    downgrade = domain.PlanLimit("small", 2, BASE)
    upgrade = domain.PlanLimit("big", 5, BASE + dt.timedelta(days=1))
    unlimited = domain.PlanLimit("unlimited", None, BASE + dt.timedelta(days=1))
    assert domain.over_limit_keep(2, downgrade, domain.newest_plan_limit(upgrade, downgrade)) == 5
    assert domain.over_limit_keep(2, downgrade, domain.newest_plan_limit(unlimited, downgrade)) is None
    assert domain.over_limit_keep(2, downgrade, domain.newest_plan_limit(None, downgrade)) == 2
    renewal = domain.PlanLimit("small", 2, BASE)
    assert domain.over_limit_keep(2, downgrade, domain.newest_plan_limit(renewal, downgrade)) == 2
