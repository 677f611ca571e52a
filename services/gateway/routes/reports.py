"""/api/v1/reports/backorders(.csv): the backordered order lines (inventory's reports)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from backorder.inventory.v1 import report_pb2
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from services.gateway.admin.http import ApiRoutes, backend
from services.gateway.admin.inputs import parse_report_filter
from services.gateway.admin.queries import query_report
from services.gateway.auth import Principal

EXPORT_TIMEOUT_S = 300.0

route = ApiRoutes()
route.listing("/reports/backorders", query_report)


@route("GET", "/reports/backorders.csv")
async def report_csv(request: Request, principal: Principal) -> Response:
    stream = backend(request, "reports").ExportBackorders(report_pb2.ExportBackordersRequest(
        store_hash=principal.store_hash, filter=parse_report_filter(request.query_params)), timeout=EXPORT_TIMEOUT_S)

    async def chunks() -> AsyncIterator[bytes]:
        async for reply in stream:
            yield reply.chunk

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": 'attachment; filename="backorder-report.csv"', "cache-control": "no-store"})


routes = route.routes
