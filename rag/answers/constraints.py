"""Checks of a passage (with what its document says about itself) against what a question pins down.

A passage may answer only if every name the question gives appears in it or in its document's identity
(file name, title, first-page lines), and every period the question gives (a date, a quarter, a year)
appears there too. A table cell must also sit in a column whose period agrees with the question's.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

from .kept import kept_per_text
from .question import DATE, YEAR, Asked, Period, _dates, read_period

_SPAN_IN_HEADER = re.compile(r"\b(three|six|nine|twelve)\s+months\b|\b(quarter|year)\s+ended\b", re.I)
#: A line that gives the end of the period a document reports on ("For the quarterly period ended ...").
_PERIOD_ENDED = re.compile(r"\b(?:period|quarter|three months|thirteen weeks)\s+ended\b", re.I)
#: How many months a quarter's last month may stand before or after the calendar quarter's (fiscal years
#: that end in June put "Q1 2023" at September 2022; those that end in January, at April 2023).
_QUARTER_WINDOW = (-6, 1)
_FISCAL_QUARTER_WINDOW = (-11, 1)


@dataclass(frozen=True)
class Scope:
    """The text a passage is judged by: its own text and its document's identity."""

    text: str
    identity: str

    @property
    def all(self) -> str:
        """Both, one after the other."""
        return f"{self.identity}\n{self.text}"

    @cached_property
    def words(self) -> frozenset[str]:
        """Its words, in lower case (see :func:`_letters`)."""
        return _words(self.all)

    @cached_property
    def compact(self) -> str:
        """Its words run together, without spaces (for a name spaced otherwise)."""
        return _compact(self.all)

    @cached_property
    def spelled(self) -> _Spellings:
        """Its words indexed for :meth:`_Spellings.alike`."""
        return _spelled(self.all)

    @cached_property
    def initials(self) -> tuple[frozenset[str], frozenset[str]]:
        """The acronyms its runs of words spell (see :func:`_abbreviations`)."""
        return _abbreviations(self.all)


# What a scope's text gives, kept per text: a whole document's text is read question after question (kept
# within a budget of characters, not only of entries: see :mod:`rag.answers.kept`).
@kept_per_text(4096)
def _words(text: str) -> frozenset[str]:
    return frozenset(_letters(text).split())


@kept_per_text(256)
def _compact(text: str) -> str:
    return _letters(text).replace(" ", "")


@kept_per_text(256)
def _spelled(text: str) -> _Spellings:
    return _Spellings(_words(text))


def missing_names(asked: Asked, scope: Scope, alike: bool = False, limit: int | None = None) -> list[str]:
    """The question's names that neither the passage nor its document's identity holds (a name in
    capitals also matches the initials of a run of capitalised words: NTSB, National Transportation
    Safety Board); the first ``limit`` of them when given. The work is linear in the scope's words and
    the question's names, however many of each (a question may name hundreds)."""
    missing: list[str] = []
    for name in asked.names:
        parts = _letters(name).split()
        if all(w in scope.words or (alike and scope.spelled.alike(w)) for w in parts):
            continue
        joined = "".join(parts)
        if len(parts) > 1 and len(joined) >= 6 and joined in scope.compact:
            continue  # spaced otherwise: "Sky Drive Pro" ~ "SkyDrive Pro"
        letters = name.replace("&", "")
        if name.isupper() and 2 <= len(letters) <= 8 and letters.isalpha():
            strong, weak = scope.initials
            if letters.lower() in strong or ("&" in name and letters.lower() in weak):
                continue
        missing.append(name)
        if limit is not None and len(missing) >= limit:
            break
    return missing


class _Spellings:
    """Words indexed so that :meth:`alike` looks at a handful of them, not all."""

    def __init__(self, words: frozenset[str]) -> None:
        self.stripped = {w.rstrip("s") for w in words}
        self.stripped_short = {w.rstrip("s") for w in words if len(w) < 5}
        self.by_prefix: dict[str, list[str]] = {}
        for w in words:
            if len(w) >= 5:
                self.by_prefix.setdefault(w[:5], []).append(w)

    def alike(self, word: str) -> bool:
        """Whether one of the words is ``word`` spelled otherwise: a plural ("DVDs" ~ "DVD"), or the same
        first letters, all but the last two of the shorter word and at least five ("Saharan" ~ "Sahara",
        "Panther" ~ "Panthers"; not "Broadcom" ~ "broadband")."""
        if len(word) < 5:
            return word.rstrip("s") in self.stripped
        if word.rstrip("s") in self.stripped_short:
            return True
        for other in self.by_prefix.get(word[:5], ()):
            k = max(5, min(len(word), len(other)) - 2)
            if other[:k] == word[:k]:
                return True
        return False


@kept_per_text(32768)
def _letters(text: str) -> str:
    """``text`` as lower-case words of plain letters and digits between spaces (accents dropped: "Stürmer"
    reads "sturmer")."""
    plain = unicodedata.normalize("NFKD", text.lower().replace("’", "'").replace("'s ", " "))
    if not plain.isascii():  # no combining marks in ASCII; each other character is looked at once
        plain = plain.translate({ord(ch): None for ch in set(plain) if unicodedata.combining(ch)})
    return " " + " ".join(re.findall(r"[a-z0-9]+", plain)) + " "


_CONNECTORS = frozenset({"of", "and", "for", "the", "on", "in"})


#: Longest acronym read as the initials of a run of words.
MAX_ACRONYM = 8


@kept_per_text(1024)
def _abbreviations(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The acronyms (lower case, 2 to :data:`MAX_ACRONYM` letters) that runs of words of ``text`` spell:
    initials of consecutive words, the first of them capitalised, connectors such as "and" or "of" skipped
    after the first (``rd`` in "Research and Development", ``ntsb`` in "National Transportation Safety
    Board"). The first set holds those whose words are at least half capitalised; the second all of them
    (enough for a name written with "&", such as "R&D"). One pass over the text, whatever is asked."""
    words = re.findall(r"[A-Za-z]+", text)
    strong: set[str] = set()
    weak: set[str] = set()
    for i, word in enumerate(words):
        if not word[0].isupper():
            continue
        initials, capitals = "", 0
        for following in words[i : i + 3 * MAX_ACRONYM]:  # a few connectors may stand between
            lower = following.lower()
            if lower in _CONNECTORS and initials:
                continue
            initials += lower[0]
            capitals += following[0].isupper()
            if len(initials) >= 2:
                weak.add(initials)
                if 2 * capitals >= len(initials):
                    strong.add(initials)
            if len(initials) >= MAX_ACRONYM:
                break
    return frozenset(strong), frozenset(weak)


#: A year named only as the year of a shorter period: "the first quarter of fiscal years 2024 and 2023",
#: "the third quarter and first nine months of fiscal year 2024", "six months ended ... 2023", "Q2 2024".
_PART_OF_YEAR = re.compile(
    r"\b(?:(?:first|second|third|fourth|1st|2nd|3rd|4th)\s+(?:fiscal\s+)?quarters?|(?:first\s+)?(?:three|six|nine)"
    r"\s+months|half|Q[1-4])\b[^.;]{0,40}?(?:fiscal\s+)?(?:years?\s+)?(?:19|20)\d\d(?:\s*(?:,|and)\s*(?:19|20)\d\d)*",
    re.I,
)


def missing_period(period: Period, text: str) -> str:
    """What of ``period`` (its dates, quarters and years) ``text`` does not hold; '' when it all does. For a
    whole year ("for fiscal year 2024"), a year that ``text`` names only as the year of a quarter or of some
    months does not count."""
    if not period:
        return ""
    if period.span == "twelve":
        text = _PART_OF_YEAR.sub(" ", text)
    held = read_period(text)
    for date in period.dates:
        if date not in held.dates:
            return date_words(date)
    for quarter, year in period.quarters:
        if not any(q == quarter and (y == year or not year) for q, y in held.quarters):
            return f"Q{quarter} {year}" if year else f"Q{quarter}"
    dated_years = {d[0] for d in period.dates} | {y for _, y in period.quarters}
    for year in period.years:
        if year not in dated_years and year not in held.years:
            return str(year)
    return ""


def date_words(date: tuple[int, int, int]) -> str:
    """A date as words: "October 29, 2023"."""
    from .question import MONTHS

    year, month, day = date
    return f"{MONTHS[month - 1].capitalize()} {day}, {year}" if 1 <= month <= 12 else f"{year}"


def document_period(period: Period, identity: str, latest: bool = False) -> Period:
    """The question's period as one document names it. When the document's identity names the asked
    quarter (its file name ``2023 Q1 AAPL``, its title) and gives the end of the period it reports on
    (``For the quarterly period ended December 31, 2022``), that date is the quarter's, whatever the
    company's fiscal calendar: a column headed by it agrees with "Q1 2023", one headed by another does not.
    A question for the ``latest`` figure that names no date, quarter or year asks for that date too."""
    if latest and not (period.dates or period.quarters or period.years):
        end = period_end(identity)
        return replace(period, dates=(end,)) if end is not None else period
    if not period.quarters or period.dates or len(period.quarters) > 1:
        return period
    quarter, year = period.quarters[0]
    if not any(q == quarter and (y == year or not year) for q, y in read_period(identity).quarters):
        return period
    ends = _period_ends(identity)
    return replace(period, dates=(next(iter(ends)),)) if len(ends) == 1 else period


def period_end(identity: str) -> tuple[int, int, int] | None:
    """The end of the period a document reports on, from its identity's "period ended" lines (the latest
    date they give), or None."""
    ends = _period_ends(identity)
    return max(ends) if ends else None


@lru_cache(maxsize=4096)
def _period_ends(identity: str) -> frozenset[tuple[int, int, int]]:
    return frozenset(d for line in identity.splitlines() if _PERIOD_ENDED.search(line) for d in _dates(line))


def latest_sources(asked: Asked, identities: Mapping[str, str]) -> frozenset[str] | None:
    """For a question that asks for the latest or most recent report of a named entity ("NVIDIA's gross
    margin in the most recent 10-Q"): the documents of that entity (its names in their identities) that
    report on the latest period of them all. None when the question pins its own period, names nothing,
    or fewer than two such documents give the end of their period (nothing to choose between). A span of
    months ("the latest quarter") is not a period of its own."""
    period = asked.period
    if not asked.latest or period.dates or period.quarters or period.years or not asked.names:
        return None
    ends = {}
    for source, identity in identities.items():
        end = period_end(identity)
        if end is not None and not missing_names(asked, Scope("", identity), limit=1):
            ends[source] = end
    if len(ends) < 2:
        return None
    last = max(ends.values())
    return frozenset(s for s, end in ends.items() if end == last)


def _in_quarter(period: Period, date: tuple[int, int, int]) -> bool:
    """Whether ``date`` may end one of the question's quarters under some fiscal calendar."""
    low, high = _FISCAL_QUARTER_WINDOW if period.fiscal else _QUARTER_WINDOW
    at = date[0] * 12 + date[1]
    return any(low <= at - (year * 12 + 3 * quarter) <= high for quarter, year in period.quarters if year)


@lru_cache(maxsize=65536)
def header_agrees(period: Period, header: str) -> bool | None:
    """Whether a column header's period agrees with the question's: True (it names the asked period),
    False (it names another date, year or span of months), None (it names no period). A quarter agrees
    with a date that may end it under some fiscal calendar (see :func:`document_period` for the exact date)."""
    if not period or not header.strip():
        return None
    dates = _dates(header)
    years = {int(y) for y in YEAR.findall(DATE.sub(" ", header))} | {d[0] for d in dates}
    span = _SPAN_IN_HEADER.search(header)
    span_word = (
        (span.group(1) or ("three" if (span.group(2) or "").lower() == "quarter" else "twelve")).lower() if span else ""
    )
    verdict: bool | None = None
    if period.dates and dates:
        if not set(period.dates) & set(dates):
            return False
        verdict = True
    elif dates and any(year for _, year in period.quarters) and not set(period.years) - {y for _, y in period.quarters}:
        if not any(_in_quarter(period, d) for d in dates):
            return False
        verdict = True
    elif period.years and years:
        if not set(period.years) & years:
            return False
        verdict = True
    if period.span and span_word:
        if period.span != span_word:
            return False
        verdict = True
    return verdict


__all__ = [
    "Scope",
    "date_words",
    "document_period",
    "header_agrees",
    "latest_sources",
    "missing_names",
    "missing_period",
    "period_end",
]
