"""Runs one service: migrate, connect, serve gRPC, relay the outbox, consume, stop cleanly.

A service module provides `SERVICE` (its name) and `async def setup(ctx)` that registers
its servicers, consumers and background loops on the `ServiceContext`. Tests drive
`ServiceRunner` directly (port 0, in-process); `backorder serve <svc>` uses `run_service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import grpc
from prometheus_client import start_http_server
from sqlalchemy import Table

from services.common import migrations
from services.common.bigcommerce import close_shared_http_client
from services.common.bus import Consumer, ConsumerSpec, EventBus, OutboxRelay
from services.common.db import Database
from services.common.grpc_server import GrpcServer
from services.common.logs import configure_logging
from services.common.settings import ServiceSettings, env

log = logging.getLogger(__name__)

Setup = Callable[["ServiceContext"], Awaitable[None]]


@dataclass
class ServiceContext:
    settings: ServiceSettings
    db: Database
    bus: EventBus
    grpc: GrpcServer
    relays: list[OutboxRelay] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)
    task_factories: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    shutdown_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    extra_listeners: list[tuple[str, int]] = field(default_factory=list)
    # Anything a service wants to hand to its tests (e.g. its handlers object).
    state: dict[str, Any] = field(default_factory=dict)

    def add_grpc(self, add_to_server: Callable[[Any, Any], None], servicer: Any, full_name: str) -> None:
        self.grpc.add(add_to_server, servicer, full_name)

    def add_relay(self, outbox: Table) -> OutboxRelay:
        relay = OutboxRelay(self.db, self.bus, outbox, self.settings.service)
        self.relays.append(relay)
        return relay

    def add_consumer(self, spec: ConsumerSpec, inbox: Table) -> Consumer:
        consumer = Consumer(spec, self.bus, self.db, inbox)
        self.consumers.append(consumer)
        return consumer

    def add_task(self, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A background loop started once the service is ready and cancelled at stop."""
        self.task_factories.append(factory)

    def on_shutdown(self, hook: Callable[[], Awaitable[None]]) -> None:
        self.shutdown_hooks.append(hook)


class ServiceRunner:
    def __init__(self, settings: ServiceSettings, setup: Setup, *,
                 interceptors: list[grpc.aio.ServerInterceptor] | None = None,
                 migrate: bool = True) -> None:
        self.settings = settings
        self.setup = setup
        self.migrate = migrate
        self.grpc = GrpcServer(interceptors or [])
        self.db: Database | None = None
        self.bus: EventBus | None = None
        self.ctx: ServiceContext | None = None
        self.port: int | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._health_updates: set[asyncio.Task[None]] = set()

    async def start(self) -> ServiceContext:
        settings = self.settings
        url = settings.database_url.reveal()
        if self.migrate:
            await asyncio.to_thread(migrations.upgrade, settings.service, url)
        self.db = Database(url, pool_size=settings.db_pool_size)
        self.bus = EventBus(settings.nats_url, f"backorder-{settings.service}", replicas=settings.nats_replicas)
        ctx = ServiceContext(settings, self.db, self.bus, self.grpc)
        self.ctx = ctx
        await self.setup(ctx)
        self.port = self.grpc.bind(settings.grpc_host, settings.grpc_port)
        for host, port in ctx.extra_listeners:
            self.grpc.bind(host, port)
        await self.grpc.start()
        await self.db.ping()
        await self.bus.connect()
        await self.bus.ensure_streams()
        loop = asyncio.get_running_loop()

        def follow_nats(up: bool) -> None:
            # Keep a reference: the loop holds tasks weakly, so an unreferenced one may vanish.
            task = loop.create_task(self.grpc.set_serving(up))
            self._health_updates.add(task)
            task.add_done_callback(self._health_updates.discard)

        self.bus.on_connection_change(follow_nats)
        for relay in ctx.relays:
            self._tasks.append(asyncio.create_task(relay.run(), name=f"relay-{settings.service}"))
        for consumer in ctx.consumers:
            self._tasks.append(asyncio.create_task(consumer.run(), name=f"consumer-{consumer.spec.durable}"))
        for factory in ctx.task_factories:
            self._tasks.append(asyncio.create_task(factory()))
        await self.grpc.set_serving(True)
        log.info("%s serving on %s:%s", settings.service, settings.grpc_host, self.port)
        return ctx

    async def stop(self) -> None:
        """Stop taking calls, finish in-flight work, drain consumers, close connections; each
        step waits at most the shutdown grace period."""
        grace = self.settings.shutdown_grace_s
        await self.grpc.stop(grace)
        if self.ctx is not None:
            for relay in self.ctx.relays:
                relay.stop()
            # Bounded like Kubernetes' grace period: a handler stuck past it is cancelled, and its
            # message, never acked, is redelivered to whoever runs next.
            drains = asyncio.gather(*(c.drain() for c in self.ctx.consumers), return_exceptions=True)
            try:
                await asyncio.wait_for(drains, grace)
            except TimeoutError:
                log.warning("%s: consumers still busy after %.1f s; stopping them (unacked messages are "
                            "redelivered)", self.settings.service, grace)
            for hook in self.ctx.shutdown_hooks:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(hook(), grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.bus is not None:
            await self.bus.close()
        if self.db is not None:
            await self.db.dispose()
        # The process's BigCommerce HTTP pool (opened on first use; a later user opens it again).
        await close_shared_http_client()
        log.info("%s stopped", self.settings.service)


# Young-generation collections every GC_YOUNG_THRESHOLD net allocations instead of
# CPython's 700: a service allocates short-lived objects per call and per message, and the
# collections (with the older generations they trigger) were about a tenth of the order
# path's CPU. Cycles are still collected, only less often.
GC_YOUNG_THRESHOLD = 20_000


def tune_gc_for_serving() -> None:
    """Once the service is up: move what start-up allocated (modules, protobuf descriptors,
    compiled statements) out of the collector's sight, and collect the young generation
    less often. Process-wide: called by the entry point, not by ServiceRunner (tests run
    many services in one process)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def run_service(service: str, setup: Setup, *, interceptors: list[grpc.aio.ServerInterceptor] | None = None) -> None:
    """Entry point of `backorder serve <service>`: runs until SIGTERM/SIGINT."""
    settings = ServiceSettings.from_env(service)
    configure_logging(service, settings.log_level)
    if settings.metrics_port > 0:
        start_http_server(settings.metrics_port, addr=settings.grpc_host)

    async def main() -> None:
        runner = ServiceRunner(settings, setup, interceptors=interceptors,
                               migrate=env("BACKORDER_MIGRATE_ON_START", True, bool))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await runner.start()
        tune_gc_for_serving()
        await stop.wait()
        await runner.stop()

    asyncio.run(main())
