"""BigCommerce's webhook contract, as the gateway receives it and catalog_sync consumes it.

- The app registers each hook with the custom header `X-Backorder-Hook-Token`, whose value
  is the per-store secret HMAC-SHA256(BACKORDER_WEBHOOK_SECRET_KEY, store_hash): derived,
  not stored, so the gateway checks a delivery without a lookup.
- A delivery is a JSON object `{scope, hash, producer: "stores/<hash>", created_at, data}`
  of at most MAX_WEBHOOK_BYTES; `parse_webhook` validates it.
- Accepted deliveries travel on JetStream as `bc.webhooks.<store_hash>.<scope with dots>`.

Pure: no I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.common.errors import ValidationFailed, field_error
from services.common.stores import is_store_hash

HOOK_TOKEN_HEADER = "X-Backorder-Hook-Token"
# The key of the embedded default (BACKORDER_WEBHOOK_SECRET_KEY unset); production sets its own.
DEV_WEBHOOK_SECRET_KEY = "dev-webhook-secret-key-change-me"
MAX_WEBHOOK_BYTES = 64 * 1024

# Concrete scopes only: wildcards and dots would break the NATS subject.
SCOPE_PATTERN = re.compile(r"^store(/[A-Za-z0-9_]{1,64}){1,6}$")
HASH_PATTERN = re.compile(r"^[A-Za-z0-9]{8,128}$")


def webhook_secret(key: str, store_hash: str) -> str:
    """The per-store hook secret: HMAC-SHA256(key, store_hash), hex.

    Derived rather than stored so the gateway can check a delivery statelessly; rotating
    the key means re-installing (or re-registering) the hooks with the new secret.
    """
    return hmac.new(key.encode(), store_hash.encode(), hashlib.sha256).hexdigest()


def webhook_token_matches(key: str, store_hash: str, token: str | None) -> bool:
    """Constant-time check of a delivery's X-Backorder-Hook-Token."""
    expected = webhook_secret(key, store_hash)
    return hmac.compare_digest(expected.encode(), (token or "").encode())


def webhook_subject(store_hash: str, scope: str) -> str:
    """bc.webhooks.<store_hash>.<scope with / as .>, e.g. bc.webhooks.abc.store.order.created."""
    return f"bc.webhooks.{store_hash}.{scope.replace('/', '.')}"


@dataclass(frozen=True)
class Webhook:
    """A validated BigCommerce webhook delivery."""

    store_hash: str
    scope: str
    hash: str
    created_at: int
    data: Mapping[str, Any]

    @property
    def created(self) -> datetime:
        return datetime.fromtimestamp(self.created_at, UTC)


def parse_webhook(body: Any) -> Webhook:
    """Validate a decoded delivery body; raises ValidationFailed naming the field."""
    errors: list[dict[str, Any]] = []
    if not isinstance(body, dict):
        raise ValidationFailed("webhook payload must be a JSON object", errors=[field_error("body", "not an object")])
    scope = body.get("scope")
    if not isinstance(scope, str) or not SCOPE_PATTERN.match(scope):
        errors.append(field_error("scope", "must be a concrete scope like store/order/created"))
    digest = body.get("hash")
    if not isinstance(digest, str) or not HASH_PATTERN.match(digest):
        errors.append(field_error("hash", "must be the payload hash"))
    producer = body.get("producer")
    store_hash = ""
    if isinstance(producer, str) and producer.startswith("stores/") and is_store_hash(producer[7:]):
        store_hash = producer[7:]
    else:
        errors.append(field_error("producer", "must be stores/<store_hash>"))
    created_at = body.get("created_at")
    if isinstance(created_at, bool) or not isinstance(created_at, int) or created_at < 0:
        errors.append(field_error("created_at", "must be unix seconds"))
    data = body.get("data")
    if not isinstance(data, dict):
        errors.append(field_error("data", "must be an object"))
    if errors:
        raise ValidationFailed("invalid webhook payload", errors=errors)
    assert isinstance(scope, str) and isinstance(digest, str) and isinstance(created_at, int) and isinstance(data, dict)
    return Webhook(store_hash, scope, digest, created_at, data)
