"""Facts the manifests must agree with, read from the code itself (AST, no imports of services).

`settings_read_by(service)` walks the service package and every `services.*` module it
imports (transitively) and collects the BACKORDER_* environment variables read there:
`env("BACKORDER_X", …)`, `os.environ.get/[]`, `os.getenv`, `environ.get`, and the peer
addresses behind `peer_address("<peer>")` (BACKORDER_<PEER>_GRPC_ADDR). A variable read with
`cast=Secret` (or `Secret` as the third argument) is a secret. The scan is per module, not per
function, so a module that defines settings for several kinds of process (ServiceSettings in
services/common/settings.py) shows all of them: tests/unit/deploy/test_k8s_settings.py keeps a
short allow-list, with reasons, for what a service imports but does not read.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SERVICES_DIR = REPO / "services"
GRPC_SERVICES = ("inventory", "catalog_sync", "storefront", "billing")
ALL_SERVICES = (*GRPC_SERVICES, "gateway")
ENV_NAME = re.compile(r"^BACKORDER_[A-Z0-9_]+$")
ENV_READERS = {"env", "getenv", "get"}


@dataclass
class SettingsRead:
    names: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    # variable -> modules that read it (for failure messages)
    where: dict[str, set[str]] = field(default_factory=dict)


def module_path(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _module_name(path: Path) -> str:
    relative = path.relative_to(REPO).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, tree: ast.Module) -> set[str]:
    """`services.*` modules imported by the module at `path`."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("services.") and module_path(name) is not None}


def import_closure(service: str) -> list[Path]:
    """Every module file of services/<service>/ plus what they import from services.*, transitively."""
    start = sorted((SERVICES_DIR / service).rglob("*.py"))
    seen: dict[Path, None] = {}
    queue = list(start)
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen[path] = None
        tree = ast.parse(path.read_text(), filename=str(path))
        for module in _imports(path, tree):
            found = module_path(module)
            if found is not None and found not in seen:
                queue.append(found)
    return sorted(seen)


def _string_tuples(tree: ast.Module) -> list[tuple[str, ...]]:
    """Module-level tuples/lists of string constants (e.g. PEERS = ("inventory", …))."""
    tuples = []
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, (ast.Tuple, ast.List)) and value.elts and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts
        ):
            tuples.append(tuple(e.value for e in value.elts))
    return tuples


def _is_secret_cast(call: ast.Call) -> bool:
    candidates = list(call.args[2:3]) + [k.value for k in call.keywords if k.arg == "cast"]
    return any(isinstance(c, ast.Name) and c.id == "Secret" for c in candidates)


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def settings_in_module(path: Path) -> tuple[set[str], set[str]]:
    """(variables read, of which secrets) in one module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    secrets: set[str] = set()
    peer_sets = [t for t in _string_tuples(tree) if set(t) <= set(GRPC_SERVICES)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = _call_name(node)
            first = node.args[0] if node.args else None
            if called in ENV_READERS and isinstance(first, ast.Constant) and isinstance(first.value, str) \
                    and ENV_NAME.match(first.value):
                names.add(first.value)
                if _is_secret_cast(node):
                    secrets.add(first.value)
            elif called == "peer_address" and first is not None:
                if isinstance(first, ast.Constant):
                    peers: tuple[str, ...] = (first.value,)
                elif peer_sets:
                    peers = tuple(p for t in peer_sets for p in t)
                else:
                    raise AssertionError(f"{path}: peer_address() with an argument the scan cannot resolve")
                names.update(f"BACKORDER_{p.upper()}_GRPC_ADDR" for p in peers)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str) and ENV_NAME.match(node.slice.value) \
                and isinstance(node.value, (ast.Name, ast.Attribute)) \
                and (getattr(node.value, "id", "") == "environ" or getattr(node.value, "attr", "") == "environ") \
                and isinstance(node.ctx, ast.Load):
            names.add(node.slice.value)
    return names, secrets


def settings_read_by(service: str) -> SettingsRead:
    result = SettingsRead()
    for path in import_closure(service):
        names, secrets = settings_in_module(path)
        result.names |= names
        result.secrets |= secrets
        for name in names:
            result.where.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return result


def module_constants(module: str) -> dict[str, object]:
    """Module-level constants (ints, strings, tuples, dicts of literals) without importing it."""
    path = module_path(module)
    assert path is not None, module
    constants: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return constants
