"""What every REST route shares: its sandbox and caller, the JSON body, paging and the v2/v3
response shapes."""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.bigcommerce.catalog_fields import MAX_PAGE, split_csv
from sandbox.bigcommerce.errors import ApiError, unprocessable


def client_of(request: Request) -> str:
    """The API client id the gate found behind the request's X-Auth-Token."""
    client_id: str = request.scope["state"]["client_id"]
    return client_id


def api_base(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/stores/{request.path_params['store_hash']}"


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError as exc:
        raise ApiError(400, "The request body is not valid JSON") from exc


def paging(request: Request, default: int = 50) -> tuple[int, int]:
    try:
        page = max(int(request.query_params.get("page", 1)), 1)
        limit = min(max(int(request.query_params.get("limit", default)), 1), MAX_PAGE)
    except ValueError as exc:
        raise unprocessable("page and limit must be integers", {"page": "integer", "limit": "integer"}) from exc
    return page, limit


def pagination(request: Request, total: int, count: int, page: int, limit: int) -> dict[str, Any]:
    total_pages = math.ceil(total / limit) if total else 0
    others = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "limit")]

    def link(number: int) -> str:
        return "?" + urlencode([*others, ("page", number), ("limit", limit)], safe=":,")

    links: dict[str, str] = {"current": link(page)}
    if page > 1:
        links["previous"] = link(page - 1)
    if page < total_pages:
        links["next"] = link(page + 1)
    return {"pagination": {"total": total, "count": count, "per_page": limit, "current_page": page,
                           "total_pages": total_pages, "links": links}}


def v3(data: Any, status: int = 200, meta: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"data": data, "meta": meta or {}}, status_code=status)


def v3_list(request: Request, items: list[Any], default: int = 50) -> JSONResponse:
    page, limit = paging(request, default)
    chunk = items[(page - 1) * limit: page * limit]
    return v3(chunk, meta=pagination(request, len(items), len(chunk), page, limit))


def v2_list(items: list[Any]) -> Response:
    # Empty v2 lists come back as 204 No Content, as BigCommerce has long done.
    return Response(status_code=204) if not items else JSONResponse(items)


def shaped(request: Request, doc: dict[str, Any], variants: list[dict[str, Any]] | None,
           options: list[dict[str, Any]] | None) -> dict[str, Any]:
    params = request.query_params
    includes = set(split_csv(params.get("include", "")))
    if "include_fields" in params:
        keep = set(split_csv(params["include_fields"])) | {"id"}
        doc = {k: v for k, v in doc.items() if k in keep}
    if "exclude_fields" in params:
        drop = set(split_csv(params["exclude_fields"])) - {"id"}
        doc = {k: v for k, v in doc.items() if k not in drop}
    if "variants" in includes:
        doc["variants"] = variants or []
    if "options" in includes:
        doc["options"] = options or []
    for empty in ("images", "custom_fields", "bulk_pricing_rules", "modifiers", "videos", "reviews"):
        if empty in includes:
            doc[empty] = []
    if "primary_image" in includes:
        doc["primary_image"] = None
    return doc
