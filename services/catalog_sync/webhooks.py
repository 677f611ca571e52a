"""The webhook consumer's reaction to a batch of BigCommerce webhooks: each hook parsed,
dropped when its store is not installed, and handed to its use case (orders as one batch,
every other hook on its own, all side by side); one outcome per hook for the consumer."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.catalog_sync import domain
from services.catalog_sync.bc_client import BigCommerceRejected
from services.catalog_sync.orders import Orders
from services.catalog_sync.products import ProductHooks
from services.catalog_sync.store_access import StoreAccess
from services.common.bus import IncomingMessage, PermanentError
from services.common.errors import ValidationFailed

log = logging.getLogger(__name__)


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


class Webhooks:
    """The webhook consumer's batch effect and where each scope goes."""

    def __init__(self, stores: StoreAccess, orders: Orders, products: ProductHooks) -> None:
        self.stores = stores
        self.orders = orders
        # store/order/created goes through the batched order path (`Orders.created`).
        self._handlers: dict[str, Callable[[domain.Webhook], Awaitable[None]]] = {
            "store/product/created": products.changed,
            "store/product/updated": products.changed,
            "store/product/deleted": products.deleted,
            "store/product/inventory/updated": products.inventory_updated,
            "store/order/statusUpdated": orders.status_updated,
        }

    async def handle(self, messages: list[IncomingMessage]) -> list[BaseException | None]:
        """The consumer's batch effect: one outcome per message (None = done; PermanentError
        = never retry; anything else = retry later). The batch's `store/order/created` hooks
        go through the batched order path; every other hook with a reaction runs on its own,
        all side by side."""
        outcomes: list[BaseException | None] = [None] * len(messages)
        orders: list[tuple[int, domain.Webhook]] = []
        others: list[tuple[int, domain.Webhook]] = []
        for index, message in enumerate(messages):
            try:
                hook = domain.parse_webhook(json.loads(message.data))
            except (ValueError, ValidationFailed) as exc:
                outcomes[index] = PermanentError(f"invalid webhook payload: {exc}")
                continue
            if not await self.stores.is_installed(hook.store_hash):
                log.info("dropping %s for store %s: not installed", hook.scope, hook.store_hash)
                continue
            if hook.scope == "store/order/created":
                orders.append((index, hook))
            elif hook.scope in self._handlers:
                others.append((index, hook))
        singles = [self._handlers[hook.scope](hook) for _, hook in others]
        results: list[Any] = await asyncio.gather(self.orders.created([hook for _, hook in orders]), *singles,
                                                  return_exceptions=True)
        order_results: list[Any] = (
            [results[0]] * len(orders) if isinstance(results[0], BaseException) else results[0])
        for (index, hook), result in zip([*orders, *others], [*order_results, *results[1:]], strict=True):
            outcomes[index] = _webhook_outcome(hook, result)
        return outcomes

