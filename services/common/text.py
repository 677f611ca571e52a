"""Text that crosses into SQL patterns or spreadsheets, made safe one way everywhere."""

from __future__ import annotations

import re

LIKE_ESCAPE = "\\"

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_WHOLE_NUMBER = re.compile(r"[+-]?\d+")


def like_contains(query: str) -> str:
    """A case-folded `%query%` pattern for `lower(column).like(pattern, escape=LIKE_ESCAPE)`.

    The searcher's own `\\`, `%` and `_` match themselves, not any text.
    """
    escaped = (query.lower().replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
               .replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_"))
    return f"%{escaped}%"


def neutralise_csv_cell(value: object | None) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a leading '.

    Whole numbers stay numbers (a backordered product's stock is negative, and an export must
    import back unchanged). None is an empty cell.
    """
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_PREFIXES) and not _WHOLE_NUMBER.fullmatch(text):
        return "'" + text
    return text
