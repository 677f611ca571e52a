"""Facts the manifests must agree with, read from the code itself (AST, no imports of services).

`settings_read_by(service)` walks the service package and what it uses from other `services.*`
modules (transitively; see `import_closure`) and collects the BACKORDER_* environment
variables read there:
`env("BACKORDER_X", …)`, `os.environ.get/[]`, `os.getenv`, `environ.get`, and the peer
addresses behind `peer_address("<peer>")` (BACKORDER_<PEER>_GRPC_ADDR). A variable read with
`cast=Secret` (or `Secret` as the third argument) is a secret. The scan is per definition, not
per call path, so a class that reads settings for several kinds of process shows all of them:
tests/unit/deploy/test_k8s_settings.py keeps a short allow-list, with reasons, for what a
service imports but does not read.
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


def _package_of(path: Path) -> str:
    return _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]


def _referenced(nodes: list[ast.AST]) -> set[str]:
    """Names used (not imported) in `nodes`."""
    used: set[str] = set()
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Name):
                used.add(node.id)
    return used


def _imports(path: Path, nodes: list[ast.AST], whole: bool) -> list[tuple[str, set[str] | None]]:
    """`services.*` modules imported inside `nodes`: (module, imported names, or None for all of
    it). In a slice of a module (`whole` False) an import counts only for the names the slice uses."""
    package = _package_of(path)
    used = None if whole else _referenced(nodes)
    found: list[tuple[str, set[str] | None]] = []
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Import):
                found.extend((alias.name, None) for alias in node.names
                             if used is None or (alias.asname or alias.name).split(".")[0] in used)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                names: set[str] = set()
                for alias in node.names:
                    if used is not None and (alias.asname or alias.name) not in used:
                        continue
                    submodule = f"{base}.{alias.name}"
                    if alias.name != "*" and module_path(submodule) is not None and \
                            module_path(submodule) != module_path(base):
                        found.append((submodule, None))
                    elif alias.name == "*":
                        found.append((base, None))
                    else:
                        names.add(alias.name)
                if names:
                    found.append((base, names))
    return [(m, n) for m, n in found if m.startswith("services") and module_path(m) is not None]


_TREES: dict[Path, ast.Module] = {}


def _tree(path: Path) -> ast.Module:
    if path not in _TREES:
        _TREES[path] = ast.parse(path.read_text(), filename=str(path))
    return _TREES[path]


DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _definitions(tree: ast.Module) -> dict[str, ast.AST]:
    return {node.name: node for node in tree.body if isinstance(node, DEFINITIONS)}


def _slice(tree: ast.Module, names: set[str] | None) -> list[ast.AST]:
    """The parts of a module that run when `names` are used: its top-level statements other
    than definitions, plus the requested definitions and the module's own definitions they
    refer to (transitively). None = the whole module."""
    if names is None:
        return [tree]
    definitions = _definitions(tree)
    nodes: list[ast.AST] = [n for n in tree.body if not isinstance(n, DEFINITIONS)]
    wanted = [n for n in names if n in definitions]
    taken: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in taken:
            continue
        taken.add(name)
        nodes.append(definitions[name])
        for node in ast.walk(definitions[name]):
            if isinstance(node, ast.Name) and node.id in definitions and node.id not in taken:
                wanted.append(node.id)
    return nodes


def import_closure(service: str) -> dict[Path, list[ast.AST]]:
    """The code of services/<service>/ and what it uses from other `services.*` modules.

    The service's own modules count whole; from another module only the names imported (with
    the definitions of that module they reach) and its top-level statements count, so that
    importing a constant from a module does not count the settings its functions read.
    """
    requested: dict[Path, set[str] | None] = {}
    queue: list[tuple[Path, set[str] | None]] = [(p, None) for p in sorted((SERVICES_DIR / service).rglob("*.py"))]
    while queue:
        path, names = queue.pop()
        if path in requested:
            previous = requested[path]
            if previous is None or (names is not None and names <= previous):
                continue
            names = None if names is None else previous | names
        requested[path] = names
        nodes = _slice(_tree(path), names)
        for module, imported in _imports(path, nodes, whole=names is None):
            found = module_path(module)
            if found is not None:
                queue.append((found, imported))
    return {path: _slice(_tree(path), names) for path, names in sorted(requested.items())}


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


def settings_in_module(path: Path, nodes: list[ast.AST] | None = None) -> tuple[set[str], set[str]]:
    """(variables read, of which secrets) in one module, or in the given parts of it."""
    tree = _tree(path)
    names: set[str] = set()
    secrets: set[str] = set()
    peer_sets = [t for t in _string_tuples(tree) if set(t) <= set(GRPC_SERVICES)]
    for node in (n for root in (nodes or [tree]) for n in ast.walk(root)):
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
    for path, nodes in import_closure(service).items():
        names, secrets = settings_in_module(path, nodes)
        result.names |= names
        result.secrets |= secrets
        for name in names:
            result.where.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return result
