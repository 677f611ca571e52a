"""Pure rules of catalog_sync: hook secrets, payloads, staleness guards, write-backs, orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.catalog_sync import domain
from services.common.errors import ValidationFailed

T0 = datetime(2026, 11, 27, 6, 0, 0, 250_000, tzinfo=UTC)


def body(**overrides):
    base = {"scope": "store/order/created", "store_id": "1", "data": {"type": "order", "id": 7},
            "hash": "a" * 40, "created_at": 1_700_000_000, "producer": "stores/abc123"}
    base.update(overrides)
    return base


def test_webhook_secret_is_per_store_and_per_key():
    assert domain.webhook_secret("k", "a") != domain.webhook_secret("k", "b")
    assert domain.webhook_secret("k", "a") != domain.webhook_secret("j", "a")
    assert domain.webhook_token_matches("k", "a", domain.webhook_secret("k", "a"))
    assert not domain.webhook_token_matches("k", "a", domain.webhook_secret("k", "b"))
    assert not domain.webhook_token_matches("k", "a", None)
    assert not domain.webhook_token_matches("k", "a", "")


def test_subject_maps_scope_slashes_to_tokens():
    assert domain.webhook_subject("abc", "store/product/inventory/updated") == \
        "bc.webhooks.abc.store.product.inventory.updated"


def test_parse_webhook_takes_the_store_from_the_producer():
    hook = domain.parse_webhook(body())
    assert (hook.store_hash, hook.scope, hook.hash, domain.resource_id(hook)) == ("abc123", "store/order/created",
                                                                                   "a" * 40, 7)


@pytest.mark.parametrize("field,value", [
    ("scope", "store/product/*"), ("scope", "store.product"), ("scope", 3), ("hash", ""), ("hash", "x y"),
    ("producer", "stores/"), ("producer", "apps/abc"), ("producer", "stores/a.b"), ("created_at", "now"),
    ("created_at", True), ("created_at", -1), ("data", []),
])
def test_parse_webhook_rejects_and_names_the_field(field, value):
    with pytest.raises(ValidationFailed) as raised:
        domain.parse_webhook(body(**{field: value}))
    assert field in {e["field"] for e in raised.value.details["errors"]}


def test_parse_webhook_rejects_non_objects():
    with pytest.raises(ValidationFailed):
        domain.parse_webhook([body()])


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=6))
def test_parse_webhook_never_crashes_on_junk(junk):
    try:
        hook = domain.parse_webhook(junk)
    except ValidationFailed:
        return
    assert domain.SCOPE_PATTERN.match(hook.scope)


def test_store_hash_from_context():
    assert domain.store_hash_from_context("stores/abc") == "abc"
    for bad in ("abc", "store/abc", "stores/", "stores/a/b"):
        with pytest.raises(ValidationFailed):
            domain.store_hash_from_context(bad)


def test_returning_status_only_on_entering_cancelled_declined_refunded():
    def hook(previous, new):
        return domain.parse_webhook(body(scope="store/order/statusUpdated", data={
            "type": "order", "id": 7, "status": {"previous_status_id": previous, "new_status_id": new}}))

    assert domain.returning_status(hook(11, 5)) == "cancelled"
    assert domain.returning_status(hook(11, 6)) == "declined"
    assert domain.returning_status(hook(2, 4)) == "refunded"
    assert domain.returning_status(hook(5, 4)) is None  # already returned when cancelled
    assert domain.returning_status(hook(11, 2)) is None


def test_inventory_update_reads_method_and_value():
    hook = domain.parse_webhook(body(scope="store/product/inventory/updated", data={
        "type": "product", "id": 5, "inventory": {"product_id": 5, "method": "absolute", "value": 12}}))
    assert domain.inventory_update(hook) == domain.InventoryUpdate(5, True, 12)


def test_unassigned_writeback_floors_stock_and_applies_options():
    assert domain.unassigned_writeback(restore_tracking=True, disable_product=False, stock=-4) == {
        "inventory_tracking": "product", "inventory_level": 0}
    assert domain.unassigned_writeback(restore_tracking=True, disable_product=True, stock=7) == {
        "inventory_tracking": "product", "inventory_level": 7, "availability": "disabled"}
    assert domain.unassigned_writeback(restore_tracking=False, disable_product=False, stock=7) == {}


def test_assigned_writeback_turns_tracking_off_and_respects_sold_out():
    assert domain.assigned_writeback("in_stock") == {"inventory_tracking": "none", "availability": "available"}
    assert domain.assigned_writeback("sold_out")["availability"] == "disabled"


def test_tracking_switched_on_needs_confirmed_write_back_fresh_state_and_newer_hook():
    hook_after = T0.replace(microsecond=0) + timedelta(seconds=1)
    kwargs = {"assigned": True, "tracking_off_at": T0, "assigned_at": T0, "fresh_tracking": "product"}
    assert domain.tracking_switched_on(**kwargs, hook_created=hook_after)
    # Same second as the assignment counts (webhook times are whole seconds).
    assert domain.tracking_switched_on(**kwargs, hook_created=T0.replace(microsecond=0))
    # An older webhook delivered after the assignment is stale.
    assert not domain.tracking_switched_on(**kwargs, hook_created=T0 - timedelta(seconds=5))
    assert not domain.tracking_switched_on(**{**kwargs, "tracking_off_at": None}, hook_created=hook_after)
    assert not domain.tracking_switched_on(**{**kwargs, "fresh_tracking": "none"}, hook_created=hook_after)
    assert not domain.tracking_switched_on(**{**kwargs, "assigned": False}, hook_created=hook_after)


def test_stock_webhook_before_assignment_is_stale():
    assert domain.webhook_is_before_assignment(T0 - timedelta(seconds=2), T0)
    assert not domain.webhook_is_before_assignment(T0.replace(microsecond=0), T0)
    assert not domain.webhook_is_before_assignment(T0, None)


def test_same_second_wait():
    assert domain.same_second_wait(100, 100.4) == pytest.approx(0.65)
    assert domain.same_second_wait(100, 101.2) == 0.0
    assert domain.same_second_wait(100, 50.0) == 0.0


def test_order_lines_skip_empty_lines_and_take_categories_from_the_mirror():
    items = [{"id": 1, "product_id": 10, "quantity": 2, "name": "A", "sku": "A-1"},
             {"id": 2, "product_id": 0, "quantity": 1, "name": "custom"},
             {"id": 3, "product_id": 11, "quantity": 0}]
    lines = domain.order_lines(items, {10: {"category_ids": "3,4", "brand_id": 9}})
    assert lines == [domain.OrderLine("1", 10, 2, "A", "A-1", [3, 4], 9)]


def test_staff_notes_appended_once():
    note = domain.default_order_note([domain.NoteLine("Mug", "M-1", 2), domain.NoteLine("Cup", "", 0)])
    assert "Mug (M-1): 2" in note and "Cup" not in note
    first = domain.staff_notes_with("packed by Jo", note)
    assert first.startswith("packed by Jo") and first.endswith(note)
    assert domain.staff_notes_with(first, note) is None
    assert domain.staff_notes_with("", "") is None


def test_mirror_fields_normalise_a_product():
    fields = domain.mirror_fields({"id": 3, "name": "N", "sku": None, "availability": "weird", "categories": [1, 2],
                                   "inventory_tracking": "product", "inventory_level": 4,
                                   "date_modified": "2026-11-27T06:00:00+00:00"})
    assert fields["sku"] == "" and fields["availability"] == "available" and fields["category_ids"] == "1,2"
    assert fields["date_modified"] == datetime(2026, 11, 27, 6, tzinfo=UTC)


# ---------------------------------------------------------------- write-back ordering

EVENTS = ("product.assigned", "product.unassigned", "product.sold_out", "product.back_in_stock")


def apply(state: domain.MirrorState, plan: domain.WritebackPlan | None) -> domain.MirrorState:
    if plan is None:
        return state
    return domain.MirrorState(
        assigned=state.assigned if plan.assigned is None else plan.assigned,
        assignment_event_at=plan.assignment_event_at or state.assignment_event_at,
        availability_event_at=plan.availability_event_at or state.availability_event_at)


def test_replayed_event_changes_nothing():
    state = apply(domain.MirrorState(), domain.plan_writeback("product.assigned", T0, domain.MirrorState()))
    later = T0 + timedelta(seconds=1)
    state = apply(state, domain.plan_writeback("product.unassigned", later, state, restore_tracking=True, stock=3))
    assert domain.plan_writeback("product.assigned", T0, state) is None


def test_older_assignment_after_sold_out_keeps_availability():
    sold = domain.plan_writeback("product.sold_out", T0 + timedelta(seconds=1), domain.MirrorState())
    state = apply(domain.MirrorState(), sold)
    plan = domain.plan_writeback("product.assigned", T0, state, status="in_stock")
    assert plan is not None and plan.fields == {"inventory_tracking": "none"}


@given(st.permutations(range(6)), st.lists(st.sampled_from(EVENTS), min_size=6, max_size=6))
def test_any_delivery_order_ends_with_the_newest_events_effects(order, kinds):
    """Events applied in any order leave BigCommerce as if applied in occurrence order."""
    events = [(T0 + timedelta(seconds=i), kind) for i, kind in enumerate(kinds)]

    def run(sequence):
        state, fields = domain.MirrorState(), {}
        for occurred, kind in sequence:
            plan = domain.plan_writeback(kind, occurred, state, restore_tracking=True, disable_product=False, stock=1)
            if plan is not None:
                fields.update(plan.fields)
                state = apply(state, plan)
        return state, {k: v for k, v in fields.items() if k in ("inventory_tracking", "availability")}

    in_order_state, in_order = run(events)
    shuffled_state, shuffled = run([events[i] for i in order])
    assert shuffled_state.assigned == in_order_state.assigned
    last_assignment = [k for _, k in events if k in ("product.assigned", "product.unassigned")]
    if last_assignment:
        expected = "none" if last_assignment[-1] == "product.assigned" else "product"
        assert shuffled.get("inventory_tracking") == in_order.get("inventory_tracking") == expected


def test_id_runs_groups_dense_ids_within_a_page():
    assert domain.id_runs([1, 2, 3, 5, 40, 41, 300], span=250) == [(1, 5), (40, 41)]
    assert domain.id_runs([7], span=250) == []  # alone: read by itself
    assert domain.id_runs([1, 2, 251, 252], span=250) == [(1, 2), (251, 252)]
    assert domain.id_runs(list(range(1, 600)), span=250) == [(1, 250), (251, 500), (501, 599)]


@given(st.lists(st.integers(min_value=1, max_value=5000), unique=True, max_size=200))
def test_id_runs_cover_only_given_ids_densely(ids):
    ids = sorted(ids)
    runs = domain.id_runs(ids, span=250, max_gap=8)
    covered = [i for i in ids if any(first <= i <= last for first, last in runs)]
    for first, last in runs:
        inside = [i for i in ids if first <= i <= last]
        assert first in ids and last in ids and last - first < 250 and len(inside) >= 2
        assert all(b - a <= 8 for a, b in zip(inside, inside[1:], strict=False))
    assert len(covered) == sum(len([i for i in ids if f <= i <= la]) for f, la in runs)  # runs do not overlap
