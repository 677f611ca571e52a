"""The storefront API's bytes: compact HTML-safe JSON, ETags, the shared error bodies and
the JSON of a product view, a store's public settings and a cart check (API.md "Storefront API")."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from backorder.storefront.v1 import storefront_pb2 as pb

from services.common.errors import DomainError
from services.gateway.errors import HTTP_STATUS_BY_CODE
from services.gateway.proto_json import stock_json


def json_bytes(value: Any) -> bytes:
    """Compact JSON safe to embed anywhere: <, > and & are escaped inside strings."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


NOT_FOUND_BODY = json_bytes({"error": {"code": "not_found", "message": "Not found.", "details": {}}})
RATE_LIMITED_BODY = json_bytes({"error": {"code": "rate_limited", "message": "Too many requests.", "details": {}}})
UNAVAILABLE_BODY = json_bytes({"error": {"code": "unavailable", "message": "Temporarily unavailable.",
                                         "details": {}}})


def error_bytes(error: DomainError) -> tuple[int, bytes]:
    if error.code == "not_found":
        return 404, NOT_FOUND_BODY
    if error.code in {"unavailable", "internal"}:
        return 503, UNAVAILABLE_BODY
    status = HTTP_STATUS_BY_CODE.get(error.code, 400)
    return status, json_bytes({"error": error.to_dict()})


def view_json(view: pb.ProductView) -> dict[str, Any]:
    return {
        "product_id": view.product_id,
        "assigned": view.assigned,
        "status": view.status,
        **stock_json(view),
        "messages": {
            "inventory": view.messages.inventory,
            "shipping": view.messages.shipping,
            "button_text": view.messages.button_text,
            "button_color": view.messages.button_color,
            "button_text_color": view.messages.button_text_color,
        },
    }


def public_settings_json(settings: pb.StorefrontSettings) -> dict[str, Any]:
    """What the script needs: theme and selectors. Texts for staff (order note) stay private."""
    selectors = settings.selectors
    return {
        "store_hash": settings.store_hash,
        "theme_id": settings.theme_id,
        "theme_version": settings.theme_version,
        "custom_theme": settings.custom_theme,
        "selectors": {f.name: getattr(selectors, f.name) for f in selectors.DESCRIPTOR.fields},
    }


def cart_json(reply: pb.CheckCartResponse) -> dict[str, Any]:
    return {
        "lines": [{"product_id": r.product_id, "quantity": r.quantity, "assigned": r.assigned,
                   "backordered_qty": r.backordered_qty, "over_threshold": r.over_threshold, "alert": r.alert,
                   "cart_message": r.cart_message} for r in reply.lines],
        "mixed_cart_alert": reply.mixed_cart_alert,
        "over_threshold": reply.over_threshold,
        "over_threshold_alert": reply.over_threshold_alert,
        "cart_message": reply.cart_message,
        "backordered_qty": reply.backordered_qty,
        "added_qty": reply.added_qty,
    }

