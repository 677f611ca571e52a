"""/v2/store, /v3/hooks and /v3/content/scripts: the store itself and what an app installs in it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.bigcommerce import scripts, webhooks
from sandbox.bigcommerce.api.responses import client_of, json_body, v3, v3_list
from sandbox.bigcommerce.core import Sandbox
from sandbox.bigcommerce.errors import not_found


async def store_info(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    store = sb.store(store_hash)
    zone = ZoneInfo(store["timezone"])
    now = datetime.now(zone)
    offset = int((now.utcoffset() or timedelta(0)).total_seconds())
    dst = int((now.dst() or timedelta(0)).total_seconds())
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


async def hooks_collection(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    if request.method == "POST":
        return v3(webhooks.create_hook(sb, store_hash, client_of(request), await json_body(request)))
    return v3_list(request, webhooks.list_hooks(sb, store_hash, client_of(request), dict(request.query_params)))


async def hook_item(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    hook_id, client_id = request.path_params["hook_id"], client_of(request)
    if request.method == "PUT":
        return v3(webhooks.update_hook(sb, store_hash, client_id, hook_id, await json_body(request)))
    if request.method == "DELETE":
        return v3(webhooks.delete_hook(sb, store_hash, client_id, hook_id))
    return v3(webhooks.get_hook(sb, store_hash, client_id, hook_id))


async def scripts_collection(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    if request.method == "POST":
        return v3(scripts.create_script(sb, store_hash, client_of(request), await json_body(request)))
    return v3_list(request, scripts.list_scripts(sb, store_hash, client_of(request)))


async def script_item(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    script_uuid, client_id = request.path_params["uuid"], client_of(request)
    if request.method == "PUT":
        return v3(scripts.update_script(sb, store_hash, client_id, script_uuid, await json_body(request)))
    if request.method == "DELETE":
        scripts.delete_script(sb, store_hash, client_id, script_uuid)
        return Response(status_code=204)
    return v3(scripts.get_script(sb, store_hash, client_id, script_uuid))


async def unknown_api_path(request: Request) -> Response:
    raise not_found()

