"""Answers: the types returned to users, and the extractive answerer (no LLM needed)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

NOT_FOUND = "The documents do not contain an answer to this question."


@dataclass(frozen=True)
class Passage:
    """A retrieved piece of a document: ``text`` is ``document_text[start:end]``."""

    source: str
    start: int
    end: int
    text: str
    score: float
    section: str = ""
    chunk_id: int = -1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A cited passage: ``[n]`` in the answer text points at it.

    ``highlights`` are the (start, end) offsets, in the same document text, of the sentences that
    the answer quotes from this passage.
    """

    n: int
    source: str
    start: int
    end: int
    text: str
    score: float
    section: str = ""
    highlights: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        data = asdict(self)
        data["highlights"] = [list(h) for h in self.highlights]
        return data


@dataclass(frozen=True)
class Answer:
    """The assistant's reply: text with ``[n]`` markers, the cited passages, and all passages found."""

    question: str
    text: str
    answered: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    generator: str = "extractive"

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``rag ask --json``."""
        return {
            "question": self.question,
            "answer": self.text,
            "answered": self.answered,
            "generator": self.generator,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
        }

    def __str__(self) -> str:
        lines = [self.text]
        if self.citations:
            lines += ["", "Sources:"]
            for c in self.citations:
                where = f", {c.section}" if c.section else ""
                lines.append(f"[{c.n}] {c.source}{where} (characters {c.start}-{c.end}, score {c.score:.2f})")
        elif self.passages:
            lines += ["", "Closest passages:"]
            for p in self.passages[:3]:
                snippet = " ".join(p.text.split())
                snippet = snippet if len(snippet) <= 160 else snippet[:157] + "..."
                lines.append(f"- {p.source} ({p.score:.2f}): {snippet}")
        return "\n".join(lines)


# ------------------------------------------------------------------ sentences

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


# ------------------------------------------------------------------ words

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][a-z]+)?|[^\W_]+", re.UNICODE)
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


def content_words(text: str) -> list[str]:
    """Lower-cased, stemmed words of ``text`` without stop words."""
    return [stem(w) for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in STOPWORDS]


# ------------------------------------------------------------------ what the question asks for

_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})s?\b|\b(century|centuries|decade|BC|AD|BCE|CE)\b")
_MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|billion|dozen|half|percent)\b",
    re.I,
)
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")


def answer_kind(question: str) -> str:
    """What kind of answer the question wants: person, time, number, place, or '' (anything)."""
    q = question.lower()
    if re.search(r"\bhow (many|much|long|old|far|large|big|tall|high|often)\b|\bwhat (percentage|number|amount)", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|time|century|decade|day|month)\b|\bwhich (year|century|decade)", q):
        return "time"
    if re.search(r"\bwho(m|se)?\b", q):
        return "person"
    if re.search(r"\bwhere\b|\bwhat (city|country|state|place|region)\b", q):
        return "place"
    return ""


def kind_match(kind: str, sentence: str, question: str) -> bool:
    """Whether ``sentence`` holds something of the wanted kind that the question does not already name."""
    if kind == "number":
        return bool(_NUMBER.search(sentence))
    if kind == "time":
        return bool(_YEAR.search(sentence) or _MONTH.search(sentence))
    if kind in {"person", "place"}:
        asked = {w.lower() for w in _WORD.findall(question)}
        return any(m.group().lower() not in asked for m in _CAPITALISED.finditer(sentence))
    return False


# ------------------------------------------------------------------ the extractive answerer


@dataclass(frozen=True)
class _Candidate:
    passage: int
    start: int
    end: int
    text: str
    score: float


class ExtractiveAnswerer:
    """Picks the one to three sentences of the retrieved passages that best answer the question.

    Each sentence is scored by its embedding similarity to the question, the share of the
    question's content words it (or its passage) contains, weighted by rarity, and the rank of
    its passage. Extra sentences are added only when they score close to the best and bring
    question words the first did not.
    """

    def __init__(self, max_sentences: int = 3, min_score: float = 0.3) -> None:
        self.max_sentences = max_sentences
        self.min_score = min_score

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        sentence_vectors: np.ndarray | None = None,
        question_vector: np.ndarray | None = None,
        sentences: list[list[tuple[int, int]]] | None = None,
    ) -> Answer:
        """Build the answer from ``passages`` (best first); refuse when the best is below ``min_score``."""
        passages = list(passages)
        if not passages or passages[0].score < self.min_score:
            return Answer(question, NOT_FOUND, False, [], passages)
        if sentences is None:
            sentences = [split_sentences(p.text, p.start) for p in passages]
        candidates = self._score(question, passages, sentences, sentence_vectors, question_vector)
        if not candidates:
            return Answer(question, NOT_FOUND, False, [], passages)
        chosen = self._choose(question, candidates)
        return self._build(question, passages, chosen)

    def _score(
        self,
        question: str,
        passages: list[Passage],
        sentences: list[list[tuple[int, int]]],
        sentence_vectors: np.ndarray | None,
        question_vector: np.ndarray | None,
    ) -> list[_Candidate]:
        q_words = set(content_words(question))
        texts: list[tuple[int, int, int, str]] = []
        for i, (passage, spans) in enumerate(zip(passages, sentences, strict=True)):
            for a, b in spans:
                texts.append((i, a, b, passage.text[a - passage.start : b - passage.start]))
        if not texts:
            return []
        # Rarity of each question word among the candidate sentences (local IDF).
        doc_freq: Counter[str] = Counter()
        words_of = [set(content_words(t[3])) for t in texts]
        for words in words_of:
            doc_freq.update(words & q_words)
        n = len(texts)
        idf = {w: math.log(1 + n / (1 + doc_freq[w])) for w in q_words}
        total = sum(idf.values()) or 1.0
        top = passages[0].score
        kind = answer_kind(question)
        out = []
        for j, (i, a, b, text) in enumerate(texts):
            lexical = sum(idf[w] for w in words_of[j] & q_words) / total
            dense = (
                float(sentence_vectors[j] @ question_vector)
                if sentence_vectors is not None and question_vector is not None
                else lexical
            )
            rank = passages[i].score - top
            length = len(text.split())
            brevity = -0.05 if length < 4 else 0.0
            typed = 0.08 if kind and kind_match(kind, text, question) else 0.0
            score = 0.55 * dense + 0.45 * lexical + 0.5 * rank + brevity + typed
            out.append(_Candidate(i, a, b, text, score))
        return out

    def _choose(self, question: str, candidates: list[_Candidate]) -> list[_Candidate]:
        ranked = sorted(candidates, key=lambda c: c.score, reverse=True)
        best = ranked[0]
        chosen = [best]
        q_words = set(content_words(question))
        covered = set(content_words(best.text)) & q_words
        for c in ranked[1:]:
            if len(chosen) >= self.max_sentences:
                break
            if c.score < best.score - 0.08:
                break
            new = (set(content_words(c.text)) & q_words) - covered
            if not new:
                continue
            chosen.append(c)
            covered |= new
        return chosen

    def _build(self, question: str, passages: list[Passage], chosen: list[_Candidate]) -> Answer:
        numbers: dict[int, int] = {}
        for c in chosen:
            numbers.setdefault(c.passage, len(numbers) + 1)
        # Present sentences in reading order within each passage, passages in citation order.
        ordered = sorted(chosen, key=lambda c: (numbers[c.passage], c.start))
        text = " ".join(f"{' '.join(c.text.split())} [{numbers[c.passage]}]" for c in ordered)
        citations = []
        for index, n in sorted(numbers.items(), key=lambda item: item[1]):
            p = passages[index]
            spans = tuple(sorted((c.start, c.end) for c in chosen if c.passage == index))
            citations.append(Citation(n, p.source, p.start, p.end, p.text, p.score, p.section, spans))
        return Answer(question, text, True, citations, passages)
