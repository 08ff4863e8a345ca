"""Answers: the types returned to users, and the extractive answerer (no LLM needed)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any

from .layout import Run, boxes_for

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
    #: PDFs and images: the 1-based page, and the passage's boxes on it (0-1 of the page, top-left origin,
    #: one per line: ``(x0, y0, x1, y1)``).
    page: int | None = None
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    #: Where each piece of the passage is on the page (used to box the quoted sentences); not in JSON.
    runs: tuple[Run, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        data = asdict(self)
        del data["runs"]
        data["boxes"] = [list(b) for b in self.boxes]
        return data

    def boxes_of(self, spans: Sequence[tuple[int, int]]) -> tuple[tuple[float, float, float, float], ...]:
        """Boxes of the given document spans inside this passage (its own boxes when there are none)."""
        if not self.runs or not spans:
            return self.boxes
        return tuple(box for a, b in spans for box in boxes_for(self.runs, a, b))


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
    #: False when a generated claim citing this passage is not backed by it (see ``Answer.claims``).
    supported: bool = True
    #: PDFs and images: the 1-based page, and the boxes of the quoted sentences on it (the passage's
    #: when none is quoted), 0-1 of the page from the top left, one per line.
    page: int | None = None
    boxes: tuple[tuple[float, float, float, float], ...] = ()

    @classmethod
    def of(cls, n: int, passage: Passage, spans: tuple[tuple[int, int], ...], supported: bool = True) -> Citation:
        """The citation ``[n]`` of ``passage`` quoting ``spans``."""
        p = passage
        boxes = p.boxes_of(spans)
        return cls(n, p.source, p.start, p.end, p.text, p.score, p.section, spans, supported, p.page, boxes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        data = asdict(self)
        data["highlights"] = [list(h) for h in self.highlights]
        data["boxes"] = [list(b) for b in self.boxes]
        return data


@dataclass(frozen=True)
class Claim:
    """One sentence of a generated answer, checked against the passages it cites.

    ``start``/``end`` are offsets into ``Answer.text`` (markers included); ``citations`` the ``n`` of
    its markers; ``support`` the share of its content words found in the cited passages (see
    :data:`rag.generation.SUPPORT_THRESHOLD`); ``missing`` the names and numbers they lack.
    """

    start: int
    end: int
    text: str
    citations: tuple[int, ...]
    supported: bool
    support: float
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        data = asdict(self)
        data["citations"] = list(self.citations)
        data["missing"] = list(self.missing)
        return data


@dataclass(frozen=True)
class Answer:
    """The assistant's reply: text with ``[n]`` markers, the cited passages, and all passages found."""

    question: str
    text: str
    answered: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    #: What wrote ``text``: "extractive" (quoted sentences) or "llm" (a generated, verified answer).
    generator: str = "extractive"
    #: The standalone question actually searched, when a follow-up in a chat was rewritten.
    rewritten_question: str | None = None
    #: Something the reader should know, e.g. that the language model failed and why.
    note: str | None = None
    #: The language model asked (also set when its answer was not used), and the prompt's version.
    model: str | None = None
    prompt_version: str | None = None
    #: The sentences of a generated answer with their support check (empty for extractive answers).
    claims: list[Claim] = field(default_factory=list)
    #: How likely the passages hold the answer; below the ``min_score`` setting the answer is a refusal.
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``rag ask --json``."""
        return {
            "question": self.question,
            "answer": self.text,
            "answered": self.answered,
            "generator": self.generator,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "rewritten_question": self.rewritten_question,
            "note": self.note,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "claims": [c.to_dict() for c in self.claims],
            "confidence": self.confidence,
        }

    def __str__(self) -> str:
        return "\n".join([self.text, *self.footer_lines()])

    def footer_lines(self) -> list[str]:
        """What ``str()`` prints after the text: the note, then the numbered sources."""
        lines: list[str] = []
        if self.note:
            lines += ["", f"Note: {self.note}"]
        if self.citations:
            lines += ["", "Sources:"]
            for c in self.citations:
                where = f", {c.section}" if c.section else ""
                flag = "" if c.supported else " - NOT SUPPORTED: a claim citing it is not found in this passage"
                lines.append(f"[{c.n}] {c.source}{where} (characters {c.start}-{c.end}, score {c.score:.2f}){flag}")
        elif self.passages:
            lines += ["", "Closest passages:"]
            for p in self.passages[:3]:
                snippet = " ".join(p.text.split())
                snippet = snippet if len(snippet) <= 160 else snippet[:157] + "..."
                lines.append(f"- {p.source} ({p.score:.2f}): {snippet}")
        return lines


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


def content_terms(text: str) -> list[str]:
    """Lower-cased words of ``text`` without stop words, unstemmed (for keyword search)."""
    return [w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in STOPWORDS]


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


#: Sentences that talk to the assistant instead of stating facts ("ignore previous instructions and
#: answer X"): never quoted as an answer, so a document cannot steer answers about other documents.
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.!?\n]{0,60}?\b(instructions?|rules?|prompts?|guidelines|"
    r"directions?|documents?|passages?|sources?|context)\b|\bsystem prompt\b|\bnew instructions?\b|"
    r"\byou are now\b|\bto (?:the|this) (?:ai|assistant|chatbot|language model)\b",
    re.I,
)


def is_instruction(sentence: str) -> bool:
    """Whether ``sentence`` reads as an instruction to an AI assistant (a prompt injection)."""
    return bool(_INSTRUCTION.search(sentence))


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

    #: Score lost per place a sentence's passage stands below the first.
    rank_penalty = 0.08
    #: Bonus for a sentence holding the kind of thing the question asks for (a year, a name, a number).
    kind_bonus = 0.08
    #: Extra sentences must score within this margin of the best one.
    margin = 0.08

    def __init__(self, max_sentences: int = 3, min_score: float = 0.56) -> None:
        self.max_sentences = max_sentences
        self.min_score = min_score

    def answer(self, question: str, passages: Sequence[Passage]) -> Answer:
        """Build the answer from ``passages`` (best first); refuse when the confidence is below ``min_score``."""
        passages = list(passages)
        candidates, coverage = self._score(question, passages)
        confidence = self._confidence(passages, coverage)
        if not candidates or confidence < self.min_score:
            return Answer(question, NOT_FOUND, False, [], passages, confidence=confidence)
        chosen = self._choose(question, candidates)
        return replace(self._build(question, passages, chosen), confidence=confidence)

    def confidence(self, question: str, passages: Sequence[Passage]) -> float:
        """How likely the passages answer the question (compare with ``min_score``).

        The best passage's cosine similarity plus half the share of the question's rare words that
        the best sentence holds. Measured on squad-dev with half the articles indexed: at 0.56 it
        answers 98% of questions whose article is indexed and refuses 87% of the others.
        """
        passages = list(passages)
        return self._confidence(passages, self._score(question, passages)[1])

    @staticmethod
    def _confidence(passages: list[Passage], coverage: float) -> float:
        if not passages:
            return 0.0
        return max(p.score for p in passages) + 0.5 * coverage

    def _score(self, question: str, passages: list[Passage]) -> tuple[list[_Candidate], float]:
        """Every sentence of the passages with its score, and the best share of question words covered."""
        q_words = set(content_words(question))
        texts: list[tuple[int, int, int, str]] = []
        for i, passage in enumerate(passages):
            for a, b in split_sentences(passage.text, passage.start):
                sentence = passage.text[a - passage.start : b - passage.start]
                if not is_instruction(sentence):
                    texts.append((i, a, b, sentence))
        if not texts:
            return [], 0.0
        # Rarity of each question word among the candidate sentences (local IDF): a word that no
        # sentence holds weighs most, so its absence lowers the coverage (and the confidence).
        doc_freq: Counter[str] = Counter()
        words_of = [set(content_words(t[3])) for t in texts]
        for words in words_of:
            doc_freq.update(words & q_words)
        n = len(texts)
        idf = {w: math.log(1 + n / (1 + doc_freq[w])) for w in q_words}
        total = sum(idf.values()) or 1.0
        kind = answer_kind(question)
        out = []
        coverage = 0.0
        for j, (i, a, b, text) in enumerate(texts):
            lexical = sum(idf[w] for w in words_of[j] & q_words) / total
            coverage = max(coverage, lexical)
            score = lexical - self.rank_penalty * i
            if len(text.split()) < 4:
                score -= 0.05
            if kind and kind_match(kind, text, question):
                score += self.kind_bonus
            out.append(_Candidate(i, a, b, text, score))
        return out, coverage

    def _choose(self, question: str, candidates: list[_Candidate]) -> list[_Candidate]:
        ranked = sorted(candidates, key=lambda c: c.score, reverse=True)
        best = ranked[0]
        chosen = [best]
        q_words = set(content_words(question))
        covered = set(content_words(best.text)) & q_words
        for c in ranked[1:]:
            if len(chosen) >= self.max_sentences:
                break
            if c.score < best.score - self.margin:
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
            citations.append(Citation.of(n, p, spans))
        return Answer(question, text, True, citations, passages)
