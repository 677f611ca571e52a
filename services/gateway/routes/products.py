"""GET /api/v1/products: the store's catalog (catalog_sync's mirror of BigCommerce), with
filters, for choosing products to assign.

The admin JSON API (API.md) is one route module per resource; each only translates:
authenticate (session + CSRF, or a Bearer store API token), turn JSON/query input into the
backends' protos, and protos back into snake_case JSON. The store always comes from the
principal, never from the request.
"""

from __future__ import annotations

from services.gateway.admin.http import ApiRoutes
from services.gateway.admin.queries import query_catalog

route = ApiRoutes()
route.listing("/products", query_catalog)

routes = route.routes
