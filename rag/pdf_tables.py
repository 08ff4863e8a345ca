"""Tables on a page: runs of rows whose figures line up in columns, written one line per row as
``label | column header: value | ...`` so that each value keeps its row label and its column headers."""

from __future__ import annotations

from .page_rows import NUMERIC, YEARISH, Fragment, Row, TextWriter, Word


def is_data_row(row: Row) -> bool:
    """A row with a label or value and at least one figure after its first cell."""
    return len(row.fragments) >= 2 and any(f.numeric for f in row.fragments[1:])


def find_tables(rows: list[Row]) -> list[tuple[int, int, int]]:
    """(first header row, first data row, end) of each table: rows whose figures line up in columns."""
    tables: list[tuple[int, int, int]] = []
    i = 0
    while i < len(rows):
        if not is_data_row(rows[i]):
            i += 1
            continue
        j, data = i, 0
        while j < len(rows):
            row = rows[j]
            if is_data_row(row):
                data += 1
            elif not (
                len(row.fragments) == 1 and len(row.text) < 80 and j + 1 < len(rows) and is_data_row(rows[j + 1])
            ):
                break  # a short label row inside the table ("Net sales:") continues it; anything else ends it
            j += 1
        while i < j and is_data_row(rows[i]) and _is_column_heading(rows[i]):
            i += 1  # a row of years or dates without a label ("2023  2022  Change") heads the columns
        data = sum(1 for r in rows[i:j] if is_data_row(r))
        if data >= 2:
            values_x = min(f.x0 for r in rows[i:j] if is_data_row(r) for f in r.fragments[1:] if f.numeric)
            floor = tables[-1][2] if tables else 0
            while (
                i > floor
                and len(rows[i - 1].fragments) == 1
                and rows[i - 1].x1 < values_x
                and len(rows[i - 1].text) < 80
            ):
                i -= 1  # a label row just above the first figures ("Net sales:") belongs to the table
            head = i
            while head > floor and i - head < 6 and _is_header_row(rows[head - 1], values_x):
                head -= 1
            tables.append((head, i, j))
        i = max(j, i + 1)
    return tables


def _is_column_heading(row: Row) -> bool:
    """Years or dates, and words, with no figure among them: a row naming columns, not a row of values."""
    texts = [f.text for f in row.fragments]
    return any(YEARISH.match(t) for t in texts) and all(YEARISH.match(t) or not NUMERIC.match(t) for t in texts)


def _is_header_row(row: Row, values_x: float) -> bool:
    """A row above a table's data that names its columns: cells only, or one cell over the value columns."""
    if len(row.fragments) >= 2:
        return len(row.text) < 200
    return row.x0 >= values_x - 30 and len(row.text) < 60


def _column_anchors(rows: list[Row]) -> list[tuple[float, float]]:
    """x-ranges of the value columns of a table, from its numeric fragments."""
    spans = sorted(
        ((f.x0, f.x1) for r in rows for f in (r.fragments[1:] if not r.fragments[0].numeric else r.fragments)),
        key=lambda s: s[1],
    )
    columns: list[list[float]] = []
    for x0, x1 in spans:
        if columns and x1 - columns[-1][1] < 6.0:
            columns[-1][0] = min(columns[-1][0], x0)
            columns[-1][1] = max(columns[-1][1], x1)
        else:
            columns.append([x0, x1])
    return [(a, b) for a, b in columns]


def _column_cells(columns: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Each value column's share of the table's width: out to halfway to its neighbours (a header
    centred over two columns, "Three Months Ended", names both)."""
    cells = []
    for k, (a, b) in enumerate(columns):
        left = (columns[k - 1][1] + a) / 2 if k else a - 2.0
        right = (b + columns[k + 1][0]) / 2 if k + 1 < len(columns) else b + 2.0
        cells.append((left, right))
    return cells


def _column_of(fragment: Fragment, columns: list[tuple[float, float]]) -> int:
    best, best_overlap = -1, 0.0
    for k, (a, b) in enumerate(columns):
        overlap = min(b, fragment.x1) - max(a, fragment.x0)
        if overlap > best_overlap:
            best, best_overlap = k, overlap
    if best < 0:  # no overlap: the nearest column by right edge
        best = min(range(len(columns)), key=lambda k: abs(columns[k][1] - fragment.x1))
    return best


def write_table(out: TextWriter, head: list[Row], body: list[Row]) -> None:
    """Write a table's ``body`` rows one line each, every value named by its column headers from ``head``."""
    columns = _column_anchors(body)
    if not columns:
        return
    headers: list[list[Word]] = [[] for _ in columns]
    cells = _column_cells(columns)
    for row in head:
        named: dict[int, Fragment] = {}
        for fragment in row.fragments:
            for k, (a, b) in enumerate(cells):
                if min(b, fragment.x1) - max(a, fragment.x0) > 1.0:
                    named.setdefault(k, fragment)
        spanning = {id(f) for f in named.values()}
        if 0 < len(spanning) < len(columns):
            # A heading over a group of columns, set flush right over the group's last column (as
            # filings do: "Three Months Ended" over "2023  2022"), names the columns before it too.
            for k in range(len(columns)):
                if k not in named:
                    right = [named[j] for j in range(k + 1, len(columns)) if j in named]
                    if right:
                        named[k] = right[0]
        for k in sorted(named):
            headers[k].extend(named[k].words)
    for n, row in enumerate(body):
        if n:
            out.plain("\n")
        # The label is what stands left of the first value column ("Total net sales"); the rest are values.
        labels = [f for f in row.fragments if f.x1 <= columns[0][0] + 1.0 and not (f.numeric and f.x0 > row.x0)]
        if not is_data_row(row) and len(row.fragments) == 1:
            labels = list(row.fragments)
        values: dict[int, list[Word]] = {}
        for fragment in row.fragments:
            if fragment in labels:
                continue
            values.setdefault(_column_of(fragment, columns), []).extend(fragment.words)
        out.words([w for f in labels for w in f.words])
        for k in sorted(values):
            out.plain(" | ")
            if headers[k]:
                out.words(headers[k])
                out.plain(": ")
            out.words(values[k])
