"""The one BigCommerce API client: every call to BigCommerce goes through here.

- One pooled `aiohttp.ClientSession` per process (per event loop), shared by every `BigCommerceClient`.
- A per-store rate limiter shared by all callers in the process. It learns the quota and window
  from the X-Rate-Limit-* headers, never has more requests outstanding than the window has left,
  and on 429 waits for X-Rate-Limit-Time-Reset-Ms before retrying.
- Retries with full-jitter exponential backoff on 5xx and network errors, within a bounded budget
  of attempts and seconds; then `BigCommerceError`.
- Typed results (dataclasses keeping the raw JSON), paginated iterators, batch helpers that split
  work into each endpoint's documented batch size.
- `exchange_oauth_code` (install) and `verify_signed_payload_jwt` (load/uninstall/remove_user).

Base URLs are settings, so the same code talks to the sandbox (`http://127.0.0.1:8100`) or to
`https://api.bigcommerce.com` and `https://login.bigcommerce.com`.
"""

from __future__ import annotations

import asyncio
import json as json_module
import random
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import aiohttp
import jwt

DEFAULT_API_BASE_URL = "https://api.bigcommerce.com"
DEFAULT_LOGIN_BASE_URL = "https://login.bigcommerce.com"
MAX_PAGE_SIZE = 250
PRODUCT_BATCH_SIZE = 10
VARIANT_BATCH_SIZE = 50
INVENTORY_BATCH_SIZE = 2000
DELETE_BATCH_SIZE = 250


# ----- errors -----
class BigCommerceError(Exception):
    """A failed BigCommerce call: HTTP status (0 for a network error), BigCommerce's message and the request."""

    def __init__(self, status: int, message: str, method: str, url: str, body: Any = None):
        super().__init__(f"{method} {url} -> {status}: {message}")
        self.status = status
        self.message = message
        self.method = method
        self.url = url
        self.body = body


class SignedPayloadError(ValueError):
    """A signed_payload_jwt that must not be trusted (bad signature, expired, wrong audience, bad subject)."""


def _error_message(body: Any, fallback: str) -> str:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("message") or body[0].get("title") or fallback)
    if isinstance(body, dict):
        for key in ("title", "message", "error_description", "error"):
            if body.get(key):
                return str(body[key])
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return fallback


# ----- typed results -----
T = TypeVar("T")
ItemT = TypeVar("ItemT")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _build(cls: type[T], data: Mapping[str, Any], **overrides: Any) -> T:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls) if f.name != "raw")  # type: ignore[arg-type]
    values = {name: data[name] for name in names if name in data}
    values.update(overrides)
    # Parsed JSON is already a private dict; keep it as is instead of copying every product.
    return cls(**values, raw=data if isinstance(data, dict) else dict(data))  # type: ignore[call-arg]


@dataclass
class Variant:
    id: int
    product_id: int = 0
    sku: str = ""
    price: float | None = None
    calculated_price: float | None = None
    inventory_level: int = 0
    inventory_warning_level: int = 0
    purchasing_disabled: bool = False
    purchasing_disabled_message: str = ""
    option_values: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Variant:
        return _build(cls, data)


@dataclass
class Product:
    id: int
    name: str = ""
    sku: str = ""
    type: str = "physical"
    price: float = 0.0
    calculated_price: float = 0.0
    inventory_level: int = 0
    inventory_warning_level: int = 0
    inventory_tracking: str = "none"
    availability: str = "available"
    availability_description: str = ""
    is_visible: bool = True
    categories: list[int] = field(default_factory=list)
    brand_id: int = 0
    base_variant_id: int | None = None
    order_quantity_minimum: int = 0
    order_quantity_maximum: int = 0
    date_modified: str = ""
    variants: list[Variant] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Product:
        variants = data.get("variants")
        if not variants:
            return _build(cls, data)
        return _build(cls, data, variants=[Variant.from_api(v) for v in variants])


@dataclass
class Brand:
    id: int
    name: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Brand:
        return _build(cls, data)


@dataclass
class Category:
    category_id: int
    parent_id: int = 0
    tree_id: int = 1
    name: str = ""
    is_visible: bool = True
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Category:
        return _build(cls, data)


@dataclass
class InventoryLocation:
    location_id: int
    available_to_sell: int = 0
    total_inventory_onhand: int = 0
    qty_backordered: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> InventoryLocation:
        return _build(cls, data)


@dataclass
class InventoryItem:
    sku: str | None
    product_id: int | None
    variant_id: int | None
    locations: list[InventoryLocation] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> InventoryItem:
        identity = data.get("identity") or {}
        return cls(sku=identity.get("sku"), product_id=identity.get("product_id"),
                   variant_id=identity.get("variant_id"),
                   locations=[InventoryLocation.from_api(loc) for loc in data.get("locations") or []], raw=dict(data))


@dataclass
class Order:
    id: int
    status_id: int = 0
    status: str = ""
    customer_id: int = 0
    date_created: str = ""
    date_modified: str = ""
    items_total: int = 0
    total_inc_tax: str = "0"
    currency_code: str = "USD"
    staff_notes: str = ""
    customer_message: str = ""
    channel_id: int = 1
    cart_id: str = ""
    order_source: str = ""
    external_source: str | None = None
    billing_address: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def email(self) -> str:
        return str(self.billing_address.get("email", ""))

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Order:
        return _build(cls, data)


@dataclass
class OrderProduct:
    id: int
    order_id: int = 0
    product_id: int = 0
    variant_id: int = 0
    name: str = ""
    sku: str = ""
    quantity: int = 0
    quantity_backordered: int | None = None
    price_inc_tax: str = "0"
    total_inc_tax: str = "0"
    product_options: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> OrderProduct:
        return _build(cls, data)


@dataclass
class Hook:
    id: int
    scope: str = ""
    destination: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    is_active: bool = True
    client_id: str = ""
    store_hash: str = ""
    created_at: int = 0
    updated_at: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Hook:
        return _build(cls, data, headers=dict(data.get("headers") or {}))


@dataclass
class Script:
    uuid: str
    name: str = ""
    kind: str = "src"
    src: str = ""
    html: str = ""
    location: str = "footer"
    visibility: str = "storefront"
    load_method: str = "default"
    consent_category: str = "unknown"
    enabled: bool = True
    auto_uninstall: bool = True
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Script:
        return _build(cls, data)


@dataclass
class StoreInfo:
    id: str
    name: str = ""
    domain: str = ""
    secure_url: str = ""
    account_uuid: str = ""
    currency: str = "USD"
    timezone_name: str = "UTC"
    timezone_raw_offset: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> StoreInfo:
        zone = data.get("timezone") or {}
        return cls(id=str(data.get("id", "")), name=data.get("name", ""), domain=data.get("domain", ""),
                   secure_url=data.get("secure_url", ""), account_uuid=data.get("account_uuid", ""),
                   currency=data.get("currency", "USD"), timezone_name=zone.get("name", "UTC"),
                   timezone_raw_offset=int(zone.get("raw_offset", 0)), raw=dict(data))


@dataclass
class Page(Generic[ItemT]):
    items: list[ItemT]
    pagination: dict[str, Any]


@dataclass
class OAuthToken:
    access_token: str
    scope: str
    context: str
    user: dict[str, Any]
    owner: dict[str, Any]
    account_uuid: str = ""

    @property
    def store_hash(self) -> str:
        return self.context.removeprefix("stores/")


@dataclass
class SignedPayload:
    store_hash: str
    user: dict[str, Any]
    owner: dict[str, Any]
    url: str
    channel_id: int | None
    claims: dict[str, Any]


# ----- policies and shared plumbing -----
@dataclass(frozen=True)
class RetryPolicy:
    """Retries for 5xx and network errors: at most `max_retries`, sleeping at most `budget_seconds` in all."""

    max_retries: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0
    budget_seconds: float = 30.0
    # 429s with rate-limit headers are waited out, not retried blindly; this bounds a stuck store.
    max_rate_limit_waits: int = 50

    def delay(self, retry_number: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** retry_number))


_http_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary())
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], RateLimiter]] = (
    weakref.WeakKeyDictionary())


class TransportError(Exception):
    """No HTTP response: connection refused or reset, timeout."""


@dataclass(frozen=True)
class HttpResponse:
    """A complete response; `headers` look up names case-insensitively."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json_module.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def shared_http_client() -> aiohttp.ClientSession:
    """The process's pooled HTTP session (one per event loop, created on first use).

    aiohttp rather than httpx: with dozens of requests in flight, httpcore's pool and
    httpx's request building cost more CPU than the requests themselves (the order
    pipeline's profile); aiohttp parses HTTP in C and keeps a plain per-host pool.
    """
    loop = asyncio.get_running_loop()
    session = _http_sessions.get(loop)
    if session is None or session.closed:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
                                        timeout=aiohttp.ClientTimeout(total=30.0, connect=10.0))
        _http_sessions[loop] = session
    return session


async def close_shared_http_client() -> None:
    session = _http_sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


def _query(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Query values as BigCommerce reads them (booleans as true/false)."""
    if not params:
        return None
    return {key: ("true" if value else "false") if isinstance(value, bool) else str(value)
            for key, value in params.items()}


async def http_call(method: str, url: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                    headers: Mapping[str, str] | None = None, timeout: float | None = None) -> HttpResponse:
    """One request on the shared session, body read in full; TransportError without a response."""
    try:
        async with shared_http_client().request(
                method, url, params=_query(params), json=json, headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout, connect=10.0) if timeout else None) as response:
            body = await response.read()
            return HttpResponse(response.status, response.reason or "", response.headers, body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc


class RateLimiter:
    """Per-store request budget shared by all callers in the process.

    Before the first response it lets one request through at a time; afterwards it keeps `left`, the
    requests the current window still allows minus those already in flight, and the window's end as
    seen from here (never earlier than the server's). Responses can only lower `left` within a window;
    a window that rolls over starts at the quota minus requests still in flight, so requests sent in one
    window but counted in the next cannot push the total over the quota.
    """

    def __init__(self) -> None:
        self.quota: int | None = None
        self.window_seconds = 30.0
        self.left: int | None = None
        self.window_end = 0.0
        self.in_flight = 0
        self.unlimited = False
        self._changed = asyncio.Condition()

    @staticmethod
    def for_store(api_base_url: str, store_hash: str) -> RateLimiter:
        registry = _limiters.setdefault(asyncio.get_running_loop(), {})
        return registry.setdefault((api_base_url, store_hash), RateLimiter())

    async def acquire(self) -> None:
        async with self._changed:
            while True:
                now = time.monotonic()
                if self.unlimited:
                    self.in_flight += 1
                    return
                if self.left is None:
                    if self.in_flight == 0:
                        self.in_flight += 1
                        return
                    timeout = 1.0
                else:
                    if now >= self.window_end:
                        self.left = max((self.quota or 0) - self.in_flight, 0)
                        self.window_end = now + self.window_seconds
                    if self.left > 0:
                        self.left -= 1
                        self.in_flight += 1
                        return
                    timeout = self.window_end - now
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout)
                except TimeoutError:
                    pass

    async def release(self, headers: Mapping[str, str] | None, status: int | None) -> None:
        """Account for a finished request: learn from its headers (None when it never got a response)."""
        async with self._changed:
            self.in_flight = max(self.in_flight - 1, 0)
            if headers is not None:
                self._observe(headers, status)
            self._changed.notify_all()

    def _observe(self, headers: Mapping[str, str], status: int | None) -> None:
        try:
            quota = int(headers["X-Rate-Limit-Requests-Quota"])
            left = int(headers["X-Rate-Limit-Requests-Left"])
            reset_ms = int(headers["X-Rate-Limit-Time-Reset-Ms"])
            window_ms = int(headers.get("X-Rate-Limit-Time-Window-Ms", reset_ms))
        except (KeyError, ValueError):
            if status is not None and status < 400 and self.left is None:
                self.unlimited = True  # a store that sends no rate-limit headers has no quota to respect
            return
        self.unlimited = False
        now = time.monotonic()
        window_end = now + reset_ms / 1000
        self.quota, self.window_seconds = quota, window_ms / 1000
        if status == 429:
            # The server's word on when its window resets beats our estimate either way.
            self.left = 0
            self.window_end = window_end
            return
        server_left = max(left - self.in_flight, 0)
        if self.left is None or window_end > self.window_end + self.window_seconds / 2:
            self.left, self.window_end = server_left, window_end
        else:
            self.left = min(self.left, server_left)
            self.window_end = max(self.window_end, window_end)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(_query_value(v) for v in value)
    return str(value)


def filter_params(filters: Mapping[str, Any] | None = None, **named: Any) -> dict[str, str]:
    """BigCommerce query filters from a mapping (`{"id:in": [1, 2]}`) or keywords (`id__in=[1, 2]`)."""
    params = {key: _query_value(value) for key, value in (filters or {}).items() if value is not None}
    params.update({key.replace("__", ":"): _query_value(value) for key, value in named.items() if value is not None})
    return params


def _chunks(items: Sequence[ItemT], size: int) -> Iterable[Sequence[ItemT]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ----- the client -----
class BigCommerceClient:
    """REST client for one store. Cheap to create: the HTTP pool and rate limiter are process-wide."""

    def __init__(self, store_hash: str, access_token: str, *, api_base_url: str = DEFAULT_API_BASE_URL,
                 client_id: str | None = None, retry: RetryPolicy | None = None, timeout: float = 30.0):
        self.store_hash = store_hash
        self.api_base_url = api_base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._headers = {"X-Auth-Token": access_token, "Accept": "application/json",
                         "Content-Type": "application/json"}
        if client_id:
            self._headers["X-Auth-Client"] = client_id

    def __repr__(self) -> str:
        return f"BigCommerceClient(store_hash={self.store_hash!r}, api_base_url={self.api_base_url!r})"

    @property
    def store_url(self) -> str:
        return f"{self.api_base_url}/stores/{self.store_hash}"

    # -- transport --
    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None) -> Any:
        """One API call (path like `/v3/catalog/products`); returns the parsed JSON body, or None for 204.

        Waits for rate-limit budget first; retries 5xx and network errors within the retry policy.
        Raises BigCommerceError for any other 4xx, and once retries or the budget are used up.
        """
        url = f"{self.store_url}{path}"
        limiter = RateLimiter.for_store(self.api_base_url, self.store_hash)
        policy = self.retry
        retries = rate_limit_waits = 0
        slept = 0.0
        while True:
            await limiter.acquire()
            try:
                response = await http_call(method, url, params=params, json=json, headers=self._headers,
                                           timeout=self.timeout)
            except TransportError as exc:
                await limiter.release(None, None)
                failure = BigCommerceError(0, f"network error: {exc}", method, url)
            else:
                await limiter.release(response.headers, response.status)
                status = response.status
                if status < 400:
                    return None if status == 204 or not response.body else response.json()
                body = _body_of(response)
                failure = BigCommerceError(status, _error_message(body, response.reason), method, url, body)
                if status == 429 and "X-Rate-Limit-Time-Reset-Ms" in response.headers:
                    rate_limit_waits += 1
                    if rate_limit_waits > policy.max_rate_limit_waits:
                        raise failure
                    continue  # acquire() now waits until the window resets
                if status < 500 and status != 429:
                    raise failure
            delay = policy.delay(retries)
            if retries >= policy.max_retries or slept + delay > policy.budget_seconds:
                raise failure
            retries += 1
            slept += delay
            await asyncio.sleep(delay)

    async def _v3(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = await self.request(method, path, **kwargs)
        return body if isinstance(body, dict) else {"data": body, "meta": {}}

    async def _v3_page(self, path: str, params: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        body = await self._v3("GET", path, params=params)
        return list(body.get("data") or []), dict((body.get("meta") or {}).get("pagination") or {})

    async def iter_v3(self, path: str, params: Mapping[str, str] | None = None, *, limit: int = MAX_PAGE_SIZE,
                      concurrency: int = 1) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paginated v3 list, in order; with concurrency > 1, later pages are prefetched."""
        query = {**(params or {}), "limit": str(min(limit, MAX_PAGE_SIZE))}
        items, pagination = await self._v3_page(path, {**query, "page": "1"})
        for item in items:
            yield item
        total_pages = int(pagination.get("total_pages") or 1)
        pending: deque[asyncio.Task[tuple[list[dict[str, Any]], dict[str, Any]]]] = deque()
        next_page = 2
        try:
            while next_page <= total_pages or pending:
                while next_page <= total_pages and len(pending) < max(concurrency, 1):
                    pending.append(asyncio.create_task(self._v3_page(path, {**query, "page": str(next_page)})))
                    next_page += 1
                items, _ = await pending.popleft()
                for item in items:
                    yield item
        finally:
            for task in pending:
                task.cancel()

    async def iter_v2(self, path: str, params: Mapping[str, str] | None = None, *,
                      limit: int = MAX_PAGE_SIZE) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paginated v2 list (bare arrays; an empty page may be 204)."""
        page = 1
        while True:
            batch = await self.request("GET", path, params={**(params or {}), "page": str(page), "limit": str(limit)})
            batch = batch or []
            for item in batch:
                yield item
            if len(batch) < limit:
                return
            page += 1

    # -- catalog --
    async def get_product(self, product_id: int, *, include: Sequence[str] = (),
                          include_fields: Sequence[str] = ()) -> Product:
        params = filter_params(include=list(include) or None, include_fields=list(include_fields) or None)
        body = await self._v3("GET", f"/v3/catalog/products/{product_id}", params=params)
        return Product.from_api(body["data"])

    async def list_products(self, *, page: int = 1, limit: int = MAX_PAGE_SIZE, include: Sequence[str] = (),
                            include_fields: Sequence[str] = (), filters: Mapping[str, Any] | None = None,
                            **named_filters: Any) -> Page[Product]:
        params = filter_params(filters, include=list(include) or None, include_fields=list(include_fields) or None,
                               **named_filters)
        items, pagination = await self._v3_page("/v3/catalog/products",
                                                {**params, "page": str(page), "limit": str(min(limit, 250))})
        return Page([Product.from_api(item) for item in items], pagination)

    async def iter_products(self, *, limit: int = MAX_PAGE_SIZE, include: Sequence[str] = (),
                            include_fields: Sequence[str] = (), filters: Mapping[str, Any] | None = None,
                            concurrency: int = 1, **named_filters: Any) -> AsyncIterator[Product]:
        """All products matching the filters (e.g. `id__in=[1, 2]`, `date_modified__min=...`), page by page."""
        params = filter_params(filters, include=list(include) or None, include_fields=list(include_fields) or None,
                               **named_filters)
        async for item in self.iter_v3("/v3/catalog/products", params, limit=limit, concurrency=concurrency):
            yield Product.from_api(item)

    async def create_product(self, fields_: Mapping[str, Any]) -> Product:
        body = await self._v3("POST", "/v3/catalog/products", json=dict(fields_))
        return Product.from_api(body["data"])

    async def update_product(self, product_id: int, fields_: Mapping[str, Any]) -> Product:
        body = await self._v3("PUT", f"/v3/catalog/products/{product_id}", json=dict(fields_))
        return Product.from_api(body["data"])

    async def update_products(self, updates: Iterable[Mapping[str, Any]]) -> list[Product]:
        """Batch PUT in groups of 10 (BigCommerce's limit); every update needs its `id`."""
        results: list[Product] = []
        for chunk in _chunks([dict(u) for u in updates], PRODUCT_BATCH_SIZE):
            body = await self._v3("PUT", "/v3/catalog/products", json=list(chunk))
            results += [Product.from_api(item) for item in body.get("data") or []]
        return results

    async def delete_products(self, product_ids: Iterable[int]) -> None:
        for chunk in _chunks(list(product_ids), DELETE_BATCH_SIZE):
            await self.request("DELETE", "/v3/catalog/products", params=filter_params({"id:in": list(chunk)}))

    async def iter_variants(self, product_id: int | None = None, *, filters: Mapping[str, Any] | None = None,
                            **named_filters: Any) -> AsyncIterator[Variant]:
        path = f"/v3/catalog/products/{product_id}/variants" if product_id else "/v3/catalog/variants"
        async for item in self.iter_v3(path, filter_params(filters, **named_filters)):
            yield Variant.from_api(item)

    async def update_variant(self, product_id: int, variant_id: int, fields_: Mapping[str, Any]) -> Variant:
        body = await self._v3("PUT", f"/v3/catalog/products/{product_id}/variants/{variant_id}", json=dict(fields_))
        return Variant.from_api(body["data"])

    async def update_variants(self, updates: Iterable[Mapping[str, Any]]) -> list[Variant]:
        """Batch PUT in groups of 50 (BigCommerce's limit); every update needs its `id`."""
        results: list[Variant] = []
        for chunk in _chunks([dict(u) for u in updates], VARIANT_BATCH_SIZE):
            body = await self._v3("PUT", "/v3/catalog/variants", json=list(chunk))
            results += [Variant.from_api(item) for item in body.get("data") or []]
        return results

    async def iter_brands(self, **named_filters: Any) -> AsyncIterator[Brand]:
        async for item in self.iter_v3("/v3/catalog/brands", filter_params(**named_filters)):
            yield Brand.from_api(item)

    async def iter_categories(self, **named_filters: Any) -> AsyncIterator[Category]:
        async for item in self.iter_v3("/v3/catalog/trees/categories", filter_params(**named_filters)):
            yield Category.from_api(item)

    # -- inventory --
    async def iter_inventory_items(self, *, filters: Mapping[str, Any] | None = None,
                                   **named_filters: Any) -> AsyncIterator[InventoryItem]:
        async for item in self.iter_v3("/v3/inventory/items", filter_params(filters, **named_filters)):
            yield InventoryItem.from_api(item)

    async def adjust_inventory_absolute(self, items: Sequence[Mapping[str, Any]], reason: str = "") -> list[str]:
        """Absolute adjustments in groups of 2000; returns the transaction ids."""
        return await self._adjust("PUT", "/v3/inventory/adjustments/absolute", items, reason)

    async def adjust_inventory_relative(self, items: Sequence[Mapping[str, Any]], reason: str = "") -> list[str]:
        return await self._adjust("POST", "/v3/inventory/adjustments/relative", items, reason)

    async def _adjust(self, method: str, path: str, items: Sequence[Mapping[str, Any]], reason: str) -> list[str]:
        transactions = []
        for chunk in _chunks([dict(i) for i in items], INVENTORY_BATCH_SIZE):
            body = {"items": list(chunk), **({"reason": reason} if reason else {})}
            result = await self.request(method, path, json=body) or {}
            transactions.append(str(result.get("transaction_id", "")))
        return transactions

    async def update_location_items(self, location_id: int, settings: Sequence[Mapping[str, Any]]) -> list[str]:
        """Per-location item settings (safety stock, backorder_limit, ...) in groups of 2000."""
        transactions = []
        for chunk in _chunks([dict(s) for s in settings], INVENTORY_BATCH_SIZE):
            result = await self.request("PUT", f"/v3/inventory/locations/{location_id}/items",
                                        json={"settings": list(chunk)}) or {}
            transactions.append(str(result.get("transaction_id", "")))
        return transactions

    async def get_inventory_settings(self) -> dict[str, Any]:
        return dict((await self._v3("GET", "/v3/settings/inventory"))["data"])

    # -- orders --
    async def get_order(self, order_id: int) -> Order:
        return Order.from_api(await self.request("GET", f"/v2/orders/{order_id}"))

    async def create_order(self, body: Mapping[str, Any]) -> Order:
        return Order.from_api(await self.request("POST", "/v2/orders", json=dict(body)))

    async def update_order(self, order_id: int, fields_: Mapping[str, Any]) -> Order:
        return Order.from_api(await self.request("PUT", f"/v2/orders/{order_id}", json=dict(fields_)))

    async def iter_orders(self, **named_filters: Any) -> AsyncIterator[Order]:
        async for item in self.iter_v2("/v2/orders", filter_params(**named_filters)):
            yield Order.from_api(item)

    async def iter_order_products(self, order_id: int, *, limit: int = MAX_PAGE_SIZE) -> AsyncIterator[OrderProduct]:
        async for item in self.iter_v2(f"/v2/orders/{order_id}/products", limit=limit):
            yield OrderProduct.from_api(item)

    async def list_order_products(self, order_id: int) -> list[OrderProduct]:
        return [line async for line in self.iter_order_products(order_id)]

    async def list_order_statuses(self) -> list[dict[str, Any]]:
        return list(await self.request("GET", "/v2/order_statuses") or [])

    # -- webhooks --
    async def list_hooks(self, **named_filters: Any) -> list[Hook]:
        return [Hook.from_api(item) async for item in self.iter_v3("/v3/hooks", filter_params(**named_filters))]

    async def create_hook(self, scope: str, destination: str, *, headers: Mapping[str, str] | None = None,
                          is_active: bool = True) -> Hook:
        body = await self._v3("POST", "/v3/hooks", json={"scope": scope, "destination": destination,
                                                         "is_active": is_active, "headers": dict(headers or {})})
        return Hook.from_api(body["data"])

    async def update_hook(self, hook_id: int, fields_: Mapping[str, Any]) -> Hook:
        return Hook.from_api((await self._v3("PUT", f"/v3/hooks/{hook_id}", json=dict(fields_)))["data"])

    async def delete_hook(self, hook_id: int) -> None:
        await self.request("DELETE", f"/v3/hooks/{hook_id}")

    # -- scripts --
    async def list_scripts(self) -> list[Script]:
        return [Script.from_api(item) async for item in self.iter_v3("/v3/content/scripts")]

    async def create_script(self, fields_: Mapping[str, Any]) -> Script:
        return Script.from_api((await self._v3("POST", "/v3/content/scripts", json=dict(fields_)))["data"])

    async def update_script(self, script_uuid: str, fields_: Mapping[str, Any]) -> Script:
        body = await self._v3("PUT", f"/v3/content/scripts/{script_uuid}", json=dict(fields_))
        return Script.from_api(body["data"])

    async def delete_script(self, script_uuid: str) -> None:
        await self.request("DELETE", f"/v3/content/scripts/{script_uuid}")

    # -- store --
    async def get_store_info(self) -> StoreInfo:
        return StoreInfo.from_api(await self.request("GET", "/v2/store"))


def _body_of(response: HttpResponse) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


# ----- app authentication -----
async def exchange_oauth_code(code: str, scope: str, context: str, *, client_id: str, client_secret: str,
                              redirect_uri: str, login_base_url: str = DEFAULT_LOGIN_BASE_URL,
                              retry: RetryPolicy | None = None) -> OAuthToken:
    """The install handshake's code exchange (POST /oauth2/token); raises BigCommerceError on failure."""
    url = f"{login_base_url.rstrip('/')}/oauth2/token"
    payload = {"client_id": client_id, "client_secret": client_secret, "code": code, "context": context,
               "scope": scope, "grant_type": "authorization_code", "redirect_uri": redirect_uri}
    policy = retry or RetryPolicy()
    retries, slept = 0, 0.0
    while True:
        try:
            response = await http_call("POST", url, json=payload, headers={"Accept": "application/json"})
        except TransportError as exc:
            failure = BigCommerceError(0, f"network error: {exc}", "POST", url)
        else:
            body = _body_of(response)
            if response.status < 400 and isinstance(body, dict):
                return OAuthToken(access_token=body["access_token"], scope=body.get("scope", ""),
                                  context=body.get("context", context), user=body.get("user") or {},
                                  owner=body.get("owner") or {}, account_uuid=body.get("account_uuid", ""))
            failure = BigCommerceError(response.status, _error_message(body, response.reason), "POST",
                                       url, body)
            if response.status < 500:
                raise failure
        delay = policy.delay(retries)
        if retries >= policy.max_retries or slept + delay > policy.budget_seconds:
            raise failure
        retries, slept = retries + 1, slept + delay
        await asyncio.sleep(delay)


def verify_signed_payload_jwt(token: str, *, client_id: str, client_secret: str, leeway: float = 0) -> SignedPayload:
    """Verify a /load, /uninstall or /remove_user `signed_payload_jwt` (HS256 with the client secret).

    Checks the signature, `aud` == client id, `exp`/`nbf`/`iat`, and that `sub` is `stores/{hash}`.
    Raises SignedPayloadError naming the reason.
    """
    try:
        claims = jwt.decode(token, client_secret, algorithms=["HS256"], audience=client_id, leeway=leeway,
                            options={"require": ["aud", "exp", "nbf", "iat", "sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise SignedPayloadError("signed payload expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise SignedPayloadError("signed payload is for another app (audience)") from exc
    except jwt.InvalidSignatureError as exc:
        raise SignedPayloadError("signed payload signature does not match the client secret") from exc
    except jwt.PyJWTError as exc:
        raise SignedPayloadError(f"invalid signed payload: {exc}") from exc
    subject = str(claims.get("sub", ""))
    if not subject.startswith("stores/") or len(subject) <= len("stores/"):
        raise SignedPayloadError("signed payload subject is not a store")
    return SignedPayload(store_hash=subject.removeprefix("stores/"), user=dict(claims.get("user") or {}),
                         owner=dict(claims.get("owner") or {}), url=str(claims.get("url", "/")),
                         channel_id=claims.get("channel_id"), claims=claims)
