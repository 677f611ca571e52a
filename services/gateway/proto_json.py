"""Proto -> JSON pieces both the admin API and the storefront API answer with."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.common.clock import iso_utc


def iso(ts: Any) -> str | None:
    """A protobuf Timestamp as ISO 8601 UTC ("…Z"); None when unset."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return iso_utc(ts.ToDatetime(tzinfo=dt.UTC))


def stock_json(product: Any) -> dict[str, Any]:
    """A product's stock figures (inventory's Product and storefront's ProductView share them);
    threshold and salable_qty None = unlimited."""
    return {
        "stock": product.stock,
        "threshold": product.threshold if product.HasField("threshold") else None,
        "salable_qty": product.salable_qty if product.HasField("salable_qty") else None,
        "incoming_stock": product.incoming_stock,
        "back_in_stock_date": product.back_in_stock_date or None,
    }
