"""File names as evidence: a question that names a file ("Apple's cash flow in the Q3 2022 10-Q" and
``2022 Q3 AAPL.pdf``) raises that file's passages above those of its look-alikes (the same report for
other quarters), which its text alone hardly tells apart; so does a question about the latest report
of a series of files named by date ("in the latest 10-Q" and ``2023 Q3 AAPL.pdf``)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from .text import content_terms, file_stem

#: "first quarter" (or "first fiscal quarter") also reads as "q1", the way reports are named.
_ORDINAL_QUARTER = re.compile(r"\b(first|second|third|fourth)\s+(?:fiscal\s+)?quarter\b", re.I)
_QUARTERS = {"first": "q1", "second": "q2", "third": "q3", "fourth": "q4"}
#: A question about the newest of a series of reports ("in the latest 10-Q")...
_LATEST = re.compile(r"\b(?:latest|most recent|newest)\b", re.I)
#: ... unless it also asks about the ones before ("compared to previous quarters").
_EARLIER = re.compile(r"\b(?:previous|prior|past|earlier|preceding|historical|over time|trends?)\b", re.I)
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_QUARTER = re.compile(r"^q[1-4]$")
_MONTH_NAMES: tuple[str, ...] = ("january", "february", "march", "april", "may", "june")
_MONTH_NAMES += ("july", "august", "september", "october", "november", "december")
_MONTHS = {name[:3]: n for n, name in enumerate(_MONTH_NAMES, 1)}


def name_terms(source: str) -> set[str]:
    """Content words of a file's name, without folders and extension: ``2022 Q3 AAPL.pdf`` -> 2022, q3, aapl."""
    return set(content_terms(re.sub(r"[_\-.]+", " ", file_stem(source))))


def question_terms(question: str) -> set[str]:
    """Content words of a question, with "first quarter" read as "q1" too (and so on to the fourth)."""
    terms = set(content_terms(question))
    terms.update(_QUARTERS[m.group(1).lower()] for m in _ORDINAL_QUARTER.finditer(question))
    return terms


class DocumentNames:
    """The indexed files' names as sets of words, each word weighted by its rarity among the names."""

    def __init__(self, sources: Iterable[str]) -> None:
        self._terms: dict[str, set[str]] = {source: name_terms(source) for source in sources}
        self._by_term: dict[str, list[str]] = {}
        for source, terms in self._terms.items():
            for term in terms:
                self._by_term.setdefault(term, []).append(source)
        n = len(self._terms)
        self._idf = {term: math.log(1 + n / len(holders)) for term, holders in self._by_term.items()}
        self._mass = {source: sum(self._idf[t] for t in terms) for source, terms in self._terms.items()}
        # Files whose names differ only by their date ("2022 Q3 AAPL", "2023 Q3 AAPL") form a series.
        series: dict[frozenset[str], list[tuple[tuple[int, int], str]]] = {}
        for source, terms in self._terms.items():
            period = _period(terms)
            if period is not None:
                key = frozenset(t for t in terms if _part_of_date(t) is None)
                series.setdefault(key, []).append((period, source))
        series = {key: members for key, members in series.items() if key and len(members) >= 2}
        self._series = {source: key for key, members in series.items() for _, source in members}
        self._newest = {max(members)[1] for members in series.values()}

    def match(self, question: str) -> dict[str, float]:
        """Per file that the question names, the share of its name's weight that the question holds (0-1].

        A file counts as named when the question holds at least two words of its name: one shared word
        ("black" for ``black-death.txt``, "doctor" for ``doctor-who.txt``) is too weak a sign.
        """
        shared: dict[str, set[str]] = {}
        for term in question_terms(question):
            for source in self._by_term.get(term, ()):
                shared.setdefault(source, set()).add(term)
        out: dict[str, float] = {}
        for source, terms in shared.items():
            if len(terms) >= 2 and self._mass[source] > 0:
                out[source] = sum(self._idf[t] for t in terms) / self._mass[source]
        return out

    def asks_newest(self, question: str) -> bool:
        """Whether the question is about the latest report of a series ("Apple's gross margin in the latest
        10-Q"), not also about earlier ones ("... compared to previous quarters"), and the index has a series."""
        return bool(self._newest) and _LATEST.search(question) is not None and _EARLIER.search(question) is None

    def newest(self, sources: Iterable[str]) -> set[str]:
        """The newest file of each series that one of ``sources`` belongs to."""
        wanted = {self._series[s] for s in sources if s in self._series}
        return {s for s in self._newest if self._series[s] in wanted}


def _part_of_date(term: str) -> tuple[int, int] | None:
    """(0, year) or (1, month) for a file-name word that is part of a date (a quarter reads as its last
    month: q3 -> 9); None for other words."""
    if _YEAR.match(term):
        return (0, int(term))
    if _QUARTER.match(term):
        return (1, 3 * int(term[1]))
    month = _MONTHS.get(term[:3])
    if month is not None and (len(term) == 3 or term in _MONTH_NAMES):
        return (1, month)
    return None


def _period(terms: set[str]) -> tuple[int, int] | None:
    """(year, month) of the date in a file's name words (month 0 when none); None without one year."""
    parts = [p for p in map(_part_of_date, terms) if p is not None]
    years = [v for kind, v in parts if kind == 0]
    if len(years) != 1:
        return None
    months = [v for kind, v in parts if kind == 1]
    return (years[0], months[0] if len(months) == 1 else 0)
