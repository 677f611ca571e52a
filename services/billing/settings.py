"""billing's own settings (beyond ServiceSettings), read once at start-up.

    BACKORDER_BILLING_PLANS_JSON            the plan catalogue (default: domain.DEFAULT_PLANS),
                                            validated here: InvalidPlanConfig names plan and field
    BACKORDER_BILLING_SCHEDULER_INTERVAL_S  seconds between renewal passes (default 60)
    BACKORDER_BILLING_PROVIDER              none (default) | unified; `unified` requires
                                            BACKORDER_BC_PARTNER_ACCOUNT_UUID, BACKORDER_BC_ACCOUNT_TOKEN
                                            (secret) and BACKORDER_BC_APP_ID; BACKORDER_BC_API_URL
                                            defaults to https://api.bigcommerce.com
    BACKORDER_LOG_LEVEL                     for `backorder billing …` commands (default WARNING)

Tests pass overrides through `ServiceSettings.extra` (same keys as the attributes here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.billing import domain
from services.common.settings import InvalidSetting, Secret, ServiceSettings, env, with_overrides

PROVIDERS = ("none", "unified")


@dataclass(frozen=True)
class ProviderSettings:
    """Which payment provider bills the merchant, and how to reach BigCommerce's Unified Billing."""

    kind: str = "none"
    api_base: str = "https://api.bigcommerce.com"
    partner_account_uuid: str = ""
    account_token: Secret = Secret("")
    app_id: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProviderSettings:
        kind = env("BACKORDER_BILLING_PROVIDER", "none", environ=environ).strip().lower()
        if kind not in PROVIDERS:
            raise InvalidSetting("BACKORDER_BILLING_PROVIDER", kind, "expected none or unified")
        if kind == "none":
            return cls()
        return cls(
            kind=kind,
            api_base=env("BACKORDER_BC_API_URL", cls.api_base, environ=environ),
            partner_account_uuid=env("BACKORDER_BC_PARTNER_ACCOUNT_UUID", environ=environ,
                                     help_text="the partner account that owns the app"),
            account_token=env("BACKORDER_BC_ACCOUNT_TOKEN", cast=Secret, environ=environ,
                              help_text="account-level API token with the account_checkouts_* scopes"),
            app_id=env("BACKORDER_BC_APP_ID", environ=environ, help_text="the app's id in the Partner Portal"),
        )


def catalogue_from_env(environ: Mapping[str, str] | None = None) -> domain.Catalogue:
    """The default catalogue, or BACKORDER_BILLING_PLANS_JSON (InvalidPlanConfig names plan and field)."""
    raw = env("BACKORDER_BILLING_PLANS_JSON", "", environ=environ)
    if not raw.strip():
        return domain.Catalogue(domain.DEFAULT_PLANS)
    return domain.parse_plans_json(raw)


def cli_log_level(environ: Mapping[str, str] | None = None) -> str:
    """The log level of `backorder billing …` commands: quieter than the service's by default."""
    level: str = env("BACKORDER_LOG_LEVEL", "WARNING", environ=environ)
    return level


@dataclass(frozen=True)
class BillingSettings:
    catalogue: domain.Catalogue
    scheduler_interval_s: float
    provider: ProviderSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BillingSettings:
        return cls(
            catalogue=catalogue_from_env(environ),
            scheduler_interval_s=env("BACKORDER_BILLING_SCHEDULER_INTERVAL_S", 60.0, float, environ=environ),
            provider=ProviderSettings.from_env(environ),
        )

    @classmethod
    def for_service(cls, settings: ServiceSettings, environ: Mapping[str, str] | None = None) -> BillingSettings:
        """From the environment, with `settings.extra` overriding by attribute name."""
        return with_overrides(cls.from_env(environ), settings.extra)
