"""Citations of a generated answer: renumbered live as tokens stream, then each claim checked against
the passages it cites."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..text import MARKERS, content_words, split_sentences
from ..types import Citation, Claim, Passage

#: A claim is supported when at least this share of its content words (stemmed, stop words removed)
#: occurs in the passages it cites, counting words that only the question contains as half, and
#: when every name and number it adds to the question occurs there too (acronyms may be spelled out;
#: a figure such as ``6,840`` must occur whole, see :func:`figures`).
#:
#: Measured by bench/citation_support.py on 400 squad-dev questions (seed 7), each turned into a
#: claim "<gold answer> <question words>" and checked against (a) its gold paragraph, (b) another
#: paragraph of the same article without the answer (a wrong citation), (c) its gold paragraph with
#: the answer swapped for another question's answer of the same kind (a made-up fact). Share judged
#: supported, (a)/(b)/(c): 0.55: 100/10.3/23.0%; 0.60: 100/6.3/18.5%; 0.65: 99.8/3.8/14.8%;
#: 0.70: 98.8/2.5/12.0%; 0.80: 90.8/0.5/3.8%. Without the names-and-numbers rule, 0.65 passes 46%
#: of (c). Generated sentences reword their passages more than squad questions do: on 19
#: hand-written claims about the seed article (tests/test_generation.py) supported paraphrases score
#: 0.75 to 1.0; unsupported ones at most 0.42, except one that only swaps a name (0.75, caught by the
#: names rule). 0.65 keeps nearly every supported squad claim and leaves a margin for rewording.
#: Embedding similarity of a claim to its best passage sentence did worse (best: 87.7/2.3/17.2% at
#: 0.58 with the names rule) and did not help in combination, so it is not used.
SUPPORT_THRESHOLD = 0.65
#: A sentence saying the passages do not hold the answer: not a claim to check.
REFUSAL = re.compile(
    r"\b(do(es)?n[o’']?t|do(es)? not|cannot|can't|no)\b[^.]{0,60}\b(contain|mention|say|provide|include|answer|"
    r"information)",
    re.I,
)


_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_PARTIAL_MARKER = re.compile(r"\[[\d\s,;]*$")
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


class CitationStream:
    """Rewrites a streamed answer as it arrives.

    ``[n]`` markers are renumbered ``[1]..[m]`` in order of first use (``[2, 5]`` becomes ``[1][2]``),
    markers pointing at no passage are dropped with the space before them, a leading
    ``<think>...</think>`` block (reasoning models) is skipped, and leading and trailing white space
    is trimmed. Text that could still be the start of a marker is held back until it is complete, so
    the joined output of :meth:`feed` and :meth:`close` is exactly :attr:`text`.
    """

    def __init__(self, passages: int) -> None:
        self.passages = passages
        #: Given passage number (1-based) -> number in the answer.
        self.numbers: dict[int, int] = {}
        #: Marker numbers that pointed at no passage.
        self.dropped: list[int] = []
        self._pending = ""
        self._out: list[str] = []
        self._started = False
        self._in_think: bool | None = None  # None: not yet known
        self._space = ""  # white space removed with a dropped marker

    @property
    def text(self) -> str:
        """Everything emitted so far."""
        return "".join(self._out)

    def feed(self, delta: str) -> str:
        """Take one piece of the stream; return the text that is now final."""
        self._pending += delta
        return self._drain(final=False)

    def close(self) -> str:
        """The stream ended: return what was held back."""
        return self._drain(final=True)

    def _drain(self, final: bool) -> str:
        buffer = self._pending
        if self._in_think is not False:
            stripped = buffer.lstrip()
            if self._in_think is None:
                if not final and _THINK_OPEN.startswith(stripped):
                    return ""  # could still become "<think>"
                self._in_think = stripped.startswith(_THINK_OPEN)
            if self._in_think:
                end = buffer.find(_THINK_CLOSE)
                if end < 0:
                    if not final:
                        return ""
                    buffer = ""
                else:
                    buffer = buffer[end + len(_THINK_CLOSE) :]
                self._in_think = False
        pieces = []
        while (m := _MARKER.search(buffer)) is not None:
            before = buffer[: m.start()]
            rewritten = self._renumber(m.group(1))
            if rewritten:
                # "word [0][2]": the space taken with the dropped [0] goes back before [2].
                pieces.append((before or self._space) + rewritten)
                self._space = ""
            else:
                kept = before.rstrip()
                self._space = before[len(kept) :] if kept else (self._space or before)
                pieces.append(kept)
            buffer = buffer[m.end() :]
        if final:
            cut = len(buffer.rstrip())
        else:
            partial = _PARTIAL_MARKER.search(buffer)
            cut = partial.start() if partial else len(buffer)
            while cut > 0 and buffer[cut - 1].isspace():
                cut -= 1
        pieces.append(buffer[:cut])
        if cut:
            self._space = ""
        self._pending = buffer[cut:]
        out = "".join(pieces)
        if not self._started:
            out = out.lstrip()
            self._started = bool(out)
        if final:
            out = out.rstrip()
            self._pending = ""
        self._out.append(out)
        return out

    def _renumber(self, group: str) -> str:
        out = []
        for raw in re.findall(r"\d+", group):
            given = int(raw)
            if not 1 <= given <= self.passages:
                self.dropped.append(given)
                continue
            n = self.numbers.setdefault(given, len(self.numbers) + 1)
            if f"[{n}]" not in out:
                out.append(f"[{n}]")
        return "".join(out)


_KEY = re.compile(r"[A-Za-z0-9]+(?:['’][a-z]+)?|[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Verified:
    """The result of :func:`verify`: citations in answer order and the checked claims."""

    citations: list[Citation]
    claims: list[Claim]


def split_claims(text: str) -> list[tuple[int, int]]:
    """Sentence spans of an answer, with markers that open a sentence ("... end. [1] Next") moved back."""
    spans: list[tuple[int, int]] = []
    for a, b in split_sentences(text):
        lead = re.match(r"(?:\[\d+\]\s*)+", text[a:b])
        if lead and spans:
            prev_start, _ = spans[-1]
            spans[-1] = (prev_start, a + len(lead.group().rstrip()))
            a += lead.end()
            if a >= b:
                continue
        spans.append((a, b))
    return spans


def _normalise(text: str) -> str:
    """Curly apostrophes straightened and possessive 's dropped, so "Washington’s" matches "Washington"."""
    return re.sub(r"'s\b", "", text.replace("’", "'"))


def key_terms(text: str) -> dict[str, str]:
    """Names and numbers of ``text``: stem -> word, for words with a digit or a capital letter."""
    out: dict[str, str] = {}
    for m in _KEY.finditer(_normalise(text)):
        word = m.group()
        if any(ch.isdigit() for ch in word) or word[0].isupper():
            for s in content_words(word):
                out.setdefault(s, word)
    return out


#: A figure as written: digits with their thousands separators and decimals (``6,840``, ``21.7``, ``2023``).
_FIGURE = re.compile(r"\d+(?:[,.]\d+)*")


def figures(text: str) -> dict[str, str]:
    """The figures of ``text``, whole: normalised (thousands separators dropped) -> as written. "6,840"
    is one figure, so a made-up "6,743" is not backed by a passage that holds "6,840" and "21,743"."""
    out: dict[str, str] = {}
    for m in _FIGURE.finditer(text):
        out.setdefault(re.sub(r",(?=\d{3}(?!\d))", "", m.group()), m.group())
    return out


def _acronym_in(word: str, texts: Sequence[str]) -> bool:
    """Whether an acronym such as "US" is spelled out ("United States") or dotted ("U.S.") in ``texts``."""
    if not (word.isupper() and 2 <= len(word) <= 6 and word.isalpha()):
        return False
    dotted = ".".join(word) + "."
    for text in texts:
        if dotted in text:
            return True
        for run in re.finditer(r"[A-Z][\w-]*(?:\s+(?:of\s+|and\s+|the\s+)?[A-Z][\w-]*)+", text):
            initials = "".join(w[0] for w in run.group().split() if w[0].isupper())
            if word in initials:
                return True
    return False


def support(claim: str, passage_texts: Sequence[str], question: str = "") -> tuple[float, tuple[str, ...]]:
    """How well the passages back ``claim``: the covered share of its content words, and missing names/numbers.

    Words found only in the question count half: restating the question is not a new fact, but a
    claim made of question words alone proves nothing. See :data:`SUPPORT_THRESHOLD`.
    """
    words = set(content_words(_normalise(claim)))
    if not words:
        return 1.0, ()
    found: set[str] = set()
    for text in passage_texts:
        found.update(content_words(_normalise(text)))
    asked = set(content_words(_normalise(question)))
    covered = len(words & found) + 0.5 * len((words - found) & asked)
    missing = tuple(
        word
        for s, word in key_terms(claim).items()
        if s not in found and s not in asked and not _acronym_in(word, passage_texts) and not word.isdigit()
    )
    # Every figure must be in a passage as a whole, not pieced together from the words of others.
    held = {f for text in [*passage_texts, question] for f in figures(text)}
    missing += tuple(word for f, word in figures(claim).items() if f not in held and word not in missing)
    return covered / len(words), missing


def _best_sentences(words: set[str], passage: Passage) -> list[tuple[int, int]]:
    """Up to two sentences of ``passage`` that together hold most of ``words`` (document offsets)."""
    candidates = []
    for a, b in split_sentences(passage.text, passage.start):
        candidates.append(((a, b), set(content_words(passage.text[a - passage.start : b - passage.start]))))
    chosen: list[tuple[int, int]] = []
    left = set(words)
    for _ in range(2):
        best = max(candidates, key=lambda c: len(c[1] & left), default=None)
        if best is None or not best[1] & left:
            break
        chosen.append(best[0])
        left -= best[1]
        candidates.remove(best)
    return sorted(chosen)


def verify(text: str, numbers: dict[int, int], passages: Sequence[Passage], question: str) -> Verified:
    """Check every claim of ``text`` against the passages it cites.

    ``numbers`` maps given passage numbers (1-based, as in the prompt) to the numbers in ``text``
    (from :class:`CitationStream`). A citation is ``supported`` when every claim citing it is; its
    highlights are the passage sentences that best cover those claims.
    """
    by_n = {n: passages[given - 1] for given, n in numbers.items()}
    claims: list[Claim] = []
    highlight: dict[int, set[tuple[int, int]]] = {n: set() for n in by_n}
    for a, b in split_claims(text):
        sentence = text[a:b]
        cited = tuple(dict.fromkeys(int(x) for m in _MARKER.finditer(sentence) for x in re.findall(r"\d+", m.group())))
        cited = tuple(n for n in cited if n in by_n)
        plain = " ".join(MARKERS.sub("", sentence).split())
        if not cited:
            if content_words(plain) and not REFUSAL.search(plain):
                claims.append(Claim(a, b, plain, (), False, 0.0))
            continue
        score, missing = support(plain, [by_n[n].text for n in cited], question)
        ok = score >= SUPPORT_THRESHOLD and not missing
        claims.append(Claim(a, b, plain, cited, ok, round(score, 3), missing))
        words = set(content_words(_normalise(plain)))
        for n in cited:
            highlight[n].update(_best_sentences(words, by_n[n]))
    citations = []
    for n, p in sorted(by_n.items()):
        backed = all(c.supported for c in claims if n in c.citations)
        spans = tuple(sorted(highlight[n]))
        citations.append(Citation.of(n, p, spans, backed))
    return Verified(citations, claims)
