"""App authentication: the /oauth2/token code exchange, the install handshake and signed payloads."""

from __future__ import annotations

import json
import secrets
import time
import uuid
import warnings
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from jwt.warnings import InsecureKeyLengthWarning
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.bigcommerce.core import Sandbox
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import ApiError

DEFAULT_SCOPE = ("store_v2_products store_v2_orders store_inventory store_v2_content store_v2_information "
                 "store_content_checkout")
CODE_TTL_SECONDS = 600
JWT_LIFETIME_SECONDS = 24 * 3600
OWNER = {"id": 1, "username": "owner", "email": "owner@example.com"}


def mint_code(sb: Sandbox, store_hash: str, scope: str, user: dict[str, Any]) -> str:
    code = secrets.token_urlsafe(12)
    sb.db.execute("INSERT INTO oauth_codes (code, store_hash, client_id, scope, user_json, expires_at) "
                  "VALUES (?, ?, ?, ?, ?, ?)",
                  (code, store_hash, sb.config.client_id, scope, dumps(user), time.time() + CODE_TTL_SECONDS))
    return code


async def token_exchange(request: Request) -> Response:
    """POST /oauth2/token: JSON or form-encoded, as login.bigcommerce.com accepts both."""
    sb: Sandbox = request.app.state.sandbox
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = {}
    else:
        body = dict(await request.form())
    if not isinstance(body, dict):
        body = {}
    if body.get("client_id") != sb.config.client_id or body.get("client_secret") != sb.config.client_secret:
        return JSONResponse({"error": "invalid_client", "error_description": "Invalid client id or secret"},
                            status_code=401)
    if body.get("grant_type") != "authorization_code":
        return JSONResponse({"error": "unsupported_grant_type",
                             "error_description": "grant_type must be authorization_code"}, status_code=400)
    row = sb.db.one("SELECT * FROM oauth_codes WHERE code = ?", (body.get("code", ""),))
    context = body.get("context", "")
    if row is None or row["used"] or row["expires_at"] < time.time() or context != f"stores/{row['store_hash']}":
        return JSONResponse({"error": "invalid_grant", "error_description": "Invalid code"}, status_code=400)
    store = sb.store(row["store_hash"])
    token = "bc-" + secrets.token_hex(16)
    user = json.loads(row["user_json"])
    with sb.db.transaction():
        sb.db.execute("UPDATE oauth_codes SET used = 1 WHERE code = ?", (row["code"],))
        # A re-install replaces the app's previous token, as BigCommerce invalidates it.
        sb.db.execute("DELETE FROM tokens WHERE store_hash = ? AND client_id = ?", (row["store_hash"], row["client_id"]))
        sb.add_token(row["store_hash"], token, row["client_id"], row["scope"], user)
    return JSONResponse({"access_token": token, "scope": row["scope"], "user": user, "owner": OWNER,
                         "context": f"stores/{row['store_hash']}", "account_uuid": store["account_uuid"]})


async def install(sb: Sandbox, store_hash: str, *, app_url: str | None = None, scope: str = DEFAULT_SCOPE,
                  ) -> dict[str, Any]:
    """Run the real handshake: mint a code and GET {app}/bc/auth, during which the app exchanges it."""
    store = sb.store(store_hash)
    base = (app_url or sb.config.app_url).rstrip("/")
    code = mint_code(sb, store_hash, scope, {"id": OWNER["id"], "username": OWNER["username"],
                                             "email": OWNER["email"]})
    query = urlencode({"code": code, "scope": scope, "context": f"stores/{store_hash}",
                       "account_uuid": store["account_uuid"]})
    url = f"{base}/bc/auth?{query}"
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.get(url)
    except httpx.HTTPError as exc:
        raise ApiError(502, f"The app's /bc/auth could not be reached: {exc}") from exc
    used = sb.db.scalar("SELECT used FROM oauth_codes WHERE code = ?", (code,))
    return {"auth_url": url, "auth_status": response.status_code, "code_exchanged": bool(used),
            "installed": bool(used) and response.status_code < 400, "auth_body": response.text[:2000]}


def signed_payload(sb: Sandbox, store_hash: str, *, user_id: int = 1, email: str | None = None,
                   url: str = "/", lifetime: int = JWT_LIFETIME_SECONDS, secret: str | None = None,
                   audience: str | None = None, issued_at: int | None = None) -> str:
    """A signed_payload_jwt with BigCommerce's claims (HS256, client secret, aud = client id)."""
    now = int(time.time()) if issued_at is None else issued_at
    claims = {"aud": audience or sb.config.client_id, "iss": "bc", "iat": now, "nbf": now - 5,
              "exp": now - 5 + lifetime, "jti": str(uuid.uuid4()), "sub": f"stores/{store_hash}",
              "user": {"id": user_id, "email": email or f"user{user_id}@{store_hash}.example.com", "locale": "en-US"},
              "owner": {"id": OWNER["id"], "email": OWNER["email"]}, "url": url, "channel_id": None}
    with warnings.catch_warnings():
        # The dev client secret is short on purpose; real BigCommerce secrets are long enough.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret or sb.config.client_secret, algorithm="HS256")


async def uninstall(sb: Sandbox, store_hash: str, *, app_url: str | None = None) -> dict[str, Any]:
    """Uninstall the app: call /bc/uninstall, drop its token, hooks and auto-uninstall scripts."""
    sb.store(store_hash)
    base = (app_url or sb.config.app_url).rstrip("/")
    url = f"{base}/bc/uninstall?{urlencode({'signed_payload_jwt': signed_payload(sb, store_hash)})}"
    status = None
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            status = (await http.get(url)).status_code
    except httpx.HTTPError:
        status = None
    client_id = sb.config.client_id
    with sb.db.transaction():
        sb.emit(store_hash, "store/app/uninstalled", {"type": "store", "id": store_hash})
        sb.db.execute("DELETE FROM tokens WHERE store_hash = ? AND client_id = ?", (store_hash, client_id))
        sb.db.execute("DELETE FROM hooks WHERE store_hash = ? AND client_id = ?", (store_hash, client_id))
        sb.db.execute("DELETE FROM scripts WHERE store_hash = ? AND client_id = ? "
                      "AND json_extract(doc, '$.auto_uninstall') = 1", (store_hash, client_id))
    return {"uninstall_status": status}
