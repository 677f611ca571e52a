"""StorefrontService over real gRPC, with real NATS and PostgreSQL/SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from backorder.events.v1 import envelope_pb2, storefront_events_pb2
from backorder.storefront.v1 import storefront_pb2 as pb
from backorder.storefront.v1 import storefront_pb2_grpc
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from services.common.bus import EventBus
from services.common.errors import error_from_rpc
from services.common.grpc_server import DeadlineStub, insecure_channel
from services.storefront.server import setup
from services.storefront.tables import inbox, product_states
from tests.integration.storefront.helpers import earlier, new_store, publish_inventory, wait_until

pytestmark = pytest.mark.services


@pytest.fixture
async def bus(nats_server) -> AsyncIterator[EventBus]:
    bus = EventBus(nats_server.url, "storefront-test")
    await bus.connect()
    await bus.ensure_streams()
    yield bus
    await bus.close()


@pytest.fixture
async def service(start_service, database_url: Callable[[], str]):
    runner = await start_service("storefront", setup, database_url())
    channel = insecure_channel(f"127.0.0.1:{runner.port}")
    stub = DeadlineStub(storefront_pb2_grpc.StorefrontServiceStub(channel), 10)
    yield runner, stub
    await channel.close()


async def view_of(stub, store_hash: str, product_id: int) -> pb.ProductView:
    return (await stub.GetProductView(pb.GetProductViewRequest(store_hash=store_hash, product_id=product_id))).view


async def test_defaults_until_saved_then_saved_values_and_event(service, bus) -> None:
    _runner, stub = service
    store = new_store()
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_msg(msg) -> None:
        await received.put(msg.data)

    subscription = await bus.nc.subscribe(f"backorder.{store}.storefront.settings.changed", cb=on_msg)
    first = (await stub.GetSettings(pb.GetSettingsRequest(store_hash=store))).settings
    assert (first.customized, first.theme_id, first.selectors.add_to_cart_button) == (
        False, "cornerstone", "#form-action-addToCart")

    saved = (await stub.UpdateSettings(pb.UpdateSettingsRequest(
        store_hash=store, in_stock_message="{stock} ready <b>now</b>", theme_id="other",
        set_allowed_origins=True, allowed_origins=["https://shop.example.com"]))).settings
    assert saved.customized and saved.in_stock_message == "{stock} ready <b>now</b>"
    assert saved.selectors.product_id_input.startswith('input[name="product_id"]')
    assert list(saved.allowed_origins) == ["https://shop.example.com"]
    again = (await stub.GetSettings(pb.GetSettingsRequest(store_hash=store))).settings
    assert again == saved

    envelope = envelope_pb2.Envelope.FromString(await asyncio.wait_for(received.get(), 10))
    event = storefront_events_pb2.StorefrontSettingsChanged()
    envelope.payload.Unpack(event)
    assert (envelope.type, event.store_hash, event.revision) == ("settings.changed", store, 1)
    assert set(event.changed_fields) == {"in_stock_message", "theme_id", "allowed_origins"}
    await subscription.unsubscribe()


async def test_invalid_settings_name_field_and_placeholder_and_change_nothing(service) -> None:
    _runner, stub = service
    store = new_store()
    with pytest.raises(grpc.RpcError) as excinfo:
        await stub.UpdateSettings(pb.UpdateSettingsRequest(
            store_hash=store, backorder_message="{salable} left", backorder_button_color="blue"))
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = error_from_rpc(excinfo.value)
    assert error.code == "validation_failed"
    found = {(e["field"], e.get("placeholder")) for e in error.details["errors"]}
    assert found == {("backorder_message", "salable"), ("backorder_button_color", None)}
    after = (await stub.GetSettings(pb.GetSettingsRequest(store_hash=store))).settings
    assert not after.customized


async def test_inventory_events_drive_the_view_and_stale_ones_are_ignored(service, bus) -> None:
    runner, stub = service
    store = new_store()
    await publish_inventory(bus, store, "product.assigned", 11, stock=3, threshold=4, version=10)

    async def status_is(expected: str) -> bool:
        try:
            return (await view_of(stub, store, 11)).status == expected
        except grpc.RpcError:
            return False

    await wait_until(lambda: status_is("low_stock"))
    await publish_inventory(bus, store, "stock.changed", 11, stock=-1, threshold=4, version=12,
                            back_in_stock_date="2026-12-24")
    await wait_until(lambda: status_is("backorder"))
    view = await view_of(stub, store, 11)
    assert (view.stock, view.threshold, view.salable_qty, view.version) == (-1, 4, 3, 12)
    assert view.messages.inventory == "Out of stock, available on backorder. 3 more can be ordered."
    assert view.messages.shipping.endswith("December 24, 2026.")

    # An older event (lower version) arriving late changes nothing; a newer one does.
    stale_id = await publish_inventory(bus, store, "stock.changed", 11, stock=50, threshold=4, version=11,
                                       occurred_at=earlier(60))
    db = runner.ctx.db

    async def consumed(event_id: str) -> bool:
        async with db.read() as conn:
            return bool((await conn.execute(select(func.count()).select_from(inbox).where(
                inbox.c.message_id == event_id))).scalar())

    await wait_until(lambda: consumed(stale_id))
    assert (await view_of(stub, store, 11)).stock == -1

    await publish_inventory(bus, store, "product.sold_out", 11, stock=-4, threshold=4, version=13)
    await wait_until(lambda: status_is("sold_out"))
    await publish_inventory(bus, store, "product.unassigned", 11, stock=-4, threshold=4, version=14, assigned=False)
    await wait_until(lambda: _not_assigned(stub, store, 11))
    async with db.read() as conn:
        rows = (await conn.execute(select(product_states.c.version).where(
            product_states.c.store_hash == store))).scalars().all()
    assert rows == [14]


async def _not_assigned(stub, store: str, product_id: int) -> bool:
    return not (await view_of(stub, store, product_id)).assigned


async def test_redelivered_event_is_applied_once(service, bus) -> None:
    _runner, stub = service
    store = new_store()
    event_id = await publish_inventory(bus, store, "product.assigned", 5, stock=8, threshold=None, version=1)
    await wait_until(lambda: _assigned(stub, store, 5))
    before = _duplicates()
    # The same event delivered again under another Nats-Msg-Id (as after JetStream's duplicate
    # window): the inbox drops it, although its later occurred_at would otherwise win.
    await publish_inventory(bus, store, "product.assigned", 5, stock=99, threshold=None, version=1,
                            event_id=event_id, msg_id=f"{event_id}-again")
    await wait_until(lambda: _duplicates() > before)
    view = await view_of(stub, store, 5)
    assert (view.stock, view.HasField("threshold"), view.HasField("salable_qty")) == (8, False, False)


def _duplicates() -> float:
    return REGISTRY.get_sample_value("backorder_events_consumed_total",
                                     {"consumer": "storefront-inventory", "outcome": "duplicate"}) or 0.0


async def _assigned(stub, store: str, product_id: int) -> bool:
    try:
        return (await view_of(stub, store, product_id)).assigned
    except grpc.RpcError:
        return False


async def test_unknown_store_is_not_found_and_unknown_product_unassigned(service, bus) -> None:
    _runner, stub = service
    with pytest.raises(grpc.RpcError) as excinfo:
        await view_of(stub, new_store(), 1)
    assert excinfo.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as bad_hash:
        await view_of(stub, "../etc", 1)
    assert bad_hash.value.code() == grpc.StatusCode.NOT_FOUND
    store = new_store()
    await publish_inventory(bus, store, "product.assigned", 1, stock=1, version=1)
    await wait_until(lambda: _assigned(stub, store, 1))
    many = (await stub.GetProductViews(pb.GetProductViewsRequest(store_hash=store, product_ids=[2, 1]))).views
    assert [(v.product_id, v.assigned) for v in many] == [(2, False), (1, True)]
    with pytest.raises(grpc.RpcError) as bad_id:
        await view_of(stub, store, -3)
    assert bad_id.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cart_check_and_order_note(service, bus) -> None:
    _runner, stub = service
    store = new_store()
    await publish_inventory(bus, store, "product.assigned", 21, stock=2, threshold=3, version=1)
    await wait_until(lambda: _assigned(stub, store, 21))
    result = await stub.CheckCart(pb.CheckCartRequest(store_hash=store, lines=[
        pb.CartLine(product_id=21, quantity=4), pb.CartLine(product_id=999, quantity=1)]))
    assert [(r.backordered_qty, r.over_threshold, r.assigned) for r in result.lines] == [
        (2, False, True), (0, False, False)]
    assert result.mixed_cart_alert.startswith("You added 5: 2 of them are on backorder")
    over = await stub.CheckCart(pb.CheckCartRequest(store_hash=store, lines=[
        pb.CartLine(product_id=21, quantity=2, in_cart_qty=4)]))
    assert over.over_threshold and over.over_threshold_alert.startswith("Sorry, only 5 of this item")
    with pytest.raises(grpc.RpcError) as bad:
        await stub.CheckCart(pb.CheckCartRequest(store_hash=store, lines=[pb.CartLine(product_id=21, quantity=0)]))
    assert error_from_rpc(bad.value).details["errors"][0]["field"] == "quantity"

    await stub.UpdateSettings(pb.UpdateSettingsRequest(store_hash=store, order_note_line="{name}: {backordered_qty}"))
    note = (await stub.RenderOrderNote(pb.RenderOrderNoteRequest(store_hash=store, lines=[
        pb.OrderNoteLine(name="Mug", sku="M", backordered_qty=2),
        pb.OrderNoteLine(name="Cup", sku="C", backordered_qty=0)]))).note
    assert note.splitlines() == ["Backorder: 2 unit(s) in this order ship when back in stock.", "Mug: 2"]
    notes = (await stub.RenderOrderNotes(pb.RenderOrderNotesRequest(store_hash=store, orders=[
        pb.OrderNoteLines(lines=[pb.OrderNoteLine(name="Cup", sku="C", backordered_qty=3)]),
        pb.OrderNoteLines(lines=[pb.OrderNoteLine(name="Cup", sku="C", backordered_qty=0)]),
        pb.OrderNoteLines(lines=[pb.OrderNoteLine(name="Mug", sku="M", backordered_qty=2)])]))).notes
    assert [n.splitlines()[1:] for n in notes] == [["Cup: 3"], [], ["Mug: 2"]]
    assert notes[1] == ""
    with pytest.raises(grpc.RpcError) as too_many:
        await stub.RenderOrderNotes(pb.RenderOrderNotesRequest(store_hash=store, orders=[
            pb.OrderNoteLines() for _ in range(1001)]))
    assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_themes(service) -> None:
    _runner, stub = service
    themes = (await stub.ListThemes(pb.ListThemesRequest())).themes
    ids = [t.id for t in themes]
    assert ids[0] == "cornerstone" and ids[-1] == "other"
    assert all(len(t.versions) == 2 for t in themes if t.id != "other")
