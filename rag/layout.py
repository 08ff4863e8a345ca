"""Page layout: positioned words (from a PDF text layer or OCR) into text that reads as the page does.

Words are grouped into rows by their vertical position and rows into fragments at wide gaps. Then,
page by page: running headers and footers that repeat across pages are left out; a page whose rows
split at one vertical gutter into two columns of prose is read column by column; runs of rows whose
figures line up in columns become tables, written one line per row as
``label | column header: value | ...`` so that a row keeps its label and its headers; the other rows
are joined into paragraphs (line wraps become spaces, hyphenation at line ends is undone).

The output text is built with a record of where each piece came from on its page (:class:`Run`), so
any span of the text maps back to boxes on the page.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

from .boxes import Run

#: A gap wider than this many times the row's text height splits a row into fragments (cells, columns).
FRAGMENT_GAP = 1.2
#: Rows at each end of a page where running headers and footers are looked for.
EDGE_ROWS = 2
_NUMERIC = re.compile(r"^[\s$€£¥(]*[-+−–—]?[\d.,]*\d[\d.,]*\s*%?\)?[*†]?$|^[\s$]*[—–-]+\s*$")
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?[-–—]?\s*(?:\d{1,4}|[ivxlcdm]{1,6})\s*[-–—]?(?:\s+of\s+\d+)?$", re.I)
_YEARISH = re.compile(r"^(?:19|20)\d\d$|^\d{1,2}$|^[A-Z][a-z]+\.? \d{1,2},?(?: (?:19|20)\d\d)?$")
_BULLET = re.compile(r"^\s*(?:[•◦▪▫●○■□‣⁃∙·*]|[-–—](?=\s)|\(?[0-9]{1,2}[.)]\s|\(?[a-z][.)]\s)")
_CURRENCY = {"$", "€", "£", "¥"}


@dataclass(frozen=True)
class Word:
    """A word on a page: its text and box in points, origin at the top left."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class Fragment:
    """Words of one row that stand together (a cell, a column's line)."""

    words: list[Word]

    @property
    def x0(self) -> float:
        return self.words[0].x0

    @property
    def x1(self) -> float:
        return max(w.x1 for w in self.words)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def numeric(self) -> bool:
        return bool(_NUMERIC.match(self.text))


@dataclass
class Row:
    """Words at one height of the page, in fragments from left to right."""

    fragments: list[Fragment]
    y0: float
    y1: float

    @property
    def text(self) -> str:
        return " ".join(f.text for f in self.fragments)

    @property
    def x0(self) -> float:
        return self.fragments[0].x0

    @property
    def x1(self) -> float:
        return self.fragments[-1].x1

    @property
    def height(self) -> float:
        return max(1.0, self.y1 - self.y0)


@dataclass
class PageText:
    """One page's text as produced, with where it starts in the document and what was found."""

    number: int
    start: int = 0
    end: int = 0
    tables: int = 0
    dropped_rows: int = 0


@dataclass
class Layout:
    """The text of a run of pages, the boxes behind it, and per-page counts."""

    text: str = ""
    runs: list[Run] = field(default_factory=list)
    pages: list[PageText] = field(default_factory=list)


class _Writer:
    """Builds the output text while recording the box of every piece written."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.runs: list[Run] = []
        self.page = 0
        self.scale = (1.0, 1.0)

    def plain(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def words(self, words: Sequence[Word], joiner: str = " ") -> None:
        for i, word in enumerate(words):
            if i:
                self.plain(joiner)
            self.word(word)

    def word(self, word: Word, text: str | None = None) -> None:
        text = word.text if text is None else text
        sx, sy = self.scale
        box = (round(word.x0 * sx, 4), round(word.y0 * sy, 4), round(word.x1 * sx, 4), round(word.y1 * sy, 4))
        last = self.runs[-1] if self.runs else None
        if (
            last is not None
            and last.page == self.page
            and last.end >= self.length - 1
            and abs(last.y0 - box[1]) < 0.004
            and abs(last.y1 - box[3]) < 0.004
            and 0 <= box[0] - last.x1 < 0.05
        ):
            self.runs[-1] = Run(last.start, self.length + len(text), self.page, last.x0, last.y0, box[2], last.y1)
        else:
            self.runs.append(Run(self.length, self.length + len(text), self.page, *box))
        self.plain(text)

    def text(self) -> str:
        return "".join(self.parts)


def rows_of(words: Sequence[Word]) -> list[Row]:
    """Group words into rows by vertical overlap, then each row into fragments at wide gaps."""
    rows: list[list[Word]] = []
    bands: list[tuple[float, float]] = []
    for word in sorted(words, key=lambda w: ((w.y0 + w.y1) / 2, w.x0)):
        middle = (word.y0 + word.y1) / 2
        if rows and bands[-1][0] <= middle <= bands[-1][1]:
            rows[-1].append(word)
            continue
        rows.append([word])
        bands.append((word.y0, word.y1))
    out: list[Row] = []
    for row_words in rows:
        row_words.sort(key=lambda w: w.x0)
        height = median([w.y1 - w.y0 for w in row_words]) or 1.0
        fragments = [Fragment([row_words[0]])]
        for word in row_words[1:]:
            gap = word.x0 - fragments[-1].words[-1].x1
            wide = gap > FRAGMENT_GAP * height and fragments[-1].text not in _CURRENCY
            if wide or (word.text in _CURRENCY and gap > 0.3 * height):
                fragments.append(Fragment([word]))
            else:
                fragments[-1].words.append(word)
        out.append(Row(fragments, min(w.y0 for w in row_words), max(w.y1 for w in row_words)))
    return out


def _signature(text: str) -> str:
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def _edge_rows(rows: list[Row]) -> list[Row]:
    """The rows where running headers and footers sit: the first and last two of a page."""
    edge = min(EDGE_ROWS, (len(rows) - 1) // 2)
    return rows[:edge] + rows[len(rows) - edge :] if edge > 0 else []


def running_lines(pages: Sequence[list[Row]]) -> set[str]:
    """Signatures of first or last rows that repeat on many pages (running headers and footers)."""
    counts: Counter[str] = Counter()
    for rows in pages:
        counts.update({_signature(r.text) for r in _edge_rows(rows)})
    need = max(3, int(0.3 * len(pages)))
    return {sig for sig, n in counts.items() if n >= need} if len(pages) >= 3 else set()


def _margin_noise(rows: list[Row], running: set[str]) -> set[int]:
    """Indexes of a page's rows that are running headers, footers or bare page numbers."""
    edge = {id(r) for r in _edge_rows(rows)}
    return {
        i
        for i, r in enumerate(rows)
        if id(r) in edge and (_signature(r.text) in running or _PAGE_NUMBER.match(r.text.strip()))
    }


def _columns(rows: list[Row], width: float) -> list[list[Row]]:
    """Rows of a page in reading order: split into two columns when the page has a prose gutter."""
    two = [r for r in rows if len(r.fragments) == 2 and all(f.x1 - f.x0 > 0.25 * width for f in r.fragments)]
    if len(two) < max(3, 0.3 * len(rows)):
        return [rows]
    gutter = median([(r.fragments[0].x1 + r.fragments[1].x0) / 2 for r in two])
    left: list[Row] = []
    right: list[Row] = []
    for row in rows:
        if not any(f.x0 < gutter < f.x1 for f in row.fragments):
            for fragment in row.fragments:
                side = left if (fragment.x0 + fragment.x1) / 2 < gutter else right
                side.append(Row([fragment], row.y0, row.y1))
        else:  # a row across the gutter (a title over both columns): keep it whole in the left flow
            left.append(row)
    return [left, right]


def _is_data_row(row: Row) -> bool:
    return len(row.fragments) >= 2 and any(f.numeric for f in row.fragments[1:])


def _tables(rows: list[Row]) -> list[tuple[int, int, int]]:
    """(first header row, first data row, end) of each table: rows whose figures line up in columns."""
    tables: list[tuple[int, int, int]] = []
    i = 0
    while i < len(rows):
        if not _is_data_row(rows[i]):
            i += 1
            continue
        j, data = i, 0
        while j < len(rows):
            row = rows[j]
            if _is_data_row(row):
                data += 1
            elif not (
                len(row.fragments) == 1 and len(row.text) < 80 and j + 1 < len(rows) and _is_data_row(rows[j + 1])
            ):
                break  # a short label row inside the table ("Net sales:") continues it; anything else ends it
            j += 1
        while i < j and _is_data_row(rows[i]) and _is_column_heading(rows[i]):
            i += 1  # a row of years or dates without a label ("2023  2022  Change") heads the columns
        data = sum(1 for r in rows[i:j] if _is_data_row(r))
        if data >= 2:
            values_x = min(f.x0 for r in rows[i:j] if _is_data_row(r) for f in r.fragments[1:] if f.numeric)
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
    return any(_YEARISH.match(t) for t in texts) and all(_YEARISH.match(t) or not _NUMERIC.match(t) for t in texts)


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


def _column_of(fragment: Fragment, columns: list[tuple[float, float]]) -> int:
    best, best_overlap = -1, 0.0
    for k, (a, b) in enumerate(columns):
        overlap = min(b, fragment.x1) - max(a, fragment.x0)
        if overlap > best_overlap:
            best, best_overlap = k, overlap
    if best < 0:  # no overlap: the nearest column by right edge
        best = min(range(len(columns)), key=lambda k: abs(columns[k][1] - fragment.x1))
    return best


def _write_table(out: _Writer, head: list[Row], body: list[Row]) -> None:
    columns = _column_anchors(body)
    if not columns:
        return
    headers: list[list[Word]] = [[] for _ in columns]
    for row in head:
        for fragment in row.fragments:
            for k, (a, b) in enumerate(columns):
                if min(b, fragment.x1) - max(a, fragment.x0) > -2.0:
                    headers[k].extend(fragment.words)
    for n, row in enumerate(body):
        if n:
            out.plain("\n")
        # The label is what stands left of the first value column ("Total net sales"); the rest are values.
        labels = [f for f in row.fragments if f.x1 <= columns[0][0] + 1.0 and not (f.numeric and f.x0 > row.x0)]
        if not _is_data_row(row) and len(row.fragments) == 1:
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


def _write_prose(out: _Writer, rows: list[Row], width: float) -> None:
    if not rows:
        return
    right = max(r.x1 for r in rows)
    heights = [r.height for r in rows]
    line = median(heights)
    previous: Row | None = None
    for row in rows:
        words = [w for f in row.fragments for w in f.words]
        if previous is not None:
            gap = row.y0 - previous.y1
            prev_text = previous.text
            ends_short = previous.x1 < right - 0.15 * max(1.0, right - rows[0].x0)
            same_paragraph = (
                not _BULLET.match(row.text)
                and gap < 0.9 * line
                and not (ends_short and prev_text.rstrip()[-1:] in ".:!?")
                and abs(row.height - previous.height) < 0.35 * line
                and len(previous.fragments) == 1
                and len(row.fragments) == 1
            )
            if same_paragraph and re.search(r"[A-Za-z]-$", prev_text) and words[0].text[:1].islower():
                last = out.runs[-1] if out.runs else None
                if last is not None and out.parts and out.parts[-1].endswith("-"):
                    out.parts[-1] = out.parts[-1][:-1]
                    out.length -= 1
                    out.runs[-1] = Run(last.start, last.end - 1, last.page, last.x0, last.y0, last.x1, last.y1)
            elif same_paragraph:
                out.plain(" ")
            else:
                out.plain("\n\n" if gap > 0.5 * line or len(previous.fragments) > 1 else "\n")
        out.words(words)
        previous = row


def lay_out(pages: Sequence[tuple[int, float, float, list[Word]]]) -> Layout:
    """Text of pages given as (number, width, height, words): columns, tables and paragraphs resolved."""
    rows_by_page = [(number, width, height, rows_of(words)) for number, width, height, words in pages]
    running = running_lines([rows for _, _, _, rows in rows_by_page])
    out = _Writer()
    layout = Layout()
    for number, width, height, rows in rows_by_page:
        noise = _margin_noise(rows, running)
        kept = [r for i, r in enumerate(rows) if i not in noise]
        page = PageText(number, dropped_rows=len(rows) - len(kept))
        if not kept:
            layout.pages.append(page)
            continue
        if out.length:
            out.plain("\n\n")
        page.start = out.length
        out.page, out.scale = number, (1.0 / max(width, 1.0), 1.0 / max(height, 1.0))
        for flow_n, flow in enumerate(_columns(kept, width)):
            if flow_n and flow:
                out.plain("\n\n")
            pos = 0
            for head, first, end in _tables(flow):
                if head > pos:
                    _write_prose(out, flow[pos:head], width)
                    out.plain("\n\n")
                _write_table(out, flow[head:first], flow[first:end])
                page.tables += 1
                pos = end
                if pos < len(flow):
                    out.plain("\n\n")
            _write_prose(out, flow[pos:], width)
        page.end = out.length
        layout.pages.append(page)
    layout.text = out.text()
    layout.runs = out.runs
    return layout


def title_of(words: Sequence[Word], max_chars: int = 100) -> str:
    """A first page's title: its rows set in the largest type, when that is clearly larger than the body text."""
    rows = [r for r in rows_of(words) if any(ch.isalpha() for ch in r.text)]
    if len(rows) < 2:
        return ""
    body = median(r.height for r in rows)
    largest = max(r.height for r in rows)
    if largest < 1.2 * body:
        return ""
    title = " ".join(" ".join(r.text.split()) for r in rows if r.height >= 0.95 * largest)
    return title[:max_chars].strip()
