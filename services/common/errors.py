"""Domain errors with a stable code and structured details, and their gRPC mapping.

Services raise `DomainError` (or a subclass) from pure code; the gRPC interceptor turns it
into a status code via `GRPC_STATUS_BY_CODE` and ships `{code, message, details}` as JSON in
the trailing metadata key `backorder-error-bin`, which `error_from_rpc` reads back on the
calling side (the gateway maps it to HTTP with its own single table).
"""

from __future__ import annotations

import json
from typing import Any

import grpc

ERROR_METADATA_KEY = "backorder-error-bin"

GRPC_STATUS_BY_CODE: dict[str, grpc.StatusCode] = {
    "validation_failed": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "already_assigned": grpc.StatusCode.ALREADY_EXISTS,
    "already_exists": grpc.StatusCode.ALREADY_EXISTS,
    "idempotency_conflict": grpc.StatusCode.ALREADY_EXISTS,
    "not_assigned": grpc.StatusCode.FAILED_PRECONDITION,
    "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION,
    "plan_limit_reached": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "rate_limited": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "forbidden": grpc.StatusCode.PERMISSION_DENIED,
    "conflict": grpc.StatusCode.ABORTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "internal": grpc.StatusCode.INTERNAL,
}

# For a bare gRPC status with no Backorder error attached (e.g. a deadline or a down peer).
CODE_BY_GRPC_STATUS: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.INVALID_ARGUMENT: "validation_failed",
    grpc.StatusCode.NOT_FOUND: "not_found",
    grpc.StatusCode.ALREADY_EXISTS: "already_exists",
    grpc.StatusCode.FAILED_PRECONDITION: "failed_precondition",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "rate_limited",
    grpc.StatusCode.UNAUTHENTICATED: "unauthenticated",
    grpc.StatusCode.PERMISSION_DENIED: "forbidden",
    grpc.StatusCode.ABORTED: "conflict",
    grpc.StatusCode.UNAVAILABLE: "unavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "unavailable",
}


class DomainError(Exception):
    """A rule was broken. `code` is stable snake_case; `details` say which field/row and why."""

    code = "failed_precondition"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details or {}

    # The status a peer answered with, when this error was rebuilt from its reply.
    rpc_status: grpc.StatusCode | None = None

    @property
    def grpc_status(self) -> grpc.StatusCode:
        if self.rpc_status is not None:
            return self.rpc_status
        return GRPC_STATUS_BY_CODE.get(self.code, grpc.StatusCode.FAILED_PRECONDITION)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, details={self.details!r})"


class ValidationFailed(DomainError):
    """Bad input. details: {"errors": [{"field"|"row"|"item", "reason", ...}, ...]}."""

    code = "validation_failed"

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None, **details: Any) -> None:
        merged = dict(details)
        if errors is not None:
            merged["errors"] = errors
        super().__init__(message, details=merged)


class NotFound(DomainError):
    code = "not_found"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Forbidden(DomainError):
    code = "forbidden"


class Unavailable(DomainError):
    code = "unavailable"


def error_metadata(error: DomainError) -> tuple[tuple[str, bytes], ...]:
    return ((ERROR_METADATA_KEY, json.dumps(error.to_dict(), default=str).encode()),)


def error_from_rpc(exc: grpc.RpcError) -> DomainError:
    """Rebuild the DomainError a peer raised (or a generic one from the bare status)."""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == ERROR_METADATA_KEY:
            body = json.loads(value)
            error = DomainError(body["message"], code=body["code"], details=body.get("details") or {})
            if hasattr(exc, "code"):
                error.rpc_status = exc.code()
            return error
    status = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    code = CODE_BY_GRPC_STATUS.get(status, "internal")
    message = exc.details() if hasattr(exc, "details") and exc.details() else str(status)
    if code in {"unavailable", "internal"}:
        message = "a backend service is unavailable" if code == "unavailable" else "internal error"
    return DomainError(message, code=code)
