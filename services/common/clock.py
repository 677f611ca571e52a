"""Time in UTC, one way everywhere.

Every timestamp the platform stores or sends is an aware UTC datetime. SQLite hands naive
datetimes back (they were written in UTC), so readers pass them through `as_utc`.
"""

from __future__ import annotations

import datetime as dt
from typing import overload


def utcnow() -> dt.datetime:
    """Now, as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


@overload
def as_utc(value: dt.datetime) -> dt.datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime: a naive one is taken as UTC, an aware one is converted."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def iso_utc(value: dt.datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z` (the admin API's timestamps); None stays None."""
    if value is None:
        return None
    return as_utc(value).isoformat().replace("+00:00", "Z")
