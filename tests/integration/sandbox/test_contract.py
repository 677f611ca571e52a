"""The sandbox's responses hold BigCommerce's documented shapes (shared/bigcommerce/REFERENCE.md)."""

from __future__ import annotations

import re

RATE_HEADERS = ("X-Rate-Limit-Time-Window-Ms", "X-Rate-Limit-Time-Reset-Ms", "X-Rate-Limit-Requests-Quota",
                "X-Rate-Limit-Requests-Left")


def assert_v3_error(response, status):
    assert response.status_code == status
    body = response.json()
    assert set(body) >= {"status", "title", "type", "errors"}
    assert body["status"] == status and isinstance(body["title"], str) and body["title"]
    assert isinstance(body["errors"], dict)
    return body


def test_product_list_is_wrapped_with_pagination_and_rate_headers(sandbox):
    response = sandbox.api("GET", "/v3/catalog/products", params={"limit": 5, "page": 2})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "meta"}
    pagination = body["meta"]["pagination"]
    assert set(pagination) == {"total", "count", "per_page", "current_page", "total_pages", "links"}
    assert pagination["per_page"] == 5 and pagination["current_page"] == 2 and pagination["count"] == 5
    assert pagination["total"] >= 39 and pagination["total_pages"] == -(-pagination["total"] // 5)
    assert pagination["links"]["previous"] == "?page=1&limit=5"
    assert pagination["links"]["current"] == "?page=2&limit=5"
    assert pagination["links"]["next"] == "?page=3&limit=5"
    for header in RATE_HEADERS:
        assert int(response.headers[header]) >= 0
    assert response.headers["X-Rate-Limit-Requests-Quota"] == "150"
    assert response.headers["X-Rate-Limit-Time-Window-Ms"] == "30000"


def test_product_fields_have_documented_types(sandbox):
    product = sandbox.api("GET", "/v3/catalog/products", params={"limit": 1}).json()["data"][0]
    expected = {"id": int, "name": str, "type": str, "sku": str, "inventory_level": int,
                "inventory_warning_level": int, "inventory_tracking": str, "availability": str,
                "availability_description": str, "is_visible": bool, "categories": list, "brand_id": int,
                "order_quantity_minimum": int, "order_quantity_maximum": int, "is_price_hidden": bool,
                "price_hidden_label": str, "date_created": str, "date_modified": str, "preorder_message": str,
                "is_preorder_only": bool}
    for name, kind in expected.items():
        assert isinstance(product[name], kind), name
    assert product["inventory_tracking"] in ("none", "product", "variant")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", product["date_modified"])
    assert "base_variant_id" in product and "preorder_release_date" in product


def test_limit_is_capped_at_250(sandbox):
    sandbox.generate_products(300)
    body = sandbox.api("GET", "/v3/catalog/products", params={"limit": 1000}).json()
    assert body["meta"]["pagination"]["per_page"] == 250 and len(body["data"]) == 250


def test_documented_product_filters(sandbox):
    def ids(**params):
        return [p["id"] for p in sandbox.api("GET", "/v3/catalog/products", params=params).json()["data"]]

    products = sandbox.api("GET", "/v3/catalog/products", params={"limit": 250}).json()["data"]
    first, second = products[0], products[1]
    assert ids(**{"id:in": f"{first['id']},{second['id']}"}) == [first["id"], second["id"]]
    assert ids(sku=first["sku"]) == [first["id"]]
    assert ids(name=first["name"]) == [first["id"]]
    assert first["id"] in ids(keyword=first["name"].split()[0])
    assert ids(is_visible="false") == [p["id"] for p in products if not p["is_visible"]]
    assert ids(availability="preorder") == [p["id"] for p in products if p["availability"] == "preorder"]
    assert ids(**{"inventory_level:min": 10, "inventory_level:max": 30, "limit": 250}) == [
        p["id"] for p in products if 10 <= p["inventory_level"] <= 30]
    assert ids(**{"inventory_level:greater": 100}) == [p["id"] for p in products if p["inventory_level"] > 100]
    category = first["categories"][0]
    assert ids(**{"categories:in": str(category)}) == [p["id"] for p in products if category in p["categories"]]
    assert ids(brand_id=first["brand_id"], limit=250) == [p["id"] for p in products
                                                          if p["brand_id"] == first["brand_id"]]
    assert ids(**{"date_modified:min": "2000-01-01T00:00:00Z", "limit": 250}) == [p["id"] for p in products]
    assert ids(**{"date_modified:min": "2999-01-01"}) == []


def test_include_variants_and_include_fields(sandbox):
    body = sandbox.api("GET", "/v3/catalog/products", params={
        "include": "variants", "include_fields": "name,inventory_tracking", "inventory_tracking": "variant"}).json()
    assert body["data"]
    for product in body["data"]:
        assert set(product) == {"id", "name", "inventory_tracking", "variants"}
        assert len(product["variants"]) >= 2
        variant = product["variants"][0]
        assert {"id", "product_id", "sku", "inventory_level", "purchasing_disabled", "option_values"} <= set(variant)
        assert variant["option_values"][0].keys() >= {"id", "label", "option_id", "option_display_name"}


def test_missing_product_is_a_v3_404(sandbox):
    response = sandbox.api("GET", "/v3/catalog/products/999999999")
    assert_v3_error(response, 404)
    for header in RATE_HEADERS:
        assert header in response.headers


def test_invalid_product_is_a_v3_422_naming_the_field(sandbox):
    product_id = sandbox.api("GET", "/v3/catalog/products").json()["data"][0]["id"]
    body = assert_v3_error(sandbox.api("PUT", f"/v3/catalog/products/{product_id}",
                                       json={"inventory_tracking": "sometimes"}), 422)
    assert "inventory_tracking" in body["errors"]


def test_batch_over_ten_products_is_rejected(sandbox):
    products = sandbox.api("GET", "/v3/catalog/products", params={"limit": 11}).json()["data"]
    response = sandbox.api("PUT", "/v3/catalog/products", json=[{"id": p["id"], "is_visible": True} for p in products])
    assert_v3_error(response, 413)


def test_bad_token_is_401(sandbox):
    response = sandbox.api("GET", "/v3/catalog/products", headers={"X-Auth-Token": "nope"})
    assert_v3_error(response, 401)


def test_quota_spent_gives_429_with_reset_header(sandbox):
    sandbox.set_rate_limit(2, window_ms=60_000)
    assert sandbox.api("GET", "/v2/store").status_code == 200
    second = sandbox.api("GET", "/v2/store")
    assert second.headers["X-Rate-Limit-Requests-Left"] == "0"
    limited = sandbox.api("GET", "/v3/catalog/products")
    assert_v3_error(limited, 429)
    assert 0 < int(limited.headers["X-Rate-Limit-Time-Reset-Ms"]) <= 60_000
    assert limited.headers["X-Rate-Limit-Requests-Quota"] == "2"
    assert int(limited.headers["X-Retry-After"]) >= 1


def test_v2_orders_are_bare_objects_and_arrays(sandbox):
    product = sandbox.api("GET", "/v3/catalog/products", params={"inventory_tracking": "none"}).json()["data"][0]
    created = sandbox.api("POST", "/v2/orders", json={
        "billing_address": {"first_name": "Jane", "last_name": "Doe", "email": "jane@example.com"},
        "products": [{"product_id": product["id"], "quantity": 2}]})
    assert created.status_code == 201
    order = created.json()
    assert isinstance(order["id"], int) and order["status_id"] == 1 and order["status"] == "Pending"
    assert re.match(r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$", order["date_created"])
    assert order["billing_address"]["email"] == "jane@example.com"
    assert order["products"]["resource"] == f"/orders/{order['id']}/products"
    assert isinstance(order["total_inc_tax"], str)
    lines = sandbox.api("GET", f"/v2/orders/{order['id']}/products").json()
    assert isinstance(lines, list) and lines[0]["product_id"] == product["id"] and lines[0]["quantity"] == 2
    assert {"id", "order_id", "variant_id", "name", "sku", "quantity", "product_options"} <= set(lines[0])
    assert sandbox.api("GET", f"/v2/orders/{order['id']}/products", params={"page": 2}).status_code == 204
    missing = sandbox.api("GET", "/v2/orders/999999999")
    assert missing.status_code == 404 and isinstance(missing.json(), list) and missing.json()[0]["status"] == 404
    statuses = sandbox.api("GET", "/v2/order_statuses").json()
    assert {s["id"]: s["name"] for s in statuses}[11] == "Awaiting Fulfillment"


def test_order_beyond_tracked_stock_is_409_out_of_stock(sandbox):
    product = sandbox.api("POST", "/v3/catalog/products", json={
        "name": "Scarce thing", "type": "physical", "weight": 1, "price": 5, "inventory_tracking": "product",
        "inventory_level": 3}).json()["data"]
    sandbox.enable_native_backorders()
    sandbox.api("PUT", "/v3/inventory/locations/1/items", json={"settings": [
        {"identity": {"product_id": product["id"]}, "backorder_limit": 4}]})
    response = sandbox.api("POST", "/v2/orders", json={
        "billing_address": {"email": "a@example.com"}, "products": [{"product_id": product["id"], "quantity": 8}]})
    assert response.status_code == 409
    error = response.json()[0]
    assert error["status"] == 409
    assert error["message"] == ("Quantities of one or more products are out of stock or did not meet quantity "
                                "requirements.")
    detail = error["details"]["errors"][0]
    assert detail["type"] == "OutOfStock" and detail["location_id"] == 1
    assert detail["available_quantity"] == 3 and detail["available_quantity_for_backorder"] == 4
    assert detail["variant_id"] == product["base_variant_id"]


def test_native_backorder_order_records_quantity_backordered(sandbox):
    product = sandbox.api("POST", "/v3/catalog/products", json={
        "name": "Backorderable", "type": "physical", "weight": 1, "price": 5, "inventory_tracking": "product",
        "inventory_level": 2}).json()["data"]
    sandbox.enable_native_backorders()
    sandbox.api("PUT", "/v3/inventory/locations/1/items", json={"settings": [
        {"identity": {"product_id": product["id"]}, "backorder_limit": 10}]})
    order = sandbox.api("POST", "/v2/orders", json={
        "billing_address": {"email": "a@example.com"},
        "products": [{"product_id": product["id"], "quantity": 5}]}).json()
    line = sandbox.api("GET", f"/v2/orders/{order['id']}/products").json()[0]
    assert line["quantity_backordered"] == 3
    item = sandbox.api("GET", "/v3/inventory/items", params={"product_id:in": product["id"]}).json()["data"][0]
    location = item["locations"][0]
    assert location["total_inventory_onhand"] == 0 and location["qty_backordered"] == 3
    assert location["settings"]["backorder_limit"] == 10 and location["available_to_sell"] == 7


def test_inventory_item_shape_and_adjustment_rules(sandbox):
    product = sandbox.api("POST", "/v3/catalog/products", json={
        "name": "Never adjusted", "type": "physical", "weight": 1, "price": 5,
        "inventory_tracking": "product"}).json()["data"]
    relative = sandbox.api("POST", "/v3/inventory/adjustments/relative", json={
        "items": [{"location_id": 1, "product_id": product["id"], "quantity": 2}]})
    assert relative.status_code == 422
    assert relative.json()["title"] == "requires absolute adjustment before relative"
    absolute = sandbox.api("PUT", "/v3/inventory/adjustments/absolute", json={
        "reason": "count", "items": [{"location_id": 1, "product_id": product["id"], "quantity": 10}]})
    assert absolute.status_code == 200 and isinstance(absolute.json()["transaction_id"], str)
    assert sandbox.api("POST", "/v3/inventory/adjustments/relative", json={
        "items": [{"location_id": 1, "product_id": product["id"], "quantity": -4}]}).status_code == 200
    body = sandbox.api("GET", "/v3/inventory/items", params={"product_id:in": product["id"]}).json()
    item = body["data"][0]
    assert item["identity"] == {"sku": "", "variant_id": product["base_variant_id"], "product_id": product["id"],
                                "sku_id": None}
    location = item["locations"][0]
    assert {"location_id", "location_code", "location_name", "available_to_sell", "total_inventory_onhand",
            "location_enabled", "settings"} <= set(location)
    assert location["total_inventory_onhand"] == 6
    assert set(location["settings"]) >= {"safety_stock", "is_in_stock", "warning_level", "bin_picking_number"}
    assert "pagination" in body["meta"]


def test_variant_tracked_item_rejects_product_identifier(sandbox):
    product = sandbox.api("GET", "/v3/catalog/products", params={"inventory_tracking": "variant",
                                                                 "include": "variants"}).json()["data"][0]
    response = sandbox.api("PUT", "/v3/inventory/adjustments/absolute", json={
        "items": [{"location_id": 1, "product_id": product["id"], "quantity": 1}]})
    assert response.status_code == 422 and "tracked by variant" in response.json()["title"]
    tracked_by_product = sandbox.api("GET", "/v3/catalog/products", params={
        "name": "Apron Variant Tracked by Product", "include": "variants"}).json()["data"][0]
    variant_id = tracked_by_product["variants"][0]["id"]
    response = sandbox.api("PUT", "/v3/inventory/adjustments/absolute", json={
        "items": [{"location_id": 1, "variant_id": variant_id, "quantity": 1}]})
    assert response.status_code == 422
    assert response.json()["title"] == (f"Item with variant_id {variant_id} is tracked by product, please update "
                                        "stock by product id")


def test_hook_and_script_shapes(sandbox):
    hook = sandbox.api("POST", "/v3/hooks", json={
        "scope": "store/order/*", "destination": "https://app.example.com/webhooks/bigcommerce",
        "is_active": True, "headers": {"X-App-Secret": "s3cr3t"}})
    assert hook.status_code == 200
    body = hook.json()
    assert set(body) == {"data", "meta"}
    assert set(body["data"]) == {"id", "client_id", "store_hash", "scope", "destination", "headers", "is_active",
                                 "created_at", "updated_at"}
    assert isinstance(body["data"]["created_at"], int) and body["data"]["headers"] == {"X-App-Secret": "s3cr3t"}
    duplicate = sandbox.api("POST", "/v3/hooks", json={
        "scope": "store/order/*", "destination": "https://app.example.com/webhooks/bigcommerce"})
    assert_v3_error(duplicate, 422)
    insecure = sandbox.api("POST", "/v3/hooks", json={"scope": "store/order/*",
                                                      "destination": "http://app.example.com/hook"})
    assert_v3_error(insecure, 422)
    script = sandbox.api("POST", "/v3/content/scripts", json={
        "name": "Backorder", "kind": "src", "src": "https://cdn.example.com/bo.js", "load_method": "defer",
        "location": "footer", "visibility": "storefront", "consent_category": "essential"}).json()["data"]
    assert {"uuid", "date_created", "date_modified", "api_client_id", "kind", "src"} <= set(script)
    bad = sandbox.api("POST", "/v3/content/scripts", json={"name": "x", "kind": "script_tag",
                                                           "html": "<div></div>"})
    assert_v3_error(bad, 422)


def test_store_info_and_inventory_settings(sandbox_server):
    store = sandbox_server.create_store(seed_demo=False, timezone="Europe/Berlin")
    info = store.api("GET", "/v2/store").json()
    assert info["timezone"]["name"] == "Europe/Berlin" and isinstance(info["timezone"]["raw_offset"], int)
    assert info["id"] == store.store_hash and info["account_uuid"]
    settings = store.api("GET", "/v3/settings/inventory").json()["data"]
    assert settings["update_stock_behavior"] in ("order_placed", "order_completed_or_shipped")
    assert settings["stock_level_display"] in ("dont_show", "show", "show_when_low")
    assert "show_backorder_availability_prompt" in settings


def test_category_trees_and_brands(sandbox):
    categories = sandbox.api("GET", "/v3/catalog/trees/categories").json()["data"]
    assert {"category_id", "parent_id", "tree_id", "name", "is_visible"} <= set(categories[0])
    assert any(c["parent_id"] for c in categories)
    brands = sandbox.api("GET", "/v3/catalog/brands").json()
    assert brands["data"][0].keys() >= {"id", "name"} and "pagination" in brands["meta"]


def test_pages_follow_offset_semantics_after_the_catalog_changes(sandbox):
    def page(number):
        return [p["id"] for p in sandbox.api("GET", "/v3/catalog/products",
                                             params={"limit": 5, "page": number}).json()["data"]]

    first, second = page(1), page(2)
    assert sandbox.api("DELETE", f"/v3/catalog/products/{first[0]}").status_code == 204
    assert page(2)[:4] == second[1:]
    assert page(1) == first[1:] + [second[0]]
