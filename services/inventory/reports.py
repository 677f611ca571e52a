"""The backorder report: filtered pages of backordered order lines, and its CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

from services.common.clock import as_utc
from services.common.text import neutralise_csv_cell
from services.inventory import domain, repository, store_settings
from services.inventory.changes import Transactions

REPORT_COLUMNS = ["product_name", "sku", "purchased_qty", "backordered_qty", "order_id", "order_email", "order_date",
                  "category_ids", "brand_id"]


def report_csv_row(row: Any, zone: ZoneInfo) -> list[Any]:
    return [row.product_name, row.sku, row.purchased_qty, row.backordered_qty, row.order_id, row.order_email,
            local_time(row.order_date, zone).isoformat(),
            " ".join(str(c) for c in domain.category_ids_from_key(row.category_key)), row.brand_id or ""]


def local_time(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return as_utc(value).astimezone(zone)


class Reports:
    def __init__(self, tx: Transactions) -> None:
        self.tx = tx

    async def _filter(self, store_hash: str, *, q: str, from_date: str, to_date: str, category_id: int,
                      brand_id: int) -> tuple[list[Any], ZoneInfo]:
        domain.check_store_hash(store_hash)
        errors: list[dict[str, Any]] = []
        start_day = domain.check_date(errors, None, "from", from_date)
        end_day = domain.check_date(errors, None, "to", to_date)
        if start_day and end_day and end_day < start_day:
            errors.append(domain.field_error(None, "to", "out_of_range", "must not be before from"))
        domain.raise_if_errors(errors)
        async with self.tx.db.read() as conn:
            settings = await repository.get_settings(conn, store_hash)
        zone = store_settings.zone(settings.timezone)
        # Bounds in UTC: SQLite stores timestamps as UTC text without an offset.
        start = dt.datetime.combine(start_day, dt.time(), zone).astimezone(dt.UTC) if start_day else None
        end = (dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
               if end_day else None)
        conditions = repository.report_conditions(store_hash, q=q, start=start, end=end, category_id=category_id,
                                                  brand_id=brand_id)
        return conditions, zone

    async def list_rows(self, store_hash: str, *, q: str = "", from_date: str = "", to_date: str = "",
                        category_id: int = 0, brand_id: int = 0, page: int = 1, limit: int = 50
                        ) -> tuple[list[Any], int, ZoneInfo, int, int]:
        conditions, zone = await self._filter(store_hash, q=q, from_date=from_date, to_date=to_date,
                                              category_id=category_id, brand_id=brand_id)
        page, limit = domain.paging(page, limit, 500)
        async with self.tx.db.read() as conn:
            rows, total = await repository.list_report(conn, conditions, (page - 1) * limit, limit)
        return rows, total, zone, page, limit

    async def export(self, store_hash: str, *, q: str = "", from_date: str = "", to_date: str = "",
                     category_id: int = 0, brand_id: int = 0, page_size: int = 1000) -> AsyncIterator[bytes]:
        """CSV chunks: the header, then one chunk per page of rows (formula cells neutralised)."""
        conditions, zone = await self._filter(store_hash, q=q, from_date=from_date, to_date=to_date,
                                              category_id=category_id, brand_id=brand_id)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(REPORT_COLUMNS)
        yield buffer.getvalue().encode()
        after = 0
        while True:
            async with self.tx.db.read() as conn:
                rows = await repository.report_after(conn, conditions, after, page_size)
            if not rows:
                return
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            for row in rows:
                writer.writerow([neutralise_csv_cell(str(cell)) for cell in report_csv_row(row, zone)])
            yield buffer.getvalue().encode()
            after = rows[-1].id
