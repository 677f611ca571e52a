"""Rendered overlays, shared by the manifest tests (rendered once per session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.kustomize_lite import key_of, pod_specs, render

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())


class Rendered:
    """One rendered overlay with lookups by kind and name."""

    def __init__(self, name: str, objects: list[dict[str, Any]]) -> None:
        self.name = name
        self.objects = objects
        self.by_key = {key_of(o): o for o in objects}

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The object of `kind` named `name` (a generated name matches without its hash suffix)."""
        generated = kind in {"ConfigMap", "Secret"}
        hits = [o for o in self.of_kind(kind)
                if o["metadata"]["name"] == name
                or (generated and o["metadata"]["name"].rsplit("-", 1)[0] == name)]
        assert len(hits) == 1, f"{self.name}: expected one {kind} {name}, found {len(hits)}"
        return hits[0]

    def workloads(self) -> list[dict[str, Any]]:
        return [o for o in self.objects if pod_specs(o)]

    @property
    def namespace(self) -> str:
        return self.of_kind("Namespace")[0]["metadata"]["name"]


@pytest.fixture(scope="session")
def overlays() -> dict[str, Rendered]:
    return {name: Rendered(name, render(K8S / "overlays" / name)) for name in OVERLAYS}


def container_env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {var["name"]: var for var in container.get("env", [])}
