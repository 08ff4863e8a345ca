"""Text: sentences, words, stop words and stemming, and cleaning a question (shared by retrieval,
answering, generation and conversation; imports nothing above it)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from .errors import InputError

MAX_QUESTION_CHARS = 4000
"""Longest question accepted, in characters (after white space is collapsed), in every way in."""

_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])|\n+")
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "st",
    "sr",
    "jr",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "u.s",
    "u.k",
    "u.n",
    "no",
    "inc",
    "ltd",
    "co",
    "corp",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "gen",
    "col",
    "lt",
    "gov",
    "sen",
    "rep",
    "rev",
    "fig",
    "approx",
    "c",
    "ca",
    "vol",
    "pp",
    "ft",
    "mt",
}


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans of ``text`` as (start, end) offsets, shifted by ``offset``; white space trimmed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        if m.group().startswith((".",)) and "\n" not in m.group():
            word = re.search(r"([\w.]+)\.*$", text[start : m.start()] + ".")
            before = (word.group(1) if word else "").lower().rstrip(".")
            if before in _ABBREVIATIONS or (len(before) == 1 and before.isalpha()):
                continue
        _add_span(text, start, end, offset, spans)
        start = end
    _add_span(text, start, len(text), offset, spans)
    return spans


def _add_span(text: str, start: int, end: int, offset: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((offset + start, offset + end))


# ------------------------------------------------------------------ dates

MONTHS = (
    "january february march april may june july august september october november december".split()  # noqa: SIM905
)
#: A month's name, in full or cut short (``Sep``, ``Sept``, ``September``).
MONTH_NAME = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
#: ``July 1, 2023``, ``1 July 2023``, ``12/08/2007``, ``2023-07-01``: the one date pattern that readers (a
#: document's identifying lines) and the answer layer (a question's period) share.
DATE = re.compile(
    rf"\b{MONTH_NAME}\.? (\d{{1,2}}),? ((?:19|20)\d\d)\b|\b(\d{{1,2}}) {MONTH_NAME} ((?:19|20)\d\d)\b"
    r"|\b(\d{1,2})/(\d{1,2})/((?:19|20)\d\d)\b|\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b",
    re.I,
)


# ------------------------------------------------------------------ words

#: A word: letters and digits (with an English contraction), or a run of other word characters.
WORD = re.compile(r"[A-Za-z0-9]+(?:['’][a-z]+)?|[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves also did does
    many much one ones name named called kind type
    """.split()  # noqa: SIM905 - a word list reads best as text
)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    try:
        import Stemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # pragma: no cover - PyStemmer is a dependency; keep working without it
        return None


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """English Snowball stem of a lower-case word (``invited`` and ``invitation`` both give ``invit``)."""
    stemmer = _stemmer()
    if stemmer is not None:
        return str(stemmer.stemWord(word))
    for suffix in ("ies", "ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def file_stem(source: str) -> str:
    """A file's name without its folders and extension: ``docs/2022 Q3 AAPL.pdf`` -> ``2022 Q3 AAPL``."""
    return source.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def content_terms(text: str) -> list[str]:
    """Lower-cased words of ``text`` without stop words, unstemmed (for keyword search)."""
    return [w for w in (m.group().lower() for m in WORD.finditer(text)) if w not in STOPWORDS]


def content_words(text: str) -> list[str]:
    """Lower-cased, stemmed words of ``text`` without stop words."""
    return [stem(w) for w in (m.group().lower() for m in WORD.finditer(text)) if w not in STOPWORDS]


def clean_question(question: Any) -> str:
    """The question with control characters blanked and white space collapsed; InputError when empty or too long."""
    if not isinstance(question, str):
        raise InputError(f"the question must be text, got {type(question).__name__}")
    cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in question)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise InputError("the question is empty: type a question about your documents")
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise InputError(
            f"the question is {len(cleaned)} characters long; the limit is {MAX_QUESTION_CHARS}: shorten it"
        )
    return cleaned


#: ``[n]`` citation markers (also ``[1, 2]``) with the white space before them.
MARKERS = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
