"""The import CSV: streaming parse and pure row validation (property-based where it pays)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.text import neutralise_csv_cell as safe_cell
from services.gateway import csv_format
from services.gateway.csv_format import (
    CsvFileError,
    parse_import,
    parse_import_bytes,
    validate_row,
)

HEADER = "product_id,current_stock,backorder_threshold,incoming_stock,back_in_stock_date\n"

valid_rows = st.lists(
    st.tuples(
        st.integers(1, 10**9),
        st.one_of(st.none(), st.integers(0, 10**9)),
        st.one_of(st.none(), st.integers(0, 10**9)),
        st.integers(0, 10**6),
        st.one_of(st.just(""), st.dates().map(lambda d: d.isoformat() if d.year >= 1000 else "")),
    ),
    min_size=1, max_size=40, unique_by=lambda r: r[0])


def render(rows: list[tuple], header: str = HEADER, newline: str = "\n") -> bytes:
    body = newline.join(",".join("" if v is None else str(v) for v in row) for row in rows)
    return (header.replace("\n", newline) + body + newline).encode()


class OneByteAtATime(io.RawIOBase):
    """A stream that hands out tiny chunks, so multi-byte characters and lines straddle reads."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size, self.at = data, size, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.data[self.at:self.at + self.size]
        self.at += len(chunk)
        return chunk


@given(valid_rows, st.sampled_from(["\n", "\r\n"]), st.booleans())
@settings(max_examples=150, deadline=None)
def test_every_valid_file_parses_back_to_its_rows(rows, newline, bom):
    data = (b"\xef\xbb\xbf" if bom else b"") + render(rows, newline=newline)
    parsed = parse_import_bytes(data)
    assert parsed.errors == []
    assert parsed.total_rows == len(rows)
    assert [(r.product_id, r.current_stock, r.backorder_threshold, r.incoming_stock, r.back_in_stock_date)
            for r in parsed.rows] == [tuple(row) for row in rows]
    assert [r.row for r in parsed.rows] == list(range(2, len(rows) + 2))


@given(valid_rows, st.integers(1, 7))
@settings(max_examples=60, deadline=None)
def test_chunk_boundaries_do_not_change_the_result(rows, chunk):
    data = render(rows, header="Product ID,Current Stock,BackOrder Threshold,Incoming Stock,Back In Stock Date\n")
    whole = parse_import_bytes(data)
    streamed = parse_import(OneByteAtATime(data, chunk))
    assert streamed.rows == whole.rows and streamed.errors == whole.errors


@given(valid_rows, st.data())
@settings(max_examples=100, deadline=None)
def test_one_bad_cell_is_reported_with_its_row_and_column(rows, data):
    index = data.draw(st.integers(0, len(rows) - 1))
    column, bad = data.draw(st.sampled_from([
        (1, "abc"), (1, "-1"), (1, "1.5"), (2, "-3"), (2, "x"), (3, "-2"), (4, "2026-13-01"), (4, "01/02/2026"),
        (0, "0"), (0, "")]))
    broken = [list(r) for r in rows]
    broken[index][column] = bad
    parsed = parse_import_bytes(render([tuple(r) for r in broken]))
    names = csv_format.COLUMNS
    assert len(parsed.errors) == 1
    error = parsed.errors[0]
    assert (error.row, error.column) == (index + 2, names[column])
    assert error.message
    assert len(parsed.rows) == len(rows) - 1


@given(valid_rows)
@settings(max_examples=50, deadline=None)
def test_a_repeated_product_id_names_both_rows(rows):
    again = (rows[0][0], 1, 1, 0, "")
    parsed = parse_import_bytes(render([*rows, again]))
    assert [(e.row, e.column, e.code) for e in parsed.errors] == [(len(rows) + 2, "product_id", "duplicate_product")]
    assert "row 2" in parsed.errors[0].message


@pytest.mark.parametrize(("data", "code"), [
    (b"", "empty_file"),
    (b"\n\n", "empty_file"),
    (HEADER.encode(), "empty_file"),
    (HEADER.replace(",", ";").encode() + b"1;2;3;4;\n", "wrong_delimiter"),
    (HEADER.replace(",", "\t").encode() + b"1\t2\n", "wrong_delimiter"),
    (b"product_id,current_stock\n1,2\n", "bad_header"),
    (HEADER.replace("\n", ",colour\n").encode() + b"1,2,3,4,,red\n", "bad_header"),
    (b"product_id,product_id,current_stock,backorder_threshold,incoming_stock,back_in_stock_date\n", "bad_header"),
    (HEADER.encode() + b"1,2,3,4,\xff\n", "invalid_encoding"),
    (HEADER.encode() + b"1,2,3,4,\xc3", "invalid_encoding"),
    (HEADER.encode() + b'1,"2,3,4,\n', "malformed_csv"),
])
def test_file_level_problems_are_clear_errors(data, code):
    with pytest.raises(CsvFileError) as caught:
        parse_import_bytes(data)
    assert caught.value.code == code
    assert caught.value.message


def test_a_bad_header_lists_every_problem():
    with pytest.raises(CsvFileError) as caught:
        parse_import_bytes(b"product_id,colour\n1,red\n")
    codes = {(e["column"], e["code"]) for e in caught.value.details["errors"]}
    assert ("colour", "unknown_column") in codes and ("current_stock", "missing_column") in codes


def test_invalid_encoding_names_the_row():
    data = HEADER.encode() + b"1,2,3,4,\n2,2,3,4,\n3,\xe9,3,4,\n"
    with pytest.raises(CsvFileError) as caught:
        parse_import_bytes(data)
    assert caught.value.details["row"] == 4


def test_size_and_row_limits():
    data = render([(i, 1, 1, 0, "") for i in range(1, 200)])
    with pytest.raises(CsvFileError) as caught:
        parse_import_bytes(data, max_bytes=1000)
    assert caught.value.code == "payload_too_large"
    with pytest.raises(CsvFileError) as caught:
        parse_import_bytes(data, max_rows=10)
    assert caught.value.code == "too_many_rows"


def test_wrong_cell_count_and_blank_lines():
    parsed = parse_import_bytes(HEADER.encode() + b"1,2,3,4,\n\n2,2\n3,1,1,1,\n")
    assert [r.product_id for r in parsed.rows] == [1, 3]
    assert [(e.row, e.code) for e in parsed.errors] == [(4, "wrong_column_count")]


def test_informational_columns_of_an_export_are_accepted():
    parsed = parse_import_bytes(b"product_id,name,sku,current_stock,backorder_threshold,incoming_stock,"
                                b"back_in_stock_date\n5,\"Pan, cast\",'=X,3,,0,\n")
    assert [(r.product_id, r.current_stock, r.backorder_threshold) for r in parsed.rows] == [(5, 3, None)]


def test_errors_are_capped():
    data = render([(i, "x", 1, 0, "") for i in range(1, 3000)])
    parsed = parse_import_bytes(data)
    assert len(parsed.errors) == csv_format.MAX_REPORTED_ERRORS
    assert parsed.total_rows == 2999


def test_validate_row_reports_every_bad_cell():
    row, errors = validate_row(7, {"product_id": "x", "current_stock": "-1", "backorder_threshold": "1.0",
                                   "incoming_stock": "-4", "back_in_stock_date": "2026-02-30"})
    assert row is None
    assert [(e.row, e.column) for e in errors] == [(7, c) for c in csv_format.COLUMNS]


@given(st.text())
def test_safe_cell_never_starts_a_formula(text):
    cell = safe_cell(text)
    if cell[:1] in ("=", "+", "@", "\t", "\r"):
        raise AssertionError(cell)
    if cell.startswith("-"):
        assert cell.lstrip("-").isdigit()


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"), ("+SKU", "'+SKU"), ("-x", "'-x"), ("@A1", "'@A1"), ("-5", "-5"), (-5, "-5"),
    (None, ""), ("plain", "plain"),
])
def test_safe_cell_examples(value, expected):
    assert safe_cell(value) == expected


def test_error_report_is_csv_with_neutralised_cells():
    text = csv_format.error_report_csv([{"row": 3, "column": "sku", "code": "x", "message": "=cmd"}])
    assert list(csv.reader(io.StringIO(text))) == [["row", "column", "code", "message"], ["3", "sku", "x", "'=cmd"]]


cell_text = st.one_of(st.just(""), st.from_regex(r"[0-9]{1,12}", fullmatch=True), st.sampled_from(
    ["0", "00", "-1", "+2", " 3", "1.0", "x", "٣", "2026-12-01", "2026-02-30", "1000000000", "999999999"]))


@given(st.lists(cell_text, min_size=5, max_size=5))
def test_the_fast_path_agrees_with_the_thorough_one(cells):
    fast = csv_format._fast_row(9, cells, (0, 1, 2, 3, 4))
    thorough, errors = validate_row(9, dict(zip(csv_format.COLUMNS, cells, strict=True)))
    if fast is not None:
        assert fast == thorough and errors == []
    elif thorough is not None:
        # Only non-plain spellings of valid values (e.g. " 3", "+2") leave the fast path.
        assert any(c != c.strip() or c.startswith("+") or (c and not c.isascii()) or len(c) >= 10 for c in cells)
