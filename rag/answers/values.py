"""The cell or field that holds the value a question asks for.

A cell matches when its row or field label (with its column header) holds the question's measure words
("total net sales", "altimeter setting"), and its column agrees with the question's period. Words that
only name the document (they are in its identity: "accident", "Apple") do not count as measure words
for cells of that document. An empty field, a dash, or a label with no value is never chosen.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from ..extractive import kind_match
from ..page_forms import is_label
from ..text import content_words
from ..types import Passage
from .acronyms import acronym_keys, expanded
from .cells import Cell, cells_of
from .constraints import document_period, header_agrees
from .question import Asked, Period, read_period, topic_words

#: Least match (0-1) for a cell to be the answer.
MIN_CELL_SCORE = 0.5
#: Least match of a second cell, for the measure words the first one's label does not hold (it must also
#: stand in the first one's table and column).
MIN_SECOND_SCORE = 0.4
#: Score lost per unit of match score by which a cell's passage stands below the best passage.
RANK_PENALTY = 0.2
_TOKEN = re.compile(r"[\w'’-]+")
#: A column of changes ("$ Change", "% Change", "Year-over-Year", "Increase (Decrease)"), and a question
#: that asks about one.
_CHANGE = re.compile(r"\b(?:change|increase|decrease|variance)\b|\w-over-\w", re.I)
_CHANGE_ASKED = re.compile(
    r"\b(?:chang\w*|increas\w*|decreas\w*|grow\w*|grew|ris[ei]\w*|rose|f[ae]ll\w*|declin\w*|compar\w*|differ\w*"
    r"|up|down|over)\b|%|percent",
    re.I,
)
#: A question that asks for a share or a rate, and the score a percentage cell loses when one does not
#: ("net income" asks for the amount, not net income as a percentage of revenue).
_PERCENT_ASKED = re.compile(r"%|\bper ?cent\w*|\brates?\b|\bratios?\b|\bmargins?\b|\bproportion|\bshare of\b", re.I)
PERCENT_PENALTY = 0.15
#: Shortest stem that may match a longer one by prefix ("depart" ~ "departur").
PREFIX = 5


@dataclass(frozen=True)
class CellMatch:
    """A cell chosen for a question, with the passage it is in and its score."""

    cell: Cell
    passage: int
    score: float


@lru_cache(maxsize=65536)
def _words(text: str) -> frozenset[str]:
    return frozenset(content_words(text))


@lru_cache(maxsize=65536)
def _keys(text: str) -> frozenset[str]:
    """What two words that :func:`_matches` must share: the word, or its first :data:`PREFIX` letters."""
    return frozenset(w[:PREFIX] for w in _words(text))


@lru_cache(maxsize=256)
def asked_keys(asked: Asked) -> frozenset[str]:
    """The keys of a question's measure words and acronyms, to find the labels that may match it."""
    return frozenset(w[:PREFIX] for w in asked.measure | asked.context) | {"^" + a for a, _ in asked.acronyms}


@lru_cache(maxsize=16384)
def _cells(text: str, start: int, section: str) -> tuple[Cell, ...]:
    return tuple(cells_of(Passage("", start, start + len(text), text, 0.0, section)))


@lru_cache(maxsize=262144)
def _matches(word: str, words: frozenset[str]) -> bool:
    """Whether ``word`` is one of ``words``, or (both at least :data:`PREFIX` letters) begins one or is begun by one."""
    if word in words:
        return True
    return len(word) >= PREFIX and any(len(w) >= PREFIX and (w.startswith(word) or word.startswith(w)) for w in words)


def cell_score(
    asked: Asked,
    cell: Cell,
    document_words: set[str],
    weight: dict[str, float] | None = None,
    table_words: frozenset[str] = frozenset(),
    period: Period | None = None,
) -> float:
    """How well ``cell`` answers ``asked``, 0 to 1 (0: not at all, or its column names another period).

    Recall: the weighted share of the question's measure words that the cell's label and header hold
    (words that also name the document, such as "accident" in an accident report, are optional: they
    add to it but are not required). Precision: the weighted share of the label's words the question
    asks for. ``weight`` gives rare label words more say (see :func:`label_weights`). ``table_words`` are
    the words of what the table is about (its section heading and caption: "Net sales by category"): a
    measure word found only there counts half. ``period`` is the question's period as the cell's document
    names it (see :func:`rag.answers.constraints.document_period`), by default the question's own."""
    asked = expanded(asked, cell.label, document_words)
    label_words = _words(cell.label)
    asked_words = asked.measure | asked.context
    if (
        not asked.measure
        or _keys(cell.label).isdisjoint(w[:PREFIX] for w in asked_words)
        or not any(_matches(x, label_words) for x in asked_words)
    ):
        return 0.0  # the row or field itself must be the one asked about, not only its column
    if cell.empty or (asked.kind in ("number", "time") and not kind_match(asked.kind, cell.value, asked.text)):
        return 0.0
    if asked.kind in ("person", "place") and not _names_something(cell.value):
        return 0.0
    agrees = header_agrees(asked.period if period is None else period, cell.header)
    if agrees is False or (_CHANGE.search(cell.header) and not _CHANGE_ASKED.search(asked.text)):
        return 0.0  # another period, or a column of changes when the question asks for the value itself
    named = _named(cell.label, cell.header)
    w = weight or {}

    def weigh(words: set[str] | frozenset[str]) -> float:
        return sum(w.get(x, 1.0) for x in words)

    required = {x for x in asked.measure if x not in document_words} or set(asked.measure)
    optional = (set(asked.measure) | asked.context) - required
    wanted = frozenset(required | optional)
    found = {x for x in wanted if _matches(x, named)}
    if not found & {x for x in wanted if _matches(x, label_words)}:
        return 0.0  # the row or field itself must be the one asked about, not only its column
    about = {x for x in wanted - found if _matches(x, table_words)}
    recall = (weigh(found & required) + 0.5 * weigh(about & required)) / weigh(required) + 0.25 * weigh(
        (found | about) & optional
    ) / max(weigh(optional), 1e-9) * bool(optional)
    described = label_words | topic_words(cell.header)  # "Total" under "Commitments" is about commitments
    precision = weigh({x for x in described if _matches(x, wanted)}) / weigh(described)
    score = 0.6 * min(recall, 1.0) + 0.4 * precision
    if agrees:
        score += 0.05
    if "%" in f"{cell.value} {cell.header}" and not _PERCENT_ASKED.search(asked.text):
        score -= PERCENT_PENALTY
    return max(min(score, 1.0), 0.0)


@lru_cache(maxsize=65536)
def _named(label: str, header: str) -> frozenset[str]:
    return _words(label) | _words(header)


def _by_recency(passage: Passage) -> tuple[tuple[int, Cell], ...]:
    """A passage's cells, each with its place among the cells of its row: the column of the latest date or
    year first (the current period, whether a statement sets it first or last), else in reading order."""
    return _cells_by_recency(passage.text, passage.start, passage.section)


@lru_cache(maxsize=16384)
def _cells_by_recency(text: str, start: int, section: str) -> tuple[tuple[int, Cell], ...]:
    cells = _cells(text, start, section)
    rows: dict[int, list[Cell]] = {}
    for cell in cells:
        rows.setdefault(cell.label_start, []).append(cell)
    out: list[tuple[int, Cell]] = []
    for row in rows.values():
        latest = sorted(range(len(row)), key=lambda i: (_header_time(row[i].header), -i), reverse=True)
        out.extend((place, row[i]) for place, i in enumerate(latest))
    return tuple(out)


def _with_keys(passage: Passage, keys: frozenset[str]) -> list[tuple[int, Cell]]:
    """The cells of :func:`_by_recency` whose label shares one of ``keys`` (see :func:`_keys`), in order."""
    index = _key_index(passage.text, passage.start, passage.section)
    places = sorted({i for key in keys for i in index.get(key, ())})
    cells = _cells_by_recency(passage.text, passage.start, passage.section)
    return [cells[i] for i in places]


@lru_cache(maxsize=16384)
def _key_index(text: str, start: int, section: str) -> dict[str, tuple[int, ...]]:
    index: dict[str, list[int]] = {}
    for i, (_, cell) in enumerate(_cells_by_recency(text, start, section)):
        for key in _keys(cell.label) | acronym_keys(cell.label):
            index.setdefault(key, []).append(i)
    return {key: tuple(places) for key, places in index.items()}


@lru_cache(maxsize=65536)
def _header_time(header: str) -> tuple[int, int, int]:
    """The latest date a column header names, (year, month, day); a year alone counts as its first day."""
    period = read_period(header)
    return max([*period.dates, *((y, 0, 0) for y in period.years)], default=(0, 0, 0))


def _names_something(value: str) -> bool:
    """Whether a value may be a person, organisation or place: it starts with a letter and holds a word of
    letters only (not a time "1710 EST", a figure, or a code "N461TC")."""
    stripped = value.strip()
    return stripped[:1].isalpha() and any(w.isalpha() and len(w) > 1 for w in _TOKEN.findall(stripped))


def may_hold(asked: Asked, passage: Passage) -> bool:
    """Whether any row or field label of ``passage`` shares a word with the question's measure (a cheap
    test before scoring its cells)."""
    return not asked_keys(asked).isdisjoint(_label_keys(passage.text, passage.start, passage.section))


@lru_cache(maxsize=16384)
def _label_keys(text: str, start: int, section: str) -> frozenset[str]:
    return frozenset().union(*(_keys(c.label) | acronym_keys(c.label) for c in _cells(text, start, section)))


def label_weights(cells: Sequence[Cell]) -> dict[str, float]:
    """Rarity of each label word among ``cells`` (a word on every label weighs least)."""
    return _rarity(_count_words(cells), len(cells))


def _count_words(cells: Sequence[Cell]) -> dict[str, int]:
    """How many of ``cells`` hold each word of their label and column header."""
    counts: dict[str, int] = {}
    for cell in cells:
        for word in _named(cell.label, cell.header):
            counts[word] = counts.get(word, 0) + 1
    return counts


def _rarity(counts: Mapping[str, int], n: int) -> dict[str, float]:
    return {word: math.log(1 + max(1, n) / count) for word, count in counts.items()}


@lru_cache(maxsize=16384)
def _label_counts(text: str, start: int, section: str) -> tuple[dict[str, int], int]:
    cells = _cells(text, start, section)
    return _count_words(cells), len(cells)


def passage_weights(passages: Sequence[Passage], context: Sequence[Passage] = ()) -> dict[str, float]:
    """:func:`label_weights` of all the cells of ``passages`` and of those of ``context`` (e.g. every passage
    of a document) whose chunk is not one of ``passages``'. Each passage's counts are kept, and so are
    the last contexts' totals (a document's passages come back question after question)."""
    seen = {p.chunk_id for p in passages}
    counts: dict[str, int] = {}
    n = 0
    if context:
        total, n = _context_counts(tuple((p.text, p.start, p.section) for p in context))
        counts = dict(total)
        for p in context:  # those also in ``passages`` are counted with them below
            if p.chunk_id in seen:
                n -= _add_counts(counts, p, -1)
    for p in passages:
        n += _add_counts(counts, p, 1)
    return _rarity({word: count for word, count in counts.items() if count}, n)


def _add_counts(counts: dict[str, int], p: Passage, sign: int) -> int:
    some, cells = _label_counts(p.text, p.start, p.section)
    for word, count in some.items():
        counts[word] = counts.get(word, 0) + sign * count
    return cells


@lru_cache(maxsize=64)
def _context_counts(passages: tuple[tuple[str, int, str], ...]) -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    n = 0
    for text, start, section in passages:
        some, cells = _label_counts(text, start, section)
        n += cells
        for word, count in some.items():
            counts[word] = counts.get(word, 0) + count
    return counts, n


def best_cell(
    asked: Asked,
    passages: Sequence[Passage],
    document_words: dict[str, set[str]],
    identities: Mapping[str, str] | None = None,
    context: Sequence[Passage] = (),
    one_value: bool = False,
) -> CellMatch | None:
    """The best-matching cell of ``passages`` (allowed ones only, in rank order), or None below
    :data:`MIN_CELL_SCORE`. A cell of a lower passage loses a little (:data:`RANK_PENALTY` times how far
    its passage's score is below the best); ties go to the row's latest column, else its earlier cell
    (see :func:`_by_recency`). ``identities`` (source -> what the document says about itself) place
    the question's quarter in each document's own calendar. How rare a label word is, is judged among the
    cells of ``passages`` and ``context`` (for example every passage of the document). For a question that
    asks for ``one_value`` (not an explanation), a measure word that no label holds weighs as the rarest
    label word: "gross margin" is not answered by "Gross lease liabilities"."""
    keys = asked_keys(asked)
    found = [(rank, order, cell) for rank, p in enumerate(passages) for order, cell in _with_keys(p, keys)]
    weight = passage_weights(passages, context)
    by_key: dict[str, list[str]] = {}
    for label_word in weight:
        by_key.setdefault(label_word[:PREFIX], []).append(label_word)
    for word in asked.measure | asked.context:  # a question word weighs as the label words it matches
        if word not in weight:
            matched = [weight[w] for w in by_key.get(word[:PREFIX], ()) if _matches(word, frozenset((w,)))]
            if matched:
                weight[word] = max(matched)
            elif one_value and weight:  # no label holds it: as rare as the rarest label word
                weight[word] = max(weight.values())
    about = [table_context(p) for p in passages]
    periods = {
        s: document_period(asked.period, (identities or {}).get(s, ""), asked.latest)
        for s in {p.source for p in passages}
    }
    top = max((p.score for p in passages), default=0.0)
    unplaced = _unplaced_rows(found)
    best: CellMatch | None = None
    for rank, order, cell in found:
        passage = passages[rank]
        if (rank, cell.label_start) in unplaced and periods[passage.source]:
            continue  # several values and no column headers: which one is the asked period's is unknown
        score = cell_score(
            asked, cell, document_words.get(passage.source, set()), weight, about[rank], periods[passage.source]
        )
        if score <= 0:
            continue
        score -= RANK_PENALTY * max(0.0, top - passage.score) + 0.0001 * order
        if best is None or score > best.score:
            best = CellMatch(cell, rank, score)
    return best if best is not None and best.score >= MIN_CELL_SCORE else None


def _unplaced_rows(found: Sequence[tuple[int, int, Cell]]) -> set[tuple[int, int]]:
    """The rows (passage rank, label offset) of ``found`` with two or more cells (empty ones too) under no
    column header at all (a table whose header row was not read with it): no column can be told from another."""
    cells: dict[tuple[int, int], int] = {}
    for rank, _, cell in found:
        if cell.kind == "cell" and not cell.header.strip():
            cells[(rank, cell.label_start)] = cells.get((rank, cell.label_start), 0) + 1
    return {row for row, n in cells.items() if n > 1}


#: A question that asks for two measures at once ("X and Y", "X compared with Y").
_TWO = re.compile(r"\band\b|\bcompar\w*|\bversus\b|\bvs\b|\bagainst\b|\brelative to\b|\brelate\w* to\b", re.I)


def second_cell(
    asked: Asked,
    passages: Sequence[Passage],
    first: CellMatch,
    document_words: dict[str, set[str]],
    identities: Mapping[str, str] | None = None,
) -> CellMatch | None:
    """For a question that asks for two measures ("gaming and professional segments", "operating
    expenses compared to revenue"): the best cell of another row, in the first cell's passage and column,
    for the measure words the first cell's label does not hold; None when there is none."""
    if not _TWO.search(asked.text):
        return None
    source = passages[first.passage].source
    held = _words(first.cell.label)
    rest = frozenset(w for w in asked.measure if not _matches(w, held) and w not in document_words.get(source, set()))
    if not rest:
        return None
    same = [
        c
        for c in _cells(passages[first.passage].text, passages[first.passage].start, passages[first.passage].section)
        if c.header == first.cell.header and c.label != first.cell.label
    ]
    weight = label_weights(same)
    period = document_period(asked.period, (identities or {}).get(source, ""), asked.latest)
    about = table_context(passages[first.passage])
    narrowed = replace(asked, measure=rest, context=frozenset())
    scored = [(cell_score(narrowed, c, document_words.get(source, set()), weight, about, period), c) for c in same]
    best = max(scored, key=lambda sc: sc[0], default=None)
    if best is None or best[0] < MIN_SECOND_SCORE:
        return None
    return CellMatch(best[1], first.passage, best[0])


def with_value(passages: Sequence[Passage], match: CellMatch) -> CellMatch | None:
    """For a cell of a column of changes ("$ Change: 2"): the value it changes, the same row's cell of its
    latest column that is not a change ("Interest expense, Three Months Ended April 30, 2023: (66)"), to
    quote beside it; None for any other cell, or a row without such a value."""
    if not _CHANGE.search(match.cell.header):
        return None
    passage = passages[match.passage]
    for _, cell in _by_recency(passage):  # each row's latest column first
        if cell.label_start == match.cell.label_start and not cell.empty and not _CHANGE.search(cell.header):
            return CellMatch(cell, match.passage, match.score)
    return None


def prepare(passage: Passage) -> None:
    """Work out now what the cell search reads of ``passage`` (its cells, their label words and counts,
    what its tables are about), kept for the questions to come (see :meth:`rag.answers.Answerer.prepare`)."""
    text, start, section = passage.text, passage.start, passage.section
    _key_index(text, start, section)
    _label_keys(text, start, section)
    _label_counts(text, start, section)
    table_context(passage)


def table_context(passage: Passage) -> frozenset[str]:
    """Words that say what a passage's tables are about: its section heading and its caption lines (short
    lines that are not rows or fields, or that end in a colon)."""
    return _table_context(passage.text, passage.section)


@lru_cache(maxsize=16384)
def _table_context(text: str, section: str) -> frozenset[str]:
    lines = [section]
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or " | " in stripped or is_label(stripped):
            continue
        if stripped.endswith(":") or len(stripped.split()) <= 8:
            lines.append(stripped)
    return frozenset(content_words(" ".join(lines)))
