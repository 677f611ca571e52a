"""Webhooks v3 (hooks CRUD) and the delivery worker.

Deliveries live in the sandbox DB, so a restart loses nothing. The worker POSTs due deliveries
concurrently (so they may arrive out of order) with the hook's custom headers; any non-2xx or
network error schedules the next retry on BigCommerce's schedule times the store's time scale,
and after the last retry fails the hook is deactivated.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import random
import re
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from sandbox.bigcommerce.core import Sandbox
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import ApiError, unprocessable

log = logging.getLogger("sandbox.bigcommerce.webhooks")

RETRY_SCHEDULE_SECONDS = (60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400, 86400)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
SCOPE_PATTERN = re.compile(r"^store/[A-Za-z0-9_*{}]+(/[A-Za-z0-9_*{}]+)*$")


def _check_destination(destination: Any) -> None:
    if not isinstance(destination, str):
        raise unprocessable("JSON data is missing or invalid", {"destination": "destination is required"})
    parts = urlsplit(destination)
    secure = parts.scheme == "https" and (parts.port in (None, 443))
    # Deviation: the sandbox also accepts plain http on loopback so local apps and tests can receive.
    loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if not (secure or loopback):
        raise unprocessable("JSON data is missing or invalid",
                            {"destination": "must be an https URL on port 443 (or http on loopback in the sandbox)"})


def _check_headers(headers: Any) -> None:
    if headers is None:
        return
    if not isinstance(headers, dict) or len(headers) > 64 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 8192 for k, v in headers.items()):
        raise unprocessable("JSON data is missing or invalid",
                            {"headers": "must map at most 64 header names (<= 64 B) to string values (<= 8 KB)"})


def create_hook(sb: Sandbox, store_hash: str, client_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
    scope = body.get("scope")
    if not isinstance(scope, str) or not SCOPE_PATTERN.match(scope):
        raise unprocessable("JSON data is missing or invalid", {"scope": "must be a webhook scope like store/order/*"})
    _check_destination(body.get("destination"))
    _check_headers(body.get("headers"))
    same_scope = [json.loads(r[0]) for r in sb.db.all(
        "SELECT doc FROM hooks WHERE store_hash = ? AND client_id = ? AND json_extract(doc, '$.scope') = ?",
        (store_hash, client_id, scope))]
    if any(h["destination"] == body["destination"] for h in same_scope):
        raise unprocessable("Webhook already exists for this scope and destination",
                            {"destination": "a hook with this scope and destination exists"})
    if len(same_scope) >= 10:
        raise unprocessable("Too many webhooks for this scope", {"scope": "at most 10 hooks per scope"})
    now = int(time.time())
    with sb.db.transaction():
        hook_id = sb.db.insert("INSERT INTO hooks (store_hash, client_id, doc) VALUES (?, ?, '{}')",
                               (store_hash, client_id))
        hook = {"id": hook_id, "client_id": client_id, "store_hash": store_hash, "scope": scope,
                "destination": body["destination"], "headers": body.get("headers") or {},
                "is_active": bool(body.get("is_active", True)), "created_at": now, "updated_at": now}
        sb.db.execute("UPDATE hooks SET doc = ? WHERE id = ?", (dumps(hook), hook_id))
    return hook


def get_hook(sb: Sandbox, store_hash: str, client_id: str, hook_id: int) -> dict[str, Any]:
    return sb.db.required_doc("SELECT doc FROM hooks WHERE store_hash = ? AND client_id = ? AND id = ?",
                              (store_hash, client_id, hook_id), missing=f"Webhook {hook_id} was not found")


def list_hooks(sb: Sandbox, store_hash: str, client_id: str, params: dict[str, str]) -> list[dict[str, Any]]:
    hooks = [json.loads(r[0]) for r in sb.db.all(
        "SELECT doc FROM hooks WHERE store_hash = ? AND client_id = ? ORDER BY id", (store_hash, client_id))]
    if "is_active" in params:
        wanted = params["is_active"].lower() in ("1", "true")
        hooks = [h for h in hooks if h["is_active"] == wanted]
    for key in ("scope", "destination"):
        if key in params:
            hooks = [h for h in hooks if h[key] == params[key]]
    return hooks


def update_hook(sb: Sandbox, store_hash: str, client_id: str, hook_id: int, body: Any) -> dict[str, Any]:
    hook = get_hook(sb, store_hash, client_id, hook_id)
    if not isinstance(body, dict):
        raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
    if "destination" in body:
        _check_destination(body["destination"])
    if "headers" in body:
        _check_headers(body["headers"])
    if "scope" in body and (not isinstance(body["scope"], str) or not SCOPE_PATTERN.match(body["scope"])):
        raise unprocessable("JSON data is missing or invalid", {"scope": "must be a webhook scope"})
    for key in ("scope", "destination", "headers", "is_active"):
        if key in body:
            hook[key] = bool(body[key]) if key == "is_active" else body[key]
    hook["updated_at"] = int(time.time())
    sb.db.execute("UPDATE hooks SET doc = ? WHERE id = ?", (dumps(hook), hook_id))
    return hook


def delete_hook(sb: Sandbox, store_hash: str, client_id: str, hook_id: int) -> dict[str, Any]:
    hook = get_hook(sb, store_hash, client_id, hook_id)
    sb.db.execute("DELETE FROM hooks WHERE id = ?", (hook_id,))
    return hook


# ----- deliveries -----
def delivery_view(sb: Sandbox, row: Any) -> dict[str, Any]:
    attempts = [{"at": a["at"], "status_code": a["status_code"], "error": a["error"]} for a in sb.db.all(
        "SELECT at, status_code, error FROM delivery_attempts WHERE delivery_id = ? ORDER BY id", (row["id"],))]
    return {"id": row["id"], "hook_id": row["hook_id"], "scope": row["scope"], "destination": row["destination"],
            "status": row["status"], "attempt_count": row["attempts"], "attempts": attempts,
            "next_attempt_at": row["next_attempt_at"], "hash": row["hash"], "created_at": row["created_at"],
            "replay_of": row["replay_of"], "payload": json.loads(row["body"])}


def replay_delivery(sb: Sandbox, delivery_id: int) -> dict[str, Any]:
    row = sb.db.one("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
    if row is None:
        raise ApiError(404, f"Delivery {delivery_id} was not found")
    now = time.time()
    new_id = sb.db.insert(
        "INSERT INTO deliveries (store_hash, hook_id, scope, destination, headers, body, hash, status, attempts, "
        "next_attempt_at, created_at, replay_of) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        (row["store_hash"], row["hook_id"], row["scope"], row["destination"], row["headers"], row["body"],
         row["hash"], now, now, row["id"]))
    sb.delivery_wakeup.set()
    return delivery_view(sb, sb.db.row("SELECT * FROM deliveries WHERE id = ?", (new_id,)))


def standard_webhook_headers(client_secret: str, row: dict[str, Any], timestamp: int) -> dict[str, str]:
    """Standard Webhooks signature headers, as BigCommerce's HTTPS-webhooks guide describes.

    The key is the app's client secret (libraries take it as base64(client_secret)); the message id is
    the original delivery's id, so retries and replays share it. The header names follow the Standard
    Webhooks spec, which the guide does not spell out.
    """
    message_id = f"msg_{row['replay_of'] or row['id']}"
    signed = f"{message_id}.{timestamp}.{row['body']}".encode()
    signature = base64.b64encode(hmac.new(client_secret.encode(), signed, hashlib.sha256).digest()).decode()
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{signature}"}


class DeliveryWorker:
    """Background task that drains the persisted delivery queue."""

    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.http = httpx.AsyncClient(timeout=10.0)
        self.in_flight: set[int] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        sb = self.sb
        while True:
            sb.delivery_wakeup.clear()
            now = time.time()
            due = [r for r in sb.db.all(
                "SELECT * FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT 200",
                (now,)) if r["id"] not in self.in_flight]
            random.shuffle(due)
            for row in due:
                self.in_flight.add(row["id"])
                task = asyncio.create_task(self._attempt(dict(row)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            upcoming = sb.db.scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending' "
                                    f"AND id NOT IN ({','.join(str(i) for i in self.in_flight) or 0})")
            timeout = 1.0 if upcoming is None else min(max(upcoming - time.time(), 0.001), 1.0)
            try:
                await asyncio.wait_for(sb.delivery_wakeup.wait(), timeout)
            except TimeoutError:
                pass

    async def _attempt(self, row: dict[str, Any]) -> None:
        sb = self.sb
        status_code: int | None = None
        error: str | None = None
        try:
            runtime = sb.runtime_for(row["store_hash"])
            if runtime.delivery_failures.count > 0:
                runtime.delivery_failures.count -= 1
                status_code = runtime.delivery_failures.status
                error = "failure injected by the sandbox"
            else:
                headers = {"Content-Type": "application/json", "User-Agent": "BigCommerce-Sandbox-Webhooks",
                           **standard_webhook_headers(sb.config.client_secret, row, int(time.time())),
                           **json.loads(row["headers"])}
                response = await self.http.post(row["destination"], content=row["body"].encode(), headers=headers)
                status_code = response.status_code
        except Exception as exc:  # noqa: BLE001 - any failure to deliver is a failed attempt, retried later
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self.in_flight.discard(row["id"])
        self._record(row, status_code, error)

    def _record(self, row: dict[str, Any], status_code: int | None, error: str | None) -> None:
        sb = self.sb
        now = time.time()
        attempts = row["attempts"] + 1
        ok = status_code is not None and 200 <= status_code < 300 and error is None
        with sb.db.transaction():
            sb.db.execute("INSERT INTO delivery_attempts (delivery_id, at, status_code, error) VALUES (?, ?, ?, ?)",
                          (row["id"], now, status_code, error))
            if ok:
                sb.db.execute("UPDATE deliveries SET status = 'delivered', attempts = ?, next_attempt_at = NULL "
                              "WHERE id = ?", (attempts, row["id"]))
            elif attempts <= len(RETRY_SCHEDULE_SECONDS):
                delay = RETRY_SCHEDULE_SECONDS[attempts - 1] * sb.time_scale(row["store_hash"])
                sb.db.execute("UPDATE deliveries SET attempts = ?, next_attempt_at = ? WHERE id = ?",
                              (attempts, now + delay, row["id"]))
            else:
                sb.db.execute("UPDATE deliveries SET status = 'failed', attempts = ?, next_attempt_at = NULL "
                              "WHERE id = ?", (attempts, row["id"]))
                hook = sb.db.doc("SELECT doc FROM hooks WHERE id = ?", (row["hook_id"],))
                if hook is not None:
                    hook["is_active"] = False
                    hook["updated_at"] = int(now)
                    sb.db.execute("UPDATE hooks SET doc = ? WHERE id = ?", (dumps(hook), hook["id"]))
                log.warning("webhook %s deactivated after %s failed attempts", row["hook_id"], attempts)
        sb.delivery_wakeup.set()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await self.http.aclose()
