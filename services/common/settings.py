"""Settings read once from the environment at start-up.

Every service builds a frozen settings object with `env()`; a required variable that is
missing fails at start naming the variable. Secrets are wrapped in `Secret`, whose repr
and str never show the value, so a settings object can be logged whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
S = TypeVar("S")

_MISSING: Any = object()


class MissingSetting(RuntimeError):
    """A required environment variable is absent."""

    def __init__(self, name: str, help_text: str = "") -> None:
        super().__init__(f"missing required setting {name}" + (f": {help_text}" if help_text else ""))
        self.name = name


class InvalidSetting(RuntimeError):
    def __init__(self, name: str, value: str, reason: str) -> None:
        super().__init__(f"invalid setting {name}={value!r}: {reason}")
        self.name = name


class Secret:
    """A string that does not print."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def _to_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true/false")


def env(
    name: str,
    default: Any = _MISSING,
    cast: Callable[[str], T] | type[bool] = str,  # type: ignore[assignment]
    *,
    environ: Mapping[str, str] | None = None,
    help_text: str = "",
) -> Any:
    """Read `name` from the environment, cast it, or fail naming the variable."""
    source = os.environ if environ is None else environ
    raw = source.get(name)
    if raw is None or (raw == "" and default is not _MISSING):
        if default is _MISSING:
            raise MissingSetting(name, help_text)
        return default
    try:
        if cast is bool:
            return _to_bool(raw)
        return cast(raw)
    except (TypeError, ValueError) as exc:
        shown = "**********" if cast is Secret else raw
        raise InvalidSetting(name, shown, str(exc)) from exc


# Ports of the embedded default (API.md); every one is overridable.
DEFAULT_GRPC_PORTS = {
    "inventory": 50051,
    "catalog_sync": 50052,
    "storefront": 50053,
    "billing": 50054,
    "inventory_erp": 50055,
}
DEFAULT_METRICS_PORTS = {"inventory": 9151, "catalog_sync": 9152, "storefront": 9153, "billing": 9154}
DEFAULT_NATS_URL = "nats://127.0.0.1:4322"
DEFAULT_DATA_DIR = ".backorder"


def default_database_url(service: str, data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / (service + '.db')}"


def peer_address(peer: str, environ: Mapping[str, str] | None = None) -> str:
    """Address of a peer service: BACKORDER_<PEER>_GRPC_ADDR, else its embedded-default port."""
    return str(env(
        f"BACKORDER_{peer.upper()}_GRPC_ADDR",
        f"127.0.0.1:{DEFAULT_GRPC_PORTS[peer]}",
        environ=environ,
    ))


@dataclass(frozen=True)
class ServiceSettings:
    """What every gRPC service reads. Service-specific values live in `extra`."""

    service: str
    database_url: Secret
    nats_url: str
    grpc_host: str
    grpc_port: int
    metrics_port: int
    log_level: str
    data_dir: str
    shutdown_grace_s: float
    # Replicas of the JetStream streams ensure_streams provisions (3 on a cluster); every process must agree.
    nats_replicas: int = 1
    # Connections per process (plus as many overflow) on PostgreSQL.
    db_pool_size: int = 5
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        data_dir = env("BACKORDER_DATA_DIR", DEFAULT_DATA_DIR, environ=environ)
        return cls(
            service=service,
            database_url=env(
                "BACKORDER_DATABASE_URL",
                Secret(default_database_url(service, data_dir)),
                Secret,
                environ=environ,
            ),
            nats_url=env("BACKORDER_NATS_URL", DEFAULT_NATS_URL, environ=environ),
            grpc_host=env("BACKORDER_GRPC_HOST", "127.0.0.1", environ=environ),
            grpc_port=env("BACKORDER_GRPC_PORT", DEFAULT_GRPC_PORTS[service], int, environ=environ),
            metrics_port=env("BACKORDER_METRICS_PORT", DEFAULT_METRICS_PORTS[service], int, environ=environ),
            log_level=env("BACKORDER_LOG_LEVEL", "INFO", environ=environ),
            data_dir=data_dir,
            shutdown_grace_s=env("BACKORDER_SHUTDOWN_GRACE_S", 10.0, float, environ=environ),
            nats_replicas=env("BACKORDER_NATS_REPLICAS", 1, int, environ=environ),
            db_pool_size=env("BACKORDER_DB_POOL_SIZE", 5, int, environ=environ),
        )


def with_overrides(base: S, extra: Mapping[str, Any], *, secrets: frozenset[str] = frozenset()) -> S:
    """`base` (a frozen settings dataclass) with the `extra` keys that name its fields replaced.

    Tests configure a service through `ServiceSettings.extra` this way; keys that are not
    fields are left for whoever reads them. A plain string given for a secret field becomes a
    `Secret`.
    """
    known = {f.name for f in fields(base)}  # type: ignore[arg-type]
    changes = {key: Secret(value) if key in secrets and isinstance(value, str) else value
               for key, value in extra.items() if key in known}
    return replace(base, **changes)  # type: ignore[type-var]
