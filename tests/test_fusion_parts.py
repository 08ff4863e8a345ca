"""The pieces of fusion on their own (rag/retrieval.py): the scaled blend, reciprocal rank fusion, one-sided
modes, and how agreement between dense and keyword search is measured. tests/test_fusion.py checks the
adaptive ranking through the Retriever."""

from __future__ import annotations

import math

import pytest

from rag.retrieval import RRF_K, _agreement, _blend, _fuse
from rag.stores import ChunkRecord

DENSE = [(1, 0.8), (2, 0.4), (3, -0.2)]  # cosine similarities
SPARSE = [(2, 10.0), (4, 5.0)]  # BM25 scores


def test_blend_divides_each_side_by_its_best_and_floors_negatives_at_zero() -> None:
    assert _blend(DENSE, SPARSE, 0.5, 0.5) == [(2, 0.75), (1, 0.5), (4, 0.25), (3, 0.0)]
    assert _blend(DENSE, SPARSE, 1.0, 0.0) == [(1, 1.0), (2, 0.5), (3, 0.0)], "a zero weight leaves a side out"
    assert _blend(DENSE, [], 0.5, 0.5) == [(1, 0.5), (2, 0.25), (3, 0.0)]
    # A side whose best score is not above zero says nothing.
    assert _blend([(1, -0.1)], SPARSE, 0.5, 0.5) == [(2, 0.5), (4, 0.25)]


def test_rrf_adds_reciprocal_ranks() -> None:
    fused = dict(_fuse(DENSE, SPARSE, "rrf"))
    assert list(fused) == [2, 1, 4, 3]
    assert math.isclose(fused[2], 1 / (RRF_K + 2) + 1 / (RRF_K + 1))  # second in dense, first in BM25
    assert math.isclose(fused[1], 1 / (RRF_K + 1)) and math.isclose(fused[3], 1 / (RRF_K + 3))


@pytest.mark.parametrize(
    ("dense", "sparse", "fusion", "expected"),
    [
        (DENSE, SPARSE, "dense", DENSE),
        (DENSE, SPARSE, "bm25", SPARSE),
        (DENSE, [], "rrf", DENSE),  # one side empty: the other as it is
        ([], SPARSE, "blend", SPARSE),
        (DENSE, SPARSE, "blend", [(2, 0.75), (1, 0.5), (4, 0.25), (3, 0.0)]),  # equal weights
    ],
)
def test_fuse_modes(
    dense: list[tuple[int, float]], sparse: list[tuple[int, float]], fusion: str, expected: list[tuple[int, float]]
) -> None:
    assert _fuse(dense, sparse, fusion) == expected


def _records(sources: dict[int, str]) -> dict[int, ChunkRecord]:
    return {i: ChunkRecord(i, source, 0, str(i), 0, 1, "", "text") for i, source in sources.items()}


def test_agreement_is_the_share_of_keyword_hits_in_documents_dense_search_found() -> None:
    records = _records({1: "a.pdf", 2: "a.pdf", 4: "b.pdf", 5: "c.pdf"})
    assert _agreement(DENSE, SPARSE, records) == 0.5  # chunk 2 is in a.pdf, chunk 4's b.pdf was not found
    assert _agreement(DENSE, [(4, 9.0), (5, 8.0)], records) == 0.0
    assert _agreement(DENSE, [(2, 9.0), (1, 1.0)], records) == 1.0
    assert _agreement(DENSE, [], records) == 0.0
