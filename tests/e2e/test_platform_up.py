"""`backorder up`: the whole embedded platform as a newcomer runs it (real processes, real ports)."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest
from backorder.inventory.v1 import inventory_pb2, inventory_pb2_grpc

from tests.plugins.services import free_port

pytestmark = pytest.mark.services

SERVICES = ("inventory", "catalog_sync", "storefront", "billing")


def platform_env(data_dir: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BACKORDER_")}
    environ["BACKORDER_DATA_DIR"] = str(data_dir)
    for name in ("NATS", "GATEWAY", "SANDBOX"):
        environ[f"BACKORDER_{name}_PORT"] = str(free_port())
    for service in (*SERVICES, "inventory_erp"):
        environ[f"BACKORDER_{service.upper()}_GRPC_PORT"] = str(free_port())
    for service in SERVICES:
        environ[f"BACKORDER_{service.upper()}_METRICS_PORT"] = str(free_port())
    return environ


class Launched:
    def __init__(self, environ: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "backorder"), "up"], env=environ, cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, marker: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if marker in line:
                return
        raise AssertionError(f"{marker!r} not printed; output so far:\n{''.join(self.output)}")

    def children(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    status = (entry / "status").read_text()
                except OSError:
                    continue
                ppid = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
                if ppid == str(self.process.pid):
                    found.append(int(entry.name))
        return found

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def assert_logs_are_json_without_warnings(logs: Path) -> None:
    """Every line every process wrote (nats-server's and the sandbox's included) is one JSON
    record, and a start and a normal stop log no warning."""
    files = sorted(logs.glob("*.log"))
    assert {f.stem for f in files} >= {"nats", "sandbox", "inventory", "catalog_sync", "storefront", "billing",
                                       "gateway"}
    for log_file in files:
        for number, line in enumerate(log_file.read_text().splitlines(), 1):
            try:
                record = json.loads(line)
            except ValueError:
                raise AssertionError(f"{log_file.name}:{number} is not JSON: {line}") from None
            assert {"ts", "level", "service", "msg"} <= set(record), f"{log_file.name}:{number}: {line}"
            assert record["level"] in {"debug", "info"}, f"{log_file.name}:{number}: {line}"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state


def test_up_serves_every_service_keeps_data_and_stops_without_leftovers(tmp_path):
    environ = platform_env(tmp_path / ".backorder")
    gateway = f"http://127.0.0.1:{environ['BACKORDER_GATEWAY_PORT']}"
    inventory_address = f"127.0.0.1:{environ['BACKORDER_INVENTORY_GRPC_PORT']}"

    first = Launched(environ, tmp_path)
    first.wait_for("Press Ctrl-C to stop.")
    children = first.children()
    assert len(children) == 7  # nats, sandbox, four services, gateway
    health = httpx.get(f"{gateway}/healthz", timeout=5)
    assert health.status_code == 200, health.text
    assert health.json()["checks"] == {
        "inventory": "serving", "catalog_sync": "serving", "storefront": "serving",
        "billing": "serving", "nats": "connected",
    }
    with grpc.insecure_channel(inventory_address) as channel:
        stub = inventory_pb2_grpc.InventoryServiceStub(channel)
        stub.AssignProducts(inventory_pb2.AssignProductsRequest(
            store_hash="demo01", actor="test",
            items=[inventory_pb2.AssignItem(product_id=4242, name="Kept Mug", sku="KEPT-1", stock=3, threshold=5)],
        ), timeout=10)
    assert first.terminate() == 0
    assert [pid for pid in children if alive(pid)] == []
    assert_logs_are_json_without_warnings(Path(environ["BACKORDER_DATA_DIR"]) / "logs")

    second = Launched(environ, tmp_path)
    second.wait_for("Press Ctrl-C to stop.")
    try:
        with grpc.insecure_channel(inventory_address) as channel:
            stub = inventory_pb2_grpc.InventoryServiceStub(channel)
            kept = stub.GetProduct(inventory_pb2.GetProductRequest(store_hash="demo01", product_id=4242), timeout=10)
        assert kept.product.name == "Kept Mug"
        assert kept.product.stock == 3
    finally:
        children = second.children()
        assert second.terminate() == 0
    assert [pid for pid in children if alive(pid)] == []


def test_up_names_a_port_already_in_use(tmp_path):
    environ = platform_env(tmp_path / ".backorder")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(environ["BACKORDER_GATEWAY_PORT"])))
        holder.listen()
        result = subprocess.run([str(Path(sys.executable).parent / "backorder"), "up"], env=environ, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"port {environ['BACKORDER_GATEWAY_PORT']} (gateway) is already in use" in result.stderr
