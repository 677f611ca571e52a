"""Orders v2 state: placing an order (v2 POST and storefront checkout share this), updates, statuses."""

from __future__ import annotations

import json
from typing import Any

from sandbox.bigcommerce.catalog_store import item_settings, product_row, variants_of
from sandbox.bigcommerce.core import Sandbox, money, rfc2822_now
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import ApiError
from sandbox.bigcommerce.inventory import set_stock, stock_position

ORDER_STATUSES = {
    0: "Incomplete", 1: "Pending", 2: "Shipped", 3: "Partially Shipped", 4: "Refunded", 5: "Cancelled",
    6: "Declined", 7: "Awaiting Payment", 8: "Awaiting Pickup", 9: "Awaiting Shipment", 10: "Completed",
    11: "Awaiting Fulfillment", 12: "Manual Verification Required", 13: "Disputed", 14: "Partially Refunded",
}
# Moving an order into one of these puts its stock back (BigCommerce's refund_order_stock_adjustment).
RETURNING_STATUSES = {4, 5, 6}
OUT_OF_STOCK = "Quantities of one or more products are out of stock or did not meet quantity requirements."


def bad_request(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message)


def status_list() -> list[dict[str, Any]]:
    return [{"id": status_id, "name": name, "system_label": name, "custom_label": name,
             "system_description": name, "order": index}
            for index, (status_id, name) in enumerate(ORDER_STATUSES.items())]


def _resolve_line(sb: Sandbox, store_hash: str, line: Any, index: int) -> dict[str, Any]:
    if not isinstance(line, dict):
        raise bad_request(f"products[{index}] must be an object")
    quantity = line.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise bad_request(f"products[{index}].quantity must be a positive integer")
    if line.get("product_id") is None:
        if not line.get("name"):
            raise bad_request(f"products[{index}] needs product_id or a custom name")
        custom_price: Any = line.get("price_inc_tax", line.get("price_ex_tax", 0))
        price = float(custom_price)
        return {"product": None, "variant": None, "quantity": quantity, "price": price, "name": line["name"],
                "sku": line.get("sku", "")}
    try:
        product, options = product_row(sb, store_hash, int(line["product_id"]))
    except ApiError as exc:
        raise bad_request(f"The product with ID {line['product_id']} was not found", 400) from exc
    variants = variants_of(sb, [product["id"]])[product["id"]]
    variant = None
    if line.get("variant_id") is not None:
        variant = next((v for v in variants if v["id"] == line["variant_id"]), None)
    elif line.get("product_options"):
        chosen = {int(o["id"]): int(o["value"]) for o in line["product_options"]}
        variant = next((v for v in variants if v["option_values"] and
                        {ov["option_id"]: ov["id"] for ov in v["option_values"]} == chosen), None)
    elif product["base_variant_id"] is not None:
        variant = next((v for v in variants if v["id"] == product["base_variant_id"]), None)
    if variant is None:
        raise bad_request(f"products[{index}]: choose a variant of product {product['id']} (variant_id or "
                          "product_options)")
    given: Any = line.get("price_inc_tax", line.get("price_ex_tax"))
    if given is None:
        given = variant["calculated_price"] if variant.get("calculated_price") is not None else \
            product["calculated_price"]
    return {"product": product, "variant": variant, "quantity": quantity, "price": float(given),
            "name": product["name"], "sku": variant["sku"] or product["sku"], "options": options}


def _stock_plan(sb: Sandbox, store_hash: str, lines: list[dict[str, Any]], native: bool) -> list[dict[str, Any]]:
    """Check every line before writing anything; a shortfall is BigCommerce's 409 OutOfStock body."""
    errors = []
    demand: dict[tuple[int, int], int] = {}
    plans = []
    for line in lines:
        product = line["product"]
        if product is None:
            plans.append({"tracked": False})
            continue
        position = stock_position(sb, store_hash, product, line["variant"]["id"])
        if not position["tracked"]:
            plans.append({"tracked": False})
            continue
        key = (product["id"], position["key"])
        already = demand.get(key, 0)
        demand[key] = already + line["quantity"]
        available = max(position["on_hand"] - already, 0)
        room = position["backorder_room"] if native else 0
        taken_room = max(already - position["on_hand"], 0)
        room = max(room - taken_room, 0)
        if line["quantity"] > available + room:
            variant_id = line["variant"]["id"]
            message = (f"Insufficient stock of variant(id: {variant_id}), available stock: {available}, "
                       f"available quantity for backorder: {room}. order(id: ), channel(id: 1), location(id: 1).")
            errors.append({"type": "OutOfStock", "message": message, "variant_id": variant_id, "location_id": 1,
                           "available_quantity": available, "available_quantity_for_backorder": room})
        ready = min(line["quantity"], available)
        plans.append({"tracked": True, "key": position["key"], "ready": ready,
                      "backordered": line["quantity"] - ready})
    if errors:
        raise ApiError(409, OUT_OF_STOCK, details={"errors": errors})
    return plans


def create_order(sb: Sandbox, store_hash: str, body: Any, *, source: str = "external",
                 cart_id: str | None = None) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be an object")
    billing = body.get("billing_address")
    if not isinstance(billing, dict) or not billing.get("email"):
        raise bad_request("billing_address with an email is required")
    raw_lines = body.get("products")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise bad_request("products is required")
    status_id = body.get("status_id", 1)
    if status_id not in ORDER_STATUSES:
        raise bad_request(f"status_id {status_id} is not valid")
    store = sb.store(store_hash)
    native = bool(store["native_backorders"])
    lines = [_resolve_line(sb, store_hash, line, i) for i, line in enumerate(raw_lines)]
    plans = _stock_plan(sb, store_hash, lines, native)
    now = rfc2822_now()
    subtotal = sum(line["price"] * line["quantity"] for line in lines)
    with sb.db.transaction():
        order_id = sb.db.insert("INSERT INTO orders (store_hash, doc) VALUES (?, '{}')", (store_hash,))
        order = {
            "id": order_id, "customer_id": int(body.get("customer_id", 0)), "date_created": now,
            "date_modified": now, "date_shipped": "", "status_id": status_id, "status": ORDER_STATUSES[status_id],
            "custom_status": ORDER_STATUSES[status_id], "subtotal_ex_tax": money(subtotal),
            "subtotal_inc_tax": money(subtotal), "subtotal_tax": money(0), "base_shipping_cost": money(0),
            "shipping_cost_ex_tax": money(0), "shipping_cost_inc_tax": money(0), "total_ex_tax": money(subtotal),
            "total_inc_tax": money(subtotal), "total_tax": money(0),
            "items_total": sum(line["quantity"] for line in lines), "items_shipped": 0,
            "payment_method": body.get("payment_method", "Manual"), "payment_status": "",
            "refunded_amount": money(0), "order_is_digital": False, "ip_address": "", "geoip_country": "",
            "currency_code": "USD", "currency_exchange_rate": "1.0000000000", "default_currency_code": "USD",
            "staff_notes": body.get("staff_notes", ""), "customer_message": body.get("customer_message", ""),
            "discount_amount": money(0), "coupon_discount": money(0), "is_deleted": False,
            "is_email_opt_in": False, "order_source": source, "channel_id": int(body.get("channel_id", 1)),
            "external_source": body.get("external_source"), "external_id": body.get("external_id"),
            "cart_id": cart_id or "", "customer_locale": body.get("customer_locale", "en"),
            "billing_address": {
                "first_name": billing.get("first_name", ""), "last_name": billing.get("last_name", ""),
                "company": billing.get("company", ""), "street_1": billing.get("street_1", ""),
                "street_2": billing.get("street_2", ""), "city": billing.get("city", ""),
                "state": billing.get("state", ""), "zip": billing.get("zip", ""),
                "country": billing.get("country", "United States"),
                "country_iso2": billing.get("country_iso2", "US"), "phone": billing.get("phone", ""),
                "email": billing["email"], "form_fields": []},
        }
        sb.db.execute("UPDATE orders SET doc = ? WHERE id = ?", (dumps(order), order_id))
        for line, plan in zip(lines, plans, strict=True):
            _insert_order_product(sb, store_hash, order_id, line, plan, native)
            if plan["tracked"]:
                product, _ = product_row(sb, store_hash, line["product"]["id"])
                position = stock_position(sb, store_hash, product, line["variant"]["id"])
                set_stock(sb, store_hash, product, plan["key"], position["on_hand"] - plan["ready"],
                          method="relative", scope_suffix="inventory/order/updated")
                if plan["backordered"]:
                    item_settings(sb, store_hash, product["id"], plan["key"],
                                  qty_backordered=position["settings"]["qty_backordered"] + plan["backordered"])
        sb.emit(store_hash, "store/order/created", {"type": "order", "id": order_id})
    return order


def _insert_order_product(sb: Sandbox, store_hash: str, order_id: int, line: dict[str, Any],
                          plan: dict[str, Any], native: bool) -> None:
    product, variant = line["product"], line["variant"]
    total = line["price"] * line["quantity"]
    options = []
    if variant is not None:
        for value in variant["option_values"]:
            options.append({"id": value["id"], "option_id": value["option_id"],
                            "product_option_id": value["option_id"], "display_name": value["option_display_name"],
                            "display_value": value["label"], "value": str(value["id"]), "type": "Multiple choice",
                            "name": value["option_display_name"], "display_name_customer": value["option_display_name"],
                            "display_name_merchant": value["option_display_name"],
                            "display_value_customer": value["label"], "display_value_merchant": value["label"]})
    row_id = sb.db.insert("INSERT INTO order_products (order_id, store_hash, doc) VALUES (?, ?, '{}')",
                          (order_id, store_hash))
    doc = {
        "id": row_id, "order_id": order_id, "product_id": product["id"] if product else 0,
        "variant_id": variant["id"] if variant else 0, "order_address_id": 0, "name": line["name"],
        "name_customer": line["name"], "name_merchant": line["name"], "sku": line["sku"], "upc": "",
        "type": product["type"] if product else "physical", "base_price": money(line["price"]),
        "price_ex_tax": money(line["price"]), "price_inc_tax": money(line["price"]), "price_tax": money(0),
        "base_total": money(total), "total_ex_tax": money(total), "total_inc_tax": money(total),
        "total_tax": money(0), "quantity": line["quantity"], "base_cost_price": money(0),
        "cost_price_inc_tax": money(0), "cost_price_ex_tax": money(0), "weight": product["weight"] if product else 0,
        "is_refunded": False, "quantity_refunded": 0, "refund_amount": money(0), "return_id": 0,
        "quantity_shipped": 0, "fixed_shipping_cost": money(0), "option_set_id": None,
        "parent_order_product_id": None, "is_bundled_product": False, "bin_picking_number": "",
        "external_id": None, "fulfillment_source": "", "brand": "", "applied_discounts": [],
        "product_options": options, "configurable_fields": [],
    }
    if native:
        doc["quantity_backordered"] = plan.get("backordered", 0)
    sb.db.execute("UPDATE order_products SET doc = ? WHERE id = ?", (dumps(doc), row_id))


def order_doc(sb: Sandbox, store_hash: str, order_id: int) -> dict[str, Any]:
    return sb.db.required_doc("SELECT doc FROM orders WHERE store_hash = ? AND id = ?", (store_hash, order_id),
                              missing="The requested resource was not found.")


def with_links(order: dict[str, Any], api_base: str) -> dict[str, Any]:
    base = f"{api_base}/v2/orders/{order['id']}"
    return {**order,
            "products": {"url": f"{base}/products", "resource": f"/orders/{order['id']}/products"},
            "shipping_addresses": {"url": f"{base}/shipping_addresses",
                                   "resource": f"/orders/{order['id']}/shipping_addresses"},
            "coupons": {"url": f"{base}/coupons", "resource": f"/orders/{order['id']}/coupons"}}


def update_order(sb: Sandbox, store_hash: str, order_id: int, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be an object")
    order = order_doc(sb, store_hash, order_id)
    previous_status = order["status_id"]
    if "status_id" in body:
        if body["status_id"] not in ORDER_STATUSES:
            raise bad_request(f"status_id {body['status_id']} is not valid")
        order["status_id"] = body["status_id"]
        order["status"] = order["custom_status"] = ORDER_STATUSES[body["status_id"]]
    for key in ("staff_notes", "customer_message", "payment_method", "external_id"):
        if key in body:
            if not isinstance(body[key], str | None):
                raise bad_request(f"{key} must be a string")
            order[key] = body[key]
    with sb.db.transaction():
        for line in body.get("products") or []:
            row = sb.db.one("SELECT doc FROM order_products WHERE order_id = ? AND id = ?", (order_id, line.get("id")))
            if row is None:
                raise bad_request(f"Order product {line.get('id')} was not found")
            product_doc = json.loads(row[0])
            for key in ("quantity", "quantity_backordered"):
                if key in line:
                    product_doc[key] = line[key]
            sb.db.execute("UPDATE order_products SET doc = ? WHERE id = ?", (dumps(product_doc), product_doc["id"]))
        order["date_modified"] = rfc2822_now()
        if (order["status_id"] in RETURNING_STATUSES and previous_status not in RETURNING_STATUSES
                and sb.store(store_hash)["inventory_settings"]["refund_order_stock_adjustment"]):
            _return_stock(sb, store_hash, order_id)
        sb.db.execute("UPDATE orders SET doc = ? WHERE id = ?", (dumps(order), order_id))
        sb.emit(store_hash, "store/order/updated", {"type": "order", "id": order_id})
        if order["status_id"] != previous_status:
            sb.emit(store_hash, "store/order/statusUpdated", {"type": "order", "id": order_id, "status": {
                "previous_status_id": previous_status, "new_status_id": order["status_id"]}})
    return order


def _return_stock(sb: Sandbox, store_hash: str, order_id: int) -> None:
    """A cancelled or refunded order puts its tracked, non-backordered units back (inside the caller's transaction)."""
    for row in sb.db.all("SELECT doc FROM order_products WHERE order_id = ?", (order_id,)):
        line = json.loads(row[0])
        if not line["product_id"]:
            continue
        try:
            product, _ = product_row(sb, store_hash, line["product_id"])
        except ApiError:
            continue
        position = stock_position(sb, store_hash, product, line["variant_id"] or None)
        if not position["tracked"]:
            continue
        backordered = line.get("quantity_backordered") or 0
        returned = line["quantity"] - backordered
        if returned:
            set_stock(sb, store_hash, product, position["key"], position["on_hand"] + returned,
                      method="relative", scope_suffix="inventory/order/updated")
        if backordered:
            item_settings(sb, store_hash, product["id"], position["key"], qty_backordered=max(
                position["settings"]["qty_backordered"] - backordered, 0))


def order_products(sb: Sandbox, store_hash: str, order_id: int, page: int, limit: int) -> list[dict[str, Any]]:
    order_doc(sb, store_hash, order_id)
    rows = sb.db.all("SELECT doc FROM order_products WHERE order_id = ? ORDER BY id LIMIT ? OFFSET ?",
                     (order_id, limit, (page - 1) * limit))
    return [json.loads(row[0]) for row in rows]
