"""The records the library returns: passages, citations, claims, answers and index reports.

At the bottom of the package: every other module may import these; they import nothing above them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .boxes import Run, boxes_for

NOT_FOUND = "The documents do not contain an answer to this question."
#: One line telling readers what a passage's score means (CLI, web chat, README).
SCORE_EXPLAINED = (
    "(score: how well a passage matches the question, 0 to 1; an answer needs one at RAG_MIN_SCORE, 0.35 by default)"
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


_PAGE_COUNTS = ("pages", "text_pages", "ocr_pages", "empty_pages", "tables")


@dataclass
class IndexReport:
    """What one ``index`` run did, file by file."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: (path, source) of files not indexed because an indexed file has the same bytes (``source``).
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    #: Files indexed with a remark, e.g. the legacy encoding their text was guessed to be in.
    notes: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    #: PDFs and images read this run: what extraction found in each (pages, OCR, tables, warnings).
    extraction: dict[str, dict[str, Any]] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """One line per extraction warning, e.g. "report.pdf: page 12: no text layer, and OCR found none"."""
        return [f"{source}: {w}" for source, r in sorted(self.extraction.items()) for w in r.get("warnings", [])]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        data = asdict(self)
        data["failed"] = [{"path": p, "reason": r} for p, r in self.failed]
        data["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        data["duplicates"] = [{"path": p, "same_as": s} for p, s in self.duplicates]
        data["notes"] = [{"path": p, "note": n} for p, n in self.notes]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexReport:
        """The report :meth:`to_dict` gave (e.g. sent as JSON by an indexing worker process)."""
        pairs = {"failed": "reason", "skipped": "reason", "duplicates": "same_as", "notes": "note"}
        names = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in names and key not in pairs}
        for key, second in pairs.items():
            values[key] = [(str(item["path"]), str(item[second])) for item in data.get(key, [])]
        return cls(**values)

    def summary(self) -> str:
        """One line: counts of what happened."""
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.failed)} failed, {len(self.skipped)} skipped"
            f"{f', {len(self.duplicates)} duplicate' if self.duplicates else ''}; "
            f"{self.chunks_embedded} chunks embedded, {self.chunks_reused} reused, "
            f"{self.chunks_total} in the index ({self.seconds:.1f} s)"
        ) + self._pages_summary()

    def _pages_summary(self) -> str:
        if not self.extraction:
            return ""
        total = {k: sum(int(r.get(k, 0)) for r in self.extraction.values()) for k in _PAGE_COUNTS}
        return (
            f"; {total['pages']} pages read ({total['text_pages']} with a text layer, {total['ocr_pages']} by OCR, "
            f"{total['empty_pages']} empty), {total['tables']} tables"
        )
