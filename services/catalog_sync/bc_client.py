"""catalog_sync's view of BigCommerce: a thin adapter over the one client
(services.common.bigcommerce) that returns BigCommerce's JSON and sorts failures into
what a caller can do about them.

The shared client waits out 429s (per-store rate limiter learning X-Rate-Limit-* headers)
and retries 5xx/network errors within its budget. What still fails is
`BigCommerceUnavailable` (a TransientError: consumers nak and JetStream redelivers later)
or, for a 4xx, `BigCommerceRejected` (retrying the same request cannot help). Writes are
PUTs of absolute fields, so a retried write never doubles anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from services.common import bigcommerce
from services.common.bus import TransientError
from services.common.errors import DomainError, Unauthenticated

PRODUCT_FIELDS = ("id", "name", "sku", "is_visible", "availability", "inventory_level", "inventory_tracking",
                  "categories", "brand_id", "date_modified")


class BigCommerceRejected(DomainError):
    """BigCommerce answered 4xx (not 429) to a request."""

    code = "failed_precondition"


class BigCommerceUnavailable(TransientError):
    """429/5xx/network after every retry."""


def _translate(exc: bigcommerce.BigCommerceError) -> Exception:
    if exc.status == 0 or exc.status == 429 or exc.status >= 500:
        return BigCommerceUnavailable(str(exc))
    return BigCommerceRejected(f"BigCommerce answered {exc.status} to {exc.method} {exc.url}: {exc.message}",
                               details={"status": exc.status, "url": exc.url})


class BigCommerceHttp:
    """Base URLs and retry policy; per-store clients share the process's pool and rate limiter."""

    def __init__(self, api_url: str, login_url: str, *, retry: bigcommerce.RetryPolicy | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.login_url = login_url.rstrip("/")
        self.retry = retry or bigcommerce.RetryPolicy(max_retries=5, base_delay=0.1, max_delay=2.0, budget_seconds=10.0)

    def store(self, store_hash: str, token: str) -> StoreApi:
        return StoreApi(bigcommerce.BigCommerceClient(store_hash, token, api_base_url=self.api_url, retry=self.retry))

    async def exchange_code(self, *, client_id: str, client_secret: str, code: str, scope: str, context: str,
                            redirect_uri: str) -> bigcommerce.OAuthToken:
        """POST /oauth2/token; a refused code is Unauthenticated."""
        try:
            return await bigcommerce.exchange_oauth_code(
                code, scope, context, client_id=client_id, client_secret=client_secret, redirect_uri=redirect_uri,
                login_base_url=self.login_url, retry=self.retry)
        except bigcommerce.BigCommerceError as exc:
            if 400 <= exc.status < 500:
                raise Unauthenticated("BigCommerce refused the install code",
                                      details={"status": exc.status, "reason": exc.message}) from exc
            raise _translate(exc) from exc

    async def close(self) -> None:
        """Nothing to close: the HTTP pool is the process's, shared with other users of the client."""


class StoreApi:
    """BigCommerce's REST API for one store; results are BigCommerce's JSON objects."""

    def __init__(self, client: bigcommerce.BigCommerceClient) -> None:
        self.client = client
        self.store_hash = client.store_hash

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return await self.client.request(method, path, **kwargs)
        except bigcommerce.BigCommerceError as exc:
            raise _translate(exc) from exc

    async def _call_or_none(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return await self.client.request(method, path, **kwargs)
        except bigcommerce.BigCommerceError as exc:
            if exc.status == 404:
                return None
            raise _translate(exc) from exc

    @staticmethod
    def _data(body: Any) -> dict[str, Any] | None:
        """The object of a v3 answer ({"data": {...}}); None for no object (a 404 read as None)."""
        data = body.get("data") if isinstance(body, dict) and "data" in body else body
        return data if isinstance(data, dict) else None

    async def store_info(self) -> dict[str, Any]:
        return await self._call("GET", "/v2/store") or {}

    async def products_page(self, page: int, limit: int = 250, **filters: Any) -> tuple[list[dict[str, Any]], int]:
        """One page of products and the total page count."""
        params = {"page": str(page), "limit": str(limit), "include_fields": ",".join(PRODUCT_FIELDS), **filters}
        body = await self._call("GET", "/v3/catalog/products", params=params) or {}
        pages = int(((body.get("meta") or {}).get("pagination") or {}).get("total_pages") or 1)
        return list(body.get("data") or []), pages

    async def get_product(self, product_id: int) -> dict[str, Any] | None:
        return self._data(await self._call_or_none("GET", f"/v3/catalog/products/{product_id}",
                                                   params={"include_fields": ",".join(PRODUCT_FIELDS)}))

    async def update_product(self, product_id: int, fields: dict[str, Any]) -> dict[str, Any] | None:
        """PUT absolute fields; None when the product no longer exists."""
        return self._data(await self._call_or_none("PUT", f"/v3/catalog/products/{product_id}", json=fields))

    async def list_all(self, path: str) -> list[dict[str, Any]]:
        try:
            return [item async for item in self.client.iter_v3(path)]
        except bigcommerce.BigCommerceError as exc:
            raise _translate(exc) from exc

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._data(await self._call("POST", path, json=body)) or {}

    async def update(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._data(await self._call("PUT", path, json=body)) or {}

    async def get_order(self, order_id: int) -> dict[str, Any] | None:
        order = await self._call_or_none("GET", f"/v2/orders/{order_id}")
        return order if isinstance(order, dict) else None

    async def orders_between(self, min_id: int, max_id: int) -> list[dict[str, Any]]:
        """The orders with min_id ≤ id ≤ max_id that the orders list returns (every page)."""
        try:
            return [row async for row in self.client.iter_v2(
                "/v2/orders", {"min_id": str(min_id), "max_id": str(max_id), "sort": "id:asc"})]
        except bigcommerce.BigCommerceError as exc:
            raise _translate(exc) from exc

    async def order_products(self, order_id: int) -> AsyncIterator[dict[str, Any]]:
        """Every product line of the order, page by page."""
        try:
            async for row in self.client.iter_v2(f"/v2/orders/{order_id}/products"):
                yield row
        except bigcommerce.BigCommerceError as exc:
            raise _translate(exc) from exc

    async def update_order(self, order_id: int, fields: dict[str, Any]) -> None:
        await self._call("PUT", f"/v2/orders/{order_id}", json=fields)
