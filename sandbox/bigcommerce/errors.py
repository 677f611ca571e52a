"""BigCommerce error bodies: v3 is an object with status/title/type/errors, v2 a bare array."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

V3_ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"


class ApiError(Exception):
    """Raised by the domain; rendered as a v2 or v3 error body depending on the request path."""

    def __init__(self, status: int, title: str, errors: dict[str, Any] | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(title)
        self.status = status
        self.title = title
        self.errors = errors or {}
        self.details = details
        self.headers = headers or {}


def not_found(title: str = "The requested resource was not found") -> ApiError:
    return ApiError(404, title)


def unprocessable(title: str, errors: dict[str, Any] | None = None) -> ApiError:
    return ApiError(422, title, errors)


def v3_body(status: int, title: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status": status, "title": title, "type": V3_ERROR_TYPE, "errors": errors or {}}


def v2_body(status: int, message: str, details: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    item: dict[str, Any] = {"status": status, "message": message}
    if details is not None:
        item["details"] = details
    return [item]


def error_response(path: str, error: ApiError) -> JSONResponse:
    if "/v2/" in path:
        body: Any = v2_body(error.status, error.title, error.details)
    else:
        body = v3_body(error.status, error.title, error.errors)
    return JSONResponse(body, status_code=error.status, headers=error.headers)
