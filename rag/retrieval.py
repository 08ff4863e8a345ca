"""Retrieval: find the passages closest to a question, without near-duplicates."""

from __future__ import annotations

import numpy as np

from .answers import Passage
from .store import VectorStore

#: Two passages of one file that share more than this share of the shorter one count as duplicates.
DUPLICATE_OVERLAP = 0.5


class Retriever:
    """Dense retrieval over a :class:`VectorStore`, with overlapping chunks folded together."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    def search(self, query_vector: np.ndarray, k: int) -> list[Passage]:
        """The ``k`` best passages for ``query_vector``, best first, overlapping chunks removed."""
        hits = self.store.search(query_vector, k * 2 + 2)
        records = self.store.chunks([chunk_id for chunk_id, _ in hits])
        passages: list[Passage] = []
        for chunk_id, score in hits:
            record = records.get(chunk_id)
            if record is None:  # removed by a concurrent commit; the next search sees the new state
                continue
            passage = Passage(record.source, record.start, record.end, record.text, score, record.section, chunk_id)
            if any(_overlaps(passage, kept) for kept in passages):
                continue
            passages.append(passage)
            if len(passages) == k:
                break
        return passages


def _overlaps(a: Passage, b: Passage) -> bool:
    if a.source != b.source:
        return False
    shared = min(a.end, b.end) - max(a.start, b.start)
    return shared > DUPLICATE_OVERLAP * min(a.end - a.start, b.end - b.start)
