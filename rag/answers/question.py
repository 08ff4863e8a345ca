"""What a question pins down: the measure it asks for, and the names and periods an answer must match.

``What was Apple's total net sales for the three months ended July 1, 2023?`` asks for the measure
``total net sales``, of the entity ``Apple``, for the period ``July 1, 2023`` over ``three months``.
Nothing here knows a collection's vocabulary: names are capitalised words, periods are dates, years,
quarters and spans of months, read by their shape in English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..extractive import answer_kind
from ..text import DATE, MONTHS, content_words, stem

YEAR = re.compile(r"\b((?:19|20)\d\d)\b")
_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}
#: ``Q3 2023``, ``fiscal Q3 2023``, ``Q2 fiscal 2024``, ``third quarter of (fiscal) 2023``, ``2023 Q3``.
QUARTER = re.compile(
    r"\bQ([1-4])\s*(?:of\s+)?(?:fiscal\s+(?:year\s+)?|FY\s*)?((?:19|20)\d\d)?\b"
    r"|\b(first|second|third|fourth|1st|2nd|3rd|4th)\s+(?:fiscal\s+)?quarter(?:\s+of)?(?:\s+(?:fiscal\s+)?(?:year\s+)?((?:19|20)\d\d))?"
    r"|\b((?:19|20)\d\d)\s*Q([1-4])\b",
    re.I,
)
#: A span of months: ``three months``, ``9-month``, ``quarterly``, ``half-year``, ``year-to-date``.
SPAN = re.compile(
    r"\b(three|six|nine|twelve|3|6|9|12)[- ]months?\b|\b(quarter(?:ly)?|half[- ]year|year[- ]to[- ]date)\b", re.I
)
_SPAN_WORDS = {"3": "three", "6": "six", "9": "nine", "12": "twelve"}
FISCAL_YEAR = re.compile(r"\b(?:fiscal(?:\s+year)?|FY)\s*((?:19|20)\d\d)\b", re.I)
_WHOLE_YEAR = re.compile(
    r"\b(?:for|in|during|over)\s+(?:the\s+)?(?:full\s+|whole\s+|entire\s+)?(?:fiscal(?:\s+year)?|FY)\s*(?:19|20)\d\d\b",
    re.I,
)
_LATEST = re.compile(r"\b(latest|most recent|newest|last reported)\b", re.I)

#: Capitalised words that are question words or periods, not names.
_NOT_NAMES = (
    frozenset(
        """what which who whom whose when where why how was were is are did does do in on at for of the a an and or
    during as per from to by with according than this that these those it its q1 q2 q3 q4 fy ytd i""".split()  # noqa: SIM905
    )
    | frozenset(MONTHS)
    | frozenset(m[:3] for m in MONTHS)
    | frozenset(
        "monday tuesday wednesday thursday friday saturday sunday".split()  # noqa: SIM905
    )
)
_NAME = re.compile(r"[A-Za-z][\w&.'’-]*")


@dataclass(frozen=True)
class Period:
    """A period named by a question: a date, a quarter (of a year), a year, a span of months."""

    dates: tuple[tuple[int, int, int], ...] = ()  # (year, month, day)
    quarters: tuple[tuple[int, int], ...] = ()  # (quarter, year or 0)
    years: tuple[int, ...] = ()
    span: str = ""  # "three", "six", "nine", "twelve" (months), or ""
    fiscal: bool = False

    def __bool__(self) -> bool:
        return bool(self.dates or self.quarters or self.years or self.span)


@dataclass(frozen=True)
class Asked:
    """What a question asks for and what it pins down."""

    text: str
    #: Stemmed content words of the measure asked for, names included (periods and question words left out).
    measure: frozenset[str]
    names: tuple[str, ...] = ()
    period: Period = field(default_factory=Period)
    latest: bool = False
    #: The kind of value wanted: "number", "time", "person", "place" or "" (see :func:`rag.extractive.answer_kind`).
    kind: str = ""
    #: Words carried from an earlier turn of a chat (``... (about: ...)``): context, not required.
    context: frozenset[str] = frozenset()
    #: Acronyms of the question, lower case, letters only ("R&D" -> "rd", "EPS" -> "eps"), each with the
    #: measure words it left (``{"eps": frozenset({"ep"})}``): a label whose words spell one stands for them.
    acronyms: tuple[tuple[str, frozenset[str]], ...] = ()


def _dates(text: str) -> list[tuple[int, int, int]]:
    out = []
    for m in DATE.finditer(text):
        g = m.groups()
        if g[0]:
            month = _month_number(m.group().split()[0])
            out.append((int(g[1]), month, int(g[0])))
        elif g[2]:
            out.append((int(g[3]), _month_number(m.group().split()[1]), int(g[2])))
        elif g[4]:
            out.append((int(g[6]), int(g[4]), int(g[5])))
        elif g[7]:
            out.append((int(g[7]), int(g[8]), int(g[9])))
    return out


def _month_number(word: str) -> int:
    w = word.lower().rstrip(".")[:3]
    return next((i + 1 for i, m in enumerate(MONTHS) if m.startswith(w)), 0)


@lru_cache(maxsize=32768)
def read_period(text: str) -> Period:
    """The dates, quarters, years and span of months named in ``text``."""
    dates = _dates(text)
    without_dates = DATE.sub(" ", text)
    quarters = []
    for m in QUARTER.finditer(without_dates):
        g = m.groups()
        if g[0]:
            quarters.append((int(g[0]), int(g[1] or 0)))
        elif g[2]:
            if g[3]:  # "the fourth quarter" alone (of a game, of a year unnamed) pins no period
                quarters.append((_ORDINAL[g[2].lower()], int(g[3])))
        else:
            quarters.append((int(g[5]), int(g[4])))
    years = sorted(
        {int(y) for y in YEAR.findall(without_dates)} | {d[0] for d in dates} | {y for _, y in quarters if y}
    )
    span = ""
    sm = SPAN.search(text)
    if sm:
        span = _SPAN_WORDS.get(sm.group(1) or "", (sm.group(1) or "").lower()) if sm.group(1) else "three"
        if sm.group(2) and not sm.group(2).lower().startswith("quarter"):
            span = ""
    fiscal = FISCAL_YEAR.search(text)
    if fiscal and not span and not quarters and not dates and _WHOLE_YEAR.search(text):
        span = "twelve"  # "for fiscal year 2024": the year, not a quarter of it
    return Period(tuple(dates), tuple(quarters), tuple(years), span, bool(fiscal))


def read_names(question: str) -> tuple[str, ...]:
    """Names in the question: runs of capitalised words (``Intelligent Cloud``), words in capitals or with
    inner capitals (``IBM``, ``iPhone``); not the first word unless it is one of those, not question words
    or months. Possessives are dropped (``Apple's`` -> ``Apple``)."""
    names: list[str] = []
    current: list[str] = []
    words = list(_NAME.finditer(question))
    for i, m in enumerate(words):
        if current and question[words[i - 1].end() : m.start()].strip():  # punctuation between: a new name
            names.append(" ".join(current))
            current = []
        word = re.sub(r"['’]s?$", "", m.group()).strip(".-")
        before = question[max(0, m.start() - 2) : m.start()]
        if len(word) < 2 or re.search(r"\d-$", before):  # a letter alone, or "10-Q"
            if current:
                names.append(" ".join(current))
                current = []
            continue
        sentence_start = i == 0 or bool(re.search(r"[.?!;:]\s*$", question[: m.start()]))
        lower = word.lower()
        shaped = (word.isupper() and len(word) > 1) or bool(re.search(r"[a-z][A-Z]", word))
        capital = word[:1].isupper() and (not sentence_start or shaped or m.group().endswith(("'s", "’s")))
        if (capital or shaped) and lower not in _NOT_NAMES and not word[:1].isdigit():
            current.append(word)
            if m.group().endswith(("'s", "’s", "'", "’")):  # a possessive ends the name
                names.append(" ".join(current))
                current = []
            continue
        if current:
            names.append(" ".join(current))
            current = []
    if current:
        names.append(" ".join(current))
    return tuple(dict.fromkeys(names))


#: Words that say what kind of question it is, not what it measures.
_QUESTION_WORDS = frozenset(
    stem(w)
    for w in """much many report reported show shown state stated disclose disclosed according figure value
    amount level reveal revealed mention mentioned provide provided""".split()  # noqa: SIM905
)


#: The terms a chat carried from an earlier turn, at the end of a rewritten follow-up (see :mod:`rag.conversation`).
CARRIED = re.compile(r"\s*\(about: ([^()]*)\)\s*$")


#: What a "how ..." question asks for, in plain English ("how old was the pilot" asks for an age).
_HOW = {"old": "age", "far": "distance", "tall": "height", "heavy": "weight", "fast": "speed", "deep": "depth"}
_HOW_RE = re.compile(rf"\bhow ({'|'.join(_HOW)})\b", re.I)


def _measure_words(text: str) -> frozenset[str]:
    text = _HOW_RE.sub(lambda m: f"{m.group()} {_HOW[m.group(1).lower()]}", text)
    stripped = DATE.sub(" ", text)
    stripped = QUARTER.sub(" ", stripped)
    stripped = YEAR.sub(" ", stripped)
    stripped = SPAN.sub(" ", stripped)
    return frozenset(
        w
        for w in content_words(stripped)
        if w not in _PERIOD_WORDS | _QUESTION_WORDS and not w.isdigit() and len(w) > 1
    )


_PERIOD_WORDS = frozenset(
    stem(w)
    for w in ("quarter", "quarterly", "fiscal", "year", "month", "months", "ended", "end", "latest", "recent", "newest")
)


@lru_cache(maxsize=65536)
def topic_words(text: str) -> frozenset[str]:
    """The words of ``text`` that say what it is about, not when: dates, quarters, years, spans of
    months and words such as "ended" left out (a column header "Three Months Ended July 1, 2023" has
    none; "Commitments (In millions)" has "commit")."""
    return _measure_words(text) - {"million", "billion", "thousand", "unaudit", "except", "per", "share", "data"}


def read_question(question: str) -> Asked:
    """What ``question`` asks for (:class:`Asked`). Terms a chat carried over from an earlier turn
    (``And Mac? (about: Apple's, three months ended July 1, 2023, iPhone)``) pin down names and periods
    like the question's own, with two exceptions: a name of the question's own replaces the carried names
    ("And Mac?" after an iPhone question: a passage need not name the iPhone), and its measure words are
    only the question's own, unless it has none ("What about the nine months?" asks for the measure
    asked before)."""
    carried = CARRIED.search(question)
    own = question[: carried.start()] if carried else question
    measure = _measure_words(own)
    context = _measure_words(carried.group(1)) - measure if carried else frozenset()
    if not measure:
        measure, context = context, frozenset()
    names = read_names(own) or read_names(question)
    return Asked(
        question,
        measure,
        names,
        read_period(question),
        bool(_LATEST.search(question)),
        answer_kind(own),
        context,
        _acronyms(own, measure),
    )


#: An acronym: 2 to 5 capitals, "&" allowed between them ("R&D", "SG&A", "EPS"; not "Q3" or "10-Q").
_ACRONYM = re.compile(r"(?<![\w&-])[A-Z](?:&?[A-Z]){1,4}(?![\w&-])")


def _acronyms(text: str, measure: frozenset[str]) -> tuple[tuple[str, frozenset[str]], ...]:
    out: dict[str, frozenset[str]] = {}
    for m in _ACRONYM.finditer(text):
        letters = m.group().replace("&", "").lower()
        out[letters] = frozenset(content_words(m.group())) & measure
    return tuple(out.items())
