"""The storefront API's cache of rendered responses in the gateway process.

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

CORS (any origin unless the store lists its origins, or the gateway's
BACKORDER_STOREFRONT_CORS_ORIGINS is not "*") is decided here too, from the cached store
settings; the per-store token bucket is rate_limit.py's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from backorder.events.v1 import envelope_pb2, storefront_events_pb2
from backorder.storefront.v1 import storefront_pb2 as pb
from google.protobuf.message import DecodeError

from services.common.errors import error_from_rpc
from services.common.product_events import PRODUCT_STATE_EVENTS, product_event_version
from services.gateway.rate_limit import TokenBuckets
from services.gateway.settings import GatewaySettings
from services.gateway.storefront_json import (
    NOT_FOUND_BODY,
    etag_of,
    json_bytes,
    public_settings_json,
    view_json,
)

T = TypeVar("T")

DEGRADED_TTL_S = 1.0
STALE_RETRIES = 3


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


@dataclass(frozen=True)
class StorefrontConfig:
    """The cache's and the rate limit's tuning (GatewaySettings' storefront_* values)."""

    cache_ttl_s: float
    max_entries: int
    rate_per_s: float
    burst: float
    browser_max_age_s: int
    cors_origins: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> StorefrontConfig:
        return cls(
            cache_ttl_s=settings.storefront_cache_ttl_s,
            max_entries=settings.storefront_cache_max_entries,
            rate_per_s=settings.storefront_rate_limit,
            burst=settings.storefront_rate_burst,
            browser_max_age_s=settings.storefront_max_age_s,
            cors_origins=settings.storefront_cors_origins or ("*",),
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
    limiter: TokenBuckets = field(init=False)
    inflight: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)
    nats_up: bool = True
    subscriptions: list[Any] = field(default_factory=list)
    script: Entry | None = None
    cache_control: bytes = b"public, no-cache"

    def __post_init__(self) -> None:
        self.limiter = TokenBuckets(self.config.rate_per_s, self.config.burst, self.config.max_entries)
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
        payload_type = PRODUCT_STATE_EVENTS.get(envelope.type)
        if payload_type is None:
            return
        payload = payload_type()
        if not envelope.payload.Unpack(payload):
            return
        self.invalidate_product(envelope.store_hash, payload.product.product_id, product_event_version(payload))

    # ------------------------------------------------------------ rate limit

    def allow(self, store_hash: str) -> bool:
        """One request of this store may go on (its token bucket in this gateway process)."""
        return self.limiter.allow(store_hash)

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
        state = StorefrontState(StorefrontConfig.from_settings(app.state.settings))
        app.state.storefront = state
    return state


async def single_flight(state: StorefrontState, key: Any, fetch: Callable[[], Awaitable[T]]) -> T:
    """One backend call per key at a time; concurrent misses share its result."""
    pending = state.inflight.get(key)
    if pending is not None:
        shared: T = await asyncio.shield(pending)
        return shared
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
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

