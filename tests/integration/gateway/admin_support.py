"""Helpers for the admin API/UI tests on the whole real platform (tests/e2e/conftest.py's stack:
sandbox BigCommerce, billing, inventory, storefront, catalog_sync, gateway over uvicorn).

Cookies: the session and CSRF cookies are `Secure`. Chromium sends Secure cookies over plain
http to 127.0.0.1/localhost only; httpx's cookie jar never does over http, so these helpers
carry them in an explicit Cookie header.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class AdminSession:
    """A merchant signed in through /bc/load: cookies + the CSRF token to echo."""

    http: httpx.AsyncClient
    store_hash: str
    cookies: dict[str, str]
    set_cookie_headers: list[str]

    @property
    def csrf(self) -> str:
        return self.cookies["backorder_csrf"]

    def headers(self, *, csrf: bool = True, **extra: str) -> dict[str, str]:
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **extra}
        if csrf:
            headers["x-csrf-token"] = self.csrf
        return headers

    async def request(self, method: str, path: str, *, csrf: bool = True, headers: dict[str, str] | None = None,
                      **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, path, headers=self.headers(csrf=csrf, **(headers or {})), **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, csrf=False, **kwargs)


async def signed_payload(platform: Any, kind: str = "load", **claims: Any) -> str:
    return await asyncio.to_thread(platform.store.signed_payload, kind, **claims)


async def login(platform: Any, **claims: Any) -> AdminSession:
    """Open the app as BigCommerce does: GET /bc/load?signed_payload_jwt=… (minted by the sandbox)."""
    token = await signed_payload(platform, "load", **claims)
    response = await platform.http.get("/bc/load", params={"signed_payload_jwt": token})
    assert response.status_code == 303, response.text
    raw = response.headers.get_list("set-cookie")
    return AdminSession(platform.http, platform.store_hash, cookie_values(raw), raw)


def cookie_values(set_cookie_headers: list[str]) -> dict[str, str]:
    # http.cookies before 3.14 rejects the Partitioned attribute, so read name=value by hand.
    pairs = (header.split(";", 1)[0].split("=", 1) for header in set_cookie_headers)
    return {name.strip(): value.strip() for name, value in pairs}


async def catalog_products(platform: Any, session: AdminSession, **params: Any) -> list[dict[str, Any]]:
    response = await session.get("/api/v1/products", params={"limit": 250, **params})
    assert response.status_code == 200, response.text
    return response.json()["data"]
