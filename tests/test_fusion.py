"""Adaptive fusion: BM25 counts as far as it agrees with dense search on the question's documents."""

from __future__ import annotations

import numpy as np

from rag.retrieval import Retriever
from rag.stores import ChunkRecord


class Lists:
    """A store stand-in that returns fixed candidate lists (the fusion is what is tested here)."""

    def __init__(self, dense: list[tuple[int, float]], sparse: list[tuple[int, float]], sources: dict[int, str]):
        self.dense, self.sparse, self.sources = dense, sparse, sources

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.dense[:k]

    def keyword_search(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        return self.sparse[:k]

    def chunks(self, ids: list[int]) -> dict[int, ChunkRecord]:
        return {i: ChunkRecord(i, self.sources[i], 0, str(i), 10 * i, 10 * i + 5, "", f"chunk {i}") for i in ids}

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        return {i: np.zeros(2, dtype=np.float32) for i in ids}


def _ranked(store: Lists, fusion: str = "adaptive") -> list[int]:
    return [p.chunk_id for p in Retriever(store, fusion).search("a question", np.ones(2, dtype=np.float32), 3)]  # type: ignore[arg-type]


def test_keywords_from_other_documents_barely_count() -> None:
    dense = [(1, 0.80), (2, 0.78), (3, 0.70)]
    sparse = [(7, 30.0), (8, 29.0), (9, 28.0)]  # strong keyword hits, all in a document dense search did not find
    sources = {1: "a.pdf", 2: "a.pdf", 3: "b.pdf", 7: "z.pdf", 8: "z.pdf", 9: "z.pdf"}
    assert _ranked(Lists(dense, sparse, sources)) == [1, 2, 3]
    blended = _ranked(Lists(dense, sparse, sources), "blend")
    assert blended[0] == 1 and 7 in blended  # an equal-weight blend lets them in


def test_keywords_that_agree_on_the_document_promote_its_best_chunk() -> None:
    dense = [(1, 0.80), (2, 0.79), (3, 0.78)]
    sparse = [(3, 30.0), (1, 5.0), (2, 4.0)]  # BM25 is sure of chunk 3, from a document dense search also ranks
    sources = {1: "a.pdf", 2: "a.pdf", 3: "a.pdf"}
    assert _ranked(Lists(dense, sparse, sources))[0] == 3
