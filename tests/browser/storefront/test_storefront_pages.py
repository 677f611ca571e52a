"""backorder.js on the sandbox storefront (Cornerstone-like pages) in Debian's Chromium.

Real pieces: the sandbox store (its product and cart pages, Storefront Cart API, Scripts
API injection), the gateway app served by uvicorn, the storefront service over gRPC, NATS
JetStream. Product states are published as the inventory service publishes them.
Screenshots go to $BACKORDER_SCREENSHOT_DIR (docs/screenshots when regenerating the docs),
else to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from backorder.storefront.v1 import storefront_pb2 as pb
from backorder.storefront.v1 import storefront_pb2_grpc
from playwright.async_api import Browser, Page, async_playwright, expect

from services.common.bus import EventBus
from services.common.grpc_server import DeadlineStub, insecure_channel
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.storefront.server import setup
from tests.integration.storefront.helpers import publish_inventory, wait_until
from tests.plugins.sandbox import SandboxServer, SandboxStore

pytestmark = [pytest.mark.browser, pytest.mark.services]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium missing: apt-get install -y chromium")
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1000, "height": 900})
    page = await context.new_page()
    yield page
    await context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[str], str]:
    folder = Path(os.environ.get("BACKORDER_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return lambda name: str(folder / f"storefront-{name}.png")


@pytest.fixture
async def platform(start_service, sqlite_database_url, nats_server, serve_asgi) -> AsyncIterator[dict[str, Any]]:
    runner = await start_service("storefront", setup, sqlite_database_url())
    address = f"127.0.0.1:{runner.port}"
    settings = GatewaySettings.from_env(environ={"BACKORDER_NATS_URL": nats_server.url,
                                                 "BACKORDER_STOREFRONT_GRPC_ADDR": address})
    gateway_url = serve_asgi(create_app(settings))
    bus = EventBus(nats_server.url, "storefront-browser-test")
    await bus.connect()
    channel = insecure_channel(address)
    stub = DeadlineStub(storefront_pb2_grpc.StorefrontServiceStub(channel), 5)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        yield {"gateway_url": gateway_url, "bus": bus, "stub": stub, "http": http}
    await channel.close()
    await bus.close()


@pytest.fixture
def store(sandbox_server: SandboxServer, platform: dict[str, Any]) -> SandboxStore:
    created = sandbox_server.create_store(seed_demo=False)
    response = created.api("POST", "/v3/content/scripts", json={
        "name": "Backorder", "kind": "src", "location": "footer", "visibility": "storefront",
        "load_method": "default", "consent_category": "essential",
        "src": f"{platform['gateway_url']}/storefront/v1/backorder.js?store={created.store_hash}"})
    assert response.status_code == 200, response.text
    return created


async def backorder_product(platform: dict[str, Any], store: SandboxStore, name: str, *, stock: int,
                            threshold: int | None, back_in_stock_date: str = "") -> int:
    """A sandbox product whose inventory we track (BigCommerce tracking off), with its state published."""
    response = store.api("POST", "/v3/catalog/products", json={
        "name": name, "type": "physical", "sku": re.sub(r"\W", "-", name.upper()), "price": 20.0, "weight": 1,
        "inventory_tracking": "none"})
    assert response.status_code == 200, response.text
    product_id = response.json()["data"]["id"]
    await publish_inventory(platform["bus"], store.store_hash, "product.assigned", product_id, stock=stock,
                            threshold=threshold, back_in_stock_date=back_in_stock_date, version=1)

    async def served() -> bool:
        path = f"/storefront/v1/stores/{store.store_hash}/products/{product_id}"
        return (await platform["http"].get(path)).status_code == 200

    await wait_until(served)
    return product_id


async def open_product(page: Page, store: SandboxStore, product_id: int) -> None:
    await page.goto(f"{store.storefront_url}/products/{product_id}")
    await expect(page.locator("[data-backorder-inventory]")).to_be_visible()


async def test_in_stock_and_low_stock_pages(page: Page, platform, store, shots) -> None:
    in_stock = await backorder_product(platform, store, "Oak Stool", stock=12, threshold=5)
    low = await backorder_product(platform, store, "Ash Stool", stock=2, threshold=5)
    await open_product(page, store, in_stock)
    await expect(page.locator("[data-backorder-inventory]")).to_have_text("In stock: 12 available.")
    await expect(page.locator("[data-backorder-shipping]")).to_have_count(0)
    await expect(page.locator("#form-action-addToCart")).to_have_value("Add to Cart")
    await page.screenshot(path=shots("in-stock"))
    await open_product(page, store, low)
    await expect(page.locator("[data-backorder-inventory]")).to_have_text("Only 2 left in stock. Order soon!")
    await page.screenshot(path=shots("low-stock"))


async def test_backorder_page_shows_texts_and_restyled_button(page: Page, platform, store, shots) -> None:
    product_id = await backorder_product(platform, store, "Walnut Desk", stock=0, threshold=4,
                                         back_in_stock_date="2026-12-24")
    await open_product(page, store, product_id)
    await expect(page.locator("[data-backorder-inventory]")).to_have_text(
        "Out of stock, available on backorder. 4 more can be ordered.")
    await expect(page.locator("[data-backorder-shipping]")).to_have_text(
        "Ships as soon as new stock arrives. Expected back in stock on December 24, 2026.")
    button = page.locator("#form-action-addToCart")
    await expect(button).to_have_value("Backorder now")
    await expect(button).to_have_css("background-color", "rgb(154, 52, 18)")
    await expect(button).to_have_css("color", "rgb(255, 255, 255)")
    await page.screenshot(path=shots("backorder"))


async def test_sold_out_page_cannot_add(page: Page, platform, store, shots) -> None:
    product_id = await backorder_product(platform, store, "Elm Shelf", stock=-3, threshold=3)
    await open_product(page, store, product_id)
    await expect(page.locator("[data-backorder-inventory]")).to_have_text(
        "Sold out. This item cannot be ordered right now.")
    button = page.locator("#form-action-addToCart")
    await expect(button).to_be_disabled()
    await expect(button).to_have_value("Sold out")
    await page.locator("form[data-cart-item-add]").evaluate("form => form.requestSubmit()")
    await expect(page.locator("[data-backorder-alert]")).to_have_text("Sold out. This item cannot be ordered right now.")
    assert page.url.endswith(f"/products/{product_id}")
    await page.screenshot(path=shots("sold-out"))
    await page.goto(f"{store.storefront_url}/cart")
    await expect(page.locator(".cart-empty")).to_be_visible()


async def test_add_over_stock_shows_mixed_cart_alert_then_cart_message(page: Page, platform, store, shots) -> None:
    product_id = await backorder_product(platform, store, "Pine Bench", stock=2, threshold=10)
    await open_product(page, store, product_id)
    await page.fill('input[name="qty[]"]', "5")
    await page.click("#form-action-addToCart")
    alert = page.locator("[data-backorder-alert]")
    await expect(alert).to_contain_text(
        "You added 5: 3 of them are on backorder and will ship when back in stock.")
    await page.screenshot(path=shots("mixed-cart-alert"))
    assert page.url.endswith(f"/products/{product_id}")
    await page.click("[data-backorder-confirm]")
    await page.wait_for_url(re.compile(r".*/cart$"))
    message = page.locator("tr.cart-item [data-backorder-cart-message]")
    await expect(message).to_have_text("3 of 5 on backorder: ships when back in stock.")
    await page.screenshot(path=shots("cart-message"))


async def test_add_over_salable_is_blocked(page: Page, platform, store, shots) -> None:
    product_id = await backorder_product(platform, store, "Teak Tray", stock=2, threshold=3)
    await open_product(page, store, product_id)
    await page.fill('input[name="qty[]"]', "6")
    await page.click("#form-action-addToCart")
    alert = page.locator("[data-backorder-alert]")
    await expect(alert).to_have_text("Sorry, only 5 of this item can be ordered right now.")
    await expect(page.locator("[data-backorder-confirm]")).to_have_count(0)
    await page.screenshot(path=shots("over-threshold"))
    await page.goto(f"{store.storefront_url}/cart")
    await expect(page.locator(".cart-empty")).to_be_visible()


async def test_merchant_markup_shows_as_text(page: Page, platform, store, shots) -> None:
    await platform["stub"].UpdateSettings(pb.UpdateSettingsRequest(
        store_hash=store.store_hash,
        in_stock_message="<script>window.__pwned = 1</script><b>Bold</b> {stock} left <img src=x onerror=alert(1)>"))
    product_id = await backorder_product(platform, store, "Cedar Box", stock=9, threshold=1)
    await open_product(page, store, product_id)
    inventory = page.locator("[data-backorder-inventory]")
    await expect(inventory).to_have_text(
        "<script>window.__pwned = 1</script><b>Bold</b> 9 left <img src=x onerror=alert(1)>")
    assert await inventory.evaluate("node => node.children.length") == 0
    assert await page.evaluate("window.__pwned") is None
    await page.screenshot(path=shots("merchant-markup"))


async def test_page_keeps_working_with_the_api_down(page: Page, platform, store, shots) -> None:
    product_id = await backorder_product(platform, store, "Birch Crate", stock=0, threshold=5)
    await page.route(re.compile(r".*/storefront/v1/stores/.*"), lambda route: route.abort())
    await page.goto(f"{store.storefront_url}/products/{product_id}")
    await page.wait_for_function("window.__backorderStorefront === true")
    button = page.locator("#form-action-addToCart")
    await expect(button).to_have_value("Add to Cart")
    await expect(page.locator("[data-backorder-messages]")).to_have_count(0)
    await page.screenshot(path=shots("api-down"))
    await page.click("#form-action-addToCart")
    await page.wait_for_url(re.compile(r".*/cart$"))
    await expect(page.locator("tr.cart-item")).to_have_count(1)


async def test_add_to_cart_goes_through_when_the_cart_check_fails(page: Page, platform, store) -> None:
    product_id = await backorder_product(platform, store, "Maple Tray", stock=1, threshold=5)
    await open_product(page, store, product_id)
    await page.route(re.compile(r".*/cart-check$"), lambda route: route.abort())
    await page.fill('input[name="qty[]"]', "3")
    await page.click("#form-action-addToCart")
    await page.wait_for_url(re.compile(r".*/cart$"))
    await expect(page.locator("tr.cart-item")).to_have_count(1)


async def test_units_already_in_the_cart_count_and_cart_page_flags_lines_over_salable(
        page: Page, platform, store, shots) -> None:
    product_id = await backorder_product(platform, store, "Rowan Basket", stock=2, threshold=4)
    await open_product(page, store, product_id)
    await page.fill('input[name="qty[]"]', "2")
    await page.click("#form-action-addToCart")  # within stock: no alert, straight to the cart
    await page.wait_for_url(re.compile(r".*/cart$"))
    await expect(page.locator("[data-backorder-cart-message]")).to_have_count(0)

    await open_product(page, store, product_id)
    await page.fill('input[name="qty[]"]', "3")
    await page.click("#form-action-addToCart")
    await expect(page.locator("[data-backorder-alert]")).to_contain_text(
        "You added 3: 3 of them are on backorder")
    await page.click("[data-backorder-confirm]")
    await page.wait_for_url(re.compile(r".*/cart$"))
    await expect(page.locator("[data-backorder-cart-message]")).to_have_text(
        "3 of 5 on backorder: ships when back in stock.")

    # The merchant lowers the threshold: the cart now holds more than can be sold.
    await publish_inventory(platform["bus"], store.store_hash, "stock.changed", product_id, stock=2, threshold=1,
                            version=2)

    async def lowered() -> bool:
        path = f"/storefront/v1/stores/{store.store_hash}/products/{product_id}"
        return (await platform["http"].get(path)).json()["salable_qty"] == 3

    await wait_until(lowered)
    await page.reload()
    await expect(page.locator("[data-backorder-cart-alert]")).to_have_text(
        "Sorry, only 3 of this item can be ordered right now.")
    await page.screenshot(path=shots("cart-over-threshold"))
