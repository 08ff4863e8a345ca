"""Acronyms of a question read through the words of a label that spell them: "R&D" stands for "Research
and development", "SG&A" for "Selling, general and administrative", "EPS" for "Earnings per share"."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from ..text import content_words
from .question import Asked

#: Words skipped inside an acronym's run ("Research and Development" spells "rd").
_CONNECTORS = frozenset({"and", "of", "the", "for", "&"})
#: Longest acronym read from a label.
_ACRONYM_LETTERS = 5


@lru_cache(maxsize=65536)
def _spellings(label: str) -> dict[str, frozenset[str]]:
    """The acronyms the runs of ``label``'s words spell by their initials (connectors skipped inside a
    run; a run begins at a capitalised word), each with the content words of its run: "Selling, general
    and administrative" spells "sga" (selling, general, administrative), "Earnings per share" spells
    "eps"; "... recognized during ..." spells nothing."""
    words = re.findall(r"[A-Za-z]+|&", label)
    out: dict[str, frozenset[str]] = {}
    for i, first in enumerate(words):
        if first.lower() in _CONNECTORS or not first[0].isupper():
            continue
        initials = ""
        for j in range(i, len(words)):
            lower = words[j].lower()
            if lower in _CONNECTORS:
                continue
            initials += lower[0]
            if len(initials) > _ACRONYM_LETTERS:
                break
            if len(initials) >= 2:
                out.setdefault(initials, frozenset(content_words(" ".join(words[i : j + 1]))))
    return out


def acronym_keys(label: str) -> frozenset[str]:
    """Keys (see :func:`_keys`) for the acronyms a label spells: ``"^rd"``."""
    return frozenset("^" + a for a in _spellings(label))


@lru_cache(maxsize=1024)
def _acronym_map(acronyms: tuple[tuple[str, frozenset[str]], ...]) -> dict[str, frozenset[str]]:
    return dict(acronyms)


def expanded(asked: Asked, label: str, document_words: set[str]) -> Asked:
    """``asked`` with each acronym that ``label`` spells ("R&D" by "Research and development") read as
    the label's words that spell it; not an acronym that names the document ("CA" in "Soledad, CA")."""
    if not asked.acronyms:
        return asked
    spelled = _spellings(label)
    wanted = _acronym_map(asked.acronyms)
    measure = set(asked.measure)
    for acronym in spelled.keys() & wanted.keys():  # linear in the label's acronyms, however many are asked
        left = wanted[acronym]
        if acronym not in document_words and not left & document_words:
            measure = (measure - left) | spelled[acronym]
    return asked if measure == asked.measure else replace(asked, measure=frozenset(measure))


__all__ = ["acronym_keys", "expanded"]
