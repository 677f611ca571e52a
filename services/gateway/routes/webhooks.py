"""POST /webhooks/bigcommerce: verify, validate, publish to JetStream, then answer.

- The per-store token (X-Backorder-Hook-Token) is HMAC-SHA256(BACKORDER_WEBHOOK_SECRET_KEY,
  store_hash), checked statelessly in constant time; the store must also be installed
  (catalog_sync's answer, cached briefly). Bad token: 401; bad payload: 400; unknown or
  uninstalled store: 404. None of them is published.
- Accepted deliveries go to `bc.webhooks.<store_hash>.<scope with dots>` with
  Nats-Msg-Id = the payload's hash (JetStream drops a duplicate inside its window;
  catalog_sync's inbox drops it after). 200 only after JetStream's ack; no ack within
  BACKORDER_WEBHOOK_PUBLISH_TIMEOUT_S, or NATS down: 503, and BigCommerce retries.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import grpc
from backorder.catalog.v1 import catalog_pb2
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.common import bigcommerce_webhooks as hooks
from services.common.bus import MSG_ID_HEADER
from services.common.errors import ValidationFailed
from services.gateway.errors import error_response
from services.gateway.request_log import note_store

log = logging.getLogger(__name__)

INSTALLED_TTL_S = 5.0
NOT_INSTALLED_TTL_S = 2.0
WEBHOOKS = Counter("backorder_gateway_webhooks_total", "BigCommerce webhook deliveries", ["outcome"])


class InstalledStores:
    """catalog_sync's installed-store answers, cached for a few seconds."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[bool, float]] = {}

    def forget(self, store_hash: str) -> None:
        self._cache.pop(store_hash, None)

    async def installed(self, request: Request, store_hash: str, token: str) -> bool:
        cached = self._cache.get(store_hash)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        reply = await request.app.state.backends.catalog.VerifyWebhookToken(
            catalog_pb2.VerifyWebhookTokenRequest(store_hash=store_hash, token=token))
        installed = bool(reply.valid and reply.installed)
        self._cache[store_hash] = (installed, now + (INSTALLED_TTL_S if installed else NOT_INSTALLED_TTL_S))
        return installed


async def startup(app: Any) -> None:
    app.state.webhook_secret_key = app.state.settings.webhook_secret_key.reveal()
    app.state.installed_stores = InstalledStores()
    app.state.forget_webhook_store = app.state.installed_stores.forget


async def receive_webhook(request: Request) -> Response:
    body = await request.body()
    if len(body) > hooks.MAX_WEBHOOK_BYTES:
        WEBHOOKS.labels("too_large").inc()
        return error_response("payload_too_large", "webhook payload too large", status=413)
    try:
        hook = hooks.parse_webhook(json.loads(body))
    except ValueError:
        WEBHOOKS.labels("bad_payload").inc()
        return error_response("bad_request", "webhook payload is not JSON", status=400)
    except ValidationFailed as exc:
        WEBHOOKS.labels("bad_payload").inc()
        return error_response("bad_request", exc.message, exc.details, status=400)
    token = request.headers.get(hooks.HOOK_TOKEN_HEADER, "")
    if not hooks.webhook_token_matches(request.app.state.webhook_secret_key, hook.store_hash, token):
        WEBHOOKS.labels("bad_token").inc()
        return error_response("unauthenticated", "missing or wrong webhook token", status=401)
    note_store(request.scope, hook.store_hash)
    try:
        installed = await request.app.state.installed_stores.installed(request, hook.store_hash, token)
    except grpc.RpcError:
        WEBHOOKS.labels("unavailable").inc()
        return error_response("unavailable", "cannot check the store right now; retry later", status=503)
    if not installed:
        WEBHOOKS.labels("unknown_store").inc()
        return error_response("not_found", "the store is not installed", {"store_hash": hook.store_hash},
                              status=404)
    bus = request.app.state.bus
    try:
        await bus.js.publish(hooks.webhook_subject(hook.store_hash, hook.scope), body,
                             headers={MSG_ID_HEADER: hook.hash},
                             timeout=request.app.state.settings.publish_timeout_s)
    except Exception as exc:  # noqa: BLE001 - any publish failure means "not durably accepted"
        WEBHOOKS.labels("unavailable").inc()
        log.warning("webhook %s for %s not published: %r", hook.scope, hook.store_hash, exc)
        return error_response("unavailable", "the event bus is unavailable; retry later", status=503)
    WEBHOOKS.labels("accepted").inc()
    return Response(status_code=200)


routes = [Route("/webhooks/bigcommerce", receive_webhook, methods=["POST"])]
