"""catalog_sync's process: CatalogService, the webhook and inventory-event consumers, the purge loop."""

from __future__ import annotations

from backorder.billing.v1 import billing_pb2_grpc
from backorder.catalog.v1 import catalog_pb2_grpc
from backorder.inventory.v1 import inventory_pb2_grpc
from backorder.storefront.v1 import storefront_pb2_grpc

from services.catalog_sync.bc_client import BigCommerceHttp
from services.catalog_sync.consumers import build_consumers
from services.catalog_sync.crypto import TokenCipher
from services.catalog_sync.handlers import CatalogSync, Peers
from services.catalog_sync.servicer import CatalogServicer
from services.catalog_sync.settings import CatalogSettings
from services.common.grpc_server import DeadlineStub, insecure_channel
from services.common.runtime import ServiceContext, run_service

SERVICE = "catalog_sync"
PEER_DEADLINE_S = 10.0


async def setup(ctx: ServiceContext) -> None:
    settings = CatalogSettings.for_service(ctx.settings)
    cipher = TokenCipher.from_config(settings.token_encryption_keys.reveal(), ctx.settings.data_dir)
    http = BigCommerceHttp(settings.bc_api_url, settings.bc_login_url)
    channels = {name: insecure_channel(address) for name, address in (
        ("inventory", settings.inventory_addr), ("billing", settings.billing_addr),
        ("storefront", settings.storefront_addr))}
    peers = Peers(
        inventory=DeadlineStub(inventory_pb2_grpc.InventoryServiceStub(channels["inventory"]), PEER_DEADLINE_S),
        billing=DeadlineStub(billing_pb2_grpc.BillingServiceStub(channels["billing"]), PEER_DEADLINE_S),
        storefront=DeadlineStub(storefront_pb2_grpc.StorefrontServiceStub(channels["storefront"]), PEER_DEADLINE_S),
    )
    app = CatalogSync(ctx.db, settings, cipher, http, peers)
    ctx.add_grpc(catalog_pb2_grpc.add_CatalogServiceServicer_to_server, CatalogServicer(app),
                 "backorder.catalog.v1.CatalogService")
    ctx.consumers.extend(build_consumers(app, ctx.bus, ctx.db))
    ctx.add_task(app.purge_loop)

    async def close() -> None:
        await app.close()
        await http.close()
        for channel in channels.values():
            await channel.close()

    ctx.on_shutdown(close)
    ctx.state["app"] = app


def main() -> None:
    run_service(SERVICE, setup)
