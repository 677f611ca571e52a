"""catalog_sync's use cases: install/uninstall, the catalog mirror, webhook reactions and
write-backs to BigCommerce.

Every external call (BigCommerce, inventory, billing, storefront) happens outside a
database transaction; what must be recorded is written afterwards in a short one. Each
reaction is safe to run twice: inventory applies order lines and stock keys once, writes
to BigCommerce are PUTs of absolute fields, the order note is appended only if absent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from backorder.billing.v1 import billing_pb2
from backorder.events.v1 import inventory_events_pb2
from backorder.inventory.v1 import inventory_pb2
from backorder.storefront.v1 import storefront_pb2
from google.protobuf import timestamp_pb2

from services.catalog_sync import domain, repository
from services.catalog_sync.bc_client import BigCommerceHttp, BigCommerceRejected, StoreApi
from services.catalog_sync.crypto import TokenCipher
from services.catalog_sync.settings import CatalogSettings
from services.catalog_sync.tables import products
from services.common.bus import IncomingMessage, PermanentError, TransientError, now_utc
from services.common.db import Database
from services.common.errors import NotFound, Unauthenticated, Unavailable, ValidationFailed

log = logging.getLogger(__name__)

INSTALLED_CACHE_S = 2.0
LOCK_STRIPES = 1024
PULL_CONCURRENCY = 4
ORDERS_PER_APPLY = 500  # InventoryService.ApplyOrders' limit per call
ORDERS_LIST_SPAN = 250  # ids one orders-list page (limit 250) always covers
ACTOR = "bigcommerce"


@dataclass
class Peers:
    """DeadlineStubs of the services catalog_sync calls."""

    inventory: Any
    billing: Any
    storefront: Any


def _timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(domain.as_utc(moment))  # type: ignore[arg-type]
    return stamp


def _rpc_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    return exc.code() if hasattr(exc, "code") else None


def _transient(exc: grpc.RpcError, what: str) -> TransientError:
    return TransientError(f"{what}: {_rpc_code(exc)} {exc.details() if hasattr(exc, 'details') else exc}")


@dataclass
class FetchedOrder:
    """An order and its lines as BigCommerce returned them."""

    order_id: int
    order: dict[str, Any]
    items: list[dict[str, Any]]
    api: StoreApi


@dataclass
class AppliedOrder:
    """An order inventory applied, with its backordered lines (for the staff note)."""

    fetched: FetchedOrder
    backordered: list[domain.NoteLine]


def _webhook_outcome(hook: domain.Webhook, result: Any) -> BaseException | None:
    """A reaction's result as the consumer's outcome: bad input and BigCommerce's refusals are
    permanent; a store uninstalled meanwhile drops the hook; anything else is retried."""
    if not isinstance(result, BaseException):
        return None
    if isinstance(result, ValidationFailed | BigCommerceRejected):
        return PermanentError(str(result))
    if isinstance(result, domain.StoreNotInstalled):
        log.info("dropping %s for store %s: uninstalled meanwhile", hook.scope, hook.store_hash)
        return None
    return result


class CatalogSync:
    def __init__(self, db: Database, settings: CatalogSettings, cipher: TokenCipher, http: BigCommerceHttp,
                 peers: Peers) -> None:
        self.db = db
        self.settings = settings
        self.cipher = cipher
        self.http = http
        self.peers = peers
        self._installed: dict[str, tuple[bool, float]] = {}
        self._apis: dict[str, StoreApi] = {}
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ stores

    def _forget(self, store_hash: str) -> None:
        self._installed.pop(store_hash, None)
        self._apis.pop(store_hash, None)

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

    async def store_api(self, store_hash: str) -> StoreApi:
        """The store's API client (token decrypted once per process); NotFound when not installed."""
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
        self._forget(store_hash)
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
                              details={"store_hash": store_hash, "status": str(_rpc_code(exc))}) from exc
        try:
            await self.peers.inventory.UpdateStoreSettings(inventory_pb2.UpdateStoreSettingsRequest(
                store_hash=store_hash, timezone=timezone))
        except grpc.RpcError as exc:
            log.warning("store %s: inventory did not take the time zone: %s", store_hash, _rpc_code(exc))
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

    async def uninstall(self, store_hash: str) -> datetime:
        """Stop processing the store now, drop its token; returns when its data will be purged."""
        domain.check_store_hash(store_hash)
        async with self.db.unit_of_work() as uow:
            found = await repository.mark_uninstalled(uow.conn, store_hash)
            await uow.commit()
        if not found:
            raise NotFound("unknown store", details={"store_hash": store_hash})
        self._forget(store_hash)
        self._installed[store_hash] = (False, time.monotonic() + INSTALLED_CACHE_S)
        try:
            await self.peers.billing.EndSubscription(billing_pb2.EndSubscriptionRequest(store_hash=store_hash))
        except grpc.RpcError as exc:
            log.warning("store %s: billing did not end the subscription: %s", store_hash, _rpc_code(exc))
        log.info("store %s uninstalled", store_hash)
        return now_utc() + timedelta(seconds=self.settings.purge_after_s)

    async def purge_expired(self) -> list[str]:
        """Delete the data of stores uninstalled longer than the grace period."""
        before = now_utc() - timedelta(seconds=self.settings.purge_after_s)
        async with self.db.read() as conn:
            expired = await repository.stores_to_purge(conn, before)
        for store_hash in expired:
            async with self.db.unit_of_work() as uow:
                await repository.purge_store(uow.conn, store_hash)
                await uow.commit()
            self._forget(store_hash)
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

    # ------------------------------------------------------------ catalog

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _pull_in_background(self, store_hash: str) -> None:
        try:
            await self.pull_catalog(store_hash)
        except Exception:  # noqa: BLE001 - the merchant can pull again on demand
            log.exception("store %s: catalog pull after install failed", store_hash)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def pull_catalog(self, store_hash: str) -> tuple[int, int]:
        """Full pull into the mirror, pages fetched concurrently, each page in its own short
        transaction; rows the pull did not see are removed at the end. Returns (pulled, removed)."""
        api = await self.store_api(store_hash)
        marker = str(uuid.uuid4())
        started = now_utc()
        pulled = 0

        async def save(rows: list[dict[str, Any]]) -> None:
            nonlocal pulled
            fields = [domain.mirror_fields(row) for row in rows]
            async with self.db.unit_of_work() as uow:
                await repository.upsert_products(uow.conn, self.db.dialect, store_hash, fields, marker=marker)
                await uow.commit()
            pulled += len(fields)

        first, pages = await api.products_page(1)
        await save(first)
        slots = asyncio.Semaphore(PULL_CONCURRENCY)

        async def fetch(page: int) -> None:
            async with slots:
                rows, _ = await api.products_page(page)
            await save(rows)

        await asyncio.gather(*(fetch(page) for page in range(2, pages + 1)))
        async with self.db.unit_of_work() as uow:
            removed = await repository.remove_unseen(uow.conn, store_hash, marker, started)
            await repository.update_store(uow.conn, store_hash, last_pull_at=now_utc())
            await uow.commit()
        log.info("store %s: pulled %d products (%d removed)", store_hash, pulled, removed)
        return pulled, removed

    async def list_products(self, store_hash: str, **filters: Any) -> tuple[list[Any], int]:
        async with self.db.read() as conn:
            return await repository.list_products(conn, store_hash, **filters)

    async def get_products(self, store_hash: str, product_ids: list[int]) -> dict[int, Any]:
        async with self.db.read() as conn:
            return await repository.get_products(conn, store_hash, product_ids)

    async def sync_inventory(self, store_hash: str, product_ids: list[int]) -> list[dict[str, Any]]:
        """Replace inventory's stock with BigCommerce's level where they differ (one ledger
        entry each, keyed by this run so a retried call of the same run applies once)."""
        api = await self.store_api(store_hash)
        assigned: dict[int, int] = {}
        page = 1
        while True:
            reply = await self.peers.inventory.ListProducts(inventory_pb2.ListProductsRequest(
                store_hash=store_hash, product_ids=product_ids, page=page, limit=250))
            assigned.update({p.product_id: p.stock for p in reply.products})
            if page * 250 >= reply.total or not reply.products:
                break
            page += 1
        ids = sorted(assigned)
        levels: dict[int, int] = {}
        for start in range(0, len(ids), 250):
            chunk = ids[start:start + 250]
            rows, _ = await api.products_page(1, 250, **{"id:in": ",".join(str(i) for i in chunk)})
            levels.update({int(r["id"]): int(r.get("inventory_level") or 0) for r in rows})
        run = uuid.uuid4().hex[:12]
        results = []
        for product_id in ids:
            if product_id not in levels:
                continue
            before, level = assigned[product_id], levels[product_id]
            changed = before != level
            if changed:
                await self.peers.inventory.SetStock(inventory_pb2.SetStockRequest(
                    store_hash=store_hash, product_id=product_id, stock=level,
                    source=inventory_pb2.STOCK_SOURCE_BIGCOMMERCE, actor="sync",
                    idempotency_key=f"sync:{run}:{product_id}"))
            results.append({"product_id": product_id, "bigcommerce_stock": level, "stock_before": before,
                            "changed": changed})
        return results

    # ------------------------------------------------------------ webhooks

    async def handle_webhooks(self, messages: list[IncomingMessage]) -> list[BaseException | None]:
        """The consumer's batch effect: one outcome per message (None = done; PermanentError
        = never retry; anything else = retry later). The batch's `store/order/created` hooks
        go through the batched order path; every other hook with a reaction runs on its own,
        all side by side."""
        outcomes: list[BaseException | None] = [None] * len(messages)
        handlers = self._webhook_handlers()
        orders: list[tuple[int, domain.Webhook]] = []
        others: list[tuple[int, domain.Webhook]] = []
        for index, message in enumerate(messages):
            try:
                hook = domain.parse_webhook(json.loads(message.data))
            except (ValueError, ValidationFailed) as exc:
                outcomes[index] = PermanentError(f"invalid webhook payload: {exc}")
                continue
            if not await self.is_installed(hook.store_hash):
                log.info("dropping %s for store %s: not installed", hook.scope, hook.store_hash)
                continue
            if hook.scope == "store/order/created":
                orders.append((index, hook))
            elif hook.scope in handlers:
                others.append((index, hook))
        singles = [handlers[hook.scope](hook) for _, hook in others]
        results = await asyncio.gather(self._orders_created([hook for _, hook in orders]), *singles,
                                       return_exceptions=True)
        order_results = results[0]
        if isinstance(order_results, BaseException):
            order_results = [order_results] * len(orders)
        for (index, hook), result in zip([*orders, *others], [*order_results, *results[1:]], strict=True):
            outcomes[index] = _webhook_outcome(hook, result)
        return outcomes

    # store/order/created goes through the batched order path (`_orders_created`).
    def _webhook_handlers(self) -> dict[str, Callable[[domain.Webhook], Awaitable[None]]]:
        return {
            "store/product/created": self._product_changed,
            "store/product/updated": self._product_changed,
            "store/product/deleted": self._product_deleted,
            "store/product/inventory/updated": self._inventory_updated,
            "store/order/statusUpdated": self._order_status_updated,
        }

    async def _product_changed(self, hook: domain.Webhook) -> None:
        product_id = domain.resource_id(hook)
        # Two changes of one product within one second give byte-identical payloads (same
        # hash), so JetStream keeps only the first: look at the product only once that second
        # is over, so the fresh state includes every change the lost twin stood for.
        wait = domain.same_second_wait(hook.created_at, time.time())
        if wait > 0:
            await asyncio.sleep(wait)
        # Read the mirror before fetching the product: a tracking-off write-back confirmed
        # before this read is certainly reflected in the fresh state fetched after it.
        async with self.db.read() as conn:
            before = await repository.get_product(conn, hook.store_hash, product_id)
        api = await self.store_api(hook.store_hash)
        fresh = await api.get_product(product_id)
        if fresh is None:
            return
        fields = domain.mirror_fields(fresh)
        if hook.scope == "store/product/updated" and before is not None and domain.tracking_switched_on(
                assigned=bool(before.assigned), tracking_off_at=before.tracking_off_at, assigned_at=before.assigned_at,
                fresh_tracking=fields["inventory_tracking"], hook_created=hook.created):
            fields = await self._tracking_switched_on(api, hook.store_hash, product_id, fields)
        async with self.db.unit_of_work() as uow:
            await repository.upsert_products(uow.conn, self.db.dialect, hook.store_hash, [fields], only_if_newer=True)
            await uow.commit()

    async def _tracking_switched_on(self, api: StoreApi, store_hash: str, product_id: int,
                                    fields: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = await self.peers.inventory.GetStoreSettings(
                inventory_pb2.GetStoreSettingsRequest(store_hash=store_hash))
        except grpc.RpcError as exc:
            raise _transient(exc, "inventory.GetStoreSettings") from exc
        if reply.settings.keep_assigned_when_tracking_enabled:
            updated = await api.update_product(product_id, {"inventory_tracking": "none"})
            log.info("store %s product %s: tracking switched on, kept assigned (tracking off again)",
                     store_hash, product_id)
            return domain.mirror_fields(updated) if updated else fields
        await self._unassign(store_hash, product_id)
        log.info("store %s product %s: tracking switched on in BigCommerce, unassigned", store_hash, product_id)
        return fields

    async def _unassign(self, store_hash: str, product_id: int) -> None:
        try:
            await self.peers.inventory.UnassignProducts(inventory_pb2.UnassignProductsRequest(
                store_hash=store_hash, product_ids=[product_id], restore_tracking=False, disable_product=False,
                actor=ACTOR))
        except grpc.RpcError as exc:
            if _rpc_code(exc) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                return  # not assigned (any more): nothing to undo
            raise _transient(exc, "inventory.UnassignProducts") from exc

    async def _product_deleted(self, hook: domain.Webhook) -> None:
        product_id = domain.resource_id(hook)
        await self._unassign(hook.store_hash, product_id)
        async with self.db.unit_of_work() as uow:
            await repository.delete_product(uow.conn, hook.store_hash, product_id)
            await uow.commit()

    async def _inventory_updated(self, hook: domain.Webhook) -> None:
        update = domain.inventory_update(hook)
        if not update.absolute:
            # Orders move BigCommerce's level relatively; only absolute changes replace our stock.
            async with self.db.unit_of_work() as uow:
                await repository.update_product(uow.conn, hook.store_hash, update.product_id,
                                                inventory_level=products.c.inventory_level + update.value)
                await uow.commit()
            return
        try:
            reply = await self.peers.inventory.GetProduct(inventory_pb2.GetProductRequest(
                store_hash=hook.store_hash, product_id=update.product_id, ledger_limit=1))
            assigned_at = reply.product.assigned_at.ToDatetime(tzinfo=UTC) if reply.product.HasField(
                "assigned_at") else None
            assigned = True
        except grpc.RpcError as exc:
            if _rpc_code(exc) not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise _transient(exc, "inventory.GetProduct") from exc
            assigned, assigned_at = False, None
        if assigned and not domain.webhook_is_before_assignment(hook.created, assigned_at):
            try:
                await self.peers.inventory.SetStock(inventory_pb2.SetStockRequest(
                    store_hash=hook.store_hash, product_id=update.product_id, stock=update.value,
                    source=inventory_pb2.STOCK_SOURCE_BIGCOMMERCE, actor=ACTOR,
                    idempotency_key=f"bc:{hook.hash}"))
            except grpc.RpcError as exc:
                code = _rpc_code(exc)
                if code not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
                                grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.INVALID_ARGUMENT):
                    raise _transient(exc, "inventory.SetStock") from exc
                log.info("store %s product %s: stock webhook not applied (%s)", hook.store_hash,
                         update.product_id, code)
        async with self.db.unit_of_work() as uow:
            await repository.update_product(uow.conn, hook.store_hash, update.product_id,
                                            inventory_level=update.value)
            await uow.commit()

    async def _orders_created(self, hooks: list[domain.Webhook]) -> list[BaseException | None]:
        """A batch of new orders: each order and its lines fetched (all side by side), one
        mirror read per store, one inventory call for all the orders, one note rendering
        call per store, then each order's staff notes written. One outcome per hook."""
        if not hooks:
            return []
        listed = await self._list_orders(hooks)
        fetched = await asyncio.gather(*(self._fetch_order(hook, listed.get((hook.store_hash, domain.resource_id(hook))))
                                         for hook in hooks), return_exceptions=True)
        wanted: dict[str, set[int]] = defaultdict(set)
        for hook, got in zip(hooks, fetched, strict=True):
            if isinstance(got, FetchedOrder):
                wanted[hook.store_hash].update(int(item.get("product_id") or 0) for item in got.items)
        mirrors: dict[str, dict[int, Any]] = {}
        async with self.db.read() as conn:
            for store_hash, product_ids in wanted.items():
                mirrors[store_hash] = await repository.get_products(conn, store_hash, sorted(product_ids))
        applied = await self._apply_orders(hooks, fetched, mirrors)
        notes = await self._render_notes([(hook, result) for hook, result in zip(hooks, applied, strict=True)
                                          if isinstance(result, AppliedOrder)])
        outcomes = [result if isinstance(result, BaseException) else None for result in applied]
        noted = [(index, result) for index, result in enumerate(applied)
                 if isinstance(result, AppliedOrder) and notes.get(id(result))]
        written = await asyncio.gather(*(self._write_note(result, notes[id(result)]) for _, result in noted),
                                       return_exceptions=True)
        for (index, _), result in zip(noted, written, strict=True):
            outcomes[index] = result if isinstance(result, BaseException) else None
        return outcomes

    async def _list_orders(self, hooks: list[domain.Webhook]) -> dict[tuple[str, int], dict[str, Any]]:
        """The batch's orders read through the orders list, one request per run of nearby ids
        (new orders' ids are close together) instead of one per order; keyed (store, id).
        Best effort: an order the list does not return (or a list that fails) is read alone."""
        by_store: dict[str, set[int]] = defaultdict(set)
        for hook in hooks:
            by_store[hook.store_hash].add(domain.resource_id(hook))
        ranges = [(store_hash, first, last) for store_hash, ids in by_store.items()
                  for first, last in domain.id_runs(sorted(ids), span=ORDERS_LIST_SPAN)]

        async def read(store_hash: str, first: int, last: int) -> list[tuple[tuple[str, int], dict[str, Any]]]:
            try:
                api = await self.store_api(store_hash)
                orders = await api.orders_between(first, last)
            except Exception as exc:  # noqa: BLE001 - the orders are then read one by one
                log.info("store %s: orders %s-%s not listed (%s); reading them one by one", store_hash, first, last,
                         exc)
                return []
            return [((store_hash, int(order["id"])), order) for order in orders if isinstance(order, dict)]

        found = await asyncio.gather(*(read(*r) for r in ranges))
        return dict(pair for pairs in found for pair in pairs)

    async def _fetch_order(self, hook: domain.Webhook, listed: dict[str, Any] | None = None) -> FetchedOrder | None:
        order_id = domain.resource_id(hook)
        api = await self.store_api(hook.store_hash)
        if listed is not None:
            return FetchedOrder(order_id, listed, await self._order_items(api, order_id), api)
        # The order and its lines are independent reads: fetch them side by side.
        order, items = await asyncio.gather(api.get_order(order_id), self._order_items(api, order_id))
        if order is None:
            log.warning("store %s: order %s of a webhook no longer exists", hook.store_hash, order_id)
            return None
        return FetchedOrder(order_id, order, items, api)

    async def _apply_orders(self, hooks: list[domain.Webhook], fetched: list[Any],
                            mirrors: dict[str, dict[int, Any]]) -> list[Any]:
        """One ApplyOrders call for the fetched orders with lines of assigned products; per
        hook: an AppliedOrder (with backordered lines), None (nothing to apply or nothing
        backordered), or the exception (a fetch that failed, an order inventory refused)."""
        results: list[Any] = [got if isinstance(got, BaseException) else None for got in fetched]
        sent: list[tuple[int, FetchedOrder, dict[str, domain.OrderLine]]] = []
        requests = []
        for index, (hook, got) in enumerate(zip(hooks, fetched, strict=True)):
            if not isinstance(got, FetchedOrder):
                continue
            mirror = mirrors.get(hook.store_hash, {})
            known = {pid: {"name": row.name, "sku": row.sku, "category_ids": row.category_ids,
                           "brand_id": row.brand_id} for pid, row in mirror.items()}
            lines = domain.order_lines(got.items, known)
            if not lines:
                continue
            request = inventory_pb2.ApplyOrderRequest(
                store_hash=hook.store_hash, order_id=str(got.order_id),
                order_email=str((got.order.get("billing_address") or {}).get("email") or ""),
                lines=[inventory_pb2.OrderLine(line_id=line.line_id, product_id=line.product_id,
                                               quantity=line.quantity, name=line.name, sku=line.sku,
                                               category_ids=line.category_ids, brand_id=line.brand_id)
                       for line in lines])
            order_date = domain.parse_bc_time(got.order.get("date_created"))
            if order_date is not None:
                request.order_date.CopyFrom(_timestamp(order_date))
            requests.append(request)
            sent.append((index, got, {line.line_id: line for line in lines}))
        if not requests:
            return results

        async def apply(chunk: list[inventory_pb2.ApplyOrderRequest]) -> list[Any]:
            try:
                reply = await self.peers.inventory.ApplyOrders(inventory_pb2.ApplyOrdersRequest(orders=chunk))
                return list(reply.outcomes)
            except grpc.RpcError as exc:
                return [_transient(exc, "inventory.ApplyOrders")] * len(chunk)

        chunks = [requests[start:start + ORDERS_PER_APPLY] for start in range(0, len(requests), ORDERS_PER_APPLY)]
        outcomes = [outcome for replies in await asyncio.gather(*(apply(c) for c in chunks)) for outcome in replies]
        for (index, got, by_line), outcome in zip(sent, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                results[index] = outcome
                continue
            if outcome.HasField("error"):
                # Retried like a failed ApplyOrder call: a conflict or a refusal may clear up.
                results[index] = TransientError(f"inventory.ApplyOrders: order {got.order_id}: "
                                                f"{outcome.error.code}: {outcome.error.message}")
                continue
            backordered = [domain.NoteLine(by_line[r.line_id].name, by_line[r.line_id].sku, r.backordered_qty)
                           for r in outcome.applied.lines
                           if r.applied and r.backordered_qty > 0 and r.line_id in by_line]
            results[index] = AppliedOrder(got, backordered) if backordered else None
        return results

    async def _render_notes(self, orders: list[tuple[domain.Webhook, AppliedOrder]]) -> dict[int, str]:
        """The note of each applied order (keyed by id() of its AppliedOrder): one storefront
        call per store; the default note when the storefront does not answer."""
        by_store: dict[str, list[AppliedOrder]] = defaultdict(list)
        for hook, applied in orders:
            by_store[hook.store_hash].append(applied)

        async def render(store_hash: str, applied: list[AppliedOrder]) -> list[str]:
            try:
                reply = await self.peers.storefront.RenderOrderNotes(storefront_pb2.RenderOrderNotesRequest(
                    store_hash=store_hash, orders=[storefront_pb2.OrderNoteLines(lines=[
                        storefront_pb2.OrderNoteLine(name=line.name, sku=line.sku,
                                                     backordered_qty=line.backordered_qty)
                        for line in one.backordered]) for one in applied]))
                return [str(note) for note in reply.notes]
            except grpc.RpcError as exc:
                log.warning("store %s: storefront could not render order notes (%s); using the default",
                            store_hash, _rpc_code(exc))
                return [domain.default_order_note(one.backordered) for one in applied]

        stores = list(by_store)
        rendered = await asyncio.gather(*(render(store, by_store[store]) for store in stores))
        return {id(one): note for store, notes in zip(stores, rendered, strict=True)
                for one, note in zip(by_store[store], notes, strict=True)}

    @staticmethod
    async def _write_note(applied: AppliedOrder, note: str) -> None:
        fetched = applied.fetched
        notes = domain.staff_notes_with(fetched.order.get("staff_notes"), note)
        if notes is not None:
            await fetched.api.update_order(fetched.order_id, {"staff_notes": notes})

    @staticmethod
    async def _order_items(api: StoreApi, order_id: int) -> list[dict[str, Any]]:
        try:
            return [item async for item in api.order_products(order_id)]
        except BigCommerceRejected as exc:
            if (exc.details or {}).get("status") == 404:
                return []
            raise

    async def _order_status_updated(self, hook: domain.Webhook) -> None:
        reason = domain.returning_status(hook)
        if reason is None:
            return
        try:
            await self.peers.inventory.ReturnOrderLines(inventory_pb2.ReturnOrderLinesRequest(
                store_hash=hook.store_hash, order_id=str(domain.resource_id(hook)), reason=reason))
        except grpc.RpcError as exc:
            if _rpc_code(exc) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                return  # nothing of this order was applied
            raise _transient(exc, "inventory.ReturnOrderLines") from exc

    # ------------------------------------------------------------ inventory events

    async def handle_inventory_event(self, message: IncomingMessage) -> None:
        """Write one inventory event back to BigCommerce (tracking, availability).

        Serialised per product in this process (striped locks); the mirror remembers the
        occurrence time of what it applied, so a stale or replayed event changes nothing.
        """
        envelope = message.envelope
        assert envelope is not None
        payload_types = {
            "product.assigned": inventory_events_pb2.ProductAssigned,
            "product.unassigned": inventory_events_pb2.ProductUnassigned,
            "product.sold_out": inventory_events_pb2.ProductSoldOut,
            "product.back_in_stock": inventory_events_pb2.ProductBackInStock,
        }
        payload_type = payload_types.get(envelope.type)
        if payload_type is None:
            return
        payload: Any = message.unpack(payload_type)
        store_hash = envelope.store_hash
        product_id = int(payload.product.product_id)
        if not await self.is_installed(store_hash):
            return
        occurred = envelope.occurred_at.ToDatetime(tzinfo=UTC)
        async with self._locks[hash((store_hash, product_id)) % LOCK_STRIPES]:
            async with self.db.read() as conn:
                row = await repository.get_product(conn, store_hash, product_id)
            state = domain.MirrorState(
                assigned=bool(row.assigned) if row is not None else False,
                assignment_event_at=row.assignment_event_at if row is not None else None,
                availability_event_at=row.availability_event_at if row is not None else None)
            plan = domain.plan_writeback(
                envelope.type, occurred, state, status=payload.product.status,
                restore_tracking=bool(getattr(payload, "restore_tracking", False)),
                disable_product=bool(getattr(payload, "disable_product", False)),
                stock=int(getattr(payload, "stock", payload.product.stock)))
            if plan is None:
                return
            updated = None
            try:
                if plan.fields:
                    api = await self.store_api(store_hash)
                    updated = await api.update_product(product_id, plan.fields)
                    if updated is None:
                        log.info("store %s product %s: gone from BigCommerce, no write-back", store_hash, product_id)
                        return
            except domain.StoreNotInstalled:
                return
            except BigCommerceRejected as exc:
                raise PermanentError(str(exc)) from exc
            await self._record_writeback(store_hash, product_id, plan, updated)

    async def _record_writeback(self, store_hash: str, product_id: int, plan: domain.WritebackPlan,
                                updated: dict[str, Any] | None) -> None:
        changes: dict[str, Any] = {}
        if plan.assigned is not None:
            changes["assigned"] = plan.assigned
            changes["assignment_event_at"] = plan.assignment_event_at
            if plan.assigned:
                changes["assigned_at"] = plan.assignment_event_at
                changes["tracking_off_at"] = now_utc()
            else:
                changes["tracking_off_at"] = None
        if plan.availability_event_at is not None:
            changes["availability_event_at"] = plan.availability_event_at
        async with self.db.unit_of_work() as uow:
            if updated is not None:
                await repository.upsert_products(uow.conn, self.db.dialect, store_hash,
                                                 [domain.mirror_fields(updated)])
            if changes:
                await repository.update_product(uow.conn, store_hash, product_id, **changes)
            await uow.commit()

