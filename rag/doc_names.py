"""File names as evidence: a question that names a file ("Apple's cash flow in the Q3 2022 10-Q" and
``2022 Q3 AAPL.pdf``) raises that file's passages above those of its look-alikes (the same report for
other quarters), which its text alone hardly tells apart."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from .text import content_terms, file_stem

#: "first quarter" (or "first fiscal quarter") also reads as "q1", the way reports are named.
_ORDINAL_QUARTER = re.compile(r"\b(first|second|third|fourth)\s+(?:fiscal\s+)?quarter\b", re.I)
_QUARTERS = {"first": "q1", "second": "q2", "third": "q3", "fourth": "q4"}


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
