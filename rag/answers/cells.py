"""Labelled values in a passage: form fields (``Label: value``) and table cells (``label | header: value``).

Every reader writes tables one row a line as ``label | column header: value | ...`` and form fields one a
line as ``Label: value`` (see :mod:`rag.tables`, :mod:`rag.pdf_tables`, :mod:`rag.forms`); this module
reads those lines back into cells with their offsets in the document, so that an answer can quote one
cell with its labels and point its highlight at exactly that cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..page_forms import is_label
from ..types import Passage

#: A figure: an amount, a percentage, a count (``$ 81,797``, ``(4)%``, ``30.27``, ``1,500``).
FIGURE = re.compile(r"[-−(]?\$?\s?\d[\d,]*(?:\.\d+)?\)?\s?%?")
_SEGMENT = re.compile(r" \| ")
#: Longest line read as a field or a table row (longer lines are prose).
MAX_LINE = 2000


@dataclass(frozen=True)
class Cell:
    """One labelled value: a form field (``header`` empty) or a table cell.

    Offsets are into the document text: ``start``/``end`` cover the value (with its column header for a
    cell), ``label_start``/``label_end`` the row or field label.
    """

    label: str
    header: str
    value: str
    start: int
    end: int
    label_start: int
    label_end: int
    kind: str  # "field" or "cell"

    @property
    def empty(self) -> bool:
        """Whether the value holds nothing (an empty form field, a dash in a table)."""
        return not any(ch.isalnum() for ch in self.value)

    @property
    def numeric(self) -> bool:
        """Whether the value is a figure."""
        return bool(FIGURE.fullmatch(self.value.strip()))

    def quote(self) -> str:
        """The cell as an answer reads it: ``Label, column header: value``."""
        value = " ".join(self.value.split())
        value = re.sub(r"\$\s+(?=\d)", "$", value)
        label = " ".join(self.label.split()).rstrip(":")
        header = " ".join(self.header.split())
        if header and label:
            return f"{label}, {header}: {value}"
        return f"{label or header}: {value}"

    def spans(self) -> tuple[tuple[int, int], ...]:
        """Document spans to highlight: the label and the value (with its header)."""
        if self.label_end <= self.label_start or self.label_end >= self.start:
            return ((min(self.label_start, self.start), self.end),)
        return ((self.label_start, self.label_end), (self.start, self.end))


def cells_of(passage: Passage) -> list[Cell]:
    """The fields and table cells of a passage's lines, in reading order."""
    out: list[Cell] = []
    offset = passage.start
    for line in passage.text.split("\n"):
        if line.strip() and len(line) <= MAX_LINE:
            out.extend(_line_cells(line, offset))
        offset += len(line) + 1
    return out


def _line_cells(line: str, at: int) -> list[Cell]:
    if " | " in line:
        return _row_cells(line, at)
    if not is_label(line):
        return []
    colon = line.index(":")
    label = line[:colon].strip()
    value_start = colon + 1 + (len(line[colon + 1 :]) - len(line[colon + 1 :].lstrip()))
    lead = len(line) - len(line.lstrip())
    return [
        Cell(
            label,
            "",
            line[value_start:].rstrip(),
            at + value_start,
            at + len(line.rstrip()),
            at + lead,
            at + colon,
            "field",
        )
    ]


def _row_cells(line: str, at: int) -> list[Cell]:
    bounds = [0]
    for m in _SEGMENT.finditer(line):
        bounds.extend((m.start(), m.end()))
    bounds.append(len(line))
    segments = [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]
    first_a, first_b = segments[0]
    label = line[first_a:first_b].strip()
    label_start, label_end = at + first_a, at + first_b
    rest = segments[1:]
    if ": " in label and _value_after_colon(label):  # a row without a label: its first segment is a cell
        rest = segments
        label, label_start, label_end = "", at, at
    cells = []
    for a, b in rest:
        segment = line[a:b]
        split = segment.rfind(": ")
        header, value = (segment[:split], segment[split + 2 :]) if split >= 0 else ("", segment)
        cells.append(Cell(label, header.strip(), value.strip(), at + a, at + b, label_start, label_end, "cell"))
    return cells


def _value_after_colon(segment: str) -> bool:
    return bool(FIGURE.fullmatch(segment.rsplit(": ", 1)[1].strip()))
