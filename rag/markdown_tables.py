"""Markdown (GFM) tables as labelled rows: the derived text of a Markdown document.

A Markdown document's text is the file as it is, except that each GFM table (a header row, a
delimiter row such as ``| --- | :-: |``, body rows) is written as ``label | header: value`` lines
(:func:`rag.tables.table_lines`), the same rows HTML, DOCX and PDF tables give. So a row is found
and cited with its column names, and ``Document.text`` (what citations and the viewer show) stays one
string whose offsets every chunk keeps. Headings are found in the file and moved to the derived text.
As in GFM, a row with fewer cells than the header has the rest empty, cells past the header's count are
dropped (a page never shows them), a table ends at a blank line or another block, and a table inside a
code fence is code.
"""

from __future__ import annotations

import bisect
import re

from .budgets import checkpoint
from .sections import Section, markdown_sections
from .tables import table_lines

#: A line that may be a delimiter row (a pipe, dashes): a file without one has no table.
_DELIMITER_LINE = re.compile(r"^[ \t|:-]+$", re.M)
_DELIMITER_CELL = re.compile(r"^[ \t]*:?-+:?[ \t]*$")
_FENCE_LINE = re.compile(r"^ {0,3}(```|~~~)", re.M)
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_PIPE = re.compile(r"(?<!\\)\|")
_OTHER_BLOCK = re.compile(  # code, heading, fence, quote, list item, thematic break
    r" {4}|\t| {0,3}(?:#{1,6}(?:[ \t]|$)|```|~~~|>|[-*+][ \t]|\d{1,9}[.)][ \t]|(?:[-*_][ \t]*){3,}$)"
)


def split_row(line: str) -> list[str]:
    """The cells of one table row: split at pipes not escaped, the outer pipes dropped, ``\\|`` read as ``|``."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _PIPE.split(body)]


def _is_delimiter(line: str, header: str) -> bool:
    """Whether ``line`` is the delimiter row of a table whose header row is ``header`` (as many cells)."""
    if "|" not in line or "-" not in line or line.startswith("    ") or line.strip(" \t|:-"):
        return False
    cells = split_row(line)
    return len(cells) == len(split_row(header)) and all(_DELIMITER_CELL.match(c) for c in cells)


def _is_row(line: str) -> bool:
    return bool(line.strip()) and _PIPE.search(line) is not None and not line.startswith("    ")


def _continues(line: str) -> bool:
    """Whether a line after a table's rows is one more row: GFM ends a table at a blank line or at the
    start of another block (heading, fence, quote, list, rule), not at a line without a pipe."""
    return bool(line.strip()) and not _OTHER_BLOCK.match(line)


def _fences(text: str) -> list[tuple[int, int]]:
    """Spans of fenced code blocks (an unclosed fence runs to the end)."""
    spans: list[tuple[int, int]] = []
    opened: tuple[int, str] | None = None
    for m in _FENCE_LINE.finditer(text):
        if opened is None:
            opened = (m.start(), m.group(1))
        elif m.group(1) == opened[1]:
            spans.append((opened[0], m.end()))
            opened = None
    if opened is not None:
        spans.append((opened[0], len(text)))
    return spans


def find_tables(text: str) -> list[tuple[int, int, list[list[str]]]]:
    """The GFM tables of a Markdown text, outside code fences: (start, end, rows) with the header row first."""
    fences = _fences(text)
    fence_starts = [a for a, _ in fences]
    found: list[tuple[int, int, list[list[str]]]] = []
    done = 0  # tables do not overlap: a delimiter row inside an earlier table is one of its rows
    for number, m in enumerate(_DELIMITER_LINE.finditer(text)):
        if number % 1024 == 0:
            checkpoint()
        if m.start() < done or m.start() == 0 or "|" not in m.group() or "-" not in m.group():
            continue
        head_start = text.rfind("\n", 0, m.start() - 1) + 1
        header = text[head_start : m.start() - 1]
        k = bisect.bisect_right(fence_starts, head_start) - 1
        if k >= 0 and fences[k][1] > head_start:
            continue
        if not _is_row(header) or _HEADING.match(header) or not _is_delimiter(m.group(), header):
            continue
        rows = [split_row(header)]
        end = pos = m.end()
        while pos < len(text):
            line_end = text.find("\n", pos + 1)
            line_end = len(text) if line_end < 0 else line_end
            line = text[pos + 1 : line_end]
            if not _continues(line):
                break
            rows.append(split_row(line)[: len(rows[0])])  # as GFM: cells past the header's are not shown
            end = pos = line_end
            if len(rows) % 4096 == 0:
                checkpoint()
        found.append((head_start, end, rows))
        done = end
    return found


def markdown_text(raw: str) -> tuple[str, list[Section], int]:
    """The derived text of a Markdown file (its tables as rows), its headings, and how many tables it has."""
    maybe = "|" in raw and any("|" in m.group() and "-" in m.group() for m in _DELIMITER_LINE.finditer(raw))
    tables = find_tables(raw) if maybe else []
    if not tables:
        return raw, markdown_sections(raw), 0
    parts: list[str] = []
    moves: list[tuple[int, int, int]] = []  # (raw start, raw end, shift after end)
    pos, shift, count = 0, 0, 0
    for start, end, rows in tables:
        lines = table_lines(rows, 1)
        if not lines:
            continue
        written = "\n".join(lines)
        parts.append(raw[pos:start])
        parts.append(written)
        shift += len(written) - (end - start)
        moves.append((start, end, shift))
        pos, count = end, count + 1
    parts.append(raw[pos:])
    text = "".join(parts)
    ends = [m[1] for m in moves]

    def moved(offset: int) -> int | None:
        """Where ``offset`` of the file is in the derived text; None inside a table (its rows are rewritten)."""
        k = bisect.bisect_right(ends, offset) - 1
        if k + 1 < len(moves) and moves[k + 1][0] <= offset:
            return None
        return offset + (moves[k][2] if k >= 0 else 0)

    sections = []
    for s in markdown_sections(raw):
        at = moved(s.start)
        if at is not None:  # a "heading" inside a table's rows is one of its rows
            sections.append(Section(at, s.title))
    return text, sections, count
