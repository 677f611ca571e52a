"""catalog_sync's calls to BigCommerce (REST v2/v3 and the OAuth token exchange).

Rate-limit aware: a 429 waits X-Rate-Limit-Time-Reset-Ms (or X-Retry-After) and retries; a
5xx or a network error retries with exponential backoff. After `max_attempts` the call
raises `BigCommerceUnavailable` (a TransientError: a consumer naks and JetStream redelivers
later). Writes are PUTs of absolute fields, so a retried write never doubles anything.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx

from services.common.bus import TransientError
from services.common.errors import DomainError

log = logging.getLogger(__name__)

PRODUCT_FIELDS = "id,name,sku,is_visible,availability,inventory_level,inventory_tracking,categories,brand_id,date_modified"


class BigCommerceError(DomainError):
    """BigCommerce answered 4xx (not 429): the request itself is wrong; retrying will not help."""

    code = "failed_precondition"

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"BigCommerce answered {status} to {method} {path}",
                         details={"status": status, "path": path, "body": body[:500]})
        self.status = status


class BigCommerceUnavailable(TransientError):
    """429/5xx/network after every retry."""


class BigCommerceHttp:
    """One shared HTTP connection pool for every store."""

    def __init__(self, api_url: str, login_url: str, *, max_attempts: int = 5, max_wait_s: float = 5.0,
                 timeout_s: float = 15.0, max_connections: int = 200) -> None:
        self.api_url = api_url.rstrip("/")
        self.login_url = login_url.rstrip("/")
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.http = httpx.AsyncClient(
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    def store(self, store_hash: str, token: str) -> StoreApi:
        return StoreApi(self, store_hash, token)

    async def exchange_code(self, *, client_id: str, client_secret: str, code: str, scope: str, context: str,
                            redirect_uri: str) -> tuple[int, dict[str, Any]]:
        """POST /oauth2/token; returns (status, body) so the caller decides what a refusal means."""
        response = await self.http.post(f"{self.login_url}/oauth2/token", json={
            "client_id": client_id, "client_secret": client_secret, "code": code, "scope": scope,
            "context": context, "grant_type": "authorization_code", "redirect_uri": redirect_uri,
        })
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body if isinstance(body, dict) else {}

    async def close(self) -> None:
        await self.http.aclose()


class StoreApi:
    """BigCommerce's REST API for one store and its token."""

    def __init__(self, http: BigCommerceHttp, store_hash: str, token: str) -> None:
        self._http = http
        self.store_hash = store_hash
        self._headers = {"X-Auth-Token": token, "Accept": "application/json", "Content-Type": "application/json"}
        self.base = f"{http.api_url}/stores/{store_hash}"

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      json: Any = None) -> httpx.Response:
        """One call with the retry policy above; raises BigCommerceError on 4xx."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.http.request(method, self.base + path, params=params, json=json,
                                                         headers=self._headers)
            except httpx.HTTPError as exc:
                if attempt >= self._http.max_attempts:
                    raise BigCommerceUnavailable(f"{method} {path}: {exc}") from exc
                await asyncio.sleep(self._backoff(attempt))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt >= self._http.max_attempts:
                    raise BigCommerceUnavailable(f"{method} {path}: HTTP {response.status_code}")
                await asyncio.sleep(self._wait(response, attempt))
                continue
            if response.status_code >= 400:
                raise BigCommerceError(response.status_code, method, path, response.text)
            return response

    def _backoff(self, attempt: int) -> float:
        return min(self._http.max_wait_s, 0.05 * 2 ** attempt) * (0.5 + random.random() / 2)

    def _wait(self, response: httpx.Response, attempt: int) -> float:
        if response.status_code == 429:
            reset_ms = response.headers.get("X-Rate-Limit-Time-Reset-Ms")
            retry_after = response.headers.get("X-Retry-After")
            try:
                if reset_ms is not None:
                    return min(self._http.max_wait_s, int(reset_ms) / 1000 + 0.01 * attempt)
                if retry_after is not None:
                    return min(self._http.max_wait_s, float(retry_after))
            except ValueError:
                pass
        return self._backoff(attempt)

    @staticmethod
    def _data(response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        body = response.json()
        return body.get("data") if isinstance(body, dict) and "data" in body else body

    # ----- store
    async def store_info(self) -> dict[str, Any]:
        return self._data(await self.request("GET", "/v2/store")) or {}

    # ----- catalog
    async def products_page(self, page: int, limit: int = 250, **filters: Any) -> tuple[list[dict[str, Any]], int]:
        """One page of products and the total page count."""
        params = {"page": page, "limit": limit, "include_fields": PRODUCT_FIELDS, **filters}
        response = await self.request("GET", "/v3/catalog/products", params=params)
        body = response.json()
        pages = int(((body.get("meta") or {}).get("pagination") or {}).get("total_pages") or 1)
        return list(body.get("data") or []), pages

    async def get_product(self, product_id: int) -> dict[str, Any] | None:
        try:
            response = await self.request("GET", f"/v3/catalog/products/{product_id}",
                                          params={"include_fields": PRODUCT_FIELDS})
        except BigCommerceError as exc:
            if exc.status == 404:
                return None
            raise
        return self._data(response)

    async def update_product(self, product_id: int, fields: dict[str, Any]) -> dict[str, Any] | None:
        """PUT absolute fields; None when the product no longer exists."""
        try:
            response = await self.request("PUT", f"/v3/catalog/products/{product_id}", json=fields)
        except BigCommerceError as exc:
            if exc.status == 404:
                return None
            raise
        return self._data(response)

    # ----- hooks and scripts
    async def list_all(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            response = await self.request("GET", path, params={"page": page, "limit": 250})
            body = response.json() if response.content else {}
            items.extend(body.get("data") or [])
            pages = int(((body.get("meta") or {}).get("pagination") or {}).get("total_pages") or 1)
            if page >= pages:
                return items
            page += 1

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._data(await self.request("POST", path, json=body)) or {}

    async def update(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._data(await self.request("PUT", path, json=body)) or {}

    # ----- orders
    async def get_order(self, order_id: int) -> dict[str, Any] | None:
        try:
            return self._data(await self.request("GET", f"/v2/orders/{order_id}"))
        except BigCommerceError as exc:
            if exc.status == 404:
                return None
            raise

    async def order_products(self, order_id: int, limit: int = 250) -> AsyncIterator[dict[str, Any]]:
        """Every product line of the order (v2 pages are bare arrays; an empty page may be 204)."""
        page = 1
        while True:
            response = await self.request("GET", f"/v2/orders/{order_id}/products",
                                          params={"page": page, "limit": limit})
            rows = self._data(response) or []
            for row in rows:
                yield row
            if len(rows) < limit:
                return
            page += 1

    async def update_order(self, order_id: int, fields: dict[str, Any]) -> None:
        await self.request("PUT", f"/v2/orders/{order_id}", json=fields)
