"""/v3/catalog: products, variants, options, brands, category trees and the summary."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.bigcommerce import catalog
from sandbox.bigcommerce.api.responses import (
    json_body,
    pagination,
    paging,
    shaped,
    v3,
    v3_list,
)
from sandbox.bigcommerce.catalog_fields import int_list, split_csv
from sandbox.bigcommerce.catalog_store import product_row, variant_row, variants_of
from sandbox.bigcommerce.core import Sandbox
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import not_found, unprocessable
from sandbox.bigcommerce.product_listing import list_products


async def products_collection(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    if request.method == "POST":
        product = catalog.create_product(sb, store_hash, await json_body(request))
        return v3(product)
    if request.method == "PUT":
        updated = catalog.batch_update_products(sb, store_hash, await json_body(request))
        return v3(updated)
    if request.method == "DELETE":
        if "id:in" not in request.query_params:
            raise unprocessable("A filter is required to delete products", {"id:in": "required"})
        ids = int_list(request.query_params["id:in"], "id:in")
        if len(ids) > 250:
            raise unprocessable("At most 250 products per delete", {"id:in": "at most 250 ids"})
        catalog.delete_products(sb, store_hash, ids)
        return Response(status_code=204)
    params = dict(request.query_params)
    page, limit = paging(request)
    includes = set(split_csv(params.get("include", "")))
    if "options" in includes or "modifiers" in includes:
        limit = min(limit, 10)
    docs, total = list_products(sb, store_hash, params, page, limit)
    meta = dumps(pagination(request, total, len(docs), page, limit))
    if not ({"include", "include_fields", "exclude_fields"} & params.keys()):
        # Stored documents are already the response shape: splice the text instead of re-encoding it.
        return Response('{"data":[' + ",".join(docs) + '],"meta":' + meta + "}", media_type="application/json")
    parsed = [json.loads(d) for d in docs]
    grouped = variants_of(sb, [p["id"] for p in parsed]) if "variants" in includes else {}
    options = {}
    if "options" in includes:
        options = {p["id"]: product_row(sb, store_hash, p["id"])[1] for p in parsed}
    data = [shaped(request, p, grouped.get(p["id"]), options.get(p["id"])) for p in parsed]
    return Response('{"data":' + dumps(data) + ',"meta":' + meta + "}", media_type="application/json")


async def product_item(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    product_id = request.path_params["product_id"]
    if request.method == "PUT":
        catalog.update_product(sb, store_hash, product_id, await json_body(request))
    elif request.method == "DELETE":
        product_row(sb, store_hash, product_id)
        catalog.delete_products(sb, store_hash, [product_id])
        return Response(status_code=204)
    doc, options = product_row(sb, store_hash, product_id)
    variants = variants_of(sb, [product_id])[product_id]
    return v3(shaped(request, doc, variants, options))


async def product_variants(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    product_id = request.path_params["product_id"]
    product_row(sb, store_hash, product_id)
    if request.method == "POST":
        raise unprocessable("Creating variants after the product exists is not supported by the sandbox; "
                            "send them with POST /v3/catalog/products")
    return v3_list(request, variants_of(sb, [product_id])[product_id])


async def product_variant_item(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    product_id, variant_id = request.path_params["product_id"], request.path_params["variant_id"]
    if request.method == "PUT":
        return v3(catalog.update_variant(sb, store_hash, variant_id, await json_body(request), product_id))
    variant = variant_row(sb, store_hash, variant_id)
    if variant["product_id"] != product_id:
        raise not_found(f"The variant with ID {variant_id} was not found")
    return v3(variant)


async def product_options(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    _, options = product_row(sb, store_hash, request.path_params["product_id"])
    return v3_list(request, options)


async def variants_collection(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    if request.method == "PUT":
        return v3(catalog.batch_update_variants(sb, store_hash, await json_body(request)))
    params = request.query_params
    clauses, args = ["store_hash = ?"], [store_hash]
    if "product_id:in" in params:
        ids = int_list(params["product_id:in"], "product_id:in")
        clauses.append(f"product_id IN ({','.join('?' * len(ids)) or 'NULL'})")
        args += ids
    for key in ("id", "sku", "upc"):
        if key in params:
            clauses.append("id = ?" if key == "id" else f"json_extract(doc, '$.{key}') = ?")
            args.append(int(params[key]) if key == "id" else params[key])
    page, limit = paging(request)
    total = sb.db.scalar(f"SELECT COUNT(*) FROM variants WHERE {' AND '.join(clauses)}", args)
    rows = sb.db.all(f"SELECT doc FROM variants WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ? OFFSET ?",
                     [*args, limit, (page - 1) * limit])
    data = [json.loads(r[0]) for r in rows]
    if "include_fields" in params:
        keep = set(split_csv(params["include_fields"])) | {"id"}
        data = [{k: v for k, v in d.items() if k in keep} for d in data]
    return v3(data, meta=pagination(request, total, len(data), page, limit))


async def brands_collection(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    if request.method == "POST":
        return v3(catalog.create_brand(sb, store_hash, await json_body(request)))
    brands = [json.loads(r[0]) for r in sb.db.all("SELECT doc FROM brands WHERE store_hash = ? ORDER BY id",
                                                  (store_hash,))]
    if "id:in" in request.query_params:
        ids = set(int_list(request.query_params["id:in"], "id:in"))
        brands = [b for b in brands if b["id"] in ids]
    if "name" in request.query_params:
        brands = [b for b in brands if b["name"] == request.query_params["name"]]
    return v3_list(request, brands)


async def brand_item(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    brand_id = request.path_params["brand_id"]
    brand = sb.db.required_doc("SELECT doc FROM brands WHERE store_hash = ? AND id = ?", (store_hash, brand_id),
                               missing=f"Brand {brand_id} was not found")
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
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    if request.method == "POST":
        body = await json_body(request)
        if not isinstance(body, list):
            raise unprocessable("JSON data is missing or invalid", {"body": "must be an array"})
        return v3([catalog.create_category(sb, store_hash, item) for item in body])
    cats = _categories(sb, store_hash)
    params = request.query_params
    if "category_id:in" in params:
        ids = set(int_list(params["category_id:in"], "category_id:in"))
        cats = [c for c in cats if c["category_id"] in ids]
    if "tree_id:in" in params and 1 not in int_list(params["tree_id:in"], "tree_id:in"):
        cats = []
    if "parent_id:in" in params:
        parents = set(int_list(params["parent_id:in"], "parent_id:in"))
        cats = [c for c in cats if c["parent_id"] in parents]
    return v3_list(request, cats)


async def tree_nested(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    cats = _categories(sb, store_hash)

    def children(parent: int) -> list[dict[str, Any]]:
        return [{"id": c["category_id"], "parent_id": c["parent_id"], "depth": 0, "path": [], "name": c["name"],
                 "is_visible": c["is_visible"], "url": c["url"]["path"], "children": children(c["category_id"])}
                for c in cats if c["parent_id"] == parent]

    return v3(children(0))


async def legacy_categories(request: Request) -> Response:
    cats = _categories(Sandbox.of(request), request.path_params["store_hash"])
    legacy = [{"id": c["category_id"], "parent_id": c["parent_id"], "name": c["name"],
               "description": c["description"], "sort_order": c["sort_order"], "is_visible": c["is_visible"],
               "custom_url": {"url": c["url"]["path"], "is_customized": False}} for c in cats]
    return v3_list(request, legacy)


async def catalog_summary(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    row = sb.db.row("SELECT COUNT(*), COALESCE(SUM(json_extract(doc, '$.inventory_level')), 0) FROM products "
                    "WHERE store_hash = ?", (store_hash,))
    return v3({"inventory_count": row[1], "variant_count": sb.db.scalar(
        "SELECT COUNT(*) FROM variants WHERE store_hash = ?", (store_hash,)), "primary_category_id": None,
        "primary_category_name": "", "product_count": row[0]})

