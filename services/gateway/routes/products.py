"""GET /api/v1/products: the store's catalog (catalog_sync's mirror of BigCommerce), with
filters, for choosing products to assign.

The admin JSON API (API.md) is one route module per resource; each only translates:
authenticate (session + CSRF, or a Bearer store API token), turn JSON/query input into the
backends' protos, and protos back into snake_case JSON. The store always comes from the
principal, never from the request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.gateway.admin.http import ApiRoutes
from services.gateway.admin.queries import query_catalog
from services.gateway.auth import Principal

route = ApiRoutes()


@route("GET", "/products")
async def list_products(request: Request, principal: Principal) -> Response:
    return JSONResponse(await query_catalog(request, principal.store_hash, request.query_params))


routes = route.routes
