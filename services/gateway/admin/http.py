"""The admin API's HTTP plumbing: authentication around every endpoint, the route
declarations, backends, query parameters and the response shapes of API.md."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from services.common.errors import DomainError, Unavailable, ValidationFailed, field_error
from services.gateway.auth import Principal, authenticate, check_csrf, require_session

API_PREFIX = "/api/v1"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 250

T = TypeVar("T")
Handler = Callable[[Request, Principal], Awaitable[Response]]


def api(handler: Handler, *, session_only: bool = False,
        csrf_in_form: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, check CSRF on mutations, then call handler(request, principal).

    csrf_in_form: the handler checks CSRF itself once it has read the form (multipart uploads
    may carry the token as the csrf_token field instead of the header).
    """

    async def endpoint(request: Request) -> Response:
        principal = await authenticate(request)
        if session_only:
            require_session(principal)
        if not csrf_in_form:
            check_csrf(request, principal)
        return await handler(request, principal)

    endpoint.__name__ = handler.__name__
    return endpoint


class ApiRoutes:
    """One route module's endpoints, each declared on its handler:

        route = ApiRoutes()

        @route("GET", "/products")
        async def list_products(request, principal): ...

    The handler stays a plain function; `route.routes` is what the module exports.
    """

    def __init__(self) -> None:
        self.routes: list[BaseRoute] = []

    def __call__(self, method: str, path: str, *, session_only: bool = False,
                 csrf_in_form: bool = False) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            self.routes.append(Route(API_PREFIX + path, api(handler, session_only=session_only,
                                                            csrf_in_form=csrf_in_form), methods=[method]))
            return handler

        return declare

    def listing(self, path: str, query: Callable[[Request, str, Any], Awaitable[dict[str, Any]]]) -> None:
        """GET `path`: the list `query(request, store, query parameters)` answers, as it answers it."""

        async def list_endpoint(request: Request, principal: Principal) -> Response:
            return JSONResponse(await query(request, principal.store_hash, request.query_params))

        list_endpoint.__name__ = f"list_{query.__name__.removeprefix('query_')}"
        self("GET", path)(list_endpoint)


def backend(request: Request, name: str) -> Any:
    """The gRPC stub `name` (inventory, reports, tokens, catalog, storefront, billing)."""
    try:
        return getattr(request.app.state.backends, name)
    except AttributeError:
        raise Unavailable(f"the {name} service is not available", details={"service": name}) from None


# ---------------------------------------------------------------- responses

def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": data}, status_code=status)


def listing(items: list[Any], total: int, page: int, limit: int) -> dict[str, Any]:
    return {"data": items, "meta": {"pagination": pagination(total, len(items), page, limit)}}


def pagination(total: int, count: int, page: int, limit: int) -> dict[str, int]:
    return {"total": total, "count": count, "per_page": limit, "current_page": page,
            "total_pages": max(1, -(-total // limit)) if limit else 1}


# ---------------------------------------------------------------- input

async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise DomainError("the body is not valid JSON", code="bad_request") from None


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be an object", errors=[field_error("", "not_an_object")])
    return body


async def json_object(request: Request) -> dict[str, Any]:
    """The JSON body, which must be an object."""
    return require_object(await json_body(request))


def page_params(params: Any) -> tuple[int, int]:
    page = int_param(params, "page", 1, minimum=1)
    limit = int_param(params, "limit", DEFAULT_PAGE_SIZE, minimum=1)
    return page, min(limit, MAX_PAGE_SIZE)


def text_param(params: Any, name: str) -> str:
    return str(params.get(name) or "").strip()


def int_param(params: Any, name: str, default: int, *, minimum: int = 0) -> int:
    raw = text_param(params, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number",
                               errors=[field_error(name, "not_a_whole_number")]) from None
    if value < minimum:
        raise ValidationFailed(f"{name} must be at least {minimum}", errors=[field_error(name, "too_small")])
    return value


def bool_param(raw: Any, name: str, default: bool = False) -> bool:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off"}:
        return False
    raise ValidationFailed(f"{name} must be true or false", errors=[field_error(name, "not_a_boolean")])


def choice_param(params: Any, name: str, choices: Mapping[str, T], absent: T) -> T:
    """The value the parameter names (`absent` when it is not given)."""
    raw = text_param(params, name).lower()
    if not raw:
        return absent
    if raw not in choices:
        raise ValidationFailed(f"{name} must be one of {', '.join(choices)}",
                               errors=[field_error(name, "not_allowed", allowed=list(choices))])
    return choices[raw]
