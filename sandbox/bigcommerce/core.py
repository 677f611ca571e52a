"""The sandbox's shared state: database, settings, per-store records and the event outlet."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request

from sandbox.bigcommerce.config import SandboxConfig
from sandbox.bigcommerce.db import Database, dumps
from sandbox.bigcommerce.errors import ApiError

DEFAULT_QUOTA = 150
DEFAULT_WINDOW_MS = 30_000
OWNER_CLIENT_ID = "store-owner"

DEFAULT_INVENTORY_SETTINGS: dict[str, Any] = {
    "product_out_of_stock_behavior": "do_nothing",
    "option_out_of_stock_behavior": "do_nothing",
    "update_stock_behavior": "order_placed",
    "edit_order_stock_adjustment": True,
    "refund_order_stock_adjustment": True,
    "stock_level_display": "show",
    "default_out_of_stock_message": "Out of stock",
    "show_out_of_stock_message": True,
    "hide_in_product_filtering": False,
    "show_pre_order_stock_levels": False,
    "show_backorder_availability_prompt": False,
    "backorder_availability_prompt": "Available for backorder",
    "show_backorder_message": False,
    "show_quantity_on_backorder": False,
    "show_quantity_on_hand": False,
}


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso_now() -> str:
    return utc_now().isoformat()


def rfc2822_now() -> str:
    return format_datetime(utc_now())


def money(value: float) -> str:
    return f"{value:.4f}"


@dataclass
class RateWindow:
    """A fixed window that starts with the first request after the previous one ended."""

    started: float = 0.0
    used: int = 0


@dataclass
class Failures:
    """Injected failures: the next `count` calls answer `status` instead of being served."""

    count: int = 0
    status: int = 500
    reset_ms: int = 1000


@dataclass
class StoreRuntime:
    window: RateWindow = field(default_factory=RateWindow)
    api_failures: Failures = field(default_factory=Failures)
    delivery_failures: Failures = field(default_factory=Failures)
    requests_served: int = 0
    requests_throttled: int = 0
    requests_failed_on_purpose: int = 0
    max_used_in_window: int = 0


class Sandbox:
    @staticmethod
    def of(request: Request) -> Sandbox:
        """The sandbox an app built by `create_app` serves (kept in `app.state`)."""
        sandbox = request.app.state.sandbox
        if not isinstance(sandbox, Sandbox):
            raise TypeError("the app has no sandbox in app.state")
        return sandbox

    def __init__(self, config: SandboxConfig, db: Database):
        self.config = config
        self.db = db
        self.runtime: dict[str, StoreRuntime] = {}
        self.delivery_wakeup = asyncio.Event()
        # Loopback receiver used by tests as a webhook destination (see README, /_sandbox/inbox).
        self.inboxes: dict[str, dict[str, Any]] = {}
        # Caches for unfiltered product pages, valid while a store's set of products is unchanged.
        self.product_set_version: dict[str, int] = {}
        self.product_counts: dict[tuple[str, int], int] = {}
        self.page_marks: dict[tuple[str, int, int, int], int] = {}

    def products_changed(self, store_hash: str) -> None:
        """Invalidate the page caches: call before products are added to or removed from a store."""
        self.product_set_version[store_hash] = self.product_set_version.get(store_hash, 0) + 1

    # ----- stores and tokens -----
    def store(self, store_hash: str) -> dict[str, Any]:
        row = self.db.one("SELECT * FROM stores WHERE hash = ?", (store_hash,))
        if row is None:
            raise ApiError(404, f"Store {store_hash} was not found")
        record = dict(row)
        record["inventory_settings"] = json.loads(record["inventory_settings"])
        return record

    def store_exists(self, store_hash: str) -> bool:
        return self.db.one("SELECT 1 FROM stores WHERE hash = ?", (store_hash,)) is not None

    def runtime_for(self, store_hash: str) -> StoreRuntime:
        return self.runtime.setdefault(store_hash, StoreRuntime())

    def create_store(self, store_hash: str, *, token: str | None = None, timezone: str = "America/New_York",
                     name: str | None = None) -> dict[str, Any]:
        if self.store_exists(store_hash):
            raise ApiError(409, f"Store {store_hash} already exists")
        count = self.db.scalar("SELECT COUNT(*) FROM stores")
        token = token or "tok-" + secrets.token_hex(16)
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO stores (hash, store_id, name, timezone, quota, window_ms, inventory_settings, "
                "account_uuid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (store_hash, str(1_000_001 + count), name or f"Sandbox store {store_hash}", timezone,
                 DEFAULT_QUOTA, DEFAULT_WINDOW_MS, dumps(DEFAULT_INVENTORY_SETTINGS), str(uuid.uuid4()), iso_now()),
            )
            self.add_token(store_hash, token, OWNER_CLIENT_ID, "store_owner",
                           {"id": 1, "username": "owner", "email": f"owner@{store_hash}.example.com"})
        return {"store_hash": store_hash, "access_token": token, "store_id": str(1_000_001 + count)}

    def add_token(self, store_hash: str, token: str, client_id: str, scope: str, user: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO tokens (token, store_hash, client_id, scope, user_json, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)", (token, store_hash, client_id, scope, dumps(user), iso_now()))

    def token_client(self, store_hash: str, token: str | None) -> str | None:
        """The API client id behind a token for this store, or None when it is not valid here."""
        if not token:
            return None
        row = self.db.one("SELECT client_id FROM tokens WHERE token = ? AND store_hash = ?", (token, store_hash))
        return None if row is None else row[0]

    def update_store(self, store_hash: str, **values: Any) -> None:
        self.store(store_hash)
        for column, value in values.items():
            if column == "inventory_settings":
                value = dumps(value)
            self.db.execute(f"UPDATE stores SET {column} = ? WHERE hash = ?", (value, store_hash))

    def time_scale(self, store_hash: str) -> float:
        row = self.db.one("SELECT webhook_time_scale FROM stores WHERE hash = ?", (store_hash,))
        if row is not None and row[0] is not None:
            return float(row[0])
        return self.config.webhook_time_scale

    # ----- webhooks: the outlet every state change goes through -----
    def emit(self, store_hash: str, scope: str, data: dict[str, Any]) -> int:
        """Queue one delivery per active hook of this store matching `scope`; returns how many.

        Rows are written in the caller's transaction, so an event exists exactly when its change does.
        """
        store = self.db.one("SELECT store_id FROM stores WHERE hash = ?", (store_hash,))
        if store is None:
            return 0
        queued = 0
        now = time.time()
        for row in self.db.all("SELECT id, doc FROM hooks WHERE store_hash = ?", (store_hash,)):
            hook = json.loads(row["doc"])
            if not hook["is_active"] or not scope_matches(hook["scope"], scope):
                continue
            body = webhook_body(scope, store["store_id"], store_hash, data, int(now))
            self.db.execute(
                "INSERT INTO deliveries (store_hash, hook_id, scope, destination, headers, body, hash, status, "
                "attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                (store_hash, row["id"], scope, hook["destination"], dumps(hook.get("headers") or {}),
                 body, json.loads(body)["hash"], now, now),
            )
            queued += 1
        if queued:
            self.delivery_wakeup.set()
        return queued


def scope_matches(hook_scope: str, event_scope: str) -> bool:
    if hook_scope == event_scope:
        return True
    hook_parts, event_parts = hook_scope.split("/"), event_scope.split("/")
    if hook_parts[-1] == "*" and len(event_parts) >= len(hook_parts) - 1:
        hook_parts = hook_parts[:-1]
        event_parts = event_parts[: len(hook_parts)]
        if len(event_parts) < len(hook_parts) or event_scope == hook_scope[:-2]:
            return False
    elif len(hook_parts) != len(event_parts):
        return False
    return all(h == "*" or h == e for h, e in zip(hook_parts, event_parts, strict=True))


def webhook_body(scope: str, store_id: str, store_hash: str, data: dict[str, Any], created_at: int) -> str:
    """The exact bytes a delivery POSTs; `hash` is the SHA-1 of the payload without it."""
    import hashlib

    unsigned = {"scope": scope, "store_id": store_id, "data": data, "created_at": created_at,
                "producer": f"stores/{store_hash}"}
    digest = hashlib.sha1(dumps(unsigned).encode()).hexdigest()
    return dumps({"scope": scope, "store_id": store_id, "data": data, "hash": digest, "created_at": created_at,
                  "producer": f"stores/{store_hash}"})
