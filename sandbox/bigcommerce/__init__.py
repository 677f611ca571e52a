"""A BigCommerce store emulator: REST API, OAuth, webhooks and a Cornerstone-like storefront.

See README.md in this folder for what it serves, its controls and its deviations from BigCommerce.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.bigcommerce.config import SandboxConfig

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["SandboxConfig", "create_app"]


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """Build the Starlette app; imported lazily so `SandboxConfig` stays cheap to import."""
    from sandbox.bigcommerce.app import create_app as build

    return build(config)
