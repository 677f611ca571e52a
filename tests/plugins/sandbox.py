"""Pytest plugin: real BigCommerce sandboxes (sandbox/bigcommerce) for integration and browser tests.

Enable it with ``pytest_plugins = ["tests.plugins.sandbox"]`` in tests/conftest.py.

Each sandbox is the real Starlette app served by uvicorn on a free loopback port in a background
thread, with its own fresh SQLite file in a temp directory. Nothing is faked.

Fixtures
--------
``sandbox_factory`` (session) -> ``SandboxFactory``
    ``sandbox_factory(app_url=None, *, webhook_time_scale=0.001, client_id="dev-client",
    client_secret="dev-secret", seed_demo=False) -> SandboxServer`` starts a new sandbox.
    ``app_url`` is your app's base URL (the one serving /bc/auth, /bc/load and
    POST /webhooks/bigcommerce): the install handshake and signed-payload URLs point there.
    When your app can only start after the sandbox (it needs the sandbox URL), pass the app's URL
    per call instead: ``store.install(app_url=...)``, ``store.uninstall(app_url=...)``,
    ``store.signed_payload("load", app_url=...)``.
    Servers stop at the end of the session.
``sandbox_server`` (session) -> ``SandboxServer``
    One shared sandbox for the session (app_url = its own loopback inbox, webhook time scale 0.001).
``sandbox`` (function) -> ``SandboxStore``
    A fresh store with a unique hash on ``sandbox_server``, seeded with the demo catalog
    (brands, category tree, ~40 products, a few with variants). Use a store per test instead of
    cleaning up.
``serve_asgi`` (session) -> ``Callable[[ASGIApp], str]``
    Serve any ASGI app (e.g. a fake app gateway) on a free loopback port; returns its base URL.

``SandboxServer``: ``base_url`` (also the API and login base URL), ``app_url``, ``client_id``,
``client_secret``, ``create_store(store_hash=None, *, seed_demo=True, timezone="America/New_York")
-> SandboxStore``, ``control(method, path, json=None) -> Any`` for any /_sandbox control, and
``inbox_url(key)`` / ``inbox_requests(key)`` / ``configure_inbox(key, status=200, statuses=())`` for
a loopback webhook receiver that records requests and answers the statuses you script.

``SandboxStore``: ``store_hash``, ``token`` (the store owner's API token), ``api_base_url`` and
``login_base_url`` (both the sandbox origin; give them to your BigCommerce client settings),
``storefront_url`` (``{base}/s/{hash}``), ``client(**kwargs) -> TypedClient`` (fast test retries),
``api(method, path, **httpx_kwargs) -> httpx.Response``, ``install(app_url=None)``,
``uninstall(app_url=None)``, ``signed_payload(kind="load", **claims) -> str``,
``callback_url(kind="load", **claims) -> str`` (``{app_url}/bc/{kind}?signed_payload_jwt=…``),
``deliveries(**filters)``, ``wait_for_deliveries(predicate, timeout=10.0)``, ``replay(delivery_id)``,
``set_rate_limit(quota, window_ms=30000)``, ``fail_next(count, status=500, target="api", reset_ms=1000)``,
``enable_native_backorders(enabled=True)``, ``set_webhook_time_scale(scale)``, ``stats()``,
``reset_stats()``, ``generate_products(count, **options)``, ``set_inventory(product_id, level, variant_id=None)``.

All helpers are synchronous (the sandbox runs in its own thread), so they work from sync and async tests.
"""

from __future__ import annotations

import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from sandbox.bigcommerce.app import create_app
from sandbox.bigcommerce.config import SandboxConfig
from services.common.bigcommerce import RetryPolicy
from tests.plugins.bigcommerce_typed import TypedClient

FAST_RETRIES = RetryPolicy(max_retries=4, base_delay=0.01, max_delay=0.05, budget_seconds=2.0)


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll `condition` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        pause.wait(interval)


class LoopbackServer:
    """An ASGI app served by uvicorn in a daemon thread on a pre-bound loopback socket."""

    def __init__(self, app: Any):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def start(self) -> LoopbackServer:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), timeout=15)
        if not self.server.started:
            raise RuntimeError("server failed to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class SandboxStore:
    server: SandboxServer
    store_hash: str
    token: str

    @property
    def api_base_url(self) -> str:
        return self.server.base_url

    @property
    def login_base_url(self) -> str:
        return self.server.base_url

    @property
    def storefront_url(self) -> str:
        return f"{self.server.base_url}/s/{self.store_hash}"

    def client(self, **kwargs: Any) -> TypedClient:
        kwargs.setdefault("api_base_url", self.api_base_url)
        kwargs.setdefault("retry", FAST_RETRIES)
        return TypedClient(self.store_hash, kwargs.pop("token", self.token), **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, "Accept": "application/json", **kwargs.pop("headers", {})}
        return self.server.http.request(method, f"{self.api_base_url}/stores/{self.store_hash}{path}",
                                        headers=headers, **kwargs)

    def _control(self, method: str, path: str, json: Any = None) -> Any:
        return self.server.control(method, f"/stores/{self.store_hash}{path}", json)

    def install(self, app_url: str | None = None) -> dict[str, Any]:
        return self._control("POST", "/install", {"app_url": app_url} if app_url else {})

    def uninstall(self, app_url: str | None = None) -> dict[str, Any]:
        return self._control("POST", "/uninstall", {"app_url": app_url} if app_url else {})

    def signed_payload(self, kind: str = "load", **claims: Any) -> str:
        return self._control("POST", "/signed-payload", {"kind": kind, **claims})["signed_payload_jwt"]

    def callback_url(self, kind: str = "load", **claims: Any) -> str:
        return self._control("POST", "/signed-payload", {"kind": kind, **claims})["url"]

    def deliveries(self, **filters: Any) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        return self._control("GET", "/deliveries" + (f"?{query}" if query else ""))["data"]

    def wait_for_deliveries(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0,
                            **filters: Any) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            found = self.deliveries(**filters)
            return found if predicate(found) else None

        return wait_until(check, timeout)

    def replay(self, delivery_id: int) -> dict[str, Any]:
        return self.server.control("POST", f"/deliveries/{delivery_id}/replay")

    def set_rate_limit(self, quota: int | None, window_ms: int = 30_000) -> None:
        self._control("PUT", "/rate-limit", {"quota": quota, "window_ms": window_ms})

    def fail_next(self, count: int, status: int = 500, target: str = "api", reset_ms: int = 1000) -> None:
        self._control("POST", "/failures", {"target": target, "count": count, "status": status,
                                            "reset_ms": reset_ms})

    def enable_native_backorders(self, enabled: bool = True) -> None:
        self._control("PUT", "/native-backorders", {"enabled": enabled})

    def set_webhook_time_scale(self, scale: float | None) -> None:
        self._control("PUT", "/settings", {"webhook_time_scale": scale})

    def stats(self) -> dict[str, int]:
        return self._control("GET", "/stats")

    def reset_stats(self) -> None:
        self._control("DELETE", "/stats")

    def generate_products(self, count: int, **options: Any) -> dict[str, Any]:
        return self._control("POST", "/products/generate", {"count": count, **options})

    def set_inventory(self, product_id: int, level: int, variant_id: int | None = None) -> dict[str, Any]:
        return self._control("POST", f"/products/{product_id}/inventory",
                             {"inventory_level": level, "variant_id": variant_id})


@dataclass
class SandboxServer:
    config: SandboxConfig
    runner: LoopbackServer
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))

    @property
    def base_url(self) -> str:
        return self.runner.url

    @property
    def app_url(self) -> str:
        return self.config.app_url

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    def control(self, method: str, path: str, json: Any = None) -> Any:
        response = self.http.request(method, f"{self.base_url}/_sandbox{path}", json=json)
        if response.status_code >= 400:
            raise AssertionError(f"sandbox control {method} {path} failed: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def create_store(self, store_hash: str | None = None, *, seed_demo: bool = True,
                     timezone: str = "America/New_York") -> SandboxStore:
        created = self.control("POST", "/stores", {"store_hash": store_hash or "t" + secrets.token_hex(4),
                                                   "seed_demo": seed_demo, "timezone": timezone})
        return SandboxStore(self, created["store_hash"], created["access_token"])

    def inbox_url(self, key: str) -> str:
        return f"{self.base_url}/_sandbox/inbox/{key}"

    def inbox_requests(self, key: str) -> list[dict[str, Any]]:
        return self.control("GET", f"/inbox/{key}/requests")["requests"]

    def configure_inbox(self, key: str, status: int = 200, statuses: tuple[int, ...] | list[int] = ()) -> None:
        self.control("PUT", f"/inbox/{key}/config", {"status": status, "statuses": list(statuses)})

    def stop(self) -> None:
        self.runner.stop()
        self.http.close()


class SandboxFactory:
    def __init__(self, directory: Path):
        self.directory = directory
        self.servers: list[SandboxServer] = []

    def __call__(self, app_url: str | None = None, *, webhook_time_scale: float = 0.001,
                 client_id: str = "dev-client", client_secret: str = "dev-secret",
                 seed_demo: bool = False) -> SandboxServer:
        db_path = self.directory / f"sandbox-{len(self.servers)}-{secrets.token_hex(3)}.db"
        runner = LoopbackServer(None)
        # Without an app URL, callbacks go to the sandbox's own loopback inbox "app".
        config = SandboxConfig(db_path=str(db_path),
                               app_url=(app_url or f"{runner.url}/_sandbox/inbox/app").rstrip("/"),
                               client_id=client_id, client_secret=client_secret,
                               webhook_time_scale=webhook_time_scale, seed_demo=seed_demo)
        runner.server.config.app = create_app(config)
        runner.start()
        server = SandboxServer(config, runner)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="session")
def sandbox_factory() -> Iterator[SandboxFactory]:
    with tempfile.TemporaryDirectory(prefix="bc-sandbox-") as directory:
        factory = SandboxFactory(Path(directory))
        yield factory
        factory.stop_all()


@pytest.fixture(scope="session")
def sandbox_server(sandbox_factory: SandboxFactory) -> SandboxServer:
    return sandbox_factory()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxStore:
    return sandbox_server.create_store(seed_demo=True)


@pytest.fixture(scope="session")
def serve_asgi() -> Iterator[Callable[[Any], str]]:
    servers: list[LoopbackServer] = []

    def serve(app: Any) -> str:
        server = LoopbackServer(app).start()
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
async def close_bigcommerce_http_pool() -> Any:
    """The suite shares one event loop: close the process's BigCommerce HTTP pool once at
    the end (services close it when they stop; tests that call the client directly don't)."""
    yield
    from services.common.bigcommerce import close_shared_http_client

    await close_shared_http_client()
