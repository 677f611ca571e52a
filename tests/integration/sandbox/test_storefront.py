"""The Cornerstone-like storefront: DOM hooks, BCData, injected scripts, Storefront Cart API, checkout."""

from __future__ import annotations

import json
import re

import httpx


def storefront(store) -> httpx.Client:
    return httpx.Client(base_url=store.storefront_url, follow_redirects=True)


def first_product(store, **filters):
    return store.api("GET", "/v3/catalog/products", params={"include": "variants", **filters}).json()["data"][0]


def test_product_page_has_cornerstone_hooks_and_bcdata(sandbox):
    product = first_product(sandbox, inventory_tracking="product", **{"inventory_level:min": 5})
    page = storefront(sandbox).get(f"/products/{product['id']}")
    assert page.status_code == 200
    html = page.text
    for hook in ('class="productView"', f'data-entity-id="{product["id"]}"', "data-cart-item-add",
                 'name="product_id"', f'value="{product["id"]}"', "data-product-stock", 'id="form-action-addToCart"',
                 'name="qty[]"', 'id="add-to-cart-wrapper"', "data-product-sku", "data-product-price-without-tax",
                 "productAttributes-message", "form-field--stock"):
        assert hook in html, hook
    bcdata = json.loads(re.search(r"window\.BCData = (\{.*?\});</script>", html).group(1))
    attributes = bcdata["product_attributes"]
    assert attributes["stock"] == product["inventory_level"] and attributes["instock"] is True
    assert attributes["purchasable"] is True and attributes["sku"] == product["sku"]
    assert attributes["price"]["without_tax"]["value"] == product["calculated_price"]


def test_sold_out_product_hides_add_to_cart(sandbox):
    product = first_product(sandbox, inventory_tracking="product", inventory_level=0, availability="available")
    html = storefront(sandbox).get(f"/products/{product['id']}").text
    assert 'id="add-to-cart-wrapper" class="add-to-cart-wrapper" style="display: none"' in html
    assert "alertBox--error" in html


def test_scripts_api_scripts_are_injected_into_storefront_pages(sandbox):
    sandbox.api("POST", "/v3/content/scripts", json={
        "name": "footer src", "kind": "src", "src": "https://cdn.example.com/bo.js", "load_method": "defer",
        "location": "footer", "visibility": "storefront", "consent_category": "essential"})
    sandbox.api("POST", "/v3/content/scripts", json={
        "name": "head tag", "kind": "script_tag", "html": "<script>window.__headTag = 1;</script>",
        "location": "head", "visibility": "all_pages", "consent_category": "essential"})
    sandbox.api("POST", "/v3/content/scripts", json={
        "name": "disabled", "kind": "src", "src": "https://cdn.example.com/off.js", "enabled": False})
    product = first_product(sandbox)
    for path in (f"/products/{product['id']}", "/cart", "/"):
        html = storefront(sandbox).get(path).text
        head, body = html.split("</head>")
        assert "window.__headTag = 1;" in head
        assert re.search(r'<script src="https://cdn.example.com/bo.js" defer data-script-uuid="[^"]+"></script>\s*'
                         r"</body>", body)
        assert "off.js" not in html
    checkout = storefront(sandbox).get("/checkout").text
    assert "window.__headTag = 1;" in checkout and "bo.js" not in checkout


def test_storefront_cart_api(sandbox):
    product = first_product(sandbox, inventory_tracking="product", **{"inventory_level:min": 10})
    shop = storefront(sandbox)
    assert shop.get("/api/storefront/carts").json() == []
    cart = shop.post("/api/storefront/carts", json={"lineItems": [{"productId": product["id"], "quantity": 2}]})
    assert cart.status_code == 200
    cart = cart.json()
    line = cart["lineItems"]["physicalItems"][0]
    assert {"id", "productId", "variantId", "sku", "name", "quantity"} <= set(line)
    assert line["productId"] == product["id"] and line["quantity"] == 2
    carts = shop.get("/api/storefront/carts").json()
    assert isinstance(carts, list) and carts[0]["id"] == cart["id"]
    updated = shop.put(f"/api/storefront/carts/{cart['id']}/items/{line['id']}",
                       json={"lineItem": {"productId": product["id"], "quantity": 5}}).json()
    assert updated["lineItems"]["physicalItems"][0]["quantity"] == 5
    stale = shop.put(f"/api/storefront/carts/{cart['id']}/items/{line['id']}",
                     json={"lineItem": {"productId": product["id"], "quantity": 1}, "version": 1})
    assert stale.status_code == 409
    too_many = shop.post(f"/api/storefront/carts/{cart['id']}/items", json={
        "lineItems": [{"productId": product["id"], "quantity": product["inventory_level"]}]})
    assert too_many.status_code == 422 and too_many.json()["status"] == 422
    cart_page = shop.get("/cart").text
    assert 'tr class="cart-item" data-item-row' in cart_page and "cart-item-qty-input" in cart_page
    assert "data-cart-update" in cart_page and "data-cart-totals" in cart_page
    assert shop.delete(f"/api/storefront/carts/{cart['id']}/items/{line['id']}").status_code == 204
    assert shop.get("/api/storefront/carts").json() == []


def test_variant_products_resolve_options(sandbox):
    product = first_product(sandbox, inventory_tracking="variant")
    in_stock = next(v for v in product["variants"] if v["inventory_level"] > 0)
    option = in_stock["option_values"][0]
    shop = storefront(sandbox)
    html = shop.get(f"/products/{product['id']}").text
    assert f'name="attribute[{option["option_id"]}]"' in html
    lookup = shop.post(f"/remote/v1/product-attributes/{product['id']}", data={
        "product_id": product["id"], f"attribute[{option['option_id']}]": option["id"], "qty[]": 1}).json()["data"]
    assert lookup["variantId"] == in_stock["id"] and lookup["stock"] == in_stock["inventory_level"]
    added = shop.post("/remote/v1/cart/add", data={
        "action": "add", "product_id": product["id"], f"attribute[{option['option_id']}]": option["id"],
        "qty[]": 1}).json()["data"]
    assert "cart_id" in added
    cart = shop.get("/api/storefront/carts").json()[0]
    assert cart["lineItems"]["physicalItems"][0]["variantId"] == in_stock["id"]


def test_checkout_places_an_order_and_fires_webhooks(sandbox):
    sandbox.server.configure_inbox("checkout-" + sandbox.store_hash)
    sandbox.api("POST", "/v3/hooks", json={"scope": "store/order/created",
                                           "destination": sandbox.server.inbox_url("checkout-" + sandbox.store_hash)})
    product = first_product(sandbox, inventory_tracking="product", **{"inventory_level:min": 10})
    shop = storefront(sandbox)
    shop.post("/api/storefront/carts", json={"lineItems": [{"productId": product["id"], "quantity": 3}]})
    confirmation = shop.post("/checkout", data={"email": "shopper@example.com", "first_name": "Sam"})
    assert confirmation.status_code == 200 and "/checkout/order-confirmation/" in str(confirmation.url)
    order_id = int(str(confirmation.url).rsplit("/", 1)[1])
    order = sandbox.api("GET", f"/v2/orders/{order_id}").json()
    assert order["status_id"] == 11 and order["billing_address"]["email"] == "shopper@example.com"
    assert order["order_source"] == "www" and order["cart_id"]
    after = sandbox.api("GET", f"/v3/catalog/products/{product['id']}").json()["data"]
    assert after["inventory_level"] == product["inventory_level"] - 3
    delivery = sandbox.wait_for_deliveries(lambda d: d and d[0]["status"] == "delivered")[0]
    assert delivery["payload"]["data"] == {"type": "order", "id": order_id}
    assert shop.get("/api/storefront/carts").json() == []


def test_native_backorders_show_on_pages_and_pass_checkout(sandbox):
    product = first_product(sandbox, inventory_tracking="product", inventory_level=0, availability="available")
    sandbox.enable_native_backorders()
    sandbox.api("PUT", "/v3/settings/inventory", json={"show_backorder_availability_prompt": True})
    sandbox.api("PUT", "/v3/inventory/locations/1/items", json={"settings": [
        {"identity": {"product_id": product["id"]}, "backorder_limit": 5}]})
    shop = storefront(sandbox)
    html = shop.get(f"/products/{product['id']}").text
    assert "data-backorder-prompt" in html and "data-product-backordered" in html
    assert 'id="add-to-cart-wrapper" class="add-to-cart-wrapper" >' in html
    shop.post("/api/storefront/carts", json={"lineItems": [{"productId": product["id"], "quantity": 2}]})
    assert "0 ready to ship, 2 will be backordered" in shop.get("/cart").text
    confirmation = shop.post("/checkout", data={"email": "shopper@example.com"})
    assert "(2 backordered)" in confirmation.text
