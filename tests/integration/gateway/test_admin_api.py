"""The admin JSON API on the whole real platform (sandbox store with the app installed,
real services on PostgreSQL, real NATS, the gateway over HTTP)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from typing import Any

import jwt
from backorder.inventory.v1 import inventory_pb2

from tests.e2e.conftest import install_store
from tests.integration.gateway.admin_support import AdminSession, catalog_products, cookie_values, login

HEADER = "product_id,current_stock,backorder_threshold,incoming_stock,back_in_stock_date\n"


async def assigned_ids(platform: Any, store_hash: str | None = None) -> set[int]:
    reply = await platform.inventory.ListProducts(inventory_pb2.ListProductsRequest(
        store_hash=store_hash or platform.store_hash, limit=250))
    return {p.product_id for p in reply.products}


async def unassigned(platform: Any, session: AdminSession, count: int) -> list[dict[str, Any]]:
    products = [p for p in await catalog_products(platform, session, assigned="false") if p["current_stock"] > 0]
    assert len(products) >= count
    return products[:count]


def jwt_for(platform: Any, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"aud": platform.stack.sandbox.client_id, "iss": "bc", "iat": now, "nbf": now - 5, "exp": now + 600,
              "sub": f"stores/{platform.store_hash}", "user": {"id": 7, "email": "owner@example.com"},
              "owner": {"id": 7, "email": "owner@example.com"}, "url": "/"}
    claims.update(overrides)
    secret = overrides.pop("secret", None) or platform.stack.sandbox.client_secret
    claims.pop("secret", None)
    return jwt.encode(claims, secret, algorithm="HS256")


# ---------------------------------------------------------------- sessions and safety

async def test_bc_load_sets_an_iframe_session_and_refuses_bad_payloads(platform):
    session = await login(platform)
    by_name = {h.split("=", 1)[0]: h for h in session.set_cookie_headers}
    for name in ("backorder_session", "backorder_csrf"):
        attributes = {a.strip().lower() for a in by_name[name].split(";")[1:]}
        assert {"secure", "samesite=none", "partitioned", "path=/"} <= attributes
    assert "httponly" in by_name["backorder_session"].lower()
    assert "httponly" not in by_name["backorder_csrf"].lower()  # the page's JS may read it
    page = await session.get("/admin/products")
    assert page.status_code == 200
    assert f'<meta name="csrf-token" content="{session.csrf}">' in page.text

    for bad in (jwt_for(platform, aud="another-app"), jwt_for(platform, exp=int(time.time()) - 3600),
                jwt_for(platform, secret="not-the-client-secret-at-all-0123456789"), "not-a-jwt"):
        response = await platform.http.get("/bc/load", params={"signed_payload_jwt": bad})
        assert response.status_code == 401
        assert "set-cookie" not in response.headers
    assert (await platform.http.get("/api/v1/products")).status_code == 401
    assert (await platform.http.get("/admin/products")).status_code == 401
    forged = dict(session.cookies, backorder_session=session.cookies["backorder_session"][:-2] + "AA")
    response = await platform.http.get("/api/v1/products", headers={
        "cookie": "; ".join(f"{k}={v}" for k, v in forged.items())})
    assert response.status_code == 401


async def test_every_mutation_needs_the_csrf_token_and_nothing_is_written_without_it(platform):
    session = await login(platform)
    [product] = await unassigned(platform, session, 1)
    body = {"product_id": product["product_id"], "threshold": 5}
    missing = await session.request("POST", "/api/v1/backorder-products", json=body, csrf=False)
    wrong = await session.request("POST", "/api/v1/backorder-products", json=body, csrf=False,
                                  headers={"x-csrf-token": "x" * 32})
    for response in (missing, wrong):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "csrf_failed"
    # A cookie planted by another site (cookie tossing) matching the header is still refused:
    # the token is also bound inside the signed session.
    tossed = dict(session.cookies, backorder_csrf="planted")
    response = await platform.http.post("/api/v1/backorder-products", json=body, headers={
        "cookie": "; ".join(f"{k}={v}" for k, v in tossed.items()), "x-csrf-token": "planted"})
    assert response.status_code == 403
    assert await assigned_ids(platform) == set()
    ok = await session.request("POST", "/api/v1/backorder-products", json=body)
    assert ok.status_code == 201, ok.text


async def test_a_session_or_a_token_reaches_its_own_store_only(platform):
    other = await install_store(platform.stack)
    session = await login(platform)
    [mine] = await unassigned(platform, session, 1)
    assert (await session.request("POST", "/api/v1/backorder-products",
                                  json={"product_id": mine["product_id"]})).status_code == 201
    await platform.inventory.AssignProducts(inventory_pb2.AssignProductsRequest(
        store_hash=other.store_hash, items=[inventory_pb2.AssignItem(product_id=2, name="theirs", stock=1)]))

    listed = (await session.get("/api/v1/backorder-products")).json()["data"]
    assert [p["product_id"] for p in listed] == [mine["product_id"]]
    # Query parameters cannot pick another store.
    sneaky = await session.get(f"/api/v1/backorder-products?store_hash={other.store_hash}")
    assert [p["product_id"] for p in sneaky.json()["data"]] == [mine["product_id"]]
    created = await session.request("POST", "/api/v1/tokens", json={"name": "ERP"})
    assert created.status_code == 201
    token = created.json()["data"]["token"]
    bearer = {"authorization": f"Bearer {token}"}
    via_token = await platform.http.get("/api/v1/backorder-products", headers=bearer)
    assert [p["product_id"] for p in via_token.json()["data"]] == [mine["product_id"]]
    assert (await platform.http.get("/api/v1/backorder-products/2", headers=bearer)).status_code == 404
    # Tokens cannot mint tokens (session only), but may mutate without CSRF.
    assert (await platform.http.post("/api/v1/tokens", json={"name": "x"}, headers=bearer)).status_code == 403
    edited = await platform.http.patch(f"/api/v1/backorder-products/{mine['product_id']}", json={"threshold": 9},
                                       headers=bearer)
    assert edited.status_code == 200 and edited.json()["data"]["threshold"] == 9
    token_id = created.json()["data"]["id"]
    assert (await session.request("DELETE", f"/api/v1/tokens/{token_id}")).status_code == 200
    assert (await platform.http.get("/api/v1/backorder-products", headers=bearer)).status_code == 401
    assert (await platform.http.get("/api/v1/backorder-products",
                                    headers={"authorization": "Bearer bo_unknown"})).status_code == 401


async def test_removed_user_sessions_stop_working(platform):
    session = await login(platform, user={"id": 4242, "email": "clerk@example.com"})
    assert (await session.get("/api/v1/products")).status_code == 200
    token = await asyncio.to_thread(platform.store.signed_payload, "remove_user", user={"id": 4242,
                                                                                         "email": "clerk@example.com"})
    assert (await platform.http.get("/bc/remove_user", params={"signed_payload_jwt": token})).status_code == 200
    assert (await session.get("/api/v1/products")).status_code == 401


async def test_pages_escape_what_merchants_typed(platform):
    session = await login(platform)
    await platform.inventory.AssignProducts(inventory_pb2.AssignProductsRequest(
        store_hash=platform.store_hash, items=[inventory_pb2.AssignItem(
            product_id=3, name='<script>alert("x")</script>', sku="<img src=x onerror=alert(1)>", stock=1)]))
    page = await session.get("/admin/backorder-products")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(" in page.text
    assert "frame-ancestors" in page.headers["content-security-policy"]


# ---------------------------------------------------------------- products

async def test_assign_fills_the_catalog_fields_and_the_bigcommerce_stock(platform):
    session = await login(platform)
    [product] = await unassigned(platform, session, 1)
    response = await session.request("POST", "/api/v1/backorder-products",
                                     json={"product_id": product["product_id"], "threshold": None})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["name"] == product["name"] and data["sku"] == product["sku"]
    assert data["stock"] == product["current_stock"]
    assert data["threshold"] is None and data["salable_qty"] is None and data["status"] in {"in_stock", "low_stock"}
    again = await session.request("POST", "/api/v1/backorder-products", json={"product_id": product["product_id"]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_assigned"
    listed = await session.get("/api/v1/backorder-products", params={"q": product["sku"], "limit": 10})
    body = listed.json()
    assert [p["product_id"] for p in body["data"]] == [product["product_id"]]
    assert body["meta"]["pagination"] == {"total": 1, "count": 1, "per_page": 10, "current_page": 1,
                                          "total_pages": 1}
    one = await session.get(f"/api/v1/backorder-products/{product['product_id']}")
    assert one.json()["data"]["recent_ledger"][0]["kind"] == "assign"


async def test_plan_limit_is_a_clear_error_with_its_numbers(platform):
    session = await login(platform)
    first, second = await unassigned(platform, session, 2)
    assert (await session.request("POST", "/api/v1/backorder-products",
                                  json={"product_id": first["product_id"]})).status_code == 201
    over = await session.request("POST", "/api/v1/backorder-products", json={"product_id": second["product_id"]})
    assert over.status_code == 402
    error = over.json()["error"]
    assert error["code"] == "plan_limit_reached"
    assert error["details"]["limit"] == 1 and error["details"]["assigned"] == 1
    usage = (await session.get("/api/v1/usage")).json()["data"]
    assert usage == {"assigned": 1, "limit": 1, "unlimited": False, "plan": "free", "remaining": 0}


async def test_bulk_assign_edit_and_unassign_are_all_or_nothing(platform):
    await platform.set_plan("growth")
    session = await login(platform)
    products = await unassigned(platform, session, 3)
    ids = [p["product_id"] for p in products]
    bad = await session.request("POST", "/api/v1/backorder-products/bulk-assign", json={"items": [
        {"product_id": ids[0], "threshold": 3}, {"product_id": ids[1], "threshold": -1},
        {"product_id": ids[2], "back_in_stock_date": "2026-02-30"}]})
    assert bad.status_code == 422
    errors = bad.json()["error"]["details"]["errors"]
    assert {(e["item"], e["field"]) for e in errors} == {(1, "threshold"), (2, "back_in_stock_date")}
    assert await assigned_ids(platform) == set()

    good = await session.request("POST", "/api/v1/backorder-products/bulk-assign", json={"items": [
        {"product_id": i, "stock": 2, "threshold": 4} for i in ids]})
    assert good.status_code == 201 and len(good.json()["data"]) == 3
    unknown = await session.request("PATCH", "/api/v1/backorder-products", json={"items": [
        {"product_id": ids[0], "threshold": 10}, {"product_id": 999999, "threshold": 10}]})
    assert unknown.status_code in (404, 409, 422)
    assert (await platform.inventory.GetProduct(inventory_pb2.GetProductRequest(
        store_hash=platform.store_hash, product_id=ids[0]))).product.threshold == 4
    edited = await session.request("PATCH", "/api/v1/backorder-products", json={"items": [
        {"product_id": ids[0], "threshold": None, "incoming_stock": 7, "back_in_stock_date": "2026-12-01"},
        {"product_id": ids[1], "stock": 0}]})
    assert edited.status_code == 200, edited.text
    first, second = edited.json()["data"]
    assert first["threshold"] is None and first["incoming_stock"] == 7 and first["back_in_stock_date"] == "2026-12-01"
    assert second["stock"] == 0 and second["salable_qty"] == 4 and second["status"] == "backorder"

    one = await session.request("DELETE", f"/api/v1/backorder-products/{ids[0]}",
                                params={"restore_tracking": "true", "disable_product": "false"})
    assert one.status_code == 200
    many = await session.request("POST", "/api/v1/backorder-products/bulk-unassign",
                                 json={"product_ids": ids[1:], "restore_tracking": False, "disable_product": True})
    assert many.status_code == 200 and len(many.json()["data"]) == 2
    assert await assigned_ids(platform) == set()
    again = await session.request("DELETE", f"/api/v1/backorder-products/{ids[0]}")
    assert again.status_code in (404, 409, 422) and again.json()["error"]["code"] != "internal"


# ---------------------------------------------------------------- CSV

async def import_csv(session: AdminSession, text: str | bytes, *, mode: str = "assign", dry_run: bool = False,
                     overwrite: str | None = None) -> Any:
    data = {"mode": mode, "dry_run": str(dry_run).lower()}
    if overwrite is not None:
        data["overwrite"] = overwrite
    content = text.encode() if isinstance(text, str) else text
    response = await session.request("POST", "/api/v1/imports", data=data,
                                     files={"file": ("products.csv", content, "text/csv")})
    return response


async def test_import_with_one_bad_row_applies_nothing_and_names_row_column_reason(platform):
    await platform.set_plan("growth")
    session = await login(platform)
    a, b, c = await unassigned(platform, session, 3)
    text = HEADER + f"{a['product_id']},5,2,0,\n{b['product_id']},5,x,0,\n{c['product_id']},,,,2026-12-24\n"
    response = await import_csv(session, text)
    assert response.status_code == 422
    job = response.json()["data"]
    assert job["status"] == "failed" and job["applied"] == 0
    assert job["errors"] == [{"row": 3, "column": "backorder_threshold", "code": "not_a_whole_number",
                              "message": "backorder_threshold must be a whole number, got 'x'"}]
    assert await assigned_ids(platform) == set()
    report = await session.get(f"/api/v1/imports/{job['id']}/errors.csv")
    assert list(csv.reader(io.StringIO(report.text.lstrip("\ufeff"))))[1][:3] == ["3", "backorder_threshold",
                                                                                    "not_a_whole_number"]

    fixed = text.replace(",x,", ",3,")
    preview = await import_csv(session, fixed, dry_run=True)
    assert preview.status_code == 200 and preview.json()["data"]["status"] == "validated"
    assert await assigned_ids(platform) == set()
    applied = await import_csv(session, fixed)
    assert applied.status_code == 200, applied.text
    assert applied.json()["data"]["status"] == "completed" and applied.json()["data"]["applied"] == 3
    blank_stock = (await session.get(f"/api/v1/backorder-products/{c['product_id']}")).json()["data"]
    assert blank_stock["stock"] == c["current_stock"] and blank_stock["back_in_stock_date"] == "2026-12-24"
    polled = await session.get(f"/api/v1/imports/{applied.json()['data']['id']}")
    assert polled.json()["data"]["status"] == "completed"

    again = await import_csv(session, fixed)
    assert again.status_code == 422 and {e["row"] for e in again.json()["data"]["errors"]} == {2, 3, 4}


async def test_update_import_overwrites_only_the_chosen_columns(platform):
    await platform.set_plan("growth")
    session = await login(platform)
    a, b = await unassigned(platform, session, 2)
    for p in (a, b):
        await session.request("POST", "/api/v1/backorder-products",
                              json={"product_id": p["product_id"], "stock": 1, "threshold": 1})
    text = HEADER + f"{a['product_id']},50,9,4,2026-12-31\n"
    response = await import_csv(session, text, mode="update", overwrite="stock")
    assert response.status_code == 200, response.text
    product = (await session.get(f"/api/v1/backorder-products/{a['product_id']}")).json()["data"]
    assert product["stock"] == 50 and product["threshold"] == 1 and product["incoming_stock"] == 0
    not_assigned = await import_csv(session, HEADER + "999999,1,1,0,\n", mode="update")
    assert not_assigned.status_code == 422
    assert not_assigned.json()["data"]["errors"][0]["row"] == 2


async def test_file_level_problems_are_clear_errors(platform):
    session = await login(platform)
    cases = {
        "empty_file": b"",
        "invalid_encoding": (HEADER + "1,2,3,0,\n").encode() + "é".encode("latin-1") + b"\n",
        "wrong_delimiter": HEADER.replace(",", ";").encode() + b"1;2;3;0;\n",
        "bad_header": b"product_id,current_stock,colour\n1,2,red\n",
    }
    for code, content in cases.items():
        response = await import_csv(session, content)
        assert response.status_code == 422, code
        job = response.json()["data"]
        assert job["status"] == "failed"
        assert job["errors"][0]["code"] in {code, "unknown_column", "missing_column"}, (code, job)
    duplicate = await import_csv(session, HEADER + "1,2,3,0,\n1,2,3,0,\n")
    assert duplicate.json()["data"]["errors"] == [{
        "row": 3, "column": "product_id", "code": "duplicate_product",
        "message": "product 1 appears again (first on row 2)"}]
    unknown = await import_csv(session, HEADER + "987654,2,3,0,\n")
    assert unknown.json()["data"]["errors"][0]["code"] == "unknown_product"
    template = await session.get("/api/v1/imports/template.csv")
    assert template.text.startswith(HEADER.strip())


async def test_export_neutralises_formulas_and_imports_back(platform):
    await platform.set_plan("growth")
    session = await login(platform)
    products = await unassigned(platform, session, 2)
    await platform.inventory.AssignProducts(inventory_pb2.AssignProductsRequest(
        store_hash=platform.store_hash, items=[
            inventory_pb2.AssignItem(product_id=products[0]["product_id"], name="=HYPERLINK(\"http://x\")",
                                     sku="+SKU", stock=4, threshold=2),
            inventory_pb2.AssignItem(product_id=products[1]["product_id"], name="@SUM(A1)", sku="-1x", stock=0)]))
    export = await session.get("/api/v1/backorder-products/export.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text.lstrip("\ufeff"))))
    by_id = {int(r["product_id"]): r for r in rows}
    first, second = by_id[products[0]["product_id"]], by_id[products[1]["product_id"]]
    assert first["name"] == "'=HYPERLINK(\"http://x\")" and first["sku"] == "'+SKU"
    assert second["name"] == "'@SUM(A1)" and second["sku"] == "'-1x" and second["backorder_threshold"] == ""
    back = await import_csv(session, export.content, mode="update")
    assert back.status_code == 200, back.text
    assert back.json()["data"]["applied"] == 2


# ---------------------------------------------------------------- settings, report, billing, sync

async def test_settings_round_trip_and_invalid_fields_name_the_field(platform):
    session = await login(platform)
    current = (await session.get("/api/v1/settings/storefront")).json()["data"]
    assert current["theme_id"]
    saved = await session.request("PUT", "/api/v1/settings/storefront", json={
        "backorder_message": "Only {salable_qty} left", "backorder_button_color": "#112233",
        "allowed_origins": ["https://shop.example.com"]})
    assert saved.status_code == 200, saved.text
    assert saved.json()["data"]["backorder_button_color"] == "#112233"
    assert (await session.get("/api/v1/settings/storefront")).json()["data"]["allowed_origins"] == [
        "https://shop.example.com"]
    bad = await session.request("PUT", "/api/v1/settings/storefront", json={"backorder_button_color": "blue"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["errors"][0]["field"] == "backorder_button_color"
    unknown = await session.request("PUT", "/api/v1/settings/storefront", json={"colour": "x"})
    assert unknown.status_code == 422
    themes = (await session.get("/api/v1/themes")).json()["data"]
    assert any(t["id"] == current["theme_id"] for t in themes)
    inventory = await session.request("PUT", "/api/v1/settings/inventory", json={"return_stock_on_cancel": False})
    assert inventory.json()["data"]["return_stock_on_cancel"] is False


async def test_report_lists_filters_and_exports(platform):
    await platform.set_plan("growth")
    session = await login(platform)
    a, b = await unassigned(platform, session, 2)
    for p in (a, b):
        await platform.assign(p["product_id"], stock=0, threshold=10)
        await platform.create_order([(p["product_id"], 3)])

    async def two_rows() -> bool:
        body = (await session.get("/api/v1/reports/backorders")).json()
        return body["meta"]["pagination"]["total"] == 2

    await platform.wait_for(two_rows, timeout=30, message="two report rows")
    filtered = (await session.get("/api/v1/reports/backorders", params={"q": a["sku"]})).json()["data"]
    assert len(filtered) == 1 and filtered[0]["backordered_qty"] == 3 and filtered[0]["purchased_qty"] == 3
    assert filtered[0]["order_email"] == "buyer@example.com"
    none = (await session.get("/api/v1/reports/backorders", params={"from": "2001-01-01", "to": "2001-01-02"}))
    assert none.json()["data"] == []
    bad = await session.get("/api/v1/reports/backorders", params={"from": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["errors"][0]["field"] == "from"
    exported = await session.get("/api/v1/reports/backorders.csv", params={"q": b["sku"]})
    lines = [line for line in exported.text.splitlines() if line.strip()]
    assert len(lines) == 2 and b["sku"] in lines[1]


async def test_plans_quote_then_change(platform):
    session = await login(platform)
    plans = (await session.get("/api/v1/billing/plans")).json()["data"]
    assert [p["code"] for p in plans][:2] == ["free", "starter"]
    quote = (await session.get("/api/v1/billing/quote", params={"plan": "starter"})).json()["data"]
    assert quote["kind"] == "upgrade" and quote["amount"]["amount_cents"] > 0
    changed = await session.request("PUT", "/api/v1/billing/subscription", json={"plan": "starter"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["plan"]["code"] == "starter"
    assert changed.json()["data"]["change"]["amount"]["amount_cents"] == quote["amount"]["amount_cents"]
    sub = (await session.get("/api/v1/billing/subscription")).json()["data"]
    assert sub["usage"]["limit"] == 25
    down = await session.request("PUT", "/api/v1/billing/subscription", json={"plan": "free"})
    assert down.json()["data"]["pending_change"]["plan"] == "free"
    missing = await session.request("PUT", "/api/v1/billing/subscription", json={})
    assert missing.status_code == 422
    charges = (await session.get("/api/v1/billing/charges")).json()["data"]
    assert charges[0]["amount"]["amount_cents"] == quote["amount"]["amount_cents"]  # newest first
    cancelled = await session.request("DELETE", "/api/v1/billing/subscription/pending-change")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["pending_change"] is None
    assert cancelled.json()["data"]["plan"]["code"] == "starter"
    again = await session.request("DELETE", "/api/v1/billing/subscription/pending-change")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "no_pending_change"


async def test_sync_replaces_stock_with_the_bigcommerce_level(platform):
    session = await login(platform)
    [product] = await unassigned(platform, session, 1)
    await session.request("POST", "/api/v1/backorder-products", json={"product_id": product["product_id"],
                                                                       "stock": product["current_stock"]})
    await platform.inventory.SetStock(inventory_pb2.SetStockRequest(
        store_hash=platform.store_hash, product_id=product["product_id"], stock=product["current_stock"] + 5,
        source=inventory_pb2.STOCK_SOURCE_ADMIN))
    response = await session.request("POST", "/api/v1/sync", json={"product_ids": [product["product_id"]]})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["changed"] == 1
    after = (await session.get(f"/api/v1/backorder-products/{product['product_id']}")).json()["data"]
    assert after["stock"] == product["current_stock"]


def test_cookie_values_reads_partitioned_cookies():
    assert cookie_values(["a=1; Path=/; Secure; SameSite=None; Partitioned; HttpOnly", "b=x=y; Path=/"]) == {
        "a": "1", "b": "x=y"}
