"""Checks of a passage (with what its document says about itself) against what a question pins down.

A passage may answer only if every name the question gives appears in it or in its document's identity
(file name, title, first-page lines), and every period the question gives (a date, a quarter, a year)
appears there too. A table cell must also sit in a column whose period agrees with the question's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .question import DATE, YEAR, Asked, Period, _dates, read_period

_SPAN_IN_HEADER = re.compile(r"\b(three|six|nine|twelve)\s+months\b|\b(quarter|year)\s+ended\b", re.I)


@dataclass(frozen=True)
class Scope:
    """The text a passage is judged by: its own text and its document's identity."""

    text: str
    identity: str

    @property
    def all(self) -> str:
        """Both, one after the other."""
        return f"{self.identity}\n{self.text}"


def missing_names(asked: Asked, scope: Scope, alike: bool = False) -> list[str]:
    """The question's names that neither the passage nor its document's identity holds (a name in
    capitals also matches the initials of a run of capitalised words: NTSB, National Transportation
    Safety Board)."""
    haystack = _letters(scope.all)
    words = set(haystack.split()) if alike else set()
    missing = []
    for name in asked.names:
        if all(f" {w} " in haystack or (alike and _alike(w, words)) for w in _letters(name).split()):
            continue
        letters = name.replace("&", "")
        if (
            name.isupper()
            and 2 <= len(letters) <= 8
            and letters.isalpha()
            and _abbreviates(letters.lower(), scope.all, "&" in name)
        ):
            continue
        missing.append(name)
    return missing


def _alike(word: str, words: set[str]) -> bool:
    """Whether a word of ``words`` is ``word`` spelled otherwise: a plural ("DVDs" ~ "DVD"), or the same
    first letters, all but the last two of the shorter word and at least five ("Saharan" ~ "Sahara",
    "Panther" ~ "Panthers"; not "Broadcom" ~ "broadband")."""
    for other in words:
        shorter = min(len(word), len(other))
        if shorter < 5:
            if word.rstrip("s") == other.rstrip("s"):
                return True
            continue
        k = max(5, shorter - 2)
        if other[:k] == word[:k]:
            return True
    return False


def _letters(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower().replace("’", "'").replace("'s ", " "))) + " "


_CONNECTORS = frozenset({"of", "and", "for", "the", "on", "in"})


def _abbreviates(acronym: str, text: str, ampersand: bool = False) -> bool:
    """Whether ``acronym`` (lower case) is the initials of consecutive words of ``text``, the first of them
    capitalised and at least half of them (connectors such as "and" or "of" may stand between them):
    ``rd`` in "Research and development", ``ntsb`` in "National Transportation Safety Board"."""
    words = re.findall(r"[A-Za-z]+", text)
    n = len(acronym)
    for i, word in enumerate(words):
        if word[0] != acronym[0].upper():
            continue
        j, k, capitals = i, 0, 0
        while j < len(words) and k < n:
            lower = words[j].lower()
            if lower in _CONNECTORS and k:
                pass
            elif lower[0] == acronym[k]:
                k += 1
                capitals += words[j][0].isupper()
            else:
                break
            j += 1
        if k == n and (2 * capitals >= n or ampersand):
            return True
    return False


def missing_period(period: Period, text: str) -> str:
    """What of ``period`` (its dates, quarters and years) ``text`` does not hold; '' when it all does."""
    if not period:
        return ""
    held = read_period(text)
    for date in period.dates:
        if date not in held.dates:
            return _date_words(date)
    for quarter, year in period.quarters:
        if not any(q == quarter and (y == year or not year) for q, y in held.quarters):
            return f"Q{quarter} {year}" if year else f"Q{quarter}"
    dated_years = {d[0] for d in period.dates} | {y for _, y in period.quarters}
    for year in period.years:
        if year not in dated_years and year not in held.years:
            return str(year)
    return ""


def _date_words(date: tuple[int, int, int]) -> str:
    from .question import MONTHS

    year, month, day = date
    return f"{MONTHS[month - 1].capitalize()} {day}, {year}" if 1 <= month <= 12 else f"{year}"


def header_agrees(period: Period, header: str) -> bool | None:
    """Whether a column header's period agrees with the question's: True (it names the asked period),
    False (it names another date, year or span of months), None (it names no period)."""
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
    elif period.years and years:
        if not set(period.years) & years:
            return False
        verdict = True
    if period.span and span_word:
        if period.span != span_word:
            return False
        verdict = True
    return verdict


__all__ = ["Scope", "header_agrees", "missing_names", "missing_period"]
