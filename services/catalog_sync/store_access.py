"""The stores this process serves: which are installed (cached briefly) and each one's
BigCommerce API client (its token decrypted once per process)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from services.catalog_sync import domain, repository
from services.catalog_sync.bc_client import BigCommerceHttp, StoreApi
from services.catalog_sync.crypto import TokenCipher
from services.catalog_sync.peers import Peers
from services.common.db import Database

INSTALLED_CACHE_S = 2.0


@dataclass(eq=False)
class StoreAccess:
    """The installed stores and their API clients, as this process knows them."""

    db: Database
    cipher: TokenCipher
    http: BigCommerceHttp
    _installed: dict[str, tuple[bool, float]] = field(default_factory=dict, init=False, repr=False)
    _apis: dict[str, StoreApi] = field(default_factory=dict, init=False, repr=False)

    def forget(self, store_hash: str) -> None:
        """Drop what this process remembers of the store (after an install, a purge)."""
        self._installed.pop(store_hash, None)
        self._apis.pop(store_hash, None)

    def uninstalled(self, store_hash: str) -> None:
        """The store was just uninstalled: this process stops serving it at once."""
        self.forget(store_hash)
        self._installed[store_hash] = (False, time.monotonic() + INSTALLED_CACHE_S)

    async def is_installed(self, store_hash: str) -> bool:
        """Installed-store check, cached briefly; an uninstall in this process applies at once."""
        cached = self._installed.get(store_hash)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        async with self.db.read() as conn:
            row = await repository.get_store(conn, store_hash)
        installed = row is not None and bool(row.installed)
        self._installed[store_hash] = (installed, time.monotonic() + INSTALLED_CACHE_S)
        return installed

    async def api(self, store_hash: str) -> StoreApi:
        """The store's API client; StoreNotInstalled when the store is not installed."""
        api = self._apis.get(store_hash)
        if api is not None and await self.is_installed(store_hash):
            return api
        async with self.db.read() as conn:
            row = await repository.get_store(conn, store_hash)
        if row is None or not row.installed or row.access_token is None:
            raise domain.StoreNotInstalled("the store is not installed", details={"store_hash": store_hash})
        api = self.http.store(store_hash, self.cipher.decrypt(row.access_token))
        self._apis[store_hash] = api
        return api


@dataclass(eq=False)
class UseCase:
    """What a use case works with: the database, the installed stores and the peer services."""

    db: Database
    stores: StoreAccess
    peers: Peers
