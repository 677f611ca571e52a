"""catalog_sync's durable consumers: BigCommerce webhooks and inventory's product events.

They differ from the shared Consumer in one way: the reaction (BigCommerce and gRPC
calls) runs *before* the inbox transaction, never inside it, so no database transaction
(and on SQLite no write lock) is held across a network call. The price is that a
reaction may run twice (crash after the effect, before the inbox commit; or two copies
of one delivery at once); every reaction is idempotent, so that changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats
from nats.aio.msg import Msg
from sqlalchemy import select

from services.catalog_sync.handlers import CatalogSync
from services.catalog_sync.tables import inbox
from services.common.bus import (
    CONSUMED,
    STREAM_EVENTS,
    STREAM_WEBHOOKS,
    Consumer,
    ConsumerSpec,
    IncomingMessage,
    PermanentError,
    decode_envelope,
    decode_raw,
    now_utc,
)
from services.common.db import UnitOfWork, insert_ignore

log = logging.getLogger(__name__)

WEBHOOKS_DURABLE = "catalog_sync_webhooks"
EVENTS_DURABLE = "catalog_sync_inventory_events"
INVENTORY_PRODUCT_SUBJECTS = ["backorder.*.inventory.product.>"]

Effect = Callable[[IncomingMessage], Awaitable[None]]


async def _no_transactional_work(_uow: UnitOfWork, _message: IncomingMessage) -> None:
    return None


class EffectFirstConsumer(Consumer):
    """Durable pull consumer: inbox check, effect, then the inbox row in a short transaction, ack.

    It fetches only as many messages as it has free slots: a fetched message's AckWait
    clock runs from delivery, so messages queued locally behind busy slots would be
    redelivered (and processed twice) under load.
    """

    def __init__(self, spec: ConsumerSpec, effect: Effect, *args: object, **kwargs: object) -> None:
        super().__init__(spec, *args, **kwargs)  # type: ignore[arg-type]
        self.effect = effect

    async def handle(self, msg: Msg) -> None:
        spec = self.spec
        try:
            incoming = spec.decode(msg)
        except PermanentError as exc:
            log.error("consumer %s: terminating undecodable message on %s: %s", spec.durable, msg.subject, exc)
            CONSUMED.labels(spec.durable, "poison").inc()
            await msg.term()
            return
        try:
            async with self.db.read() as conn:
                seen = (await conn.execute(select(self.inbox.c.message_id).where(
                    self.inbox.c.consumer == spec.durable,
                    self.inbox.c.message_id == incoming.message_id))).first()
            if seen is not None:
                CONSUMED.labels(spec.durable, "duplicate").inc()
            else:
                await self.effect(incoming)
                async with self.db.unit_of_work() as uow:
                    await uow.conn.execute(
                        insert_ignore(self.db.dialect, self.inbox, ["consumer", "message_id"]).values(
                            consumer=spec.durable, message_id=incoming.message_id, received_at=now_utc()))
                    await uow.commit()
                CONSUMED.labels(spec.durable, "applied").inc()
        except PermanentError as exc:
            log.error("consumer %s: terminating message %s: %s", spec.durable, incoming.message_id, exc)
            CONSUMED.labels(spec.durable, "poison").inc()
            await msg.term()
            return
        except Exception as exc:  # noqa: BLE001 - anything else is retried with backoff
            attempt = incoming.num_delivered
            delay = min(spec.backoff_max_s, spec.backoff_base_s * 2 ** min(attempt - 1, 10))
            level = logging.ERROR if attempt >= spec.max_deliver else logging.WARNING
            log.log(level, "consumer %s: message %s failed (attempt %d): %r; retry in %.1fs",
                    spec.durable, incoming.message_id, attempt, exc, delay)
            CONSUMED.labels(spec.durable, "retry").inc()
            with contextlib.suppress(Exception):
                await msg.nak(delay=delay)
            return
        await msg.ack()


    async def run(self) -> None:
        await self._subscribe()
        while not self._stopping.is_set():
            await self._slots.acquire()
            free = 1
            while free < self.spec.batch and not self._slots.locked():
                await self._slots.acquire()
                free += 1
            try:
                msgs = await self._subscription.fetch(batch=free, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                msgs = []
            except asyncio.CancelledError:
                for _ in range(free):
                    self._slots.release()
                raise
            except Exception as exc:  # noqa: BLE001 - connection trouble: wait for the reconnect
                log.warning("consumer %s: fetch failed: %s", self.spec.durable, exc)
                msgs = []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 0.5)
            for _ in range(free - len(msgs)):
                self._slots.release()
            for msg in msgs:
                task = asyncio.create_task(self._run_one(msg))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)


def webhook_spec(concurrency: int, ack_wait_s: float) -> ConsumerSpec:
    return ConsumerSpec(WEBHOOKS_DURABLE, STREAM_WEBHOOKS, ["bc.webhooks.>"], _no_transactional_work,
                        decode=decode_raw, batch=256, concurrency=concurrency, ack_wait_s=ack_wait_s,
                        backoff_base_s=0.5, backoff_max_s=60.0, max_deliver=100)


def events_spec(concurrency: int, ack_wait_s: float) -> ConsumerSpec:
    return ConsumerSpec(EVENTS_DURABLE, STREAM_EVENTS, INVENTORY_PRODUCT_SUBJECTS, _no_transactional_work,
                        decode=decode_envelope, batch=64, concurrency=concurrency, ack_wait_s=ack_wait_s,
                        backoff_base_s=0.5, backoff_max_s=60.0, max_deliver=100)


def build_consumers(app: CatalogSync, bus: object, db: object) -> list[EffectFirstConsumer]:
    settings = app.settings
    return [
        EffectFirstConsumer(webhook_spec(settings.webhook_concurrency, settings.consumer_ack_wait_s),
                            app.handle_webhook, bus, db, inbox),
        EffectFirstConsumer(events_spec(settings.event_concurrency, settings.consumer_ack_wait_s),
                            app.handle_inventory_event, bus, db, inbox),
    ]
