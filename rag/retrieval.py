"""Retrieval: dense (FAISS) and keyword (BM25) search, fused, without near-duplicate passages."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

import numpy as np

from .boxes import Run, boxes_for, parse_layout
from .doc_names import DocumentNames
from .stores.records import ChunkRecord, VectorStore
from .text import content_terms
from .types import Passage

Box = tuple[float, float, float, float]
Fusion = Literal["adaptive", "rrf", "blend", "dense", "bm25"]
FUSIONS: tuple[str, ...] = ("adaptive", "rrf", "blend", "dense", "bm25")

#: Two passages of one file that share more than this share of the shorter one count as duplicates.
DUPLICATE_OVERLAP = 0.5
#: Reciprocal rank fusion constant (the usual 60 of Cormack et al.).
RRF_K = 60
#: Candidates taken from each side before fusing (a deep pool steadies the score scaling).
CANDIDATES = 100
#: Adaptive fusion: BM25's weight is ``ADAPTIVE_WEIGHT * sqrt(agreement * clarity)``. Agreement is the share
#: of BM25's top ``AGREEMENT_DEPTH`` chunks that come from a document among dense search's top
#: ``AGREEMENT_DEPTH``; clarity is how far BM25's best score stands above its ``AGREEMENT_DEPTH``-th, as the
#: ratio of the two placed on ``CLARITY_RANGE`` (0 at or below its low end, 1 at or above its high end).
#: Chosen on squad-dev (Wikipedia) and sec-10q (filings) at once, checked on halves of each: see the
#: README's "Quality".
ADAPTIVE_WEIGHT = 0.5
AGREEMENT_DEPTH = 10
CLARITY_RANGE = (1.15, 2.2)
#: Adaptive fusion: a passage gains ``NAME_WEIGHT`` times the share of its file's name that the question
#: names (see :mod:`rag.doc_names`), on the fused scale where the best dense and BM25 scores are 1. It
#: applies to the first ``NAME_POOL`` fused candidates (or 3k + 5 when more).
NAME_WEIGHT = 0.5
NAME_POOL = 60
#: Documents whose chunks :meth:`Retriever.document_passages` keeps in memory (most recently used).
DOCUMENTS_KEPT = 32


class Retriever:
    """Hybrid retrieval over a :class:`VectorStore`.

    Dense and BM25 candidates are fused by a convex blend: each side's score divided by its best
    score among the candidates (0 as the floor). ``adaptive`` (the default) weighs BM25 by how much it
    agrees with dense search on this question (the share of its top chunks from dense search's top
    documents) and by how clearly its best chunk stands out: keywords count fully when both point at
    the same documents and one passage shares the question's words, little when the question's words
    are common across the collection; and it raises the passages of a file that the question names
    (two or more words of its file name) and, for a question about the latest report, of the newest
    file of a series named by date (:mod:`rag.doc_names`). ``blend`` weighs both sides equally, ``rrf``
    fuses by reciprocal rank; ``dense`` and ``bm25`` use one side only. Every passage's
    ``score`` is its cosine similarity to the question, whatever ranked it, so scores are comparable
    across questions; the list order is the fused rank.
    """

    def __init__(self, store: VectorStore, fusion: str = "adaptive") -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        self.store = store
        self.fusion = fusion
        self._names: tuple[int, DocumentNames] | None = None
        self._documents: dict[str, _Document] = {}
        self._documents_generation = -1
        self._documents_lock = threading.Lock()  # servers ask from several threads

    def search(self, question: str, query_vector: np.ndarray, k: int) -> list[Passage]:
        """The ``k`` best passages for the question, best first, overlapping chunks removed."""
        depth = max(CANDIDATES, 3 * k)
        dense = self.store.search(query_vector, depth) if self.fusion != "bm25" else []
        sparse = (
            self.store.keyword_search(content_terms(question), depth, [i for i, _ in dense])
            if self.fusion != "dense"
            else []
        )
        records: dict[int, ChunkRecord] = {}
        if self.fusion == "adaptive" and dense and sparse:
            top = [i for i, _ in dense[:AGREEMENT_DEPTH]] + [i for i, _ in sparse[:AGREEMENT_DEPTH]]
            records = self.store.chunks(list(dict.fromkeys(top)))
            weight = ADAPTIVE_WEIGHT * math.sqrt(_agreement(dense, sparse, records) * _clarity(sparse))
            fused = _blend(dense, sparse, 1.0 - weight, weight)
            names = self.document_names()
            named = names.match(question)
            newest = names.asks_newest(question)
            if named or newest:
                pool = fused[: max(NAME_POOL, 3 * k + 5)]
                records.update(self.store.chunks([i for i, _ in pool if i not in records]))
                if newest:  # "in the latest 10-Q": the newest of the series found first counts as named
                    head = (records[i].source for i, _ in pool[:AGREEMENT_DEPTH] if i in records)
                    for source in names.newest(head):
                        named[source] = named.get(source, 0.0) + 1.0
                fused = sorted(
                    ((i, s + NAME_WEIGHT * named.get(records[i].source, 0.0)) for i, s in pool if i in records),
                    key=lambda item: item[1],
                    reverse=True,
                )
            ranked = fused[: 3 * k + 5]
        else:
            ranked = _fuse(dense, sparse, self.fusion)[: 3 * k + 5]
        ids = [chunk_id for chunk_id, _ in ranked]
        records.update(self.store.chunks([i for i in ids if i not in records]))
        cosine = dict(dense)
        missing = [i for i in ids if i not in cosine]
        if missing:
            query = np.asarray(query_vector, dtype=np.float32)
            cosine.update({i: float(v @ query) for i, v in self.store.vectors(missing).items()})
        passages: list[Passage] = []
        for chunk_id, _ in ranked:
            record = records.get(chunk_id)
            if record is None:  # removed by a concurrent commit; the next search sees the new state
                continue
            score = cosine.get(chunk_id, 0.0)
            passage = Passage(record.source, record.start, record.end, record.text, score, record.section, chunk_id)
            if any(_overlaps(passage, kept) for kept in passages):
                continue
            if record.layout:  # page and boxes only for the passages kept
                page, boxes, runs = _placement(record.layout, record.start, record.end)
                passage = replace(passage, page=page, boxes=boxes, runs=runs)
            passages.append(passage)
            if len(passages) == k:
                break
        return passages

    def document_passages(self, source: str, query_vector: np.ndarray) -> list[Passage]:
        """Every passage of one document, in document order, each scored by its cosine similarity to the
        query (without page boxes: see :meth:`placed`). A document's chunks and vectors are read once per
        committed change of the index."""
        document = self._document(source)
        if not document.records:
            return []
        scores = document.matrix @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
        return [
            Passage(r.source, r.start, r.end, r.text, float(score), r.section, r.id)
            for r, score in zip(document.records, scores, strict=True)
        ]

    def document_text(self, source: str) -> str:
        """One document's chunk texts joined by new lines (the same string object until the index changes,
        so that what is kept per text is found again without reading the text)."""
        document = self._document(source)
        if document.text is None:
            document.text = "\n".join(r.text for r in document.records)
        return document.text

    def _document(self, source: str) -> _Document:
        generation = self.store.generation()
        with self._documents_lock:
            if generation != self._documents_generation:
                self._documents, self._documents_generation = {}, generation
            kept = self._documents.pop(source, None)
            if kept is None:
                records = self.store.document_chunks(source)
                vectors = self.store.vectors([r.id for r in records])
                records = [r for r in records if r.id in vectors]
                matrix = np.stack([vectors[r.id] for r in records]) if records else np.zeros((0, 1), np.float32)
                kept = _Document(records, matrix.astype(np.float32, copy=False))
            self._documents[source] = kept  # most recently used last
            while len(self._documents) > DOCUMENTS_KEPT:
                self._documents.pop(next(iter(self._documents)))
        return kept

    def documents(self, query_vector: np.ndarray) -> QueryDocuments:
        """Whole documents scored against one question (for :class:`rag.answers.Answerer`)."""
        return QueryDocuments(self, query_vector)

    def placed(self, passage: Passage) -> Passage:
        """``passage`` with its page and boxes (for a PDF or image chunk that has a layout)."""
        if passage.page is not None or passage.chunk_id < 0:
            return passage
        record = self.store.chunks([passage.chunk_id]).get(passage.chunk_id)
        if record is None or not record.layout:
            return passage
        page, boxes, runs = _placement(record.layout, record.start, record.end)
        return replace(passage, page=page, boxes=boxes, runs=runs)

    def document_names(self) -> DocumentNames:
        """The indexed files' names (re-read when the index changes)."""
        generation = self.store.generation()
        cached = self._names
        if cached is None or cached[0] != generation:
            cached = (generation, DocumentNames(d.source for d in self.store.documents()))
            self._names = cached
        return cached[1]


@dataclass
class _Document:
    """One document's chunks and vectors as kept by a :class:`Retriever`, and its text once joined."""

    records: list[ChunkRecord]
    matrix: np.ndarray
    text: str | None = None


@dataclass(frozen=True)
class QueryDocuments:
    """Every passage of a document, scored against one question's vector (see
    :meth:`Retriever.document_passages`), and the page boxes of the one an answer cites. Scored once per
    document for the question (the answer asks for a document's passages more than once)."""

    retriever: Retriever
    query_vector: np.ndarray
    _scored: dict[str, list[Passage]] = field(default_factory=dict, compare=False, repr=False)

    def passages(self, source: str) -> list[Passage]:
        """Every passage of ``source``, in document order, scored by cosine similarity."""
        scored = self._scored.get(source)
        if scored is None:
            scored = self._scored[source] = self.retriever.document_passages(source, self.query_vector)
        return list(scored)

    def text(self, source: str) -> str:
        """The whole text of ``source`` (its passages joined by new lines)."""
        return self.retriever.document_text(source)

    def placed(self, passage: Passage) -> Passage:
        """``passage`` with its page and boxes."""
        return self.retriever.placed(passage)


@lru_cache(maxsize=4096)
def _placement(layout: str, start: int, end: int) -> tuple[int | None, tuple[Box, ...], tuple[Run, ...]]:
    """A stored chunk's page, boxes and runs (from its layout JSON; kept, as a chunk's layout never changes)."""
    page, runs = parse_layout(layout)
    return page, tuple(boxes_for(runs, start, end)), runs


def _fuse(dense: list[tuple[int, float]], sparse: list[tuple[int, float]], fusion: str) -> list[tuple[int, float]]:
    if fusion == "dense" or not sparse:
        return dense
    if fusion == "bm25" or not dense:
        return sparse
    if fusion != "rrf":
        return _blend(dense, sparse, 0.5, 0.5)
    scores: dict[int, float] = {}
    for hits in (dense, sparse):
        for rank, (chunk_id, _) in enumerate(hits):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)


def _blend(
    dense: list[tuple[int, float]], sparse: list[tuple[int, float]], w_dense: float, w_sparse: float
) -> list[tuple[int, float]]:
    """Each side's scores divided by its best candidate's (floor 0), weighted and added."""
    scores: dict[int, float] = {}
    for hits, weight in ((dense, w_dense), (sparse, w_sparse)):
        best = max((score for _, score in hits), default=0.0)
        if best <= 0 or weight <= 0:
            continue
        for chunk_id, score in hits:
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight * max(score, 0.0) / best
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)


def _agreement(
    dense: list[tuple[int, float]], sparse: list[tuple[int, float]], records: dict[int, ChunkRecord]
) -> float:
    """Share of BM25's top chunks whose document is among dense search's top documents (0 to 1)."""
    documents = {records[i].source for i, _ in dense[:AGREEMENT_DEPTH] if i in records}
    top = [i for i, _ in sparse[:AGREEMENT_DEPTH]]
    return sum(1 for i in top if i in records and records[i].source in documents) / max(1, len(top))


def _clarity(sparse: list[tuple[int, float]]) -> float:
    """How clearly BM25's best chunk stands out (0 to 1): its score over the ``AGREEMENT_DEPTH``-th one's.

    Questions that share rare words with one passage give a peaked BM25 list; questions in words that
    every document uses ("significant changes", "key drivers") give a flat one, where keywords say little.
    """
    if not sparse:
        return 0.0
    if len(sparse) < AGREEMENT_DEPTH or sparse[AGREEMENT_DEPTH - 1][1] <= 0:
        return 1.0  # few keyword matches at all: those there are stand out
    low, high = CLARITY_RANGE
    ratio = sparse[0][1] / sparse[AGREEMENT_DEPTH - 1][1]
    return min(1.0, max(0.0, (ratio - low) / (high - low)))


def _overlaps(a: Passage, b: Passage) -> bool:
    if a.source != b.source:
        return False
    shared = min(a.end, b.end) - max(a.start, b.start)
    return shared > DUPLICATE_OVERLAP * min(a.end - a.start, b.end - b.start)
