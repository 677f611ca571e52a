"""The public storefront API and the storefront script (API.md "Storefront API").

Product views are served from an in-process cache of rendered responses (JSON bytes plus
ETag) keyed by store and product. The cache is kept fresh by a core NATS subscription to
the same inventory events the storefront service consumes and to the storefront's
settings.changed events:
- an inventory event for a product drops that product's entry and remembers the event's
  version; a settings event drops the store's entries and remembers the revision;
- a response fetched from the service is cached only if it is at least as new as the
  versions remembered, so an event that reaches the gateway before the service applied it
  cannot leave a stale view behind (the gateway fetches again after 5, 10 and 20 ms, then
  serves what it has with Cache-Control: no-store);
- every entry also expires after a TTL (BACKORDER_STOREFRONT_CACHE_TTL_S, 30 s), and the
  whole cache is dropped when the NATS connection comes back after an outage, during which
  entries live 1 s.
So a view is stale for at most the event lag (relay -> NATS -> gateway) while NATS is up.
When the storefront service cannot be reached, an expired entry is served (no-store) rather
than an error.

Public API hardening: CORS (any origin unless the store lists its origins, or the gateway's
BACKORDER_STOREFRONT_CORS_ORIGINS is not "*"), a token bucket per store and gateway
process (BACKORDER_STOREFRONT_RATE_LIMIT requests/s, BACKORDER_STOREFRONT_RATE_BURST; 0 =
off), identical 404 bodies for unknown stores, unknown products and malformed ids, JSON
with <, > and & escaped, validated cart lines and a 16 KiB body limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from backorder.events.v1 import envelope_pb2, inventory_events_pb2, storefront_events_pb2
from backorder.storefront.v1 import storefront_pb2 as pb
from google.protobuf.message import DecodeError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from services.common.errors import DomainError, error_from_rpc
from services.common.settings import env
from services.gateway.errors import HTTP_STATUS_BY_CODE

log = logging.getLogger(__name__)

PREFIX = "/storefront/v1"
SCRIPT_PATH = Path(__file__).resolve().parent.parent / "static" / "backorder.js"
INVENTORY_SUBJECT = "backorder.*.inventory.>"
SETTINGS_SUBJECT = "backorder.*.storefront.settings.changed"
PRODUCT_EVENT_TYPES: dict[str, Any] = {
    "product.assigned": inventory_events_pb2.ProductAssigned,
    "product.unassigned": inventory_events_pb2.ProductUnassigned,
    "stock.changed": inventory_events_pb2.StockChanged,
    "product.sold_out": inventory_events_pb2.ProductSoldOut,
    "product.back_in_stock": inventory_events_pb2.ProductBackInStock,
}
_STORE_HASH = re.compile(r"^[a-z0-9]{1,32}$")
_PRODUCT_ID = re.compile(r"^[1-9][0-9]{0,15}$")
MAX_CART_BODY = 16 * 1024
MAX_CART_LINES = 100
DEGRADED_TTL_S = 1.0
STALE_RETRIES = 3


# ---------------------------------------------------------------- JSON and responses

def json_bytes(value: Any) -> bytes:
    """Compact JSON safe to embed anywhere: <, > and & are escaped inside strings."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


NOT_FOUND_BODY = json_bytes({"error": {"code": "not_found", "message": "Not found.", "details": {}}})
RATE_LIMITED_BODY = json_bytes({"error": {"code": "rate_limited", "message": "Too many requests.", "details": {}}})
UNAVAILABLE_BODY = json_bytes({"error": {"code": "unavailable", "message": "Temporarily unavailable.",
                                         "details": {}}})


def error_bytes(error: DomainError) -> tuple[int, bytes]:
    if error.code == "not_found":
        return 404, NOT_FOUND_BODY
    if error.code in {"unavailable", "internal"}:
        return 503, UNAVAILABLE_BODY
    status = HTTP_STATUS_BY_CODE.get(error.code, 400)
    return status, json_bytes({"error": error.to_dict()})


def view_json(view: pb.ProductView) -> dict[str, Any]:
    return {
        "product_id": view.product_id,
        "assigned": view.assigned,
        "status": view.status,
        "stock": view.stock,
        "threshold": view.threshold if view.HasField("threshold") else None,
        "salable_qty": view.salable_qty if view.HasField("salable_qty") else None,
        "incoming_stock": view.incoming_stock,
        "back_in_stock_date": view.back_in_stock_date or None,
        "messages": {
            "inventory": view.messages.inventory,
            "shipping": view.messages.shipping,
            "button_text": view.messages.button_text,
            "button_color": view.messages.button_color,
            "button_text_color": view.messages.button_text_color,
        },
    }


def public_settings_json(settings: pb.StorefrontSettings) -> dict[str, Any]:
    """What the script needs: theme and selectors. Texts for staff (order note) stay private."""
    selectors = settings.selectors
    return {
        "store_hash": settings.store_hash,
        "theme_id": settings.theme_id,
        "theme_version": settings.theme_version,
        "custom_theme": settings.custom_theme,
        "selectors": {f.name: getattr(selectors, f.name) for f in selectors.DESCRIPTOR.fields},
    }


# ---------------------------------------------------------------- cache


@dataclass
class Entry:
    status: int
    body: bytes
    etag: str
    expires_at: float
    # Output headers without CORS (added per request).
    headers: list[tuple[bytes, bytes]]


@dataclass
class StoreEntry:
    """A store's public settings response and its CORS origins."""

    entry: Entry
    allowed_origins: frozenset[str]


@dataclass
class StorefrontConfig:
    cache_ttl_s: float
    max_entries: int
    rate_per_s: float
    burst: float
    browser_max_age_s: int
    cors_origins: tuple[str, ...]

    @classmethod
    def from_env(cls, cors_origins: tuple[str, ...] = ("*",)) -> StorefrontConfig:
        rate = env("BACKORDER_STOREFRONT_RATE_LIMIT", 200.0, float)
        return cls(
            cache_ttl_s=env("BACKORDER_STOREFRONT_CACHE_TTL_S", 30.0, float),
            max_entries=env("BACKORDER_STOREFRONT_CACHE_MAX_ENTRIES", 100_000, int),
            rate_per_s=rate,
            burst=env("BACKORDER_STOREFRONT_RATE_BURST", rate * 2, float),
            browser_max_age_s=env("BACKORDER_STOREFRONT_MAX_AGE_S", 0, int),
            cors_origins=cors_origins,
        )


@dataclass
class StorefrontState:
    """Everything the storefront routes keep in the gateway process."""

    config: StorefrontConfig
    views: dict[tuple[str, int], Entry] = field(default_factory=dict)
    stores: dict[str, StoreEntry] = field(default_factory=dict)
    # Newest inventory version / settings revision announced by events (fetched responses
    # older than these are not cached).
    min_version: dict[tuple[str, int], int] = field(default_factory=dict)
    min_revision: dict[str, int] = field(default_factory=dict)
    # Bumped by invalidations (whole cache / one store / one product), so a fetch that raced
    # one does not cache its result.
    generation: int = 0
    store_generation: dict[str, int] = field(default_factory=dict)
    product_generation: dict[tuple[str, int], int] = field(default_factory=dict)
    buckets: dict[str, list[float]] = field(default_factory=dict)
    inflight: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)
    nats_up: bool = True
    subscriptions: list[Any] = field(default_factory=list)
    script: Entry | None = None
    cache_control: bytes = b"public, no-cache"

    def __post_init__(self) -> None:
        if self.config.browser_max_age_s > 0:
            self.cache_control = f"public, max-age={self.config.browser_max_age_s}".encode()

    # ------------------------------------------------------------ invalidation

    def invalidate_product(self, store_hash: str, product_id: int, version: int) -> None:
        key = (store_hash, product_id)
        store = self.stores.get(store_hash)
        if store is not None and store.entry.status == 404:
            del self.stores[store_hash]
        self.product_generation[key] = self.product_generation.get(key, 0) + 1
        _cap(self.product_generation, self.config.max_entries)
        self.views.pop(key, None)
        if version > self.min_version.get(key, -1):
            self.min_version[key] = version
            _cap(self.min_version, self.config.max_entries)

    def invalidate_store(self, store_hash: str, revision: int) -> None:
        self.store_generation[store_hash] = self.store_generation.get(store_hash, 0) + 1
        _cap(self.store_generation, self.config.max_entries)
        self.stores.pop(store_hash, None)
        for key in [k for k in self.views if k[0] == store_hash]:
            del self.views[key]
        if revision > self.min_revision.get(store_hash, -1):
            self.min_revision[store_hash] = revision
            _cap(self.min_revision, self.config.max_entries)

    def generation_of(self, store_hash: str, product_id: int = 0) -> tuple[int, int, int]:
        return (self.generation, self.store_generation.get(store_hash, 0),
                self.product_generation.get((store_hash, product_id), 0))

    def flush(self) -> None:
        self.generation += 1
        self.views.clear()
        self.stores.clear()

    def on_nats(self, up: bool) -> None:
        # Events may have been missed while disconnected: start over when it comes back.
        self.nats_up = up
        self.flush()

    def ttl(self) -> float:
        return self.config.cache_ttl_s if self.nats_up else min(DEGRADED_TTL_S, self.config.cache_ttl_s)

    def handle_event(self, subject: str, data: bytes) -> None:
        """Core NATS callback body: drop what the event makes stale."""
        envelope = envelope_pb2.Envelope()
        try:
            envelope.ParseFromString(data)
        except DecodeError:
            return
        if envelope.type == "settings.changed" and subject.endswith(".storefront.settings.changed"):
            changed = storefront_events_pb2.StorefrontSettingsChanged()
            if envelope.payload.Unpack(changed):
                self.invalidate_store(envelope.store_hash, changed.revision)
            return
        payload_type = PRODUCT_EVENT_TYPES.get(envelope.type)
        if payload_type is None:
            return
        payload = payload_type()
        if not envelope.payload.Unpack(payload):
            return
        version = payload.product.version
        if isinstance(payload, inventory_events_pb2.StockChanged):
            version = max(version, payload.ledger_id)
        self.invalidate_product(envelope.store_hash, payload.product.product_id, version)

    # ------------------------------------------------------------ rate limit

    def allow(self, store_hash: str) -> bool:
        """Token bucket per store (this gateway process)."""
        rate = self.config.rate_per_s
        if rate <= 0:
            return True
        now = time.monotonic()
        bucket = self.buckets.get(store_hash)
        if bucket is None:
            if len(self.buckets) >= self.config.max_entries:
                self.buckets.clear()
            self.buckets[store_hash] = [self.config.burst - 1, now]
            return True
        tokens = min(self.config.burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1
        return True

    # ------------------------------------------------------------ CORS

    def cors_headers(self, store_hash: str, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        if origin is None:
            return []
        store = self.stores.get(store_hash)
        allowed = store.allowed_origins if store is not None and store.allowed_origins else None
        if allowed is None:
            if "*" in self.config.cors_origins:
                return [(b"access-control-allow-origin", b"*")]
            allowed = frozenset(self.config.cors_origins)
        if origin.decode("latin-1") in allowed:
            return [(b"access-control-allow-origin", origin)]
        return []

    # ------------------------------------------------------------ entries

    def make_entry(self, status: int, body: bytes, *, cacheable: bool = True) -> Entry:
        etag = etag_of(body)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"etag", etag.encode()),
            (b"cache-control", self.cache_control if cacheable else b"no-store"),
            (b"vary", b"Origin"),
            (b"x-content-type-options", b"nosniff"),
            (b"access-control-expose-headers", b"ETag"),
        ]
        return Entry(status, body, etag, time.monotonic() + self.ttl(), headers)

    def store_entry(self, key: tuple[str, int], entry: Entry) -> None:
        self.views[key] = entry
        _cap(self.views, self.config.max_entries)


def _cap(mapping: dict[Any, Any], limit: int) -> None:
    """Drop the oldest tenth when over `limit` (dicts keep insertion order)."""
    if len(mapping) > limit:
        for key in list(mapping)[: max(1, limit // 10)]:
            mapping.pop(key, None)


def state_of(app: Any) -> StorefrontState:
    state = getattr(app.state, "storefront", None)
    if state is None:
        settings = getattr(app.state, "settings", None)
        origins = tuple(getattr(settings, "storefront_cors_origins", ("*",)) or ("*",))
        state = StorefrontState(StorefrontConfig.from_env(origins))
        app.state.storefront = state
    return state


async def single_flight(state: StorefrontState, key: Any, fetch: Callable[[], Awaitable[Any]]) -> Any:
    """One backend call per key at a time; concurrent misses share its result."""
    pending = state.inflight.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    state.inflight[key] = future
    try:
        result = await fetch()
    except BaseException as exc:
        future.set_exception(exc)
        # Nobody else may be waiting: mark the exception retrieved.
        future.exception()
        raise
    else:
        future.set_result(result)
        return result
    finally:
        state.inflight.pop(key, None)


# ---------------------------------------------------------------- backend fetches

async def fetch_store(app: Any, state: StorefrontState, store_hash: str) -> StoreEntry:
    """The store's public settings response (cached; a 404 entry for unknown stores, kept
    briefly); raises DomainError(unavailable) when the service cannot be reached."""
    cached = state.stores.get(store_hash)
    if cached is not None and cached.entry.expires_at > time.monotonic():
        return cached

    async def fetch() -> StoreEntry:
        generation = state.generation_of(store_hash)
        try:
            reply = await app.state.backends.storefront.GetSettings(pb.GetSettingsRequest(store_hash=store_hash))
        except grpc.RpcError as exc:
            error = error_from_rpc(exc)
            if error.code != "not_found":
                raise error from None
            known = False
        else:
            settings = reply.settings
            known = settings.known
        if known:
            store = StoreEntry(state.make_entry(200, json_bytes(public_settings_json(settings))),
                               frozenset(settings.allowed_origins))
        else:
            # A store becomes known by an event we may not see as a store change: keep 404s briefly.
            entry = state.make_entry(404, NOT_FOUND_BODY)
            entry.expires_at = min(entry.expires_at, time.monotonic() + DEGRADED_TTL_S)
            store = StoreEntry(entry, frozenset())
        if generation == state.generation_of(store_hash):
            state.stores[store_hash] = store
            _cap(state.stores, state.config.max_entries)
        return store

    return await single_flight(state, ("store", store_hash), fetch)


async def fetch_view(app: Any, state: StorefrontState, store_hash: str, product_id: int) -> Entry:
    """A product's response entry: from the cache, else from StorefrontService (cached when fresh)."""
    key = (store_hash, product_id)

    async def fetch() -> Entry:
        for attempt in range(STALE_RETRIES + 1):
            generation = state.generation_of(store_hash, product_id)
            try:
                reply = await app.state.backends.storefront.GetProductView(
                    pb.GetProductViewRequest(store_hash=store_hash, product_id=product_id))
            except grpc.RpcError as exc:
                error = error_from_rpc(exc)
                if error.code != "not_found":
                    raise error from None
                entry = state.make_entry(404, NOT_FOUND_BODY)
                fresh = state.min_version.get(key, 0) == 0 and state.min_revision.get(store_hash, 0) == 0
                version = revision = 0
            else:
                view = reply.view
                if view.assigned:
                    entry = state.make_entry(200, json_bytes(view_json(view)))
                else:
                    entry = state.make_entry(404, NOT_FOUND_BODY)
                version, revision = view.version, view.settings_revision
                fresh = (version >= state.min_version.get(key, 0)
                         and revision >= state.min_revision.get(store_hash, 0))
            if fresh:
                # Events handled during the call already raised min_version/min_revision, so a
                # fresh reply is as new as everything announced; the generation check covers
                # events that carry no version.
                if generation == state.generation_of(store_hash, product_id):
                    if version >= state.min_version.get(key, 0):
                        state.min_version.pop(key, None)
                    state.store_entry(key, entry)
                return entry
            if attempt < STALE_RETRIES:
                # The event reached us before the storefront service applied it.
                await asyncio.sleep(0.005 * 2**attempt)
        entry.headers = [h if h[0] != b"cache-control" else (b"cache-control", b"no-store") for h in entry.headers]
        return entry

    return await single_flight(state, key, fetch)


# ---------------------------------------------------------------- ASGI helpers

def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _plain_headers(body: bytes, cache_control: bytes = b"no-store") -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"cache-control", cache_control), (b"vary", b"Origin"), (b"x-content-type-options", b"nosniff")]


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
            await _send(send, 404, _plain_headers(NOT_FOUND_BODY), NOT_FOUND_BODY)
            return
        if not state.allow(store_hash):
            await _send(send, 429, [*_plain_headers(RATE_LIMITED_BODY), (b"retry-after", b"1"),
                                    *state.cors_headers(store_hash, origin)], RATE_LIMITED_BODY)
            return
        key = (store_hash, int(raw_id))
        entry = state.views.get(key)
        now = time.monotonic()
        if entry is None or entry.expires_at <= now or origin is not None and (
                (store := state.stores.get(store_hash)) is None or store.entry.expires_at <= now):
            if not _STORE_HASH.match(store_hash) or not _PRODUCT_ID.match(raw_id):
                await _send(send, 404, _plain_headers(NOT_FOUND_BODY), NOT_FOUND_BODY)
                return
            try:
                if origin is not None:
                    await fetch_store(app, state, store_hash)
                if entry is None or entry.expires_at <= now:
                    entry = await fetch_view(app, state, store_hash, key[1])
            except DomainError as error:
                if entry is None or error.code not in {"unavailable", "internal"}:
                    status, body = error_bytes(error)
                    await _send(send, status, [*_plain_headers(body), *state.cors_headers(store_hash, origin)], body)
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


class SettingsEndpoint:
    """GET /storefront/v1/stores/{store_hash}/settings: theme id and selectors."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = state_of(scope["app"])
        store_hash = scope["path_params"]["store_hash"]
        origin = _header(scope, b"origin")
        if scope["method"] == "OPTIONS":
            await _send(send, 204, _preflight_headers(state.cors_headers(store_hash, origin)), b"")
            return
        if not _STORE_HASH.match(store_hash):
            await _send(send, 404, _plain_headers(NOT_FOUND_BODY), NOT_FOUND_BODY)
            return
        if not state.allow(store_hash):
            await _send(send, 429, [*_plain_headers(RATE_LIMITED_BODY), (b"retry-after", b"1"),
                                    *state.cors_headers(store_hash, origin)], RATE_LIMITED_BODY)
            return
        try:
            store = await fetch_store(scope["app"], state, store_hash)
            if store.entry.status == 404:
                raise DomainError("not found", code="not_found")
        except DomainError as error:
            status, body = error_bytes(error)
            await _send(send, status, [*_plain_headers(body), *state.cors_headers(store_hash, origin)], body)
            return
        await _send_entry(scope, send, store.entry, state.cors_headers(store_hash, origin))


def _parse_cart(body: bytes) -> list[pb.CartLine]:
    """Cart lines from the request body; raises DomainError(validation_failed) naming the field."""

    def invalid(field_name: str, reason: str, item: int | None = None) -> DomainError:
        details: dict[str, Any] = {"field": field_name, "reason": reason}
        if item is not None:
            details["item"] = item
        return DomainError("invalid cart", code="validation_failed", details={"errors": [details]})

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


def cart_json(reply: pb.CheckCartResponse) -> dict[str, Any]:
    return {
        "lines": [{"product_id": r.product_id, "quantity": r.quantity, "assigned": r.assigned,
                   "backordered_qty": r.backordered_qty, "over_threshold": r.over_threshold, "alert": r.alert,
                   "cart_message": r.cart_message} for r in reply.lines],
        "mixed_cart_alert": reply.mixed_cart_alert,
        "over_threshold": reply.over_threshold,
        "over_threshold_alert": reply.over_threshold_alert,
        "cart_message": reply.cart_message,
        "backordered_qty": reply.backordered_qty,
        "added_qty": reply.added_qty,
    }


class CartCheckEndpoint:
    """POST /storefront/v1/stores/{store_hash}/cart-check (JSON; text/plain accepted, so the
    script's request needs no preflight)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = state_of(scope["app"])
        store_hash = scope["path_params"]["store_hash"]
        origin = _header(scope, b"origin")
        if scope["method"] == "OPTIONS":
            await _send(send, 204, _preflight_headers(state.cors_headers(store_hash, origin)), b"")
            return
        status, body = await self._check(scope, receive, state, store_hash, origin)
        headers = [*_plain_headers(body), *state.cors_headers(store_hash, origin)]
        if status == 429:
            headers.append((b"retry-after", b"1"))
        await _send(send, status, headers, body)

    async def _check(self, scope: Scope, receive: Receive, state: StorefrontState, store_hash: str,
                     origin: bytes | None) -> tuple[int, bytes]:
        if not _STORE_HASH.match(store_hash):
            return 404, NOT_FOUND_BODY
        if not state.allow(store_hash):
            return 429, RATE_LIMITED_BODY
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
