"""The one table from error codes / gRPC status to HTTP, and the JSON error body of API.md."""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse

from services.common.errors import DomainError, error_from_rpc

HTTP_STATUS_BY_CODE: dict[str, int] = {
    "validation_failed": 422,
    "bad_request": 400,
    "not_found": 404,
    "already_assigned": 409,
    "already_exists": 409,
    "idempotency_conflict": 409,
    "not_assigned": 409,
    "failed_precondition": 409,
    "conflict": 409,
    "plan_limit_reached": 402,
    "unauthenticated": 401,
    "forbidden": 403,
    "csrf_failed": 403,
    "rate_limited": 429,
    "payload_too_large": 413,
    "unavailable": 503,
    "internal": 500,
}

# For a code the table above does not name (a service's own precondition codes such as
# billing's no_pending_change): the gRPC status it came with decides.
HTTP_STATUS_BY_GRPC_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(code: str, message: str, details: dict[str, Any] | None = None,
                   status: int | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status or HTTP_STATUS_BY_CODE.get(code, 400),
                        headers=headers)


def domain_error_response(error: DomainError) -> JSONResponse:
    status = HTTP_STATUS_BY_CODE.get(error.code) or HTTP_STATUS_BY_GRPC_STATUS.get(error.grpc_status, 400)
    return error_response(error.code, error.message, error.details, status=status)


async def handle_domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return domain_error_response(exc)


async def handle_rpc_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.RpcError)
    return domain_error_response(error_from_rpc(exc))


EXCEPTION_HANDLERS = {DomainError: handle_domain_error, grpc.RpcError: handle_rpc_error}
