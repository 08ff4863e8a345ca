"""The extractive answerer: the sentences of the retrieved passages that answer the question, cited."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from .page_forms import is_label
from .text import WORD, content_words, split_sentences
from .types import NOT_FOUND, Answer, Citation, Passage

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
_DATE_OR_YEAR = re.compile(
    rf"(?:{_MONTH.pattern}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s*)?\b(?:1[0-9]{{3}}|20[0-9]{{2}})s?\b"
    rf"|{_MONTH.pattern}\s+\d{{1,2}}(?:st|nd|rd|th)?\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH.pattern}"
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
        asked = {w.lower() for w in WORD.findall(question)}
        return any(m.group().lower() not in asked for m in _CAPITALISED.finditer(sentence))
    return False


def gives_kind(kind: str, sentence: str, question: str) -> bool:
    """:func:`kind_match`, stricter for a quantity: a year or a date names a time, not how many or how much
    ("Crowley & Lowery 2000" gives no number to "how many reconstructions were used?")."""
    if kind != "number":
        return kind_match(kind, sentence, question)
    return kind_match(kind, _DATE_OR_YEAR.sub(" ", sentence), question)


# ------------------------------------------------------------------ match scores and headings

#: Kinds of question whose answer must hold something checkable (else the extractive answer refuses).
_CHECKED_KINDS = {"time": "a date or a year", "number": "a number"}
_SENTENCE_END = re.compile(r"[.!?;:…\"'”’)\]]\s*$")


#: The match score's scale: cosine plus half the coverage reaches 1.5 at most, so it is divided by 1.5 and
#: stays 0 to 1 without clipping (clipped at 1, four of five top passages used to read 1.00 alike).
SCORE_SCALE = 1.5


def match_score(cosine: float, coverage: float) -> float:
    """A passage's match score, 0 to 1: cosine similarity plus half the question-word coverage, over
    :data:`SCORE_SCALE` (passages that match well still differ at the top)."""
    return round(min(max((float(cosine) + 0.5 * float(coverage)) / SCORE_SCALE, 0.0), 1.0), 4)


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
    if " | " in line or (is_label(line) and line.split(":", 1)[1].strip()):
        return False  # a table row or a filled-in form field holds a value: it is content
    words = line.split()
    if len(words) > 14 or _SENTENCE_END.search(line):
        return False
    long_words = [w.strip("\"'“‘(<") for w in words if len(w.strip("\"'“‘(<:,")) > 3]
    if not long_words:
        return True
    capitalised = sum(1 for w in long_words if w[:1].isupper() or w[:1].isdigit())
    return capitalised >= 0.6 * len(long_words)


#: Words that point back at what an earlier sentence named ("This hypothesis is called ...", "He supplied
#: four of eight songs ...", "In principle, this means ...").
_POINTING = frozenset(
    "this these those it its he his him she her they their them such".split()  # noqa: SIM905
)
#: How many words from its start a sentence must point back within.
_POINTING_WITHIN = 5


def refers_back(sentence: str) -> bool:
    """Whether ``sentence`` opens (capitalised, within its first five words) with a word that points back at
    what an earlier sentence named: a pronoun or a demonstrative ("His position was ...", "Ten of these 14
    ...")."""
    words = WORD.findall(sentence)
    if not words or not sentence.lstrip("\"'“‘([")[:1].isupper():
        return False
    return any(w.lower() in _POINTING for w in words[:_POINTING_WITHIN])


def is_caption(sentence: str) -> bool:
    """Whether ``sentence`` only introduces or qualifies what follows (it ends in a colon: a caption, a
    table's lead-in, an empty form field ``Registration:``; or it is all in brackets: a table's unit line
    ``(In millions)``): it is never an answer on its own."""
    stripped = sentence.strip()
    return stripped.endswith(":") or (stripped.startswith("(") and stripped.endswith(")") and ")" not in stripped[:-1])


# ------------------------------------------------------------------ the extractive answerer


#: Short words a title may hold in lower case ("Research and Development").
_TITLE_SMALL = frozenset("a an and as at by for in of on or the to with".split())  # noqa: SIM905


def after_heading(passage: Passage, start: int, end: int) -> int:
    """Where the sentence ``[start, end)`` of a PDF or image passage begins once a heading line glued to
    it is left out ("Share Repurchases" on its own short line above "For the three months ended ..."):
    the first line is a few title-case words without closing punctuation, under 60% of the width of the
    line that follows, and at least four words follow. ``start`` when there is no such line."""
    runs = [r for r in passage.runs if r.end > start and r.start < end]
    if len(runs) < 2 or passage.text[runs[0].start - passage.start : start - passage.start].strip():
        return start
    first = runs[0]
    i = 1
    while i < len(runs) and abs(runs[i].y0 - first.y0) < 0.004:
        i += 1
    if i == len(runs) or runs[i].y0 <= first.y0:
        return start
    following = runs[i]
    head = passage.text[start - passage.start : runs[i - 1].end - passage.start].strip()
    words = head.split()
    rest = passage.text[following.start - passage.start : end - passage.start]
    if not 1 <= len(words) <= 8 or head[-1] in ".!?;:,)" or len(rest.split()) < 4:
        return start
    if not all(w[:1].isupper() or w.lower() in _TITLE_SMALL for w in words):
        return start
    if max(r.x1 for r in runs[:i]) - first.x0 >= 0.6 * (following.x1 - following.x0):
        return start
    return following.start


def is_table_row(sentence: str) -> bool:
    """Whether ``sentence`` is a line of a table as the readers write it (``label | header: value | ...``,
    also without a label or headers: ``| Q3 2023: 8,124``, ``Short-term debt | 1,250 | 1,250``): its cells
    are answered as cells, with their labels (:mod:`rag.answers.values`), never quoted whole as a sentence."""
    parts = sentence.strip().split("|")
    cells = [c.strip() for c in parts[1:]]
    return bool(cells) and all(": " in c or len(c.split()) <= 3 for c in cells)


@lru_cache(maxsize=8192)
def _sentences(text: str, start: int) -> tuple[tuple[int, int, str, bool, frozenset[str]], ...]:
    """A passage's sentences that are not instructions, as ``(start, end, text, heading or caption, words)``:
    what scoring them needs that does not depend on the question (kept: passages come back often)."""
    out = []
    for a, b in split_sentences(text, start):
        sentence = text[a - start : b - start]
        if is_instruction(sentence):
            continue
        heading = is_heading(sentence, text, b - start) or is_caption(sentence) or is_table_row(sentence)
        out.append((a, b, sentence, heading, frozenset(content_words(sentence))))
    return tuple(out)


def prepare_sentences(passage: Passage) -> None:
    """Split ``passage`` into its sentences now and keep them for the questions to come."""
    _sentences(passage.text, passage.start)


@dataclass(frozen=True)
class _Candidate:
    passage: int
    start: int
    end: int
    text: str
    score: float
    #: The candidate this sentence points back at (:func:`refers_back`): the one just before it in the same
    #: paragraph; -1 when none.
    back: int = -1


#: What may stand between two sentences of one paragraph: spaces, or one line break (not a blank line).
_SAME_PARAGRAPH = re.compile(r"[ \t]*\n?[ \t]*")


def _joined(first: _Candidate, second: _Candidate) -> _Candidate:
    """Two neighbouring sentences quoted as one."""
    return replace(first, end=second.end, text=f"{first.text} {second.text}", back=-1)


def _points_at(before: _Candidate, passage: int, start: int, sentence: str, p: Passage) -> bool:
    """Whether ``sentence`` (at ``start`` in passage number ``passage``, ``p``) points back at ``before``: it
    :func:`refers_back`, and ``before`` is the whole sentence just before it in the same paragraph."""
    if before.passage != passage or not refers_back(sentence):
        return False
    if not _SENTENCE_END.search(before.text) or before.text.rstrip().endswith((":", ";")):
        return False
    return bool(_SAME_PARAGRAPH.fullmatch(p.text[before.end - p.start : start - p.start]))


class ExtractiveAnswerer:
    """Picks the one to three sentences of the retrieved passages that best answer the question.

    Each sentence is scored by its embedding similarity to the question, the share of the
    question's content words it (or its passage) contains, weighted by rarity, and the rank of
    its passage. The best sentence is quoted with its neighbour when one of them points back at the
    other ("This hypothesis is called ...") and the neighbour holds what the best one lacks (see
    :meth:`_context`). Extra sentences are added only when they score close to the best and bring
    question words the first did not.
    """

    #: Score lost per place a sentence's passage stands below the first.
    rank_penalty = 0.08
    #: Bonus for a sentence holding the kind of thing the question asks for (a year, a name, a number).
    kind_bonus = 0.08
    #: Extra sentences must score within this margin of the best one.
    margin = 0.08

    def __init__(self, max_sentences: int = 3, min_score: float = 0.35) -> None:
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
        question's rare words that its best sentence holds, divided by 1.5 (0 to 1): the scale of ``min_score``
        (the answer's confidence is the best passage's score). Measured on squad-dev with half the
        articles indexed: see README "Quality".
        """
        passages = list(passages)
        return _with_scores(passages, self._score(question, passages, candidates=False)[1])

    def _score(
        self, question: str, passages: list[Passage], candidates: bool = True
    ) -> tuple[list[_Candidate], list[float]]:
        """Every answer sentence of the passages with its score (none without ``candidates``: the
        coverage alone), and per passage the best share of question words one of its lines covers.
        Instructions are ignored; headings count for the coverage (they say what the passage is about)
        but are not answer sentences."""
        q_words = set(content_words(question))
        texts: list[tuple[int, int, int, str]] = []
        headings: set[int] = set()
        words_of: list[frozenset[str]] = []
        for i, passage in enumerate(passages):
            for a, b, sentence, heading, words in _sentences(passage.text, passage.start):
                if heading:
                    headings.add(len(texts))
                texts.append((i, a, b, sentence))
                words_of.append(words)
        coverage = [0.0] * len(passages)
        if not texts:
            return [], coverage
        # Rarity of each question word among the candidate sentences (local IDF): a word that no
        # sentence holds weighs most, so its absence lowers the coverage (and the confidence).
        doc_freq: Counter[str] = Counter()
        for words in words_of:
            doc_freq.update(words & q_words)
        n = len(texts)
        idf = {w: math.log(1 + n / (1 + doc_freq[w])) for w in q_words}
        total = sum(idf.values()) or 1.0
        kind = answer_kind(question)
        out: list[_Candidate] = []
        last = -1  # the index in ``out`` of the text before this one, when it is an answer sentence
        for j, (i, a, b, text) in enumerate(texts):
            lexical = sum(idf[w] for w in words_of[j] & q_words) / total
            coverage[i] = max(coverage[i], lexical)
            if j in headings or not candidates:
                last = -1
                continue
            score = lexical - self.rank_penalty * i
            if len(text.split()) < 4:
                score -= 0.05
            if kind and gives_kind(kind, text, question):
                score += self.kind_bonus
            # A PDF heading on its own line above the sentence counts for the match but is not quoted.
            p = passages[i]
            body = after_heading(p, a, b)
            back = last if last >= 0 and _points_at(out[last], i, a, text, p) else -1
            # Rounded: the same sentences score the same in every process, whatever order the sums took.
            out.append(_Candidate(i, body, b, p.text[body - p.start : b - p.start], round(score, 6), back))
            last = len(out) - 1
        return out, coverage

    def _choose(self, question: str, candidates: list[_Candidate]) -> list[_Candidate]:
        ranked = sorted(candidates, key=lambda c: c.score, reverse=True)
        q_words = set(content_words(question))
        best = self._context(question, q_words, candidates, ranked[0])
        chosen = [best]
        covered = set(content_words(best.text)) & q_words
        for c in ranked[1:]:
            if len(chosen) >= self.max_sentences:
                break
            if round(best.score - c.score, 6) > self.margin:
                break
            if any(c.passage == o.passage and c.start < o.end and o.start < c.end for o in chosen):
                continue  # quoted already, with the sentence that points back at it or the one it points at
            new = (set(content_words(c.text)) & q_words) - covered
            if not new:
                continue
            chosen.append(c)
            covered |= new
        return chosen

    @staticmethod
    def _context(question: str, q_words: set[str], candidates: list[_Candidate], best: _Candidate) -> _Candidate:
        """``best`` with a neighbour that holds what it lacks. The sentence before, when ``best`` points back at
        it and the question asks who, when or how many, which only that sentence says ("She was the first
        woman to win a Nobel Prize." after "Marie Curie moved to Paris ..."); else the sentence after, when it
        points back at ``best`` and adds question words or the kind of answer wanted ("This hypothesis is
        called the Cobham-Edmonds thesis." after the sentence that describes the hypothesis)."""
        kind = answer_kind(question)
        lacks = bool(kind) and not gives_kind(kind, best.text, question)
        if best.back >= 0:
            before = candidates[best.back]
            return _joined(before, best) if lacks and gives_kind(kind, before.text, question) else best
        at = candidates.index(best)
        after = candidates[at + 1] if at + 1 < len(candidates) else None
        if after is None or after.back != at:
            return best
        adds = (set(content_words(after.text)) & q_words) - set(content_words(best.text))
        return _joined(best, after) if adds or (lacks and gives_kind(kind, after.text, question)) else best

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
