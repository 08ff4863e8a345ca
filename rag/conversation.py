"""Conversations: follow-up questions are rewritten into standalone ones before retrieval.

    >>> session = assistant.chat()
    >>> session.ask("Who invited Prime Minister Takaichi to visit the United States?")
    >>> answer = session.ask("When will she visit?")
    >>> answer.rewritten_question    # what was searched, e.g. "When will Prime Minister Takaichi visit ...?"

With a language model configured, it rewrites every question after the first (and leaves standalone
ones as they are). Without one, or when it fails, a question that looks like a follow-up (a pronoun
such as "she" or "it", or only one or two content words) gets the previous turn's key terms added: at
most :data:`MAX_CARRIED_TERMS`, each named in one of the last :data:`CARRY_TURNS` turns, so the work per
turn and the question searched stay bounded however long the history is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .answers.question import CARRIED, DATE, QUARTER, SPAN, YEAR, read_period
from .text import MAX_QUESTION_CHARS, STOPWORDS, clean_question, content_words
from .types import Answer

if TYPE_CHECKING:
    from .assistant import Assistant

#: Earlier turns given to the language model when it rewrites a follow-up.
MEMORY_TURNS = 3
#: Most terms carried over from the previous turn without a language model.
MAX_CARRIED_TERMS = 6
#: Turns a carried term lasts: a term is carried only while one of the last few questions or the last
#: answer holds it, so a long chat does not keep every place it ever named in the search.
CARRY_TURNS = 3
#: Longest name carried (in words), and the characters of an answer read for its names: a history of
#: any size costs the same per turn.
MAX_TERM_WORDS = 6
MAX_ANSWER_SCAN = 4_000

_REFERENCE = re.compile(
    r"\b(he|she|it|they|him|her|them|his|hers|its|their|theirs|this|that|these|those|there|then|"
    r"the same|the other|the former|the latter|the first|the second|the last)\b",
    re.I,
)
_CONTINUATION = re.compile(r"^\s*(and|but|also|so|what about|how about|and what|what else)\b", re.I)
_QUESTION_WORDS = frozenset({"who", "whom", "whose", "what", "which", "when", "where", "why", "how"})
_MARKERS = re.compile(r"\s*\[\d+\]")
_NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][a-z]+")
_SPAN_ENDED = re.compile(
    r"\b(?:three|six|nine|twelve|\d{1,2})[- ]months?\s+ended\s+[A-Z][a-z]+\.? \d{1,2},? (?:19|20)\d\d\b", re.I
)
#: The span and "ended" before the date of a :data:`_SPAN_ENDED` phrase ("three months ended ").
_SPAN_ENDED_DATE = re.compile(r"^(?:three|six|nine|twelve|\d{1,2})[- ]months?\s+ended\s+", re.I)
_WORDS = re.compile(r"[A-Za-z0-9][\w'’.-]*[A-Za-z0-9]|[A-Za-z0-9]")


@dataclass(frozen=True)
class Turn:
    """One question of a conversation: as asked, as searched, and its answer."""

    question: str
    standalone: str
    answer: Answer


def is_follow_up(question: str) -> bool:
    """Whether ``question`` seems to lean on an earlier turn: a pronoun, a continuation, or a short
    question that names nothing of its own (no proper noun after the first word, no number)."""
    if _REFERENCE.search(question) or _CONTINUATION.search(question):
        return True
    names_something = bool(_NAME.search(question) or re.search(r"\d", question))
    return len(content_words(question)) <= 2 and not names_something


def _key_terms(text: str) -> list[str]:
    """Names (runs of capitalised words) and other content words of ``text``, in order, without duplicates."""
    terms: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            terms.append(" ".join(run))
            run.clear()

    text = _MARKERS.sub("", text)
    end = 0
    for m in _WORDS.finditer(text):
        if text[end : m.start()].strip():  # punctuation between two words ends a name: "Peru, Chile"
            flush()
        end = m.end()
        word = m.group().rstrip(".")
        lower = word.lower()
        if lower in STOPWORDS or lower in _QUESTION_WORDS:
            flush()
            continue
        if word[0].isupper() or word[0].isdigit():
            run.append(word)
            if len(run) >= MAX_TERM_WORDS:
                flush()
            continue
        flush()
        terms.append(word)
    flush()
    return list(dict.fromkeys(terms))


def carry_terms(question: str, previous: str, previous_answer: str = "", recent: Iterable[str] | None = None) -> str:
    """``question`` with the key terms of the previous question (and names of its answer) it lacks.

    ``carry_terms("When will she visit?", "Who invited Prime Minister Takaichi to visit the United
    States?")`` gives ``"When will she visit? (about: Prime Minister Takaichi, invited, United States)"``.
    The previous period is carried as a whole (:func:`carried_periods`), never as loose words. Of the
    terms the previous question had carried itself, names are dropped when it named its own ("And Mac?"
    replaced the iPhone). With ``recent`` (the texts of the last few turns), only terms found there are
    carried. The result is never longer than a question may be (:data:`rag.text.MAX_QUESTION_CHARS`).
    """
    have = set(content_words(question))
    carried: list[str] = []
    seen = set(have)
    room = MAX_QUESTION_CHARS - len(question) - len(" (about: )")
    previous = previous[: MAX_QUESTION_CHARS * 2]
    for phrase in carried_periods(question, previous):
        if len(phrase) + 2 <= room:
            carried.append(phrase)
            seen |= set(content_words(phrase))
            room -= len(phrase) + 2
    about = CARRIED.search(previous)
    own = previous[: about.start()] if about else previous
    own_terms = _key_terms(without_periods(own))
    earlier = _key_terms(without_periods(about.group(1))) if about else []
    if any(_is_name(t) for t in own_terms):  # a name of its own replaced the names it carried
        earlier = [t for t in earlier if not _is_name(t)]
    known = None if recent is None else {w for text in recent for w in content_words(text[:MAX_ANSWER_SCAN])}
    answer = without_periods(previous_answer[:MAX_ANSWER_SCAN])
    names_of_answer = [t for t in _key_terms(answer) if t[0].isupper() and " " in t]
    for term in [*own_terms, *earlier, *names_of_answer[:2]]:
        words = set(content_words(term))
        if not words or words <= seen or (term in names_of_answer and words & seen):
            continue
        if known is not None and not words <= known:
            continue  # named only in turns older than the last few
        room -= len(term) + 2
        if room < 0:
            break
        carried.append(term)
        seen |= words
        if len(carried) >= MAX_CARRIED_TERMS:
            break
    if not carried:
        return question
    names = [t for t in carried if t[0].isupper()]
    others = [t for t in carried if not t[0].isupper()]
    return f"{question} (about: {', '.join(names + others)})"


def _is_name(term: str) -> bool:
    return term[0].isupper() or bool(re.search(r"[a-z][A-Z]", term))


def carried_periods(question: str, previous: str) -> list[str]:
    """The phrases of the previous question's period that still hold for ``question``: all of them
    when it names no period ("And Mac?"); its dates, quarters and years when it names only a span of
    months ("What about the nine months?" keeps "July 1, 2023"); its span when it names only a point in
    time ("And in 2022?" keeps "nine months"); none when it names both."""
    asked = read_period(question)
    phrases = period_phrases(previous)
    if not asked:
        return phrases[:3]
    point = bool(asked.dates or asked.quarters or asked.years)
    if not point:
        points = [_SPAN_ENDED_DATE.sub("", p) for p in phrases if not SPAN.fullmatch(p)]
        return [p for p in points if p][:3]
    if not asked.span:
        span = read_period(previous).span
        return [f"{span} months"] if span else []
    return []


def keep_period(rewritten: str, question: str, previous: str) -> str:
    """A language model's rewrite of ``question``, with the previous question's period added when the
    model dropped it (the rewrite names no period, and neither does the question)."""
    if read_period(rewritten) or read_period(question):
        return rewritten
    phrases = carried_periods(question, previous[: MAX_QUESTION_CHARS * 2])
    room = MAX_QUESTION_CHARS - len(rewritten) - len(" (about: )")
    kept = ", ".join(phrases)
    return f"{rewritten} (about: {kept})" if phrases and len(kept) <= room else rewritten


def without_periods(text: str) -> str:
    """``text`` with the phrases that name a period (and spans of months) blanked out."""
    for pattern in (_SPAN_ENDED, DATE, QUARTER, YEAR, SPAN):
        text = pattern.sub(" ", text)
    return text


def period_phrases(text: str) -> list[str]:
    """The phrases of ``text`` that name a period: a span of months with its end date ("three months
    ended July 1, 2023"), a date, a quarter ("Q3 2023", "third quarter of 2023"), a year, a span of
    months alone ("the nine months")."""
    found: list[tuple[int, int]] = []
    for pattern in (_SPAN_ENDED, DATE, QUARTER, YEAR, SPAN):
        for m in pattern.finditer(text):
            if m.group().strip() and not any(a <= m.start() < b or a < m.end() <= b for a, b in found):
                found.append((m.start(), m.end()))
    return [text[a:b].strip() for a, b in sorted(found)]


def _same(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", s.lower()).split())

    return norm(a) == norm(b)


class ChatSession:
    """A conversation with an :class:`~rag.assistant.Assistant`: ``ask`` and ``stream`` like the assistant's,
    with follow-ups rewritten into standalone questions (shown in ``Answer.rewritten_question``).
    """

    def __init__(self, assistant: Assistant, k: int | None = None, memory: int = MEMORY_TURNS) -> None:
        self.assistant = assistant
        self.k = k
        self.memory = max(1, memory)
        self.turns: list[Turn] = []

    def reset(self) -> None:
        """Forget the conversation."""
        self.turns.clear()

    def remember(self, question: str, answer: str) -> None:
        """Add an earlier turn known only as text (e.g. the history an API client sends with each request).

        No model is asked: with a language model configured, the turn is kept as asked (the model reads
        the turns as written when it rewrites the next question); without one, a follow-up gets the
        previous turn's terms, as :meth:`standalone` would have given it.
        """

        question = clean_question(question)
        standalone = question
        if self.assistant.generator is None and self.turns and is_follow_up(question):
            standalone = self._carried(question)
        self.turns.append(Turn(question, standalone, Answer(question, answer, answered=True)))
        del self.turns[: -self.memory]  # only the last few turns are used for rewriting

    def history(self) -> list[dict[str, Any]]:
        """The turns kept for rewriting follow-ups, JSON-ready: question, standalone, answer, answered."""
        return [
            {"question": t.question, "standalone": t.standalone, "answer": t.answer.text, "answered": t.answer.answered}
            for t in self.turns[-self.memory :]
        ]

    def restore(self, history: Iterable[Mapping[str, Any]]) -> None:
        """Continue a conversation saved with :meth:`history` (e.g. in a browser); bad entries are ignored."""
        self.turns.clear()
        for item in history:
            if not isinstance(item, Mapping):
                continue
            question, standalone, text = (item.get(key) for key in ("question", "standalone", "answer"))
            if not all(isinstance(value, str) and value for value in (question, standalone, text)):
                continue
            answer = Answer(str(question), str(text), bool(item.get("answered", True)))
            self.turns.append(Turn(str(question), str(standalone), answer))
        del self.turns[: -self.memory]

    def standalone(self, question: str) -> tuple[str, str | None]:
        """The question to search for, and a note when the language model could not rewrite it."""
        if not self.turns:
            return question, None
        note = None
        generator = self.assistant.generator
        if generator is not None:
            from .generation import GenerationError

            history = [(t.standalone, t.answer.text) for t in self.turns[-self.memory :]]
            try:
                return keep_period(generator.rewrite(question, history), question, self.turns[-1].standalone), None
            except GenerationError as exc:
                note = f"The follow-up could not be rewritten ({exc}); the previous question's terms were added."
        if not is_follow_up(question):
            return question, note
        return self._carried(question), note

    def _carried(self, question: str) -> str:
        """``question`` with the terms of the last turn it lacks, among those the last
        :data:`CARRY_TURNS` turns named (bounded work, whatever the history's length)."""
        last = self.turns[-1]
        recent = [t.question for t in self.turns[-CARRY_TURNS:]] + [last.answer.text]
        return carry_terms(question, last.standalone, last.answer.text, recent)

    def stream(
        self, question: str, k: int | None = None, on_rewrite: Callable[[str], None] | None = None
    ) -> Iterator[str | Answer]:
        """Like :meth:`Assistant.stream`, for the next question of the conversation.

        ``on_rewrite(standalone)`` is called before the search when the question was rewritten.
        """

        question = clean_question(question)
        standalone, note = self.standalone(question)
        if on_rewrite is not None and not _same(standalone, question):
            on_rewrite(standalone)
        final: Answer | None = None
        for item in self.assistant.respond(question, self.k if k is None else k, search=standalone):
            if isinstance(item, Answer):
                rewritten = None if _same(standalone, question) else standalone
                notes = " ".join(n for n in (note, item.note) if n) or None
                item = replace(item, rewritten_question=rewritten, note=notes)
                final = item
            yield item
        if final is not None:
            self.turns.append(Turn(question, standalone, final))
            del self.turns[: -self.memory]  # only the last few turns are used for rewriting

    def ask(self, question: str, k: int | None = None) -> Answer:
        """Like :meth:`Assistant.ask`, for the next question of the conversation."""
        final: Answer | None = None
        for item in self.stream(question, k):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final
