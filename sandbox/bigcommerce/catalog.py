"""Catalog and inventory state: products, variants, brands, category trees, inventory items.

Inventory semantics follow BigCommerce: `inventory_tracking` is none|product|variant; the level is
kept (and writable) while tracking is none; orders decrement stock only while tracking is on.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sandbox.bigcommerce.core import Sandbox, iso_now
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import ApiError, not_found, unprocessable

MAX_LEVEL = 2_147_483_647
MAX_PAGE = 250
DEFAULT_LOCATION = {"location_id": 1, "location_code": "BC-LOCATION-1", "location_name": "Default location"}

PRODUCT_DEFAULTS: dict[str, Any] = {
    "name": "", "type": "physical", "sku": "", "description": "", "weight": 0, "width": 0, "depth": 0,
    "height": 0, "price": 0, "cost_price": 0, "retail_price": 0, "sale_price": 0, "map_price": 0,
    "tax_class_id": 0, "product_tax_code": "", "calculated_price": 0, "categories": [], "brand_id": 0,
    "option_set_id": None, "option_set_display": "right", "inventory_level": 0, "inventory_warning_level": 0,
    "inventory_tracking": "none", "reviews_rating_sum": 0, "reviews_count": 0, "total_sold": 0,
    "fixed_cost_shipping_price": 0, "is_free_shipping": False, "is_visible": True, "is_featured": False,
    "related_products": [-1], "warranty": "", "bin_picking_number": "", "layout_file": "", "upc": "", "mpn": "",
    "gtin": "", "search_keywords": "", "availability": "available", "availability_description": "",
    "gift_wrapping_options_type": "any", "gift_wrapping_options_list": [], "sort_order": 0, "condition": "New",
    "is_condition_shown": False, "order_quantity_minimum": 0, "order_quantity_maximum": 0, "page_title": "",
    "meta_keywords": [], "meta_description": "", "view_count": 0, "preorder_release_date": None,
    "preorder_message": "", "is_preorder_only": False, "is_price_hidden": False, "price_hidden_label": "",
    "custom_url": {"url": "", "is_customized": False}, "base_variant_id": None, "open_graph_type": "product",
    "open_graph_title": "", "open_graph_description": "", "open_graph_use_meta_description": True,
    "open_graph_use_product_name": True, "open_graph_use_image": True,
}
READ_ONLY = {"id", "date_created", "date_modified", "calculated_price", "base_variant_id"}
VARIANT_WRITABLE = {
    "sku", "price", "sale_price", "retail_price", "map_price", "weight", "width", "height", "depth",
    "is_free_shipping", "fixed_cost_shipping_price", "purchasing_disabled", "purchasing_disabled_message",
    "image_url", "cost_price", "upc", "mpn", "gtin", "inventory_level", "inventory_warning_level",
    "bin_picking_number",
}
# Changes to these fire store/product/updated (inventory_level only while tracking is on).
UPDATE_FIRING = {
    "availability", "availability_description", "categories", "brand_id", "inventory_tracking", "inventory_level",
    "preorder_release_date", "preorder_message", "is_preorder_only", "price", "sale_price", "retail_price",
    "cost_price", "map_price", "calculated_price", "is_visible", "sku", "order_quantity_minimum",
    "order_quantity_maximum", "name", "description", "is_price_hidden", "price_hidden_label", "weight", "type",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


CHECKS: dict[str, tuple[Any, str]] = {
    "name": (lambda v: isinstance(v, str) and 1 <= len(v) <= 250, "must be a string of 1 to 250 characters"),
    "type": (lambda v: v in ("physical", "digital"), "must be one of physical, digital"),
    "sku": (lambda v: isinstance(v, str) and len(v) <= 255, "must be a string of at most 255 characters"),
    "price": (lambda v: _is_number(v) and v >= 0, "must be a number >= 0"),
    "sale_price": (lambda v: _is_number(v) and v >= 0, "must be a number >= 0"),
    "retail_price": (lambda v: _is_number(v) and v >= 0, "must be a number >= 0"),
    "cost_price": (lambda v: _is_number(v) and v >= 0, "must be a number >= 0"),
    "weight": (lambda v: _is_number(v) and v >= 0, "must be a number >= 0"),
    "inventory_level": (lambda v: _is_int(v) and v >= 0, "must be an integer >= 0"),
    "inventory_warning_level": (lambda v: _is_int(v) and v >= 0, "must be an integer >= 0"),
    "inventory_tracking": (lambda v: v in ("none", "product", "variant"), "must be one of none, product, variant"),
    "availability": (lambda v: v in ("available", "disabled", "preorder"),
                     "must be one of available, disabled, preorder"),
    "availability_description": (lambda v: isinstance(v, str) and len(v) <= 255, "must be at most 255 characters"),
    "is_visible": (lambda v: isinstance(v, bool), "must be a boolean"),
    "is_price_hidden": (lambda v: isinstance(v, bool), "must be a boolean"),
    "is_preorder_only": (lambda v: isinstance(v, bool), "must be a boolean"),
    "categories": (lambda v: isinstance(v, list) and len(v) <= 1000 and all(_is_int(c) for c in v),
                   "must be a list of at most 1000 category ids"),
    "brand_id": (lambda v: _is_int(v) and v >= 0, "must be an integer >= 0"),
    "order_quantity_minimum": (lambda v: _is_int(v) and v >= 0, "must be an integer >= 0"),
    "order_quantity_maximum": (lambda v: _is_int(v) and v >= 0, "must be an integer >= 0"),
    "purchasing_disabled": (lambda v: isinstance(v, bool), "must be a boolean"),
    "purchasing_disabled_message": (lambda v: isinstance(v, str) and len(v) <= 255, "must be at most 255 characters"),
}


def _checked(body: dict[str, Any], allowed: set[str] | None = None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in body.items():
        if key in READ_ONLY or key in ("variants", "options"):
            continue
        if allowed is not None and key not in allowed:
            continue
        if allowed is None and key not in PRODUCT_DEFAULTS:
            continue
        if key == "inventory_level" and _is_int(value) and value > MAX_LEVEL:
            value = MAX_LEVEL  # the Catalog API clamps overflow; the Inventory API rejects it
        check = CHECKS.get(key)
        if check is not None and not check[0](value):
            errors[key] = f"{key} {check[1]}"
            continue
        clean[key] = value
    if errors:
        raise unprocessable("JSON data is missing or invalid", errors)
    return clean


# ----- reading -----
def product_row(sb: Sandbox, store_hash: str, product_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    row = sb.db.one("SELECT doc, options FROM products WHERE store_hash = ? AND id = ?", (store_hash, product_id))
    if row is None:
        raise not_found(f"The product with ID {product_id} was not found")
    return json.loads(row["doc"]), json.loads(row["options"])


def variants_of(sb: Sandbox, product_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = {pid: [] for pid in product_ids}
    for start in range(0, len(product_ids), 500):
        chunk = product_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in sb.db.all(f"SELECT product_id, doc FROM variants WHERE product_id IN ({marks}) ORDER BY id", chunk):
            grouped[row["product_id"]].append(json.loads(row["doc"]))
    return grouped


def variant_row(sb: Sandbox, store_hash: str, variant_id: int) -> dict[str, Any]:
    doc = sb.db.doc("SELECT doc FROM variants WHERE store_hash = ? AND id = ?", (store_hash, variant_id))
    if doc is None:
        raise not_found(f"The variant with ID {variant_id} was not found")
    return doc


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _ints(value: str, name: str) -> list[int]:
    try:
        return [int(part) for part in _csv(value)]
    except ValueError as exc:
        raise unprocessable(f"Invalid value for {name}", {name: "must be a list of integers"}) from exc


def _utc_iso(value: str, name: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise unprocessable(f"Invalid date for {name}", {name: "must be an ISO-8601 date"}) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(microsecond=0).isoformat()


def product_filters(params: dict[str, str]) -> tuple[str, list[Any]]:
    """Translate BigCommerce's documented product filters into SQL over the stored documents."""
    clauses: list[str] = []
    args: list[Any] = []

    def field(name: str) -> str:
        return f"json_extract(doc, '$.{name}')"

    for key, value in params.items():
        if key in ("id:in", "id:not_in"):
            ids = _ints(value, key)
            marks = ",".join("?" * len(ids)) or "NULL"
            clauses.append(f"id {'NOT IN' if key.endswith('not_in') else 'IN'} ({marks})")
            args += ids
        elif key in ("id", "id:min", "id:max", "id:greater", "id:less"):
            op = {"id": "=", "id:min": ">=", "id:max": "<=", "id:greater": ">", "id:less": "<"}[key]
            clauses.append(f"id {op} ?")
            args.append(_ints(value, key)[0] if _ints(value, key) else 0)
        elif key == "sku":
            clauses.append(f"{field('sku')} = ?")
            args.append(value)
        elif key == "sku:in":
            skus = _csv(value)
            clauses.append(f"{field('sku')} IN ({','.join('?' * len(skus)) or 'NULL'})")
            args += skus
        elif key == "name":
            clauses.append(f"{field('name')} = ?")
            args.append(value)
        elif key == "name:like":
            clauses.append(f"{field('name')} LIKE ?")
            args.append(f"%{value}%")
        elif key == "keyword":
            clauses.append(f"({field('name')} LIKE ? OR {field('sku')} LIKE ? OR {field('description')} LIKE ?"
                           f" OR {field('search_keywords')} LIKE ?)")
            args += [f"%{value}%"] * 4
        elif key in ("brand_id", "type", "availability", "inventory_tracking"):
            clauses.append(f"{field(key)} = ?")
            args.append(_ints(value, key)[0] if key == "brand_id" and _ints(value, key) else value)
        elif key in ("is_visible", "is_featured", "is_free_shipping"):
            clauses.append(f"{field(key)} = ?")
            args.append(1 if value.lower() in ("1", "true") else 0)
        elif key in ("categories", "categories:in"):
            ids = _ints(value, key)
            marks = ",".join("?" * len(ids)) or "NULL"
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(doc, '$.categories') WHERE value IN ({marks}))")
            args += ids
        elif key.startswith("inventory_level"):
            suffix = key.partition(":")[2]
            if suffix in ("in", "not_in"):
                levels = _ints(value, key)
                marks = ",".join("?" * len(levels)) or "NULL"
                clauses.append(f"{field('inventory_level')} {'NOT IN' if suffix == 'not_in' else 'IN'} ({marks})")
                args += levels
            else:
                op = {"": "=", "min": ">=", "max": "<=", "greater": ">", "less": "<"}.get(suffix)
                if op is None:
                    continue
                clauses.append(f"{field('inventory_level')} {op} ?")
                args.append(_ints(value, key)[0])
        elif key == "inventory_low":
            low = f"{field('inventory_level')} <= {field('inventory_warning_level')}"
            clauses.append(f"({field('inventory_tracking')} != 'none' AND {low})" if value == "1"
                           else f"NOT ({low})")
        elif key == "out_of_stock" and value == "1":
            clauses.append(f"({field('inventory_tracking')} != 'none' AND {field('inventory_level')} = 0)")
        elif key.startswith("date_modified") or key.startswith("date_last_imported"):
            op = {"": "=", "min": ">=", "max": "<="}.get(key.partition(":")[2])
            if op is None:
                continue
            clauses.append(f"{field('date_modified')} {op} ?")
            args.append(_utc_iso(value, key))
        elif key in ("price", "weight"):
            try:
                number = float(value)
            except ValueError as exc:
                raise unprocessable(f"Invalid value for {key}", {key: "must be a number"}) from exc
            clauses.append(f"{field(key)} = ?")
            args.append(number)
    return (" AND ".join(clauses), args)


SORTABLE = {"id", "name", "sku", "price", "date_modified", "date_last_imported", "inventory_level", "is_visible",
            "total_sold", "calculated_price"}


def list_products(sb: Sandbox, store_hash: str, params: dict[str, str], page: int, limit: int
                  ) -> tuple[list[str], int]:
    """One page of product documents (stored JSON text) and the filtered total."""
    where, args = product_filters(params)
    sort = params.get("sort", "id")
    if sort not in SORTABLE:
        raise unprocessable("Invalid sort field", {"sort": f"must be one of {', '.join(sorted(SORTABLE))}"})
    direction = "DESC" if params.get("direction", "asc").lower() == "desc" else "ASC"
    order = f"id {direction}" if sort == "id" else f"json_extract(doc, '$.{sort}') {direction}, id"
    sql_where = "store_hash = ?" + (f" AND {where}" if where else "")
    plain = not where and order == "id ASC"
    version = sb.product_set_version.get(store_hash, 0)
    total = sb.product_counts.get((store_hash, version)) if plain else None
    if total is None:
        total = sb.db.one(f"SELECT COUNT(*) FROM products WHERE {sql_where}", [store_hash, *args])[0]
        if plain:
            sb.product_counts[(store_hash, version)] = total
    # A full pull asks for page after page: continuing from the previous page's last id keeps each
    # request O(page size) instead of walking the whole offset.
    mark = sb.page_marks.get((store_hash, version, limit, page - 1)) if plain and page > 1 else None
    if mark is not None:
        ids = [row[0] for row in sb.db.all("SELECT id FROM products WHERE store_hash = ? AND id > ? ORDER BY id "
                                           "LIMIT ?", (store_hash, mark, limit))]
    else:
        # Ids first: without JSON filters this walks only the (store_hash, id) index.
        ids = [row[0] for row in sb.db.all(
            f"SELECT id FROM products WHERE {sql_where} ORDER BY {order} LIMIT ? OFFSET ?",
            [store_hash, *args, limit, (page - 1) * limit])]
    if not ids:
        return [], total
    if plain:
        if len(sb.page_marks) > 50_000:
            sb.page_marks.clear()
        sb.page_marks[(store_hash, version, limit, page)] = ids[-1]
    docs = dict(sb.db.all(f"SELECT id, doc FROM products WHERE id IN ({','.join('?' * len(ids))})", ids))
    return [docs[product_id] for product_id in ids], total


# ----- writing -----
def _check_references(sb: Sandbox, store_hash: str, fields: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    if fields.get("brand_id"):
        if sb.db.one("SELECT 1 FROM brands WHERE store_hash = ? AND id = ?", (store_hash, fields["brand_id"])) is None:
            errors["brand_id"] = f"Brand {fields['brand_id']} does not exist"
    for category_id in fields.get("categories") or []:
        if sb.db.one("SELECT 1 FROM categories WHERE store_hash = ? AND id = ?", (store_hash, category_id)) is None:
            errors["categories"] = f"Category {category_id} does not exist"
    if errors:
        raise unprocessable("JSON data is missing or invalid", errors)


def _check_unique(sb: Sandbox, store_hash: str, fields: dict[str, Any], product_id: int | None) -> None:
    if fields.get("sku"):
        row = sb.db.one("SELECT id FROM products WHERE store_hash = ? AND json_extract(doc, '$.sku') = ?",
                        (store_hash, fields["sku"]))
        if row is not None and row[0] != product_id:
            raise ApiError(409, f"Sku {fields['sku']} is not unique", {"sku": "Sku is not unique"})
    if "name" in fields:
        row = sb.db.one("SELECT id FROM products WHERE store_hash = ? AND json_extract(doc, '$.name') = ?",
                        (store_hash, fields["name"]))
        if row is not None and row[0] != product_id:
            raise ApiError(409, "The product name is a duplicate", {"name": "The product name is a duplicate"})


def _calculated(doc: dict[str, Any]) -> float:
    return doc["sale_price"] if doc.get("sale_price") else doc["price"]


def _new_variant(sb: Sandbox, store_hash: str, product: dict[str, Any], spec: dict[str, Any],
                 option_values: list[dict[str, Any]]) -> dict[str, Any]:
    cursor = sb.db.execute("INSERT INTO variants (store_hash, product_id, doc) VALUES (?, ?, '{}')",
                           (store_hash, product["id"]))
    variant_id = cursor.lastrowid
    price = spec.get("price")
    variant = {
        "id": variant_id, "product_id": product["id"], "sku": spec.get("sku") or product["sku"],
        "sku_id": variant_id if option_values else None, "price": price,
        "calculated_price": price if price is not None else product["calculated_price"],
        "sale_price": spec.get("sale_price"), "retail_price": spec.get("retail_price"),
        "map_price": spec.get("map_price"), "weight": spec.get("weight"), "width": None, "height": None,
        "depth": None, "is_free_shipping": False, "fixed_cost_shipping_price": None,
        "calculated_weight": spec.get("weight") or product["weight"],
        "purchasing_disabled": bool(spec.get("purchasing_disabled", False)),
        "purchasing_disabled_message": spec.get("purchasing_disabled_message", ""), "image_url": "",
        "cost_price": spec.get("cost_price"), "upc": spec.get("upc", ""), "mpn": spec.get("mpn", ""),
        "gtin": spec.get("gtin", ""),
        "inventory_level": int(spec.get("inventory_level", product["inventory_level"] if not option_values else 0)),
        "inventory_warning_level": int(spec.get("inventory_warning_level", 0)),
        "bin_picking_number": spec.get("bin_picking_number", ""), "option_values": option_values,
    }
    sb.db.execute("UPDATE variants SET doc = ? WHERE id = ?", (dumps(variant), variant_id))
    return variant


def _build_options(product_id: int, variant_specs: list[dict[str, Any]], next_ids: list[int]
                   ) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Product options from variants given as option_display_name/label pairs (as BigCommerce accepts)."""
    options: dict[str, dict[str, Any]] = {}
    resolved: list[list[dict[str, Any]]] = []
    for spec in variant_specs:
        values = []
        for pair in spec.get("option_values") or []:
            name, label = pair.get("option_display_name"), pair.get("label")
            if not name or not label:
                raise unprocessable("JSON data is missing or invalid",
                                    {"variants.option_values": "option_display_name and label are required"})
            option = options.get(name)
            if option is None:
                next_ids[0] += 1
                option = {"id": next_ids[0], "product_id": product_id, "display_name": name, "type": "dropdown",
                          "sort_order": len(options), "option_values": []}
                options[name] = option
            value = next((v for v in option["option_values"] if v["label"] == label), None)
            if value is None:
                next_ids[0] += 1
                value = {"id": next_ids[0], "label": label, "sort_order": len(option["option_values"]),
                         "value_data": None, "is_default": False}
                option["option_values"].append(value)
            values.append({"id": value["id"], "label": label, "option_id": option["id"],
                           "option_display_name": name})
        resolved.append(values)
    return list(options.values()), resolved


def create_product(sb: Sandbox, store_hash: str, body: Any, *, fire: bool = True) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
    missing = {key: f"{key} is required" for key in ("name", "type", "weight", "price") if key not in body}
    if missing:
        raise unprocessable("JSON data is missing or invalid", missing)
    fields = _checked(body)
    _check_references(sb, store_hash, fields)
    _check_unique(sb, store_hash, fields, None)
    variant_specs = body.get("variants") or []
    if not isinstance(variant_specs, list) or len(variant_specs) > 600:
        raise unprocessable("JSON data is missing or invalid", {"variants": "must be a list of at most 600"})
    now = iso_now()
    sb.products_changed(store_hash)
    with sb.db.transaction():
        cursor = sb.db.execute("INSERT INTO products (store_hash, doc) VALUES (?, '{}')", (store_hash,))
        product_id = cursor.lastrowid
        doc = {"id": product_id, **PRODUCT_DEFAULTS, **fields, "date_created": now, "date_modified": now}
        doc["calculated_price"] = _calculated(doc)
        if not doc["custom_url"]["url"]:
            doc["custom_url"] = {"url": f"/products/{product_id}/", "is_customized": False}
        counter = sb.db.one("SELECT COALESCE(MAX(id), 0) FROM variants")[0] + 1000
        options, option_values = _build_options(product_id, variant_specs, [counter])
        if variant_specs and options:
            for spec, values in zip(variant_specs, option_values, strict=True):
                _new_variant(sb, store_hash, doc, _checked(spec, VARIANT_WRITABLE), values)
            if doc["inventory_tracking"] == "variant":
                doc["inventory_level"] = sum(v.get("inventory_level", 0) for v in variant_specs)
        else:
            doc["base_variant_id"] = _new_variant(sb, store_hash, doc, {}, [])["id"]
        sb.db.execute("UPDATE products SET doc = ?, options = ? WHERE id = ?", (dumps(doc), dumps(options), product_id))
        if "inventory_level" in fields:
            _item_settings(sb, store_hash, product_id, 0, absolute_set=1)
        if fire:
            sb.emit(store_hash, "store/product/created", {"type": "product", "id": product_id})
    return doc


def update_product(sb: Sandbox, store_hash: str, product_id: int, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
    doc, _ = product_row(sb, store_hash, product_id)
    fields = _checked(body)
    _check_references(sb, store_hash, fields)
    _check_unique(sb, store_hash, fields, product_id)
    with sb.db.transaction():
        return _apply_product_fields(sb, store_hash, doc, fields, method="absolute")


def _apply_product_fields(sb: Sandbox, store_hash: str, doc: dict[str, Any], fields: dict[str, Any],
                          *, method: str) -> dict[str, Any]:
    before = dict(doc)
    doc.update(fields)
    doc["calculated_price"] = _calculated(doc)
    changed = {key for key in doc if doc[key] != before.get(key)}
    if not changed:
        return doc
    doc["date_modified"] = iso_now()
    sb.db.execute("UPDATE products SET doc = ? WHERE id = ?", (dumps(doc), doc["id"]))
    level_changed = "inventory_level" in changed
    if level_changed and doc["base_variant_id"]:
        _mirror_base_variant(sb, doc)
    if "inventory_level" in fields:
        _item_settings(sb, store_hash, doc["id"], 0, absolute_set=1)
    firing = changed & UPDATE_FIRING
    if doc["inventory_tracking"] == "none" and before["inventory_tracking"] == "none":
        firing.discard("inventory_level")
    if firing:
        sb.emit(store_hash, "store/product/updated", {"type": "product", "id": doc["id"]})
    if level_changed:
        _emit_product_inventory(sb, store_hash, doc, method=method,
                                value=doc["inventory_level"] if method == "absolute"
                                else doc["inventory_level"] - before["inventory_level"],
                                scope="store/product/inventory/updated")
    return doc


def _mirror_base_variant(sb: Sandbox, product: dict[str, Any]) -> None:
    variant = sb.db.doc("SELECT doc FROM variants WHERE id = ?", (product["base_variant_id"],))
    if variant is not None:
        variant["inventory_level"] = product["inventory_level"]
        sb.db.execute("UPDATE variants SET doc = ? WHERE id = ?", (dumps(variant), variant["id"]))


def _emit_product_inventory(sb: Sandbox, store_hash: str, product: dict[str, Any], *, method: str, value: int,
                            scope: str) -> None:
    # Products with variants fire product inventory events only when tracked by product.
    if product["base_variant_id"] is None and product["inventory_tracking"] != "product":
        return
    sb.emit(store_hash, scope, {"type": "product", "id": product["id"],
                                "inventory": {"product_id": product["id"], "method": method, "value": value}})


def batch_update_products(sb: Sandbox, store_hash: str, body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not body:
        raise unprocessable("JSON data is missing or invalid", {"body": "must be a non-empty array"})
    if len(body) > 10:
        raise ApiError(413, "The request payload is too large. The maximum items allowed in the array is 10")
    prepared = []
    for index, item in enumerate(body):
        if not isinstance(item, dict) or not _is_int(item.get("id")):
            raise unprocessable("JSON data is missing or invalid", {f"[{index}].id": "id is required"})
        doc, _ = product_row(sb, store_hash, item["id"])
        fields = _checked(item)
        _check_references(sb, store_hash, fields)
        _check_unique(sb, store_hash, fields, item["id"])
        prepared.append((doc, fields))
    with sb.db.transaction():
        return [_apply_product_fields(sb, store_hash, doc, fields, method="absolute") for doc, fields in prepared]


def delete_products(sb: Sandbox, store_hash: str, product_ids: list[int]) -> None:
    sb.products_changed(store_hash)
    with sb.db.transaction():
        for product_id in product_ids:
            if sb.db.execute("DELETE FROM products WHERE store_hash = ? AND id = ?", (store_hash, product_id)).rowcount:
                sb.db.execute("DELETE FROM variants WHERE product_id = ?", (product_id,))
                sb.db.execute("DELETE FROM inventory_items WHERE store_hash = ? AND product_id = ?",
                              (store_hash, product_id))
                sb.emit(store_hash, "store/product/deleted", {"type": "product", "id": product_id})


def update_variant(sb: Sandbox, store_hash: str, variant_id: int, body: Any, product_id: int | None = None,
                   ) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
    variant = variant_row(sb, store_hash, variant_id)
    if product_id is not None and variant["product_id"] != product_id:
        raise not_found(f"The variant with ID {variant_id} was not found")
    fields = _checked(body, VARIANT_WRITABLE)
    with sb.db.transaction():
        return _apply_variant_fields(sb, store_hash, variant, fields, method="absolute")


def _apply_variant_fields(sb: Sandbox, store_hash: str, variant: dict[str, Any], fields: dict[str, Any], *,
                          method: str, scope: str = "store/sku/inventory/updated") -> dict[str, Any]:
    product, _ = product_row(sb, store_hash, variant["product_id"])
    before_level = variant["inventory_level"]
    if product["base_variant_id"] == variant["id"]:
        # The base variant's stock is the product's stock.
        product_fields = {k: v for k, v in fields.items() if k in ("inventory_level", "inventory_warning_level")}
        variant.update(fields)
        sb.db.execute("UPDATE variants SET doc = ? WHERE id = ?", (dumps(variant), variant["id"]))
        if product_fields:
            _apply_product_fields(sb, store_hash, product, product_fields, method=method)
        return variant
    variant.update(fields)
    if "price" in fields:
        variant["calculated_price"] = fields["price"]
    sb.db.execute("UPDATE variants SET doc = ? WHERE id = ?", (dumps(variant), variant["id"]))
    if "inventory_level" in fields:
        _item_settings(sb, store_hash, product["id"], variant["id"], absolute_set=1)
    if fields:
        sb.emit(store_hash, "store/sku/updated", {"type": "sku", "id": variant["id"]})
    if variant["inventory_level"] != before_level:
        total = sb.db.one("SELECT COALESCE(SUM(json_extract(doc, '$.inventory_level')), 0) FROM variants "
                          "WHERE product_id = ?", (product["id"],))[0]
        product["inventory_level"] = total
        product["date_modified"] = iso_now()
        sb.db.execute("UPDATE products SET doc = ? WHERE id = ?", (dumps(product), product["id"]))
        if product["inventory_tracking"] == "variant":
            value = variant["inventory_level"] if method == "absolute" else variant["inventory_level"] - before_level
            sb.emit(store_hash, scope, {"type": "sku", "id": variant["id"], "inventory": {
                "product_id": product["id"], "method": method, "value": value, "variant_id": variant["id"]}})
    return variant


def batch_update_variants(sb: Sandbox, store_hash: str, body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not body:
        raise unprocessable("JSON data is missing or invalid", {"body": "must be a non-empty array"})
    if len(body) > 50:
        raise ApiError(413, "The request payload is too large. The maximum items allowed in the array is 50")
    prepared = []
    for index, item in enumerate(body):
        if not isinstance(item, dict) or not _is_int(item.get("id")):
            raise unprocessable("JSON data is missing or invalid", {f"[{index}].id": "id is required"})
        prepared.append((variant_row(sb, store_hash, item["id"]), _checked(item, VARIANT_WRITABLE)))
    with sb.db.transaction():
        return [_apply_variant_fields(sb, store_hash, v, f, method="absolute") for v, f in prepared]


# ----- brands and categories -----
def create_brand(sb: Sandbox, store_hash: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
        raise unprocessable("JSON data is missing or invalid", {"name": "name is required"})
    if sb.db.one("SELECT 1 FROM brands WHERE store_hash = ? AND json_extract(doc, '$.name') = ?",
                 (store_hash, body["name"])):
        raise ApiError(409, "Brand name is a duplicate", {"name": "Brand name is a duplicate"})
    with sb.db.transaction():
        brand_id = sb.db.execute("INSERT INTO brands (store_hash, doc) VALUES (?, '{}')", (store_hash,)).lastrowid
        doc = {"id": brand_id, "name": body["name"], "page_title": body.get("page_title", ""),
               "meta_keywords": body.get("meta_keywords", []), "meta_description": body.get("meta_description", ""),
               "search_keywords": body.get("search_keywords", ""), "image_url": body.get("image_url", ""),
               "custom_url": {"url": f"/brands/{body['name'].replace(' ', '-')}/", "is_customized": False}}
        sb.db.execute("UPDATE brands SET doc = ? WHERE id = ?", (dumps(doc), brand_id))
    return doc


def create_category(sb: Sandbox, store_hash: str, body: dict[str, Any]) -> dict[str, Any]:
    name = body.get("name")
    parent_id = body.get("parent_id", 0)
    if not isinstance(name, str) or not name:
        raise unprocessable("JSON data is missing or invalid", {"name": "name is required"})
    if parent_id and sb.db.one("SELECT 1 FROM categories WHERE store_hash = ? AND id = ?",
                               (store_hash, parent_id)) is None:
        raise unprocessable("JSON data is missing or invalid", {"parent_id": "parent category does not exist"})
    with sb.db.transaction():
        cat_id = sb.db.execute("INSERT INTO categories (store_hash, doc) VALUES (?, '{}')", (store_hash,)).lastrowid
        doc = {"category_id": cat_id, "parent_id": parent_id or 0, "tree_id": 1, "name": name,
               "description": body.get("description", ""), "views": 0, "sort_order": body.get("sort_order", 0),
               "page_title": "", "meta_keywords": [], "meta_description": "", "layout_file": "category.html",
               "image_url": "", "is_visible": body.get("is_visible", True), "search_keywords": "",
               "default_product_sort": "use_store_settings",
               "url": {"path": f"/{name.lower().replace(' ', '-')}/", "is_customized": False}}
        sb.db.execute("UPDATE categories SET doc = ? WHERE id = ?", (dumps(doc), cat_id))
    return doc


# ----- inventory -----
def _item_settings(sb: Sandbox, store_hash: str, product_id: int, variant_id: int, **updates: Any
                   ) -> dict[str, Any]:
    sb.db.execute("INSERT OR IGNORE INTO inventory_items (store_hash, product_id, variant_id, location_id) "
                  "VALUES (?, ?, ?, 1)", (store_hash, product_id, variant_id))
    for column, value in updates.items():
        sb.db.execute(f"UPDATE inventory_items SET {column} = ? WHERE store_hash = ? AND product_id = ? "
                      "AND variant_id = ? AND location_id = 1", (value, store_hash, product_id, variant_id))
    return dict(sb.db.one("SELECT * FROM inventory_items WHERE store_hash = ? AND product_id = ? AND variant_id = ? "
                          "AND location_id = 1", (store_hash, product_id, variant_id)))


def item_keys(product: dict[str, Any], variants: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The inventory items of a product: per variant when tracked by variant, else one product-level item.

    Returns (variant key, identity) pairs; key 0 stands for the product level.
    """
    if product["inventory_tracking"] == "variant" and product["base_variant_id"] is None:
        return [(v["id"], {"sku": v["sku"], "variant_id": v["id"], "product_id": product["id"], "sku_id": v["sku_id"]})
                for v in variants]
    return [(0, {"sku": product["sku"], "variant_id": product["base_variant_id"], "product_id": product["id"],
                 "sku_id": None})]


def on_hand(product: dict[str, Any], variants: list[dict[str, Any]], key: int) -> int:
    if key == 0:
        return product["inventory_level"]
    return next(v["inventory_level"] for v in variants if v["id"] == key)


def location_entry(sb: Sandbox, store_hash: str, product: dict[str, Any], variants: list[dict[str, Any]], key: int,
                   native: bool) -> dict[str, Any]:
    settings = _item_settings(sb, store_hash, product["id"], key)
    onhand = on_hand(product, variants, key)
    ats = max(onhand - settings["safety_stock"], 0)
    entry = {**DEFAULT_LOCATION, "available_to_sell": ats, "total_inventory_onhand": onhand, "location_enabled": True,
             "settings": {"safety_stock": settings["safety_stock"], "is_in_stock": bool(settings["is_in_stock"]),
                          "warning_level": settings["warning_level"],
                          "bin_picking_number": settings["bin_picking_number"]}}
    if native:
        entry["available_to_sell"] = ats + max(settings["backorder_limit"] - settings["qty_backordered"], 0)
        entry["qty_backordered"] = settings["qty_backordered"]
        entry["settings"]["backorder_limit"] = settings["backorder_limit"]
        entry["settings"]["backorder_message_id"] = settings["backorder_message_id"]
    return entry


def inventory_items(sb: Sandbox, store_hash: str, params: dict[str, str]) -> list[dict[str, Any]]:
    native = bool(sb.store(store_hash)["native_backorders"])
    clauses, args = ["store_hash = ?"], [store_hash]
    if "product_id:in" in params:
        ids = _ints(params["product_id:in"], "product_id:in")
        clauses.append(f"id IN ({','.join('?' * len(ids)) or 'NULL'})")
        args += ids
    if "location_id:in" in params and 1 not in _ints(params["location_id:in"], "location_id:in"):
        return []
    products = [json.loads(r[0]) for r in sb.db.all(f"SELECT doc FROM products WHERE {' AND '.join(clauses)} "
                                                    "ORDER BY id", args)]
    grouped = variants_of(sb, [p["id"] for p in products])
    skus = set(_csv(params["sku:in"])) if "sku:in" in params else None
    variant_ids = set(_ints(params["variant_id:in"], "variant_id:in")) if "variant_id:in" in params else None
    items = []
    for product in products:
        for key, identity in item_keys(product, grouped[product["id"]]):
            if skus is not None and identity["sku"] not in skus:
                continue
            if variant_ids is not None and identity["variant_id"] not in variant_ids:
                continue
            items.append({"identity": identity, "locations": [
                location_entry(sb, store_hash, product, grouped[product["id"]], key, native)]})
    return items


def resolve_item(sb: Sandbox, store_hash: str, row: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Map an inventory row's identity (exactly one of sku, variant_id, product_id) to (product, item key)."""
    given = [k for k in ("sku", "variant_id", "product_id") if row.get(k) is not None]
    if len(given) != 1:
        raise unprocessable("Each item needs exactly one of sku, variant_id, product_id",
                            {"items": "exactly one of sku, variant_id, product_id"})
    kind = given[0]
    if kind == "product_id":
        product, _ = product_row(sb, store_hash, int(row["product_id"]))
        if product["inventory_tracking"] == "variant" and product["base_variant_id"] is None:
            raise unprocessable(f"Item with product_id {product['id']} is tracked by variant, please update stock "
                                "by variant id or sku")
        return product, 0
    if kind == "sku":
        found = sb.db.one("SELECT id FROM products WHERE store_hash = ? AND json_extract(doc, '$.sku') = ?",
                          (store_hash, row["sku"]))
        if found is not None:
            product, _ = product_row(sb, store_hash, found[0])
            if product["inventory_tracking"] == "variant" and product["base_variant_id"] is None:
                raise unprocessable(f"Item with sku {row['sku']} is tracked by variant, please update stock by "
                                    "variant sku")
            return product, 0
        found = sb.db.one("SELECT id FROM variants WHERE store_hash = ? AND json_extract(doc, '$.sku') = ?",
                          (store_hash, row["sku"]))
        if found is None:
            raise unprocessable(f"Item with sku {row['sku']} was not found")
        variant = variant_row(sb, store_hash, found[0])
    else:
        try:
            variant = variant_row(sb, store_hash, int(row["variant_id"]))
        except ApiError as exc:
            raise unprocessable(f"Item with variant_id {row['variant_id']} was not found") from exc
    product, _ = product_row(sb, store_hash, variant["product_id"])
    if product["base_variant_id"] == variant["id"]:
        return product, 0
    if product["inventory_tracking"] != "variant":
        raise unprocessable(f"Item with {kind} {row[kind]} is tracked by product, please update stock by product id")
    return product, variant["id"]


def set_stock(sb: Sandbox, store_hash: str, product: dict[str, Any], key: int, level: int, *, method: str,
              scope_suffix: str = "inventory/updated") -> None:
    """Write one item's on-hand level (inside the caller's transaction) and fire the matching events."""
    if key == 0:
        before = product["inventory_level"]
        if before == level:
            return
        product["inventory_level"] = level
        product["date_modified"] = iso_now()
        sb.db.execute("UPDATE products SET doc = ? WHERE id = ?", (dumps(product), product["id"]))
        if product["base_variant_id"]:
            _mirror_base_variant(sb, product)
        _emit_product_inventory(sb, store_hash, product, method=method,
                                value=level if method == "absolute" else level - before,
                                scope=f"store/product/{scope_suffix}")
        return
    variant = variant_row(sb, store_hash, key)
    _apply_variant_fields(sb, store_hash, variant, {"inventory_level": level}, method=method,
                          scope=f"store/sku/{scope_suffix}")


def adjust_inventory(sb: Sandbox, store_hash: str, body: Any, *, relative: bool) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list) or not body["items"]:
        raise unprocessable("JSON data is missing or invalid", {"items": "items is required"})
    if len(body["items"]) > 2000:
        raise unprocessable("Too many items", {"items": "at most 2000 items per request"})
    native = bool(sb.store(store_hash)["native_backorders"])
    plan = []
    for row in body["items"]:
        if not isinstance(row, dict) or row.get("location_id", 1) != 1:
            raise unprocessable("Location was not found", {"location_id": "unknown location"})
        quantity, backordered = row.get("quantity"), row.get("qty_backordered")
        if quantity is None and (backordered is None or not native):
            raise unprocessable("JSON data is missing or invalid", {"quantity": "quantity is required"})
        for name, value in (("quantity", quantity), ("qty_backordered", backordered)):
            if value is not None and (not _is_int(value) or abs(value) > MAX_LEVEL):
                raise unprocessable(f"Invalid {name}", {name: "must be an integer within 0..2147483647"})
        if relative and quantity == 0:
            raise unprocessable("Quantity for a relative adjustment cannot be 0", {"quantity": "must not be 0"})
        product, key = resolve_item(sb, store_hash, row)
        settings = _item_settings(sb, store_hash, product["id"], key)
        variants = variants_of(sb, [product["id"]])[product["id"]]
        current = on_hand(product, variants, key)
        if relative:
            if not settings["absolute_set"]:
                raise unprocessable("requires absolute adjustment before relative")
            new_level = None if quantity is None else current + quantity
            new_backordered = None if backordered is None else settings["qty_backordered"] + backordered
        else:
            new_level, new_backordered = quantity, backordered
        if new_level is not None and not 0 <= new_level <= MAX_LEVEL:
            raise unprocessable(f"Insufficient stock for item (product_id: {product['id']}): available {current}",
                                {"quantity": "result must be within 0..2147483647"})
        if new_backordered is not None and new_backordered < 0:
            raise unprocessable("qty_backordered cannot become negative")
        plan.append((product["id"], key, new_level, new_backordered))
    with sb.db.transaction():
        for product_id, key, new_level, new_backordered in plan:
            product, _ = product_row(sb, store_hash, product_id)
            if new_level is not None:
                set_stock(sb, store_hash, product, key, new_level, method="relative" if relative else "absolute")
                _item_settings(sb, store_hash, product_id, key, absolute_set=1)
            if new_backordered is not None:
                _item_settings(sb, store_hash, product_id, key, qty_backordered=new_backordered)
    return {"transaction_id": str(uuid.uuid4())}


SETTING_COLUMNS = {"safety_stock": int, "is_in_stock": bool, "warning_level": int, "bin_picking_number": str,
                   "backorder_limit": int, "backorder_message_id": int}


def update_location_settings(sb: Sandbox, store_hash: str, location_id: int, body: Any) -> dict[str, Any]:
    if location_id != 1:
        raise not_found(f"Location {location_id} was not found")
    if not isinstance(body, dict) or not isinstance(body.get("settings"), list) or not body["settings"]:
        raise unprocessable("JSON data is missing or invalid", {"settings": "settings is required"})
    plan = []
    for entry in body["settings"]:
        identity = entry.get("identity") if isinstance(entry, dict) else None
        if not isinstance(identity, dict):
            raise unprocessable("JSON data is missing or invalid", {"identity": "identity is required"})
        if identity.get("variant_id") is not None and identity.get("product_id") is not None:
            identity = {"variant_id": identity["variant_id"]}
        values = {k: entry[k] for k in SETTING_COLUMNS if k in entry}
        if not values:
            raise unprocessable("At least one setting must be provided", {"settings": "no setting given"})
        for name, value in values.items():
            kind = SETTING_COLUMNS[name]
            valid = isinstance(value, bool) if kind is bool else (
                isinstance(value, str) if kind is str else (_is_int(value) and value >= 0) or
                (name == "backorder_message_id" and value is None))
            if not valid:
                raise unprocessable(f"Invalid {name}", {name: f"must be a {kind.__name__}"})
        product, key = resolve_item(sb, store_hash, identity)
        plan.append((product["id"], key, values))
    with sb.db.transaction():
        for product_id, key, values in plan:
            _item_settings(sb, store_hash, product_id, key, **values)
            sb.emit(store_hash, "store/channel/1/inventory/product/settings_changed",
                    {"product_id": product_id, "variant_id": key or None, "location_id": 1})
    return {"transaction_id": str(uuid.uuid4())}


def stock_position(sb: Sandbox, store_hash: str, product: dict[str, Any], variant_id: int | None
                   ) -> dict[str, Any]:
    """What can be sold for one line: on hand, backorder room, and whether stock applies at all."""
    tracking = product["inventory_tracking"]
    key = 0
    if tracking == "variant" and product["base_variant_id"] is None:
        key = variant_id or 0
    variants = variants_of(sb, [product["id"]])[product["id"]]
    if tracking == "none" or (key == 0 and tracking == "variant" and product["base_variant_id"] is None):
        return {"tracked": False, "key": key, "on_hand": None, "backorder_room": None, "settings": None}
    settings = _item_settings(sb, store_hash, product["id"], key)
    onhand = on_hand(product, variants, key)
    room = max(settings["backorder_limit"] - settings["qty_backordered"], 0)
    return {"tracked": True, "key": key, "on_hand": onhand, "backorder_room": room, "settings": settings}
