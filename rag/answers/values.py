"""The cell or field that holds the value a question asks for.

A cell matches when its row or field label (with its column header) holds the question's measure words
("total net sales", "altimeter setting"), and its column agrees with the question's period. Words that
only name the document (they are in its identity: "accident", "Apple") do not count as measure words
for cells of that document. An empty field, a dash, or a label with no value is never chosen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..extractive import kind_match
from ..page_forms import is_label
from ..text import content_words
from ..types import Passage
from .cells import Cell, cells_of
from .constraints import header_agrees
from .question import Asked

#: Least match (0-1) for a cell to be the answer.
MIN_CELL_SCORE = 0.5
#: Score lost per unit of match score by which a cell's passage stands below the best passage.
RANK_PENALTY = 0.2
#: Shortest stem that may match a longer one by prefix ("depart" ~ "departur").
PREFIX = 5


@dataclass(frozen=True)
class CellMatch:
    """A cell chosen for a question, with the passage it is in and its score."""

    cell: Cell
    passage: int
    score: float


def _matches(word: str, words: set[str]) -> bool:
    if word in words:
        return True
    return len(word) >= PREFIX and any(len(w) >= PREFIX and (w.startswith(word) or word.startswith(w)) for w in words)


def cell_score(
    asked: Asked,
    cell: Cell,
    document_words: set[str],
    weight: dict[str, float] | None = None,
    table_words: frozenset[str] = frozenset(),
) -> float:
    """How well ``cell`` answers ``asked``, 0 to 1 (0: not at all, or its column names another period).

    Recall: the weighted share of the question's measure words that the cell's label and header hold
    (words that also name the document, such as "accident" in an accident report, are optional: they
    add to it but are not required). Precision: the weighted share of the label's words the question
    asks for. ``weight`` gives rare label words more say (see :func:`label_weights`). ``table_words`` are
    the words of what the table is about (its section heading and caption: "Net sales by category"): a
    measure word found only there counts half."""
    if cell.empty or (asked.kind in ("number", "time") and not kind_match(asked.kind, cell.value, asked.text)):
        return 0.0
    agrees = header_agrees(asked.period, cell.header)
    if agrees is False:
        return 0.0
    label_words = set(content_words(cell.label))
    if not label_words or not asked.measure:
        return 0.0
    named = label_words | set(content_words(cell.header))
    w = weight or {}

    def weigh(words: set[str]) -> float:
        return sum(w.get(x, 1.0) for x in words)

    required = {x for x in asked.measure if x not in document_words} or set(asked.measure)
    optional = (set(asked.measure) | asked.context) - required
    found = {x for x in required | optional if _matches(x, named)}
    if not found & {x for x in required | optional if _matches(x, label_words)}:
        return 0.0  # the row or field itself must be the one asked about, not only its column
    about = {x for x in (required | optional) - found if _matches(x, set(table_words))}
    recall = (weigh(found & required) + 0.5 * weigh(about & required)) / weigh(required) + 0.25 * weigh(
        (found | about) & optional
    ) / max(weigh(optional), 1e-9) * bool(optional)
    precision = weigh({x for x in label_words if _matches(x, required | optional)}) / weigh(label_words)
    score = 0.6 * min(recall, 1.0) + 0.4 * precision
    if agrees:
        score += 0.05
    return min(score, 1.0)


def label_weights(cells: Sequence[Cell]) -> dict[str, float]:
    """Rarity of each label word among ``cells`` (a word on every label weighs least)."""
    counts: dict[str, int] = {}
    for cell in cells:
        for word in set(content_words(cell.label)) | set(content_words(cell.header)):
            counts[word] = counts.get(word, 0) + 1
    n = max(1, len(cells))
    return {word: math.log(1 + n / count) for word, count in counts.items()}


def best_cell(asked: Asked, passages: Sequence[Passage], document_words: dict[str, set[str]]) -> CellMatch | None:
    """The best-matching cell of ``passages`` (allowed ones only, in rank order), or None below
    :data:`MIN_CELL_SCORE`. A cell of a lower passage loses a little (:data:`RANK_PENALTY` times how far
    its passage's score is below the best); ties go to the earlier cell of a row (the current period
    stands first in statements)."""
    found = [(rank, order, cell) for rank, p in enumerate(passages) for order, cell in enumerate(cells_of(p))]
    weight = label_weights([cell for _, _, cell in found])
    about = [table_context(p) for p in passages]
    top = max((p.score for p in passages), default=0.0)
    best: CellMatch | None = None
    for rank, order, cell in found:
        passage = passages[rank]
        score = cell_score(asked, cell, document_words.get(passage.source, set()), weight, about[rank])
        if score <= 0:
            continue
        score -= RANK_PENALTY * max(0.0, top - passage.score) + 0.0001 * order
        if best is None or score > best.score:
            best = CellMatch(cell, rank, score)
    return best if best is not None and best.score >= MIN_CELL_SCORE else None


def table_context(passage: Passage) -> frozenset[str]:
    """Words that say what a passage's tables are about: its section heading and its caption lines (short
    lines that are not rows or fields, or that end in a colon)."""
    lines = [passage.section]
    for line in passage.text.split("\n"):
        stripped = line.strip()
        if not stripped or " | " in stripped or is_label(stripped):
            continue
        if stripped.endswith(":") or len(stripped.split()) <= 8:
            lines.append(stripped)
    return frozenset(content_words(" ".join(lines)))
