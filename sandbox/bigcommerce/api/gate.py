"""The gate in front of BigCommerce's REST routes (an ASGI middleware).

It authenticates X-Auth-Token, applies injected failures, enforces the store's rate-limit window
and adds the X-Rate-Limit-* headers to every API response.
"""

from __future__ import annotations

import math
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.bigcommerce.core import Sandbox
from sandbox.bigcommerce.errors import ApiError, error_response

API_PATH = re.compile(r"^/stores/([^/]+)/(v2|v3)(/.*)?$")
UNLIMITED_QUOTA = 1_000_000_000


class ApiGate:
    def __init__(self, app: ASGIApp, sandbox: Sandbox):
        self.app = app
        self.sb = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = API_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        store_hash, path = match.group(1), scope["path"]
        sb = self.sb
        if not sb.store_exists(store_hash):
            await error_response(path, ApiError(404, f"Store {store_hash} was not found"))(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client_id = sb.token_client(store_hash, headers.get("x-auth-token"))
        if client_id is None:
            await error_response(path, ApiError(401, "You are not authorized to access this resource."))(
                scope, receive, send)
            return
        scope.setdefault("state", {})["client_id"] = client_id
        runtime = sb.runtime_for(store_hash)
        store = sb.db.row("SELECT quota, window_ms FROM stores WHERE hash = ?", (store_hash,))
        quota = store["quota"] if store["quota"] is not None else UNLIMITED_QUOTA
        window_ms = store["window_ms"]

        injected = runtime.api_failures
        if injected.count > 0:
            injected.count -= 1
            runtime.requests_failed_on_purpose += 1
            extra = {}
            if injected.status == 429:
                extra = self._limit_headers(quota, 0, window_ms, injected.reset_ms)
                extra["X-Retry-After"] = str(max(1, math.ceil(injected.reset_ms / 1000)))
            await error_response(path, ApiError(injected.status, "Injected failure from the sandbox",
                                                headers=extra))(scope, receive, send)
            return

        now = time.monotonic()
        window = runtime.window
        if now - window.started >= window_ms / 1000:
            window.started, window.used = now, 0
        reset_ms = max(int(window_ms - (now - window.started) * 1000), 1)
        if window.used >= quota:
            runtime.requests_throttled += 1
            limit_headers = self._limit_headers(quota, 0, window_ms, reset_ms)
            limit_headers["X-Retry-After"] = str(max(1, math.ceil(reset_ms / 1000)))
            await error_response(path, ApiError(429, "Too many requests", headers=limit_headers))(
                scope, receive, send)
            return
        window.used += 1
        runtime.requests_served += 1
        runtime.max_used_in_window = max(runtime.max_used_in_window, window.used)
        limit_headers = self._limit_headers(quota, quota - window.used, window_ms, reset_ms)
        encoded = [(k.lower().encode(), v.encode()) for k, v in limit_headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + encoded}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ApiError as exc:
            await error_response(path, exc)(scope, receive, send_with_headers)
        except (ValueError, TypeError, KeyError) as exc:
            # Malformed input that slipped past validation is the caller's error, not a 500.
            await error_response(path, ApiError(400, f"The request is invalid: {exc}"))(
                scope, receive, send_with_headers)

    @staticmethod
    def _limit_headers(quota: int, left: int, window_ms: int, reset_ms: int) -> dict[str, str]:
        return {"X-Rate-Limit-Time-Window-Ms": str(window_ms), "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
                "X-Rate-Limit-Requests-Quota": str(quota), "X-Rate-Limit-Requests-Left": str(left),
                "X-BC-ApiLimit-Remaining": str(left)}
