"""Install, uninstall and the purge of uninstalled stores' data.

Every external call (BigCommerce, billing, inventory) happens outside a database
transaction; what must be recorded is written afterwards in a short one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import grpc
from backorder.billing.v1 import billing_pb2
from backorder.inventory.v1 import inventory_pb2

from services.catalog_sync import domain, repository
from services.catalog_sync.bc_client import BigCommerceHttp, StoreApi
from services.catalog_sync.catalog import Catalog
from services.catalog_sync.crypto import TokenCipher
from services.catalog_sync.peers import rpc_code
from services.catalog_sync.settings import CatalogSettings
from services.catalog_sync.store_access import UseCase
from services.common.clock import utcnow
from services.common.errors import NotFound, Unauthenticated, Unavailable, ValidationFailed

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Installs(UseCase):
    """Install, uninstall and purge."""

    settings: CatalogSettings
    cipher: TokenCipher
    http: BigCommerceHttp
    catalog: Catalog
    _background: set[asyncio.Task[Any]] = field(default_factory=set, init=False, repr=False)

    async def install(self, code: str, scope: str, context: str, account_uuid: str = "") -> dict[str, Any]:
        """The whole install; idempotent. Writes the store row, then the hook registrations."""
        store_hash = domain.store_hash_from_context(context)
        if not code:
            raise ValidationFailed("code is required", errors=[{"field": "code", "reason": "required"}])
        grant = await self.http.exchange_code(
            client_id=self.settings.bc_client_id, client_secret=self.settings.bc_client_secret.reveal(),
            code=code, scope=scope, context=context, redirect_uri=f"{self.settings.public_url}/bc/auth")
        if grant.store_hash != store_hash:
            raise Unauthenticated("the token belongs to another store", details={"store_hash": store_hash})
        token, granted = grant.access_token, grant.scope
        api = self.http.store(store_hash, token)
        info = await api.store_info()
        timezone = str((info.get("timezone") or {}).get("name") or "UTC")
        account = str(grant.account_uuid or info.get("account_uuid") or account_uuid or "")
        owner_email = str(grant.owner.get("email") or info.get("admin_email") or "")
        async with self.db.unit_of_work() as uow:
            created = await repository.upsert_store(uow.conn, self.db.dialect, {
                "store_hash": store_hash, "access_token": self.cipher.encrypt(token), "scope": granted,
                "account_uuid": account, "timezone": timezone, "name": str(info.get("name") or ""),
                "domain": str(info.get("domain") or ""), "owner_email": owner_email,
            })
            await uow.commit()
        self.stores.forget(store_hash)
        hooks = await self._register_hooks(store_hash, api)
        script_uuid = await self._register_script(api)
        async with self.db.unit_of_work() as uow:
            await repository.save_registrations(uow.conn, self.db.dialect, store_hash, hooks)
            await repository.update_store(uow.conn, store_hash, script_uuid=script_uuid)
            await uow.commit()
        try:
            await self.peers.billing.StartSubscription(billing_pb2.StartSubscriptionRequest(
                store_hash=store_hash, merchant_account_uuid=account))
        except grpc.RpcError as exc:
            raise Unavailable("billing could not start the free plan; install again",
                              details={"store_hash": store_hash, "status": str(rpc_code(exc))}) from exc
        try:
            await self.peers.inventory.UpdateStoreSettings(inventory_pb2.UpdateStoreSettingsRequest(
                store_hash=store_hash, timezone=timezone))
        except grpc.RpcError as exc:
            log.warning("store %s: inventory did not take the time zone: %s", store_hash, rpc_code(exc))
        self._spawn(self._pull_in_background(store_hash))
        log.info("store %s installed (created=%s, %d hooks)", store_hash, created, len(hooks))
        return {"store_hash": store_hash, "created": created, "webhooks": len(hooks)}

    async def _register_hooks(self, store_hash: str, api: StoreApi) -> list[tuple[str, int]]:
        destination = f"{self.settings.public_url}/webhooks/bigcommerce"
        headers = {domain.HOOK_TOKEN_HEADER: domain.webhook_secret(self.settings.webhook_secret_key.reveal(),
                                                                   store_hash)}
        existing = await api.list_all("/v3/hooks")
        registered = []
        for scope in domain.WEBHOOK_SCOPES:
            match = next((h for h in existing if h.get("scope") == scope and h.get("destination") == destination), None)
            if match is None:
                hook = await api.create("/v3/hooks", {"scope": scope, "destination": destination,
                                                      "is_active": True, "headers": headers})
            elif match.get("headers") != headers or not match.get("is_active"):
                hook = await api.update(f"/v3/hooks/{match['id']}", {"headers": headers, "is_active": True})
            else:
                hook = match
            registered.append((scope, int(hook["id"])))
        return registered

    async def _register_script(self, api: StoreApi) -> str:
        body = {
            "name": domain.SCRIPT_NAME, "description": "Backorder messages on product pages and the cart",
            "src": f"{self.settings.public_url}/storefront/v1/backorder.js", "kind": "src",
            "load_method": "defer", "location": "footer", "visibility": "storefront",
            "consent_category": "essential", "auto_uninstall": True, "enabled": True,
        }
        existing = await api.list_all("/v3/content/scripts")
        match = next((s for s in existing if s.get("name") == domain.SCRIPT_NAME), None)
        if match is None:
            script = await api.create("/v3/content/scripts", body)
        else:
            script = await api.update(f"/v3/content/scripts/{match['uuid']}", body)
        return str(script.get("uuid") or "")

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _pull_in_background(self, store_hash: str) -> None:
        try:
            await self.catalog.pull_catalog(store_hash)
        except Exception:  # noqa: BLE001 - the merchant can pull again on demand
            log.exception("store %s: catalog pull after install failed", store_hash)

    async def close(self) -> None:
        """Cancel the catalog pulls still running after an install."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def uninstall(self, store_hash: str) -> datetime:
        """Stop processing the store now, drop its token; returns when its data will be purged."""
        domain.check_store_hash(store_hash)
        async with self.db.unit_of_work() as uow:
            found = await repository.mark_uninstalled(uow.conn, store_hash)
            await uow.commit()
        if not found:
            raise NotFound("unknown store", details={"store_hash": store_hash})
        self.stores.uninstalled(store_hash)
        try:
            await self.peers.billing.EndSubscription(billing_pb2.EndSubscriptionRequest(store_hash=store_hash))
        except grpc.RpcError as exc:
            log.warning("store %s: billing did not end the subscription: %s", store_hash, rpc_code(exc))
        log.info("store %s uninstalled", store_hash)
        return utcnow() + timedelta(seconds=self.settings.purge_after_s)

    async def purge_expired(self) -> list[str]:
        """Delete the data of stores uninstalled longer than the grace period."""
        before = utcnow() - timedelta(seconds=self.settings.purge_after_s)
        async with self.db.read() as conn:
            expired = await repository.stores_to_purge(conn, before)
        for store_hash in expired:
            async with self.db.unit_of_work() as uow:
                await repository.purge_store(uow.conn, store_hash)
                await uow.commit()
            self.stores.forget(store_hash)
            log.info("store %s purged after its grace period", store_hash)
        return expired

    async def purge_loop(self) -> None:
        while True:
            try:
                await self.purge_expired()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - try again next round
                log.exception("purge of uninstalled stores failed")
            await asyncio.sleep(self.settings.purge_interval_s)

    async def store_view(self, store_hash: str) -> tuple[Any, int]:
        async with self.db.read() as conn:
            row = await repository.get_store(conn, store_hash)
            if row is None:
                raise NotFound("unknown store", details={"store_hash": store_hash})
            count = await repository.product_count(conn, store_hash)
        return row, count
