"""POST /api/v1/sync: pull the assigned products' stock from BigCommerce now (catalog_sync)."""

from __future__ import annotations

from backorder.catalog.v1 import catalog_pb2
from starlette.requests import Request
from starlette.responses import Response

from services.gateway.admin.http import ApiRoutes, backend, json_body, ok
from services.gateway.admin.inputs import parse_product_ids
from services.gateway.admin.mapping import sync_json
from services.gateway.auth import Principal

SYNC_TIMEOUT_S = 120.0

route = ApiRoutes()


@route("POST", "/sync")
async def sync(request: Request, principal: Principal) -> Response:
    body = await json_body(request)
    ids = parse_product_ids(body["product_ids"]) if isinstance(body, dict) and body.get("product_ids") else []
    reply = await backend(request, "catalog").SyncInventory(catalog_pb2.SyncInventoryRequest(
        store_hash=principal.store_hash, product_ids=ids), timeout=SYNC_TIMEOUT_S)
    return ok(sync_json(reply))


routes = route.routes
