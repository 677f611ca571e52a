"""The catalog mirror over gRPC: search, filters, pagination, on-demand pull, manual sync."""

from __future__ import annotations

from backorder.catalog.v1 import catalog_pb2
from backorder.inventory.v1 import inventory_pb2


async def list_products(platform, **fields):
    return await platform.catalog.ListProducts(catalog_pb2.ListProductsRequest(store_hash=platform.store_hash,
                                                                               **fields))


async def test_search_filters_and_pagination_match_bigcommerce(platform):
    everything = (await platform.call(platform.store.api, "GET", "/v3/catalog/products",
                                      params={"limit": 250})).json()["data"]
    total = await list_products(platform, limit=250)
    assert total.total == len(everything)
    page1 = await list_products(platform, limit=10, page=1)
    page2 = await list_products(platform, limit=10, page=2)
    assert len(page1.products) == 10 and page1.total == total.total
    assert not {p.product_id for p in page1.products} & {p.product_id for p in page2.products}
    sample = everything[0]
    by_sku = await list_products(platform, q=sample["sku"].lower(), limit=250)
    assert sample["id"] in [p.product_id for p in by_sku.products]
    hidden = [p["id"] for p in everything if not p["is_visible"]]
    listed_hidden = await list_products(platform, visibility=catalog_pb2.VISIBILITY_HIDDEN, limit=250)
    assert sorted(p.product_id for p in listed_hidden.products) == sorted(hidden)
    disabled = [p["id"] for p in everything if p["availability"] == "disabled"]
    listed_disabled = await list_products(platform, availability=catalog_pb2.AVAILABILITY_DISABLED, limit=250)
    assert sorted(p.product_id for p in listed_disabled.products) == sorted(disabled)
    assert (await list_products(platform, assigned=catalog_pb2.ASSIGNED_FILTER_ASSIGNED)).total == 0


async def test_get_products_reports_missing_ids(platform):
    listing = await list_products(platform, limit=2)
    ids = [p.product_id for p in listing.products]
    reply = await platform.catalog.GetProducts(catalog_pb2.GetProductsRequest(
        store_hash=platform.store_hash, product_ids=[*ids, 999_999_999]))
    assert [p.product_id for p in reply.products] == ids
    assert list(reply.missing_ids) == [999_999_999]


async def test_pull_on_demand_picks_up_new_products(platform):
    before = (await list_products(platform)).total
    await platform.call(platform.store.generate_products, 30)
    reply = await platform.catalog.PullCatalog(catalog_pb2.PullCatalogRequest(store_hash=platform.store_hash))
    assert reply.products == before + 30
    assert (await list_products(platform)).total == before + 30


async def test_manual_sync_replaces_stock_with_bigcommerce_levels(platform):
    response = await platform.call(platform.store.api, "GET", "/v3/catalog/products",
                                   params={"inventory_tracking": "product", "limit": 250})
    product = next(p for p in response.json()["data"] if p.get("base_variant_id"))
    await platform.assign(product["id"], stock=product["inventory_level"])
    await platform.inventory.SetStock(inventory_pb2.SetStockRequest(
        store_hash=platform.store_hash, product_id=product["id"], stock=product["inventory_level"] + 7,
        source=inventory_pb2.STOCK_SOURCE_ADMIN, actor="e2e", idempotency_key="drift-1"))
    reply = await platform.catalog.SyncInventory(catalog_pb2.SyncInventoryRequest(store_hash=platform.store_hash))
    assert reply.changed == 1
    assert [(i.product_id, i.bigcommerce_stock, i.stock_before) for i in reply.items] == [
        (product["id"], product["inventory_level"], product["inventory_level"] + 7)]
    got = await platform.inventory.GetProduct(inventory_pb2.GetProductRequest(
        store_hash=platform.store_hash, product_id=product["id"]))
    assert got.product.stock == product["inventory_level"]
    again = await platform.catalog.SyncInventory(catalog_pb2.SyncInventoryRequest(
        store_hash=platform.store_hash, product_ids=[product["id"]]))
    assert again.changed == 0
