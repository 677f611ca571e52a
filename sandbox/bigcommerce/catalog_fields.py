"""Catalog fields as BigCommerce accepts them: product defaults, writable and event-firing
fields, their checks, and the parsing of list and date query parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sandbox.bigcommerce.errors import unprocessable

MAX_LEVEL = 2_147_483_647
MAX_PAGE = 250

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


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


CHECKS: dict[str, tuple[Any, str]] = {
    "name": (lambda v: isinstance(v, str) and 1 <= len(v) <= 250, "must be a string of 1 to 250 characters"),
    "type": (lambda v: v in ("physical", "digital"), "must be one of physical, digital"),
    "sku": (lambda v: isinstance(v, str) and len(v) <= 255, "must be a string of at most 255 characters"),
    "price": (lambda v: is_number(v) and v >= 0, "must be a number >= 0"),
    "sale_price": (lambda v: is_number(v) and v >= 0, "must be a number >= 0"),
    "retail_price": (lambda v: is_number(v) and v >= 0, "must be a number >= 0"),
    "cost_price": (lambda v: is_number(v) and v >= 0, "must be a number >= 0"),
    "weight": (lambda v: is_number(v) and v >= 0, "must be a number >= 0"),
    "inventory_level": (lambda v: is_int(v) and v >= 0, "must be an integer >= 0"),
    "inventory_warning_level": (lambda v: is_int(v) and v >= 0, "must be an integer >= 0"),
    "inventory_tracking": (lambda v: v in ("none", "product", "variant"), "must be one of none, product, variant"),
    "availability": (lambda v: v in ("available", "disabled", "preorder"),
                     "must be one of available, disabled, preorder"),
    "availability_description": (lambda v: isinstance(v, str) and len(v) <= 255, "must be at most 255 characters"),
    "is_visible": (lambda v: isinstance(v, bool), "must be a boolean"),
    "is_price_hidden": (lambda v: isinstance(v, bool), "must be a boolean"),
    "is_preorder_only": (lambda v: isinstance(v, bool), "must be a boolean"),
    "categories": (lambda v: isinstance(v, list) and len(v) <= 1000 and all(is_int(c) for c in v),
                   "must be a list of at most 1000 category ids"),
    "brand_id": (lambda v: is_int(v) and v >= 0, "must be an integer >= 0"),
    "order_quantity_minimum": (lambda v: is_int(v) and v >= 0, "must be an integer >= 0"),
    "order_quantity_maximum": (lambda v: is_int(v) and v >= 0, "must be an integer >= 0"),
    "purchasing_disabled": (lambda v: isinstance(v, bool), "must be a boolean"),
    "purchasing_disabled_message": (lambda v: isinstance(v, str) and len(v) <= 255, "must be at most 255 characters"),
}


def checked_fields(body: dict[str, Any], allowed: set[str] | None = None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in body.items():
        if key in READ_ONLY or key in ("variants", "options"):
            continue
        if allowed is not None and key not in allowed:
            continue
        if allowed is None and key not in PRODUCT_DEFAULTS:
            continue
        if key == "inventory_level" and is_int(value) and value > MAX_LEVEL:
            value = MAX_LEVEL  # the Catalog API clamps overflow; the Inventory API rejects it
        check = CHECKS.get(key)
        if check is not None and not check[0](value):
            errors[key] = f"{key} {check[1]}"
            continue
        clean[key] = value
    if errors:
        raise unprocessable("JSON data is missing or invalid", errors)
    return clean


def split_csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def int_list(value: str, name: str) -> list[int]:
    try:
        return [int(part) for part in split_csv(value)]
    except ValueError as exc:
        raise unprocessable(f"Invalid value for {name}", {name: "must be a list of integers"}) from exc


def parse_utc_iso(value: str, name: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise unprocessable(f"Invalid date for {name}", {name: "must be an ISO-8601 date"}) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(microsecond=0).isoformat()
