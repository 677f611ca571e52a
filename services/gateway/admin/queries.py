"""The admin's reads, shared by the JSON API and the UI's pages: each asks a backend and
answers in the API's JSON (lists as `{"data", "meta": {"pagination"}}`)."""

from __future__ import annotations

import asyncio
from typing import Any

from backorder.billing.v1 import billing_pb2
from backorder.catalog.v1 import catalog_pb2
from backorder.inventory.v1 import inventory_pb2, report_pb2, token_pb2
from backorder.storefront.v1 import storefront_pb2
from starlette.requests import Request

from services.gateway.admin import mapping
from services.gateway.admin.http import MAX_PAGE_SIZE, backend, choice_param, listing, page_params, text_param
from services.gateway.admin.inputs import parse_report_filter

CATALOG_CHUNK = 2_000
CATALOG_PARALLEL_CHUNKS = 4


async def query_catalog(request: Request, store: str, params: Any) -> dict[str, Any]:
    page, limit = page_params(params)
    reply = await backend(request, "catalog").ListProducts(catalog_pb2.ListProductsRequest(
        store_hash=store, q=text_param(params, "q"),
        visibility=choice_param(params, "visibility", mapping.VISIBILITY_BY_NAME, catalog_pb2.VISIBILITY_UNSPECIFIED),
        availability=choice_param(params, "availability", mapping.AVAILABILITY_BY_NAME,
                                  catalog_pb2.AVAILABILITY_UNSPECIFIED),
        assigned=choice_param(params, "assigned", mapping.ASSIGNED_BY_NAME, catalog_pb2.ASSIGNED_FILTER_UNSPECIFIED),
        page=page, limit=limit))
    return listing([mapping.catalog_product_json(p) for p in reply.products], reply.total, page, limit)


async def query_assigned(request: Request, store: str, params: Any) -> dict[str, Any]:
    page, limit = page_params(params)
    status = choice_param(params, "status", mapping.STATUS_BY_NAME, inventory_pb2.PRODUCT_STATUS_UNSPECIFIED)
    reply = await backend(request, "inventory").ListProducts(inventory_pb2.ListProductsRequest(
        store_hash=store, q=text_param(params, "q"), status=status, page=page, limit=limit))
    return listing([mapping.assigned_product_json(p) for p in reply.products], reply.total, page, limit)


async def query_assigned_by_ids(request: Request, store: str, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    reply = await backend(request, "inventory").ListProducts(inventory_pb2.ListProductsRequest(
        store_hash=store, product_ids=ids, page=1, limit=MAX_PAGE_SIZE))
    by_id = {p.product_id: mapping.assigned_product_json(p) for p in reply.products}
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


async def query_report(request: Request, store: str, params: Any) -> dict[str, Any]:
    page, limit = page_params(params)
    reply = await backend(request, "reports").ListBackorders(report_pb2.ListBackordersRequest(
        store_hash=store, filter=parse_report_filter(params), page=page, limit=limit))
    return listing([mapping.backorder_row_json(r) for r in reply.rows], reply.total, page, limit)


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
    return mapping.settings_json(reply.settings)


async def query_themes(request: Request) -> list[dict[str, Any]]:
    reply = await backend(request, "storefront").ListThemes(storefront_pb2.ListThemesRequest())
    return [mapping.theme_json(t) for t in reply.themes]


async def query_inventory_settings(request: Request, store: str) -> dict[str, Any]:
    reply = await backend(request, "inventory").GetStoreSettings(
        inventory_pb2.GetStoreSettingsRequest(store_hash=store))
    return mapping.inventory_settings_json(reply.settings)


async def query_plans(request: Request) -> list[dict[str, Any]]:
    reply = await backend(request, "billing").ListPlans(billing_pb2.ListPlansRequest())
    return [mapping.plan_json(p) for p in reply.plans]


async def query_subscription(request: Request, store: str) -> dict[str, Any]:
    reply = await backend(request, "billing").GetSubscription(billing_pb2.GetSubscriptionRequest(store_hash=store))
    return mapping.subscription_json(reply.subscription)


async def query_tokens(request: Request, store: str) -> list[dict[str, Any]]:
    reply = await backend(request, "tokens").ListApiTokens(token_pb2.ListApiTokensRequest(store_hash=store))
    return [mapping.token_json(t) for t in reply.tokens]
