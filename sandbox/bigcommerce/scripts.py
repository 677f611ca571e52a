"""Scripts API v3: an app sees and edits only its own scripts (at most 10)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from sandbox.bigcommerce.core import Sandbox, iso_now
from sandbox.bigcommerce.db import dumps
from sandbox.bigcommerce.errors import unprocessable

ENUMS = {
    "kind": ("src", "script_tag"),
    "location": ("head", "footer"),
    "visibility": ("storefront", "all_pages", "checkout", "order_confirmation"),
    "consent_category": ("essential", "functional", "analytics", "targeting", "unknown"),
    "load_method": ("default", "async", "defer"),
}
SCRIPT_TAG = re.compile(r"<script\b", re.IGNORECASE)


def _validated(body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    doc = dict(existing or {
        "name": "", "description": "", "html": "", "src": "", "auto_uninstall": True, "load_method": "default",
        "location": "footer", "visibility": "storefront", "kind": "src", "consent_category": "unknown",
        "enabled": True, "channel_id": 1, "integrity_hashes": []})
    for key in ("name", "description", "html", "src", "auto_uninstall", "load_method", "location", "visibility",
                "kind", "consent_category", "enabled", "channel_id", "integrity_hashes"):
        if key in body:
            doc[key] = body[key]
    errors: dict[str, str] = {}
    for key, allowed in ENUMS.items():
        if doc[key] not in allowed:
            errors[key] = f"{key} must be one of {', '.join(allowed)}"
    if not isinstance(doc["name"], str) or not doc["name"]:
        errors["name"] = "name is required"
    if doc["kind"] == "src" and not doc["src"]:
        errors["src"] = "src is required when kind is src"
    if doc["kind"] == "script_tag":
        html = doc["html"] or ""
        if len(SCRIPT_TAG.findall(html)) != 1 or len(html) > 65536:
            errors["html"] = "html must contain exactly one <script> tag and at most 65536 characters"
        if doc["load_method"] != "default":
            errors["load_method"] = "load_method must be default when kind is script_tag"
    if not isinstance(doc["integrity_hashes"], list) or len(doc["integrity_hashes"]) > 5:
        errors["integrity_hashes"] = "at most 5 integrity hashes"
    if errors:
        raise unprocessable("JSON data is missing or invalid", errors)
    return doc


def create_script(sb: Sandbox, store_hash: str, client_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
    count = sb.db.scalar("SELECT COUNT(*) FROM scripts WHERE store_hash = ? AND client_id = ?",
                      (store_hash, client_id))
    if count >= 10:
        raise unprocessable("An app may register at most 10 scripts", {"scripts": "limit of 10 reached"})
    now = iso_now()
    doc = {"uuid": str(uuid.uuid4()), **_validated(body, None), "date_created": now, "date_modified": now,
           "api_client_id": client_id}
    sb.db.execute("INSERT INTO scripts (uuid, store_hash, client_id, doc) VALUES (?, ?, ?, ?)",
                  (doc["uuid"], store_hash, client_id, dumps(doc)))
    return doc


def get_script(sb: Sandbox, store_hash: str, client_id: str, script_uuid: str) -> dict[str, Any]:
    return sb.db.required_doc("SELECT doc FROM scripts WHERE store_hash = ? AND client_id = ? AND uuid = ?",
                              (store_hash, client_id, script_uuid), missing=f"Script {script_uuid} was not found")


def list_scripts(sb: Sandbox, store_hash: str, client_id: str | None = None) -> list[dict[str, Any]]:
    if client_id is None:
        rows = sb.db.all("SELECT doc FROM scripts WHERE store_hash = ? ORDER BY seq", (store_hash,))
    else:
        rows = sb.db.all("SELECT doc FROM scripts WHERE store_hash = ? AND client_id = ? ORDER BY seq",
                         (store_hash, client_id))
    return [json.loads(r[0]) for r in rows]


def update_script(sb: Sandbox, store_hash: str, client_id: str, script_uuid: str, body: Any) -> dict[str, Any]:
    existing = get_script(sb, store_hash, client_id, script_uuid)
    if not isinstance(body, dict):
        raise unprocessable("JSON data is missing or invalid", {"body": "must be an object"})
    doc = {**existing, **_validated(body, existing), "date_modified": iso_now()}
    sb.db.execute("UPDATE scripts SET doc = ? WHERE uuid = ?", (dumps(doc), script_uuid))
    return doc


def delete_script(sb: Sandbox, store_hash: str, client_id: str, script_uuid: str) -> None:
    get_script(sb, store_hash, client_id, script_uuid)
    sb.db.execute("DELETE FROM scripts WHERE uuid = ?", (script_uuid,))
