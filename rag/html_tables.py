"""HTML tables as labelled rows: a recorded ``<table>`` read into a grid (``rowspan``/``colspan`` spread
over the cells they cover), its header rows found (``thead``, leading rows of ``th``), and written as
``label | header: value`` lines (:func:`rag.tables.table_lines`); a two-column table without a header
row is a form, written as ``Label: value`` lines.

:mod:`rag.html_text` records the parser's events from ``<table>`` to its ``</table>`` and hands them
here. A table that lays out a page rather than holding data (headings or long prose in its cells,
``role="presentation"``, one cell) is reported as such and read as running text, as before. Every
size is bounded: spans are clipped as browsers clip them, and a grid over :data:`MAX_GRID_CELLS` is
not built (the table is read as running text, with a warning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .tables import clean_cell, table_lines, two_column_form

#: One recorded parser event: ("start", tag, attrs), ("end", tag) or ("data", text).
Event = tuple

#: Browsers clip spans to these (the HTML standard's limits).
MAX_COLSPAN = 1000
MAX_ROWSPAN = 65534
#: The most grid cells (rows x columns, spans spread) built for one table.
MAX_GRID_CELLS = 2_000_000
#: Tables nested deeper than this inside one table are read as running text.
MAX_NESTING = 6
#: A cell with more text than this, or this many blocks, holds prose: the table lays out a page.
_PROSE_CHARS = 1000
_PROSE_BLOCKS = 4

_CELL_BLOCKS = {"p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "hr", "section", "article"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_GROUPS = {"thead", "tbody", "tfoot"}


@dataclass
class _Cell:
    parts: list[str] = field(default_factory=list)
    header: bool = False
    rowspan: int = 1
    colspan: int = 1
    blocks: int = 0

    #: The cell's text on one line, set when the table has been read.
    text: str = ""


@dataclass
class _Row:
    group: str
    cells: list[_Cell] = field(default_factory=list)


@dataclass
class ReadTable:
    """What one recorded table holds: its caption, rows as text, and what to do with it."""

    caption: str = ""  # its caption, and title rows (one cell across the table), one a line
    #: ``label | header: value`` (or ``Label: value``) lines; empty when the table is read as running text.
    lines: list[str] = field(default_factory=list)
    #: The recorded events of tables nested in its cells, each to be read as a table of its own.
    inner: list[list[Event]] = field(default_factory=list)
    #: Why the table is read as running text ("" when it is read as rows).
    plain: str = ""
    #: A problem worth a line in the document's extraction warnings.
    warning: str = ""
    #: How deep tables nest inside it.
    nesting: int = 0


def _span(attrs: Sequence[tuple[str, str | None]], name: str, limit: int) -> int:
    if not attrs:
        return 1
    value = next((v for k, v in attrs if k == name), None)
    digits = "".join(ch for ch in (value or "").strip()[:12] if ch.isdigit())
    if not digits:
        return 1
    number = int(digits)
    if name == "rowspan" and number == 0:  # "to the end of its row group"
        return limit
    return max(1, min(number, limit))


def _parse(events: list[Event], skip_tags: set[str]) -> tuple[ReadTable, list[_Row], bool]:
    """Caption, rows and nested tables of one recorded table; also whether a cell holds a heading."""
    table = ReadTable()
    rows: list[_Row] = []
    caption: list[str] = []
    cell: _Cell | None = None
    group = "tbody"
    in_caption = False
    skip = 0
    heading = False
    i, count = 1, len(events)  # events[0] is the table's own start tag
    while i < count:
        event = events[i]
        i += 1
        kind, tag = event[0], event[1]
        if kind == "data":
            if skip:
                continue
            if in_caption:
                caption.append(tag)
            elif cell is not None:
                cell.parts.append(tag)
            continue
        if tag in skip_tags:
            skip = skip + 1 if kind == "start" else max(0, skip - 1)
            continue
        if skip:
            continue
        if kind == "start" and tag == "table":  # a nested table: set aside whole, read on its own
            depth, first = 1, i - 1
            deepest = 1
            while i < count and depth:
                if events[i][1] == "table" and events[i][0] in ("start", "end"):
                    depth += 1 if events[i][0] == "start" else -1
                    deepest = max(deepest, depth)
                i += 1
            table.inner.append(events[first:i])
            table.nesting = max(table.nesting, deepest)
            continue
        if kind == "end":
            if tag == "caption":
                in_caption = False
            elif tag in ("td", "th", "tr"):
                cell = None
            elif tag in _CELL_BLOCKS and cell is not None:
                cell.parts.append(" ")
            elif tag == "table":
                break
            continue
        attrs = event[2]
        if tag == "caption":
            in_caption, cell = True, None
        elif tag in _GROUPS:
            group, cell, in_caption = tag, None, False
        elif tag == "tr":
            rows.append(_Row(group))
            cell, in_caption = None, False
        elif tag in ("td", "th"):
            if not rows:
                rows.append(_Row(group))
            cell = _Cell(
                header=tag == "th",
                rowspan=_span(attrs, "rowspan", MAX_ROWSPAN),
                colspan=_span(attrs, "colspan", MAX_COLSPAN),
            )
            rows[-1].cells.append(cell)
            in_caption = False
        elif tag in _HEADINGS and cell is not None:
            heading = True
        elif tag in _CELL_BLOCKS and cell is not None:
            cell.blocks += 1
            cell.parts.append(" ")
        elif tag == "img" and cell is not None:
            alt = dict(attrs).get("alt")
            if alt:
                cell.parts.append(f" {alt} ")
    table.caption = clean_cell("".join(caption))
    for row in rows:
        for c in row.cells:
            c.text, c.parts = clean_cell("".join(c.parts)), []
    return table, rows, heading


def _layout_reason(attrs: Sequence[tuple[str, str | None]], rows: list[_Row], heading: bool) -> str:
    role = (dict(attrs).get("role") or "").strip().lower()
    if role in ("presentation", "none"):
        return "a layout table (role=presentation)"
    if heading:
        return "a layout table (headings in its cells)"
    cells = [c for r in rows for c in r.cells]
    if len(cells) <= 1:
        return "a layout table (one cell)"
    for c in cells:
        if c.blocks >= _PROSE_BLOCKS or len(c.text) > _PROSE_CHARS:
            return "a layout table (prose in its cells)"
    return ""


def _take(pending: dict[int, tuple[int, str, bool]], col: int, line: list[str], flags: list[bool]) -> None:
    """Put the cell spanning down into ``col`` (from a row above) into this row's ``line``."""
    left, text, header = pending.pop(col)
    line.extend([""] * (col - len(line)))
    flags.extend([False] * (col - len(flags)))
    line.append(text)
    flags.append(header)
    if left > 1:
        pending[col] = (left - 1, text, header)


def _grid(rows: list[_Row]) -> tuple[list[list[str]], list[bool]] | None:
    """The rows as a grid of cell texts, spans spread; and whether each row is all header cells.

    None when the grid would have more than :data:`MAX_GRID_CELLS` cells.
    """
    # A rowspan reaches at most to the end of its row group.
    left_in_group: list[int] = [0] * len(rows)
    for n in range(len(rows) - 1, -1, -1):
        same = n + 1 < len(rows) and rows[n + 1].group == rows[n].group
        left_in_group[n] = left_in_group[n + 1] + 1 if same else 1
    grid: list[list[str]] = []
    all_header: list[bool] = []
    pending: dict[int, tuple[int, str, bool]] = {}  # column -> (rows still covered, text, header)
    cells = 0
    for n, row in enumerate(rows):
        line: list[str] = []
        flags: list[bool] = []
        for cell in row.cells:
            while len(line) in pending:  # columns covered by a cell from a row above
                _take(pending, len(line), line, flags)
            text, down = cell.text, min(cell.rowspan, left_in_group[n])
            if cells + len(line) + cell.colspan > MAX_GRID_CELLS:
                return None
            for _ in range(cell.colspan):
                pending.pop(len(line), None)  # overlapping cells: the later one wins
                if down > 1:
                    pending[len(line)] = (down - 1, text, cell.header)
                line.append(text)
                flags.append(cell.header)
        for col in sorted(c for c in pending if c >= len(line)):  # spans from above past this row's cells
            _take(pending, col, line, flags)
        cells += len(line)
        if cells > MAX_GRID_CELLS:
            return None
        grid.append(line)
        filled = [h for t, h in zip(line, flags, strict=True) if t]
        all_header.append(bool(filled) and all(filled))
    return grid, all_header


def read_table(events: list[Event], skip_tags: set[str]) -> ReadTable:
    """Read one recorded ``<table>`` (its events from the start tag to the end tag) into rows."""
    table, rows, heading = _parse(events, skip_tags)
    attrs = events[0][2] if events and len(events[0]) > 2 else []
    if table.nesting > MAX_NESTING:
        table.plain = f"tables nested {table.nesting} deep"
        table.warning = f"{table.plain}: read as running text"
        return table
    table.plain = _layout_reason(attrs, rows, heading)
    if table.plain:
        return table
    # Header rows first (thead), then the body in source order, then the footer (as browsers show them).
    ordered = [r for r in rows if r.group == "thead"] + [r for r in rows if r.group == "tbody"]
    ordered += [r for r in rows if r.group == "tfoot"]
    built = _grid(ordered)
    if built is None:
        table.plain = f"a table of over {MAX_GRID_CELLS:,} cells"
        table.warning = f"{table.plain}: read as running text"
        return table
    grid, all_header = built
    keep = [n for n, line in enumerate(grid) if any(line)]
    heads = sum(1 for r in ordered if r.group == "thead")
    explicit = sum(1 for n in keep if n < heads)
    if not heads:
        explicit = 0
        for n in keep:
            if not all_header[n]:
                break
            explicit += 1
    grid = [grid[n] for n in keep]
    width = max((len(line) for line in grid), default=0)
    titles: list[str] = []
    while explicit and width > 1 and len({cell for cell in grid[0] if cell}) == 1 and len(grid) > 1:
        titles.append(next(cell for cell in grid[0] if cell))  # one cell across the table: a title, not a header
        grid, explicit = grid[1:], explicit - 1
    if titles:
        table.caption = "\n".join([table.caption, *titles] if table.caption else titles)
    if not explicit and width == 2:
        form = two_column_form(grid, bool(table.inner))
        if form is not None:
            table.lines = form
            return table
    if explicit >= len(grid):  # header cells only: a table of labels
        explicit = 0 if len(grid) == 1 else 1
    table.lines = table_lines(grid, explicit or None)
    return table
