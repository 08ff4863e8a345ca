"""Adaptive fusion: BM25 counts as far as it agrees with dense search on the question's documents."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np

from rag.retrieval import Retriever
from rag.stores import ChunkRecord


class Lists:
    """A store stand-in that returns fixed candidate lists (the fusion is what is tested here)."""

    def __init__(self, dense: list[tuple[int, float]], sparse: list[tuple[int, float]], sources: dict[int, str]):
        self.dense, self.sparse, self.sources = dense, sparse, sources
        self.rescored: list[int] = []

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.dense[:k]

    def keyword_search(self, terms: list[str], k: int, rescore: Sequence[int] = ()) -> list[tuple[int, float]]:
        self.rescored = list(rescore)
        return self.sparse[:k]

    def chunks(self, ids: list[int]) -> dict[int, ChunkRecord]:
        return {i: ChunkRecord(i, self.sources[i], 0, str(i), 10 * i, 10 * i + 5, "", f"chunk {i}") for i in ids}

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        return {i: np.zeros(2, dtype=np.float32) for i in ids}

    def generation(self) -> int:
        return 0

    def documents(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(source=s) for s in sorted(set(self.sources.values()))]


def _ranked(store: Lists, fusion: str = "adaptive", question: str = "a question") -> list[int]:
    return [p.chunk_id for p in Retriever(store, fusion).search(question, np.ones(2, dtype=np.float32), 3)]  # type: ignore[arg-type]


def test_a_question_that_names_a_file_raises_its_passages() -> None:
    # Three quarterly reports that read alike: the text cannot tell the quarters apart, the names can.
    dense = [(1, 0.80), (2, 0.79), (3, 0.78), (4, 0.60)]
    sparse = [(1, 9.0), (2, 8.9), (3, 8.8), (4, 8.7)]
    sources = {1: "2023 Q3 ACME.pdf", 2: "2023 Q1 ACME.pdf", 3: "2022 Q3 ACME.pdf", 4: "2022 Q3 ACME.pdf"}
    store = Lists(dense, sparse, sources)
    assert _ranked(store, question="What was ACME's revenue?") == [1, 2, 3]
    assert _ranked(store, question="What was ACME's revenue in Q3 2022?")[:2] == [3, 4]
    # "first quarter" reads as Q1, the way reports are named.
    assert _ranked(store, question="What was the revenue in the first quarter of 2023?")[0] == 2
    # One shared word ("2023", held by two of the names) is no sign of which file is meant.
    assert _ranked(store, question="What was the revenue in 2023?") == [1, 2, 3]


def test_name_matching_needs_two_words_of_the_name() -> None:
    from rag.doc_names import DocumentNames

    names = DocumentNames(["black-death.txt", "martin-luther.txt", "docs/2022_Q3_report.pdf"])
    assert names.match("What was the Black Cloister?") == {}
    assert set(names.match("When did Martin Luther die?")) == {"martin-luther.txt"}
    assert set(names.match("What does the third quarter 2022 report say?")) == {"docs/2022_Q3_report.pdf"}
    assert names.match("Martin Luther and the Black Death")["martin-luther.txt"] == 1.0


def test_a_question_about_the_latest_report_gets_the_newest_of_its_series() -> None:
    dense = [(1, 0.80), (2, 0.79), (3, 0.78), (4, 0.77), (5, 0.60)]
    sparse = [(1, 9.0), (2, 8.9), (3, 8.8), (4, 8.7), (5, 8.0)]
    sources = {
        1: "2023 Q1 ACME.pdf",
        2: "2022 Q4 ACME.pdf",
        3: "2023 Q3 ACME.pdf",
        4: "acme-handbook.pdf",
        5: "2023 Q4 OTHER.pdf",  # the newest file of a series the search did not find first
    }
    store = Lists(dense, sparse, sources)
    assert _ranked(store, question="What was ACME's revenue?") == [1, 2, 3]
    assert _ranked(store, question="What was ACME's revenue in the latest report?") == [3, 1, 2]
    assert _ranked(store, question="What was the revenue in the most recent quarter?")[0] == 3
    # A question that also asks about the reports before it needs them all, as found.
    assert _ranked(store, question="How does the latest revenue compare to previous quarters?") == [1, 2, 3]


def test_series_of_reports_are_read_from_dated_file_names() -> None:
    from rag.doc_names import DocumentNames

    names = DocumentNames(
        ["sales-march-2024.pdf", "sales-january-2024.pdf", "sales-december-2023.pdf", "notes.txt", "2021 plan.md"]
    )
    assert names.asks_newest("What were sales in the latest report?")
    assert not names.asks_newest("What were sales in March?")
    assert names.newest(["sales-december-2023.pdf"]) == {"sales-march-2024.pdf"}
    assert names.newest(["notes.txt", "2021 plan.md"]) == set()  # no series: one dated file is not a series
    assert not DocumentNames(["black-death.txt", "doctor-who.txt"]).asks_newest("Who is the most recent Doctor?")


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


def _twelve(scores: list[float]) -> list[tuple[int, float]]:
    return [(10 + i, s) for i, s in enumerate(scores)]


def test_a_flat_keyword_list_barely_counts_even_in_the_right_document() -> None:
    """Words every chunk shares ("significant changes") give BM25 scores without a clear best: dense decides."""
    dense = [(1, 0.80), (2, 0.79), (3, 0.70), (10, 0.6)] + [(20 + i, 0.5) for i in range(8)]
    flat = _twelve([10.0, 9.9, 9.8, 9.7, 9.6, 9.5, 9.4, 9.3, 9.2, 9.1, 9.0, 8.9])
    sources = {i: "a.pdf" for i in [1, 2, 3, *range(10, 22), *range(20, 29)]}
    assert _ranked(Lists(dense, flat, sources))[:2] == [1, 2]
    peaked = _twelve([30.0, 9.9, 9.8, 9.7, 9.6, 9.5, 9.4, 9.3, 9.2, 9.1, 9.0, 8.9])  # chunk 10 shares rare words
    assert _ranked(Lists(dense, peaked, sources))[0] == 10


def test_clarity_is_the_best_keyword_score_over_the_tenth_on_its_range() -> None:
    from rag.retrieval import AGREEMENT_DEPTH, CLARITY_RANGE, _clarity

    low, high = CLARITY_RANGE
    assert AGREEMENT_DEPTH == 10
    assert _clarity([]) == 0.0
    assert _clarity(_twelve([5.0, 4.0])) == 1.0  # fewer matches than the depth: those there stand out
    assert _clarity(_twelve([low * 2.0] + [2.0] * 11)) == 0.0
    assert _clarity(_twelve([high * 2.0] + [2.0] * 11)) == 1.0
    middle = (low + high) / 2
    assert abs(_clarity(_twelve([middle * 2.0] + [2.0] * 11)) - 0.5) < 1e-9


def test_dense_candidates_are_handed_to_the_keyword_second_pass() -> None:
    # On a large index keyword search scores these again by every word (rag.stores.fulltext.search).
    store = Lists([(1, 0.8), (2, 0.7)], [(3, 5.0), (1, 4.0)], {1: "a.txt", 2: "b.txt", 3: "c.txt"})
    _ranked(store)
    assert store.rescored == [1, 2]
    _ranked(store, fusion="bm25")  # no dense search, nothing to hand over
    assert store.rescored == []
