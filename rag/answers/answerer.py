"""The answer: the value asked for with its labels, else the sentences that answer, else a refusal.

1. Passages whose document or text does not match the question's names and periods are set aside
   (:mod:`rag.answers.constraints`); when none is left, the answer says the documents do not hold it.
2. A question that asks for a value gets the matching field or table cell (:mod:`rag.answers.values`),
   quoted with its labels: ``Total net sales, Three Months Ended July 1, 2023: $81,797 [1]``.
3. Otherwise the sentences that answer it (:class:`rag.extractive.ExtractiveAnswerer`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Protocol

from ..extractive import ExtractiveAnswerer, best_first, prepare_sentences
from ..text import content_words, file_stem
from ..types import NOT_FOUND, Answer, Citation, Passage
from .constraints import Scope, date_words, latest_sources, missing_names, missing_period, period_end
from .question import Asked, read_question
from .values import CellMatch, best_cell, may_hold, prepare, second_cell, with_value

#: Seconds :meth:`Answerer.prepare` spends at most (about: it stops after the document it is on): a server
#: that warms up prepares the documents it has time for, the rest as questions come.
PREPARE_SECONDS = 5.0
#: A citation marker of an extractive answer (one number).
MARKER = re.compile(r"\s*\[(\d+)\]")

#: Questions that ask for an explanation, not a value: answered with sentences.
_EXPLAIN = re.compile(
    r"\b(why|explain|describe|discuss|summari[sz]e|factors?|drivers?|reasons?|risks?|strateg\w*|impact\w*|affect\w*"
    r"|effects?|suggest\w*|significan\w*|details?|compare\w*|relate\w*|changes? in"
    r"|how (?:has|have|did|does|do) \w+(?: \w+)? (?:change|evolve|trend))\b",
    re.I,
)


def document_identity(source: str, report: Mapping[str, object] | None) -> str:
    """What a document says about itself: its file name's words, its title and its identifying lines."""
    report = report or {}
    words = " ".join(re.sub(r"[_\-]+", " ", file_stem(source)).split())
    lines = [words, str(report.get("title") or "")]
    identity = report.get("identity") or []
    if isinstance(identity, list):
        lines.extend(str(line) for line in identity)
    return "\n".join(line for line in lines if line)


def _naming_words(asked: Asked, identity: str) -> set[str]:
    """Words that name a document rather than a value in it: its identity's words, and the words of the
    question's names that the identity holds (an acronym such as NTSB by its initials)."""
    words = set(content_words(identity))
    for name in asked.names:
        if not missing_names(replace(asked, names=(name,)), Scope("", identity)):
            words.update(content_words(name))
    return words


#: How many documents a refusal names when it says what the documents cover.
COVERAGE_NAMED = 6


def coverage(identities: Mapping[str, str]) -> str:
    """What the indexed documents cover, for a refusal: " The documents here: 2023 Q3 AAPL, 2023 Q3 INTC
    and 18 more; periods ended June 25, 2022 to October 29, 2023." (each by its file name's words; the
    periods from their identities, when they give them), or "" without documents."""
    if not identities:
        return ""
    names = sorted({identity.split("\n", 1)[0] or source for source, identity in identities.items()})
    shown = ", ".join(names[:COVERAGE_NAMED])
    if len(names) > COVERAGE_NAMED:
        shown += f" and {len(names) - COVERAGE_NAMED} more"
    ends = sorted(end for end in (period_end(i) for i in identities.values()) if end is not None)
    periods = f"; periods ended {date_words(ends[0])} to {date_words(ends[-1])}" if len(ends) > 1 else ""
    return f" The documents here: {shown}{periods}."


def wants_value(asked: Asked) -> bool:
    """Whether the question asks for one value (a field, a figure) rather than an explanation."""
    return not _EXPLAIN.search(asked.text)


@dataclass(frozen=True)
class Checked:
    """Passages sorted into those that match the question's names and periods and those that do not."""

    allowed: list[Passage]
    why_not: str  # for the best passage set aside: what it lacks ("Tesla", "Q4 2023"), else ""
    positions: tuple[int, ...] = ()  # where each allowed passage stands among those checked
    #: Passages whose names are found in any retrieved passage of their document (not only their own),
    #: spelled alike (plural, adjective: "French" ~ "France" no, "Saharan" ~ "Sahara" yes): enough for
    #: quoting prose, which may name its subject only sentences away; a value is quoted from ``allowed`` only.
    related: list[Passage] = field(default_factory=list)


def check_passages(
    asked: Asked,
    passages: Sequence[Passage],
    identities: Mapping[str, str],
    related: bool = True,
    whole: Mapping[str, str] | None = None,
    text_of: Callable[[str], str] | None = None,
) -> Checked:
    """Keep the passages whose text or document holds every name and period the question gives (and,
    with ``related``, sort out those whose names are in any of ``passages`` of their document, or in the
    document's ``whole`` text when given). With ``text_of`` (source -> the document's text), a document
    whose identity holds one of the question's names (the entity: "NVIDIA") may hold its other names
    ("GPU", "R&D") anywhere in its text."""
    allowed: list[Passage] = []
    near: list[Passage] = []
    positions: list[int] = []
    why_not = ""
    texts: dict[str, list[str]] = {}
    for p in passages if related else ():
        texts.setdefault(p.source, []).extend((p.section, p.text))
    named: dict[str, bool] = {}  # per document (checked once, however many of its passages there are)
    by_identity: dict[str, bool] = {}
    topical: dict[str, bool] = {}
    for i, p in enumerate(passages):
        identity = identities.get(p.source) or document_identity(p.source, None)
        scope = Scope(f"{p.section}\n{p.text}", identity)
        period = missing_period(asked.period, identity) and missing_period(asked.period, scope.all)
        if p.source not in by_identity:  # names the identity holds hold for every passage of the document
            by_identity[p.source] = not asked.names or not missing_names(asked, Scope("", identity), limit=1)
        names = [] if by_identity[p.source] else missing_names(asked, scope, limit=1)
        if names and text_of is not None:
            if p.source not in topical:
                topical[p.source] = _named_in_document(asked, p.source, identity, text_of)
            if topical[p.source]:  # a value may be quoted from it; prose still needs the name nearby
                why_not = why_not or names[0]
                names = []
        if related and not period and p.source not in named:
            text = (whole or {}).get(p.source) or "\n".join(texts[p.source])
            named[p.source] = not missing_names(asked, Scope(text, identity), alike=True, limit=1)
        if related and not period and named[p.source]:
            near.append(p)
        if names or period:
            why_not = why_not or (names[0] if names else period)
            continue
        allowed.append(p)
        positions.append(i)
    return Checked(allowed, why_not, tuple(positions), near)


def _named_in_document(asked: Asked, source: str, identity: str, text_of: Callable[[str], str]) -> bool:
    """Whether a document's identity holds one of the question's names and its text all the others."""
    held = [n for n in asked.names if not missing_names(replace(asked, names=(n,)), Scope("", identity))]
    if not held:
        return False
    rest = tuple(n for n in asked.names if n not in held)
    # A Scope's words are kept per text (constraints._words): a document's are indexed once, not per question.
    return not missing_names(replace(asked, names=rest), Scope(text_of(source), identity), limit=1)


def _texts(documents: Documents | None) -> Callable[[str], str] | None:
    """Each document's whole text, read once per question (None without ``documents``)."""
    if documents is None:
        return None
    got = documents

    @cache
    def text_of(source: str) -> str:
        return got.text(source)

    return text_of


class Documents(Protocol):
    """The rest of a document beyond the retrieved passages (see :meth:`rag.retrieval.Retriever.document_passages`)."""

    def passages(self, source: str) -> Sequence[Passage]:
        """Every passage of ``source``, scored against the question like the retrieved ones."""

    def text(self, source: str) -> str:
        """The whole text of ``source``: its passages joined by new lines."""

    def placed(self, passage: Passage) -> Passage:
        """``passage`` with its page and boxes."""


def _find(
    asked: Asked,
    passages: Sequence[Passage],
    checked: Checked,
    identities: Mapping[str, str],
    documents: Documents | None,
    text_of: Callable[[str], str] | None,
) -> tuple[list[Passage], CellMatch, CellMatch | None] | None:
    """The cell that holds the asked value (and a second one for a question about two rows): among the
    allowed passages, then (with ``documents``) the other passages of the best allowed passage's
    document whose labels may hold it. Returns the candidates (the allowed passages first) and the
    matches, whose ``passage`` is an index into them; None when no cell matches."""
    candidates = list(checked.allowed)
    document: Sequence[Passage] = ()
    if documents is not None and candidates:
        seen = {p.chunk_id for p in passages}
        document = documents.passages(candidates[0].source)
        rest = [p for p in document if p.chunk_id not in seen and may_hold(asked, p)]
        candidates += check_passages(asked, rest, identities, related=False, text_of=text_of).allowed
    words = _document_words(asked, candidates, identities)
    match = best_cell(asked, candidates, words, identities, document, one_value=wants_value(asked))
    if match is None:
        return None
    value = with_value(candidates, match)  # a change is quoted after the value it changes
    if value is not None:
        return candidates, value, match
    return candidates, match, second_cell(asked, candidates, match, words, identities)


def _document_words(asked: Asked, passages: Sequence[Passage], identities: Mapping[str, str]) -> dict[str, set[str]]:
    """:func:`_naming_words` of each document of ``passages``."""
    return {s: _naming_words(asked, identities.get(s, "")) for s in {p.source for p in passages}}


class Answerer:
    """Builds extractive answers: a cell or field when the question asks for a value, else sentences."""

    def __init__(self, max_sentences: int = 3, min_score: float = 0.35) -> None:
        self.sentences = ExtractiveAnswerer(max_sentences, min_score)
        self.min_score = min_score
        self._last: tuple[tuple[object, ...], list[Passage]] | None = None

    def rescore(self, question: str, passages: Sequence[Passage]) -> list[Passage]:
        """``passages`` in order, each with its 0-1 match score (see :meth:`ExtractiveAnswerer.rescore`).
        The last result is kept: a question's passages are scored once, though both the assistant (for
        the confidence) and :meth:`answer` ask for them."""
        key = (question, *((p.source, p.start, p.end, p.score, p.text) for p in passages))
        last = self._last
        if last is not None and last[0] == key:
            return list(last[1])
        scored = self.sentences.rescore(question, passages)
        self._last = (key, scored)
        return list(scored)

    def latest(
        self,
        question: str,
        passages: Sequence[Passage],
        identities: Mapping[str, str],
        documents: Documents | None = None,
    ) -> list[Passage]:
        """``passages``, narrowed to the latest report of the entity the question names when it asks for
        the latest or most recent one (see :func:`rag.answers.constraints.latest_sources`): the retrieved
        passages of those documents, then their best other passages by similarity (with ``documents``),
        as many as were retrieved. Unchanged for any other question."""
        sources = latest_sources(read_question(question), identities)
        if sources is None:
            return list(passages)
        kept = [p for p in passages if p.source in sources]
        if documents is not None and len(kept) < len(passages):
            seen = {p.chunk_id for p in kept}
            more = [p for s in sorted(sources) for p in documents.passages(s) if p.chunk_id not in seen]
            more.sort(key=lambda p: p.score, reverse=True)
            kept += [documents.placed(p) for p in more[: len(passages) - len(kept)]]
        return kept

    def prepare(self, documents: Iterable[tuple[str, str, Sequence[Passage]]], seconds: float = PREPARE_SECONDS) -> int:
        """Work out before the first question what answers read of each document, for a process that will
        answer many (:meth:`rag.Assistant.warm`): its passages' cells, label words and sentences, and the
        words and acronyms of its identity and whole text. ``documents`` gives ``(identity, whole text,
        passages)`` per document. Stops after about ``seconds``; returns how many passages were prepared.
        The answers are the same either way: only when the work is done changes."""
        deadline = time.monotonic() + seconds
        prepared = 0
        for identity, text, passages in documents:
            for scope in (Scope("", identity), Scope(text, identity)):
                _ = scope.words, scope.initials
            for passage in passages:
                prepare(passage)
                prepare_sentences(passage)
                prepared += 1
            if time.monotonic() > deadline:
                break
        return prepared

    def check(self, question: str, passages: Sequence[Passage], identities: Mapping[str, str]) -> Checked:
        """The passages that match the question's names and periods (see :func:`check_passages`)."""
        return check_passages(read_question(question), passages, identities)

    def matched(
        self,
        question: str,
        passages: Sequence[Passage],
        identities: Mapping[str, str],
        documents: Documents | None = None,
    ) -> tuple[Passage | None, list[tuple[int, str]]]:
        """The cell or field that holds the value ``question`` asks for, as the extractive answer would
        quote it: ``(None, [(n, "Mac, Three Months Ended July 1, 2023: 6,840")])`` with ``n`` its passage's
        number among ``passages`` (1-based), or ``(None, [])``. Only passages that pass the question's
        checks count. With ``documents`` the row may be in another passage of the best document, as for
        :meth:`answer`: that passage comes first, ``(passage, [(1, quote)])``, to be numbered 1 before
        ``passages``."""
        asked = read_question(question)
        checked = check_passages(asked, passages, identities, related=False)
        found = _find(asked, passages, checked, identities, documents, _texts(documents))
        if found is None:
            return None, []
        candidates, match, also = found
        quote = f"{match.cell.quote()}; {also.cell.quote()}" if also else match.cell.quote()
        if match.passage < len(checked.allowed):
            return None, [(checked.positions[match.passage] + 1, quote)]
        assert documents is not None
        return documents.placed(candidates[match.passage]), [(1, quote)]

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        identities: Mapping[str, str],
        documents: Documents | None = None,
    ) -> Answer:
        """Answer ``question`` from ``passages`` (as retrieved, ``score`` = cosine) of documents whose
        identities are ``identities`` (source -> :func:`document_identity`). With ``documents``, the
        asked value is also looked for in the other passages of the best matching document (a statement's
        row is often in a passage that shares few words with the question), each scored by its similarity
        to the question like the retrieved ones."""
        asked = read_question(question)
        passages = list(passages)
        scored = self.rescore(question, passages)
        ranked = best_first(scored)
        confidence = max((p.score for p in scored), default=0.0)
        text_of = _texts(documents)
        checked = check_passages(asked, passages, identities, text_of=text_of)
        if passages and not checked.related and documents is not None and asked.names and not asked.period:
            # Prose may name its subject anywhere in its document, not only in the passages retrieved; not
            # when the question also pins a period (a figure of a company and a quarter is not prose that
            # merely mentions the company somewhere else in a filing).
            assert text_of is not None
            whole = {s: text_of(s) for s in {p.source for p in passages}}
            checked = check_passages(asked, passages, identities, whole=whole, text_of=text_of)

        def refusal() -> Answer:
            note = f"No passage found here matches {checked.why_not!r} from the question.{coverage(identities)}"
            return Answer(question, NOT_FOUND, False, [], ranked, note=note, confidence=confidence)

        if passages and not checked.related and not checked.allowed:
            return refusal()
        allowed_confidence = max((scored[i].score for i in checked.positions), default=0.0)
        cell: Answer | None = None
        if allowed_confidence >= self.min_score:
            found = _find(asked, passages, checked, identities, documents, text_of)
            if found is not None:
                candidates, match, also = found
                # The passage that holds the asked value is the best match, whatever its words scored.
                if match.passage < len(checked.allowed):
                    position = checked.positions[match.passage]
                    passage = replace(scored[position], score=max(scored[position].score, confidence))
                    others = [p for i, p in enumerate(scored) if i != position]
                else:
                    assert documents is not None
                    passage = replace(documents.placed(candidates[match.passage]), score=confidence)
                    others = scored[: len(scored) - 1]  # as many passages as were asked for
                spans = match.cell.spans() + (also.cell.spans() if also else ())
                citation = Citation.of(1, passage, tuple(sorted(spans)))
                ranked = [passage, *best_first(others)]
                quote = f"{match.cell.quote()}; {also.cell.quote()}" if also else match.cell.quote()
                cell = Answer(question, f"{quote} [1]", True, [citation], ranked, confidence=confidence)
        if cell is not None and wants_value(asked):
            return cell
        if cell is None and passages and not checked.related:
            return refusal()
        answer = self.sentences.answer(question, checked.related)
        if cell is None:
            return replace(answer, passages=ranked, confidence=confidence)
        if not answer.answered:
            return cell
        # A question that asks for an explanation and names a measure: the value, then the sentences.
        shifted = [replace(c, n=c.n + 1) for c in answer.citations]
        text = MARKER.sub(lambda m: f" [{int(m.group(1)) + 1}]", answer.text)
        return replace(cell, text=f"{cell.text} {text}", citations=[*cell.citations, *shifted])
