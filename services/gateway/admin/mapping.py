"""Proto <-> JSON of the admin API: the enums' names and every resource's snake_case JSON."""

from __future__ import annotations

from typing import Any

from backorder.billing.v1 import billing_pb2
from backorder.catalog.v1 import catalog_pb2
from backorder.inventory.v1 import inventory_pb2, report_pb2, token_pb2
from backorder.storefront.v1 import storefront_pb2

from services.common import product_status
from services.gateway.proto_json import iso, stock_json

# PRODUCT_STATUS_IN_STOCK -> "in_stock", … (the proto enum spells common's status names).
STATUS_NAMES = {inventory_pb2.ProductStatus.Value(f"PRODUCT_STATUS_{name.upper()}"): name
                for name in product_status.STATUSES}
STATUS_BY_NAME = {name: value for value, name in STATUS_NAMES.items()}
AVAILABILITY_NAMES = {
    catalog_pb2.AVAILABILITY_AVAILABLE: "available",
    catalog_pb2.AVAILABILITY_DISABLED: "disabled",
    catalog_pb2.AVAILABILITY_PREORDER: "preorder",
}
AVAILABILITY_BY_NAME = {name: value for value, name in AVAILABILITY_NAMES.items()}
VISIBILITY_BY_NAME = {"visible": catalog_pb2.VISIBILITY_VISIBLE, "hidden": catalog_pb2.VISIBILITY_HIDDEN}
ASSIGNED_BY_NAME = {"true": catalog_pb2.ASSIGNED_FILTER_ASSIGNED, "false": catalog_pb2.ASSIGNED_FILTER_UNASSIGNED}
LEDGER_KIND_NAMES = {value: name.removeprefix("LEDGER_KIND_").lower()
                     for name, value in inventory_pb2.LedgerKind.items()}
SOURCE_NAMES = {value: name.removeprefix("STOCK_SOURCE_").lower() for name, value in inventory_pb2.StockSource.items()}
SETTINGS_TEXT_FIELDS = (
    "theme_id", "theme_version", "in_stock_message", "low_stock_message", "backorder_message",
    "shipping_message", "sold_out_message", "backorder_button_text", "backorder_button_color",
    "backorder_button_text_color", "sold_out_button_text", "mixed_cart_alert", "over_threshold_alert",
    "cart_message", "order_note_message", "order_note_line", "date_format",
)
SELECTOR_FIELDS = tuple(f.name for f in storefront_pb2.ThemeSelectors.DESCRIPTOR.fields)


def assigned_product_json(product: inventory_pb2.Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "sku": product.sku,
        **stock_json(product),
        "status": STATUS_NAMES.get(product.status, product_status.IN_STOCK),
        "category_ids": list(product.category_ids),
        "brand_id": product.brand_id or None,
        "assigned_at": iso(product.assigned_at),
        "updated_at": iso(product.updated_at),
    }


def catalog_product_json(product: catalog_pb2.Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "sku": product.sku,
        "is_visible": product.is_visible,
        "availability": AVAILABILITY_NAMES.get(product.availability, "available"),
        "current_stock": product.current_stock,
        "inventory_tracking": product.inventory_tracking,
        "assigned": product.assigned,
        "category_ids": list(product.category_ids),
        "brand_id": product.brand_id or None,
    }


def ledger_json(entry: inventory_pb2.LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": LEDGER_KIND_NAMES.get(entry.kind, "unspecified"),
        "delta": entry.delta,
        "absolute": entry.absolute if entry.HasField("absolute") else None,
        "stock_before": entry.stock_before,
        "stock_after": entry.stock_after,
        "source": SOURCE_NAMES.get(entry.source, "unspecified"),
        "actor": entry.actor,
        "order_id": entry.order_id or None,
        "backordered_qty": entry.backordered_qty,
        "note": entry.note,
        "created_at": iso(entry.created_at),
    }


def update_item(fields: dict[str, Any]) -> inventory_pb2.UpdateItem:
    """A validated product edit (inputs.parse_product_fields) as inventory's UpdateItem."""
    item = inventory_pb2.UpdateItem(product_id=fields["product_id"])
    if "stock" in fields:
        item.stock = fields["stock"]
    if "threshold" in fields:
        if fields["threshold"] is None:
            item.threshold_unlimited = True
        else:
            item.threshold = fields["threshold"]
    if "incoming_stock" in fields:
        item.incoming_stock = fields["incoming_stock"]
    if "back_in_stock_date" in fields:
        item.back_in_stock_date = fields["back_in_stock_date"]
    return item


def sync_json(reply: catalog_pb2.SyncInventoryResponse) -> dict[str, Any]:
    return {"changed": reply.changed, "checked": len(reply.items),
            "items": [{"product_id": i.product_id, "bigcommerce_stock": i.bigcommerce_stock,
                       "stock_before": i.stock_before, "changed": i.changed} for i in reply.items]}


def money_json(money: billing_pb2.Money) -> dict[str, Any]:
    return {"amount_cents": money.amount_cents, "currency": money.currency or "USD",
            "formatted": f"${money.amount_cents / 100:,.2f}" if (money.currency or "USD") == "USD"
            else f"{money.amount_cents / 100:,.2f} {money.currency}"}


def plan_json(plan: billing_pb2.Plan) -> dict[str, Any]:
    return {"code": plan.code, "name": plan.name, "unlimited": plan.unlimited,
            "max_assigned_products": None if plan.unlimited else plan.max_assigned_products,
            "price": money_json(plan.price), "interval": plan.interval or "month"}


def charge_json(charge: billing_pb2.Charge) -> dict[str, Any] | None:
    if not charge.id and not charge.kind:
        return None
    return {"id": charge.id, "kind": charge.kind, "plan": charge.plan, "from_plan": charge.from_plan or None,
            "amount": money_json(charge.amount), "description": charge.description,
            "days_charged": charge.days_charged, "days_in_cycle": charge.days_in_cycle,
            "created_at": iso(charge.created_at), "checkout_url": charge.checkout_url or None}


def subscription_json(sub: billing_pb2.Subscription) -> dict[str, Any]:
    pending = None
    if sub.HasField("pending_change") and sub.pending_change.plan:
        pending = {"plan": sub.pending_change.plan, "effective_at": iso(sub.pending_change.effective_at)}
    return {
        "plan": plan_json(sub.plan), "status": sub.status, "started_at": iso(sub.started_at),
        "cycle_start": iso(sub.cycle_start), "cycle_end": iso(sub.cycle_end), "pending_change": pending,
        "last_charge": charge_json(sub.last_charge) if sub.HasField("last_charge") else None,
        "history": [{"at": iso(h.at), "kind": h.kind, "from_plan": h.from_plan or None, "to_plan": h.to_plan or None,
                     "message": h.message} for h in sub.history],
    }


def plan_change_json(reply: billing_pb2.ChangePlanResponse) -> dict[str, Any]:
    data = subscription_json(reply.subscription)
    data["change"] = {"kind": reply.kind, "amount": money_json(reply.amount), "effective_at": iso(reply.effective_at),
                      "charge": charge_json(reply.charge) if reply.HasField("charge") else None}
    return data


def quote_json(quote: billing_pb2.QuotePlanChangeResponse) -> dict[str, Any]:
    return {"kind": quote.kind, "from_plan": quote.from_plan, "to_plan": quote.to_plan,
            "amount": money_json(quote.amount), "effective_at": iso(quote.effective_at),
            "days_charged": quote.days_charged, "days_in_cycle": quote.days_in_cycle,
            "explanation": quote.explanation}


def settings_json(settings: storefront_pb2.StorefrontSettings) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(settings, name) for name in SETTINGS_TEXT_FIELDS}
    data["custom_theme"] = settings.custom_theme
    data["low_stock_level"] = settings.low_stock_level
    data["allowed_origins"] = list(settings.allowed_origins)
    data["customized"] = settings.customized
    data["selectors"] = {name: getattr(settings.selectors, name) for name in SELECTOR_FIELDS}
    return data


def inventory_settings_json(settings: inventory_pb2.StoreSettings) -> dict[str, Any]:
    return {"low_stock_level": settings.low_stock_level, "return_stock_on_cancel": settings.return_stock_on_cancel,
            "keep_assigned_when_tracking_enabled": settings.keep_assigned_when_tracking_enabled,
            "timezone": settings.timezone}


def theme_json(theme: storefront_pb2.Theme) -> dict[str, Any]:
    return {"id": theme.id, "name": theme.name, "vendor": theme.vendor, "based_on": theme.based_on or None,
            "versions": [v.version for v in theme.versions]}


def token_json(token: token_pb2.ApiToken) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "prefix": token.prefix, "created_at": iso(token.created_at),
            "last_used_at": iso(token.last_used_at), "revoked_at": iso(token.revoked_at)}


def backorder_row_json(row: report_pb2.BackorderRow) -> dict[str, Any]:
    return {"product_id": row.product_id, "product_name": row.product_name, "sku": row.sku,
            "purchased_qty": row.purchased_qty, "backordered_qty": row.backordered_qty, "order_id": row.order_id,
            "order_email": row.order_email, "order_date": row.order_date_local or iso(row.order_date)}
