"""HTML to text: visible text only (no script, style or hidden parts), headings as sections, broken markup repaired.

Tables are read as ``label | header: value`` rows (:mod:`rag.html_tables`), two-column tables without a
header row and ``<dl>`` lists as ``Label: value`` lines; a table that lays out the page is read as text.
"""

from __future__ import annotations

import bisect
import re
from html.parser import HTMLParser
from typing import Any

from .budgets import check_chars, checkpoint
from .html_tables import MAX_NESTING, Event, read_table
from .sections import Section

_KNOWN_TAGS = set(
    """
    a abbr address area article aside audio b base bdi bdo blockquote body br button canvas caption cite code
    col colgroup data datalist dd del details dfn dialog div dl dt em embed fieldset figcaption figure footer
    form h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label legend li link main map
    mark menu meta meter nav noscript object ol optgroup option output p param picture pre progress q rp rt ruby
    s samp script search section select slot small source span strong style sub summary sup svg table tbody td
    template textarea tfoot th thead time title tr track u ul var video wbr center font big tt strike nobr math
    """.split()  # noqa: SIM905 - a word list reads best as text
)
_BLOCK_TAGS = set(
    """
    address article aside blockquote body br dd details dialog div dl dt fieldset figcaption figure footer form
    h1 h2 h3 h4 h5 h6 header hgroup hr li main nav ol p pre section summary table tbody tfoot thead tr td th ul
    title caption center
    """.split()  # noqa: SIM905 - a word list reads best as text
)
_SKIP_TAGS = {"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object", "textarea"}
_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "title"}
_TAG_START = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)")
_GLUED_PREFIX = re.compile(r"^(h[1-6]|p|li|dt|dd|td|th|b|i|em|strong)(?=[A-Z])")


def repair_markup(html: str) -> str:
    """Make stray or broken tags harmless before parsing, so no text is swallowed.

    ``<h2Implications for ...`` (a tag glued to its text) becomes ``<h2>Implications for ...</h2>``;
    any other ``<word`` that is not an HTML element is kept as literal text.
    """
    out: list[str] = []
    pos = 0
    for m in _TAG_START.finditer(html):
        name = m.group(1)
        if name.lower() in _KNOWN_TAGS:
            continue
        out.append(html[pos : m.start()])
        glued = _GLUED_PREFIX.match(name)
        if glued:
            tag = glued.group(1)
            line_end = html.find("\n", m.end(), m.end() + 1000)  # bounded: linear on one long line
            line_end = min(len(html), m.end() + 1000) if line_end < 0 else line_end
            line = html[m.start() + 1 + len(tag) : line_end]
            if "<" not in line and ">" not in line:
                out.append(f"<{tag}>{line}</{tag}>")
                pos = line_end
                continue
        out.append("&lt;")
        pos = m.start() + 1
    out.append(html[pos:])
    return "".join(out)


def escape_unclosed(html: str) -> str:
    """Turn each ``<`` whose markup is not closed before the next ``<`` into ``&lt;`` (kept as text).

    Python's HTML parser rescans unclosed markup (``<a<a<a...`` without ``>``) from every ``<``, which
    is quadratic; after this pass every tag it sees is closed. Linear time: each scan starts where the
    previous one stopped. Comments (``<!-- ... -->``) are skipped whole when they are closed.
    """
    out: list[str] = []
    pos, end = 0, len(html)
    gt = -1  # the next ">" after the current "<" (end when there is none)
    comments_close = True  # False once a "<!--" found no "-->" after it (none can follow either)
    i = html.find("<")
    while i >= 0:
        if comments_close and html.startswith("<!--", i):
            close = html.find("-->", i + 4)
            if close >= 0:
                i = html.find("<", close + 3)
                continue
            comments_close = False
        if gt <= i:
            gt = html.find(">", i + 1)
            gt = end if gt < 0 else gt
        nxt = html.find("<", i + 1, gt)
        if nxt >= 0 or gt == end:
            out.append(html[pos:i])
            out.append("&lt;")
            pos = i + 1
        i = nxt if nxt >= 0 else html.find("<", gt)
    out.append(html[pos:])
    return "".join(out)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.pending_newlines = 0
        self.skip_depth = 0
        self.pre_depth = 0
        self.heading: tuple[str, int, int] | None = None  # tag, offset, len(parts) at start
        self.sections: list[Section] = []
        self.table_events: list[Event] | None = None  # a <table> being recorded, to be read whole
        self.table_depth = 0
        self.flat = 0  # > 0 while tables are read as running text (inside a too deeply nested one)
        self.nesting = 0  # tables being read inside one another
        self.tables = 0
        self.warnings: list[str] = []
        self.term: list[str] | None = None  # the text of a <dt> being read
        self.terms: list[str] = []  # terms waiting for their <dd>
        self.label = ""  # a term to write before its definition's first words

    def _break(self, n: int) -> None:
        if self.length:
            self.pending_newlines = max(self.pending_newlines, n)

    def _emit(self, text: str) -> None:
        if not text:
            return
        if self.pending_newlines:
            self.parts.append("\n" * self.pending_newlines)
            self.length += self.pending_newlines
            self.pending_newlines = 0
        elif self.parts and self.parts[-1].endswith(" ") and text.startswith(" "):
            text = text.lstrip(" ")
            if not text:
                return
        self.parts.append(text)
        self.length += len(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.table_events is not None:
            self.table_events.append(("start", tag, attrs))
            self.table_depth += tag == "table"
            return
        if tag == "table" and not self.skip_depth and not self.flat and self.term is None:
            self.table_events, self.table_depth = [("start", tag, attrs)], 1
            return
        self._start(tag, attrs)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            if tag not in {"br", "hr"}:
                self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag in ("dt", "dd", "dl"):
            self._definition(tag)
            if tag == "dt":
                return
        if self.term is not None:
            return
        if tag == "pre":
            self.pre_depth += 1
        if tag in _BLOCK_TAGS:
            self._break(2 if tag in _HEADING_TAGS or tag in {"p", "div", "section", "article", "table"} else 1)
        if tag in _HEADING_TAGS:
            self._close_heading()
            self.heading = (tag, -1, len(self.parts))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.handle_data(f" {alt} ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            return
        if self.table_events is not None:
            self.table_events.append(("start", tag, attrs))
            self.table_depth += tag == "table"  # "<table/>" opens a table, as in a browser
            return
        self.handle_starttag(tag, attrs)
        if tag in _HEADING_TAGS:
            self._close_heading()

    def handle_endtag(self, tag: str) -> None:
        if self.table_events is not None:
            self.table_events.append(("end", tag))
            if tag == "table":
                self.table_depth -= 1
                if not self.table_depth:
                    self._end_recording()
            return
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if tag in ("dt", "dl"):
            self._definition("/" + tag)
        if self.term is not None:
            return
        if tag == "dd":
            self.label = ""
        if tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in _HEADING_TAGS:
            self._close_heading()
        if tag in _BLOCK_TAGS:
            self._break(2 if tag in _HEADING_TAGS or tag in {"p", "div", "section", "article", "table"} else 1)

    def _close_heading(self) -> None:
        if self.heading is None:
            return
        _, offset, first_part = self.heading
        self.heading = None
        title = " ".join("".join(self.parts[first_part:]).split())
        if title and offset >= 0:
            self.sections.append(Section(offset, title[:200]))

    def handle_data(self, data: str) -> None:
        if self.table_events is not None:
            self.table_events.append(("data", data))
            return
        if self.skip_depth:
            return
        if self.term is not None:
            self.term.append(data)
            return
        if self.label and data.strip():
            label, self.label = self.label, ""
            self._emit(label + ": ")
            data = data.lstrip()
        if not self.pre_depth:
            data = re.sub(r"\s+", " ", data)
            if not self.length or self.pending_newlines:
                data = data.lstrip(" ")
        if not data:
            return
        if self.heading is not None and self.heading[1] < 0:
            tag, _, _ = self.heading
            starts_at = self.length + (self.pending_newlines if self.length else 0)
            self.heading = (tag, starts_at, len(self.parts))
        self._emit(data)

    # ------------------------------------------------------------ tables

    def _end_recording(self) -> None:
        events, self.table_events, self.table_depth = self.table_events or [], None, 0
        self._read_table(events)

    def _read_table(self, events: list[Event]) -> None:
        checkpoint()
        table = read_table(events, _SKIP_TAGS)
        if table.warning:
            self.warnings.append(table.warning)
        if table.plain:  # running text, as a page shows it; tables inside are read on their own
            too_deep = table.nesting > MAX_NESTING or self.nesting >= MAX_NESTING
            self.flat += too_deep
            self.nesting += 1
            self._start(events[0][1], events[0][2])
            self._replay(events[1:])
            self.nesting -= 1
            self.flat -= too_deep
            return
        self.tables += 1
        self._break(2)
        if self.label:  # a definition that is a table: its term heads the table
            self._emit(self.label)
            self._break(1)
            self.label = ""
        for number, line in enumerate(([table.caption] if table.caption else []) + table.lines, 1):
            self._emit(line)
            self._break(1)
            if number % 1024 == 0:
                checkpoint()
                check_chars(self.length)
        self._break(2)
        self.nesting += 1
        for inner in table.inner:
            self._replay(inner)
        self.nesting -= 1

    def _replay(self, events: list[Event]) -> None:
        for event in events:
            if event[0] == "data":
                self.handle_data(event[1])
            elif event[0] == "start":
                self.handle_starttag(event[1], event[2])
            else:
                self.handle_endtag(event[1])
        if self.table_events is not None and self.nesting:  # an inner table left open: read it here
            self._end_recording()

    # ------------------------------------------------------------ definition lists

    def _definition(self, tag: str) -> None:
        """``<dl>``: each term is written before its definitions' text, as ``term: definition``."""
        if tag in ("dt", "/dt", "dd", "dl", "/dl") and self.term is not None:
            term = " ".join("".join(self.term).split())
            self.term = None
            if term:
                self.terms.append(term)
        if tag == "dt":
            self.term = []
            self._break(1)
        elif tag == "dd":
            self.label = " / ".join(self.terms) if self.terms else self.label
            self.terms = []
            self._break(1)
        elif tag in ("dl", "/dl"):
            self._unused_terms()

    def _unused_terms(self) -> None:
        for term in self.terms:  # terms without a definition are still text
            self._break(1)
            self._emit(term)
        self.terms, self.label = [], ""

    def text(self) -> str:
        if self.table_events is not None:  # a table never closed: read what there is
            self._end_recording()
        if self.term is not None:
            self._definition("/dl")
        self._unused_terms()
        self._close_heading()
        return "".join(self.parts)


def html_to_text(html: str) -> tuple[str, list[Section]]:
    """Visible text of an HTML page (no script/style), paragraphs kept, with its headings."""
    text, sections, _ = read_html(html)
    return text, sections


def read_html(html: str) -> tuple[str, list[Section], dict[str, Any]]:
    """:func:`html_to_text`, and what extraction found: ``{"tables": n, "warnings": [...]}`` (empty keys left out)."""
    parser = _TextExtractor()
    parser.feed(escape_unclosed(repair_markup(html)))
    parser.close()
    raw = parser.text()
    report: dict[str, Any] = {}
    if parser.tables:
        report["tables"] = parser.tables
    if parser.warnings:
        report["warnings"] = sorted(set(parser.warnings))[:20]
    # Trailing spaces before newlines are cosmetic; remove them while keeping section offsets right.
    cleaned: list[str] = []
    shift: list[tuple[int, int]] = []  # (raw offset, removed so far)
    removed = 0
    pos = 0
    for m in re.finditer(r" +(?=\n)", raw):
        cleaned.append(raw[pos : m.start()])
        removed += m.end() - m.start()
        shift.append((m.end(), removed))
        pos = m.end()
    cleaned.append(raw[pos:])
    text = "".join(cleaned)
    ends = [s[0] for s in shift]

    def moved(offset: int) -> int:
        i = bisect.bisect_right(ends, offset) - 1
        return offset - (shift[i][1] if i >= 0 else 0)

    stripped = len(text) - len(text.rstrip())
    text = text.rstrip() if stripped else text
    sections = [Section(moved(s.start), s.title) for s in parser.sections if moved(s.start) < len(text)]
    return text, sections, report
