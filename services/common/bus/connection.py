"""The platform's JetStream connection and streams: one NATS connection per process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js.api import StorageType, StreamConfig

log = logging.getLogger(__name__)

STREAM_EVENTS = "BACKORDER_EVENTS"
STREAM_WEBHOOKS = "BC_WEBHOOKS"
EVENTS_SUBJECTS = ["backorder.>"]
WEBHOOK_SUBJECTS = ["bc.webhooks.>"]
DUPLICATE_WINDOW_S = 120.0
MSG_ID_HEADER = "Nats-Msg-Id"


class EventBus:
    """One NATS connection per process, reconnecting forever."""

    def __init__(self, url: str, name: str, *, replicas: int = 1) -> None:
        self.url = url
        self.name = name
        # ensure_streams sets the streams' replicas, so every process must agree: a gateway
        # left at 1 would scale the R3 streams of a JetStream cluster down at each start.
        self.replicas = replicas
        self.nc: NATS | None = None
        self.js: Any = None
        self._state_listeners: list[Callable[[bool], None]] = []
        self._closing = False

    def on_connection_change(self, callback: Callable[[bool], None]) -> None:
        self._state_listeners.append(callback)

    def _set_state(self, up: bool) -> None:
        for callback in self._state_listeners:
            callback(up)

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self, *, timeout_s: float = 30.0) -> None:
        """Connect, retrying until `timeout_s` (the server may still be starting)."""

        async def disconnected() -> None:
            if self._closing:  # our own close: nothing to warn about
                log.info("nats connection closed")
            else:
                log.warning("nats disconnected")
            self._set_state(False)

        async def reconnected() -> None:
            log.info("nats reconnected")
            self._set_state(True)

        async def error(exc: Exception) -> None:
            log.debug("nats error: %s", exc)

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.nc = await nats.connect(
                    servers=[self.url],
                    name=self.name,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25,
                    connect_timeout=2,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=error,
                    allow_reconnect=True,
                )
                break
            except Exception as exc:  # noqa: BLE001 - any connect failure is retried until the deadline
                if time.monotonic() > deadline:
                    raise ConnectionError(f"cannot reach NATS at {self.url}: {exc}") from exc
                await asyncio.sleep(0.2)
        self.js = self.nc.jetstream(timeout=10)
        self._set_state(True)

    async def ensure_streams(self) -> None:
        """Create or update the platform's streams (file storage)."""
        for name, subjects, max_age in (
            (STREAM_EVENTS, EVENTS_SUBJECTS, 7 * 24 * 3600),
            (STREAM_WEBHOOKS, WEBHOOK_SUBJECTS, 7 * 24 * 3600),
        ):
            config = StreamConfig(
                name=name,
                subjects=subjects,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                duplicate_window=DUPLICATE_WINDOW_S,
                max_age=max_age,
            )
            try:
                await self.js.stream_info(name)
                await self.js.update_stream(config)
            except nats.js.errors.NotFoundError:
                await self.js.add_stream(config)

    async def publish(self, subject: str, data: bytes, msg_id: str, *, timeout: float = 5.0) -> Any:
        """Publish and wait for JetStream's ack (raises on timeout or no responders)."""
        return await self.js.publish(subject, data, timeout=timeout, headers={MSG_ID_HEADER: msg_id})

    async def close(self) -> None:
        self._closing = True
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
            with contextlib.suppress(Exception):
                await self.nc.close()

