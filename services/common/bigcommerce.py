"""The one BigCommerce API client: every call to BigCommerce goes through here.

- One pooled `aiohttp.ClientSession` per process (per event loop), shared by every `BigCommerceClient`.
- A per-store rate limiter shared by all callers in the process. It learns the quota and window
  from the X-Rate-Limit-* headers, never has more requests outstanding than the window has left,
  and on 429 waits for X-Rate-Limit-Time-Reset-Ms before retrying.
- Retries with full-jitter exponential backoff on 5xx and network errors, within a bounded budget
  of attempts and seconds; then `BigCommerceError`.
- Results are BigCommerce's JSON as it comes; paginated iterators over v2 and v3 lists.
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
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

DEFAULT_API_BASE_URL = "https://api.bigcommerce.com"
DEFAULT_LOGIN_BASE_URL = "https://login.bigcommerce.com"
MAX_PAGE_SIZE = 250


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



# ----- the client -----
class BigCommerceClient:
    """REST client for one store. Cheap to create: the HTTP pool and rate limiter are process-wide."""

    def __init__(self, store_hash: str, access_token: str, *, api_base_url: str = DEFAULT_API_BASE_URL,
                 retry: RetryPolicy | None = None, timeout: float = 30.0):
        self.store_hash = store_hash
        self.api_base_url = api_base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._headers = {"X-Auth-Token": access_token, "Accept": "application/json",
                         "Content-Type": "application/json"}

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
