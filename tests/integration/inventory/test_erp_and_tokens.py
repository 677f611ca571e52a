"""Partner ERP API: token auth on both ports, store scoping, per-item results, the stream."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from backorder.inventory.v1 import erp_pb2, inventory_pb2, token_pb2

from services.inventory import cli
from services.inventory.tokens import hash_token
from tests.integration.inventory.conftest import store


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def two_stores(inv, fake_billing):
    stores = []
    for _ in range(2):
        store_hash = store()
        fake_billing[0].plans[store_hash] = ("pro", 50)
        await inv.assign(store_hash, {"product_id": 1, "stock": 5, "threshold": 2},
                         {"product_id": 2, "stock": 0, "threshold": 1})
        token = await inv.tokens.CreateApiToken(token_pb2.CreateApiTokenRequest(store_hash=store_hash, name="erp"))
        stores.append((store_hash, token.plaintext))
    return stores


async def test_erp_calls_need_a_valid_bearer_token_on_both_ports(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url())
    request = erp_pb2.ErpInventoryServiceSetStockRequest(items=[
        erp_pb2.ErpSetStockItem(product_id=1, stock=3, idempotency_key="k")])
    for stub in (inv.erp, inv.erp_on(inv.erp_port)):
        for metadata in ((), bearer("bo_not-a-token"), (("authorization", "Basic abc"),)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SetStock(request, metadata=metadata, timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            stream = stub.StreamStockChanges(erp_pb2.StreamStockChangesRequest(), timeout=5)
            await stream.read()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_store_token_changes_only_its_own_store(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url(), erp_token_cache_s=0.0)
    (store_a, token_a), (store_b, _) = await two_stores(inv, fake_billing)
    erp = inv.erp_on(inv.erp_port)
    reply = await erp.SetStock(erp_pb2.ErpInventoryServiceSetStockRequest(items=[
        erp_pb2.ErpSetStockItem(product_id=1, stock=40, idempotency_key="a1"),
        erp_pb2.ErpSetStockItem(product_id=3, stock=1, idempotency_key="a2"),
        erp_pb2.ErpSetStockItem(product_id=2, stock=-1, idempotency_key="a3"),
        erp_pb2.ErpSetStockItem(product_id=2, stock=7, idempotency_key=""),
    ]), metadata=bearer(token_a), timeout=5)
    assert [r.status for r in reply.results] == [erp_pb2.ITEM_STATUS_APPLIED, erp_pb2.ITEM_STATUS_NOT_FOUND,
                                                 erp_pb2.ITEM_STATUS_INVALID, erp_pb2.ITEM_STATUS_INVALID]
    assert (reply.results[0].stock_before, reply.results[0].stock_after, reply.results[0].salable_qty) == (5, 40, 42)
    assert (await inv.product(store_a, 1)).stock == 40
    assert (await inv.product(store_b, 1)).stock == 5
    assert (await inv.product(store_a, 2)).stock == 0

    again = await erp.SetStock(erp_pb2.ErpInventoryServiceSetStockRequest(items=[
        erp_pb2.ErpSetStockItem(product_id=1, stock=40, idempotency_key="a1"),
        erp_pb2.ErpSetStockItem(product_id=1, stock=41, idempotency_key="a1")]), metadata=bearer(token_a), timeout=5)
    assert [r.status for r in again.results] == [erp_pb2.ITEM_STATUS_REPLAYED, erp_pb2.ITEM_STATUS_CONFLICT]
    assert (again.results[0].stock_before, again.results[0].stock_after) == (5, 40)

    adjusted = await erp.AdjustStock(erp_pb2.ErpInventoryServiceAdjustStockRequest(items=[
        erp_pb2.ErpAdjustStockItem(product_id=2, delta=-4, idempotency_key="a4")]), metadata=bearer(token_a), timeout=5)
    assert adjusted.results[0].product_status == inventory_pb2.PRODUCT_STATUS_SOLD_OUT
    incoming = await erp.SetIncoming(erp_pb2.ErpInventoryServiceSetIncomingRequest(items=[
        erp_pb2.ErpSetIncomingItem(product_id=2, incoming_stock=9, back_in_stock_date="2031-05-01",
                                   idempotency_key="a5"),
        erp_pb2.ErpSetIncomingItem(product_id=1, incoming_stock=1, back_in_stock_date="05/01/2031",
                                   idempotency_key="a6")]), metadata=bearer(token_a), timeout=5)
    assert [r.status for r in incoming.results] == [erp_pb2.ITEM_STATUS_APPLIED, erp_pb2.ITEM_STATUS_INVALID]
    product = await inv.product(store_a, 2)
    assert (product.incoming_stock, product.back_in_stock_date) == (9, "2031-05-01")
    assert (await inv.product(store_b, 2)).incoming_stock == 0


async def test_stream_resumes_after_a_cursor_and_keeps_streaming(database_url, start_inventory, fake_billing):
    inv = await start_inventory(database_url(), erp_stream_poll_s=0.2)
    (store_a, token_a), (store_b, _) = await two_stores(inv, fake_billing)
    stream = inv.erp.StreamStockChanges(erp_pb2.StreamStockChangesRequest(cursor=0), metadata=bearer(token_a))
    first = [await asyncio.wait_for(stream.read(), 5) for _ in range(2)]
    assert {m.entry.store_hash for m in first} == {store_a}
    assert [m.entry.kind for m in first] == [inventory_pb2.LEDGER_KIND_ASSIGN] * 2
    await inv.inventory.AdjustStock(inventory_pb2.AdjustStockRequest(store_hash=store_b, product_id=1, delta=1))
    await inv.inventory.AdjustStock(inventory_pb2.AdjustStockRequest(store_hash=store_a, product_id=1, delta=-2,
                                                                     idempotency_key="adj-1"))
    live = await asyncio.wait_for(stream.read(), 5)
    assert (live.entry.store_hash, live.entry.delta, live.entry.idempotency_key) == (store_a, -2, "adj-1")
    stream.cancel()
    resumed = inv.erp.StreamStockChanges(erp_pb2.StreamStockChangesRequest(cursor=first[-1].cursor),
                                         metadata=bearer(token_a))
    again = await asyncio.wait_for(resumed.read(), 5)
    assert again.entry.id == live.entry.id
    resumed.cancel()


async def test_tokens_are_stored_hashed_verified_and_revoked(database_url, start_inventory):
    inv = await start_inventory(database_url(), erp_token_cache_s=0.0)
    store_hash = store()
    created = await inv.tokens.CreateApiToken(token_pb2.CreateApiTokenRequest(store_hash=store_hash, name="erp"))
    assert created.plaintext.startswith("bo_") and len(created.plaintext) >= 40
    from sqlalchemy import select

    from services.inventory.tables import api_tokens
    async with inv.handlers.db.read() as conn:
        stored = (await conn.execute(select(api_tokens.c.token_hash))).scalars().all()
    assert hash_token(created.plaintext) in stored and created.plaintext not in stored
    verified = await inv.tokens.VerifyApiToken(token_pb2.VerifyApiTokenRequest(token=created.plaintext))
    assert (verified.store_hash, verified.token_id) == (store_hash, created.token.id)
    listed = await inv.tokens.ListApiTokens(token_pb2.ListApiTokensRequest(store_hash=store_hash))
    assert [t.id for t in listed.tokens] == [created.token.id]
    await inv.tokens.RevokeApiToken(token_pb2.RevokeApiTokenRequest(store_hash=store_hash, id=created.token.id))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inv.tokens.VerifyApiToken(token_pb2.VerifyApiTokenRequest(token=created.plaintext))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inv.erp.SetStock(erp_pb2.ErpInventoryServiceSetStockRequest(), metadata=bearer(created.plaintext))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_cli_creates_a_token_the_service_accepts(sqlite_database_url, start_inventory, monkeypatch, capsys):
    url = sqlite_database_url()
    monkeypatch.setenv("BACKORDER_DATABASE_URL", url)
    store_hash = store()
    assert await asyncio.to_thread(cli.main, ["create-token", "--store", store_hash, "--name", "erp"]) == 0
    token = next(line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("token:"))
    inv = await start_inventory(url)
    verified = await inv.tokens.VerifyApiToken(token_pb2.VerifyApiTokenRequest(token=token))
    assert verified.store_hash == store_hash
