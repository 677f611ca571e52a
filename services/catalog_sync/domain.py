"""Pure rules of catalog_sync: webhook payloads' contents, staleness guards, write-back
fields, order lines and the default order note. No I/O here. BigCommerce's webhook contract
(secrets, parsing, subjects) is services.common.bigcommerce_webhooks, re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# BigCommerce's webhook contract lives in common (the gateway checks deliveries with it).
from services.common.bigcommerce_webhooks import HOOK_TOKEN_HEADER as HOOK_TOKEN_HEADER
from services.common.bigcommerce_webhooks import SCOPE_PATTERN as SCOPE_PATTERN
from services.common.bigcommerce_webhooks import Webhook as Webhook
from services.common.bigcommerce_webhooks import parse_webhook as parse_webhook
from services.common.bigcommerce_webhooks import webhook_secret as webhook_secret
from services.common.bigcommerce_webhooks import webhook_subject as webhook_subject
from services.common.bigcommerce_webhooks import webhook_token_matches as webhook_token_matches
from services.common.clock import as_utc
from services.common.errors import DomainError, ValidationFailed
from services.common.stores import is_store_hash

# Hooks the app registers at install (scope -> why).
WEBHOOK_SCOPES: tuple[str, ...] = (
    "store/product/created",
    "store/product/updated",
    "store/product/deleted",
    "store/product/inventory/updated",
    "store/order/created",
    "store/order/statusUpdated",
)
SCRIPT_NAME = "Backorder storefront"
# BigCommerce order statuses that give the stock back (Refunded, Cancelled, Declined).
RETURNING_STATUSES: dict[int, str] = {4: "refunded", 5: "cancelled", 6: "declined"}
AVAILABILITIES = ("available", "disabled", "preorder")
TRACKING_MODES = ("none", "product", "variant")


class StoreNotInstalled(DomainError):
    code = "not_found"


# ---------------------------------------------------------------- store hashes

def store_hash_from_context(context: str) -> str:
    """'stores/<hash>' -> '<hash>' (the install callback's context, a JWT's sub)."""
    prefix, _, store_hash = (context or "").partition("/")
    if prefix != "stores" or not is_store_hash(store_hash):
        raise ValidationFailed("context must be stores/<store_hash>",
                               errors=[{"field": "context", "reason": "must be stores/<store_hash>"}])
    return store_hash


def check_store_hash(store_hash: str) -> str:
    """The store hash as given, when it is one (services.common.stores); else ValidationFailed."""
    if is_store_hash(store_hash):
        return store_hash
    raise ValidationFailed("invalid store hash", errors=[{"field": "store_hash", "reason": "malformed"}])


# ---------------------------------------------------------------- webhook payloads

def resource_id(hook: Webhook) -> int:
    """The id of the product/order the hook is about (PermanentError-worthy when absent)."""
    value = hook.data.get("id")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationFailed("webhook data has no resource id", errors=[{"field": "data.id", "reason": "missing"}])
    return value


@dataclass(frozen=True)
class InventoryUpdate:
    product_id: int
    absolute: bool
    value: int


def inventory_update(hook: Webhook) -> InventoryUpdate:
    inventory = hook.data.get("inventory")
    if not isinstance(inventory, dict):
        raise ValidationFailed("inventory webhook without inventory", errors=[{"field": "data.inventory", "reason": "missing"}])
    product_id = inventory.get("product_id", hook.data.get("id"))
    value = inventory.get("value")
    if not isinstance(product_id, int) or not isinstance(value, int):
        raise ValidationFailed("inventory webhook malformed", errors=[{"field": "data.inventory", "reason": "malformed"}])
    return InventoryUpdate(product_id, inventory.get("method") == "absolute", value)


def returning_status(hook: Webhook) -> str | None:
    """'cancelled' / 'declined' / 'refunded' when a status update gives the stock back."""
    status = hook.data.get("status")
    if not isinstance(status, dict):
        return None
    new_status = status.get("new_status_id")
    previous = status.get("previous_status_id")
    if new_status in RETURNING_STATUSES and previous not in RETURNING_STATUSES:
        return RETURNING_STATUSES[new_status]
    return None


SAME_SECOND_MARGIN_S = 0.05


def same_second_wait(created_at: int, now: float) -> float:
    """Seconds to wait until the webhook's creation second is over (0 when it already is)."""
    wait = created_at + 1 + SAME_SECOND_MARGIN_S - now
    return wait if 0 < wait <= 1 + SAME_SECOND_MARGIN_S else 0.0


# ---------------------------------------------------------------- mirror rows

def mirror_fields(product: Mapping[str, Any]) -> dict[str, Any]:
    """A BigCommerce v3 product -> the mirror's columns."""
    availability = product.get("availability") or "available"
    tracking = product.get("inventory_tracking") or "none"
    return {
        "product_id": int(product["id"]),
        "name": str(product.get("name") or ""),
        "sku": str(product.get("sku") or ""),
        "is_visible": bool(product.get("is_visible", True)),
        "availability": availability if availability in AVAILABILITIES else "available",
        "inventory_level": int(product.get("inventory_level") or 0),
        "inventory_tracking": tracking if tracking in TRACKING_MODES else "none",
        "category_ids": ",".join(str(int(c)) for c in product.get("categories") or []),
        "brand_id": int(product.get("brand_id") or 0),
        "date_modified": parse_bc_time(product.get("date_modified")),
    }


def parse_bc_time(value: Any) -> datetime | None:
    """BigCommerce v3 ISO-8601 times (v2's RFC 2822 handled too)."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def category_list(text: str | None) -> list[int]:
    return [int(part) for part in (text or "").split(",") if part]


# ---------------------------------------------------------------- staleness guards

def is_newer_event(occurred_at: datetime, last_applied: datetime | None) -> bool:
    """Inventory events for one product are applied in occurrence order; older ones are stale."""
    last = as_utc(last_applied)
    return last is None or as_utc(occurred_at) >= last


def tracking_switched_on(*, assigned: bool, tracking_off_at: datetime | None, assigned_at: datetime | None,
                         fresh_tracking: str, hook_created: datetime) -> bool:
    """Did the merchant switch tracking back on for an assigned product?

    Only once our own tracking-off write-back is confirmed (`tracking_off_at`, read *before*
    fetching the fresh product), the fresh product tracks inventory again, and the webhook
    is not older than the assignment (webhook times are whole seconds, hence the floor).
    """
    if not assigned or tracking_off_at is None or fresh_tracking == "none":
        return False
    since = as_utc(assigned_at)
    return since is None or hook_created >= since.replace(microsecond=0)


def webhook_is_before_assignment(hook_created: datetime, assigned_at: datetime | None) -> bool:
    """An absolute stock webhook created before the assignment is stale (whole seconds)."""
    since = as_utc(assigned_at)
    return since is not None and hook_created < since.replace(microsecond=0)


# ---------------------------------------------------------------- write-backs

def assigned_writeback(status: str) -> dict[str, Any]:
    """product.assigned: the app tracks the stock, so BigCommerce stops tracking it."""
    return {"inventory_tracking": "none", "availability": "disabled" if status == "sold_out" else "available"}


def unassigned_writeback(*, restore_tracking: bool, disable_product: bool, stock: int) -> dict[str, Any]:
    """product.unassigned with the merchant's options (stock floored at 0: BigCommerce refuses negatives)."""
    fields: dict[str, Any] = {}
    if restore_tracking:
        fields["inventory_tracking"] = "product"
        fields["inventory_level"] = max(int(stock), 0)
    if disable_product:
        fields["availability"] = "disabled"
    return fields


def availability_writeback(sold_out: bool) -> dict[str, Any]:
    return {"availability": "disabled" if sold_out else "available"}


# ---------------------------------------------------------------- orders

@dataclass(frozen=True)
class OrderLine:
    line_id: str
    product_id: int
    quantity: int
    name: str
    sku: str
    category_ids: list[int] = field(default_factory=list)
    brand_id: int = 0


def order_lines(order_products: Iterable[Mapping[str, Any]],
                mirror: Mapping[int, Mapping[str, Any]]) -> list[OrderLine]:
    """BigCommerce order products -> inventory order lines (categories/brand from the mirror)."""
    lines = []
    for item in order_products:
        product_id = int(item.get("product_id") or 0)
        quantity = int(item.get("quantity") or 0)
        if product_id <= 0 or quantity <= 0:
            continue
        known = mirror.get(product_id) or {}
        lines.append(OrderLine(
            line_id=str(item["id"]),
            product_id=product_id,
            quantity=quantity,
            name=str(item.get("name") or known.get("name") or ""),
            sku=str(item.get("sku") or known.get("sku") or ""),
            category_ids=category_list(known.get("category_ids")),
            brand_id=int(known.get("brand_id") or 0),
        ))
    return lines


@dataclass(frozen=True)
class NoteLine:
    name: str
    sku: str
    backordered_qty: int


def default_order_note(lines: Sequence[NoteLine]) -> str:
    """Used when the storefront service cannot render the store's message."""
    backordered = [line for line in lines if line.backordered_qty > 0]
    if not backordered:
        return ""
    rows = [f"- {line.name} ({line.sku}): {line.backordered_qty} on backorder" if line.sku
            else f"- {line.name}: {line.backordered_qty} on backorder" for line in backordered]
    return "\n".join(["Backorder: this order contains backordered products.", *rows])


def staff_notes_with(existing: str | None, note: str) -> str | None:
    """The staff notes with `note` appended once; None when nothing must be written."""
    current = existing or ""
    if not note or note in current:
        return None
    return f"{current}\n\n{note}" if current.strip() else note



# ---------------------------------------------------------------- inventory events -> write-backs

@dataclass(frozen=True)
class MirrorState:
    """What the mirror knows about a product's assignment (None times: never applied)."""

    assigned: bool = False
    assignment_event_at: datetime | None = None
    availability_event_at: datetime | None = None


@dataclass(frozen=True)
class WritebackPlan:
    """What to PUT on BigCommerce and what to record once it is applied."""

    fields: dict[str, Any]
    assigned: bool | None = None
    assignment_event_at: datetime | None = None
    availability_event_at: datetime | None = None


def plan_writeback(event_type: str, occurred_at: datetime, state: MirrorState, *, status: str = "",
                   restore_tracking: bool = False, disable_product: bool = False, stock: int = 0,
                   ) -> WritebackPlan | None:
    """The write-back for one inventory event, or None when it is stale or irrelevant.

    Assign/unassign events are ordered among themselves, availability among every event
    that sets it: an older event (redelivered, or overtaken by a concurrent newer one)
    never undoes a newer one.
    """
    occurred = as_utc(occurred_at)
    fresh_availability = is_newer_event(occurred, state.availability_event_at)
    if event_type in ("product.assigned", "product.unassigned"):
        if not is_newer_event(occurred, state.assignment_event_at):
            return None
        if event_type == "product.assigned":
            fields = assigned_writeback(status)
        else:
            fields = unassigned_writeback(restore_tracking=restore_tracking, disable_product=disable_product,
                                          stock=stock)
        sets_availability = "availability" in fields and fresh_availability
        if not sets_availability:
            fields.pop("availability", None)
        return WritebackPlan(fields, assigned=event_type == "product.assigned", assignment_event_at=occurred,
                             availability_event_at=occurred if sets_availability else None)
    if event_type in ("product.sold_out", "product.back_in_stock"):
        if not fresh_availability:
            return None
        unassigned_since = not state.assigned and state.assignment_event_at is not None
        if unassigned_since and not is_newer_event(occurred, state.assignment_event_at):
            return None
        return WritebackPlan(availability_writeback(event_type == "product.sold_out"),
                             availability_event_at=occurred)
    return None


def id_runs(ids: Sequence[int], *, span: int, max_gap: int = 8, min_count: int = 2) -> list[tuple[int, int]]:
    """Sorted ids grouped into dense (first, last) runs: consecutive ids at most `max_gap`
    apart, last - first < span. Runs of fewer than `min_count` ids are left out (cheaper to
    read alone), and so a run never makes a list read mostly orders nobody asked for."""
    runs: list[tuple[int, int]] = []
    start = 0
    for index in range(1, len(ids) + 1):
        if index == len(ids) or ids[index] - ids[index - 1] > max_gap or ids[index] - ids[start] >= span:
            if index - start >= min_count:
                runs.append((ids[start], ids[index - 1]))
            start = index
    return runs
