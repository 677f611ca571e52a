"""Pure parts of the admin: signed sessions, the token cache, input rules of the JSON API."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.errors import ValidationFailed
from services.gateway.admin.http import pagination
from services.gateway.admin.import_jobs import parse_overwrite
from services.gateway.admin.inputs import (
    parse_items,
    parse_product_fields,
    parse_product_ids,
    settings_update,
)
from services.gateway.admin.mapping import update_item
from services.gateway.auth import (
    Principal,
    RemovedUsers,
    TokenCache,
    cookie_header,
    new_session,
    principal_from_session,
    sign,
    unsign,
)

SECRET = "unit-secret"


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.one_of(st.text(), st.integers(), st.booleans())))
def test_signed_values_round_trip_and_any_change_is_refused(payload):
    value = sign(payload, SECRET)
    assert unsign(value, SECRET) == payload
    assert unsign(value, "other-secret") is None
    body, mac = value.split(".")
    assert unsign(body + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B"), SECRET) is None
    assert unsign(body[:-1] + "." + mac, SECRET) is None or body[:-1] == body


@pytest.mark.parametrize("junk", ["", ".", "abc", "a.b", "....", "e30.@@@"])
def test_junk_is_not_a_session(junk):
    assert unsign(junk, SECRET) is None


def test_sessions_expire_and_carry_one_store():
    session = new_session("abc123", "7", "owner@example.com", now=1000.0)
    principal = principal_from_session(session, now=1001.0)
    assert principal is not None and principal.store_hash == "abc123" and principal.csrf == session["c"]
    assert principal.actor == "owner@example.com"
    assert principal_from_session(session, now=session["exp"] + 1) is None
    assert principal_from_session({"s": "x"}) is None
    assert new_session("abc123", "7", "e")["c"] != session["c"]


def test_removed_users_lose_older_sessions_only():
    removed = RemovedUsers()
    old = Principal("s1", "session", user_id="7", issued_at=100.0)
    removed.remove("s1", "7", at=200.0)
    assert removed.revoked(old)
    assert not removed.revoked(Principal("s1", "session", user_id="7", issued_at=300.0))
    assert not removed.revoked(Principal("s2", "session", user_id="7", issued_at=100.0))


def test_cookie_header_is_for_a_cross_site_iframe():
    header = cookie_header("backorder_session", "v", max_age=60, httponly=True)
    assert header == "backorder_session=v; Path=/; Max-Age=60; Secure; SameSite=None; Partitioned; HttpOnly"
    assert "HttpOnly" not in cookie_header("backorder_csrf", "v", max_age=60, httponly=False)


async def test_token_cache_hits_expires_and_forgets():
    calls: list[str] = []
    now = [0.0]

    async def verify(token: str):
        calls.append(token)
        return ("store1", "tok1") if token == "good" else None

    cache = TokenCache(verify, ttl_s=30, negative_ttl_s=5, clock=lambda: now[0])
    assert await cache.lookup("good") == ("store1", "tok1")
    assert await cache.lookup("good") == ("store1", "tok1")
    assert await cache.lookup("bad") is None
    assert await cache.lookup("bad") is None
    assert calls == ["good", "bad"]
    now[0] = 6.0
    await cache.lookup("bad")
    assert calls == ["good", "bad", "bad"]
    cache.forget_token_id("tok1")
    await cache.lookup("good")
    assert calls[-1] == "good" and len(calls) == 4
    now[0] = 100.0
    await cache.lookup("good")
    assert len(calls) == 5


def test_product_fields_keep_only_what_was_sent():
    errors: list = []
    assert parse_product_fields({"product_id": 5}, errors=errors) == {"product_id": 5}
    assert parse_product_fields({"product_id": "6", "threshold": None, "back_in_stock_date": ""}, errors=errors) == {
        "product_id": 6, "threshold": None, "back_in_stock_date": ""}
    assert errors == []


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({}, "product_id", "required"),
    ({"product_id": 0}, "product_id", "too_small"),
    ({"product_id": True}, "product_id", "not_a_whole_number"),
    ({"product_id": 1, "stock": -1}, "stock", "negative"),
    ({"product_id": 1, "stock": 1.5}, "stock", "not_a_whole_number"),
    ({"product_id": 1, "threshold": -1}, "threshold", "negative"),
    ({"product_id": 1, "incoming_stock": "x"}, "incoming_stock", "not_a_whole_number"),
    ({"product_id": 1, "back_in_stock_date": "2026-02-30"}, "back_in_stock_date", "bad_date"),
    ({"product_id": 1, "threshold": 10**12}, "threshold", "out_of_range"),
    ({"product_id": 1, "colour": "red"}, "colour", "unknown_field"),
])
def test_bad_fields_are_named(body, field, reason):
    errors: list = []
    parse_product_fields(body, errors=errors)
    assert {"field": field, "reason": reason} in [{k: e[k] for k in ("field", "reason")} for e in errors]


def test_items_name_the_item_and_refuse_duplicates():
    with pytest.raises(ValidationFailed) as caught:
        parse_items({"items": [{"product_id": 1}, {"product_id": 1}, {"product_id": 2, "threshold": -1}]})
    errors = caught.value.details["errors"]
    assert {(e["item"], e["field"], e["reason"]) for e in errors} == {(2, "threshold", "negative"),
                                                                     (1, "product_id", "duplicate")}
    for body in ({}, {"items": []}, {"items": "x"}, []):
        with pytest.raises(ValidationFailed):
            parse_items(body)


def test_update_item_maps_presence_and_unlimited():
    item = update_item({"product_id": 3, "threshold": None, "back_in_stock_date": ""})
    assert item.threshold_unlimited and not item.HasField("threshold") and not item.HasField("stock")
    assert item.HasField("back_in_stock_date") and item.back_in_stock_date == ""
    item = update_item({"product_id": 3, "threshold": 4, "stock": 0})
    assert item.threshold == 4 and item.HasField("stock") and not item.threshold_unlimited


def test_product_ids_and_overwrite():
    assert parse_product_ids([3, "4", 3]) == [3, 4]
    with pytest.raises(ValidationFailed):
        parse_product_ids([])
    with pytest.raises(ValidationFailed):
        parse_product_ids([1, -2])
    assert parse_overwrite(None) == ["stock", "threshold", "incoming_stock", "back_in_stock_date"]
    assert parse_overwrite("stock, threshold,stock") == ["stock", "threshold"]
    with pytest.raises(ValidationFailed):
        parse_overwrite("price")


def test_settings_update_sets_only_the_given_fields():
    request = settings_update("s1", {"backorder_message": "x", "low_stock_level": 3, "allowed_origins": [" a ", ""],
                                     "custom_theme": "true"})
    assert request.HasField("backorder_message") and not request.HasField("in_stock_message")
    assert request.low_stock_level == 3 and request.custom_theme is True
    assert list(request.allowed_origins) == ["a"] and request.set_allowed_origins
    with pytest.raises(ValidationFailed) as caught:
        settings_update("s1", {"backorder_message": 5, "nope": 1, "low_stock_level": -1})
    assert {e["field"] for e in caught.value.details["errors"]} == {"backorder_message", "nope", "low_stock_level"}


@given(st.integers(0, 10_000), st.integers(1, 250), st.integers(1, 100))
def test_pagination_shape(total, limit, page):
    meta = pagination(total, min(limit, total), page, limit)
    assert set(meta) == {"total", "count", "per_page", "current_page", "total_pages"}
    assert meta["total_pages"] >= 1 and (meta["total_pages"] - 1) * limit < max(total, 1)


def test_a_preview_s_catalog_serves_one_apply_of_the_same_rows(monkeypatch):
    from services.gateway.admin import import_jobs as admin_api

    clock = [100.0]
    monkeypatch.setattr(admin_api.time, "monotonic", lambda: clock[0])
    jobs = admin_api.ImportJobs()
    jobs.remember_catalog("s1", "abc", {1: "p1"})
    assert jobs.previewed_catalog("s2", "abc") is None  # another store never sees it
    assert jobs.previewed_catalog("s1", "abc") == {1: "p1"}
    assert jobs.previewed_catalog("s1", "abc") is None  # used once
    jobs.remember_catalog("s1", "abc", {1: "p1"})
    clock[0] += admin_api.PREVIEW_CACHE_TTL_S + 1
    assert jobs.previewed_catalog("s1", "abc") is None  # expired
    for n in range(admin_api.PREVIEW_CACHE_ENTRIES + 2):
        jobs.remember_catalog("s1", str(n), {})
    assert len(jobs._previewed) == admin_api.PREVIEW_CACHE_ENTRIES
