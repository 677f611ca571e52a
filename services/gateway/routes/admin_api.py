"""The merchant's admin JSON API (`/api/v1`, API.md): one store per caller.

Routes only translate: authenticate (session + CSRF, or a Bearer store API token), turn
JSON/query input into the backends' protos, and protos back into snake_case JSON. The
store always comes from the principal, never from the request. The admin UI
(routes/admin_ui.py) renders pages from the same query functions and calls these
endpoints for every mutation.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import nats
from backorder.billing.v1 import billing_pb2
from backorder.catalog.v1 import catalog_pb2
from backorder.inventory.v1 import inventory_pb2, report_pb2, token_pb2
from backorder.storefront.v1 import storefront_pb2
from nats.js.api import KeyValueConfig, StorageType
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.common.errors import DomainError, NotFound, Unavailable, ValidationFailed, error_from_rpc
from services.gateway import csv_format
from services.gateway.auth import (
    Principal,
    RemovedUsers,
    TokenCache,
    authenticate,
    check_csrf,
    grpc_token_verifier,
    require_session,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 250
CATALOG_CHUNK = 2_000
CATALOG_PARALLEL_CHUNKS = 4
# An import answers synchronously when it finishes within this; else 202 and the client polls.
IMPORT_SYNC_WAIT_S = 25.0
IMPORT_RPC_TIMEOUT_S = 120.0
IMPORT_JOB_TTL_S = 3600.0
IMPORT_JOBS_BUCKET = "backorder_import_jobs"
IMPORT_JOB_PUBLISH_S = 0.5
KV_KEY = re.compile(r"[0-9a-f]{32}")  # an import id as create_import makes it (uuid4().hex)
# The catalog data of a preview serves the apply of the same rows for this long.
PREVIEW_CACHE_TTL_S = 300.0
PREVIEW_CACHE_ENTRIES = 4
EXPORT_PAGE_SIZE = 250

STATUS_NAMES = {
    inventory_pb2.PRODUCT_STATUS_IN_STOCK: "in_stock",
    inventory_pb2.PRODUCT_STATUS_LOW_STOCK: "low_stock",
    inventory_pb2.PRODUCT_STATUS_BACKORDER: "backorder",
    inventory_pb2.PRODUCT_STATUS_SOLD_OUT: "sold_out",
}
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
OVERWRITE_FIELDS = ("stock", "threshold", "incoming_stock", "back_in_stock_date")
SETTINGS_TEXT_FIELDS = (
    "theme_id", "theme_version", "in_stock_message", "low_stock_message", "backorder_message",
    "shipping_message", "sold_out_message", "backorder_button_text", "backorder_button_color",
    "backorder_button_text_color", "sold_out_button_text", "mixed_cart_alert", "over_threshold_alert",
    "cart_message", "order_note_message", "order_note_line", "date_format",
)
SELECTOR_FIELDS = tuple(f.name for f in storefront_pb2.ThemeSelectors.DESCRIPTOR.fields)


# ---------------------------------------------------------------- plumbing

def backend(request: Request, name: str) -> Any:
    """The gRPC stub `name` (inventory, reports, tokens, catalog, storefront, billing)."""
    try:
        return getattr(request.app.state.backends, name)
    except AttributeError:
        raise Unavailable(f"the {name} service is not available", details={"service": name}) from None


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": data}, status_code=status)


def listing(items: list[Any], total: int, page: int, limit: int) -> dict[str, Any]:
    return {"data": items, "meta": {"pagination": pagination(total, len(items), page, limit)}}


def pagination(total: int, count: int, page: int, limit: int) -> dict[str, int]:
    return {"total": total, "count": count, "per_page": limit, "current_page": page,
            "total_pages": max(1, -(-total // limit)) if limit else 1}


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise DomainError("the body is not valid JSON", code="bad_request") from None


def page_params(params: Any) -> tuple[int, int]:
    page = int_param(params, "page", 1, minimum=1)
    limit = int_param(params, "limit", DEFAULT_PAGE_SIZE, minimum=1)
    return page, min(limit, MAX_PAGE_SIZE)


def int_param(params: Any, name: str, default: int, *, minimum: int = 0) -> int:
    raw = (params.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number",
                               errors=[{"field": name, "reason": "not_a_whole_number"}]) from None
    if value < minimum:
        raise ValidationFailed(f"{name} must be at least {minimum}", errors=[{"field": name, "reason": "too_small"}])
    return value


def bool_param(raw: Any, name: str, default: bool = False) -> bool:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off"}:
        return False
    raise ValidationFailed(f"{name} must be true or false", errors=[{"field": name, "reason": "not_a_boolean"}])


def choice_param(params: Any, name: str, choices: dict[str, Any]) -> Any:
    raw = (params.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw not in choices:
        raise ValidationFailed(f"{name} must be one of {', '.join(choices)}",
                               errors=[{"field": name, "reason": "not_allowed", "allowed": list(choices)}])
    return choices[raw]


def api(handler: Callable[[Request, Principal], Awaitable[Response]], *, session_only: bool = False,
        csrf_in_form: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, check CSRF on mutations, then call handler(request, principal).

    csrf_in_form: the handler checks CSRF itself once it has read the form (multipart uploads
    may carry the token as the csrf_token field instead of the header).
    """

    async def endpoint(request: Request) -> Response:
        principal = await authenticate(request)
        if session_only:
            require_session(principal)
        if not csrf_in_form:
            check_csrf(request, principal)
        return await handler(request, principal)

    endpoint.__name__ = handler.__name__
    return endpoint


def iso(ts: Any) -> str | None:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- pure input rules

def _whole(value: Any, field_name: str, *, minimum: int | None, errors: list[dict[str, Any]], item: int | None
           ) -> int | None:
    where = {"field": field_name} if item is None else {"item": item, "field": field_name}
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and csv_format._WHOLE_NUMBER.fullmatch(value.strip()):
            value = int(value.strip())
        else:
            errors.append({**where, "reason": "not_a_whole_number"})
            return None
    if abs(value) > csv_format.MAX_INT:
        errors.append({**where, "reason": "out_of_range"})
        return None
    if minimum is not None and value < minimum:
        errors.append({**where, "reason": "negative" if minimum == 0 else "too_small"})
        return None
    return value


def parse_product_fields(body: Any, *, item: int | None = None, require_id: bool = True,
                         errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Validate one product's editable fields. Returns only the keys present (None = unlimited/cleared).

    Pure: `errors` collects {field, reason[, item]} for every bad field.
    """
    where = {} if item is None else {"item": item}
    if not isinstance(body, dict):
        errors.append({**where, "field": "", "reason": "not_an_object"})
        return {}
    fields: dict[str, Any] = {}
    if require_id or "product_id" in body:
        if "product_id" not in body:
            errors.append({**where, "field": "product_id", "reason": "required"})
        else:
            fields["product_id"] = _whole(body["product_id"], "product_id", minimum=1, errors=errors, item=item)
    if "stock" in body and body["stock"] is not None:
        fields["stock"] = _whole(body["stock"], "stock", minimum=0, errors=errors, item=item)
    if "threshold" in body:
        fields["threshold"] = (None if body["threshold"] in (None, "")
                               else _whole(body["threshold"], "threshold", minimum=0, errors=errors, item=item))
    if "incoming_stock" in body:
        fields["incoming_stock"] = (0 if body["incoming_stock"] in (None, "")
                                    else _whole(body["incoming_stock"], "incoming_stock", minimum=0, errors=errors,
                                                item=item))
    if "back_in_stock_date" in body:
        date = body["back_in_stock_date"] or ""
        if not isinstance(date, str) or (date and not csv_format.validate_date(date)):
            errors.append({**where, "field": "back_in_stock_date", "reason": "bad_date", "expected": "YYYY-MM-DD"})
        else:
            fields["back_in_stock_date"] = date
    unknown = set(body) - {"product_id", "stock", "threshold", "incoming_stock", "back_in_stock_date"}
    for name in sorted(unknown):
        errors.append({**where, "field": name, "reason": "unknown_field"})
    return fields


def parse_items(body: Any, key: str = "items", *, require_id: bool = True) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list) or not body[key]:
        raise ValidationFailed(f"{key} must be a non-empty list", errors=[{"field": key, "reason": "required"}])
    errors: list[dict[str, Any]] = []
    items = [parse_product_fields(entry, item=index, require_id=require_id, errors=errors)
             for index, entry in enumerate(body[key])]
    seen: dict[int, int] = {}
    for index, entry in enumerate(items):
        pid = entry.get("product_id")
        if pid is not None and seen.setdefault(pid, index) != index:
            errors.append({"item": index, "field": "product_id", "reason": "duplicate", "product_id": pid})
    if errors:
        raise ValidationFailed("some items are invalid; nothing was changed", errors=errors)
    return items


def parse_product_ids(raw: Any, field_name: str = "product_ids") -> list[int]:
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed(f"{field_name} must be a non-empty list of product ids",
                               errors=[{"field": field_name, "reason": "required"}])
    errors: list[dict[str, Any]] = []
    ids = [_whole(v, field_name, minimum=1, errors=errors, item=i) for i, v in enumerate(raw)]
    if errors:
        raise ValidationFailed("product ids must be positive whole numbers", errors=errors)
    return list(dict.fromkeys(i for i in ids if i is not None))


def update_item(fields: dict[str, Any]) -> inventory_pb2.UpdateItem:
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


# ---------------------------------------------------------------- proto -> JSON

def assigned_product_json(product: inventory_pb2.Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "sku": product.sku,
        "stock": product.stock,
        "threshold": product.threshold if product.HasField("threshold") else None,
        "salable_qty": product.salable_qty if product.HasField("salable_qty") else None,
        "incoming_stock": product.incoming_stock,
        "back_in_stock_date": product.back_in_stock_date or None,
        "status": STATUS_NAMES.get(product.status, "in_stock"),
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


# ---------------------------------------------------------------- queries (shared with the UI)

async def query_catalog(request: Request, store: str, params: Any) -> dict[str, Any]:
    page, limit = page_params(params)
    reply = await backend(request, "catalog").ListProducts(catalog_pb2.ListProductsRequest(
        store_hash=store, q=(params.get("q") or "").strip(),
        visibility=choice_param(params, "visibility", VISIBILITY_BY_NAME) or 0,
        availability=choice_param(params, "availability", AVAILABILITY_BY_NAME) or 0,
        assigned=choice_param(params, "assigned", ASSIGNED_BY_NAME) or 0,
        page=page, limit=limit))
    return listing([catalog_product_json(p) for p in reply.products], reply.total, page, limit)


async def query_assigned(request: Request, store: str, params: Any) -> dict[str, Any]:
    page, limit = page_params(params)
    status = choice_param(params, "status", STATUS_BY_NAME) or 0
    reply = await backend(request, "inventory").ListProducts(inventory_pb2.ListProductsRequest(
        store_hash=store, q=(params.get("q") or "").strip(), status=status, page=page, limit=limit))
    return listing([assigned_product_json(p) for p in reply.products], reply.total, page, limit)


async def query_assigned_by_ids(request: Request, store: str, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    reply = await backend(request, "inventory").ListProducts(inventory_pb2.ListProductsRequest(
        store_hash=store, product_ids=ids, page=1, limit=MAX_PAGE_SIZE))
    by_id = {p.product_id: assigned_product_json(p) for p in reply.products}
    return [by_id[i] for i in ids if i in by_id]


async def query_catalog_by_ids(request: Request, store: str, ids: list[int], *, timeout_s: float | None = None
                               ) -> tuple[list[catalog_pb2.Product], list[int]]:
    """Products by id from the catalog mirror, in chunks, a few chunks in flight at once."""
    extra = {"timeout": timeout_s} if timeout_s else {}
    catalog = backend(request, "catalog")
    gate = asyncio.Semaphore(CATALOG_PARALLEL_CHUNKS)

    async def chunk(part: list[int]) -> Any:
        async with gate:
            return await catalog.GetProducts(catalog_pb2.GetProductsRequest(store_hash=store, product_ids=part),
                                             **extra)

    replies = await asyncio.gather(*(chunk(ids[start:start + CATALOG_CHUNK])
                                     for start in range(0, len(ids), CATALOG_CHUNK)))
    products = [p for reply in replies for p in reply.products]
    missing = [i for reply in replies for i in reply.missing_ids]
    return products, missing


def parse_report_filter(params: Any) -> report_pb2.BackorderFilter:
    errors = []
    dates = {}
    for name in ("from", "to"):
        value = (params.get(name) or "").strip()
        if value and not csv_format.validate_date(value):
            errors.append({"field": name, "reason": "bad_date", "expected": "YYYY-MM-DD"})
        dates[name] = value
    if errors:
        raise ValidationFailed("dates must be YYYY-MM-DD", errors=errors)
    return report_pb2.BackorderFilter(q=(params.get("q") or "").strip(), from_date=dates["from"],
                                      to_date=dates["to"], category_id=int_param(params, "category_id", 0),
                                      brand_id=int_param(params, "brand_id", 0))


async def query_report(request: Request, store: str, params: Any) -> dict[str, Any]:
    page, limit = page_params(params)
    reply = await backend(request, "reports").ListBackorders(report_pb2.ListBackordersRequest(
        store_hash=store, filter=parse_report_filter(params), page=page, limit=limit))
    return listing([backorder_row_json(r) for r in reply.rows], reply.total, page, limit)


async def query_usage(request: Request, store: str) -> dict[str, Any]:
    """Usage "x of limit": inventory's assigned count against billing's entitlement."""
    count, entitlement = await asyncio.gather(
        backend(request, "inventory").ListProducts(inventory_pb2.ListProductsRequest(store_hash=store, page=1,
                                                                                     limit=1)),
        backend(request, "billing").GetEntitlement(billing_pb2.GetEntitlementRequest(store_hash=store)))
    limit = None if entitlement.unlimited else entitlement.max_assigned_products
    return {"assigned": count.total, "limit": limit, "unlimited": entitlement.unlimited, "plan": entitlement.plan,
            "remaining": None if limit is None else max(0, limit - count.total)}


async def query_settings(request: Request, store: str) -> dict[str, Any]:
    reply = await backend(request, "storefront").GetSettings(storefront_pb2.GetSettingsRequest(store_hash=store))
    return settings_json(reply.settings)


async def query_themes(request: Request) -> list[dict[str, Any]]:
    reply = await backend(request, "storefront").ListThemes(storefront_pb2.ListThemesRequest())
    return [theme_json(t) for t in reply.themes]


async def query_inventory_settings(request: Request, store: str) -> dict[str, Any]:
    reply = await backend(request, "inventory").GetStoreSettings(
        inventory_pb2.GetStoreSettingsRequest(store_hash=store))
    s = reply.settings
    return {"low_stock_level": s.low_stock_level, "return_stock_on_cancel": s.return_stock_on_cancel,
            "keep_assigned_when_tracking_enabled": s.keep_assigned_when_tracking_enabled, "timezone": s.timezone}


async def query_plans(request: Request) -> list[dict[str, Any]]:
    reply = await backend(request, "billing").ListPlans(billing_pb2.ListPlansRequest())
    return [plan_json(p) for p in reply.plans]


async def query_subscription(request: Request, store: str) -> dict[str, Any]:
    reply = await backend(request, "billing").GetSubscription(billing_pb2.GetSubscriptionRequest(store_hash=store))
    return subscription_json(reply.subscription)


async def query_tokens(request: Request, store: str) -> list[dict[str, Any]]:
    reply = await backend(request, "tokens").ListApiTokens(token_pb2.ListApiTokensRequest(store_hash=store))
    return [token_json(t) for t in reply.tokens]


# ---------------------------------------------------------------- products

async def list_products(request: Request, principal: Principal) -> Response:
    return JSONResponse(await query_catalog(request, principal.store_hash, request.query_params))


async def list_backorder_products(request: Request, principal: Principal) -> Response:
    return JSONResponse(await query_assigned(request, principal.store_hash, request.query_params))


async def get_backorder_product(request: Request, principal: Principal) -> Response:
    reply = await backend(request, "inventory").GetProduct(inventory_pb2.GetProductRequest(
        store_hash=principal.store_hash, product_id=request.path_params["product_id"], ledger_limit=20))
    data = assigned_product_json(reply.product)
    data["recent_ledger"] = [ledger_json(e) for e in reply.recent_ledger]
    return ok(data)


async def assign(request: Request, principal: Principal, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill name/SKU/category/brand and the default stock from the catalog mirror, then assign all or nothing."""
    ids = [item["product_id"] for item in items]
    products, missing = await query_catalog_by_ids(request, principal.store_hash, ids)
    if missing:
        raise NotFound("some products are not in the catalog; refresh the catalog and try again",
                       details={"product_ids": list(missing)})
    by_id = {p.product_id: p for p in products}
    assign_items = []
    for item in items:
        product = by_id[item["product_id"]]
        entry = inventory_pb2.AssignItem(
            product_id=product.product_id, name=product.name, sku=product.sku,
            stock=item["stock"] if item.get("stock") is not None else product.current_stock,
            incoming_stock=item.get("incoming_stock") or 0, back_in_stock_date=item.get("back_in_stock_date") or "",
            category_ids=list(product.category_ids), brand_id=product.brand_id)
        if item.get("threshold") is not None:
            entry.threshold = item["threshold"]
        assign_items.append(entry)
    reply = await backend(request, "inventory").AssignProducts(inventory_pb2.AssignProductsRequest(
        store_hash=principal.store_hash, items=assign_items, actor=principal.actor,
        source=inventory_pb2.STOCK_SOURCE_ADMIN))
    return [assigned_product_json(p) for p in reply.products]


async def assign_one(request: Request, principal: Principal) -> Response:
    errors: list[dict[str, Any]] = []
    fields = parse_product_fields(await json_body(request), errors=errors)
    if errors:
        raise ValidationFailed("the product is invalid; nothing was changed", errors=errors)
    return ok((await assign(request, principal, [fields]))[0], 201)


async def bulk_assign(request: Request, principal: Principal) -> Response:
    items = parse_items(await json_body(request))
    return ok(await assign(request, principal, items), 201)


async def edit(request: Request, principal: Principal, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reply = await backend(request, "inventory").UpdateProducts(inventory_pb2.UpdateProductsRequest(
        store_hash=principal.store_hash, items=[update_item(i) for i in items], actor=principal.actor,
        source=inventory_pb2.STOCK_SOURCE_ADMIN))
    return [assigned_product_json(p) for p in reply.products]


async def edit_one(request: Request, principal: Principal) -> Response:
    errors: list[dict[str, Any]] = []
    fields = parse_product_fields(await json_body(request), require_id=False, errors=errors)
    path_id = request.path_params["product_id"]
    if fields.get("product_id") not in (None, path_id):
        errors.append({"field": "product_id", "reason": "does_not_match_path"})
    if errors:
        raise ValidationFailed("the changes are invalid; nothing was changed", errors=errors)
    fields["product_id"] = path_id
    return ok((await edit(request, principal, [fields]))[0])


async def bulk_edit(request: Request, principal: Principal) -> Response:
    return ok(await edit(request, principal, parse_items(await json_body(request))))


async def unassign(request: Request, principal: Principal, ids: list[int], restore_tracking: bool,
                   disable_product: bool) -> list[dict[str, Any]]:
    reply = await backend(request, "inventory").UnassignProducts(inventory_pb2.UnassignProductsRequest(
        store_hash=principal.store_hash, product_ids=ids, restore_tracking=restore_tracking,
        disable_product=disable_product, actor=principal.actor))
    return [assigned_product_json(p) for p in reply.products]


async def unassign_one(request: Request, principal: Principal) -> Response:
    params = request.query_params
    data = await unassign(request, principal, [request.path_params["product_id"]],
                          bool_param(params.get("restore_tracking"), "restore_tracking"),
                          bool_param(params.get("disable_product"), "disable_product"))
    return ok(data[0] if data else None)


async def bulk_unassign(request: Request, principal: Principal) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be an object", errors=[{"field": "", "reason": "not_an_object"}])
    ids = parse_product_ids(body.get("product_ids"))
    return ok(await unassign(request, principal, ids, bool_param(body.get("restore_tracking"), "restore_tracking"),
                             bool_param(body.get("disable_product"), "disable_product")))


async def sync(request: Request, principal: Principal) -> Response:
    body = await json_body(request)
    ids = parse_product_ids(body["product_ids"]) if isinstance(body, dict) and body.get("product_ids") else []
    reply = await backend(request, "catalog").SyncInventory(catalog_pb2.SyncInventoryRequest(
        store_hash=principal.store_hash, product_ids=ids), timeout=120)
    return ok({"changed": reply.changed, "checked": len(reply.items),
               "items": [{"product_id": i.product_id, "bigcommerce_stock": i.bigcommerce_stock,
                          "stock_before": i.stock_before, "changed": i.changed} for i in reply.items]})


async def export_products(request: Request, principal: Principal) -> Response:
    inventory = backend(request, "inventory")
    first = await inventory.ListProducts(inventory_pb2.ListProductsRequest(
        store_hash=principal.store_hash, page=1, limit=EXPORT_PAGE_SIZE))

    async def lines() -> AsyncIterator[str]:
        yield "\ufeff" + csv_format.csv_line(("product_id", "name", "sku", "current_stock", "backorder_threshold",
                                              "incoming_stock", "back_in_stock_date"))
        reply, page = first, 1
        while True:
            for p in reply.products:
                yield csv_format.csv_line((p.product_id, p.name, p.sku, p.stock,
                                           p.threshold if p.HasField("threshold") else "", p.incoming_stock,
                                           p.back_in_stock_date))
            if page * EXPORT_PAGE_SIZE >= reply.total or not reply.products:
                return
            page += 1
            reply = await inventory.ListProducts(inventory_pb2.ListProductsRequest(
                store_hash=principal.store_hash, page=page, limit=EXPORT_PAGE_SIZE))

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": 'attachment; filename="backorder-products.csv"', "cache-control": "no-store"})


# ---------------------------------------------------------------- imports

@dataclass
class ImportJob:
    id: str
    store_hash: str
    mode: str
    dry_run: bool
    overwrite: list[str]
    file_name: str
    status: str = "validating"  # validating | applying | validated | completed | failed
    rows: int = 0
    processed: int = 0
    applied: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    task: asyncio.Task[None] | None = None
    # Seconds per phase (parse, catalog, inventory), for operators and the benchmark.
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "mode": self.mode, "dry_run": self.dry_run,
                "overwrite": self.overwrite, "file_name": self.file_name, "rows": self.rows,
                "processed": self.processed, "applied": self.applied, "errors": self.errors,
                "error_count": len(self.errors), "message": self.message,
                "timings": {k: round(v, 3) for k, v in self.timings.items()},
                "done": self.status in {"validated", "completed", "failed"}}


class ImportJobs:
    """Import jobs: run by the gateway process that received the file, readable from every one.

    A job runs in the process that took the upload; while it runs, that process writes its
    state (the JSON the API returns) to the JetStream key-value bucket `backorder_import_jobs`
    every IMPORT_JOB_PUBLISH_S and once it is done, under `<store_hash>.<job id>` (kept an
    hour). Polls that a load balancer sends to another gateway pod read it from there. Without
    a bucket (unit tests) jobs are only local.

    Also keeps the catalog data a preview (dry run) read, for the apply of the same rows that
    usually follows, so the apply does not read 100,000 products again. Few entries, short TTL.
    """

    def __init__(self, kv: Any = None) -> None:
        self._jobs: dict[str, ImportJob] = {}
        self._previewed: dict[tuple[str, str], tuple[float, dict[int, catalog_pb2.Product]]] = {}
        self._kv = kv
        self._publishers: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, bus: Any) -> ImportJobs:
        """Jobs shared through the bus's key-value bucket (created on first use)."""
        try:
            kv = await bus.js.key_value(IMPORT_JOBS_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            kv = await bus.js.create_key_value(KeyValueConfig(
                bucket=IMPORT_JOBS_BUCKET, history=1, ttl=IMPORT_JOB_TTL_S, storage=StorageType.FILE,
                replicas=bus.replicas, description="admin import jobs' progress, shared by the gateway pods"))
        return cls(kv)

    @staticmethod
    def _key(store_hash: str, job_id: str) -> str:
        return f"{store_hash}.{job_id}"

    def track(self, job: ImportJob) -> None:
        """Publish the job's state while its task runs, and once it ended."""
        if self._kv is None or job.task is None:
            return
        publisher = asyncio.create_task(self._publish_while_running(job))
        self._publishers.add(publisher)
        publisher.add_done_callback(self._publishers.discard)

    async def _publish_while_running(self, job: ImportJob) -> None:
        assert job.task is not None
        while True:
            done = job.task.done()
            try:
                await self._kv.put(self._key(job.store_hash, job.id), json.dumps(job.to_json()).encode())
            except Exception as exc:  # noqa: BLE001 - best effort: this pod still answers for the job
                log.warning("import %s: could not share its progress: %s", job.id, exc)
            if done:
                return
            await asyncio.wait({job.task}, timeout=IMPORT_JOB_PUBLISH_S)

    async def close(self) -> None:
        for publisher in list(self._publishers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(publisher, 5.0)

    def remember_catalog(self, store_hash: str, ids_digest: str, catalog: dict[int, catalog_pb2.Product]) -> None:
        now = time.monotonic()
        self._previewed = {k: v for k, v in self._previewed.items() if v[0] > now}
        while len(self._previewed) >= PREVIEW_CACHE_ENTRIES:
            self._previewed.pop(next(iter(self._previewed)))
        self._previewed[(store_hash, ids_digest)] = (now + PREVIEW_CACHE_TTL_S, catalog)

    def previewed_catalog(self, store_hash: str, ids_digest: str) -> dict[int, catalog_pb2.Product] | None:
        entry = self._previewed.pop((store_hash, ids_digest), None)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def add(self, job: ImportJob) -> None:
        now = time.time()
        self._jobs = {k: j for k, j in self._jobs.items()
                      if j.finished_at is None or now - j.finished_at < IMPORT_JOB_TTL_S}
        self._jobs[job.id] = job

    def running(self) -> list[ImportJob]:
        return [j for j in self._jobs.values() if j.task is not None and not j.task.done()]

    def get(self, store_hash: str, job_id: str) -> ImportJob:
        """A job of this process."""
        job = self._jobs.get(job_id)
        if job is None or job.store_hash != store_hash:
            raise NotFound("no such import", details={"import_id": job_id})
        return job

    async def get_json(self, store_hash: str, job_id: str) -> dict[str, Any]:
        """A job's state as the API returns it, from this process or from the bucket."""
        job = self._jobs.get(job_id)
        if job is not None and job.store_hash == store_hash:
            return job.to_json()
        if self._kv is not None and KV_KEY.fullmatch(job_id):
            try:
                entry = await self._kv.get(self._key(store_hash, job_id))
            except nats.js.errors.KeyNotFoundError:
                entry = None
            if entry is not None and entry.value:
                return dict(json.loads(entry.value))
        raise NotFound("no such import", details={"import_id": job_id})


def parse_overwrite(raw: str | None) -> list[str]:
    if raw is None or not raw.strip():
        return list(OVERWRITE_FIELDS)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    bad = [n for n in names if n not in OVERWRITE_FIELDS]
    if bad or not names:
        raise ValidationFailed(f"overwrite takes {', '.join(OVERWRITE_FIELDS)}",
                               errors=[{"field": "overwrite", "reason": "not_allowed", "values": bad}])
    return list(dict.fromkeys(names))


def add_import_rows(out: Any, rows: list[csv_format.ImportRow], catalog: dict[int, catalog_pb2.Product],
                    mode: str) -> None:
    """Append the rows to a repeated ImportRow field, built in place (a message built apart is
    copied into the request, which cost as much as building it)."""
    for row in rows:
        stock = row.current_stock
        product = catalog.get(row.product_id)
        if stock is None and mode == "assign" and product is not None:
            stock = product.current_stock
        item = out.add(
            row=row.row, product_id=str(row.product_id), current_stock="" if stock is None else str(stock),
            backorder_threshold="" if row.backorder_threshold is None else str(row.backorder_threshold),
            incoming_stock=str(row.incoming_stock), back_in_stock_date=row.back_in_stock_date)
        if product is not None:
            item.name = product.name
            item.sku = product.sku
            item.category_ids.extend(product.category_ids)
            item.brand_id = product.brand_id


async def run_import(request: Request, principal: Principal, job: ImportJob, upload: Any) -> None:
    """Parse + validate in one pass (worker thread), fill from the catalog, then one ImportProducts call.

    Inventory applies all rows or none; nothing is sent when the file itself has errors.
    """
    def progress(rows: int) -> None:
        job.processed = rows

    started = time.perf_counter()
    try:
        try:
            parsed = await asyncio.to_thread(csv_format.parse_import, upload, progress=progress)
            job.timings["parse_s"] = time.perf_counter() - started
        except csv_format.CsvFileError as exc:
            job.errors = exc.details.get("errors") or [
                {"row": exc.details.get("row", 0), "column": "", "code": exc.code, "message": exc.message}]
            job.message = exc.message
            job.status = "failed"
            return
        job.rows = parsed.total_rows
        job.processed = parsed.total_rows
        if parsed.errors:
            job.errors = [e.to_dict() for e in parsed.errors]
            job.message = f"{len(parsed.errors)} problem(s) found; nothing was applied"
            job.status = "failed"
            return
        catalog: dict[int, catalog_pb2.Product] = {}
        if job.mode == "assign":
            phase = time.perf_counter()
            jobs: ImportJobs = request.app.state.import_jobs
            ids = [r.product_id for r in parsed.rows]
            digest = hashlib.sha256(array.array("q", ids).tobytes()).hexdigest()
            missing: list[int] = []
            cached = None if job.dry_run else jobs.previewed_catalog(principal.store_hash, digest)
            if cached is not None:
                catalog = cached
            else:
                products, missing = await query_catalog_by_ids(request, principal.store_hash, ids,
                                                               timeout_s=IMPORT_RPC_TIMEOUT_S)
                catalog = {p.product_id: p for p in products}
                if job.dry_run and not missing:
                    jobs.remember_catalog(principal.store_hash, digest, catalog)
            job.timings["catalog_s"] = time.perf_counter() - phase
            if missing:
                missing_set = set(missing)
                job.errors = [{"row": r.row, "column": "product_id", "code": "unknown_product",
                               "message": f"product {r.product_id} is not in the store's catalog"}
                              for r in parsed.rows if r.product_id in missing_set][:csv_format.MAX_REPORTED_ERRORS]
                job.message = f"{len(missing)} unknown product id(s); nothing was applied"
                job.status = "failed"
                return
        job.status = "validating" if job.dry_run else "applying"
        phase = time.perf_counter()
        import_request = inventory_pb2.ImportProductsRequest(
            store_hash=principal.store_hash,
            mode=inventory_pb2.IMPORT_MODE_ASSIGN if job.mode == "assign" else inventory_pb2.IMPORT_MODE_UPDATE,
            overwrite=job.overwrite, dry_run=job.dry_run, actor=principal.actor, import_id=job.id)
        add_import_rows(import_request.rows, parsed.rows, catalog, job.mode)
        reply = await backend(request, "inventory").ImportProducts(import_request, timeout=IMPORT_RPC_TIMEOUT_S)
        job.timings["inventory_s"] = time.perf_counter() - phase
        job.errors = [{"row": e.row, "column": e.column, "code": e.code, "message": e.message}
                      for e in reply.errors][:csv_format.MAX_REPORTED_ERRORS]
        job.applied = reply.applied
        if job.errors:
            job.status = "failed"
            job.message = f"{len(reply.errors)} problem(s) found; nothing was applied"
        elif job.dry_run:
            job.status = "validated"
            job.message = f"{job.rows} row(s) are valid and ready to apply"
        else:
            job.status = "completed"
            job.message = f"{job.applied} product(s) {'assigned' if job.mode == 'assign' else 'updated'}"
    except Exception as exc:  # noqa: BLE001 - the job must end in a state the merchant can read
        if isinstance(exc, DomainError):
            error = exc
        elif isinstance(exc, grpc.RpcError):
            error = error_from_rpc(exc)
        else:
            log.exception("import %s failed", job.id)
            error = DomainError("internal error", code="internal")
        log.warning("import %s for store %s failed: %s", job.id, job.store_hash, error.code)
        job.errors = [{"row": 0, "column": "", "code": error.code, "message": error.message}]
        job.message = error.message
        job.status = "failed"
    finally:
        job.timings["total_s"] = time.perf_counter() - started
        job.finished_at = time.time()
        close = getattr(upload, "close", None)
        if close is not None:
            close()


async def create_import(request: Request, principal: Principal) -> Response:
    declared = int(request.headers.get("content-length") or 0)
    if declared > csv_format.MAX_IMPORT_BYTES + 64 * 1024:
        raise DomainError(f"the file is larger than {csv_format.MAX_IMPORT_BYTES // (1024 * 1024)} MB; "
                          "split it into smaller files", code="payload_too_large",
                          details={"max_bytes": csv_format.MAX_IMPORT_BYTES})
    form = await request.form(max_files=1, max_fields=20)
    check_csrf(request, principal, form_value=str(form.get("csrf_token") or ""))
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ValidationFailed("attach the CSV file as the multipart field 'file'",
                               errors=[{"field": "file", "reason": "required"}])
    mode = str(form.get("mode") or "assign").strip().lower()
    if mode not in {"assign", "update"}:
        raise ValidationFailed("mode must be assign or update", errors=[{"field": "mode", "reason": "not_allowed"}])
    job = ImportJob(id=uuid.uuid4().hex, store_hash=principal.store_hash, mode=mode,
                    dry_run=bool_param(form.get("dry_run"), "dry_run"),
                    overwrite=parse_overwrite(str(form["overwrite"]) if form.get("overwrite") is not None else None),
                    file_name=upload.filename or "import.csv")
    request.app.state.import_jobs.add(job)
    job.task = asyncio.create_task(run_import(request, principal, job, upload.file))
    request.app.state.import_jobs.track(job)
    try:
        await asyncio.wait_for(asyncio.shield(job.task), IMPORT_SYNC_WAIT_S)
    except TimeoutError:
        return ok(job.to_json(), 202)
    return ok(job.to_json(), 200 if job.status != "failed" else 422)


async def get_import(request: Request, principal: Principal) -> Response:
    return ok(await request.app.state.import_jobs.get_json(principal.store_hash, request.path_params["import_id"]))


async def import_errors_csv(request: Request, principal: Principal) -> Response:
    job = await request.app.state.import_jobs.get_json(principal.store_hash, request.path_params["import_id"])
    return Response("\ufeff" + csv_format.error_report_csv(job["errors"]), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="import-errors-{job["id"][:8]}.csv"'})


async def import_template(request: Request, principal: Principal) -> Response:
    return Response(csv_format.TEMPLATE_CSV, media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="backorder-import-template.csv"'})


# ---------------------------------------------------------------- settings

def settings_update(store: str, body: Any) -> storefront_pb2.UpdateSettingsRequest:
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be an object", errors=[{"field": "", "reason": "not_an_object"}])
    request = storefront_pb2.UpdateSettingsRequest(store_hash=store)
    errors = []
    for name, value in body.items():
        if name in SETTINGS_TEXT_FIELDS:
            if not isinstance(value, str):
                errors.append({"field": name, "reason": "not_a_string"})
            else:
                setattr(request, name, value)
        elif name == "custom_theme":
            request.custom_theme = bool_param(value, name)
        elif name == "low_stock_level":
            number = _whole(value, name, minimum=0, errors=errors, item=None)
            if number is not None:
                request.low_stock_level = number
        elif name == "allowed_origins":
            if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
                errors.append({"field": name, "reason": "not_a_list_of_strings"})
            else:
                request.allowed_origins.extend(o.strip() for o in value if o.strip())
                request.set_allowed_origins = True
        elif name == "reset_to_defaults":
            request.reset_to_defaults = bool_param(value, name)
        elif name not in {"selectors", "customized"}:
            errors.append({"field": name, "reason": "unknown_field"})
    if errors:
        raise ValidationFailed("some settings are invalid; nothing was saved", errors=errors)
    return request


async def get_settings(request: Request, principal: Principal) -> Response:
    return ok(await query_settings(request, principal.store_hash))


async def put_settings(request: Request, principal: Principal) -> Response:
    reply = await backend(request, "storefront").UpdateSettings(
        settings_update(principal.store_hash, await json_body(request)))
    return ok(settings_json(reply.settings))


async def list_themes(request: Request, principal: Principal) -> Response:
    return ok(await query_themes(request))


async def get_inventory_settings(request: Request, principal: Principal) -> Response:
    return ok(await query_inventory_settings(request, principal.store_hash))


async def put_inventory_settings(request: Request, principal: Principal) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be an object", errors=[{"field": "", "reason": "not_an_object"}])
    update = inventory_pb2.UpdateStoreSettingsRequest(store_hash=principal.store_hash)
    errors: list[dict[str, Any]] = []
    for name, value in body.items():
        if name == "low_stock_level":
            number = _whole(value, name, minimum=0, errors=errors, item=None)
            if number is not None:
                update.low_stock_level = number
        elif name in {"return_stock_on_cancel", "keep_assigned_when_tracking_enabled"}:
            setattr(update, name, bool_param(value, name))
        elif name == "timezone":
            if not isinstance(value, str):
                errors.append({"field": name, "reason": "not_a_string"})
            else:
                update.timezone = value
        else:
            errors.append({"field": name, "reason": "unknown_field"})
    if errors:
        raise ValidationFailed("some settings are invalid; nothing was saved", errors=errors)
    await backend(request, "inventory").UpdateStoreSettings(update)
    return ok(await query_inventory_settings(request, principal.store_hash))


# ---------------------------------------------------------------- report

async def report(request: Request, principal: Principal) -> Response:
    return JSONResponse(await query_report(request, principal.store_hash, request.query_params))


async def report_csv(request: Request, principal: Principal) -> Response:
    stream = backend(request, "reports").ExportBackorders(report_pb2.ExportBackordersRequest(
        store_hash=principal.store_hash, filter=parse_report_filter(request.query_params)), timeout=300)

    async def chunks() -> AsyncIterator[bytes]:
        async for reply in stream:
            yield reply.chunk

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": 'attachment; filename="backorder-report.csv"', "cache-control": "no-store"})


# ---------------------------------------------------------------- billing

async def list_plans(request: Request, principal: Principal) -> Response:
    return ok(await query_plans(request))


async def get_subscription(request: Request, principal: Principal) -> Response:
    data = await query_subscription(request, principal.store_hash)
    data["usage"] = await query_usage(request, principal.store_hash)
    return ok(data)


def plan_code(body: Any) -> str:
    plan = body.get("plan") if isinstance(body, dict) else None
    if not isinstance(plan, str) or not plan.strip():
        raise ValidationFailed("plan is required", errors=[{"field": "plan", "reason": "required"}])
    return plan.strip()


async def quote_plan(request: Request, principal: Principal) -> Response:
    plan = plan_code({"plan": request.query_params.get("plan")})
    reply = await backend(request, "billing").QuotePlanChange(billing_pb2.QuotePlanChangeRequest(
        store_hash=principal.store_hash, plan=plan))
    return ok(quote_json(reply))


async def change_plan(request: Request, principal: Principal) -> Response:
    plan = plan_code(await json_body(request))
    reply = await backend(request, "billing").ChangePlan(billing_pb2.ChangePlanRequest(
        store_hash=principal.store_hash, plan=plan))
    data = subscription_json(reply.subscription)
    data["change"] = {"kind": reply.kind, "amount": money_json(reply.amount), "effective_at": iso(reply.effective_at),
                      "charge": charge_json(reply.charge) if reply.HasField("charge") else None}
    return ok(data)


async def cancel_pending_change(request: Request, principal: Principal) -> Response:
    reply = await backend(request, "billing").CancelPendingChange(billing_pb2.CancelPendingChangeRequest(
        store_hash=principal.store_hash))
    return ok(subscription_json(reply.subscription))


async def list_charges(request: Request, principal: Principal) -> Response:
    limit = min(int_param(request.query_params, "limit", 50, minimum=1), 200)
    before_id = int_param(request.query_params, "before_id", 0, minimum=0)
    reply = await backend(request, "billing").ListCharges(billing_pb2.ListChargesRequest(
        store_hash=principal.store_hash, limit=limit, before_id=before_id))
    return ok([charge_json(charge) for charge in reply.charges])


async def usage(request: Request, principal: Principal) -> Response:
    return ok(await query_usage(request, principal.store_hash))


# ---------------------------------------------------------------- tokens

async def create_token(request: Request, principal: Principal) -> Response:
    body = await json_body(request)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
        raise ValidationFailed("name is required (up to 100 characters)",
                               errors=[{"field": "name", "reason": "required"}])
    reply = await backend(request, "tokens").CreateApiToken(token_pb2.CreateApiTokenRequest(
        store_hash=principal.store_hash, name=name.strip()))
    return ok({**token_json(reply.token), "token": reply.plaintext}, 201)


async def list_tokens(request: Request, principal: Principal) -> Response:
    return ok(await query_tokens(request, principal.store_hash))


async def revoke_token(request: Request, principal: Principal) -> Response:
    token_id = request.path_params["token_id"]
    reply = await backend(request, "tokens").RevokeApiToken(token_pb2.RevokeApiTokenRequest(
        store_hash=principal.store_hash, id=token_id))
    request.app.state.token_cache.forget_token_id(token_id)
    return ok(token_json(reply.token))


# ---------------------------------------------------------------- wiring

async def startup(app: Any) -> None:
    app.state.import_jobs = await ImportJobs.open(app.state.bus)
    app.state.removed_users = getattr(app.state, "removed_users", None) or RemovedUsers()
    app.state.token_cache = TokenCache(grpc_token_verifier(lambda: app.state.backends.tokens))


async def shutdown(app: Any) -> None:
    for job in app.state.import_jobs.running():
        assert job.task is not None
        # Said before the cancel, so the state other pods read is not left at "applying".
        job.status = "failed"
        job.message = ("the import was interrupted by a gateway restart; check the products and import "
                       "the file again if needed (applying the same rows twice changes nothing)")
        job.errors = [{"row": 0, "column": "", "code": "interrupted", "message": job.message}]
        job.task.cancel()
    await app.state.import_jobs.close()


P = "/api/v1"
routes = [
    Route(f"{P}/products", api(list_products), methods=["GET"]),
    Route(f"{P}/backorder-products", api(list_backorder_products), methods=["GET"]),
    Route(f"{P}/backorder-products", api(assign_one), methods=["POST"]),
    Route(f"{P}/backorder-products", api(bulk_edit), methods=["PATCH"]),
    Route(f"{P}/backorder-products/export.csv", api(export_products), methods=["GET"]),
    Route(f"{P}/backorder-products/bulk-assign", api(bulk_assign), methods=["POST"]),
    Route(f"{P}/backorder-products/bulk-unassign", api(bulk_unassign), methods=["POST"]),
    Route(f"{P}/backorder-products/{{product_id:int}}", api(get_backorder_product), methods=["GET"]),
    Route(f"{P}/backorder-products/{{product_id:int}}", api(edit_one), methods=["PATCH"]),
    Route(f"{P}/backorder-products/{{product_id:int}}", api(unassign_one), methods=["DELETE"]),
    Route(f"{P}/imports/template.csv", api(import_template), methods=["GET"]),
    Route(f"{P}/imports", api(create_import, csrf_in_form=True), methods=["POST"]),
    Route(f"{P}/imports/{{import_id}}", api(get_import), methods=["GET"]),
    Route(f"{P}/imports/{{import_id}}/errors.csv", api(import_errors_csv), methods=["GET"]),
    Route(f"{P}/sync", api(sync), methods=["POST"]),
    Route(f"{P}/settings/storefront", api(get_settings), methods=["GET"]),
    Route(f"{P}/settings/storefront", api(put_settings), methods=["PUT"]),
    Route(f"{P}/settings/inventory", api(get_inventory_settings), methods=["GET"]),
    Route(f"{P}/settings/inventory", api(put_inventory_settings), methods=["PUT"]),
    Route(f"{P}/themes", api(list_themes), methods=["GET"]),
    Route(f"{P}/reports/backorders", api(report), methods=["GET"]),
    Route(f"{P}/reports/backorders.csv", api(report_csv), methods=["GET"]),
    Route(f"{P}/billing/plans", api(list_plans), methods=["GET"]),
    Route(f"{P}/billing/subscription", api(get_subscription), methods=["GET"]),
    Route(f"{P}/billing/subscription", api(change_plan), methods=["PUT"]),
    Route(f"{P}/billing/quote", api(quote_plan), methods=["GET"]),
    Route(f"{P}/billing/subscription/pending-change", api(cancel_pending_change), methods=["DELETE"]),
    Route(f"{P}/billing/charges", api(list_charges), methods=["GET"]),
    Route(f"{P}/usage", api(usage), methods=["GET"]),
    Route(f"{P}/tokens", api(create_token, session_only=True), methods=["POST"]),
    Route(f"{P}/tokens", api(list_tokens), methods=["GET"]),
    Route(f"{P}/tokens/{{token_id}}", api(revoke_token), methods=["DELETE"]),
]
