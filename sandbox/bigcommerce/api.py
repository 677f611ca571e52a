"""BigCommerce REST routes under /stores/{store_hash}/v2|v3, and the gate in front of them.

The gate (an ASGI middleware) authenticates X-Auth-Token, applies injected failures, enforces the
store's rate-limit window and adds the X-Rate-Limit-* headers to every API response.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.bigcommerce import catalog, orders, scripts, webhooks
from sandbox.bigcommerce.core import Sandbox
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import ApiError, error_response, not_found, unprocessable

API_PATH = re.compile(r"^/stores/([^/]+)/(v2|v3)(/.*)?$")
UNLIMITED_QUOTA = 1_000_000_000


class ApiGate:
    def __init__(self, app: ASGIApp, sandbox: Sandbox):
        self.app = app
        self.sb = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = API_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        store_hash, path = match.group(1), scope["path"]
        sb = self.sb
        if not sb.store_exists(store_hash):
            await error_response(path, ApiError(404, f"Store {store_hash} was not found"))(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client_id = sb.token_client(store_hash, headers.get("x-auth-token"))
        if client_id is None:
            await error_response(path, ApiError(401, "You are not authorized to access this resource."))(
                scope, receive, send)
            return
        scope.setdefault("state", {})["client_id"] = client_id
        runtime = sb.runtime_for(store_hash)
        store = sb.db.one("SELECT quota, window_ms FROM stores WHERE hash = ?", (store_hash,))
        quota = store["quota"] if store["quota"] is not None else UNLIMITED_QUOTA
        window_ms = store["window_ms"]

        injected = runtime.api_failures
        if injected.count > 0:
            injected.count -= 1
            runtime.requests_failed_on_purpose += 1
            extra = {}
            if injected.status == 429:
                extra = self._limit_headers(quota, 0, window_ms, injected.reset_ms)
                extra["X-Retry-After"] = str(max(1, math.ceil(injected.reset_ms / 1000)))
            await error_response(path, ApiError(injected.status, "Injected failure from the sandbox",
                                                headers=extra))(scope, receive, send)
            return

        now = time.monotonic()
        window = runtime.window
        if now - window.started >= window_ms / 1000:
            window.started, window.used = now, 0
        reset_ms = max(int(window_ms - (now - window.started) * 1000), 1)
        if window.used >= quota:
            runtime.requests_throttled += 1
            limit_headers = self._limit_headers(quota, 0, window_ms, reset_ms)
            limit_headers["X-Retry-After"] = str(max(1, math.ceil(reset_ms / 1000)))
            await error_response(path, ApiError(429, "Too many requests", headers=limit_headers))(
                scope, receive, send)
            return
        window.used += 1
        runtime.requests_served += 1
        runtime.max_used_in_window = max(runtime.max_used_in_window, window.used)
        limit_headers = self._limit_headers(quota, quota - window.used, window_ms, reset_ms)
        encoded = [(k.lower().encode(), v.encode()) for k, v in limit_headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + encoded}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ApiError as exc:
            await error_response(path, exc)(scope, receive, send_with_headers)
        except (ValueError, TypeError, KeyError) as exc:
            # Malformed input that slipped past validation is the caller's error, not a 500.
            await error_response(path, ApiError(400, f"The request is invalid: {exc}"))(
                scope, receive, send_with_headers)

    @staticmethod
    def _limit_headers(quota: int, left: int, window_ms: int, reset_ms: int) -> dict[str, str]:
        return {"X-Rate-Limit-Time-Window-Ms": str(window_ms), "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
                "X-Rate-Limit-Requests-Quota": str(quota), "X-Rate-Limit-Requests-Left": str(left),
                "X-BC-ApiLimit-Remaining": str(left)}


# ----- helpers -----
def sandbox_of(request: Request) -> Sandbox:
    return request.app.state.sandbox


def client_of(request: Request) -> str:
    return request.scope["state"]["client_id"]


def api_base(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/stores/{request.path_params['store_hash']}"


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError as exc:
        raise ApiError(400, "The request body is not valid JSON") from exc


def paging(request: Request, default: int = 50) -> tuple[int, int]:
    try:
        page = max(int(request.query_params.get("page", 1)), 1)
        limit = min(max(int(request.query_params.get("limit", default)), 1), catalog.MAX_PAGE)
    except ValueError as exc:
        raise unprocessable("page and limit must be integers", {"page": "integer", "limit": "integer"}) from exc
    return page, limit


def pagination(request: Request, total: int, count: int, page: int, limit: int) -> dict[str, Any]:
    total_pages = math.ceil(total / limit) if total else 0
    others = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "limit")]

    def link(number: int) -> str:
        return "?" + urlencode([*others, ("page", number), ("limit", limit)], safe=":,")

    links: dict[str, str] = {"current": link(page)}
    if page > 1:
        links["previous"] = link(page - 1)
    if page < total_pages:
        links["next"] = link(page + 1)
    return {"pagination": {"total": total, "count": count, "per_page": limit, "current_page": page,
                           "total_pages": total_pages, "links": links}}


def v3(data: Any, status: int = 200, meta: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"data": data, "meta": meta or {}}, status_code=status)


def v3_list(request: Request, items: list[Any], default: int = 50) -> JSONResponse:
    page, limit = paging(request, default)
    chunk = items[(page - 1) * limit: page * limit]
    return v3(chunk, meta=pagination(request, len(items), len(chunk), page, limit))


def v2_list(items: list[Any]) -> Response:
    # Empty v2 lists come back as 204 No Content, as BigCommerce has long done.
    return Response(status_code=204) if not items else JSONResponse(items)


def shaped(request: Request, doc: dict[str, Any], variants: list[dict[str, Any]] | None,
           options: list[dict[str, Any]] | None) -> dict[str, Any]:
    params = request.query_params
    includes = set(catalog._csv(params.get("include", "")))
    if "include_fields" in params:
        keep = set(catalog._csv(params["include_fields"])) | {"id"}
        doc = {k: v for k, v in doc.items() if k in keep}
    if "exclude_fields" in params:
        drop = set(catalog._csv(params["exclude_fields"])) - {"id"}
        doc = {k: v for k, v in doc.items() if k not in drop}
    if "variants" in includes:
        doc["variants"] = variants or []
    if "options" in includes:
        doc["options"] = options or []
    for empty in ("images", "custom_fields", "bulk_pricing_rules", "modifiers", "videos", "reviews"):
        if empty in includes:
            doc[empty] = []
    if "primary_image" in includes:
        doc["primary_image"] = None
    return doc


# ----- catalog -----
async def products_collection(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    if request.method == "POST":
        product = catalog.create_product(sb, store_hash, await json_body(request))
        return v3(product)
    if request.method == "PUT":
        updated = catalog.batch_update_products(sb, store_hash, await json_body(request))
        return v3(updated)
    if request.method == "DELETE":
        if "id:in" not in request.query_params:
            raise unprocessable("A filter is required to delete products", {"id:in": "required"})
        ids = catalog._ints(request.query_params["id:in"], "id:in")
        if len(ids) > 250:
            raise unprocessable("At most 250 products per delete", {"id:in": "at most 250 ids"})
        catalog.delete_products(sb, store_hash, ids)
        return Response(status_code=204)
    params = dict(request.query_params)
    page, limit = paging(request)
    includes = set(catalog._csv(params.get("include", "")))
    if "options" in includes or "modifiers" in includes:
        limit = min(limit, 10)
    docs, total = catalog.list_products(sb, store_hash, params, page, limit)
    meta = dumps(pagination(request, total, len(docs), page, limit))
    if not ({"include", "include_fields", "exclude_fields"} & params.keys()):
        # Stored documents are already the response shape: splice the text instead of re-encoding it.
        return Response('{"data":[' + ",".join(docs) + '],"meta":' + meta + "}", media_type="application/json")
    parsed = [json.loads(d) for d in docs]
    grouped = catalog.variants_of(sb, [p["id"] for p in parsed]) if "variants" in includes else {}
    options = {}
    if "options" in includes:
        options = {p["id"]: catalog.product_row(sb, store_hash, p["id"])[1] for p in parsed}
    data = [shaped(request, p, grouped.get(p["id"]), options.get(p["id"])) for p in parsed]
    return Response('{"data":' + dumps(data) + ',"meta":' + meta + "}", media_type="application/json")


async def product_item(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    product_id = request.path_params["product_id"]
    if request.method == "PUT":
        catalog.update_product(sb, store_hash, product_id, await json_body(request))
    elif request.method == "DELETE":
        catalog.product_row(sb, store_hash, product_id)
        catalog.delete_products(sb, store_hash, [product_id])
        return Response(status_code=204)
    doc, options = catalog.product_row(sb, store_hash, product_id)
    variants = catalog.variants_of(sb, [product_id])[product_id]
    return v3(shaped(request, doc, variants, options))


async def product_variants(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    product_id = request.path_params["product_id"]
    catalog.product_row(sb, store_hash, product_id)
    if request.method == "POST":
        raise unprocessable("Creating variants after the product exists is not supported by the sandbox; "
                            "send them with POST /v3/catalog/products")
    return v3_list(request, catalog.variants_of(sb, [product_id])[product_id])


async def product_variant_item(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    product_id, variant_id = request.path_params["product_id"], request.path_params["variant_id"]
    if request.method == "PUT":
        return v3(catalog.update_variant(sb, store_hash, variant_id, await json_body(request), product_id))
    variant = catalog.variant_row(sb, store_hash, variant_id)
    if variant["product_id"] != product_id:
        raise not_found(f"The variant with ID {variant_id} was not found")
    return v3(variant)


async def product_options(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    _, options = catalog.product_row(sb, store_hash, request.path_params["product_id"])
    return v3_list(request, options)


async def variants_collection(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    if request.method == "PUT":
        return v3(catalog.batch_update_variants(sb, store_hash, await json_body(request)))
    params = request.query_params
    clauses, args = ["store_hash = ?"], [store_hash]
    if "product_id:in" in params:
        ids = catalog._ints(params["product_id:in"], "product_id:in")
        clauses.append(f"product_id IN ({','.join('?' * len(ids)) or 'NULL'})")
        args += ids
    for key in ("id", "sku", "upc"):
        if key in params:
            clauses.append("id = ?" if key == "id" else f"json_extract(doc, '$.{key}') = ?")
            args.append(int(params[key]) if key == "id" else params[key])
    page, limit = paging(request)
    total = sandbox_of(request).db.one(f"SELECT COUNT(*) FROM variants WHERE {' AND '.join(clauses)}", args)[0]
    rows = sb.db.all(f"SELECT doc FROM variants WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ? OFFSET ?",
                     [*args, limit, (page - 1) * limit])
    data = [json.loads(r[0]) for r in rows]
    if "include_fields" in params:
        keep = set(catalog._csv(params["include_fields"])) | {"id"}
        data = [{k: v for k, v in d.items() if k in keep} for d in data]
    return v3(data, meta=pagination(request, total, len(data), page, limit))


async def brands_collection(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    if request.method == "POST":
        return v3(catalog.create_brand(sb, store_hash, await json_body(request)))
    brands = [json.loads(r[0]) for r in sb.db.all("SELECT doc FROM brands WHERE store_hash = ? ORDER BY id",
                                                  (store_hash,))]
    if "id:in" in request.query_params:
        ids = set(catalog._ints(request.query_params["id:in"], "id:in"))
        brands = [b for b in brands if b["id"] in ids]
    if "name" in request.query_params:
        brands = [b for b in brands if b["name"] == request.query_params["name"]]
    return v3_list(request, brands)


async def brand_item(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    brand = sb.db.doc("SELECT doc FROM brands WHERE store_hash = ? AND id = ?",
                      (store_hash, request.path_params["brand_id"]))
    if brand is None:
        raise not_found(f"Brand {request.path_params['brand_id']} was not found")
    if request.method == "DELETE":
        sb.db.execute("DELETE FROM brands WHERE id = ?", (brand["id"],))
        return Response(status_code=204)
    if request.method == "PUT":
        body = await json_body(request)
        if not isinstance(body, dict):
            raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
        for key in ("name", "page_title", "meta_keywords", "meta_description", "search_keywords", "image_url"):
            if key in body:
                brand[key] = body[key]
        sb.db.execute("UPDATE brands SET doc = ? WHERE id = ?", (dumps(brand), brand["id"]))
    return v3(brand)


def _categories(sb: Sandbox, store_hash: str) -> list[dict[str, Any]]:
    return [json.loads(r[0]) for r in sb.db.all("SELECT doc FROM categories WHERE store_hash = ? ORDER BY id",
                                                (store_hash,))]


async def trees(request: Request) -> Response:
    return v3_list(request, [{"id": 1, "name": "Default tree", "channels": [1]}])


async def tree_categories(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    if request.method == "POST":
        body = await json_body(request)
        if not isinstance(body, list):
            raise unprocessable("JSON data is missing or invalid", {"body": "must be an array"})
        return v3([catalog.create_category(sb, store_hash, item) for item in body])
    cats = _categories(sb, store_hash)
    params = request.query_params
    if "category_id:in" in params:
        ids = set(catalog._ints(params["category_id:in"], "category_id:in"))
        cats = [c for c in cats if c["category_id"] in ids]
    if "tree_id:in" in params and 1 not in catalog._ints(params["tree_id:in"], "tree_id:in"):
        cats = []
    if "parent_id:in" in params:
        parents = set(catalog._ints(params["parent_id:in"], "parent_id:in"))
        cats = [c for c in cats if c["parent_id"] in parents]
    return v3_list(request, cats)


async def tree_nested(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    cats = _categories(sb, store_hash)

    def children(parent: int) -> list[dict[str, Any]]:
        return [{"id": c["category_id"], "parent_id": c["parent_id"], "depth": 0, "path": [], "name": c["name"],
                 "is_visible": c["is_visible"], "url": c["url"]["path"], "children": children(c["category_id"])}
                for c in cats if c["parent_id"] == parent]

    return v3(children(0))


async def legacy_categories(request: Request) -> Response:
    cats = _categories(sandbox_of(request), request.path_params["store_hash"])
    legacy = [{"id": c["category_id"], "parent_id": c["parent_id"], "name": c["name"],
               "description": c["description"], "sort_order": c["sort_order"], "is_visible": c["is_visible"],
               "custom_url": {"url": c["url"]["path"], "is_customized": False}} for c in cats]
    return v3_list(request, legacy)


async def catalog_summary(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    row = sb.db.one("SELECT COUNT(*), COALESCE(SUM(json_extract(doc, '$.inventory_level')), 0) FROM products "
                    "WHERE store_hash = ?", (store_hash,))
    return v3({"inventory_count": row[1], "variant_count": sb.db.one(
        "SELECT COUNT(*) FROM variants WHERE store_hash = ?", (store_hash,))[0], "primary_category_id": None,
        "primary_category_name": "", "product_count": row[0]})


# ----- inventory and settings -----
async def inventory_items(request: Request) -> Response:
    items = catalog.inventory_items(sandbox_of(request), request.path_params["store_hash"],
                                    dict(request.query_params))
    return v3_list(request, items)


async def adjust_absolute(request: Request) -> Response:
    return JSONResponse(catalog.adjust_inventory(sandbox_of(request), request.path_params["store_hash"],
                                                 await json_body(request), relative=False))


async def adjust_relative(request: Request) -> Response:
    return JSONResponse(catalog.adjust_inventory(sandbox_of(request), request.path_params["store_hash"],
                                                 await json_body(request), relative=True))


async def locations(request: Request) -> Response:
    return v3_list(request, [{"id": 1, "code": "BC-LOCATION-1", "label": "Default location",
                              "description": "", "managed_by_external_source": False, "type_id": "PHYSICAL",
                              "enabled": True, "operating_hours": {}, "time_zone": "UTC",
                              "address": None, "storefront_visibility": True}])


async def location_items(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    location_id = request.path_params["location_id"]
    if request.method == "PUT":
        return JSONResponse(catalog.update_location_settings(sb, store_hash, location_id, await json_body(request)))
    if location_id != 1:
        raise not_found(f"Location {location_id} was not found")
    items = []
    for item in catalog.inventory_items(sb, store_hash, dict(request.query_params)):
        entry = dict(item["locations"][0])
        settings = entry.pop("settings")
        items.append({"identity": item["identity"], **{k: v for k, v in entry.items() if not k.startswith("location_")},
                      "settings": settings})
    return v3_list(request, items)


async def inventory_settings(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    settings = sb.store(store_hash)["inventory_settings"]
    if request.method == "PUT":
        body = await json_body(request)
        if not isinstance(body, dict):
            raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
        unknown = set(body) - set(settings)
        if unknown:
            raise unprocessable("Unknown settings", {k: "unknown setting" for k in sorted(unknown)})
        settings.update(body)
        sb.update_store(store_hash, inventory_settings=settings)
    return v3(settings)


async def store_info(request: Request) -> Response:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    store = sb.store(store_hash)
    zone = ZoneInfo(store["timezone"])
    now = datetime.now(zone)
    offset = int(now.utcoffset().total_seconds())
    dst = int(now.dst().total_seconds()) if now.dst() else 0
    return JSONResponse({
        "id": store_hash, "account_uuid": store["account_uuid"], "domain": f"{store_hash}.sandbox.example.com",
        "secure_url": f"{str(request.base_url).rstrip('/')}/s/{store_hash}",
        "control_panel_base_url": f"https://store-{store_hash}.mybigcommerce.com", "status": "live",
        "name": store["name"], "first_name": "Sandbox", "last_name": "Owner", "address": "", "country": "United States",
        "country_code": "US", "phone": "", "admin_email": f"owner@{store_hash}.example.com",
        "order_email": f"orders@{store_hash}.example.com", "favicon_url": "",
        "timezone": {"name": store["timezone"], "raw_offset": offset - dst, "dst_offset": offset,
                     "dst_correction": bool(dst),
                     "date_format": {"display": "M jS Y", "export": "M jS Y", "extended_display": "M jS Y @ g:i A"}},
        "language": "en", "currency": "USD", "currency_symbol": "$", "decimal_separator": ".",
        "thousands_separator": ",", "decimal_places": 2, "currency_symbol_location": "left",
        "weight_units": "LBS", "dimension_units": "Inches", "dimension_decimal_places": "2",
        "dimension_decimal_token": ".", "dimension_thousands_token": ",", "plan_name": "Standard",
        "plan_level": "Standard", "plan_is_trial": False, "industry": "", "logo": [],
        "is_price_entered_with_tax": False, "store_id": int(store["store_id"]), "default_channel_id": 1,
        "default_site_id": 1000, "active_comparison_modules": [],
        "features": {"stencil_enabled": True, "sitewidehttps_enabled": True, "facebook_catalog_id": "",
                     "checkout_type": "optimized", "wishlists_enabled": True, "graphql_storefront_api_enabled": True,
                     "shopper_consent_tracking_enabled": False, "multi_storefront_enabled": True,
                     "storefront_limits": {"active": 1, "total_including_inactive": 1}},
    })


# ----- orders -----
async def orders_collection(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    if request.method == "POST":
        order = orders.create_order(sb, store_hash, await json_body(request))
        return JSONResponse(orders.with_links(order, api_base(request)), status_code=201)
    params = request.query_params
    page, limit = paging(request)
    clauses, args = ["store_hash = ?"], [store_hash]
    for key, sql in (("min_id", "id >= ?"), ("max_id", "id <= ?")):
        if key in params:
            clauses.append(sql)
            args.append(int(params[key]))
    for key in ("status_id", "customer_id", "channel_id"):
        if key in params:
            clauses.append(f"json_extract(doc, '$.{key}') = ?")
            args.append(int(params[key]))
    if "email" in params:
        clauses.append("json_extract(doc, '$.billing_address.email') = ?")
        args.append(params["email"])
    if "cart_id" in params:
        clauses.append("json_extract(doc, '$.cart_id') = ?")
        args.append(params["cart_id"])
    direction = "DESC" if params.get("sort", "").endswith(":desc") else "ASC"
    rows = sb.db.all(f"SELECT doc FROM orders WHERE {' AND '.join(clauses)} ORDER BY id {direction} "
                     "LIMIT ? OFFSET ?", [*args, limit, (page - 1) * limit])
    return v2_list([orders.with_links(json.loads(r[0]), api_base(request)) for r in rows])


async def order_item(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    order_id = request.path_params["order_id"]
    if request.method == "PUT":
        order = orders.update_order(sb, store_hash, order_id, await json_body(request))
    else:
        order = orders.order_doc(sb, store_hash, order_id)
    return JSONResponse(orders.with_links(order, api_base(request)))


async def order_products(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    page, limit = paging(request)
    return v2_list(orders.order_products(sb, store_hash, request.path_params["order_id"], page, limit))


async def order_product_item(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    order_id = request.path_params["order_id"]
    orders.order_doc(sb, store_hash, order_id)
    doc = sb.db.doc("SELECT doc FROM order_products WHERE order_id = ? AND id = ?",
                    (order_id, request.path_params["line_id"]))
    if doc is None:
        raise not_found("The requested resource was not found.")
    return JSONResponse(doc)


async def order_statuses(request: Request) -> Response:
    return JSONResponse(orders.status_list())


async def orders_count(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    statuses = []
    for status_id, name in orders.ORDER_STATUSES.items():
        count = sb.db.one("SELECT COUNT(*) FROM orders WHERE store_hash = ? AND json_extract(doc, '$.status_id') = ?",
                          (store_hash, status_id))[0]
        statuses.append({"id": status_id, "name": name, "system_label": name, "custom_label": name,
                         "system_description": name, "count": count, "sort_order": status_id})
    total = sb.db.one("SELECT COUNT(*) FROM orders WHERE store_hash = ?", (store_hash,))[0]
    return JSONResponse({"statuses": statuses, "count": total})


# ----- hooks and scripts -----
async def hooks_collection(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    if request.method == "POST":
        return v3(webhooks.create_hook(sb, store_hash, client_of(request), await json_body(request)))
    return v3_list(request, webhooks.list_hooks(sb, store_hash, client_of(request), dict(request.query_params)))


async def hook_item(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    hook_id, client_id = request.path_params["hook_id"], client_of(request)
    if request.method == "PUT":
        return v3(webhooks.update_hook(sb, store_hash, client_id, hook_id, await json_body(request)))
    if request.method == "DELETE":
        return v3(webhooks.delete_hook(sb, store_hash, client_id, hook_id))
    return v3(webhooks.get_hook(sb, store_hash, client_id, hook_id))


async def scripts_collection(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    if request.method == "POST":
        return v3(scripts.create_script(sb, store_hash, client_of(request), await json_body(request)))
    return v3_list(request, scripts.list_scripts(sb, store_hash, client_of(request)))


async def script_item(request: Request) -> Response:
    sb, store_hash = sandbox_of(request), request.path_params["store_hash"]
    script_uuid, client_id = request.path_params["uuid"], client_of(request)
    if request.method == "PUT":
        return v3(scripts.update_script(sb, store_hash, client_id, script_uuid, await json_body(request)))
    if request.method == "DELETE":
        scripts.delete_script(sb, store_hash, client_id, script_uuid)
        return Response(status_code=204)
    return v3(scripts.get_script(sb, store_hash, client_id, script_uuid))


async def unknown_api_path(request: Request) -> Response:
    raise not_found()


PREFIX = "/stores/{store_hash}"
ROUTES = [
    Route(PREFIX + "/v3/catalog/products", products_collection, methods=["GET", "POST", "PUT", "DELETE"]),
    Route(PREFIX + "/v3/catalog/products/{product_id:int}", product_item, methods=["GET", "PUT", "DELETE"]),
    Route(PREFIX + "/v3/catalog/products/{product_id:int}/variants", product_variants, methods=["GET", "POST"]),
    Route(PREFIX + "/v3/catalog/products/{product_id:int}/variants/{variant_id:int}", product_variant_item,
          methods=["GET", "PUT"]),
    Route(PREFIX + "/v3/catalog/products/{product_id:int}/options", product_options, methods=["GET"]),
    Route(PREFIX + "/v3/catalog/variants", variants_collection, methods=["GET", "PUT"]),
    Route(PREFIX + "/v3/catalog/brands", brands_collection, methods=["GET", "POST"]),
    Route(PREFIX + "/v3/catalog/brands/{brand_id:int}", brand_item, methods=["GET", "PUT", "DELETE"]),
    Route(PREFIX + "/v3/catalog/trees", trees, methods=["GET"]),
    Route(PREFIX + "/v3/catalog/trees/categories", tree_categories, methods=["GET", "POST"]),
    Route(PREFIX + "/v3/catalog/trees/{tree_id:int}/categories", tree_nested, methods=["GET"]),
    Route(PREFIX + "/v3/catalog/categories", legacy_categories, methods=["GET"]),
    Route(PREFIX + "/v3/catalog/summary", catalog_summary, methods=["GET"]),
    Route(PREFIX + "/v3/inventory/items", inventory_items, methods=["GET"]),
    Route(PREFIX + "/v3/inventory/adjustments/absolute", adjust_absolute, methods=["PUT"]),
    Route(PREFIX + "/v3/inventory/adjustments/relative", adjust_relative, methods=["POST"]),
    Route(PREFIX + "/v3/inventory/locations", locations, methods=["GET"]),
    Route(PREFIX + "/v3/inventory/locations/{location_id:int}/items", location_items, methods=["GET", "PUT"]),
    Route(PREFIX + "/v3/settings/inventory", inventory_settings, methods=["GET", "PUT"]),
    Route(PREFIX + "/v3/hooks", hooks_collection, methods=["GET", "POST"]),
    Route(PREFIX + "/v3/hooks/{hook_id:int}", hook_item, methods=["GET", "PUT", "DELETE"]),
    Route(PREFIX + "/v3/content/scripts", scripts_collection, methods=["GET", "POST"]),
    Route(PREFIX + "/v3/content/scripts/{uuid}", script_item, methods=["GET", "PUT", "DELETE"]),
    Route(PREFIX + "/v2/store", store_info, methods=["GET"]),
    Route(PREFIX + "/v2/orders", orders_collection, methods=["GET", "POST"]),
    Route(PREFIX + "/v2/orders/count", orders_count, methods=["GET"]),
    Route(PREFIX + "/v2/orders/{order_id:int}", order_item, methods=["GET", "PUT"]),
    Route(PREFIX + "/v2/orders/{order_id:int}/products", order_products, methods=["GET"]),
    Route(PREFIX + "/v2/orders/{order_id:int}/products/{line_id:int}", order_product_item, methods=["GET"]),
    Route(PREFIX + "/v2/order_statuses", order_statuses, methods=["GET"]),
    Route(PREFIX + "/{rest:path}", unknown_api_path, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
]
