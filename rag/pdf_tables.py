"""Tables on a page: runs of rows whose figures line up in columns, written one line per row as
``label | column header: value | ...`` so that each value keeps its row label and its column headers."""

from __future__ import annotations

import re

from .page_rows import NUMERIC, YEARISH, Fragment, Row, TextWriter, Word

_PERIOD = re.compile(
    r"\b(?:19|20)\d\d\b|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? \d{1,2}\b"
    r"|\b(?:Q[1-4]|YTD|FY)\b|\b(?:Months|Weeks|Year|Quarter)s? Ended\b"
)


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


#: The day of a date whose month stands on the row above ("October" over "29,"), as NVIDIA sets its headers.
_DAY = re.compile(r"^\d{1,2},$")


def _is_column_heading(row: Row) -> bool:
    """Years or dates, and words, with no figure among them: a row naming columns, not a row of values."""
    texts = [f.text for f in row.fragments]

    def dated(text: str) -> bool:
        return bool(YEARISH.match(text) or _DAY.match(text))

    return any(dated(t) for t in texts) and all(dated(t) or not NUMERIC.match(t) for t in texts)


def _is_header_row(row: Row, values_x: float) -> bool:
    """A row above a table's data that names its columns: cells only, or one cell over the value columns."""
    if len(row.fragments) >= 2:
        return len(row.text) < 200
    return row.x0 >= values_x - 30 and len(row.text) < 60


def _column_anchors(rows: list[Row]) -> list[tuple[float, float]]:
    """x-ranges of the value columns of a table: its figures, and its other cells ("Level 2") that
    lie in a column of figures or apart from them (not a footer line caught in the table)."""
    # A row's first cell is its label when it is words, or starts where the words labels start ("2025").
    left = min((r.fragments[0].x0 for r in rows if not r.fragments[0].numeric), default=-1e9)
    cells = [
        f
        for r in rows
        for f in (r.fragments[1:] if not r.fragments[0].numeric or r.fragments[0].x0 < left + 10 else r.fragments)
    ]
    figures = _merged([(f.x0, f.x1) for f in cells if f.numeric])
    others = [(f.x0, f.x1) for f in cells if not f.numeric and all(_inside_or_apart(f, a, b) for a, b in figures)]
    return _merged(figures + others)


def _inside_or_apart(fragment: Fragment, a: float, b: float) -> bool:
    """Whether ``fragment`` lies mostly inside the column ``a``-``b``, or not over it at all."""
    overlap = min(b, fragment.x1) - max(a, fragment.x0)
    return overlap <= 1.0 or overlap >= (fragment.x1 - fragment.x0) / 2


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """x-ranges that end within a few points of each other, or overlap by a third of the narrower one
    ("$ 21,448" over "35.4 %"), as one column each."""
    columns: list[list[float]] = []
    for x0, x1 in sorted(spans, key=lambda s: s[1]):
        if columns and (
            x1 - columns[-1][1] < 6.0
            or columns[-1][1] - max(x0, columns[-1][0]) > min(x1 - x0, columns[-1][1] - columns[-1][0]) / 3
        ):
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


def _dated(text: str) -> bool:
    """Whether a header names a period ("2023", "July 1,", "Q2 2023", "Three Months Ended")."""
    return _PERIOD.search(text) is not None


def _name_columns(row: Row, columns: list[tuple[float, float]], below: list[str]) -> dict[int, Fragment]:
    """The fragment of a header ``row`` that names each value column (``below``: each column's header
    text from the rows under this one).

    A fragment names the columns whose share of the width it overlaps. A heading over a group of
    columns also names the group's other columns: the ones up to it when it is set flush right over
    its group's last column, as many filings do, else the ones nearer to it than to the next heading.
    It does so only for a period ("Three Months Ended" over "2023  2022", "July 1, 2023" over "Cost  Fair
    value") or over periods, and over columns headed alike: a "Change" column beside "2023  2022" is
    named only by what is over it, and so is every column by a note in parentheses ("(In millions)").
    """
    cells = _column_cells(columns)
    pieces = [piece for f in row.fragments for piece in _split_at_columns(f, cells)]
    fragments = [f for f in pieces if f.x1 > cells[0][0] and f.x0 < cells[-1][1]]
    named: dict[int, Fragment] = {}
    for fragment in fragments:
        for k, (a, b) in enumerate(cells):
            if min(b, fragment.x1) - max(a, fragment.x0) > 1.0:
                named.setdefault(k, fragment)
    if not named or len(named) == len(columns):
        return named
    flush_right = all(any(abs(f.x1 - b) <= 2.5 for _, b in columns) for f in fragments)
    direct = dict(named)
    for k in range(len(columns)):
        if k in direct:
            continue
        centre = (columns[k][0] + columns[k][1]) / 2
        if flush_right:
            heading = next((direct[j] for j in range(k + 1, len(columns)) if j in direct), None)
        elif below[k]:
            heading = min(fragments, key=lambda f: max(f.x0 - centre, centre - f.x1, 0.0))
        else:  # nothing under this column: only a heading set flush right over a later column of the group
            # names it ("2022" centred over its own column does not name the "Change" column beside it)
            j = next((j for j in range(k + 1, len(columns)) if j in direct), None)
            flush = j is not None and abs(direct[j].x1 - columns[j][1]) <= _FLUSH
            heading = direct[j] if flush and j is not None else None
        if heading is None or heading.text.startswith("(") or not (_dated(heading.text) or _dated(below[k])):
            continue
        if any(f is heading and _dated(below[j]) == _dated(below[k]) for j, f in direct.items()):
            named[k] = heading
    return named


#: A heading whose right edge is this close (points) to its column's is set flush right over it.
_FLUSH = 6.0
#: A gap between two words of one header fragment wider than this (points) may part two columns' headers.
_HEADER_GAP = 10.0


def _split_at_columns(fragment: Fragment, cells: list[tuple[float, float]]) -> list[Fragment]:
    """``fragment`` cut at each wide gap whose two sides stand over different columns: NVIDIA's "$" and
    "%" over its "$ Change" and "% Change" columns come as one fragment, "$ %", and each names its own
    column. A heading spread over several columns ("Three Months Ended") has no wide gap and stays whole."""

    def cell(word: Word) -> int:
        centre = (word.x0 + word.x1) / 2
        return next((k for k, (a, b) in enumerate(cells) if a <= centre <= b), -1)

    pieces = [[fragment.words[0]]]
    for word in fragment.words[1:]:
        last = pieces[-1][-1]
        if word.x0 - last.x1 > _HEADER_GAP and cell(word) != cell(last) and cell(word) >= 0 and cell(last) >= 0:
            pieces.append([word])
        else:
            pieces[-1].append(word)
    return [fragment] if len(pieces) == 1 else [Fragment(words) for words in pieces]


def write_table(out: TextWriter, head: list[Row], body: list[Row]) -> None:
    """Write a table's ``body`` rows one line each, every value named by its column headers from ``head``."""
    columns = _column_anchors(body)
    if not columns:
        return
    below = [""] * len(columns)
    naming: list[dict[int, Fragment]] = []
    for row in reversed(head):  # bottom up: a heading's group is read from the headers under it
        named = _name_columns(row, columns, below)
        naming.append(named)
        for k, fragment in named.items():
            below[k] = f"{fragment.text} {below[k]}"
    headers: list[list[Word]] = [[] for _ in columns]
    for named in reversed(naming):
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
