"""inventory's own settings (beyond ServiceSettings), read once at start-up.

Tests pass overrides through `ServiceSettings.extra` (same keys as the attributes here);
objects that are not settings (a fake `entitlements`, a `today` clock) also come through
`extra` and are read by server.setup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from services.common.settings import DEFAULT_GRPC_PORTS, ServiceSettings, env, peer_address, with_overrides


@dataclass(frozen=True)
class InventorySettings:
    billing_addr: str
    # The partner listener for ErpInventoryService (None: the internal port only).
    erp_grpc_port: int | None
    # "" = the service's own BACKORDER_GRPC_HOST.
    erp_grpc_host: str
    # A verified ERP token is trusted this long, so a revoked one stops within it.
    erp_token_cache_s: float
    # How often StreamStockChanges looks for other replicas' writes (not an env var).
    erp_stream_poll_s: float
    receipt_interval_s: float
    order_batch_workers: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InventorySettings:
        return cls(
            billing_addr=peer_address("billing", environ),
            erp_grpc_port=env("BACKORDER_ERP_GRPC_PORT", DEFAULT_GRPC_PORTS["inventory_erp"], int, environ=environ),
            erp_grpc_host=env("BACKORDER_ERP_GRPC_HOST", "", environ=environ),
            erp_token_cache_s=env("BACKORDER_ERP_TOKEN_CACHE_S", 10.0, float, environ=environ),
            erp_stream_poll_s=1.0,
            receipt_interval_s=env("BACKORDER_RECEIPT_INTERVAL_S", 60.0, float, environ=environ),
            order_batch_workers=env("BACKORDER_ORDER_BATCH_WORKERS", 2, int, environ=environ),
        )

    @classmethod
    def for_service(cls, settings: ServiceSettings, environ: Mapping[str, str] | None = None) -> InventorySettings:
        """From the environment, with `settings.extra` overriding by attribute name; the ERP
        host defaults to the service's gRPC host."""
        base = cls.from_env(environ)
        merged = with_overrides(base, settings.extra)
        return replace(merged, billing_addr=merged.billing_addr or base.billing_addr,
                       erp_grpc_host=merged.erp_grpc_host or settings.grpc_host)
