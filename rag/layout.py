"""Page layout: positioned words (from a PDF text layer or OCR) into text that reads as the page does.

Words are grouped into rows by their vertical position and rows into fragments at wide gaps. Then,
page by page: running headers and footers that repeat across pages are left out; a page whose rows
split at one vertical gutter into two columns of prose is read column by column; runs of rows whose
figures line up in columns become tables (:mod:`rag.pdf_tables`), written one line per row as
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
from .page_rows import FRAGMENT_GAP as FRAGMENT_GAP  # re-exported: it lived here before rag.page_rows
from .page_rows import Fragment as Fragment  # re-exported: it lived here before rag.page_rows
from .page_rows import Row, TextWriter, Word, rows_of
from .pdf_tables import find_tables, write_table

#: Rows at each end of a page where running headers and footers are looked for.
EDGE_ROWS = 2
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?[-–—]?\s*(?:\d{1,4}|[ivxlcdm]{1,6})\s*[-–—]?(?:\s+of\s+\d+)?$", re.I)
_BULLET = re.compile(r"^\s*(?:[•◦▪▫●○■□‣⁃∙·*]|[-–—](?=\s)|\(?[0-9]{1,2}[.)]\s|\(?[a-z][.)]\s)")


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


def _write_prose(out: TextWriter, rows: list[Row], width: float) -> None:
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
    out = TextWriter()
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
            for head, first, end in find_tables(flow):
                if head > pos:
                    _write_prose(out, flow[pos:head], width)
                    out.plain("\n\n")
                write_table(out, flow[head:first], flow[first:end])
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
