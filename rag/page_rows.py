"""Positioned words into rows and fragments, and the writer that records a box for each piece of text.

Shared by the page layout (:mod:`rag.layout`) and the table reader (:mod:`rag.pdf_tables`).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from .boxes import Run

#: A gap wider than this many times the row's text height splits a row into fragments (cells, columns).
FRAGMENT_GAP = 1.2
NUMERIC = re.compile(r"^[\s$€£¥(]*[-+−–—]?[\d.,]*\d[\d.,]*\s*(?:%\)?|\)\s*%?)?[*†]?$|^[\s$]*[—–-]+\s*$")
YEARISH = re.compile(r"^(?:19|20)\d\d$|^\d{1,2}$|^[A-Z][a-z]+\.? \d{1,2},?(?: (?:19|20)\d\d)?$")
CURRENCY = {"$", "€", "£", "¥"}


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
        """Left edge of the first word."""
        return self.words[0].x0

    @property
    def x1(self) -> float:
        """Right edge of the rightmost word."""
        return max(w.x1 for w in self.words)

    @property
    def text(self) -> str:
        """The words joined by spaces."""
        return " ".join(w.text for w in self.words)

    @property
    def numeric(self) -> bool:
        """Whether the text is a figure (amount, percentage, dash for nil)."""
        return bool(NUMERIC.match(self.text))


@dataclass
class Row:
    """Words at one height of the page, in fragments from left to right; ``y0`` and ``y1`` are measured square
    to the page's lines of text (on a page scanned askew they differ from the words' own boxes)."""

    fragments: list[Fragment]
    y0: float
    y1: float

    @property
    def text(self) -> str:
        """The fragments joined by spaces."""
        return " ".join(f.text for f in self.fragments)

    @property
    def x0(self) -> float:
        """Left edge of the first fragment."""
        return self.fragments[0].x0

    @property
    def x1(self) -> float:
        """Right edge of the last fragment."""
        return self.fragments[-1].x1

    @property
    def height(self) -> float:
        """Text height (at least 1 point)."""
        return max(1.0, self.y1 - self.y0)


class TextWriter:
    """Builds the output text while recording the box of every piece written."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.runs: list[Run] = []
        self.page = 0
        self.scale = (1.0, 1.0)
        self._sentence_ended = False  # the last word closed a sentence: the next one starts a run of its own

    def plain(self, text: str) -> None:
        """Write text that has no box (separators, line breaks)."""
        self.parts.append(text)
        self.length += len(text)

    def words(self, words: Sequence[Word], joiner: str = " ") -> None:
        """Write ``words`` with ``joiner`` between them, each with its box."""
        for i, word in enumerate(words):
            if i:
                self.plain(joiner)
            self.word(word)

    def word(self, word: Word, text: str | None = None) -> None:
        """Write one word (or ``text`` in its place) with its box, merged with the previous box on its line
        unless a sentence ended there: a quoted sentence's box then ends and starts exactly at its words,
        where a cut inside a run is only estimated from the run's average character width."""
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
            and not self._sentence_ended
        ):
            self.runs[-1] = Run(last.start, self.length + len(text), self.page, last.x0, last.y0, box[2], last.y1)
        else:
            self.runs.append(Run(self.length, self.length + len(text), self.page, *box))
        self._sentence_ended = text.rstrip("\"'”’)]").endswith((".", "!", "?"))
        self.plain(text)

    def text(self) -> str:
        """Everything written so far."""
        return "".join(self.parts)


def rows_of(words: Sequence[Word]) -> list[Row]:
    """Group words into rows by vertical overlap, then each row into fragments at wide gaps.

    On a page scanned askew (:func:`skew_of`) heights are measured square to its lines of text, so that a
    row's label and its figures across the page stay one row; level text is grouped as it is printed.
    """
    rows = _grouped(words, 0.0)
    if abs(_rows_slope(rows)) < MIN_SKEW / 4:  # level (a born-digital page's text layer): no more to measure
        return _rows(rows, 0.0)
    skew = 0.0
    for _ in range(_SKEW_ROUNDS):
        residual = skew_of(words, skew)
        if residual == 0.0:
            break
        skew += residual
    return _rows(_grouped(words, skew) if skew else rows, skew)


#: Smallest slope (height change per unit of width) corrected when words are grouped into rows: 0.1 degree,
#: under a point of drift across a page. Text layers of born-digital pages are level and grouped as printed.
MIN_SKEW = 0.002
#: Largest slope corrected (5 degrees): text at a steeper angle is set so on purpose, not scanned askew.
MAX_SKEW = 0.09
#: Lines whose slope is measured: at least this many, each of 3 words or more and this many times its text
#: height wide.
_SKEW_ROWS = 3
_SKEW_SPAN = 8.0
#: Widest gap (times the text height) between two words chained as neighbours on a line.
_CHAIN_GAP = 4.0
#: Times the slope is measured, each time square to the last measure (chains then follow lines further).
_SKEW_ROUNDS = 4


def _grouped(words: Sequence[Word], skew: float) -> list[list[Word]]:
    """Words in rows of vertical overlap, heights taken ``skew`` x (x position) higher; each row left to right."""

    def lift(word: Word) -> float:
        return skew * (word.x0 + word.x1) / 2

    rows: list[list[Word]] = []
    bands: list[tuple[float, float]] = []
    for word in sorted(words, key=lambda w: ((w.y0 + w.y1) / 2 - lift(w), w.x0)):
        middle = (word.y0 + word.y1) / 2 - lift(word)
        if rows and bands[-1][0] <= middle <= bands[-1][1]:
            rows[-1].append(word)
            continue
        rows.append([word])
        bands.append((word.y0 - lift(word), word.y1 - lift(word)))
    for row_words in rows:
        row_words.sort(key=lambda w: w.x0)
    return rows


def skew_of(words: Sequence[Word], skew: float = 0.0) -> float:
    """The slope of a page's lines of text beyond ``skew`` (height gained per unit of width; negative when
    they rise to the right, as y runs down the page). Each word is chained to the nearest word on its right
    whose middle is level with its own (within a third of its height, heights taken square to ``skew``);
    the median of the slopes fitted to the chains that span a width is the page's. 0 for level text, and
    for a slope under :data:`MIN_SKEW` or over :data:`MAX_SKEW`."""
    items = sorted(
        (((w.x0 + w.x1) / 2, (w.y0 + w.y1) / 2 - skew * (w.x0 + w.x1) / 2, max(1e-6, w.y1 - w.y0), w) for w in words),
        key=lambda item: item[:3],
    )
    by_middle = sorted(range(len(items)), key=lambda i: items[i][1])
    middles = [items[i][1] for i in by_middle]
    after: dict[int, int] = {}  # word -> the next word on its line
    taken: set[int] = set()
    for i, (x, y, height, word) in enumerate(items):
        lo, hi = bisect_left(middles, y - height / 3), bisect_right(middles, y + height / 3)
        best, best_gap = -1, _CHAIN_GAP * height
        for k in by_middle[lo:hi]:
            gap = items[k][3].x0 - word.x1
            if items[k][0] > x and -0.5 * height < gap < best_gap:
                best, best_gap = k, gap
        if best >= 0 and best not in taken:
            after[i] = best
            taken.add(best)
    slopes: list[float] = []
    for first in sorted(set(after) - taken):
        chain = [first]
        while chain[-1] in after:  # each step goes right: no chain comes back to a word
            chain.append(after[chain[-1]])
        xs = [items[i][0] for i in chain]
        ys = [items[i][1] for i in chain]
        height = median(items[i][2] for i in chain)
        if len(chain) < 3 or xs[-1] - xs[0] < _SKEW_SPAN * height:
            continue
        slopes.append(_fitted_slope(xs, ys))
    if len(slopes) < _SKEW_ROWS:
        return 0.0
    slope = median(slopes)
    return slope if MIN_SKEW <= abs(slope) <= MAX_SKEW - abs(skew) else 0.0


def _rows_slope(rows: list[list[Word]]) -> float:
    """A first, quick look at a page's slope: the median of the slopes fitted to the middles of its rows
    grouped level that span a width (0 when there are none). Exactly 0 on level text; on a page scanned
    askew such rows mix lines and understate the slope, which :func:`skew_of` then measures."""
    slopes: list[float] = []
    for row in rows:
        xs = [(w.x0 + w.x1) / 2 for w in row]
        if len(row) < 3 or xs[-1] - xs[0] < _SKEW_SPAN * (median([w.y1 - w.y0 for w in row]) or 1.0):
            continue
        slopes.append(_fitted_slope(xs, [(w.y0 + w.y1) / 2 for w in row]))
    return median(slopes) if slopes else 0.0


def _fitted_slope(xs: list[float], ys: list[float]) -> float:
    """The slope of the least-squares line through points (``xs`` spread over a width)."""
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def _rows(rows: list[list[Word]], skew: float) -> list[Row]:
    """Rows of words into :class:`Row` objects, cut into fragments at wide gaps; a row's top and bottom are
    measured square to the page's lines (``skew``), as its words were grouped."""
    out: list[Row] = []
    for row_words in rows:
        height = median([w.y1 - w.y0 for w in row_words]) or 1.0
        fragments = [Fragment([row_words[0]])]
        for word in row_words[1:]:
            gap = word.x0 - fragments[-1].words[-1].x1
            wide = gap > FRAGMENT_GAP * height and fragments[-1].text not in CURRENCY
            if wide or (word.text in CURRENCY and gap > 0.3 * height):
                fragments.append(Fragment([word]))
            else:
                fragments[-1].words.append(word)
        lifts = [skew * (w.x0 + w.x1) / 2 for w in row_words]
        top = min(w.y0 - lift for w, lift in zip(row_words, lifts, strict=True))
        bottom = max(w.y1 - lift for w, lift in zip(row_words, lifts, strict=True))
        out.append(Row(fragments, top, bottom))
    return out
