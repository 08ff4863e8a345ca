"""Sections of plain text and Markdown: the headings that start at each offset (chunks carry them)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """A heading (or PDF page) that starts at ``start`` in the document text."""

    start: int
    title: str


_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_SETEXT = re.compile(r"^(?P<title>[^\n]+)\n(?:=+|-+)[ \t]*$", re.M)
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.M)


def markdown_sections(text: str) -> list[Section]:
    """ATX (``# Title``) and setext headings of a markdown text, outside code fences."""
    fenced: list[tuple[int, int]] = []
    marks = [m.start() for m in _FENCE.finditer(text)]
    for a, b in zip(marks[0::2], marks[1::2] + [len(text)] * (len(marks) % 2), strict=False):
        fenced.append((a, b))

    def in_fence(pos: int) -> bool:
        return any(a <= pos < b for a, b in fenced)

    found = [Section(m.start(), m.group(2).strip()) for m in _MD_HEADING.finditer(text) if not in_fence(m.start())]
    found += [
        Section(m.start(), m.group("title").strip())
        for m in _SETEXT.finditer(text)
        if m.group("title").strip() and not in_fence(m.start()) and not m.group("title").lstrip().startswith("#")
    ]
    return sorted(found, key=lambda s: s.start)


_LINE = re.compile(r"[^\n]+")
_HEADING_MARK = re.compile(r"^(?:<[hH][1-6]>?|[<#]+)")  # "<h2Title" or "## Title"; not the H of "High"


def text_sections(text: str) -> list[Section]:
    """Heading-like lines of plain text: short, unpunctuated lines followed by a longer paragraph."""
    sections: list[Section] = []
    lines = list(_LINE.finditer(text))
    for i, m in enumerate(lines[:-1]):
        line = m.group().strip()
        nxt = lines[i + 1].group().strip()
        words = line.split()
        if (
            2 <= len(words) <= 12
            and len(line) <= 100
            and line[-1] not in ".,;:!?\"'”)-"
            and len(words[-1]) > 1
            and (line[0].isupper() or line[0] in "<#")
            and line.count("(") == line.count(")")
            and nxt[:1].isupper()
            and len(nxt.split()) > len(words) + 3
        ):
            sections.append(Section(m.start(), _HEADING_MARK.sub("", line).strip() or line))
    return sections


_PARAGRAPH = re.compile(r"[^\n]+(?:\n[^\n]+)*")
_CAPTION_WORDS = 24
_CAPTION_CHARS = 200


def caption_paragraphs(text: str) -> list[Section]:
    """Stand-alone one-line paragraphs that read as headings or table captions (page text of a PDF).

    A caption has a blank line (or the text's edge) on both sides, at most 24 words, letters, no table
    cell separator, and no sentence end: "CONDENSED CONSOLIDATED STATEMENTS OF CASH FLOWS (In millions)"
    or "Note 4 - Debt", not "See accompanying Notes." nor a page number.
    """
    found: list[Section] = []
    for m in _PARAGRAPH.finditer(text):
        line = m.group().strip()
        if (
            "\n" not in line
            and 0 < len(line) <= _CAPTION_CHARS
            and len(line.split()) <= _CAPTION_WORDS
            and " | " not in line
            and line[-1] not in ".!?;,"
            and sum(c.isalpha() for c in line) >= max(3, len(line) // 2)
            and (line[0].isupper() or line[0].isdigit())
        ):
            found.append(Section(m.start(), line))
    return found


# ---------------------------------------------------------------- HTML
