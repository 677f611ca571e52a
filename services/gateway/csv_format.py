"""The CSV format of API.md: streaming parse, pure row validation, safe export cells.

Import file: a header row, UTF-8 (a BOM is tolerated), comma-separated, columns
`product_id,current_stock,backorder_threshold,incoming_stock,back_in_stock_date` (or the
human headers `Product ID, Current Stock, BackOrder Threshold, Incoming Stock, Back In Stock
Date`, any case). `name`/`sku` columns (as in our own export) are accepted and ignored so an
export can be imported back unchanged.

Row numbers are the ones a spreadsheet shows: the header is row 1, the first data row is 2.
Everything here is pure (no I/O beyond reading the file object it is handed) so the rules
are property-tested; the gateway runs `parse_import` in a worker thread.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from services.common.errors import DomainError, ErrorEntry, row_error
from services.common.text import neutralise_csv_cell

COLUMNS = ("product_id", "current_stock", "backorder_threshold", "incoming_stock", "back_in_stock_date")
INFORMATIONAL_COLUMNS = ("name", "sku")
HUMAN_HEADERS = {
    "product id": "product_id",
    "current stock": "current_stock",
    "backorder threshold": "backorder_threshold",
    "incoming stock": "incoming_stock",
    "back in stock date": "back_in_stock_date",
    "product name": "name",
    "name": "name",
    "sku": "sku",
}
TEMPLATE_CSV = (
    "product_id,current_stock,backorder_threshold,incoming_stock,back_in_stock_date\r\n"
    "111,25,10,0,\r\n"
    "112,0,,40,2026-12-24\r\n"
)
# 100,000 full rows are about 3 MB; 20 MiB leaves room for long files while keeping a
# mistaken upload (a 50 MB spreadsheet export) a clear, early error.
MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_IMPORT_ROWS = 200_000  # inventory's ImportProducts limit
# Reported errors are capped: past this the file is clearly the wrong one.
MAX_REPORTED_ERRORS = 1_000
MAX_INT = 1_000_000_000  # inventory's MAX_QUANTITY

WHOLE_NUMBER = re.compile(r"[+-]?\d+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class CsvFileError(DomainError):
    """The file as a whole cannot be read (encoding, delimiter, header, size, empty)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, code=code, details=details)


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    code: str
    message: str

    def to_dict(self) -> ErrorEntry:
        return row_error(self.row, self.column, self.code, self.message)


@dataclass(frozen=True)
class ImportRow:
    """One valid data row, normalised. `current_stock` None = keep (update) / BigCommerce level (assign)."""

    row: int
    product_id: int
    current_stock: int | None
    backorder_threshold: int | None
    incoming_stock: int
    back_in_stock_date: str


@dataclass
class ParsedImport:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    total_rows: int = 0
    columns: tuple[str, ...] = ()


# ---------------------------------------------------------------- header

def normalise_header(raw: Iterable[str]) -> tuple[list[str | None], list[RowError]]:
    """Map header cells to canonical names. Unknown, missing or repeated columns are errors (row 1)."""
    mapped: list[str | None] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for cell in raw:
        key = cell.strip().lower()
        name = key if key in COLUMNS or key in INFORMATIONAL_COLUMNS else HUMAN_HEADERS.get(key)
        if name is None:
            errors.append(RowError(1, cell.strip(), "unknown_column",
                                   f"unknown column {cell.strip()!r}; expected {', '.join(COLUMNS)}"))
        elif name in seen:
            errors.append(RowError(1, name, "duplicate_column", f"column {name} appears twice"))
        seen.add(name or "")
        mapped.append(name)
    for column in COLUMNS:
        if column not in seen:
            errors.append(RowError(1, column, "missing_column", f"the header has no {column} column"))
    return mapped, errors


# ---------------------------------------------------------------- cells (pure)

def _whole(value: str, column: str, row: int, *, minimum: int | None) -> tuple[int | None, RowError | None]:
    text = value.strip()
    if not WHOLE_NUMBER.fullmatch(text):
        return None, RowError(row, column, "not_a_whole_number", f"{column} must be a whole number, got {text!r}")
    number = int(text)
    if abs(number) > MAX_INT:
        return None, RowError(row, column, "out_of_range", f"{column} is too large")
    if minimum is not None and number < minimum:
        return None, RowError(row, column, "negative", f"{column} cannot be negative")
    return number, None


def validate_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def validate_row(row: int, cells: dict[str, str]) -> tuple[ImportRow | None, list[RowError]]:
    """Validate one data row's cells (canonical column -> text). Pure; reports every bad cell."""
    errors: list[RowError] = []
    product_text = cells.get("product_id", "").strip()
    product_id: int | None = None
    if not product_text:
        errors.append(RowError(row, "product_id", "required", "product_id is required"))
    else:
        product_id, error = _whole(product_text, "product_id", row, minimum=1)
        if error:
            errors.append(error if error.code != "negative" else
                          RowError(row, "product_id", "not_positive", "product_id must be a positive whole number"))
        elif product_id == 0:
            errors.append(RowError(row, "product_id", "not_positive", "product_id must be a positive whole number"))
    stock: int | None = None
    if cells.get("current_stock", "").strip():
        stock, error = _whole(cells["current_stock"], "current_stock", row, minimum=0)
        if error:
            errors.append(error)
    threshold: int | None = None
    if cells.get("backorder_threshold", "").strip():
        threshold, error = _whole(cells["backorder_threshold"], "backorder_threshold", row, minimum=0)
        if error:
            errors.append(error)
    incoming = 0
    if cells.get("incoming_stock", "").strip():
        value, error = _whole(cells["incoming_stock"], "incoming_stock", row, minimum=0)
        if error:
            errors.append(error)
        else:
            incoming = value or 0
    date_text = cells.get("back_in_stock_date", "").strip()
    if date_text and not validate_date(date_text):
        errors.append(RowError(row, "back_in_stock_date", "bad_date",
                               f"back_in_stock_date must be a date YYYY-MM-DD, got {date_text!r}"))
    if errors or product_id is None:
        return None, errors
    return ImportRow(row, product_id, stock, threshold, incoming, date_text), []


_MAX_DIGITS = len(str(MAX_INT)) - 1


def _plain(text: str) -> bool:
    """Unsigned ASCII digits short enough to be in range: the common case, checked cheaply."""
    return 0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()


def _fast_row(row: int, cells: list[str], positions: tuple[int, ...]) -> ImportRow | None:
    """The row when every cell is in its plain form (digits, blank, YYYY-MM-DD); else None.

    None only means "take the thorough path" (validate_row), which reports what is wrong;
    for plain rows both paths give the same ImportRow (property-tested).
    """
    product, stock, threshold, incoming, date = (cells[i] for i in positions)
    if not _plain(product) or product.strip("0") == "":
        return None
    if stock and not _plain(stock):
        return None
    if threshold and not _plain(threshold):
        return None
    if incoming and not _plain(incoming):
        return None
    if date and not validate_date(date):
        return None
    return ImportRow(row, int(product), int(stock) if stock else None, int(threshold) if threshold else None,
                     int(incoming) if incoming else 0, date)


# ---------------------------------------------------------------- the stream

def _text_lines(binary: IO[bytes], max_bytes: int) -> Iterator[str]:
    """Decode UTF-8 (BOM tolerated) incrementally, yielding lines; raises CsvFileError on bad bytes/size."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    read = 0
    line_no = 1
    while True:
        chunk = binary.read(256 * 1024)
        if not chunk:
            break
        read += len(chunk)
        if read > max_bytes:
            raise CsvFileError("payload_too_large", f"the file is larger than {max_bytes // (1024 * 1024)} MB; "
                               "split it into smaller files", max_bytes=max_bytes)
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            at = line_no + pending.count("\n") + chunk[:exc.start].count(b"\n")
            raise CsvFileError("invalid_encoding", f"the file is not UTF-8 (first bad byte near row {at}); "
                               "save it as 'CSV UTF-8'", row=at) from None
        pending += text
        lines = pending.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        line_no += len(lines)
        yield from lines
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise CsvFileError("invalid_encoding", "the file is not UTF-8 (it ends in the middle of a character)",
                           row=line_no) from None
    if pending:
        yield pending


def _guess_other_delimiter(header_line: str) -> str | None:
    for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if delimiter in header_line and "," not in header_line:
            return name
    return None


def parse_import(binary: IO[bytes], *, max_bytes: int = MAX_IMPORT_BYTES, max_rows: int = MAX_IMPORT_ROWS,
                 progress: Any = None) -> ParsedImport:
    """Parse and validate a whole upload in one pass over the stream.

    File-level problems raise CsvFileError; row problems (bad cells, duplicate product ids)
    are collected in `errors` (capped at MAX_REPORTED_ERRORS). `progress(rows_read)` is
    called every 10,000 rows when given.
    """
    lines = _text_lines(binary, max_bytes)
    reader = csv.reader(lines, strict=True)
    result = ParsedImport()
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CsvFileError("malformed_csv", f"row 1 cannot be read as CSV: {exc}", row=1) from None
    if header is None or not any(cell.strip() for cell in header):
        raise CsvFileError("empty_file", "the file is empty; start from the template")
    if len(header) == 1:
        other = _guess_other_delimiter(header[0])
        if other:
            raise CsvFileError("wrong_delimiter", f"the file is separated by {other}; "
                               "save it as comma-separated CSV", row=1)
    mapped, header_errors = normalise_header(header)
    if header_errors:
        raise CsvFileError("bad_header", "; ".join(e.message for e in header_errors),
                           errors=[e.to_dict() for e in header_errors])
    result.columns = tuple(name for name in mapped if name)
    first_row: dict[int, int] = {}
    width = len(mapped)
    positions = tuple(mapped.index(column) for column in COLUMNS)
    row_number = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise CsvFileError("malformed_csv", f"row {row_number + 1} cannot be read as CSV: {exc}",
                               row=row_number + 1) from None
        row_number += 1
        if not cells or (not cells[0] and not any(cell.strip() for cell in cells)):
            continue  # blank lines (a trailing newline, spacer rows) are not data
        result.total_rows += 1
        if result.total_rows > max_rows:
            raise CsvFileError("too_many_rows", f"the file has more than {max_rows} rows; split it",
                               max_rows=max_rows)
        if progress is not None and result.total_rows % 10_000 == 0:
            progress(result.total_rows)
        if len(cells) != width:
            _add(result, RowError(row_number, "", "wrong_column_count",
                                  f"row has {len(cells)} cells, the header has {width}"))
            continue
        row = _fast_row(row_number, cells, positions)
        errors: list[RowError] = []
        if row is None:
            row, errors = validate_row(row_number, {name: cell for name, cell in zip(mapped, cells, strict=True)
                                                    if name})
        if errors:
            for error in errors:
                _add(result, error)
            continue
        assert row is not None
        earlier = first_row.setdefault(row.product_id, row_number)
        if earlier != row_number:
            _add(result, RowError(row_number, "product_id", "duplicate_product",
                                  f"product {row.product_id} appears again (first on row {earlier})"))
            continue
        result.rows.append(row)
    if result.total_rows == 0:
        raise CsvFileError("empty_file", "the file has a header but no rows")
    return result


def _add(result: ParsedImport, error: RowError) -> None:
    if len(result.errors) < MAX_REPORTED_ERRORS:
        result.errors.append(error)


def parse_import_bytes(data: bytes, **kwargs: Any) -> ParsedImport:
    return parse_import(io.BytesIO(data), **kwargs)


# ---------------------------------------------------------------- export

def csv_line(cells: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([neutralise_csv_cell(c) for c in cells])
    return buffer.getvalue()


def error_report_csv(errors: Iterable[dict[str, Any]]) -> str:
    return csv_line(("row", "column", "code", "message")) + "".join(
        csv_line((e.get("row"), e.get("column"), e.get("code"), e.get("message"))) for e in errors)
