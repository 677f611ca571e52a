"""Who is calling the admin API and UI, for which one store, and CSRF.

- Session: `/bc/load` verifies BigCommerce's signed_payload_jwt and sets `backorder_session`,
  an HMAC-SHA256-signed, expiring value (store hash, user, CSRF token) with
  `HttpOnly; Secure; SameSite=None; Partitioned`: the admin UI lives in a third-party iframe
  of the control panel, so the cookie must be cross-site (SameSite=None requires Secure) and
  partitioned (CHIPS) to survive Chrome's third-party cookie phase-out. Browsers send Secure
  cookies over plain http only to localhost/127.0.0.1 — which is what the embedded mode and
  the browser tests use.
- CSRF (double submit, API.md): `backorder_csrf` cookie (readable, Secure, SameSite=None)
  whose value is also in the pages' `<meta name="csrf-token">`; every session mutation
  sends it back as `X-CSRF-Token` (or the `csrf_token` form field). It must equal both the
  cookie and the token bound inside the signed session, so a planted cookie is useless.
- Bearer: `Authorization: Bearer <store API token>` verified by inventory's
  TokenService.VerifyApiToken, cached briefly (a revoked token stops working within
  TOKEN_CACHE_TTL_S; revoking through this gateway drops it at once).

Every principal carries exactly one store hash; handlers take the store from it, never
from the request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from services.common.bigcommerce import SignedPayload, SignedPayloadError, verify_signed_payload_jwt
from services.common.errors import DomainError, Forbidden, Unauthenticated
from services.gateway.request_log import note_store
from services.gateway.settings import GatewaySettings

SESSION_COOKIE = "backorder_session"
CSRF_COOKIE = "backorder_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "csrf_token"
SESSION_TTL_S = 12 * 3600
TOKEN_CACHE_TTL_S = 30.0
TOKEN_NEGATIVE_CACHE_TTL_S = 5.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    """The caller: one store, and how it proved it."""

    store_hash: str
    kind: str  # "session" | "token"
    user_id: str = ""
    user_email: str = ""
    csrf: str = ""
    token_id: str = ""
    issued_at: float = 0.0

    @property
    def actor(self) -> str:
        if self.kind == "token":
            return f"api-token:{self.token_id}"
        return self.user_email or f"user:{self.user_id}"


# ---------------------------------------------------------------- signed values

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: dict[str, Any], secret: str) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(value: str, secret: str) -> dict[str, Any] | None:
    """The payload when the signature is right, else None (constant-time comparison)."""
    body, _, mac = value.partition(".")
    if not body or not mac:
        return None
    # Compare the canonical text form: base64 tolerates variants of its last character.
    expected = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")):
        return None
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    return payload if isinstance(payload, dict) else None


def new_session(store_hash: str, user_id: str, user_email: str, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {"s": store_hash, "u": str(user_id), "e": user_email, "c": secrets.token_urlsafe(24),
            "iat": int(now), "exp": int(now + SESSION_TTL_S)}


def principal_from_session(payload: dict[str, Any], now: float | None = None) -> Principal | None:
    now = time.time() if now is None else now
    try:
        if float(payload["exp"]) < now or not payload["s"]:
            return None
        return Principal(store_hash=str(payload["s"]), kind="session", user_id=str(payload.get("u", "")),
                         user_email=str(payload.get("e", "")), csrf=str(payload["c"]),
                         issued_at=float(payload.get("iat", 0)))
    except (KeyError, TypeError, ValueError):
        return None


def cookie_header(name: str, value: str, *, max_age: int, httponly: bool) -> str:
    """A Set-Cookie value for the iframe: Secure; SameSite=None; Partitioned (CHIPS).

    Written by hand because the standard library only knows `Partitioned` from Python 3.14.
    """
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "Secure", "SameSite=None", "Partitioned"]
    if httponly:
        parts.append("HttpOnly")
    return "; ".join(parts)


def set_session_cookies(response: Response, session_value: str, csrf: str) -> None:
    response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, session_value, max_age=SESSION_TTL_S,
                                                        httponly=True))
    response.headers.append("set-cookie", cookie_header(CSRF_COOKIE, csrf, max_age=SESSION_TTL_S, httponly=False))


def clear_session_cookies(response: Response) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.headers.append("set-cookie", cookie_header(name, "", max_age=0, httponly=name == SESSION_COOKIE))


# ---------------------------------------------------------------- removed users

class RemovedUsers:
    """Users removed from a store (/bc/remove_user): their older sessions stop working.

    In memory: sessions are short-lived and the control panel re-signs on every load.
    """

    def __init__(self) -> None:
        self._removed_at: dict[tuple[str, str], float] = {}

    def remove(self, store_hash: str, user_id: str, at: float | None = None) -> None:
        self._removed_at[(store_hash, str(user_id))] = time.time() if at is None else at

    def revoked(self, principal: Principal) -> bool:
        at = self._removed_at.get((principal.store_hash, principal.user_id))
        return at is not None and principal.issued_at <= at


# ---------------------------------------------------------------- bearer tokens

class TokenCache:
    """Verified API tokens by SHA-256 of the token, with a short TTL (and a shorter one for misses)."""

    def __init__(self, verify: Callable[[str], Awaitable[tuple[str, str] | None]], *,
                 ttl_s: float = TOKEN_CACHE_TTL_S, negative_ttl_s: float = TOKEN_NEGATIVE_CACHE_TTL_S,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000) -> None:
        self._verify = verify
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, tuple[str, str] | None]] = {}

    async def lookup(self, token: str) -> tuple[str, str] | None:
        """(store_hash, token_id) or None for an unknown/revoked token."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        result = await self._verify(token)
        if len(self._entries) >= self._max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
        self._entries[key] = (now + (self._ttl_s if result else self._negative_ttl_s), result)
        return result

    def forget_token_id(self, token_id: str) -> None:
        self._entries = {k: v for k, v in self._entries.items() if not (v[1] and v[1][1] == token_id)}


def grpc_token_verifier(tokens_stub_getter: Callable[[], Any]) -> Callable[[str], Awaitable[tuple[str, str] | None]]:
    from backorder.inventory.v1 import token_pb2

    async def verify(token: str) -> tuple[str, str] | None:
        try:
            reply = await tokens_stub_getter().VerifyApiToken(token_pb2.VerifyApiTokenRequest(token=token))
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND,
                              grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED):
                return None
            raise
        return (reply.store_hash, reply.token_id) if reply.store_hash else None

    return verify


# ---------------------------------------------------------------- request -> principal

def _state(request: Request) -> Any:
    return request.app.state


def session_principal(request: Request) -> Principal | None:
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    payload = unsign(value, secret_text(_state(request).settings.session_secret))
    principal = principal_from_session(payload) if payload else None
    removed: RemovedUsers | None = getattr(_state(request), "removed_users", None)
    if principal is None or (removed is not None and removed.revoked(principal)):
        return None
    note_store(request.scope, principal.store_hash)
    return principal


async def authenticate(request: Request) -> Principal:
    """The caller's principal, or Unauthenticated. Bearer wins over a session cookie."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("use 'Authorization: Bearer <store API token>'")
        found = await _state(request).token_cache.lookup(token.strip())
        if found is None:
            raise Unauthenticated("the API token is unknown or revoked")
        note_store(request.scope, found[0])
        return Principal(store_hash=found[0], kind="token", token_id=found[1])
    principal = session_principal(request)
    if principal is None:
        raise Unauthenticated("sign in again: open the app from the BigCommerce control panel")
    return principal


def check_csrf(request: Request, principal: Principal, form_value: str | None = None) -> None:
    """Session mutations must echo the CSRF token (header or form field) = cookie = session's."""
    if principal.kind != "session" or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER) or form_value or ""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (sent and cookie and hmac.compare_digest(sent, cookie) and hmac.compare_digest(sent, principal.csrf)):
        raise DomainError("the page is out of date; reload it and try again", code="csrf_failed",
                          details={"header": "X-CSRF-Token", "cookie": CSRF_COOKIE})


def require_session(principal: Principal) -> None:
    if principal.kind != "session":
        raise Forbidden("this action needs the merchant's session (open the app in BigCommerce)")


def verify_signed_payload(token: str, settings: GatewaySettings, *, leeway_s: int) -> SignedPayload:
    """BigCommerce's signed_payload_jwt (HS256 with the app's client secret, aud = client id,
    exp, sub = stores/<hash>); raises SignedPayloadError when it is missing or not valid."""
    if not token:
        raise SignedPayloadError("signed_payload_jwt is missing")
    return verify_signed_payload_jwt(token, client_id=settings.bc_client_id,
                                     client_secret=secret_text(settings.bc_client_secret), leeway=leeway_s)


def secret_text(secret: Any) -> str:
    return secret.reveal() if hasattr(secret, "reveal") else str(secret)
