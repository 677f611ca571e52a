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


# The one shape of `details["errors"]`: a list of entries, each saying where and why.
# - an input field (JSON body, query parameter, form field): {"field", "reason"}, with "item"
#   (the index in a list of items) first when the field belongs to one, and any facts that
#   help fix it ("allowed", "expected", …);
# - a row of an uploaded file (CSV import): {"row", "column", "code", "message"}, rows
#   numbered as a spreadsheet shows them (header = 1).
# Build entries with `field_error` / `row_error`, never by hand.
ErrorEntry = dict[str, Any]


def field_error(field: str, reason: str, *, item: int | None = None, **facts: Any) -> ErrorEntry:
    """An entry for a bad input field (`item`: its index in a list of items)."""
    entry: ErrorEntry = {} if item is None else {"item": item}
    entry["field"] = field
    entry["reason"] = reason
    entry.update(facts)
    return entry


def row_error(row: int, column: str, code: str, message: str) -> ErrorEntry:
    """An entry for a bad row (or cell, when `column` is set) of an uploaded file."""
    return {"row": row, "column": column, "code": code, "message": message}


class ValidationFailed(DomainError):
    """Bad input. details: {"errors": [entries of the shape above], ...}."""

    code = "validation_failed"

    def __init__(self, message: str, errors: list[ErrorEntry] | None = None, **details: Any) -> None:
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
    # Stubs type it as objects with .key/.value; grpc.aio hands (key, value) pairs.
    trailing: Any = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == ERROR_METADATA_KEY:
            body = json.loads(value)
            error = DomainError(body["message"], code=body["code"], details=body.get("details") or {})
            if hasattr(exc, "code"):
                error.rpc_status = exc.code()
            return error
    status = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    code = CODE_BY_GRPC_STATUS.get(status, "internal")
    message = (exc.details() if hasattr(exc, "details") else None) or str(status)
    if code in {"unavailable", "internal"}:
        message = "a backend service is unavailable" if code == "unavailable" else "internal error"
    return DomainError(message, code=code)
