"""The gateway's storefront cache rules without I/O: invalidation, rate limit, CORS, JSON, cart input."""

from __future__ import annotations

import json

import pytest
from backorder.events.v1 import inventory_events_pb2 as inv
from backorder.events.v1 import storefront_events_pb2

from services.common.bus import build_envelope
from services.common.errors import DomainError
from services.gateway.routes.storefront import _parse_cart
from services.gateway.storefront_cache import StoreEntry, StorefrontConfig, StorefrontState
from services.gateway.storefront_json import json_bytes


def make_state(**overrides) -> StorefrontState:
    values = {"cache_ttl_s": 30.0, "max_entries": 100, "rate_per_s": 0.0, "burst": 0.0, "browser_max_age_s": 0,
              "cors_origins": ("*",)}
    values.update(overrides)
    return StorefrontState(StorefrontConfig(**values))


def inventory_event(store: str, product_id: int, version: int, event_type: str = "stock.changed") -> bytes:
    state = inv.InventoryProductState(product_id=product_id, assigned=True, stock=1, version=version)
    payload = inv.StockChanged(product=state, ledger_id=version) if event_type == "stock.changed" else \
        inv.ProductAssigned(product=state)
    return build_envelope(store, "inventory", event_type, payload).SerializeToString()


def test_json_is_escaped_for_html_contexts() -> None:
    body = json_bytes({"text": "<script>&</script>"})
    assert b"<" not in body and b">" not in body and b"&" not in body
    assert json.loads(body) == {"text": "<script>&</script>"}


def test_inventory_event_drops_one_product_and_remembers_its_version() -> None:
    state = make_state()
    state.store_entry(("s1", 1), state.make_entry(200, b"{}"))
    state.store_entry(("s1", 2), state.make_entry(200, b"{}"))
    before = state.generation_of("s1", 1)
    state.handle_event("backorder.s1.inventory.stock.changed", inventory_event("s1", 1, 7))
    assert ("s1", 1) not in state.views and ("s1", 2) in state.views
    assert state.min_version[("s1", 1)] == 7
    assert state.generation_of("s1", 1) != before
    state.handle_event("backorder.s1.inventory.stock.changed", inventory_event("s1", 1, 5))
    assert state.min_version[("s1", 1)] == 7


def test_settings_event_drops_the_store_only() -> None:
    state = make_state()
    for key in (("s1", 1), ("s1", 2), ("s2", 1)):
        state.store_entry(key, state.make_entry(200, b"{}"))
    state.stores["s1"] = StoreEntry(state.make_entry(200, b"{}"), frozenset())
    payload = storefront_events_pb2.StorefrontSettingsChanged(store_hash="s1", revision=3)
    data = build_envelope("s1", "storefront", "settings.changed", payload).SerializeToString()
    state.handle_event("backorder.s1.storefront.settings.changed", data)
    assert set(state.views) == {("s2", 1)}
    assert "s1" not in state.stores and state.min_revision["s1"] == 3


def test_garbage_and_other_events_change_nothing() -> None:
    state = make_state()
    state.store_entry(("s1", 1), state.make_entry(200, b"{}"))
    state.handle_event("backorder.s1.inventory.x", b"\xff\x00garbage")
    order = build_envelope("s1", "inventory", "order.backordered", inv.OrderBackordered(order_id="1"))
    state.handle_event("backorder.s1.inventory.order.backordered", order.SerializeToString())
    assert ("s1", 1) in state.views


def test_reconnect_flushes_everything_and_shortens_ttl_while_down() -> None:
    state = make_state()
    state.store_entry(("s1", 1), state.make_entry(200, b"{}"))
    state.on_nats(False)
    assert not state.views and state.ttl() == 1.0
    state.on_nats(True)
    assert state.ttl() == 30.0


def test_cache_is_bounded() -> None:
    state = make_state(max_entries=10)
    for product_id in range(1, 30):
        state.store_entry(("s1", product_id), state.make_entry(200, b"{}"))
    assert len(state.views) <= 10
    assert ("s1", 29) in state.views


def test_token_bucket_per_store() -> None:
    state = make_state(rate_per_s=0.001, burst=2)
    assert [state.allow("a") for _ in range(3)] == [True, True, False]
    assert state.allow("b")


def test_cors_default_any_store_list_and_gateway_list() -> None:
    state = make_state()
    assert state.cors_headers("s1", None) == []
    assert state.cors_headers("s1", b"https://x.example") == [(b"access-control-allow-origin", b"*")]
    state.stores["s1"] = StoreEntry(state.make_entry(200, b"{}"), frozenset({"https://shop.example"}))
    assert state.cors_headers("s1", b"https://x.example") == []
    assert state.cors_headers("s1", b"https://shop.example") == [
        (b"access-control-allow-origin", b"https://shop.example")]
    listed = make_state(cors_origins=("https://a.example",))
    assert listed.cors_headers("s2", b"https://a.example") == [(b"access-control-allow-origin", b"https://a.example")]
    assert listed.cors_headers("s2", b"https://b.example") == []


@pytest.mark.parametrize(("body", "field"), [
    (b"[]", "lines"), (b'{"lines": "x"}', "lines"), (b'{"lines": [1]}', "lines"),
    (b'{"lines": [{"product_id": true, "quantity": 1}]}', "product_id"),
    (b'{"lines": [{"product_id": 1, "quantity": 1.5}]}', "quantity"),
    (b'{"lines": [{"product_id": 1, "quantity": 1, "in_cart_qty": -1}]}', "in_cart_qty"),
    (b"\xff", "body"),
])
def test_cart_body_errors_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(DomainError) as excinfo:
        _parse_cart(body)
    assert excinfo.value.details["errors"][0]["field"] == field


def test_cart_body_parses_lines() -> None:
    lines = _parse_cart(b'{"lines": [{"product_id": 3, "quantity": 2, "in_cart_qty": 1}, {"product_id": 4, "quantity": 1}]}')
    assert [(line.product_id, line.quantity, line.in_cart_qty) for line in lines] == [(3, 2, 1), (4, 1, 0)]
