"""The gateway's request log: one JSON line per HTTP request (common/logs.py's formatter).

Each line carries method, path, status, duration_ms and, when known, store_hash: from the
path (`/storefront/v1/stores/{store_hash}/…`) or noted by the code that authenticated the
caller (`note_store`). Never the query string (BigCommerce's callbacks carry
signed_payload_jwt in it), headers, cookies or bodies.

Logged at INFO; at a higher BACKORDER_LOG_LEVEL a request costs one level check.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("services.gateway.requests")

STORE_KEY = "backorder.store_hash"


def note_store(scope: Scope, store_hash: str) -> None:
    """Name the store a request acts for in its log line (once the caller is known)."""
    scope[STORE_KEY] = store_hash


def store_of(scope: Scope) -> str | None:
    noted = scope.get(STORE_KEY)
    if noted:
        return str(noted)
    from_path = scope.get("path_params", {}).get("store_hash")
    return str(from_path) if from_path else None


class RequestLogMiddleware:
    """Pure ASGI (no body buffering, nothing added on the storefront's hot path but a clock read)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started ends as a 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            fields: dict[str, Any] = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            store_hash = store_of(scope)
            if store_hash:
                fields["store_hash"] = store_hash
            log.info("%s %s %s", fields["method"], fields["path"], status, extra=fields)
