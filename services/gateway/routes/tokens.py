"""/api/v1/tokens: the store's API tokens (inventory's TokenService). Creating one needs
the merchant's session; its plaintext is shown once."""

from __future__ import annotations

from backorder.inventory.v1 import token_pb2
from starlette.requests import Request
from starlette.responses import Response

from services.gateway.admin.http import ApiRoutes, backend, json_body, ok
from services.gateway.admin.inputs import token_name
from services.gateway.admin.mapping import token_json
from services.gateway.admin.queries import query_tokens
from services.gateway.auth import Principal

route = ApiRoutes()


@route("POST", "/tokens", session_only=True)
async def create_token(request: Request, principal: Principal) -> Response:
    name = token_name(await json_body(request))
    reply = await backend(request, "tokens").CreateApiToken(token_pb2.CreateApiTokenRequest(
        store_hash=principal.store_hash, name=name))
    return ok({**token_json(reply.token), "token": reply.plaintext}, 201)


@route("GET", "/tokens")
async def list_tokens(request: Request, principal: Principal) -> Response:
    return ok(await query_tokens(request, principal.store_hash))


@route("DELETE", "/tokens/{token_id}")
async def revoke_token(request: Request, principal: Principal) -> Response:
    token_id = request.path_params["token_id"]
    reply = await backend(request, "tokens").RevokeApiToken(token_pb2.RevokeApiTokenRequest(
        store_hash=principal.store_hash, id=token_id))
    request.app.state.token_cache.forget_token_id(token_id)
    return ok(token_json(reply.token))


routes = route.routes
