"""Sandbox controls under /_sandbox/ (not BigCommerce API; development and tests only).

Every control is listed with its body in README.md.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.bigcommerce import catalog, oauth, webhooks
from sandbox.bigcommerce.catalog_fields import PRODUCT_DEFAULTS
from sandbox.bigcommerce.catalog_store import product_row
from sandbox.bigcommerce.core import Failures, Sandbox, iso_now
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import ApiError


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise ApiError(400, "The control body must be JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "The control body must be a JSON object")
    return body


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def create_store(request: Request) -> Response:
    sb, body = Sandbox.of(request), await body_of(request)
    store_hash = body.get("store_hash") or "s" + secrets.token_hex(4)
    created = sb.create_store(store_hash, token=body.get("access_token"),
                              timezone=body.get("timezone", "America/New_York"), name=body.get("name"))
    if body.get("seed_demo"):
        from sandbox.bigcommerce.seed import seed_demo_catalog

        seed_demo_catalog(sb, store_hash)
    return JSONResponse(created, status_code=201)


async def store_detail(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    store = sb.store(store_hash)
    store["native_backorders"] = bool(store["native_backorders"])
    return JSONResponse(store)


async def install(request: Request) -> Response:
    body = await body_of(request)
    result = await oauth.install(Sandbox.of(request), request.path_params["store_hash"],
                                 app_url=body.get("app_url"), scope=body.get("scope", oauth.DEFAULT_SCOPE))
    return JSONResponse(result, status_code=200 if result["installed"] else 502)


async def uninstall(request: Request) -> Response:
    body = await body_of(request)
    return JSONResponse(await oauth.uninstall(Sandbox.of(request), request.path_params["store_hash"],
                                              app_url=body.get("app_url")))


async def signed_payload(request: Request) -> Response:
    sb, store_hash, body = Sandbox.of(request), request.path_params["store_hash"], await body_of(request)
    sb.store(store_hash)
    kind = body.get("kind", "load")
    if kind not in ("load", "uninstall", "remove_user"):
        raise ApiError(400, "kind must be load, uninstall or remove_user")
    token = oauth.signed_payload(
        sb, store_hash, user_id=int(body.get("user_id", 1)), email=body.get("email"), url=body.get("url", "/"),
        lifetime=int(body.get("lifetime_seconds", oauth.JWT_LIFETIME_SECONDS)), secret=body.get("secret"),
        audience=body.get("audience"), issued_at=body.get("issued_at"))
    base = (body.get("app_url") or sb.config.app_url).rstrip("/")
    return JSONResponse({"signed_payload_jwt": token,
                         "url": f"{base}/bc/{kind}?{urlencode({'signed_payload_jwt': token})}"})


async def deliveries(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    sb.store(store_hash)
    clauses, args = ["store_hash = ?"], [store_hash]
    for key in ("scope", "status", "hook_id"):
        if key in request.query_params:
            clauses.append(f"{key} = ?")
            args.append(request.query_params[key])
    rows = sb.db.all(f"SELECT * FROM deliveries WHERE {' AND '.join(clauses)} ORDER BY id", args)
    return JSONResponse({"data": [webhooks.delivery_view(sb, row) for row in rows]})


async def replay(request: Request) -> Response:
    return JSONResponse(webhooks.replay_delivery(Sandbox.of(request), request.path_params["delivery_id"]),
                        status_code=201)


async def rate_limit(request: Request) -> Response:
    sb, store_hash, body = Sandbox.of(request), request.path_params["store_hash"], await body_of(request)
    quota, window_ms = body.get("quota", 150), int(body.get("window_ms", 30_000))
    if (quota is not None and (not isinstance(quota, int) or quota < 1)) or window_ms < 1:
        raise ApiError(400, "quota must be a positive integer or null (unlimited); window_ms positive")
    sb.update_store(store_hash, quota=quota, window_ms=window_ms)
    runtime = sb.runtime_for(store_hash)
    runtime.window.started, runtime.window.used = 0.0, 0
    return JSONResponse({"quota": quota, "window_ms": window_ms})


async def failures(request: Request) -> Response:
    sb, store_hash, body = Sandbox.of(request), request.path_params["store_hash"], await body_of(request)
    sb.store(store_hash)
    target = body.get("target", "api")
    if target not in ("api", "deliveries"):
        raise ApiError(400, "target must be api or deliveries")
    injected = Failures(count=int(body.get("count", 1)), status=int(body.get("status", 500)),
                        reset_ms=int(body.get("reset_ms", 1000)))
    runtime = sb.runtime_for(store_hash)
    if target == "api":
        runtime.api_failures = injected
    else:
        runtime.delivery_failures = injected
    return JSONResponse({"target": target, "count": injected.count, "status": injected.status})


async def native_backorders(request: Request) -> Response:
    sb, store_hash, body = Sandbox.of(request), request.path_params["store_hash"], await body_of(request)
    enabled = bool(body.get("enabled", True))
    sb.update_store(store_hash, native_backorders=int(enabled))
    return JSONResponse({"native_backorders": enabled})


async def settings(request: Request) -> Response:
    sb, store_hash, body = Sandbox.of(request), request.path_params["store_hash"], await body_of(request)
    updates: dict[str, Any] = {}
    if "webhook_time_scale" in body:
        updates["webhook_time_scale"] = None if body["webhook_time_scale"] is None else float(
            body["webhook_time_scale"])
    if "timezone" in body:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(body["timezone"])
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ApiError(400, f"Unknown time zone {body['timezone']}") from exc
        updates["timezone"] = body["timezone"]
    if "name" in body:
        updates["name"] = str(body["name"])
    sb.update_store(store_hash, **updates)
    return JSONResponse(updates)


async def stats(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    sb.store(store_hash)
    runtime = sb.runtime_for(store_hash)
    if request.method == "DELETE":
        runtime.requests_served = runtime.requests_throttled = runtime.requests_failed_on_purpose = 0
        runtime.max_used_in_window = 0
    return JSONResponse({"requests_served": runtime.requests_served, "requests_throttled": runtime.requests_throttled,
                         "requests_failed_on_purpose": runtime.requests_failed_on_purpose,
                         "max_used_in_window": runtime.max_used_in_window})


async def generate_products(request: Request) -> Response:
    """Bulk-insert plain products quickly (for pagination tests and benchmarks); fires no webhooks."""
    sb, store_hash, body = Sandbox.of(request), request.path_params["store_hash"], await body_of(request)
    sb.store(store_hash)
    count = int(body.get("count", 100))
    prefix = body.get("prefix") or "GEN-" + secrets.token_hex(3)
    tracking = body.get("inventory_tracking", "product")
    now = iso_now()
    sb.products_changed(store_hash)
    with sb.db.transaction():
        first = sb.db.scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM products")
        first_variant = sb.db.scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM variants")
        products, variants = [], []
        for offset in range(count):
            product_id, variant_id = first + offset, first_variant + offset
            sku = f"{prefix}-{offset + 1:06d}"
            doc = {"id": product_id, **PRODUCT_DEFAULTS, "name": f"Generated product {sku}", "sku": sku,
                   "price": 10 + offset % 90, "calculated_price": 10 + offset % 90, "weight": 1,
                   "inventory_tracking": tracking, "inventory_level": offset % 50,
                   "custom_url": {"url": f"/products/{product_id}/", "is_customized": False},
                   "base_variant_id": variant_id, "date_created": now, "date_modified": now}
            variant = {"id": variant_id, "product_id": product_id, "sku": sku, "sku_id": None, "price": None,
                       "calculated_price": doc["price"], "sale_price": None, "retail_price": None, "map_price": None,
                       "weight": None, "width": None, "height": None, "depth": None, "is_free_shipping": False,
                       "fixed_cost_shipping_price": None, "calculated_weight": 1, "purchasing_disabled": False,
                       "purchasing_disabled_message": "", "image_url": "", "cost_price": None, "upc": "", "mpn": "",
                       "gtin": "", "inventory_level": doc["inventory_level"], "inventory_warning_level": 0,
                       "bin_picking_number": "", "option_values": []}
            products.append((product_id, store_hash, dumps(doc)))
            variants.append((variant_id, store_hash, product_id, dumps(variant)))
        sb.db.conn.executemany("INSERT INTO products (id, store_hash, doc) VALUES (?, ?, ?)", products)
        sb.db.conn.executemany("INSERT INTO variants (id, store_hash, product_id, doc) VALUES (?, ?, ?, ?)", variants)
        sb.db.conn.executemany("INSERT INTO inventory_items (store_hash, product_id, variant_id, location_id, "
                               "absolute_set) VALUES (?, ?, 0, 1, 1)", [(store_hash, p[0]) for p in products])
    return JSONResponse({"created": count, "first_id": first, "last_id": first + count - 1, "sku_prefix": prefix},
                        status_code=201)


async def seed_demo(request: Request) -> Response:
    from sandbox.bigcommerce.seed import seed_demo_catalog

    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    sb.store(store_hash)
    return JSONResponse(seed_demo_catalog(sb, store_hash), status_code=201)


async def set_inventory(request: Request) -> Response:
    """Set a product's (or variant's) stock as an ERP would through the API; fires the inventory webhooks."""
    sb, store_hash, body = Sandbox.of(request), request.path_params["store_hash"], await body_of(request)
    level = body.get("inventory_level")
    if not isinstance(level, int) or level < 0:
        raise ApiError(400, "inventory_level must be an integer >= 0")
    product_id = request.path_params["product_id"]
    if body.get("variant_id"):
        catalog.update_variant(sb, store_hash, int(body["variant_id"]), {"inventory_level": level}, product_id)
    else:
        catalog.update_product(sb, store_hash, product_id, {"inventory_level": level})
    doc, _ = product_row(sb, store_hash, product_id)
    return JSONResponse({"data": doc})


# ----- a loopback webhook receiver for tests -----
async def inbox_receive(request: Request) -> Response:
    sb, key = Sandbox.of(request), request.path_params["key"]
    inbox = sb.inboxes.setdefault(key, {"requests": [], "statuses": [], "status": 200})
    inbox["requests"].append({"at": time.time(), "method": request.method, "headers": dict(request.headers),
                              "body": (await request.body()).decode("utf-8", "replace")})
    status = inbox["statuses"].pop(0) if inbox["statuses"] else inbox["status"]
    return Response(status_code=status)


async def inbox_read(request: Request) -> Response:
    inbox = Sandbox.of(request).inboxes.get(request.path_params["key"], {"requests": []})
    return JSONResponse({"requests": inbox["requests"]})


async def inbox_configure(request: Request) -> Response:
    sb, key, body = Sandbox.of(request), request.path_params["key"], await body_of(request)
    inbox = sb.inboxes.setdefault(key, {"requests": [], "statuses": [], "status": 200})
    inbox["status"] = int(body.get("status", inbox["status"]))
    inbox["statuses"] = [int(s) for s in body.get("statuses", [])]
    return JSONResponse({"status": inbox["status"], "statuses": inbox["statuses"]})


PREFIX = "/_sandbox"
ROUTES = [
    Route(PREFIX + "/health", health, methods=["GET"]),
    Route(PREFIX + "/stores", create_store, methods=["POST"]),
    Route(PREFIX + "/stores/{store_hash}", store_detail, methods=["GET"]),
    Route(PREFIX + "/stores/{store_hash}/install", install, methods=["POST"]),
    Route(PREFIX + "/stores/{store_hash}/uninstall", uninstall, methods=["POST"]),
    Route(PREFIX + "/stores/{store_hash}/signed-payload", signed_payload, methods=["POST"]),
    Route(PREFIX + "/stores/{store_hash}/deliveries", deliveries, methods=["GET"]),
    Route(PREFIX + "/deliveries/{delivery_id:int}/replay", replay, methods=["POST"]),
    Route(PREFIX + "/stores/{store_hash}/rate-limit", rate_limit, methods=["PUT"]),
    Route(PREFIX + "/stores/{store_hash}/failures", failures, methods=["POST"]),
    Route(PREFIX + "/stores/{store_hash}/native-backorders", native_backorders, methods=["PUT"]),
    Route(PREFIX + "/stores/{store_hash}/settings", settings, methods=["PUT"]),
    Route(PREFIX + "/stores/{store_hash}/stats", stats, methods=["GET", "DELETE"]),
    Route(PREFIX + "/stores/{store_hash}/products/generate", generate_products, methods=["POST"]),
    Route(PREFIX + "/stores/{store_hash}/seed-demo", seed_demo, methods=["POST"]),
    Route(PREFIX + "/stores/{store_hash}/products/{product_id:int}/inventory", set_inventory, methods=["POST"]),
    Route(PREFIX + "/inbox/{key}", inbox_receive, methods=["POST", "PUT", "GET"]),
    Route(PREFIX + "/inbox/{key}/requests", inbox_read, methods=["GET"]),
    Route(PREFIX + "/inbox/{key}/config", inbox_configure, methods=["PUT"]),
]
