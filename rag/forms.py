"""Form lines: several ``Label: value`` fields set out on one line, found from their shape.

A field starts with a short label (one to six words, the first capitalised, at most 40 characters)
ending in a colon, and fields are set apart by a tab or a run of three or more spaces:
``Airframe Total Time: 3861 Hours   Engine Manufacturer: Lycoming``. No list of known labels is used.
A line is a form line when at least two of its pieces start with a label; a piece without a label
continues the field before it (``Name: John    Smith``). A field whose value is blank (or only
underscores, dots or dashes, as a form leaves to fill in) is empty.

:func:`form_fields` gives each field's span in the text as it is (plain text keeps its raw file);
:func:`form_lines` writes one field a line, empty fields left out (the DOCX reader's derived text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_GAP = re.compile(r"\t+|[ \u00a0]{3,}")
_LINE = re.compile(r"[^\n]+")
_BLANK = re.compile(r"^[\s_.\-–—]*$")
_LABEL_CHARS = 40
_LABEL_WORDS = 6
_NOT_IN_LABEL = set('!?;"“”|<>{}[]=')


@dataclass(frozen=True)
class Field:
    """One field of a form line: its span ``[start, end)`` in the text, its label and its value."""

    start: int
    end: int
    label: str
    value: str

    @property
    def empty(self) -> bool:
        """Whether the field has no value (blank, or only a line to fill in)."""
        return bool(self.label) and _BLANK.match(self.value) is not None


def _label(piece: str) -> str | None:
    colon = piece.find(":")
    if colon <= 0 or colon > _LABEL_CHARS:
        return None
    if colon + 1 < len(piece) and not piece[colon + 1].isspace():  # 10:30, http://
        return None
    label = piece[:colon].strip()
    words = label.split()
    if not label or not 1 <= len(words) <= _LABEL_WORDS:
        return None
    if not (label[0].isupper() or label[0].isdigit()) or not any(ch.isalpha() for ch in label):
        return None
    if any(ch in _NOT_IN_LABEL for ch in label):
        return None
    return label


def line_fields(line: str, offset: int = 0) -> list[Field]:
    """The fields of one line when it is a form line (two or more labelled pieces), else []."""
    pieces: list[tuple[int, int]] = []
    pos = 0
    for gap in _GAP.finditer(line):
        if gap.start() > pos:
            pieces.append((pos, gap.start()))
        pos = gap.end()
    if pos < len(line):
        pieces.append((pos, len(line)))
    pieces = [(a + len(line[a:b]) - len(line[a:b].lstrip()), a + len(line[a:b].rstrip())) for a, b in pieces]
    pieces = [(a, b) for a, b in pieces if b > a]
    if len(pieces) < 2:
        return []
    labels = [_label(line[a:b]) for a, b in pieces]
    if sum(label is not None for label in labels) < 2:
        return []
    spans: list[list] = []  # [start, end, label]
    for (a, b), label in zip(pieces, labels, strict=True):
        if label is None and spans and spans[-1][2]:
            spans[-1][1] = b  # a value set apart from its label, or a value in several pieces
        else:
            spans.append([a, b, label or ""])
    fields = []
    for a, b, label in spans:
        text = line[a:b]
        value = text[text.find(":") + 1 :] if label else text
        fields.append(Field(offset + a, offset + b, label, " ".join(value.split())))
    return fields


def form_fields(text: str) -> list[Field]:
    """Every field of every form line of ``text``, with spans into ``text`` itself."""
    found: list[Field] = []
    for m in _LINE.finditer(text):
        line = m.group()
        if ":" in line and ("\t" in line or "   " in line or "\u00a0" in line):
            found.extend(line_fields(line, m.start()))
    return found


def form_lines(text: str) -> str:
    """``text`` with each form line written one field a line (``Label: value``), empty fields left out."""
    out: list[str] = []
    for line in text.split("\n"):
        fields = line_fields(line) if ":" in line else []
        if not fields:
            out.append(line)
            continue
        for f in fields:
            if f.empty:
                continue
            out.append(f"{f.label}: {f.value}" if f.label else f.value)
    return "\n".join(out)
