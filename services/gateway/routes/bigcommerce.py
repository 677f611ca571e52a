"""BigCommerce app callbacks owned by catalog_sync's flow: GET /bc/auth (install) and
GET /bc/uninstall. (/bc/load and /bc/remove_user live in admin_ui.)"""

from __future__ import annotations

import html
import logging

import grpc
from backorder.catalog.v1 import catalog_pb2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from services.common.bigcommerce import SignedPayload, SignedPayloadError
from services.common.errors import Unauthenticated, ValidationFailed
from services.gateway.auth import verify_signed_payload
from services.gateway.request_log import note_store
from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

# The install does the token exchange, hook and script registration and billing in one call.
INSTALL_DEADLINE_S = 60.0
JWT_LEEWAY_S = 10


def verified_payload(token: str, settings: GatewaySettings) -> SignedPayload:
    """The callback's signed payload; a missing or invalid one is Unauthenticated (401)."""
    if not token:
        raise Unauthenticated("signed_payload_jwt is required")
    try:
        return verify_signed_payload(token, settings, leeway_s=JWT_LEEWAY_S)
    except SignedPayloadError as exc:
        raise Unauthenticated("invalid or expired signed_payload_jwt", details={"reason": str(exc)}) from exc


INSTALLED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Backorder installed</title></head>
<body><h1>Backorder is installed</h1>
<p>Store {store}: {hooks} webhooks registered; the catalog is being pulled.</p>
<p>Open the app from the BigCommerce control panel to assign products.</p></body></html>
"""


async def auth_callback(request: Request) -> Response:
    """GET /bc/auth?code&scope&context: the install, done by catalog_sync."""
    params = request.query_params
    missing = [name for name in ("code", "scope", "context") if not params.get(name)]
    if missing:
        raise ValidationFailed("the install callback needs code, scope and context",
                               errors=[{"field": name, "reason": "required"} for name in missing])
    reply = await request.app.state.backends.catalog.Install(catalog_pb2.InstallRequest(
        code=params["code"], scope=params["scope"], context=params["context"],
        account_uuid=params.get("account_uuid", "")), timeout=INSTALL_DEADLINE_S)
    note_store(request.scope, reply.store.store_hash)
    return HTMLResponse(INSTALLED_PAGE.format(store=html.escape(reply.store.store_hash),
                                              hooks=reply.webhooks_registered))


async def uninstall_callback(request: Request) -> Response:
    """GET /bc/uninstall?signed_payload_jwt: stop processing the store and drop its token."""
    payload = verified_payload(request.query_params.get("signed_payload_jwt", ""), request.app.state.settings)
    store_hash = payload.store_hash
    note_store(request.scope, store_hash)
    try:
        await request.app.state.backends.catalog.Uninstall(catalog_pb2.UninstallRequest(store_hash=store_hash))
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise  # mapped to 503/… by the error table; BigCommerce calls again
    forget = getattr(request.app.state, "forget_webhook_store", None)
    if forget is not None:
        forget(store_hash)
    return Response(status_code=204)


routes = [
    Route("/bc/auth", auth_callback, methods=["GET"]),
    Route("/bc/uninstall", uninstall_callback, methods=["GET"]),
]
