"""Sandbox settings, read once from the environment at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 8100
    db_path: str = ".backorder/sandbox.db"
    app_url: str = "http://127.0.0.1:8000"
    client_id: str = "dev-client"
    client_secret: str = "dev-secret"
    # 1.0 = BigCommerce's real retry delays (60 s … 24 h); tests shrink them, e.g. 0.001.
    webhook_time_scale: float = 1.0
    seed_demo: bool = True
    demo_store_hash: str = "demo01"
    demo_token: str = "demo-owner-token"
    demo_timezone: str = "America/New_York"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxConfig:
        env = os.environ if environ is None else environ
        try:
            return cls(
                host=env.get("BACKORDER_SANDBOX_HOST", cls.host),
                port=int(env.get("BACKORDER_SANDBOX_PORT", cls.port)),
                db_path=env.get("BACKORDER_SANDBOX_DB", cls.db_path),
                app_url=env.get("BACKORDER_APP_URL", cls.app_url).rstrip("/"),
                client_id=env.get("BACKORDER_BC_CLIENT_ID", cls.client_id),
                client_secret=env.get("BACKORDER_BC_CLIENT_SECRET", cls.client_secret),
                webhook_time_scale=float(env.get("BACKORDER_SANDBOX_WEBHOOK_TIME_SCALE", cls.webhook_time_scale)),
                seed_demo=env.get("BACKORDER_SANDBOX_SEED_DEMO", "1") not in ("0", "false", "no"),
            )
        except ValueError as exc:
            raise SystemExit(f"invalid sandbox setting: {exc}") from exc

    def __repr__(self) -> str:
        # The client secret never prints.
        return (
            f"SandboxConfig(host={self.host!r}, port={self.port}, db_path={self.db_path!r}, "
            f"app_url={self.app_url!r}, client_id={self.client_id!r}, webhook_time_scale={self.webhook_time_scale})"
        )
