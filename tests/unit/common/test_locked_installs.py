"""Installs cannot drift: every install comes from uv.lock, and the code generator is pinned.

A fresh clone on 2026-12-06 failed `make test` because grpcio-tools 1.85.4 was published inside
an open range and wrote different generated files. These pin the arrangement that prevents it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GENERATOR = {"grpcio-tools", "mypy-protobuf"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _locked_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {package["name"]: package.get("version", "") for package in lock["package"]}


def test_the_code_generator_is_a_dev_dependency_pinned_exactly():
    project = _pyproject()["project"]
    assert not GENERATOR & {_name(r) for r in project["dependencies"]}, "the runtime image needs no generator"
    dev = {_name(r): r for r in project["optional-dependencies"]["dev"]}
    for name in GENERATOR:
        assert re.fullmatch(rf"{name}==\d+(\.\d+)+", dev[name]), dev[name]


def test_gen_was_written_by_the_locked_generator():
    locked = _locked_versions()
    pinned = {_name(r): r.split("==")[1] for r in _pyproject()["project"]["optional-dependencies"]["dev"]
              if _name(r) in GENERATOR}
    assert {name: locked[name] for name in GENERATOR} == pinned
    stamps = {m for path in (ROOT / "gen").rglob("*_pb2_grpc.py")
              for m in re.findall(r"GRPC_GENERATED_VERSION = '([^']+)'", path.read_text())}
    assert stamps == {locked["grpcio-tools"]}
    # The generated modules refuse to import under an older grpcio; the runtime lock must satisfy them.
    assert tuple(map(int, locked["grpcio"].split("."))) >= tuple(map(int, locked["grpcio-tools"].split(".")))


def test_every_install_path_uses_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    installs = [line.strip() for line in makefile.splitlines()
                if not line.lstrip().startswith("#") and re.search(r"\b(pip|uv)\b.*\b(install|sync)\b", line)]
    assert installs, "the Makefile installs something"
    for line in installs:
        assert "--frozen" in line or "--require-hashes" in line, line
    assert "lock --check" in makefile, "make lint checks that uv.lock matches pyproject.toml"
    dockerfile = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    assert "uv export --frozen --no-dev" in dockerfile
    assert re.search(r"pip wheel --require-hashes .*-r /tmp/requirements.txt", dockerfile)
    assert "--require-hashes -r tools/requirements-uv.txt" in dockerfile
    bootstrap = (ROOT / "tools" / "requirements-uv.txt").read_text()
    assert re.search(r"^uv==[\d.]+ \\$", bootstrap, re.M) and "--hash=sha256:" in bootstrap
