"""Inventory: items per product or variant at the one location, absolute and relative
adjustments, location settings, and what an order line can take from stock."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sandbox.bigcommerce.catalog import apply_variant_fields, emit_product_inventory, mirror_base_variant
from sandbox.bigcommerce.catalog_fields import MAX_LEVEL, int_list, is_int, split_csv
from sandbox.bigcommerce.catalog_store import item_settings, product_row, variant_row, variants_of
from sandbox.bigcommerce.core import Sandbox, iso_now
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import ApiError, not_found, unprocessable

DEFAULT_LOCATION = {"location_id": 1, "location_code": "BC-LOCATION-1", "location_name": "Default location"}


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
    item = product if key == 0 else next(v for v in variants if v["id"] == key)
    level: int = item["inventory_level"]
    return level


def location_entry(sb: Sandbox, store_hash: str, product: dict[str, Any], variants: list[dict[str, Any]], key: int,
                   native: bool) -> dict[str, Any]:
    settings = item_settings(sb, store_hash, product["id"], key)
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
    clauses: list[str] = ["store_hash = ?"]
    args: list[Any] = [store_hash]
    if "product_id:in" in params:
        ids = int_list(params["product_id:in"], "product_id:in")
        clauses.append(f"id IN ({','.join('?' * len(ids)) or 'NULL'})")
        args += ids
    if "location_id:in" in params and 1 not in int_list(params["location_id:in"], "location_id:in"):
        return []
    products = [json.loads(r[0]) for r in sb.db.all(f"SELECT doc FROM products WHERE {' AND '.join(clauses)} "
                                                    "ORDER BY id", args)]
    grouped = variants_of(sb, [p["id"] for p in products])
    skus = set(split_csv(params["sku:in"])) if "sku:in" in params else None
    variant_ids = set(int_list(params["variant_id:in"], "variant_id:in")) if "variant_id:in" in params else None
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
            mirror_base_variant(sb, product)
        emit_product_inventory(sb, store_hash, product, method=method,
                               value=level if method == "absolute" else level - before,
                               scope=f"store/product/{scope_suffix}")
        return
    variant = variant_row(sb, store_hash, key)
    apply_variant_fields(sb, store_hash, variant, {"inventory_level": level}, method=method,
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
            if value is not None and (not is_int(value) or abs(value) > MAX_LEVEL):
                raise unprocessable(f"Invalid {name}", {name: "must be an integer within 0..2147483647"})
        if relative and quantity == 0:
            raise unprocessable("Quantity for a relative adjustment cannot be 0", {"quantity": "must not be 0"})
        product, key = resolve_item(sb, store_hash, row)
        settings = item_settings(sb, store_hash, product["id"], key)
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
                item_settings(sb, store_hash, product_id, key, absolute_set=1)
            if new_backordered is not None:
                item_settings(sb, store_hash, product_id, key, qty_backordered=new_backordered)
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
                isinstance(value, str) if kind is str else (is_int(value) and value >= 0) or
                (name == "backorder_message_id" and value is None))
            if not valid:
                raise unprocessable(f"Invalid {name}", {name: f"must be a {kind.__name__}"})
        product, key = resolve_item(sb, store_hash, identity)
        plan.append((product["id"], key, values))
    with sb.db.transaction():
        for product_id, key, values in plan:
            item_settings(sb, store_hash, product_id, key, **values)
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
    settings = item_settings(sb, store_hash, product["id"], key)
    onhand = on_hand(product, variants, key)
    room = max(settings["backorder_limit"] - settings["qty_backordered"], 0)
    return {"tracked": True, "key": key, "on_hand": onhand, "backorder_room": room, "settings": settings}
