"""Pure pieces of the BigCommerce client: filters, messages, backoff, rate-limit accounting, JWT checks."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest

from services.common.bigcommerce import (
    RateLimiter,
    RetryPolicy,
    SignedPayloadError,
    _error_message,
    verify_signed_payload_jwt,
)
from tests.plugins.bigcommerce_typed import Product, filter_params

SECRET = "a-client-secret-that-is-long-enough-for-hs256"


def limit_headers(quota: int, left: int, reset_ms: int, window_ms: int = 30_000) -> httpx.Headers:
    return httpx.Headers({"X-Rate-Limit-Requests-Quota": str(quota), "X-Rate-Limit-Requests-Left": str(left),
                          "X-Rate-Limit-Time-Reset-Ms": str(reset_ms), "X-Rate-Limit-Time-Window-Ms": str(window_ms)})


def test_filter_params_accepts_mappings_and_keywords():
    params = filter_params({"id:in": [1, 2, 3]}, inventory_level__min=5, is_visible=True, keyword=None)
    assert params == {"id:in": "1,2,3", "inventory_level:min": "5", "is_visible": "true"}


@pytest.mark.parametrize(("body", "message"), [
    ({"status": 404, "title": "Not here", "type": "x", "errors": {}}, "Not here"),
    ([{"status": 409, "message": "Out of stock"}], "Out of stock"),
    ({"error": "invalid_grant", "error_description": "Invalid code"}, "Invalid code"),
    ("plain text", "plain text"),
    (None, "fallback"),
])
def test_error_message_reads_v2_v3_and_oauth_bodies(body, message):
    assert _error_message(body, "fallback") == message


def test_backoff_is_jittered_and_capped():
    policy = RetryPolicy(base_delay=0.5, max_delay=2.0)
    delays = [policy.delay(n) for n in range(10) for _ in range(20)]
    assert all(0 <= d <= 2.0 for d in delays) and len(set(delays)) > 1


def test_product_keeps_raw_and_types_variants():
    product = Product.from_api({"id": 3, "name": "X", "inventory_level": 4, "unknown": 1,
                                "variants": [{"id": 9, "product_id": 3, "inventory_level": 4}]})
    assert product.variants[0].id == 9 and product.raw["unknown"] == 1 and product.inventory_level == 4


async def test_limiter_lets_one_probe_through_until_headers_arrive():
    limiter = RateLimiter()
    await limiter.acquire()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire(), timeout=0.05)
    await limiter.release(limit_headers(10, 9, 1000), 200)
    for _ in range(9):
        await limiter.acquire()
    assert limiter.left == 0 and limiter.in_flight == 9
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire(), timeout=0.05)


async def test_limiter_counts_requests_still_in_flight():
    limiter = RateLimiter()
    await limiter.acquire()
    await limiter.release(limit_headers(10, 9, 30_000), 200)
    for _ in range(4):
        await limiter.acquire()
    # The server saw one of the four; three are still out, so at most 8 - 3 = 5 remain for new requests.
    await limiter.release(limit_headers(10, 8, 29_000), 200)
    assert limiter.left == 5


async def test_limiter_trusts_the_reset_of_a_429():
    limiter = RateLimiter()
    await limiter.acquire()
    await limiter.release(limit_headers(10, 0, 120, 30_000), 429)
    assert limiter.left == 0
    assert limiter.window_end - time.monotonic() <= 0.12
    started = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - started >= 0.1 and limiter.left == 9


async def test_limiter_without_headers_is_unlimited():
    limiter = RateLimiter()
    await limiter.acquire()
    await limiter.release(httpx.Headers({}), 200)
    for _ in range(1000):
        await limiter.acquire()
    assert limiter.unlimited


def signed(**overrides):
    now = int(time.time())
    claims = {"aud": "client-1", "iss": "bc", "iat": now, "nbf": now - 5, "exp": now + 3600, "sub": "stores/abc",
              "user": {"id": 1, "email": "u@example.com"}, "owner": {"id": 2, "email": "o@example.com"},
              "url": "/", "channel_id": None, **overrides}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_jwt_good_expired_wrong_secret_wrong_audience_bad_subject():
    payload = verify_signed_payload_jwt(signed(), client_id="client-1", client_secret=SECRET)
    assert payload.store_hash == "abc" and payload.user["id"] == 1 and payload.owner["id"] == 2
    with pytest.raises(SignedPayloadError, match="expired"):
        verify_signed_payload_jwt(signed(exp=int(time.time()) - 10), client_id="client-1", client_secret=SECRET)
    with pytest.raises(SignedPayloadError, match="signature"):
        verify_signed_payload_jwt(signed(), client_id="client-1", client_secret=SECRET + "x")
    with pytest.raises(SignedPayloadError, match="audience"):
        verify_signed_payload_jwt(signed(aud="client-2"), client_id="client-1", client_secret=SECRET)
    with pytest.raises(SignedPayloadError, match="subject"):
        verify_signed_payload_jwt(signed(sub="accounts/xyz"), client_id="client-1", client_secret=SECRET)
    with pytest.raises(SignedPayloadError):
        verify_signed_payload_jwt(signed(nbf=int(time.time()) + 600), client_id="client-1", client_secret=SECRET)
