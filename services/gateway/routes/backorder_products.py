"""/api/v1/backorder-products: the products assigned to Backorder (inventory): list, read,
assign, edit and unassign, one or in bulk (all or nothing), and the CSV export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from backorder.inventory.v1 import inventory_pb2
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from services.common.errors import NotFound
from services.gateway import csv_format
from services.gateway.admin.http import ApiRoutes, backend, bool_param, json_body, json_object, ok
from services.gateway.admin.inputs import parse_items, parse_product, parse_product_ids
from services.gateway.admin.mapping import assigned_product_json, ledger_json, update_item
from services.gateway.admin.queries import query_assigned, query_catalog_by_ids
from services.gateway.auth import Principal

EXPORT_PAGE_SIZE = 250
RECENT_LEDGER = 20
EXPORT_COLUMNS = ("product_id", "name", "sku", "current_stock", "backorder_threshold", "incoming_stock",
                  "back_in_stock_date")

route = ApiRoutes()
route.listing("/backorder-products", query_assigned)


@route("GET", "/backorder-products/{product_id:int}")
async def get_backorder_product(request: Request, principal: Principal) -> Response:
    reply = await backend(request, "inventory").GetProduct(inventory_pb2.GetProductRequest(
        store_hash=principal.store_hash, product_id=request.path_params["product_id"], ledger_limit=RECENT_LEDGER))
    data = assigned_product_json(reply.product)
    data["recent_ledger"] = [ledger_json(e) for e in reply.recent_ledger]
    return ok(data)


# ---------------------------------------------------------------- assign

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


@route("POST", "/backorder-products")
async def assign_one(request: Request, principal: Principal) -> Response:
    fields = parse_product(await json_body(request), "the product is invalid; nothing was changed")
    return ok((await assign(request, principal, [fields]))[0], 201)


@route("POST", "/backorder-products/bulk-assign")
async def bulk_assign(request: Request, principal: Principal) -> Response:
    items = parse_items(await json_body(request))
    return ok(await assign(request, principal, items), 201)


# ---------------------------------------------------------------- edit

async def edit(request: Request, principal: Principal, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reply = await backend(request, "inventory").UpdateProducts(inventory_pb2.UpdateProductsRequest(
        store_hash=principal.store_hash, items=[update_item(i) for i in items], actor=principal.actor,
        source=inventory_pb2.STOCK_SOURCE_ADMIN))
    return [assigned_product_json(p) for p in reply.products]


@route("PATCH", "/backorder-products/{product_id:int}")
async def edit_one(request: Request, principal: Principal) -> Response:
    fields = parse_product(await json_body(request), "the changes are invalid; nothing was changed",
                           require_id=False, path_id=request.path_params["product_id"])
    return ok((await edit(request, principal, [fields]))[0])


@route("PATCH", "/backorder-products")
async def bulk_edit(request: Request, principal: Principal) -> Response:
    return ok(await edit(request, principal, parse_items(await json_body(request))))


# ---------------------------------------------------------------- unassign

async def unassign(request: Request, principal: Principal, ids: list[int], options: Any) -> list[dict[str, Any]]:
    """Unassign the products; `options` (query parameters or the body) say whether to restore
    BigCommerce's inventory tracking and whether to disable the products."""
    reply = await backend(request, "inventory").UnassignProducts(inventory_pb2.UnassignProductsRequest(
        store_hash=principal.store_hash, product_ids=ids,
        restore_tracking=bool_param(options.get("restore_tracking"), "restore_tracking"),
        disable_product=bool_param(options.get("disable_product"), "disable_product"), actor=principal.actor))
    return [assigned_product_json(p) for p in reply.products]


@route("DELETE", "/backorder-products/{product_id:int}")
async def unassign_one(request: Request, principal: Principal) -> Response:
    data = await unassign(request, principal, [request.path_params["product_id"]], request.query_params)
    return ok(data[0] if data else None)


@route("POST", "/backorder-products/bulk-unassign")
async def bulk_unassign(request: Request, principal: Principal) -> Response:
    body = await json_object(request)
    return ok(await unassign(request, principal, parse_product_ids(body.get("product_ids")), body))


# ---------------------------------------------------------------- export

@route("GET", "/backorder-products/export.csv")
async def export_products(request: Request, principal: Principal) -> Response:
    inventory = backend(request, "inventory")

    def list_page(page: int) -> Any:
        return inventory.ListProducts(inventory_pb2.ListProductsRequest(
            store_hash=principal.store_hash, page=page, limit=EXPORT_PAGE_SIZE))

    first = await list_page(1)

    async def lines() -> AsyncIterator[str]:
        yield "\ufeff" + csv_format.csv_line(EXPORT_COLUMNS)
        reply, page = first, 1
        while True:
            for p in reply.products:
                yield csv_format.csv_line((p.product_id, p.name, p.sku, p.stock,
                                           p.threshold if p.HasField("threshold") else "", p.incoming_stock,
                                           p.back_in_stock_date))
            if page * EXPORT_PAGE_SIZE >= reply.total or not reply.products:
                return
            page += 1
            reply = await list_page(page)

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": 'attachment; filename="backorder-products.csv"', "cache-control": "no-store"})


routes = route.routes
