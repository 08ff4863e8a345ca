"""Answers: the types returned to users, and the extractive answerer (no LLM needed)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

from .boxes import Run, boxes_for

NOT_FOUND = "The documents do not contain an answer to this question."
#: One line telling readers what a passage's score means (CLI, web chat, README).
SCORE_EXPLAINED = (
    "(score: how well a passage matches the question, 0 to 1; an answer needs one at RAG_MIN_SCORE, 0.52 by default)"
)


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
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "runs"}  # runs: not converted
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

    def quoted(self) -> str:
        """The sentences of the passage that the answer quotes (the whole passage when none are marked)."""
        parts = [self.text[max(a - self.start, 0) : max(b - self.start, 0)] for a, b in self.highlights]
        parts = [" ".join(p.split()) for p in parts if p.strip()]
        return " ... ".join(parts) if parts else self.text


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
                lines.append(f'    "{_snippet(c.quoted(), 300)}"')
        elif self.passages:
            lines += ["", "Closest passages:"]
            for p in self.passages[:3]:
                lines.append(f"- {p.source} (score {p.score:.2f}): {_snippet(p.text, 160)}")
        if self.citations or self.passages:
            lines.append(SCORE_EXPLAINED)
        return lines


def _snippet(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


# ------------------------------------------------------------------ match scores and headings

#: Kinds of question whose answer must hold something checkable (else the extractive answer refuses).
_CHECKED_KINDS = {"time": "a date or a year", "number": "a number"}
_SENTENCE_END = re.compile(r"[.!?;:…\"'”’)\]]\s*$")


def match_score(cosine: float, coverage: float) -> float:
    """A passage's match score, 0 to 1: cosine similarity plus half the question-word coverage, clipped."""
    return round(min(max(float(cosine) + 0.5 * float(coverage), 0.0), 1.0), 4)


def _with_scores(passages: list[Passage], coverage: list[float]) -> list[Passage]:
    return [replace(p, score=match_score(p.score, c)) for p, c in zip(passages, coverage, strict=True)]


def best_first(passages: Sequence[Passage]) -> list[Passage]:
    """``passages`` sorted by score, best first (ties keep their order)."""
    return sorted(passages, key=lambda p: -p.score)


def is_heading(sentence: str, text: str = "", end: int = -1) -> bool:
    """Whether ``sentence`` is a heading line rather than a sentence: a markdown ``#`` line, or a short
    line without closing punctuation whose longer words are mostly capitalised ("Looking Ahead: What
    to Expect from a Visit"). ``text``/``end`` (the sentence's end in ``text``) check that a line break
    or the end of the text follows it."""
    line = sentence.strip()
    if not line:
        return False
    if end >= 0 and text[end:].split("\n", 1)[0].strip():
        return False
    if line.startswith("#"):
        return True
    words = line.split()
    if len(words) > 14 or _SENTENCE_END.search(line):
        return False
    long_words = [w.strip("\"'“‘(<") for w in words if len(w.strip("\"'“‘(<:,")) > 3]
    if not long_words:
        return True
    capitalised = sum(1 for w in long_words if w[:1].isupper() or w[:1].isdigit())
    return capitalised >= 0.6 * len(long_words)


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

    def __init__(self, max_sentences: int = 3, min_score: float = 0.52) -> None:
        self.max_sentences = max_sentences
        self.min_score = min_score

    def answer(self, question: str, passages: Sequence[Passage]) -> Answer:
        """Build the answer from ``passages`` (as retrieved, ``score`` = cosine); refuse when the confidence
        is below ``min_score``, or when the question asks when / how many and no sentence holds a date or
        a number. The answer's passages carry their match score (:meth:`rescore`), best first."""
        passages = list(passages)
        candidates, coverage = self._score(question, passages)
        scored = _with_scores(passages, coverage)
        confidence = max((p.score for p in scored), default=0.0)
        ranked = best_first(scored)
        if not candidates or confidence < self.min_score:
            return Answer(question, NOT_FOUND, False, [], ranked, confidence=confidence)
        kind = answer_kind(question)
        if kind in _CHECKED_KINDS and not any(kind_match(kind, c.text, question) for c in candidates):
            note = f"The closest passages match the question, but none of their sentences gives {_CHECKED_KINDS[kind]}."
            return Answer(question, NOT_FOUND, False, [], ranked, note=note, confidence=confidence)
        chosen = self._choose(question, candidates)
        built = self._build(question, scored, chosen)
        return replace(built, passages=ranked, confidence=confidence)

    def confidence(self, question: str, passages: Sequence[Passage]) -> float:
        """How likely the passages answer the question, 0 to 1 (compare with ``min_score``): the best match
        score of :meth:`rescore`."""
        return max((p.score for p in self.rescore(question, passages)), default=0.0)

    def rescore(self, question: str, passages: Sequence[Passage]) -> list[Passage]:
        """``passages`` (as retrieved, ``score`` = cosine) in the same order, each with its match score.

        A passage's score is its cosine similarity to the question plus half the share of the
        question's rare words that its best sentence holds, clipped to 0..1: the scale of ``min_score``
        (the answer's confidence is the best passage's score). Measured on squad-dev with half the
        articles indexed: see README "Quality".
        """
        passages = list(passages)
        return _with_scores(passages, self._score(question, passages)[1])

    def _score(self, question: str, passages: list[Passage]) -> tuple[list[_Candidate], list[float]]:
        """Every answer sentence of the passages with its score, and per passage the best share of
        question words one of its lines covers. Instructions are ignored; headings count for the coverage
        (they say what the passage is about) but are not answer sentences."""
        q_words = set(content_words(question))
        texts: list[tuple[int, int, int, str]] = []
        headings: set[int] = set()
        for i, passage in enumerate(passages):
            for a, b in split_sentences(passage.text, passage.start):
                sentence = passage.text[a - passage.start : b - passage.start]
                if is_instruction(sentence):
                    continue
                if is_heading(sentence, passage.text, b - passage.start):
                    headings.add(len(texts))
                texts.append((i, a, b, sentence))
        coverage = [0.0] * len(passages)
        if not texts:
            return [], coverage
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
        for j, (i, a, b, text) in enumerate(texts):
            lexical = sum(idf[w] for w in words_of[j] & q_words) / total
            coverage[i] = max(coverage[i], lexical)
            if j in headings:
                continue
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
