"""Markdown (GFM) tables as labelled rows: the derived text of a Markdown document.

A Markdown document's text is the file as it is, except that each GFM table (a header row, a
delimiter row such as ``| --- | :-: |``, body rows) is written as ``label | header: value`` lines
(:func:`rag.tables.table_lines`), the same rows HTML, DOCX and PDF tables give. So a row is found
and cited with its column names, and ``Document.text`` (what citations and the viewer show) stays one
string whose offsets every chunk keeps. Headings are found in the file and moved to the derived text.
Rows with more or fewer cells than the header are padded or keep their extra cells unnamed; as in GFM,
a table ends at a blank line or another block, and a table inside a code fence is code.
"""

from __future__ import annotations

import bisect
import re

from .budgets import checkpoint
from .sections import Section, markdown_sections
from .tables import table_lines

_DELIMITER_CELL = re.compile(r"^[ \t]*:?-+:?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_PIPE = re.compile(r"(?<!\\)\|")
_LINE = re.compile(r"[^\n]*\n?")
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


def _is_delimiter(line: str, width: int) -> bool:
    if "|" not in line or "-" not in line or line.startswith("    "):
        return False
    cells = split_row(line)
    return len(cells) == width and all(_DELIMITER_CELL.match(c) for c in cells)


def _is_row(line: str) -> bool:
    return bool(line.strip()) and _PIPE.search(line) is not None and not line.startswith("    ")


def _continues(line: str) -> bool:
    """Whether a line after a table's rows is one more row: GFM ends a table at a blank line or at the
    start of another block (heading, fence, quote, list, rule), not at a line without a pipe."""
    return bool(line.strip()) and not _OTHER_BLOCK.match(line)


def find_tables(text: str) -> list[tuple[int, int, list[list[str]]]]:
    """The GFM tables of a Markdown text, outside code fences: (start, end, rows) with the header row first."""
    lines = [(m.start(), m.group()) for m in _LINE.finditer(text) if m.group()]
    found: list[tuple[int, int, list[list[str]]]] = []
    fence = ""
    i = 0
    while i < len(lines):
        if i % 4096 == 0:
            checkpoint()
        start, line = lines[i]
        line = line.rstrip("\n")
        mark = _FENCE.match(line)
        if fence:
            if mark and mark.group(1) == fence:
                fence = ""
            i += 1
            continue
        if mark:
            fence = mark.group(1)
            i += 1
            continue
        if (
            i + 1 < len(lines)
            and _is_row(line)
            and not _HEADING.match(line)
            and _is_delimiter(lines[i + 1][1].rstrip("\n"), len(split_row(line)))
        ):
            rows = [split_row(line)]
            j = i + 2
            while j < len(lines) and _continues(lines[j][1].rstrip("\n")):
                rows.append(split_row(lines[j][1].rstrip("\n")))
                j += 1
            last_start, last = lines[j - 1]
            found.append((start, last_start + len(last.rstrip("\n")), rows))
            i = j
            continue
        i += 1
    return found


def markdown_text(raw: str) -> tuple[str, list[Section], int]:
    """The derived text of a Markdown file (its tables as rows), its headings, and how many tables it has."""
    tables = find_tables(raw) if "|" in raw else []
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

    def moved(offset: int) -> int:
        k = bisect.bisect_right(ends, offset) - 1
        return offset + (moves[k][2] if k >= 0 else 0)

    sections = [Section(moved(s.start), s.title) for s in markdown_sections(raw)]
    return text, sections, count
