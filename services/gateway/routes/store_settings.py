"""/api/v1/settings/{storefront,inventory} and /api/v1/themes: what shoppers see (storefront
service) and how stock behaves (inventory), per store."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from services.gateway.admin.http import ApiRoutes, backend, json_body, ok
from services.gateway.admin.inputs import inventory_settings_update, settings_update
from services.gateway.admin.mapping import settings_json
from services.gateway.admin.queries import query_inventory_settings, query_settings, query_themes
from services.gateway.auth import Principal

route = ApiRoutes()


@route("GET", "/settings/storefront")
async def get_settings(request: Request, principal: Principal) -> Response:
    return ok(await query_settings(request, principal.store_hash))


@route("PUT", "/settings/storefront")
async def put_settings(request: Request, principal: Principal) -> Response:
    reply = await backend(request, "storefront").UpdateSettings(
        settings_update(principal.store_hash, await json_body(request)))
    return ok(settings_json(reply.settings))


@route("GET", "/settings/inventory")
async def get_inventory_settings(request: Request, principal: Principal) -> Response:
    return ok(await query_inventory_settings(request, principal.store_hash))


@route("PUT", "/settings/inventory")
async def put_inventory_settings(request: Request, principal: Principal) -> Response:
    update = inventory_settings_update(principal.store_hash, await json_body(request))
    await backend(request, "inventory").UpdateStoreSettings(update)
    return ok(await query_inventory_settings(request, principal.store_hash))


@route("GET", "/themes")
async def list_themes(request: Request, principal: Principal) -> Response:
    return ok(await query_themes(request))


routes = route.routes
