"""The gateway's request log: one JSON line per request, without query strings or secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import jwt
import pytest

from services.common.logs import JsonFormatter
from services.gateway.app import create_app
from services.gateway.request_log import log as request_log
from services.gateway.settings import GatewaySettings


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the gateway's request logger writes, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("gateway"))
    level = request_log.level
    request_log.addHandler(handler)
    request_log.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        request_log.removeHandler(handler)
        request_log.setLevel(level)


def entries(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def get(path: str, **kwargs: object) -> httpx.Response:
    # Driven without its lifespan: no backend and no NATS are needed for these answers.
    app = create_app(GatewaySettings.from_env(environ={}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        return await client.get(path, **kwargs)  # type: ignore[arg-type]


async def test_a_request_is_logged_with_method_path_status_duration_and_store(log_lines):
    response = await get("/storefront/v1/stores/abc123/products/not-a-number")
    assert response.status_code == 404
    (entry,) = entries(log_lines)
    assert entry["method"] == "GET"
    assert entry["path"] == "/storefront/v1/stores/abc123/products/not-a-number"
    assert entry["status"] == 404
    assert isinstance(entry["duration_ms"], int | float) and entry["duration_ms"] >= 0
    assert entry["store_hash"] == "abc123"
    assert entry["service"] == "gateway" and entry["level"] == "info"


async def test_a_query_string_carrying_a_jwt_is_not_logged(log_lines):
    token = jwt.encode({"sub": "stores/abc123", "aud": "someone-else"}, "not-the-client-secret-of-this-app!",
                       algorithm="HS256")
    response = await get(f"/bc/uninstall?signed_payload_jwt={token}",
                         headers={"Cookie": "backorder_session=session-secret-value"})
    assert response.status_code == 401
    (line,) = log_lines.getvalue().splitlines()
    entry = json.loads(line)
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/bc/uninstall", 401)
    for secret in (token, token.split(".")[2], "signed_payload_jwt", "session-secret-value"):
        assert secret not in line


async def test_a_store_the_caller_cannot_prove_is_not_named(log_lines):
    response = await get("/api/v1/backorder-products", headers={"Cookie": "backorder_session=forged.value"})
    assert response.status_code == 401
    (entry,) = entries(log_lines)
    assert entry["path"] == "/api/v1/backorder-products" and "store_hash" not in entry
    assert "forged" not in json.dumps(entry)
