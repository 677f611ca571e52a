"""Catalog writes: products, variants, brands and categories, and the webhooks they fire.

Inventory semantics follow BigCommerce: `inventory_tracking` is none|product|variant; the level is
kept (and writable) while tracking is none; orders decrement stock only while tracking is on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sandbox.bigcommerce.catalog_fields import (
    PRODUCT_DEFAULTS,
    UPDATE_FIRING,
    VARIANT_WRITABLE,
    checked_fields,
    is_int,
)
from sandbox.bigcommerce.catalog_store import item_settings, product_row, variant_row
from sandbox.bigcommerce.core import Sandbox, iso_now
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import ApiError, not_found, unprocessable


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


def _calculated(doc: dict[str, Any]) -> int | float:
    price: int | float = doc["sale_price"] if doc.get("sale_price") else doc["price"]
    return price


def _new_variant(sb: Sandbox, store_hash: str, product: dict[str, Any], spec: dict[str, Any],
                 option_values: list[dict[str, Any]]) -> dict[str, Any]:
    variant_id = sb.db.insert("INSERT INTO variants (store_hash, product_id, doc) VALUES (?, ?, '{}')",
                              (store_hash, product["id"]))
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
    fields = checked_fields(body)
    _check_references(sb, store_hash, fields)
    _check_unique(sb, store_hash, fields, None)
    variant_specs = body.get("variants") or []
    if not isinstance(variant_specs, list) or len(variant_specs) > 600:
        raise unprocessable("JSON data is missing or invalid", {"variants": "must be a list of at most 600"})
    now = iso_now()
    sb.products_changed(store_hash)
    with sb.db.transaction():
        product_id = sb.db.insert("INSERT INTO products (store_hash, doc) VALUES (?, '{}')", (store_hash,))
        doc = {"id": product_id, **PRODUCT_DEFAULTS, **fields, "date_created": now, "date_modified": now}
        doc["calculated_price"] = _calculated(doc)
        if not doc["custom_url"]["url"]:
            doc["custom_url"] = {"url": f"/products/{product_id}/", "is_customized": False}
        counter = sb.db.scalar("SELECT COALESCE(MAX(id), 0) FROM variants") + 1000
        options, option_values = _build_options(product_id, variant_specs, [counter])
        if variant_specs and options:
            for spec, values in zip(variant_specs, option_values, strict=True):
                _new_variant(sb, store_hash, doc, checked_fields(spec, VARIANT_WRITABLE), values)
            if doc["inventory_tracking"] == "variant":
                doc["inventory_level"] = sum(v.get("inventory_level", 0) for v in variant_specs)
        else:
            doc["base_variant_id"] = _new_variant(sb, store_hash, doc, {}, [])["id"]
        sb.db.execute("UPDATE products SET doc = ?, options = ? WHERE id = ?", (dumps(doc), dumps(options), product_id))
        if "inventory_level" in fields:
            item_settings(sb, store_hash, product_id, 0, absolute_set=1)
        if fire:
            sb.emit(store_hash, "store/product/created", {"type": "product", "id": product_id})
    return doc


def update_product(sb: Sandbox, store_hash: str, product_id: int, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
    doc, _ = product_row(sb, store_hash, product_id)
    fields = checked_fields(body)
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
        mirror_base_variant(sb, doc)
    if "inventory_level" in fields:
        item_settings(sb, store_hash, doc["id"], 0, absolute_set=1)
    firing = changed & UPDATE_FIRING
    if doc["inventory_tracking"] == "none" and before["inventory_tracking"] == "none":
        firing.discard("inventory_level")
    if firing:
        sb.emit(store_hash, "store/product/updated", {"type": "product", "id": doc["id"]})
    if level_changed:
        emit_product_inventory(sb, store_hash, doc, method=method,
                               value=doc["inventory_level"] if method == "absolute"
                               else doc["inventory_level"] - before["inventory_level"],
                               scope="store/product/inventory/updated")
    return doc


def mirror_base_variant(sb: Sandbox, product: dict[str, Any]) -> None:
    variant = sb.db.doc("SELECT doc FROM variants WHERE id = ?", (product["base_variant_id"],))
    if variant is not None:
        variant["inventory_level"] = product["inventory_level"]
        sb.db.execute("UPDATE variants SET doc = ? WHERE id = ?", (dumps(variant), variant["id"]))


def emit_product_inventory(sb: Sandbox, store_hash: str, product: dict[str, Any], *, method: str, value: int,
                           scope: str) -> None:
    # Products with variants fire product inventory events only when tracked by product.
    if product["base_variant_id"] is None and product["inventory_tracking"] != "product":
        return
    sb.emit(store_hash, scope, {"type": "product", "id": product["id"],
                                "inventory": {"product_id": product["id"], "method": method, "value": value}})


def _batch_items(body: Any, most: int) -> Iterator[dict[str, Any]]:
    """A batch update's items, each checked for an integer id as it is reached (so an earlier item's
    lookup fails before a later item's id does); the batch must be a non-empty array of at most `most`."""
    if not isinstance(body, list) or not body:
        raise unprocessable("JSON data is missing or invalid", {"body": "must be a non-empty array"})
    if len(body) > most:
        raise ApiError(413, f"The request payload is too large. The maximum items allowed in the array is {most}")
    for index, item in enumerate(body):
        if not isinstance(item, dict) or not is_int(item.get("id")):
            raise unprocessable("JSON data is missing or invalid", {f"[{index}].id": "id is required"})
        yield item


def batch_update_products(sb: Sandbox, store_hash: str, body: Any) -> list[dict[str, Any]]:
    prepared = []
    for item in _batch_items(body, 10):
        doc, _ = product_row(sb, store_hash, item["id"])
        fields = checked_fields(item)
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
    fields = checked_fields(body, VARIANT_WRITABLE)
    with sb.db.transaction():
        return apply_variant_fields(sb, store_hash, variant, fields, method="absolute")


def apply_variant_fields(sb: Sandbox, store_hash: str, variant: dict[str, Any], fields: dict[str, Any], *,
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
        item_settings(sb, store_hash, product["id"], variant["id"], absolute_set=1)
    if fields:
        sb.emit(store_hash, "store/sku/updated", {"type": "sku", "id": variant["id"]})
    if variant["inventory_level"] != before_level:
        total = sb.db.scalar("SELECT COALESCE(SUM(json_extract(doc, '$.inventory_level')), 0) FROM variants "
                          "WHERE product_id = ?", (product["id"],))
        product["inventory_level"] = total
        product["date_modified"] = iso_now()
        sb.db.execute("UPDATE products SET doc = ? WHERE id = ?", (dumps(product), product["id"]))
        if product["inventory_tracking"] == "variant":
            value = variant["inventory_level"] if method == "absolute" else variant["inventory_level"] - before_level
            sb.emit(store_hash, scope, {"type": "sku", "id": variant["id"], "inventory": {
                "product_id": product["id"], "method": method, "value": value, "variant_id": variant["id"]}})
    return variant


def batch_update_variants(sb: Sandbox, store_hash: str, body: Any) -> list[dict[str, Any]]:
    prepared = []
    for item in _batch_items(body, 50):
        prepared.append((variant_row(sb, store_hash, item["id"]), checked_fields(item, VARIANT_WRITABLE)))
    with sb.db.transaction():
        return [apply_variant_fields(sb, store_hash, v, f, method="absolute") for v, f in prepared]


# ----- brands and categories -----
def create_brand(sb: Sandbox, store_hash: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
        raise unprocessable("JSON data is missing or invalid", {"name": "name is required"})
    if sb.db.one("SELECT 1 FROM brands WHERE store_hash = ? AND json_extract(doc, '$.name') = ?",
                 (store_hash, body["name"])):
        raise ApiError(409, "Brand name is a duplicate", {"name": "Brand name is a duplicate"})
    with sb.db.transaction():
        brand_id = sb.db.insert("INSERT INTO brands (store_hash, doc) VALUES (?, '{}')", (store_hash,))
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
        cat_id = sb.db.insert("INSERT INTO categories (store_hash, doc) VALUES (?, '{}')", (store_hash,))
        doc = {"category_id": cat_id, "parent_id": parent_id or 0, "tree_id": 1, "name": name,
               "description": body.get("description", ""), "views": 0, "sort_order": body.get("sort_order", 0),
               "page_title": "", "meta_keywords": [], "meta_description": "", "layout_file": "category.html",
               "image_url": "", "is_visible": body.get("is_visible", True), "search_keywords": "",
               "default_product_sort": "use_store_settings",
               "url": {"path": f"/{name.lower().replace(' ', '-')}/", "is_customized": False}}
        sb.db.execute("UPDATE categories SET doc = ? WHERE id = ?", (dumps(doc), cat_id))
    return doc
