"""catalog_sync's own settings (beyond ServiceSettings), read once at start-up.

Tests pass overrides through `ServiceSettings.extra` (same keys as the attributes here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.bigcommerce_webhooks import DEV_WEBHOOK_SECRET_KEY
from services.common.settings import Secret, ServiceSettings, env, peer_address, with_overrides


@dataclass(frozen=True)
class CatalogSettings:
    # BigCommerce's API root (…/stores/<hash>/v3) and login root (…/oauth2/token); the sandbox by default.
    bc_api_url: str
    bc_login_url: str
    bc_client_id: str
    bc_client_secret: Secret
    # Where BigCommerce reaches the gateway: hook destinations, the script src, redirect_uri.
    public_url: str
    webhook_secret_key: Secret
    # Comma-separated Fernet keys (first encrypts, all decrypt); empty = a key file in data_dir.
    token_encryption_keys: Secret
    purge_after_s: float
    purge_interval_s: float
    inventory_addr: str
    billing_addr: str
    storefront_addr: str
    webhook_concurrency: int
    webhook_batch: int
    event_concurrency: int
    # JetStream redelivers an unacked message (catalog_sync killed mid-batch) after this long.
    consumer_ack_wait_s: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CatalogSettings:
        return cls(
            bc_api_url=env("BACKORDER_BC_API_URL", "http://127.0.0.1:8100", environ=environ).rstrip("/"),
            bc_login_url=env("BACKORDER_BC_LOGIN_URL", "http://127.0.0.1:8100", environ=environ).rstrip("/"),
            bc_client_id=env("BACKORDER_BC_CLIENT_ID", "dev-client", environ=environ),
            bc_client_secret=env("BACKORDER_BC_CLIENT_SECRET", Secret("dev-secret"), Secret, environ=environ),
            public_url=env("BACKORDER_PUBLIC_URL", "http://127.0.0.1:8000", environ=environ).rstrip("/"),
            webhook_secret_key=env("BACKORDER_WEBHOOK_SECRET_KEY", Secret(DEV_WEBHOOK_SECRET_KEY), Secret,
                                   environ=environ),
            token_encryption_keys=env("BACKORDER_TOKEN_ENCRYPTION_KEYS", Secret(""), Secret, environ=environ),
            purge_after_s=env("BACKORDER_UNINSTALL_PURGE_AFTER_S", 30 * 24 * 3600.0, float, environ=environ),
            purge_interval_s=env("BACKORDER_UNINSTALL_PURGE_INTERVAL_S", 300.0, float, environ=environ),
            inventory_addr=peer_address("inventory", environ),
            billing_addr=peer_address("billing", environ),
            storefront_addr=peer_address("storefront", environ),
            webhook_concurrency=env("BACKORDER_CATALOG_WEBHOOK_CONCURRENCY", 512, int, environ=environ),
            webhook_batch=env("BACKORDER_CATALOG_WEBHOOK_BATCH", 64, int, environ=environ),
            event_concurrency=env("BACKORDER_CATALOG_EVENT_CONCURRENCY", 16, int, environ=environ),
            consumer_ack_wait_s=env("BACKORDER_CATALOG_ACK_WAIT_S", 30.0, float, environ=environ),
        )

    @classmethod
    def for_service(cls, settings: ServiceSettings, environ: Mapping[str, str] | None = None) -> CatalogSettings:
        """From the environment, with `settings.extra` overriding by attribute name."""
        return with_overrides(cls.from_env(environ), settings.extra,
                              secrets=frozenset({"bc_client_secret", "webhook_secret_key", "token_encryption_keys"}))
