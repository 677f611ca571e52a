"""A merchant using the admin in Chromium: open it through /bc/load, assign through the
pop-up, bulk edit, import with a bad row, unassign with options, filter the report, change
plan. Each test saves screenshots under docs/screenshots/admin-*.png."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from backorder.inventory.v1 import inventory_pb2, report_pb2

from tests.browser.admin.conftest import screenshot

pytestmark = pytest.mark.browser


async def open_admin(platform: Any, page: Any) -> None:
    token = await asyncio.to_thread(platform.store.signed_payload, "load")
    await page.goto(f"{platform.gateway_url}/bc/load?signed_payload_jwt={token}")
    await page.wait_for_url("**/admin/products")


async def catalog(platform: Any) -> list[Any]:
    from backorder.catalog.v1 import catalog_pb2

    reply = await platform.catalog.ListProducts(catalog_pb2.ListProductsRequest(store_hash=platform.store_hash,
                                                                                limit=250))
    return list(reply.products)


async def assigned(platform: Any, product_id: int) -> Any | None:
    reply = await platform.inventory.ListProducts(inventory_pb2.ListProductsRequest(
        store_hash=platform.store_hash, product_ids=[product_id]))
    return reply.products[0] if reply.products else None


async def test_merchant_opens_the_app_and_assigns_a_product_through_the_pop_up(platform, page):
    await open_admin(platform, page)
    await page.get_by_role("heading", name="Products").wait_for()
    assert await page.locator("meta[name=csrf-token]").get_attribute("content")
    await screenshot(page, "all-products")

    row = page.locator("tr", has=page.get_by_role("button", name="Assign")).first
    product_id = int(await row.get_attribute("data-product-id"))
    await row.get_by_role("button", name="Assign").click()
    dialog = page.locator("#config-dialog")
    await dialog.get_by_label("Current stock").fill("4")
    await dialog.get_by_label("Backorder threshold").fill("6")
    await dialog.get_by_label("Incoming stock").fill("20")
    await dialog.get_by_label("Back-in-stock date").fill("2026-12-24")
    assert await dialog.locator('[data-live="salable"]').inner_text() == "10"
    await screenshot(page, "assign-popup", full_page=False)
    async with page.expect_navigation():
        await dialog.get_by_role("button", name="Assign product").click()

    product = await assigned(platform, product_id)
    assert product is not None and product.stock == 4 and product.threshold == 6
    assert product.incoming_stock == 20 and product.back_in_stock_date == "2026-12-24"
    await page.goto(f"{platform.gateway_url}/admin/backorder-products")
    await page.locator(f'tr[data-product-id="{product_id}"]').wait_for()
    await screenshot(page, "assigned-products")


async def test_merchant_bulk_edits_two_products(platform, page):
    await platform.set_plan("growth")
    products = [p for p in await catalog(platform) if not p.assigned][:3]
    for p in products:
        await platform.assign(p.product_id, stock=5)
    await open_admin(platform, page)
    await page.goto(f"{platform.gateway_url}/admin/backorder-products")
    for p in products[:2]:
        await page.locator(f'tr[data-product-id="{p.product_id}"] [data-select]').check()
    await page.get_by_role("button", name="Bulk edit").click()
    await page.wait_for_url("**/admin/bulk-edit?ids=*")
    rows = page.locator("[data-row]")
    assert await rows.count() == 2
    await rows.nth(0).locator('[name="threshold"]').fill("15")
    await rows.nth(1).locator('[name="threshold"]').fill("25")
    await rows.nth(1).locator('[name="stock"]').fill("0")
    assert await rows.nth(1).locator("[data-salable]").inner_text() == "25"
    await screenshot(page, "bulk-edit")
    await page.get_by_role("button", name="Save all").click()
    await page.wait_for_url("**/admin/backorder-products")

    first, second, untouched = [await assigned(platform, p.product_id) for p in products]
    assert first.threshold == 15 and second.threshold == 25 and second.stock == 0
    assert not untouched.HasField("threshold") and untouched.stock == 5


async def test_merchant_imports_a_csv_with_one_bad_row_and_sees_the_error(platform, page):
    await platform.set_plan("growth")
    products = [p for p in await catalog(platform) if not p.assigned][:2]
    for p in products:
        await platform.assign(p.product_id, stock=5)
    csv_text = ("product_id,current_stock,backorder_threshold,incoming_stock,back_in_stock_date\n"
                f"{products[0].product_id},12,3,0,\n"
                f"{products[1].product_id},lots,3,0,\n")
    await open_admin(platform, page)
    await page.goto(f"{platform.gateway_url}/admin/backorder-products")
    await page.get_by_role("button", name="Import").click()
    await screenshot(page, "import-dropdown", full_page=False)
    await page.get_by_role("menuitem", name="Import to update assigned products").click()
    await page.wait_for_url("**/admin/imports?mode=update")
    await page.locator("#import-file").set_input_files(
        files=[{"name": "stock.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}])
    await page.get_by_role("button", name="Preview import").click()
    errors = page.locator("[data-import-errors]")
    await errors.wait_for()
    await screenshot(page, "import-errors")
    text = await errors.inner_text()
    assert "3" in text and "current_stock" in text and "whole number" in text, text
    assert await page.get_by_role("button", name="Apply import").is_hidden()
    assert (await assigned(platform, products[0].product_id)).stock == 5  # nothing applied

    good = csv_text.replace("lots", "7")
    await page.get_by_role("button", name="Start over").click()
    await page.locator("#import-file").set_input_files(
        files=[{"name": "stock.csv", "mimeType": "text/csv", "buffer": good.encode()}])
    await page.get_by_role("button", name="Preview import").click()
    await page.get_by_role("button", name="Apply import").click()
    await page.get_by_text("Import applied").wait_for()
    await screenshot(page, "import-applied")
    assert (await assigned(platform, products[0].product_id)).stock == 12
    assert (await assigned(platform, products[1].product_id)).stock == 7


async def test_merchant_unassigns_with_options(platform, page):
    product = [p for p in await catalog(platform) if not p.assigned][0]
    await platform.assign(product.product_id, stock=3)
    await open_admin(platform, page)
    await page.goto(f"{platform.gateway_url}/admin/backorder-products")
    await page.locator(f'tr[data-product-id="{product.product_id}"]').get_by_role("button", name="Unassign").click()
    dialog = page.locator("#unassign-dialog")
    await dialog.get_by_text("Make the product unpurchasable").click()
    assert await dialog.locator('[name="restore_tracking"]').is_checked()
    await screenshot(page, "unassign", full_page=False)
    async with page.expect_navigation():
        await dialog.get_by_role("button", name="Unassign").click()
    assert await assigned(platform, product.product_id) is None
    await page.get_by_text("No products assigned yet").wait_for()


async def test_merchant_filters_the_report(platform, page):
    await platform.set_plan("growth")
    products = [p for p in await catalog(platform) if not p.assigned][:2]
    for p in products:
        await platform.assign(p.product_id, stock=0, threshold=50)
    for p in products:
        await platform.create_order([(p.product_id, 2)])

    async def rows() -> bool:
        reply = await platform.reports.ListBackorders(report_pb2.ListBackordersRequest(
            store_hash=platform.store_hash, page=1, limit=10))
        return reply.total >= 2

    await platform.wait_for(rows, timeout=30, message="two report rows")
    await open_admin(platform, page)
    await page.goto(f"{platform.gateway_url}/admin/report")
    assert await page.locator("table.data tbody tr").count() == 2
    await page.get_by_label("Search report").fill(products[0].sku)
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**/admin/report?*")
    body = page.locator("table.data tbody")
    assert await body.locator("tr").count() == 1
    assert products[0].name in await body.inner_text()
    await screenshot(page, "report")


async def test_merchant_changes_plan_seeing_the_prorated_amount_first(platform, page):
    await open_admin(platform, page)
    await page.goto(f"{platform.gateway_url}/admin/plans")
    await screenshot(page, "plans")
    await page.get_by_role("button", name="Upgrade to Starter").click()
    dialog = page.locator("#plan-dialog")
    await dialog.wait_for()
    amount = await dialog.locator("[data-quote-amount]").inner_text()
    assert amount.startswith("$")
    await screenshot(page, "plan-quote", full_page=False)
    await dialog.locator("[data-plan-confirm]").click()
    await page.locator('[data-plan-card="starter"].is-current').wait_for()
    assert "Starter" in await page.locator("[data-current-plan]").inner_text()


async def test_settings_preview_and_tokens_pages(platform, page):
    await open_admin(platform, page)
    await page.goto(f"{platform.gateway_url}/admin/settings")
    await page.get_by_label("Backorder message").fill("Only {salable_qty} left <b>on backorder</b>")
    preview = await page.locator("[data-preview-msg]").inner_text()
    assert preview == "Only 20 left <b>on backorder</b>"  # rendered as text, never as HTML
    await page.get_by_role("button", name="Save settings").click()
    await page.get_by_text("Settings saved").wait_for()
    await screenshot(page, "settings")
    await page.goto(f"{platform.gateway_url}/admin/tokens")
    await page.get_by_label("Name").fill("Warehouse ERP")
    await page.get_by_role("button", name="Create token").click()
    await page.locator("[data-token-created]").wait_for()
    token = await page.locator("[data-token-value]").inner_text()
    assert token.startswith("bo_")
    await screenshot(page, "tokens")
