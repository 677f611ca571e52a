"""catalog_sync's use cases, wired once: install/uninstall (install.py), the catalog mirror
(catalog.py), webhook reactions (webhooks.py, with orders.py and products.py) and inventory
events written back to BigCommerce (writebacks.py).

Every external call (BigCommerce, inventory, billing, storefront) happens outside a
database transaction; what must be recorded is written afterwards in a short one. Each
reaction is safe to run twice: inventory applies order lines and stock keys once, writes
to BigCommerce are PUTs of absolute fields, the order note is appended only if absent.
"""

from __future__ import annotations

from services.catalog_sync.bc_client import BigCommerceHttp
from services.catalog_sync.catalog import Catalog
from services.catalog_sync.crypto import TokenCipher
from services.catalog_sync.install import Installs
from services.catalog_sync.orders import Orders
from services.catalog_sync.peers import Peers
from services.catalog_sync.products import ProductHooks
from services.catalog_sync.settings import CatalogSettings
from services.catalog_sync.store_access import StoreAccess
from services.catalog_sync.webhooks import Webhooks
from services.catalog_sync.writebacks import Writebacks
from services.common.db import Database

__all__ = ["CatalogSync", "Peers"]


class CatalogSync:
    """The entry points the servicer, the consumers, the purge loop and tests call."""

    def __init__(self, db: Database, settings: CatalogSettings, cipher: TokenCipher, http: BigCommerceHttp,
                 peers: Peers) -> None:
        self.db = db
        self.settings = settings
        self.stores = StoreAccess(db, cipher, http)
        self.catalog = Catalog(db, self.stores, peers)
        self.installs = Installs(db, self.stores, peers, settings=settings, cipher=cipher, http=http,
                                 catalog=self.catalog)
        orders = Orders(db, self.stores, peers)
        self.webhooks = Webhooks(self.stores, orders, ProductHooks(db, self.stores, peers))
        self.writebacks = Writebacks(db, self.stores)

        self.is_installed = self.stores.is_installed
        self.store_api = self.stores.api
        self.install = self.installs.install
        self.uninstall = self.installs.uninstall
        self.store_view = self.installs.store_view
        self.purge_expired = self.installs.purge_expired
        self.purge_loop = self.installs.purge_loop
        self.pull_catalog = self.catalog.pull_catalog
        self.list_products = self.catalog.list_products
        self.get_products = self.catalog.get_products
        self.sync_inventory = self.catalog.sync_inventory
        self.handle_webhooks = self.webhooks.handle
        self.handle_inventory_event = self.writebacks.handle

    async def close(self) -> None:
        await self.installs.close()
