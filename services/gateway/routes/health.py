"""GET /healthz (200 only when every backend is SERVING and NATS is connected) and /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def healthz(request: Request) -> JSONResponse:
    backends = await request.app.state.backends.health()
    checks = {name: ("serving" if up else "not_serving") for name, up in backends.items()}
    checks["nats"] = "connected" if request.app.state.bus.connected else "disconnected"
    healthy = all(v in {"serving", "connected"} for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status_code=200 if healthy else 503)


async def metrics(_request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/healthz", healthz), Route("/metrics", metrics)]
