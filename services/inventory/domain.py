"""Inventory rules (DESIGN §3): the backorder split of an order line, availability
transitions, receipts, returns and input validation. Pure code: no I/O, no clock, no
database. Salable quantity and the product status are services.common.product_status (one
rule for every service); CSV import rows are import_rules.py.

Quantities are Python ints. A threshold of `None` means unlimited (salable unlimited).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.errors import DomainError, ValidationFailed
from services.common.product_status import salable_qty
from services.common.stores import is_store_hash

# Ledger sources and kinds.
SOURCES = ("admin", "import", "bigcommerce", "erp", "order", "receipt", "billing")
KINDS = ("assign", "set", "adjust", "order", "return", "receipt", "edit", "unassign")

# Quantities beyond this are refused: no store holds a billion units, and it keeps every
# sum far inside a signed 64-bit column.
MAX_QUANTITY = 1_000_000_000
MAX_BULK_ITEMS = 1_000
MAX_ERP_ITEMS = 1_000
MAX_NAME_LENGTH = 255
MAX_KEY_LENGTH = 200
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ---------------------------------------------------------------- errors

class AlreadyAssigned(DomainError):
    code = "already_assigned"


class PlanLimitReached(DomainError):
    code = "plan_limit_reached"

    def __init__(self, *, limit: int, assigned: int, requested: int, plan: str) -> None:
        super().__init__(
            f"assigning {requested} more product(s) would exceed the {plan!r} plan's limit of {limit} "
            f"({assigned} assigned)",
            details={"limit": limit, "assigned": assigned, "requested": requested, "plan": plan},
        )


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"

    def __init__(self, key: str, **details: Any) -> None:
        super().__init__(f"idempotency key {key!r} was already used with a different payload",
                         details={"idempotency_key": key, **details})


class ImportAlreadyApplied(DomainError):
    """An import id whose rows are already in the ledger (the same import sent again)."""

    code = "already_exists"

    def __init__(self, import_id: str) -> None:
        super().__init__(f"import {import_id!r} was already applied; nothing was written again",
                         details={"import_id": import_id})


def field_error(item: int | None, field_name: str, reason: str, message: str, **extra: Any) -> dict[str, Any]:
    """One entry of ValidationFailed.details["errors"]."""
    error: dict[str, Any] = {"field": field_name, "reason": reason, "message": message, **extra}
    if item is not None:
        error["item"] = item
    return error


def raise_if_errors(errors: list[dict[str, Any]]) -> None:
    """Raise ValidationFailed naming the first bad item/field (all of them in details)."""
    if not errors:
        return
    first = errors[0]
    where = f"items[{first['item']}].{first['field']}" if "item" in first else first["field"]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise ValidationFailed(f"{where}: {first['message']}{more}", errors)


# ---------------------------------------------------------------- the rules

def availability_event(before: int | None, after: int | None, *, was_sellable: bool | None = None) -> str | None:
    """The transition event between two salable quantities (None = unlimited = sellable).

    "product.sold_out" when salable reached ≤ 0 from > 0; "product.back_in_stock" when it
    rose above 0 from ≤ 0; None otherwise.
    """
    sellable_before = (before is None or before > 0) if was_sellable is None else was_sellable
    sellable_after = after is None or after > 0
    if sellable_before and not sellable_after:
        return "product.sold_out"
    if not sellable_before and sellable_after:
        return "product.back_in_stock"
    return None


@dataclass(frozen=True)
class LineSplit:
    """An order line of `quantity` applied at `stock_before`."""

    quantity: int
    stock_before: int
    stock_after: int
    from_stock: int
    backordered: int
    over_threshold: bool


def split_line(stock: int, quantity: int, threshold: int | None) -> LineSplit:
    """stock → stock − q; backordered = q − min(q, max(stock, 0)).

    A line beyond salable (stock + threshold) is still applied — the order exists in
    BigCommerce — but flagged `over_threshold`.
    """
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    from_stock = min(quantity, max(stock, 0))
    salable = salable_qty(stock, threshold)
    return LineSplit(
        quantity=quantity,
        stock_before=stock,
        stock_after=stock - quantity,
        from_stock=from_stock,
        backordered=quantity - from_stock,
        over_threshold=salable is not None and quantity > salable,
    )


def return_line(stock: int, quantity: int) -> int:
    """Stock after a cancelled/refunded line of `quantity` is returned."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    return stock + quantity


def receipt_due(back_in_stock_date: dt.date | None, today: dt.date) -> bool:
    """A scheduled receipt is due on (and after) its date."""
    return back_in_stock_date is not None and back_in_stock_date <= today


def receive(stock: int, incoming: int) -> int:
    """Stock after the incoming stock is received (incoming/date are then cleared)."""
    return stock + incoming


# ---------------------------------------------------------------- parsing and validation

@functools.lru_cache(maxsize=4096)  # an import's 100,000 rows share a few dates
def parse_date(text: str) -> dt.date | None:
    """'YYYY-MM-DD' → date; '' → None; anything else raises ValueError."""
    if text == "":
        return None
    if not DATE_PATTERN.match(text):
        raise ValueError("expected YYYY-MM-DD")
    return dt.date.fromisoformat(text)


def format_date(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else ""


def check_quantity(errors: list[dict[str, Any]], item: int | None, name: str, value: int, *,
                   minimum: int = 0, product_id: int | None = None) -> None:
    extra = {"product_id": product_id} if product_id is not None else {}
    if value < minimum:
        errors.append(field_error(item, name, "out_of_range", f"must be ≥ {minimum}", **extra))
    elif abs(value) > MAX_QUANTITY:
        errors.append(field_error(item, name, "out_of_range", f"must be ≤ {MAX_QUANTITY}", **extra))


def check_date(errors: list[dict[str, Any]], item: int | None, name: str, text: str, *,
               product_id: int | None = None) -> dt.date | None:
    try:
        return parse_date(text)
    except ValueError:
        extra = {"product_id": product_id} if product_id is not None else {}
        errors.append(field_error(item, name, "invalid_date", "must be a date YYYY-MM-DD", **extra))
        return None


def check_product_id(errors: list[dict[str, Any]], item: int | None, product_id: int) -> None:
    if product_id <= 0:
        errors.append(field_error(item, "product_id", "out_of_range", "must be a positive product id"))


def paging(page: int, limit: int, maximum: int) -> tuple[int, int]:
    """(page, limit) of a list request: page ≥ 1; limit 50 when unset, within 1..maximum."""
    return max(page or 1, 1), min(max(limit or 50, 1), maximum)


def check_count(count: int, maximum: int, what: str = "items") -> None:
    if count == 0:
        raise ValidationFailed(f"{what}: at least one is required",
                               [field_error(None, what, "required", "at least one is required")])
    if count > maximum:
        raise ValidationFailed(f"{what}: at most {maximum} per call",
                               [field_error(None, what, "too_many", f"at most {maximum} per call")])


def check_store_hash(store_hash: str) -> None:
    """The store-hash format of services.common.stores (lower-case letters and digits)."""
    if not is_store_hash(store_hash):
        raise ValidationFailed("store_hash: required (lower-case letters and digits)",
                               [field_error(None, "store_hash", "invalid", "required (lower-case letters and digits)")])


def check_duplicates(errors: list[dict[str, Any]], product_ids: Sequence[int]) -> None:
    seen: set[int] = set()
    for index, product_id in enumerate(product_ids):
        if product_id in seen:
            errors.append(field_error(index, "product_id", "duplicate", f"product {product_id} appears twice",
                                      product_id=product_id))
        seen.add(product_id)


@dataclass(frozen=True)
class AssignCommand:
    product_id: int
    name: str
    sku: str
    stock: int
    threshold: int | None
    incoming_stock: int
    back_in_stock_date: dt.date | None
    category_ids: tuple[int, ...] = ()
    brand_id: int = 0


def validate_assign_items(raw_items: Sequence[dict[str, Any]]) -> list[AssignCommand]:
    """Validate every item of an assign request; raise ValidationFailed naming item and field."""
    check_count(len(raw_items), MAX_BULK_ITEMS)
    errors: list[dict[str, Any]] = []
    commands = []
    for index, raw in enumerate(raw_items):
        product_id = raw["product_id"]
        check_product_id(errors, index, product_id)
        check_quantity(errors, index, "stock", raw["stock"], product_id=product_id)
        if raw.get("threshold") is not None:
            check_quantity(errors, index, "threshold", raw["threshold"], product_id=product_id)
        check_quantity(errors, index, "incoming_stock", raw.get("incoming_stock", 0), product_id=product_id)
        date = check_date(errors, index, "back_in_stock_date", raw.get("back_in_stock_date", ""),
                          product_id=product_id)
        if len(raw.get("name", "")) > MAX_NAME_LENGTH:
            errors.append(field_error(index, "name", "too_long", f"at most {MAX_NAME_LENGTH} characters"))
        commands.append(AssignCommand(
            product_id=product_id, name=raw.get("name", ""), sku=raw.get("sku", ""), stock=raw["stock"],
            threshold=raw.get("threshold"), incoming_stock=raw.get("incoming_stock", 0),
            back_in_stock_date=date, category_ids=tuple(raw.get("category_ids", ())),
            brand_id=raw.get("brand_id", 0),
        ))
    check_duplicates(errors, [c.product_id for c in commands])
    raise_if_errors(errors)
    return commands


UNSET: Any = object()


@dataclass(frozen=True)
class UpdateCommand:
    """Fields left UNSET are untouched; threshold None (set) means unlimited."""

    product_id: int
    stock: Any = UNSET
    threshold: Any = UNSET
    incoming_stock: Any = UNSET
    back_in_stock_date: Any = UNSET
    name: Any = UNSET
    sku: Any = UNSET
    category_ids: Any = UNSET
    brand_id: Any = UNSET

    def changes(self) -> dict[str, Any]:
        names = ("stock", "threshold", "incoming_stock", "back_in_stock_date", "name", "sku", "category_ids",
                 "brand_id")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not UNSET}


def validate_update_items(raw_items: Sequence[dict[str, Any]]) -> list[UpdateCommand]:
    """Each raw item holds only the fields present in the request (threshold_unlimited → None)."""
    check_count(len(raw_items), MAX_BULK_ITEMS)
    errors: list[dict[str, Any]] = []
    commands = []
    for index, raw in enumerate(raw_items):
        product_id = raw["product_id"]
        check_product_id(errors, index, product_id)
        values = dict(raw)
        if raw.get("threshold_unlimited"):
            if raw.get("threshold") is not None:
                errors.append(field_error(index, "threshold", "conflict",
                                          "cannot be set together with threshold_unlimited", product_id=product_id))
            values["threshold"] = None
        values.pop("threshold_unlimited", None)
        for name in ("stock", "incoming_stock"):
            if name in values:
                check_quantity(errors, index, name, values[name], product_id=product_id)
        if values.get("threshold") is not None:
            check_quantity(errors, index, "threshold", values["threshold"], product_id=product_id)
        if "back_in_stock_date" in values:
            values["back_in_stock_date"] = check_date(errors, index, "back_in_stock_date",
                                                      values["back_in_stock_date"], product_id=product_id)
        if "name" in values and len(values["name"]) > MAX_NAME_LENGTH:
            errors.append(field_error(index, "name", "too_long", f"at most {MAX_NAME_LENGTH} characters"))
        if "category_ids" in values:
            values["category_ids"] = tuple(values["category_ids"])
        commands.append(UpdateCommand(**values))
    check_duplicates(errors, [c.product_id for c in commands])
    raise_if_errors(errors)
    return commands


@dataclass(frozen=True)
class OrderLineCommand:
    line_id: str
    product_id: int
    quantity: int
    name: str = ""
    sku: str = ""
    category_ids: tuple[int, ...] = ()
    brand_id: int = 0

    def fingerprint(self) -> str:
        """What must match when the same (order, line) is applied again."""
        return request_fingerprint({"product_id": self.product_id, "quantity": self.quantity})


@dataclass(frozen=True)
class OrderCommand:
    store_hash: str
    order_id: str
    order_email: str
    order_date: dt.datetime
    lines: tuple[OrderLineCommand, ...]


def validate_order(store_hash: str, order_id: str, order_email: str, order_date: dt.datetime,
                   raw_lines: Sequence[dict[str, Any]]) -> OrderCommand:
    check_store_hash(store_hash)
    errors: list[dict[str, Any]] = []
    if not order_id or len(order_id) > 64:
        errors.append(field_error(None, "order_id", "required", "required (at most 64 characters)"))
    if not raw_lines:
        errors.append(field_error(None, "lines", "required", "at least one line is required"))
    if len(raw_lines) > MAX_BULK_ITEMS:
        errors.append(field_error(None, "lines", "too_many", f"at most {MAX_BULK_ITEMS} lines"))
    seen: set[str] = set()
    lines = []
    for index, raw in enumerate(raw_lines):
        line_id = raw["line_id"]
        if not line_id or len(line_id) > 64:
            errors.append(field_error(index, "line_id", "required", "required (at most 64 characters)"))
        elif line_id in seen:
            errors.append(field_error(index, "line_id", "duplicate", f"line {line_id} appears twice"))
        seen.add(line_id)
        check_product_id(errors, index, raw["product_id"])
        check_quantity(errors, index, "quantity", raw["quantity"], minimum=1, product_id=raw["product_id"])
        lines.append(OrderLineCommand(
            line_id=line_id, product_id=raw["product_id"], quantity=raw["quantity"], name=raw.get("name", ""),
            sku=raw.get("sku", ""), category_ids=tuple(raw.get("category_ids", ())), brand_id=raw.get("brand_id", 0),
        ))
    if errors:
        for error in errors:
            if "item" in error:
                error["line"] = error.pop("item")
        first = errors[0]
        where = f"lines[{first['line']}].{first['field']}" if "line" in first else first["field"]
        raise ValidationFailed(f"{where}: {first['message']}", errors)
    return OrderCommand(store_hash, order_id, order_email, order_date, tuple(lines))


def order_line_key(order_id: str, line_id: str) -> str:
    return f"order:{order_id}:{line_id}"


def return_line_key(order_id: str, line_id: str) -> str:
    return f"return:{order_id}:{line_id}"


def request_fingerprint(payload: dict[str, Any]) -> str:
    """A stable hash of what an idempotency key stands for."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def check_idempotency_key(errors: list[dict[str, Any]], item: int | None, key: str, *, required: bool) -> None:
    if required and not key:
        errors.append(field_error(item, "idempotency_key", "required", "required"))
    elif len(key) > MAX_KEY_LENGTH:
        errors.append(field_error(item, "idempotency_key", "too_long", f"at most {MAX_KEY_LENGTH} characters"))


# ---------------------------------------------------------------- categories

def category_key(category_ids: Iterable[int]) -> str:
    """Category ids stored as ',1,5,9,' so a LIKE '%,5,%' filter works on every database."""
    ids = sorted(set(category_ids))
    return "," + ",".join(str(i) for i in ids) + "," if ids else ""


def category_ids_from_key(key: str | None) -> list[int]:
    return [int(part) for part in (key or "").split(",") if part]


# ---------------------------------------------------------------- plan downgrades

KEEP_EARLIEST_ASSIGNED = "keep_earliest_assigned"


@dataclass(frozen=True)
class OverLimitSelection:
    """Which assigned products stay and which go when a store is over its new plan limit."""

    kept: tuple[int, ...]  # earliest assigned first
    unassigned: tuple[int, ...]  # most recently assigned first (the order they are unassigned in)


def keep_earliest_assigned(assigned: Iterable[tuple[int, dt.datetime]], keep: int) -> OverLimitSelection:
    """Billing's rule `keep_earliest_assigned` over (product_id, assigned_at) pairs: the `keep`
    products assigned earliest (assignment time, then product id, ascending) stay; the rest
    are unassigned, most recently assigned first. Depends only on its inputs, so replaying a
    downgrade selects the same products (and a store within the limit loses none)."""
    if keep < 0:
        raise ValueError(f"keep must not be negative, got {keep}")
    ordered = sorted(assigned, key=lambda pair: (pair[1], pair[0]))
    return OverLimitSelection(
        kept=tuple(product_id for product_id, _ in ordered[:keep]),
        unassigned=tuple(product_id for product_id, _ in reversed(ordered[keep:])),
    )


@dataclass(frozen=True)
class PlanLimit:
    """A store's plan limit as announced by one billing.plan.changed (None = unlimited)."""

    plan: str
    limit: int | None
    effective_at: dt.datetime


def newest_plan_limit(known: PlanLimit | None, incoming: PlanLimit) -> PlanLimit:
    """The plan in force after handling `incoming`: events can be handled out of order
    (parallel handling, redelivery after a failure), so the latest effective_at wins; on a
    tie (a downgrade and the renewal of the same cycle boundary) the incoming one."""
    if known is None or incoming.effective_at >= known.effective_at:
        return incoming
    return known


def over_limit_keep(policy_keep: int, incoming: PlanLimit, newest: PlanLimit) -> int | None:
    """How many assigned products a downgrade's over-limit policy keeps, or None for none to
    unassign: the policy's own `keep`, unless a newer plan change is already known (then
    its limit, so a late downgrade never undoes a later upgrade)."""
    if newest is incoming:
        return policy_keep
    return newest.limit


def downgrade_note(reason: str, new_plan: str, keep: int) -> str:
    """Why a product was unassigned by a plan change, as the merchant reads it in the ledger."""
    what = f"subscription ended, back to {new_plan}" if reason == "end" else f"plan downgrade to {new_plan}"
    return f"{what}: limit {keep}, kept the {keep} earliest assigned"
