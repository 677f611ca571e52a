"""A Cornerstone-like storefront under /s/{store_hash}/: pages with Cornerstone's DOM hooks,
window.BCData, the Storefront Cart API, Scripts API injection and a checkout that places orders.
"""

from __future__ import annotations

import html
import json
import uuid
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.bigcommerce import orders, scripts
from sandbox.bigcommerce.catalog_store import product_row, variant_row, variants_of
from sandbox.bigcommerce.core import Sandbox, iso_now
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import V3_ERROR_TYPE, ApiError
from sandbox.bigcommerce.inventory import stock_position

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html"]))
PAGE_VISIBILITY = {"storefront": {"storefront", "all_pages"}, "checkout": {"checkout", "all_pages"},
                   "order_confirmation": {"order_confirmation", "all_pages"}}


def cookie_name(store_hash: str) -> str:
    return f"bc_cart_{store_hash}"


def storefront_error(status: int, title: str) -> JSONResponse:
    return JSONResponse({"status": status, "title": title, "type": V3_ERROR_TYPE, "detail": title},
                        status_code=status)


def script_tags(sb: Sandbox, store_hash: str, page_kind: str) -> tuple[str, str]:
    """Render the Scripts API scripts visible on this kind of page, for <head> and the footer."""
    wanted = PAGE_VISIBILITY[page_kind]
    head: list[str] = []
    footer: list[str] = []
    for script in scripts.list_scripts(sb, store_hash):
        if not script["enabled"] or script["visibility"] not in wanted:
            continue
        if script["kind"] == "src":
            attributes = [f'src="{html.escape(script["src"])}"']
            if script["load_method"] in ("async", "defer"):
                attributes.append(script["load_method"])
            if script["integrity_hashes"]:
                attributes.append(f'integrity="{html.escape(" ".join(script["integrity_hashes"]))}" '
                                  'crossorigin="anonymous"')
            tag = f"<script {' '.join(attributes)} data-script-uuid=\"{script['uuid']}\"></script>"
        else:
            tag = script["html"]
        (head if script["location"] == "head" else footer).append(tag)
    return "\n".join(head), "\n".join(footer)


def load_cart(sb: Sandbox, store_hash: str, cart_id: str | None) -> dict[str, Any] | None:
    if not cart_id:
        return None
    return sb.db.doc("SELECT doc FROM carts WHERE store_hash = ? AND id = ?", (store_hash, cart_id))


def render(request: Request, template: str, page_kind: str, **context: Any) -> HTMLResponse:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    store = sb.store(store_hash)
    head, footer = script_tags(sb, store_hash, page_kind)
    cart = load_cart(sb, store_hash, request.cookies.get(cookie_name(store_hash)))
    quantity = sum(line["quantity"] for line in cart["lineItems"]["physicalItems"]) if cart else 0
    body = TEMPLATES.get_template(template).render(
        store=store, base_path=f"/s/{store_hash}", head_scripts=head, footer_scripts=footer,
        cart_quantity=quantity, **context)
    return HTMLResponse(body)


def stock_view(sb: Sandbox, store_hash: str, product: dict[str, Any], variant: dict[str, Any] | None
               ) -> dict[str, Any]:
    """What the storefront shows for a product or one variant: stock, in stock, purchasable, backorder room."""
    store = sb.store(store_hash)
    native = bool(store["native_backorders"])
    settings = store["inventory_settings"]
    variant_id = variant["id"] if variant else None
    position = stock_position(sb, store_hash, product, variant_id)
    if product["inventory_tracking"] == "variant" and variant is None and product["base_variant_id"] is None:
        levels = [v["inventory_level"] for v in variants_of(sb, [product["id"]])[product["id"]]]
        position = {"tracked": True, "on_hand": sum(levels), "backorder_room": 0, "settings": None}
    on_hand = position["on_hand"] if position["tracked"] else None
    room = position["backorder_room"] if position["tracked"] and native else 0
    in_stock = on_hand is None or on_hand > 0 or room > 0
    purchasable = product["availability"] != "disabled" and not (variant and variant.get("purchasing_disabled"))
    display = settings["stock_level_display"]
    shown = on_hand if on_hand is not None and (
        display == "show" or (display == "show_when_low" and on_hand <= product["inventory_warning_level"])) else None
    return {"tracked": position["tracked"], "on_hand": on_hand, "backorder_room": room, "in_stock": in_stock,
            "purchasable": purchasable, "stock": shown, "native": native}


def price_formatted(value: float) -> str:
    return f"${value:,.2f}"


async def home(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    rows = sb.db.all("SELECT doc, options FROM products WHERE store_hash = ? AND json_extract(doc, '$.is_visible') = 1 "
                     "ORDER BY id LIMIT 250", (store_hash,))
    cards = []
    for row in rows:
        product = json.loads(row["doc"])
        view = stock_view(sb, store_hash, product, None)
        cards.append({"id": product["id"], "name": product["name"], "price": product["calculated_price"],
                      "price_formatted": price_formatted(product["calculated_price"]),
                      "has_options": row["options"] != "[]", "out_of_stock": not view["in_stock"]})
    return render(request, "home.html", "storefront", cards=cards,
                  out_of_stock_message=sb.store(store_hash)["inventory_settings"]["default_out_of_stock_message"])


async def product_page(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    try:
        product, options = product_row(sb, store_hash, request.path_params["product_id"])
    except ApiError:
        return HTMLResponse("<h1>404 - Page not found</h1>", status_code=404)
    if not product["is_visible"]:
        return HTMLResponse("<h1>404 - Page not found</h1>", status_code=404)
    store = sb.store(store_hash)
    settings = store["inventory_settings"]
    view = stock_view(sb, store_hash, product, None)
    can_purchase = view["purchasable"] and view["in_stock"]
    brand = sb.db.doc("SELECT doc FROM brands WHERE id = ?", (product["brand_id"],)) if product["brand_id"] else None
    price = product["calculated_price"]
    bcdata = {"csrf_token": uuid.uuid4().hex, "product_attributes": {
        "sku": product["sku"], "upc": product["upc"] or None, "mpn": product["mpn"] or None,
        "gtin": product["gtin"] or None, "weight": None, "base": not options, "image": None,
        "price": {"without_tax": {"formatted": price_formatted(price), "value": price, "currency": "USD"},
                  "tax_label": "Tax"},
        "out_of_stock_behavior": settings["option_out_of_stock_behavior"],
        "out_of_stock_message": settings["default_out_of_stock_message"], "available_modifier_values": [],
        "in_stock_attributes": [], "stock": view["stock"], "instock": view["in_stock"], "stock_message": None,
        "purchasable": view["purchasable"], "purchasing_message": None}}
    backorder_context = {}
    if view["native"]:
        backorder_context = {
            "availableOnHand": view["on_hand"], "availableForBackorder": view["backorder_room"],
            "availableToSell": (view["on_hand"] or 0) + view["backorder_room"], "unlimitedBackorder": False,
            "showQuantityOnBackorder": settings["show_quantity_on_backorder"],
            "showBackorderAvailabilityPrompt": settings["show_backorder_availability_prompt"],
            "backorderAvailabilityPrompt": settings["backorder_availability_prompt"], "backorderMessages": [],
            "showBackorderMessage": settings["show_backorder_message"]}
    return render(request, "product.html", "storefront", product=product, options=options,
                  brand_name=brand["name"] if brand else "", price_formatted=price_formatted(price),
                  stock=view["stock"], can_purchase=can_purchase, native=view["native"],
                  show_backorder_prompt=settings["show_backorder_availability_prompt"] and (view["on_hand"] or 0) <= 0,
                  backorder_prompt=settings["backorder_availability_prompt"],
                  out_of_stock_message=settings["default_out_of_stock_message"], bcdata=bcdata,
                  backorder_context=backorder_context)


# ----- carts -----
def _choose_variant(sb: Sandbox, product: dict[str, Any], variant_id: Any, selections: dict[int, int]
                    ) -> dict[str, Any] | None:
    variants = variants_of(sb, [product["id"]])[product["id"]]
    if variant_id:
        return next((v for v in variants if v["id"] == int(variant_id)), None)
    if selections:
        return next((v for v in variants if v["option_values"] and
                     {o["option_id"]: o["id"] for o in v["option_values"]} == selections), None)
    return next((v for v in variants if v["id"] == product["base_variant_id"]), None)


def _cart_totals(cart: dict[str, Any]) -> None:
    total = sum(line["extendedSalePrice"] for line in cart["lineItems"]["physicalItems"])
    cart["baseAmount"] = cart["cartAmount"] = round(total, 2)
    cart["updatedTime"] = iso_now()
    cart["version"] = cart.get("version", 0) + 1


def _check_line(sb: Sandbox, store_hash: str, product: dict[str, Any], variant: dict[str, Any] | None,
                quantity: int) -> str | None:
    if quantity < 1:
        return "Quantity must be at least 1"
    if variant is None:
        return "Please choose the product's options"
    view = stock_view(sb, store_hash, product, variant)
    if not view["purchasable"]:
        return f"{product['name']} is not available for purchase"
    if view["tracked"] and quantity > view["on_hand"] + view["backorder_room"]:
        return (f"We don't have enough {product['name']} stock on hand for the quantity you selected. "
                "Please try again.")
    return None


def _line_item(product: dict[str, Any], variant: dict[str, Any], quantity: int, base_path: str) -> dict[str, Any]:
    price = variant["calculated_price"] if variant.get("calculated_price") is not None else \
        product["calculated_price"]
    return {"id": str(uuid.uuid4()), "parentId": None, "variantId": variant["id"], "productId": product["id"],
            "sku": variant["sku"] or product["sku"], "name": product["name"],
            "url": f"{base_path}/products/{product['id']}", "quantity": quantity, "isTaxable": True,
            "imageUrl": "", "discounts": [], "discountAmount": 0, "couponAmount": 0, "listPrice": price,
            "salePrice": price, "extendedListPrice": round(price * quantity, 2),
            "extendedSalePrice": round(price * quantity, 2), "isShippingRequired": True, "isMutable": True,
            "options": [{"name": o["option_display_name"], "nameId": o["option_id"], "value": o["label"],
                         "valueId": o["id"]} for o in variant["option_values"]]}


def add_lines(sb: Sandbox, store_hash: str, cart: dict[str, Any] | None, lines: list[dict[str, Any]]
              ) -> dict[str, Any]:
    """Add line items to a cart (creating it when None); raises ApiError(422) on stock or purchasability."""
    base_path = f"/s/{store_hash}"
    if cart is None:
        now = iso_now()
        cart = {"id": str(uuid.uuid4()), "customerId": 0, "email": "", "currency": {"code": "USD", "name": "US Dollars",
                "symbol": "$", "decimalPlaces": 2}, "isTaxIncluded": False, "baseAmount": 0, "discountAmount": 0,
                "cartAmount": 0, "coupons": [], "discounts": [],
                "lineItems": {"physicalItems": [], "digitalItems": [], "giftCertificates": [], "customItems": []},
                "createdTime": now, "updatedTime": now, "locale": "en", "version": 0}
    for raw in lines:
        try:
            product, _ = product_row(sb, store_hash, int(raw["productId"]))
        except (ApiError, KeyError, TypeError, ValueError) as exc:
            raise ApiError(422, f"Product {raw.get('productId')} was not found") from exc
        selections = {int(s["optionId"]): int(s["optionValue"]) for s in raw.get("optionSelections") or []}
        variant = _choose_variant(sb, product, raw.get("variantId"), selections)
        quantity = int(raw.get("quantity", 1))
        existing = next((line for line in cart["lineItems"]["physicalItems"]
                         if variant and line["variantId"] == variant["id"]), None)
        total = quantity + (existing["quantity"] if existing else 0)
        problem = _check_line(sb, store_hash, product, variant, total)
        if problem:
            raise ApiError(422, problem)
        assert variant is not None  # _check_line refuses a line without a variant
        if existing:
            fresh = _line_item(product, variant, total, base_path)
            existing.update({k: v for k, v in fresh.items() if k != "id"})
        else:
            cart["lineItems"]["physicalItems"].append(_line_item(product, variant, quantity, base_path))
    _cart_totals(cart)
    sb.db.execute("INSERT OR REPLACE INTO carts (id, store_hash, doc) VALUES (?, ?, ?)",
                  (cart["id"], store_hash, dumps(cart)))
    return cart


def set_line_quantity(sb: Sandbox, store_hash: str, cart: dict[str, Any], item_id: str, quantity: int) -> None:
    lines = cart["lineItems"]["physicalItems"]
    line = next((li for li in lines if li["id"] == item_id), None)
    if line is None:
        raise ApiError(404, "Line item was not found")
    if quantity <= 0:
        lines.remove(line)
    else:
        product, _ = product_row(sb, store_hash, line["productId"])
        variant = variant_row(sb, store_hash, line["variantId"])
        problem = _check_line(sb, store_hash, product, variant, quantity)
        if problem:
            raise ApiError(422, problem)
        line.update({k: v for k, v in _line_item(product, variant, quantity, f"/s/{store_hash}").items()
                     if k != "id"})
    _cart_totals(cart)
    sb.db.execute("UPDATE carts SET doc = ? WHERE id = ?", (dumps(cart), cart["id"]))


def _with_cookie(response: Response, store_hash: str, cart: dict[str, Any]) -> Response:
    response.set_cookie(cookie_name(store_hash), cart["id"], path=f"/s/{store_hash}", httponly=True, samesite="lax")
    return response


async def carts_collection(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    current = load_cart(sb, store_hash, request.cookies.get(cookie_name(store_hash)))
    if request.method == "GET":
        return JSONResponse([current] if current else [])
    try:
        body = json.loads(await request.body() or b"{}")
        cart = add_lines(sb, store_hash, None, body.get("lineItems") or [])
    except ApiError as exc:
        return storefront_error(exc.status, exc.title)
    except (ValueError, AttributeError):
        return storefront_error(400, "The request body is not valid")
    return _with_cookie(JSONResponse(cart), store_hash, cart)


async def cart_item(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    cart = load_cart(sb, store_hash, request.path_params["cart_id"])
    if cart is None:
        return storefront_error(404, "Cart not found")
    if request.method == "DELETE":
        sb.db.execute("DELETE FROM carts WHERE id = ?", (cart["id"],))
        return Response(status_code=204)
    return JSONResponse(cart)


async def cart_items(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    cart = load_cart(sb, store_hash, request.path_params["cart_id"])
    if cart is None:
        return storefront_error(404, "Cart not found")
    try:
        body = json.loads(await request.body() or b"{}")
        cart = add_lines(sb, store_hash, cart, body.get("lineItems") or [])
    except ApiError as exc:
        return storefront_error(exc.status, exc.title)
    return JSONResponse(cart)


async def cart_line(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    cart = load_cart(sb, store_hash, request.path_params["cart_id"])
    if cart is None:
        return storefront_error(404, "Cart not found")
    try:
        if request.method == "DELETE":
            set_line_quantity(sb, store_hash, cart, request.path_params["item_id"], 0)
        else:
            body = json.loads(await request.body() or b"{}")
            version = body.get("version")
            if version is not None and version != cart["version"]:
                return storefront_error(409, "The cart was changed by another request; reload it")
            set_line_quantity(sb, store_hash, cart, request.path_params["item_id"],
                              int(body.get("lineItem", {}).get("quantity", 0)))
    except ApiError as exc:
        return storefront_error(exc.status, exc.title)
    if not cart["lineItems"]["physicalItems"]:
        sb.db.execute("DELETE FROM carts WHERE id = ?", (cart["id"],))
        return Response(status_code=204) if request.method == "DELETE" else JSONResponse(cart)
    return JSONResponse(cart)


def _form_line(form: Any) -> dict[str, Any]:
    selections = []
    for key, value in form.multi_items():
        if key.startswith("attribute[") and value:
            selections.append({"optionId": int(key[len("attribute["):-1]), "optionValue": int(value)})
    quantity = form.get("qty[]") or form.get("qty") or "1"
    return {"productId": int(form.get("product_id", 0)), "quantity": int(quantity), "optionSelections": selections}


async def remote_cart_add(request: Request) -> Response:
    """Cornerstone's ajax add-to-cart (stencil-utils cart.itemAdd)."""
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    form = await request.form()
    current = load_cart(sb, store_hash, request.cookies.get(cookie_name(store_hash)))
    try:
        cart = add_lines(sb, store_hash, current, [_form_line(form)])
    except (ApiError, ValueError) as exc:
        message = exc.title if isinstance(exc, ApiError) else "Invalid quantity"
        return JSONResponse({"data": {"error": message}})
    line = cart["lineItems"]["physicalItems"][-1]
    return _with_cookie(JSONResponse({"data": {"cart_id": cart["id"], "cart_item": {"id": line["id"]}}}),
                        store_hash, cart)


async def form_cart_add(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    form = await request.form() if request.method == "POST" else request.query_params
    current = load_cart(sb, store_hash, request.cookies.get(cookie_name(store_hash)))
    try:
        cart = add_lines(sb, store_hash, current, [_form_line(form)])
    except (ApiError, ValueError) as exc:
        message = exc.title if isinstance(exc, ApiError) else "Invalid quantity"
        return RedirectResponse(f"/s/{store_hash}/cart?error={message}", status_code=303)
    return _with_cookie(RedirectResponse(f"/s/{store_hash}/cart", status_code=303), store_hash, cart)


async def product_attributes(request: Request) -> Response:
    """Option-change lookup (stencil-utils productAttributes.optionChange)."""
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    try:
        product, _ = product_row(sb, store_hash, request.path_params["product_id"])
    except ApiError:
        return JSONResponse({"data": {"error": "Product not found"}}, status_code=404)
    line = _form_line(await request.form())
    selections = {s["optionId"]: s["optionValue"] for s in line["optionSelections"]}
    variant = _choose_variant(sb, product, None, selections)
    view = stock_view(sb, store_hash, product, variant)
    data = {"sku": variant["sku"] if variant else product["sku"], "variantId": variant["id"] if variant else None,
            "stock": view["stock"], "instock": view["in_stock"] and variant is not None,
            "purchasable": view["purchasable"], "purchasing_message": None, "stock_message": None,
            "in_stock_attributes": []}
    if view["native"]:
        data.update({"available_on_hand": view["on_hand"], "available_for_backorder": view["backorder_room"],
                     "available_to_sell": (view["on_hand"] or 0) + view["backorder_room"],
                     "unlimited_backorder": False, "backorder_message_id": None})
    return JSONResponse({"data": data})


def _lines_for_view(sb: Sandbox, store_hash: str, cart: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not cart:
        return []
    native = bool(sb.store(store_hash)["native_backorders"])
    lines = []
    for line in cart["lineItems"]["physicalItems"]:
        view_line = dict(line)
        if native:
            product, _ = product_row(sb, store_hash, line["productId"])
            position = stock_position(sb, store_hash, product, line["variantId"])
            if position["tracked"] and line["quantity"] > position["on_hand"]:
                ready = max(position["on_hand"], 0)
                view_line["backorder_message"] = (f"{ready} ready to ship, "
                                                  f"{line['quantity'] - ready} will be backordered")
        lines.append(view_line)
    return lines


async def cart_page(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    cart = load_cart(sb, store_hash, request.cookies.get(cookie_name(store_hash)))
    return render(request, "cart.html", "storefront", cart=cart, lines=_lines_for_view(sb, store_hash, cart),
                  error=request.query_params.get("error"))


async def checkout_page(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    cart = load_cart(sb, store_hash, request.cookies.get(cookie_name(store_hash)))
    if request.method == "GET":
        return render(request, "checkout.html", "checkout", cart=cart, lines=_lines_for_view(sb, store_hash, cart),
                      error=None)
    form = await request.form()
    if not cart or not cart["lineItems"]["physicalItems"]:
        return RedirectResponse(f"/s/{store_hash}/cart", status_code=303)
    body = {"status_id": 11, "billing_address": {"email": form.get("email") or "shopper@example.com",
                                                 "first_name": form.get("first_name", ""),
                                                 "last_name": form.get("last_name", "")},
            "products": [{"product_id": line["productId"], "variant_id": line["variantId"],
                          "quantity": line["quantity"]} for line in cart["lineItems"]["physicalItems"]],
            "payment_method": "Test Payment Gateway"}
    try:
        with sb.db.transaction():
            order = orders.create_order(sb, store_hash, body, source="www", cart_id=cart["id"])
            sb.db.execute("DELETE FROM carts WHERE id = ?", (cart["id"],))
            sb.emit(store_hash, "store/cart/converted", {"type": "cart", "id": cart["id"], "orderId": order["id"]})
    except ApiError as exc:
        message = exc.title
        if exc.details and exc.details.get("errors"):
            message = "; ".join(e["message"] for e in exc.details["errors"])
        return render(request, "checkout.html", "checkout", cart=cart, lines=_lines_for_view(sb, store_hash, cart),
                      error=message)
    response = RedirectResponse(f"/s/{store_hash}/checkout/order-confirmation/{order['id']}", status_code=303)
    response.delete_cookie(cookie_name(store_hash), path=f"/s/{store_hash}")
    return response


async def order_confirmation(request: Request) -> Response:
    sb, store_hash = Sandbox.of(request), request.path_params["store_hash"]
    order_id = request.path_params["order_id"]
    try:
        order = orders.order_doc(sb, store_hash, order_id)
    except ApiError:
        return HTMLResponse("<h1>404 - Page not found</h1>", status_code=404)
    lines = orders.order_products(sb, store_hash, order_id, 1, 250)
    return render(request, "order_confirmation.html", "order_confirmation", order=order, lines=lines)


PREFIX = "/s/{store_hash}"
ROUTES = [
    Route(PREFIX + "/", home, methods=["GET"]),
    Route(PREFIX + "/products/{product_id:int}", product_page, methods=["GET"]),
    Route(PREFIX + "/cart", cart_page, methods=["GET"]),
    Route(PREFIX + "/cart.php", form_cart_add, methods=["GET", "POST"]),
    Route(PREFIX + "/checkout", checkout_page, methods=["GET", "POST"]),
    Route(PREFIX + "/checkout/order-confirmation/{order_id:int}", order_confirmation, methods=["GET"]),
    Route(PREFIX + "/remote/v1/cart/add", remote_cart_add, methods=["POST"]),
    Route(PREFIX + "/remote/v1/product-attributes/{product_id:int}", product_attributes, methods=["POST"]),
    Route(PREFIX + "/api/storefront/carts", carts_collection, methods=["GET", "POST"]),
    Route(PREFIX + "/api/storefront/carts/{cart_id}", cart_item, methods=["GET", "DELETE"]),
    Route(PREFIX + "/api/storefront/carts/{cart_id}/items", cart_items, methods=["POST"]),
    Route(PREFIX + "/api/storefront/carts/{cart_id}/items/{item_id}", cart_line, methods=["PUT", "DELETE"]),
]
