"""Billing rules: the plan catalogue, monthly cycles, proration, plan changes and renewals.

Pure code (no I/O, no clock): every function takes `now` explicitly. See docs/billing.md for
the rules in prose; the tests in tests/unit/billing pin them down.

- Cycles are calendar months anchored on the subscription's start instant (UTC): cycle n runs
  from `add_months(anchor, n)` to `add_months(anchor, n + 1)`, the day clamped to the month's
  length and always recomputed from the anchor (Jan 31 → Feb 28/29 → Mar 31 …).
- Proration is day-exact: an upgrade at `now` charges
  `(new_price - old_price) * days_charged / days_in_cycle`, rounded ROUND_HALF_UP to the cent,
  where `days_in_cycle` is the cycle's real length (28..31) and `days_charged` the days left
  with any started day counted whole (ceil), so an upgrade in the cycle's first second charges
  the full difference and one in its last second one day.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from services.common.clock import as_utc
from services.common.errors import DomainError, NotFound, ValidationFailed
from services.common.stores import is_store_hash

CURRENCY = "USD"
START_PLAN = "free"
KEEP_EARLIEST_ASSIGNED = "keep_earliest_assigned"
MAX_CATCH_UP_CYCLES = 1200  # a hundred years: a bound against a corrupt anchor, never reached in practice
PLAN_CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

ACTIVE = "active"
ENDED = "ended"
NONE = "none"

UPGRADE = "upgrade"
DOWNGRADE = "downgrade"
CANCEL_PENDING = "cancel_pending"


# ---------------------------------------------------------------- errors

class AlreadyOnPlan(DomainError):
    """A change to the plan the store is on, with no scheduled downgrade it could cancel."""

    code = "already_on_plan"


class NoPendingChange(DomainError):
    """A cancel of the scheduled downgrade when none is scheduled."""

    code = "no_pending_change"


class SubscriptionNotActive(DomainError):
    """A plan change or quote for a store that never started a subscription or ended it (uninstalled)."""

    code = "subscription_not_active"


class ChangeConflict(DomainError):
    """The subscription changed between the quote given to the provider and the commit."""

    code = "conflict"


class InvalidPlanConfig(ValueError):
    """BACKORDER_BILLING_PLANS_JSON is malformed; the message names the plan and the field."""

    def __init__(self, plan: str, field_name: str, reason: str) -> None:
        super().__init__(f"BACKORDER_BILLING_PLANS_JSON: plan {plan!r}, field {field_name!r}: {reason}")
        self.plan = plan
        self.field_name = field_name


# ---------------------------------------------------------------- plans

@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    # None = unlimited.
    max_assigned_products: int | None
    price_cents: int

    @property
    def unlimited(self) -> bool:
        return self.max_assigned_products is None

    def describe_limit(self) -> str:
        if self.max_assigned_products is None:
            return "unlimited products"
        noun = "product" if self.max_assigned_products == 1 else "products"
        return f"{self.max_assigned_products} {noun}"


DEFAULT_PLANS: tuple[PlanSpec, ...] = (
    PlanSpec("free", "Free", 1, 0),
    PlanSpec("starter", "Starter", 25, 999),
    PlanSpec("growth", "Growth", 250, 2999),
    PlanSpec("unlimited", "Unlimited", None, 7999),
)


@dataclass(frozen=True)
class Catalogue:
    """The plans, cheapest first. Moving to a later plan is an upgrade, to an earlier one a downgrade."""

    plans: tuple[PlanSpec, ...]

    def __post_init__(self) -> None:
        validate_catalogue(self.plans)

    def get(self, code: str) -> PlanSpec:
        for plan in self.plans:
            if plan.code == code:
                return plan
        raise NotFound(
            f"unknown plan {code!r}",
            details={"field": "plan", "plan": code, "known": [p.code for p in self.plans]},
        )

    def find(self, code: str) -> PlanSpec | None:
        return next((plan for plan in self.plans if plan.code == code), None)

    def rank(self, code: str) -> int:
        return [plan.code for plan in self.plans].index(self.get(code).code)

    @property
    def start_plan(self) -> PlanSpec:
        return self.get(START_PLAN)


def validate_catalogue(plans: Sequence[PlanSpec]) -> None:
    """Codes unique and well formed, a 'free' plan at $0 first, prices strictly increasing,
    limits never shrinking as the price grows (so 'upgrade' always means more products)."""
    if not plans:
        raise InvalidPlanConfig("*", "plans", "at least one plan is required")
    seen: set[str] = set()
    for plan in plans:
        if not PLAN_CODE_PATTERN.match(plan.code):
            raise InvalidPlanConfig(plan.code, "code", "must be 1-32 chars of a-z, 0-9, '_' or '-'")
        if plan.code in seen:
            raise InvalidPlanConfig(plan.code, "code", "duplicate plan code")
        seen.add(plan.code)
        if not plan.name.strip():
            raise InvalidPlanConfig(plan.code, "name", "must not be empty")
        if plan.max_assigned_products is not None and plan.max_assigned_products < 0:
            raise InvalidPlanConfig(plan.code, "max_assigned_products", "must be >= 0 or null (unlimited)")
        if plan.price_cents < 0:
            raise InvalidPlanConfig(plan.code, "price_cents", "must be >= 0")
    if plans[0].code != START_PLAN or plans[0].price_cents != 0:
        raise InvalidPlanConfig(plans[0].code, "code", "the first (cheapest) plan must be 'free' at price_cents 0")
    for cheaper, dearer in zip(plans, plans[1:], strict=False):
        if dearer.price_cents <= cheaper.price_cents:
            raise InvalidPlanConfig(dearer.code, "price_cents",
                                    f"must be greater than {cheaper.code!r}'s ({cheaper.price_cents})")
        if cheaper.max_assigned_products is None:
            raise InvalidPlanConfig(cheaper.code, "max_assigned_products",
                                    "only the most expensive plan may be unlimited")
        if dearer.max_assigned_products is not None and dearer.max_assigned_products < cheaper.max_assigned_products:
            raise InvalidPlanConfig(dearer.code, "max_assigned_products",
                                    f"must be at least {cheaper.code!r}'s ({cheaper.max_assigned_products})")


def parse_plans_json(raw: str) -> Catalogue:
    """Parse BACKORDER_BILLING_PLANS_JSON: a JSON list of
    `{"code", "name", "max_assigned_products" (int or null = unlimited), "price_cents"}`."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidPlanConfig("*", "json", f"not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise InvalidPlanConfig("*", "json", "must be a JSON list of plans")
    plans: list[PlanSpec] = []
    for position, item in enumerate(data):
        label = f"#{position}"
        if not isinstance(item, Mapping):
            raise InvalidPlanConfig(label, "*", "each plan must be a JSON object")
        label = str(item.get("code", label))
        unknown = set(item) - {"code", "name", "max_assigned_products", "price_cents"}
        if unknown:
            raise InvalidPlanConfig(label, sorted(unknown)[0], "unknown field")
        for key in ("code", "name", "max_assigned_products", "price_cents"):
            if key not in item:
                raise InvalidPlanConfig(label, key, "missing")
        if not isinstance(item["code"], str):
            raise InvalidPlanConfig(label, "code", "must be a string")
        if not isinstance(item["name"], str):
            raise InvalidPlanConfig(label, "name", "must be a string")
        limit = item["max_assigned_products"]
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise InvalidPlanConfig(label, "max_assigned_products", "must be an integer or null")
        price = item["price_cents"]
        if isinstance(price, bool) or not isinstance(price, int):
            raise InvalidPlanConfig(label, "price_cents", "must be an integer number of cents")
        plans.append(PlanSpec(item["code"], item["name"], limit, price))
    return Catalogue(tuple(plans))


# ---------------------------------------------------------------- input

def validate_store_hash(store_hash: str) -> str:
    if not is_store_hash(store_hash):
        raise ValidationFailed(
            "store_hash must be 1-32 lower-case letters or digits",
            errors=[{"field": "store_hash", "reason": "invalid", "value": store_hash}],
        )
    return store_hash


def validate_plan_code(catalogue: Catalogue, code: str) -> PlanSpec:
    plan = catalogue.find(code)
    if plan is None:
        raise ValidationFailed(
            f"unknown plan {code!r}",
            errors=[{"field": "plan", "reason": "unknown_plan", "value": code,
                     "known": [p.code for p in catalogue.plans]}],
        )
    return plan


# ---------------------------------------------------------------- cycles

def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` moved `months` calendar months, its day clamped to the target month's length."""
    index = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(index, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def cycle_bounds(anchor: datetime, index: int) -> tuple[datetime, datetime]:
    return add_months(anchor, index), add_months(anchor, index + 1)


def cycle_index_at(anchor: datetime, now: datetime) -> int:
    """The cycle containing `now` (0 for any instant before the anchor)."""
    if now < anchor:
        return 0
    index = max(0, (now.year - anchor.year) * 12 + (now.month - anchor.month) - 1)
    while add_months(anchor, index + 1) <= now:
        index += 1
    return index


def whole_days_ceil(span: timedelta) -> int:
    """Days in `span`, a started day counting whole; 0 for an empty or negative span."""
    if span <= timedelta(0):
        return 0
    return span.days + (1 if span.seconds or span.microseconds else 0)


# ---------------------------------------------------------------- proration

def prorate_cents(old_price_cents: int, new_price_cents: int, days_charged: int, days_in_cycle: int) -> int:
    """(new - old) * days_charged / days_in_cycle in cents, ROUND_HALF_UP; never negative."""
    if days_in_cycle <= 0:
        raise ValueError("days_in_cycle must be positive")
    if not 0 <= days_charged <= days_in_cycle:
        raise ValueError("days_charged must be within the cycle")
    difference = new_price_cents - old_price_cents
    if difference <= 0 or days_charged == 0:
        return 0
    exact = Decimal(difference * days_charged) / Decimal(days_in_cycle)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_cents(cents: int) -> str:
    return f"${Decimal(cents) / 100:.2f}"


@dataclass(frozen=True)
class Proration:
    amount_cents: int
    days_charged: int
    days_in_cycle: int


def proration_at(old_price_cents: int, new_price_cents: int, cycle_start: datetime, cycle_end: datetime,
                 now: datetime) -> Proration:
    days_in_cycle = whole_days_ceil(cycle_end - cycle_start)
    days_charged = min(days_in_cycle, whole_days_ceil(cycle_end - max(now, cycle_start)))
    return Proration(prorate_cents(old_price_cents, new_price_cents, days_charged, days_in_cycle),
                     days_charged, days_in_cycle)


# ---------------------------------------------------------------- the subscription

@dataclass(frozen=True)
class PlanSnapshot:
    """A plan as it was when the subscription took it (limits stay put if the catalogue changes)."""

    code: str
    max_assigned_products: int | None
    price_cents: int

    @classmethod
    def of(cls, plan: PlanSpec) -> PlanSnapshot:
        return cls(plan.code, plan.max_assigned_products, plan.price_cents)

    @property
    def unlimited(self) -> bool:
        return self.max_assigned_products is None


@dataclass(frozen=True)
class SubscriptionState:
    store_hash: str
    status: str
    plan: PlanSnapshot
    anchor_at: datetime
    cycle_index: int
    pending: PlanSnapshot | None = None
    pending_requested_at: datetime | None = None

    @property
    def cycle_start(self) -> datetime:
        return add_months(self.anchor_at, self.cycle_index)

    @property
    def cycle_end(self) -> datetime:
        return add_months(self.anchor_at, self.cycle_index + 1)


@dataclass(frozen=True)
class HistoryNote:
    at: datetime
    kind: str
    from_plan: str
    to_plan: str
    message: str


@dataclass(frozen=True)
class ChargeDraft:
    kind: str  # "cycle" | "proration"
    plan: str
    from_plan: str
    amount_cents: int
    cycle_start: datetime
    cycle_end: datetime
    days_charged: int
    days_in_cycle: int
    description: str
    # Unique per store: a cycle is charged once however often renewal runs.
    idempotency_key: str


@dataclass(frozen=True)
class PlanChange:
    """What to publish as plan.changed."""

    old_plan: str
    new_plan: PlanSnapshot
    effective_at: datetime
    reason: str  # "start" | "upgrade" | "downgrade" | "renewal" | "end"
    cycle_start: datetime
    cycle_end: datetime
    over_limit: OverLimitDecision | None = None


@dataclass(frozen=True)
class OverLimitDecision:
    rule: str
    keep: int
    restore_tracking: bool
    note: str


@dataclass
class Outcome:
    """The new state plus everything to record about the transition."""

    state: SubscriptionState
    charges: list[ChargeDraft] = field(default_factory=list)
    history: list[HistoryNote] = field(default_factory=list)
    changes: list[PlanChange] = field(default_factory=list)

    def extend(self, other: Outcome) -> Outcome:
        return Outcome(other.state, self.charges + other.charges, self.history + other.history,
                       self.changes + other.changes)


def cycle_charge(state: SubscriptionState) -> ChargeDraft:
    start, end = state.cycle_start, state.cycle_end
    days = whole_days_ceil(end - start)
    return ChargeDraft(
        kind="cycle", plan=state.plan.code, from_plan="", amount_cents=state.plan.price_cents,
        cycle_start=start, cycle_end=end, days_charged=days, days_in_cycle=days,
        description=f"{state.plan.code} plan, cycle {start.date().isoformat()} to {end.date().isoformat()}",
        idempotency_key=f"cycle:{start.isoformat()}",
    )


def over_limit_decision(plan: PlanSnapshot) -> OverLimitDecision | None:
    if plan.max_assigned_products is None:
        return None
    keep = plan.max_assigned_products
    return OverLimitDecision(
        rule=KEEP_EARLIEST_ASSIGNED,
        keep=keep,
        restore_tracking=True,
        note=(f"The {plan.code} plan allows {keep} assigned product{'s' if keep != 1 else ''}: the {keep} "
              "assigned earliest stay assigned; any assigned later are unassigned, newest first, and "
              "BigCommerce inventory tracking is switched back on for them."),
    )


def start_subscription(store_hash: str, plan: PlanSpec, now: datetime) -> Outcome:
    anchor = as_utc(now).replace(microsecond=0)
    state = SubscriptionState(store_hash, ACTIVE, PlanSnapshot.of(plan), anchor, 0)
    return Outcome(
        state,
        charges=[cycle_charge(state)],
        history=[HistoryNote(anchor, "start", "", plan.code,
                             f"Subscription started on the {plan.name} plan ({plan.describe_limit()}).")],
        changes=[PlanChange("", state.plan, anchor, "start", state.cycle_start, state.cycle_end)],
    )


def advance(state: SubscriptionState, catalogue: Catalogue, now: datetime) -> Outcome:
    """Every cycle boundary passed by `now`, in order: apply a due downgrade, then renew (charge
    the new cycle at its plan's current price). Idempotent: a state already current is returned
    unchanged; the caller records charges by their idempotency key."""
    outcome = Outcome(state)
    if state.status != ACTIVE:
        return outcome
    for _ in range(MAX_CATCH_UP_CYCLES):
        current = outcome.state
        boundary = current.cycle_end
        if boundary > now:
            return outcome
        plan = current.plan
        notes: list[HistoryNote] = []
        changes: list[PlanChange] = []
        if current.pending is not None:
            old = plan.code
            plan = current.pending
            decision = over_limit_decision(plan)
            notes.append(HistoryNote(
                boundary, "downgrade_applied", old, plan.code,
                f"Downgraded from {old} to {plan.code} at the end of the billing cycle, as requested on "
                f"{current.pending_requested_at.date().isoformat() if current.pending_requested_at else 'an earlier date'}."
                + (f" {decision.note}" if decision else ""),
            ))
            renewed = replace(current, plan=plan, cycle_index=current.cycle_index + 1, pending=None,
                              pending_requested_at=None)
            changes.append(PlanChange(old, plan, boundary, "downgrade", renewed.cycle_start, renewed.cycle_end,
                                      decision))
        else:
            configured = catalogue.find(plan.code)
            # Price or limit edits in the catalogue reach existing subscriptions at renewal.
            if configured is not None:
                plan = PlanSnapshot.of(configured)
            renewed = replace(current, plan=plan, cycle_index=current.cycle_index + 1)
        charge = cycle_charge(renewed)
        notes.append(HistoryNote(boundary, "renewal", plan.code, plan.code,
                                 f"Cycle renewed on the {plan.code} plan: {format_cents(charge.amount_cents)} "
                                 f"for {charge.cycle_start.date().isoformat()} to {charge.cycle_end.date().isoformat()}."))
        changes.append(PlanChange(plan.code, plan, boundary, "renewal", renewed.cycle_start, renewed.cycle_end))
        outcome = outcome.extend(Outcome(renewed, [charge], notes, changes))
    raise DomainError("too many billing cycles to catch up", code="internal",
                      details={"store_hash": state.store_hash, "anchor_at": state.anchor_at.isoformat()})


def effective_plan(state: SubscriptionState | None, catalogue: Catalogue, now: datetime) -> PlanSnapshot:
    """The plan that governs the store at `now` without writing anything: a due downgrade counts
    even before the scheduler applied it; no subscription or an ended one means the start plan."""
    if state is None or state.status != ACTIVE:
        return PlanSnapshot.of(catalogue.start_plan)
    if state.pending is not None and state.cycle_end <= now:
        return state.pending
    return state.plan


@dataclass(frozen=True)
class Quote:
    kind: str
    from_plan: str
    to_plan: str
    amount_cents: int
    effective_at: datetime
    cycle_start: datetime
    cycle_end: datetime
    days_charged: int
    days_in_cycle: int
    explanation: str


def quote_change(state: SubscriptionState, catalogue: Catalogue, target_code: str, now: datetime) -> Quote:
    """What changing to `target_code` at `now` means. `state` must be current (see `advance`)."""
    if state.status != ACTIVE:
        raise SubscriptionNotActive("the store has no active subscription",
                                    details={"store_hash": state.store_hash, "status": state.status})
    target = validate_plan_code(catalogue, target_code)
    start, end = state.cycle_start, state.cycle_end
    days_in_cycle = whole_days_ceil(end - start)
    if target.code == state.plan.code:
        if state.pending is None:
            raise AlreadyOnPlan(f"the store is already on the {target.code} plan",
                                details={"field": "plan", "plan": target.code})
        return Quote(CANCEL_PENDING, state.plan.code, target.code, 0, now, start, end, 0, days_in_cycle,
                     f"Keeps the {target.code} plan: the scheduled downgrade to {state.pending.code} is cancelled.")
    current_rank = catalogue.rank(state.plan.code) if catalogue.find(state.plan.code) else _rank_by_price(
        catalogue, state.plan)
    if catalogue.rank(target.code) > current_rank:
        proration = proration_at(state.plan.price_cents, target.price_cents, start, end, now)
        explanation = (
            f"Upgrade now: ({format_cents(target.price_cents)} - {format_cents(state.plan.price_cents)}) x "
            f"{proration.days_charged}/{proration.days_in_cycle} days left in the cycle = "
            f"{format_cents(proration.amount_cents)} (rounded half up to the cent)."
        )
        return Quote(UPGRADE, state.plan.code, target.code, proration.amount_cents, now, start, end,
                     proration.days_charged, proration.days_in_cycle, explanation)
    return Quote(DOWNGRADE, state.plan.code, target.code, 0, end, start, end, 0, days_in_cycle,
                 f"Downgrade to {target.code} on {end.date().isoformat()} (end of the cycle); "
                 f"{state.plan.code} stays until then. Nothing is charged now.")


def _rank_by_price(catalogue: Catalogue, plan: PlanSnapshot) -> int:
    # A plan since removed from the catalogue ranks where its price would put it.
    return sum(1 for configured in catalogue.plans if configured.price_cents <= plan.price_cents) - 1


def apply_change(state: SubscriptionState, catalogue: Catalogue, quote: Quote, now: datetime,
                 *, charge_key: str) -> Outcome:
    """The transition for a quote made at `now` on `state` (current)."""
    target = catalogue.get(quote.to_plan)
    if quote.kind == UPGRADE:
        snapshot = PlanSnapshot.of(target)
        upgraded = replace(state, plan=snapshot, pending=None, pending_requested_at=None)
        dropped = (f" The scheduled downgrade to {state.pending.code} is cancelled." if state.pending else "")
        charge = ChargeDraft(
            kind="proration", plan=target.code, from_plan=state.plan.code, amount_cents=quote.amount_cents,
            cycle_start=quote.cycle_start, cycle_end=quote.cycle_end, days_charged=quote.days_charged,
            days_in_cycle=quote.days_in_cycle,
            description=f"Upgrade {state.plan.code} to {target.code}: {quote.explanation}",
            idempotency_key=charge_key,
        )
        return Outcome(
            upgraded, charges=[charge],
            history=[HistoryNote(now, "upgrade", state.plan.code, target.code,
                                 f"Upgraded from {state.plan.code} to {target.code} ({target.describe_limit()}), "
                                 f"effective immediately. {quote.explanation}{dropped}")],
            changes=[PlanChange(state.plan.code, snapshot, now, "upgrade", state.cycle_start, state.cycle_end)],
        )
    if quote.kind == DOWNGRADE:
        scheduled = replace(state, pending=PlanSnapshot.of(target), pending_requested_at=now)
        decision = over_limit_decision(PlanSnapshot.of(target))
        return Outcome(scheduled, history=[HistoryNote(
            now, "downgrade_scheduled", state.plan.code, target.code,
            f"Downgrade from {state.plan.code} to {target.code} scheduled for {quote.effective_at.date().isoformat()} "
            f"(end of the cycle); {state.plan.code} stays until then."
            + (f" {decision.note}" if decision else ""),
        )])
    return cancel_pending(state, now)


def cancel_pending(state: SubscriptionState, now: datetime) -> Outcome:
    if state.pending is None:
        raise NoPendingChange("no plan change is scheduled", details={"store_hash": state.store_hash})
    cleared = replace(state, pending=None, pending_requested_at=None)
    return Outcome(cleared, history=[HistoryNote(
        now, "downgrade_cancelled", state.plan.code, state.plan.code,
        f"The scheduled downgrade to {state.pending.code} was cancelled; {state.plan.code} continues.",
    )])


def end_subscription(state: SubscriptionState, catalogue: Catalogue, now: datetime) -> Outcome:
    ended = replace(state, status=ENDED, pending=None, pending_requested_at=None)
    free = PlanSnapshot.of(catalogue.start_plan)
    return Outcome(
        ended,
        history=[HistoryNote(now, "end", state.plan.code, free.code,
                             "Subscription ended (app uninstalled); the store is treated as Free.")],
        changes=[PlanChange(state.plan.code, free, now, "end", state.cycle_start, state.cycle_end,
                            over_limit_decision(free))],
    )

