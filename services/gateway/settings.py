"""Gateway settings (read once at start-up)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.bigcommerce_webhooks import DEV_WEBHOOK_SECRET_KEY
from services.common.settings import DEFAULT_NATS_URL, Secret, env, peer_address

PEERS = ("inventory", "catalog_sync", "storefront", "billing")


@dataclass(frozen=True)
class GatewaySettings:
    host: str
    port: int
    public_url: str
    nats_url: str
    nats_replicas: int
    bc_client_id: str
    bc_client_secret: Secret
    session_secret: Secret
    peers: Mapping[str, str]
    log_level: str
    # Webhook intake answers 503 after this long without a JetStream ack.
    publish_timeout_s: float
    # Storefront origins allowed by CORS ("*" = any storefront).
    storefront_cors_origins: tuple[str, ...]
    # Derives each store's X-Backorder-Hook-Token (the same key catalog_sync registers hooks with).
    webhook_secret_key: Secret
    # The storefront API's response cache (storefront_cache.py) and per-store token bucket (rate_limit.py).
    storefront_cache_ttl_s: float
    storefront_cache_max_entries: int
    storefront_rate_limit: float  # requests/s per store and gateway process; 0 = off
    storefront_rate_burst: float
    storefront_max_age_s: int  # browser caching of storefront answers (0 = always revalidate)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        port = env("BACKORDER_GATEWAY_PORT", 8000, int, environ=environ)
        host = env("BACKORDER_GATEWAY_HOST", "127.0.0.1", environ=environ)
        rate = env("BACKORDER_STOREFRONT_RATE_LIMIT", 200.0, float, environ=environ)
        return cls(
            host=host,
            port=port,
            public_url=env("BACKORDER_PUBLIC_URL", f"http://127.0.0.1:{port}", environ=environ).rstrip("/"),
            nats_url=env("BACKORDER_NATS_URL", DEFAULT_NATS_URL, environ=environ),
            nats_replicas=env("BACKORDER_NATS_REPLICAS", 1, int, environ=environ),
            bc_client_id=env("BACKORDER_BC_CLIENT_ID", "dev-client", environ=environ),
            bc_client_secret=env("BACKORDER_BC_CLIENT_SECRET", Secret("dev-secret"), Secret, environ=environ),
            session_secret=env("BACKORDER_SESSION_SECRET", Secret("dev-session-secret-change-me"), Secret,
                               environ=environ),
            peers={peer: peer_address(peer, environ) for peer in PEERS},
            log_level=env("BACKORDER_LOG_LEVEL", "INFO", environ=environ),
            publish_timeout_s=env("BACKORDER_WEBHOOK_PUBLISH_TIMEOUT_S", 5.0, float, environ=environ),
            storefront_cors_origins=tuple(
                o.strip() for o in env("BACKORDER_STOREFRONT_CORS_ORIGINS", "*", environ=environ).split(",") if o.strip()
            ),
            webhook_secret_key=env("BACKORDER_WEBHOOK_SECRET_KEY", Secret(DEV_WEBHOOK_SECRET_KEY), Secret,
                                   environ=environ),
            storefront_cache_ttl_s=env("BACKORDER_STOREFRONT_CACHE_TTL_S", 30.0, float, environ=environ),
            storefront_cache_max_entries=env("BACKORDER_STOREFRONT_CACHE_MAX_ENTRIES", 100_000, int, environ=environ),
            storefront_rate_limit=rate,
            storefront_rate_burst=env("BACKORDER_STOREFRONT_RATE_BURST", rate * 2, float, environ=environ),
            storefront_max_age_s=env("BACKORDER_STOREFRONT_MAX_AGE_S", 0, int, environ=environ),
        )
