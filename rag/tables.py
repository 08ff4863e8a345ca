"""Tables from structured formats (DOCX, HTML, Markdown) written as text rows that keep their labels and headers.

Each body row becomes one line, ``label | header: value | header: value``: the first cell is the
row's label, and each other cell is prefixed by its column's header (the header rows' cells in that
column, joined; a value that spans columns, as a merged cell does, names each of their headers). The
same shape as PDF tables (:mod:`rag.layout`), so a row is found by its label and its column names
wherever the table came from. A two-column table of labels and values is a form: ``Label: value``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NUMBER = re.compile(r"^[\s$€£¥(]*[-+−–—]?[\d.,]*\d[\d.,]*\s*%?\)?$")


def clean_cell(cell: str) -> str:
    """A cell's text on one line, its runs of white space made single spaces."""
    return " ".join(cell.split())


def header_rows(rows: Sequence[Sequence[str]]) -> int:
    """How many leading rows are headers: rows before the first one with a figure in a value cell (at least 1)."""
    for i, row in enumerate(rows):
        if any(_NUMBER.match(clean_cell(c)) for c in row[1:] if clean_cell(c)):
            return max(1, i)
    return 1


def table_lines(rows: Sequence[Sequence[str]], headers: int | None = None) -> list[str]:
    """The table's body rows as ``label | header: value`` lines (empty cells left out). ``headers`` is how
    many leading rows are headers (found from the rows when None); empty header rows name nothing, so a
    table whose header row is empty has values without headers (never its first body row as headers)."""
    if headers is not None:  # count the header rows that hold something
        headers = sum(1 for row in rows[:headers] if any(clean_cell(c) for c in row))
    cleaned = [[clean_cell(c) for c in row] for row in rows if any(clean_cell(c) for c in row)]
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
        col = 1
        while col < width:
            value, first = row[col], col
            while col + 1 < width and row[col + 1] == value:  # a merged cell repeats its text across columns
                col += 1
            col += 1
            if not value:
                continue
            heads: list[str] = []
            for name in names[first:col]:
                if name and name not in heads:
                    heads.append(name)
            cells.append(f"{' / '.join(heads)}: {value}" if heads else value)
        lines.append(" | ".join(cells))
    return lines


#: A form's labels are short.
_LABEL_CHARS = 100


def two_column_form(rows: Sequence[Sequence[str]], keep_labels: bool = False) -> list[str] | None:
    """A two-column table read as a form, ``Label: value`` lines; None when it reads as a table instead.

    It is a table when its first column holds long text, or when its first row names a column of
    figures (``Quarter | Revenue`` over ``Q1 | 1,200``: read by :func:`table_lines`). An empty field is
    left out (unless ``keep_labels``); a row whose one cell spans both columns stays a line of its own.
    """
    cleaned = [[clean_cell(c) for c in [*row, "", ""][:2]] for row in rows if any(clean_cell(c) for c in row)]
    if not cleaned or any(len(label) > _LABEL_CHARS for label, _ in cleaned):
        return None
    values = [value for _, value in cleaned[1:] if value]
    named = len(cleaned) > 1 and bool(cleaned[0][1]) and not _NUMBER.match(cleaned[0][1])
    if named and values and all(_NUMBER.match(v) for v in values):  # a header over a column of figures
        return None
    lines: list[str] = []
    for first, value in cleaned:
        label = first.rstrip(":").rstrip()
        if label and value and value != first:
            lines.append(f"{label}: {value}")
        elif value or keep_labels:  # a row spanning both columns (a sub-heading), or a value alone
            lines.append(label or value)
    return lines
