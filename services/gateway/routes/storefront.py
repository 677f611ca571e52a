"""The public storefront API and the storefront script (API.md "Storefront API"): raw ASGI
endpoints on the hot path, answered from the response cache (storefront_cache.py).

Public API hardening: CORS (any origin unless the store lists its origins, or the gateway's
BACKORDER_STOREFRONT_CORS_ORIGINS is not "*"), a token bucket per store and gateway
process (BACKORDER_STOREFRONT_RATE_LIMIT requests/s, BACKORDER_STOREFRONT_RATE_BURST; 0 =
off; rate_limit.py), identical 404 bodies for unknown stores, unknown products and
malformed ids, JSON with <, > and & escaped, validated cart lines and a 16 KiB body limit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import grpc
from backorder.storefront.v1 import storefront_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from services.common.errors import DomainError, ErrorEntry, error_from_rpc, field_error
from services.common.stores import is_store_hash
from services.gateway.storefront_cache import Entry, StorefrontState, fetch_store, fetch_view, state_of
from services.gateway.storefront_json import (
    NOT_FOUND_BODY,
    RATE_LIMITED_BODY,
    cart_json,
    error_bytes,
    etag_of,
    json_bytes,
)

log = logging.getLogger(__name__)

PREFIX = "/storefront/v1"
SCRIPT_PATH = Path(__file__).resolve().parent.parent / "static" / "backorder.js"
INVENTORY_SUBJECT = "backorder.*.inventory.>"
SETTINGS_SUBJECT = "backorder.*.storefront.settings.changed"
_PRODUCT_ID = re.compile(r"^[1-9][0-9]{0,15}$")
MAX_CART_BODY = 16 * 1024
MAX_CART_LINES = 100


# ---------------------------------------------------------------- ASGI helpers

def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            found: bytes = value
            return found
    return None


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _plain_headers(body: bytes, cache_control: bytes = b"no-store") -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"cache-control", cache_control), (b"vary", b"Origin"), (b"x-content-type-options", b"nosniff")]


async def _send_plain(send: Send, status: int, body: bytes, cors: list[tuple[bytes, bytes]] | None = None) -> None:
    """An uncached JSON answer (errors); a 429 says when to retry."""
    headers = _plain_headers(body)
    if status == 429:
        headers.append((b"retry-after", b"1"))
    await _send(send, status, [*headers, *cors] if cors else headers, body)


def _preflight_headers(cors: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    if not cors:
        return [(b"content-length", b"0"), (b"vary", b"Origin")]
    return [*cors, (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", b"Content-Type, If-None-Match"),
            (b"access-control-max-age", b"600"), (b"content-length", b"0"), (b"vary", b"Origin")]


async def _send_entry(scope: Scope, send: Send, entry: Entry, cors: list[tuple[bytes, bytes]]) -> None:
    if_none_match = _header(scope, b"if-none-match")
    if if_none_match is not None and entry.etag.encode() in if_none_match:
        headers = [h for h in entry.headers if h[0] not in {b"content-type", b"content-length"}]
        await _send(send, 304, [*headers, *cors], b"")
        return
    await _send(send, entry.status, [*entry.headers, *cors], b"" if scope["method"] == "HEAD" else entry.body)


# ---------------------------------------------------------------- endpoints


class ProductViewEndpoint:
    """GET /storefront/v1/stores/{store_hash}/products/{product_id} (raw ASGI: the hot path).

    A cache hit costs a dict lookup, the store's token bucket and one header pass; ids are
    validated on a miss (only valid ids are ever cached).
    """

    def __init__(self) -> None:
        self._app: Any = None
        self._state: StorefrontState | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        if app is not self._app or self._state is None:
            self._app, self._state = app, state_of(app)
        state = self._state
        params = scope["path_params"]
        store_hash = params["store_hash"]
        origin = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"if-none-match":
                if_none_match = value
        if scope["method"] == "OPTIONS":
            await _send(send, 204, _preflight_headers(state.cors_headers(store_hash, origin)), b"")
            return
        raw_id = params["product_id"]
        if not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 16:
            await _send_plain(send, 404, NOT_FOUND_BODY)
            return
        if not state.allow(store_hash):
            await _send_plain(send, 429, RATE_LIMITED_BODY, state.cors_headers(store_hash, origin))
            return
        key = (store_hash, int(raw_id))
        entry = state.views.get(key)
        now = time.monotonic()
        if entry is None or entry.expires_at <= now or origin is not None and (
                (store := state.stores.get(store_hash)) is None or store.entry.expires_at <= now):
            if not is_store_hash(store_hash) or not _PRODUCT_ID.match(raw_id):
                await _send_plain(send, 404, NOT_FOUND_BODY)
                return
            try:
                if origin is not None:
                    await fetch_store(app, state, store_hash)
                if entry is None or entry.expires_at <= now:
                    entry = await fetch_view(app, state, store_hash, key[1])
            except DomainError as error:
                if entry is None or error.code not in {"unavailable", "internal"}:
                    await _send_plain(send, *error_bytes(error), state.cors_headers(store_hash, origin))
                    return
                # Storefront service down: an expired view beats none (stale-if-error), uncached.
                entry = Entry(entry.status, entry.body, entry.etag, now, [
                    h if h[0] != b"cache-control" else (b"cache-control", b"no-store") for h in entry.headers])
        cors = state.cors_headers(store_hash, origin) if origin is not None else []
        if if_none_match is not None and entry.etag.encode() in if_none_match:
            headers = [h for h in entry.headers if h[0] not in {b"content-type", b"content-length"}]
            await _send(send, 304, [*headers, *cors], b"")
            return
        await _send(send, entry.status, entry.headers + cors if cors else entry.headers,
                    b"" if scope["method"] == "HEAD" else entry.body)


class StoreEndpoint:
    """A store's public endpoint: answers the CORS preflight, then `answer`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = state_of(scope["app"])
        store_hash = scope["path_params"]["store_hash"]
        origin = _header(scope, b"origin")
        if scope["method"] == "OPTIONS":
            await _send(send, 204, _preflight_headers(state.cors_headers(store_hash, origin)), b"")
            return
        if not is_store_hash(store_hash):
            await _send_plain(send, 404, NOT_FOUND_BODY)
            return
        if not state.allow(store_hash):
            await _send_plain(send, 429, RATE_LIMITED_BODY, state.cors_headers(store_hash, origin))
            return
        await self.answer(scope, receive, send, state, store_hash, origin)

    async def answer(self, scope: Scope, receive: Receive, send: Send, state: StorefrontState, store_hash: str,
                     origin: bytes | None) -> None:
        raise NotImplementedError


class SettingsEndpoint(StoreEndpoint):
    """GET /storefront/v1/stores/{store_hash}/settings: theme id and selectors."""

    async def answer(self, scope: Scope, receive: Receive, send: Send, state: StorefrontState, store_hash: str,
                     origin: bytes | None) -> None:
        try:
            store = await fetch_store(scope["app"], state, store_hash)
            if store.entry.status == 404:
                raise DomainError("not found", code="not_found")
        except DomainError as error:
            await _send_plain(send, *error_bytes(error), state.cors_headers(store_hash, origin))
            return
        await _send_entry(scope, send, store.entry, state.cors_headers(store_hash, origin))


def _parse_cart(body: bytes) -> list[pb.CartLine]:
    """Cart lines from the request body; raises DomainError(validation_failed) naming the field."""

    def invalid(field_name: str, reason: str, item: int | None = None) -> DomainError:
        entry: ErrorEntry = field_error(field_name, reason, item=item)
        return DomainError("invalid cart", code="validation_failed", details={"errors": [entry]})

    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise invalid("body", "not_json") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("lines"), list):
        raise invalid("lines", "required")
    lines = payload["lines"]
    if not lines or len(lines) > MAX_CART_LINES:
        raise invalid("lines", "empty" if not lines else "too_many")
    parsed: list[pb.CartLine] = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise invalid("lines", "not_an_object", index)
        values = {}
        for name, required in (("product_id", True), ("quantity", True), ("in_cart_qty", False)):
            value = line.get(name, None if required else 0)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
                raise invalid(name, "not_a_whole_number", index)
            values[name] = value
        parsed.append(pb.CartLine(**values))
    return parsed


class CartCheckEndpoint(StoreEndpoint):
    """POST /storefront/v1/stores/{store_hash}/cart-check (JSON; text/plain accepted, so the
    script's request needs no preflight)."""

    async def answer(self, scope: Scope, receive: Receive, send: Send, state: StorefrontState, store_hash: str,
                     origin: bytes | None) -> None:
        status, body = await self._check(scope, receive, state, store_hash, origin)
        await _send_plain(send, status, body, state.cors_headers(store_hash, origin))

    async def _check(self, scope: Scope, receive: Receive, state: StorefrontState, store_hash: str,
                     origin: bytes | None) -> tuple[int, bytes]:
        body = b""
        async for chunk in Request(scope, receive).stream():
            body += chunk
            if len(body) > MAX_CART_BODY:
                return 413, json_bytes({"error": {"code": "payload_too_large", "message": "Body too large.",
                                                  "details": {"max_bytes": MAX_CART_BODY}}})
        app = scope["app"]
        try:
            lines = _parse_cart(body)
            if origin is not None:
                await fetch_store(app, state, store_hash)
            try:
                result = await app.state.backends.storefront.CheckCart(
                    pb.CheckCartRequest(store_hash=store_hash, lines=lines))
            except grpc.RpcError as exc:
                raise error_from_rpc(exc) from None
        except DomainError as error:
            return error_bytes(error)
        return 200, json_bytes(cart_json(result))


async def backorder_js(request: Request) -> Response:
    """GET /storefront/v1/backorder.js: the storefront script (static, cacheable)."""
    state = state_of(request.app)
    if state.script is None:
        body = SCRIPT_PATH.read_bytes()
        state.script = Entry(200, body, etag_of(body), float("inf"), [])
    script = state.script
    headers = {"cache-control": "public, max-age=300", "etag": script.etag,
               "x-content-type-options": "nosniff", "access-control-allow-origin": "*"}
    if script.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(script.body, media_type="application/javascript; charset=utf-8", headers=headers)


routes: list[BaseRoute] = [
    Route(f"{PREFIX}/stores/{{store_hash}}/products/{{product_id}}", ProductViewEndpoint(),
          methods=["GET", "OPTIONS"], name="storefront_product"),
    Route(f"{PREFIX}/stores/{{store_hash}}/cart-check", CartCheckEndpoint(), methods=["POST", "OPTIONS"],
          name="storefront_cart_check"),
    Route(f"{PREFIX}/stores/{{store_hash}}/settings", SettingsEndpoint(), methods=["GET", "OPTIONS"],
          name="storefront_settings"),
    Route(f"{PREFIX}/backorder.js", backorder_js, methods=["GET"], name="storefront_script"),
]


# ---------------------------------------------------------------- lifecycle

async def startup(app: Any) -> None:
    """Build the cache and subscribe to the events that invalidate it (core NATS)."""
    state = state_of(app)
    bus = app.state.bus

    async def on_message(msg: Any) -> None:
        try:
            state.handle_event(msg.subject, msg.data)
        except Exception:  # noqa: BLE001 - a bad event must not stop the subscription
            log.exception("storefront cache: cannot handle event on %s", msg.subject)

    if bus is not None and bus.nc is not None:
        for subject in (INVENTORY_SUBJECT, SETTINGS_SUBJECT):
            state.subscriptions.append(await bus.nc.subscribe(subject, cb=on_message))
        bus.on_connection_change(state.on_nats)


async def shutdown(app: Any) -> None:
    state = getattr(app.state, "storefront", None)
    if state is None:
        return
    for subscription in state.subscriptions:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    state.subscriptions.clear()
