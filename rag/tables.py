"""Tables from structured formats (DOCX, HTML) written as text rows that keep their labels and headers.

Each body row becomes one line, ``label | header: value | header: value``: the first cell is the
row's label, and each other cell is prefixed by its column's header (the header rows' cells in that
column, joined). The same shape as PDF tables (:mod:`rag.layout`), so a row is found by its label
and its column names wherever the table came from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NUMBER = re.compile(r"^[\s$€£¥(]*[-+−–—]?[\d.,]*\d[\d.,]*\s*%?\)?$")


def _clean(cell: str) -> str:
    return " ".join(cell.split())


def header_rows(rows: Sequence[Sequence[str]]) -> int:
    """How many leading rows are headers: rows before the first one with a figure in a value cell (at least 1)."""
    for i, row in enumerate(rows):
        if any(_NUMBER.match(_clean(c)) for c in row[1:] if _clean(c)):
            return max(1, i)
    return 1


def table_lines(rows: Sequence[Sequence[str]], headers: int | None = None) -> list[str]:
    """The table's body rows as ``label | header: value`` lines (empty cells left out)."""
    cleaned = [[_clean(c) for c in row] for row in rows if any(_clean(c) for c in row)]
    if not cleaned:
        return []
    width = max(len(r) for r in cleaned)
    cleaned = [r + [""] * (width - len(r)) for r in cleaned]
    if len(cleaned) == 1 or width == 1:
        return [" | ".join(c for c in row if c) for row in cleaned]
    count = header_rows(cleaned) if headers is None else headers
    names: list[str] = []
    for col in range(width):
        parts: list[str] = []
        for row in cleaned[:count]:
            if row[col] and (not parts or parts[-1] != row[col]):  # a merged cell repeats its text
                parts.append(row[col])
        names.append(" ".join(parts))
    lines = []
    for row in cleaned[count:]:
        cells = [row[0]] if row[0] else []
        previous = None
        for col in range(1, width):
            value = row[col]
            if not value or value == previous:  # merged cells repeat their text across columns
                continue
            previous = value
            cells.append(f"{names[col]}: {value}" if names[col] else value)
        lines.append(" | ".join(cells))
    return lines
