"""/v2/orders and their products, counts and statuses."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.bigcommerce import orders
from sandbox.bigcommerce.api.responses import api_base, json_body, paging, v2_list
from sandbox.bigcommerce.core import Sandbox


async def orders_collection(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
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
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    order_id = request.path_params["order_id"]
    if request.method == "PUT":
        order = orders.update_order(sb, store_hash, order_id, await json_body(request))
    else:
        order = orders.order_doc(sb, store_hash, order_id)
    return JSONResponse(orders.with_links(order, api_base(request)))


async def order_products(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    page, limit = paging(request)
    return v2_list(orders.order_products(sb, store_hash, request.path_params["order_id"], page, limit))


async def order_product_item(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    order_id = request.path_params["order_id"]
    orders.order_doc(sb, store_hash, order_id)
    return JSONResponse(sb.db.required_doc("SELECT doc FROM order_products WHERE order_id = ? AND id = ?",
                                           (order_id, request.path_params["line_id"]),
                                           missing="The requested resource was not found."))


async def order_statuses(request: Request) -> Response:
    return JSONResponse(orders.status_list())


async def orders_count(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    statuses = []
    for status_id, name in orders.ORDER_STATUSES.items():
        count = sb.db.scalar("SELECT COUNT(*) FROM orders WHERE store_hash = ? AND json_extract(doc, '$.status_id') = ?",
                          (store_hash, status_id))
        statuses.append({"id": status_id, "name": name, "system_label": name, "custom_label": name,
                         "system_description": name, "count": count, "sort_order": status_id})
    total = sb.db.scalar("SELECT COUNT(*) FROM orders WHERE store_hash = ?", (store_hash,))
    return JSONResponse({"statuses": statuses, "count": total})

