"""The merchant's admin UI: server-rendered pages (Jinja2, autoescaped) opened in the
BigCommerce control panel's iframe through GET /bc/load.

Pages read through the same query functions as the JSON API; every mutation is a fetch()
from static/admin.js to /api/v1 carrying the CSRF token of the page's
<meta name="csrf-token">. GET /bc/remove_user ends the removed user's sessions.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from services.common.bigcommerce import SignedPayload, SignedPayloadError
from services.common.errors import DomainError, error_from_rpc
from services.gateway import csv_format
from services.gateway.admin import queries
from services.gateway.admin.http import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Handler, pagination
from services.gateway.admin.mapping import SETTINGS_TEXT_FIELDS
from services.gateway.auth import (
    Principal,
    RemovedUsers,
    new_session,
    secret_text,
    session_principal,
    set_session_cookies,
    sign,
    verify_signed_payload,
)
from services.gateway.request_log import note_store

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
ASSET_VERSION = str(int(time.time()))
PAGE_QUERY_KEYS = {
    "products": ("q", "visibility", "availability", "assigned", "limit"),
    "assigned": ("q", "status", "limit"),
    "report": ("q", "from", "to", "category_id", "brand_id", "limit"),
}


def build_templates() -> Environment:
    # Autoescape everything we render: names, SKUs and messages are merchant-typed text.
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True,
                                                                                        default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True)


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    template = request.app.state.admin_templates.get_template(name)
    html = template.render(asset_version=ASSET_VERSION, **context)
    return HTMLResponse(html, status_code=status, headers={
        "cache-control": "no-store",
        # Only BigCommerce's control panel (and ourselves) may frame the admin.
        "content-security-policy": "frame-ancestors 'self' https://*.bigcommerce.com http://127.0.0.1:* "
                                   "http://localhost:*",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    })


def signin_page(request: Request, title: str, message: str, status: int) -> HTMLResponse:
    return render(request, "admin/signin.html", {"title": title, "message": message}, status)


def query_string(params: Any, keys: tuple[str, ...]) -> str:
    """The page's filters as `a=b&` (ready for `page=` to be appended)."""
    pairs = [(k, params.get(k)) for k in keys if params.get(k)]
    return urllib.parse.urlencode(pairs) + "&" if pairs else ""


async def attempt(notices: list[dict[str, str]], what: str, awaitable: Awaitable[Any], default: Any) -> Any:
    """Await a backend read; on failure show a notice and render the rest of the page."""
    try:
        return await awaitable
    except DomainError as exc:
        if exc.code == "validation_failed":
            notices.append({"kind": "warning", "title": "Check the filters", "text": exc.message})
        else:
            notices.append({"kind": "danger", "title": f"{what} could not be loaded", "text": exc.message})
    except grpc.RpcError as exc:
        error = error_from_rpc(exc)
        notices.append({"kind": "danger", "title": f"{what} could not be loaded", "text": error.message})
    return default


async def page_context(request: Request, principal: Principal, section: str, page: str,
                       notices: list[dict[str, str]]) -> dict[str, Any]:
    usage = await request.state.usage
    return {"store_hash": principal.store_hash, "csrf": principal.csrf, "section": section, "page": page,
            "notices": notices, "usage": usage}


def session_page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Session-only pages: without a valid session, a sign-in hint (401), never data."""

    async def endpoint(request: Request) -> Response:
        principal = session_principal(request)
        if principal is None:
            return signin_page(request, "Open BackOrder from your BigCommerce control panel",
                               "Your session has ended or cookies are blocked. Open Apps › My Apps › BackOrder "
                               "in the control panel to sign in again.", 401)
        # The header's usage pill is fetched while the page loads its own data.
        request.state.usage = asyncio.ensure_future(
            attempt([], "usage", queries.query_usage(request, principal.store_hash), None))
        try:
            return await handler(request, principal)
        finally:
            if not request.state.usage.done():
                request.state.usage.cancel()

    endpoint.__name__ = handler.__name__
    return endpoint


class Pages:
    """The admin's pages, each declared on its handler (`@page("/admin/products")`)."""

    def __init__(self) -> None:
        self.routes: list[BaseRoute] = []

    def __call__(self, path: str) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            self.routes.append(Route(path, session_page(handler), methods=["GET"]))
            return handler

        return declare


page = Pages()


# ---------------------------------------------------------------- BigCommerce callbacks

JWT_LEEWAY_S = 30


def _verify(request: Request) -> SignedPayload:
    return verify_signed_payload(request.query_params.get("signed_payload_jwt", ""), request.app.state.settings,
                                 leeway_s=JWT_LEEWAY_S)


async def bc_load(request: Request) -> Response:
    """Verify the control panel's signed payload and open a session for that store and user."""
    try:
        payload = _verify(request)
    except SignedPayloadError as exc:
        log.info("refused /bc/load: %s", exc)
        return signin_page(request, "This link could not be verified",
                           f"{exc}. Open BackOrder again from your BigCommerce control panel.", 401)
    note_store(request.scope, payload.store_hash)
    user = payload.user or {}
    session = new_session(payload.store_hash, str(user.get("id", "")), str(user.get("email", "")))
    response = RedirectResponse("/admin/products", status_code=303)
    set_session_cookies(response, sign(session, secret_text(request.app.state.settings.session_secret)),
                        session["c"])
    return response


async def bc_remove_user(request: Request) -> Response:
    """A user lost access to the store: their existing sessions stop working."""
    try:
        payload = _verify(request)
    except SignedPayloadError as exc:
        return PlainTextResponse(str(exc), status_code=401)
    removed: RemovedUsers = request.app.state.removed_users
    removed.remove(payload.store_hash, str((payload.user or {}).get("id", "")))
    return PlainTextResponse("ok")


# ---------------------------------------------------------------- pages

async def admin_home(request: Request) -> Response:
    return RedirectResponse("/admin/products", status_code=303)


async def _counts(request: Request, principal: Principal) -> dict[str, Any]:
    assigned = await attempt([], "count", queries.query_assigned(request, principal.store_hash, {"limit": "1"}),
                             None)
    return {"all": None, "assigned": assigned["meta"]["pagination"]["total"] if assigned else None}


UI_PAGE_SIZE = 25


def with_page_size(params: Any) -> dict[str, str]:
    return {"limit": str(UI_PAGE_SIZE), **dict(params)}


EMPTY_LIST = {"data": [], "meta": {"pagination": pagination(0, 0, 1, DEFAULT_PAGE_SIZE)}}


@page("/admin/products")
async def products_page(request: Request, principal: Principal) -> Response:
    notices: list[dict[str, str]] = []
    params = request.query_params
    result, counts = await asyncio.gather(
        attempt(notices, "Products", queries.query_catalog(request, principal.store_hash, with_page_size(params)),
                EMPTY_LIST),
        _counts(request, principal))
    counts["all"] = result["meta"]["pagination"]["total"] if not any(
        params.get(k) for k in ("q", "visibility", "availability", "assigned")) else None
    return render(request, "admin/products.html", {
        **await page_context(request, principal, "products", "products", notices),
        "result": result, "q": params.get("q", ""), "counts": counts,
        "filters": {k: params.get(k, "") for k in ("visibility", "availability", "assigned")},
        "base_query": query_string(params, PAGE_QUERY_KEYS["products"])})


@page("/admin/backorder-products")
async def assigned_page(request: Request, principal: Principal) -> Response:
    notices: list[dict[str, str]] = []
    params = request.query_params
    result = await attempt(notices, "Assigned products",
                           queries.query_assigned(request, principal.store_hash, with_page_size(params)),
                           EMPTY_LIST)
    counts = {"all": None, "assigned": result["meta"]["pagination"]["total"]
              if not params.get("q") and not params.get("status") else None}
    if counts["assigned"] is None:
        counts = await _counts(request, principal)
    return render(request, "admin/assigned.html", {
        **await page_context(request, principal, "products", "assigned", notices),
        "result": result, "q": params.get("q", ""), "status": params.get("status", ""), "counts": counts,
        "base_query": query_string(params, PAGE_QUERY_KEYS["assigned"])})


def _ids(request: Request) -> list[int]:
    ids = []
    for raw in request.query_params.get("ids", "").split(","):
        if raw.strip().isdigit() and int(raw) > 0:
            ids.append(int(raw))
    return list(dict.fromkeys(ids))[:MAX_PAGE_SIZE]


@page("/admin/bulk-assign")
async def bulk_assign_page(request: Request, principal: Principal) -> Response:
    notices: list[dict[str, str]] = []
    ids = _ids(request)
    found = await attempt(notices, "Products", queries.query_catalog_by_ids(request, principal.store_hash, ids),
                          ([], ids))
    products, missing = found
    items = [{"product_id": p.product_id, "name": p.name, "sku": p.sku, "stock": p.current_stock,
              "threshold": None, "incoming_stock": 0, "back_in_stock_date": ""}
             for p in products if not p.assigned]
    skipped = list(missing) + [p.product_id for p in products if p.assigned]
    return render(request, "admin/bulk.html", {
        **await page_context(request, principal, "products", "bulk-assign", notices),
        "mode": "assign", "items": items, "missing": skipped, "back_url": "/admin/products"})


@page("/admin/bulk-edit")
async def bulk_edit_page(request: Request, principal: Principal) -> Response:
    notices: list[dict[str, str]] = []
    ids = _ids(request)
    items = await attempt(notices, "Assigned products",
                          queries.query_assigned_by_ids(request, principal.store_hash, ids), [])
    found = {i["product_id"] for i in items}
    return render(request, "admin/bulk.html", {
        **await page_context(request, principal, "products", "bulk-edit", notices),
        "mode": "edit", "items": items, "missing": [i for i in ids if i not in found],
        "back_url": "/admin/backorder-products"})


@page("/admin/imports")
async def imports_page(request: Request, principal: Principal) -> Response:
    mode = "update" if request.query_params.get("mode") == "update" else "assign"
    return render(request, "admin/imports.html", {
        **await page_context(request, principal, "imports", "imports", []), "mode": mode,
        "max_mb": csv_format.MAX_IMPORT_BYTES // (1024 * 1024), "max_rows": csv_format.MAX_IMPORT_ROWS})


@page("/admin/settings")
async def settings_page(request: Request, principal: Principal) -> Response:
    notices: list[dict[str, str]] = []
    settings, themes, inventory_settings = await asyncio.gather(
        attempt(notices, "Storefront settings", queries.query_settings(request, principal.store_hash), None),
        attempt(notices, "Themes", queries.query_themes(request), []),
        attempt(notices, "Inventory settings", queries.query_inventory_settings(request, principal.store_hash),
                {"low_stock_level": 0, "return_stock_on_cancel": True, "keep_assigned_when_tracking_enabled": True,
                 "timezone": ""}))
    if settings is None:
        settings = {name: "" for name in SETTINGS_TEXT_FIELDS} | {
            "custom_theme": False, "low_stock_level": 0, "allowed_origins": []}
    return render(request, "admin/settings.html", {
        **await page_context(request, principal, "settings", "settings", notices),
        "settings": settings, "themes": themes, "inventory_settings": inventory_settings})


@page("/admin/report")
async def report_page(request: Request, principal: Principal) -> Response:
    notices: list[dict[str, str]] = []
    params = request.query_params
    result = await attempt(notices, "The report",
                           queries.query_report(request, principal.store_hash, with_page_size(params)), EMPTY_LIST)
    keys = tuple(k for k in PAGE_QUERY_KEYS["report"] if k != "limit")
    return render(request, "admin/report.html", {
        **await page_context(request, principal, "report", "report", notices), "result": result,
        "params": {k: params.get(k, "") for k in keys},
        "filter_query": query_string(params, keys).rstrip("&"),
        "base_query": query_string(params, PAGE_QUERY_KEYS["report"])})


@page("/admin/plans")
async def plans_page(request: Request, principal: Principal) -> Response:
    notices: list[dict[str, str]] = []
    plans, subscription = await asyncio.gather(
        attempt(notices, "Plans", queries.query_plans(request), []),
        attempt(notices, "Your subscription", queries.query_subscription(request, principal.store_hash), None))
    context = await page_context(request, principal, "plans", "plans", notices)
    if subscription is None:
        subscription = {"plan": {"code": "", "name": "Unknown", "price": {"amount_cents": 0}}, "history": [],
                        "pending_change": None, "last_charge": None, "cycle_end": None}
    usage = context["usage"] or {"assigned": 0, "limit": 0, "unlimited": False}
    return render(request, "admin/plans.html", {
        **context, "plans": plans, "subscription": subscription, "usage": usage,
        "plan_names": {p["code"]: p["name"] for p in plans}})


@page("/admin/tokens")
async def tokens_page(request: Request, principal: Principal) -> Response:
    notices: list[dict[str, str]] = []
    tokens = await attempt(notices, "API tokens", queries.query_tokens(request, principal.store_hash), [])
    return render(request, "admin/tokens.html", {
        **await page_context(request, principal, "tokens", "tokens", notices), "tokens": tokens})


async def startup(app: Any) -> None:
    app.state.admin_templates = build_templates()


routes: list[BaseRoute] = [
    Route("/bc/load", bc_load, methods=["GET"]),
    Route("/bc/remove_user", bc_remove_user, methods=["GET"]),
    Route("/admin", admin_home, methods=["GET"]),
    Route("/admin/", admin_home, methods=["GET"]),
    *page.routes,
]
