"""A small index's keyword search is scored in memory (rag.stores.postings) and equals FTS5's bm25().

The store is a real catalog and FAISS index with fake 16-d vectors; the expected rankings come from
FTS5 itself (``bm25()`` with the same column weights), compared to the last bit.
"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

from rag import Settings
from rag.stores import Changes, fulltext, open_store

from .test_store_contract import CONFIG, document

WORDS = ["weather", "fjord", "report", "storm", "harbour", "snow", "dawn", "number", "unseen"]


def _texts(n: int, seed: int) -> list[str]:
    """Chunks of uneven length that share words unevenly (and some exact duplicates: tied scores)."""
    out = []
    for i in range(n):
        picked = [WORDS[(i * 7 + j * seed) % 8] for j in range(1 + (i * seed) % 11)]
        out.append(" ".join(picked + [f"filler{j}" for j in range(i % 5)]))
    return out + out[:6]


def _fts5(conn: sqlite3.Connection, words: list[str], k: int) -> list[tuple[int, float]]:
    return fulltext.search(conn, words, k)  # no kept postings: FTS5 ranks and scores


def _queries() -> list[list[str]]:
    pairs = [list(q) for q in itertools.combinations(WORDS[:6], 2)]
    return [[w] for w in WORDS] + pairs + [WORDS, WORDS[::-1], ["weather", "weather"]]


def _asked_fts5(store: object, words: list[str], k: int, statements: list[str]) -> tuple[list[tuple[int, float]], bool]:
    statements.clear()
    found = store.keyword_search(words, k)  # type: ignore[attr-defined]
    return found, any("bm25(" in s for s in statements)


def test_a_warmed_small_index_ranks_as_fts5_bm25_does_without_asking_fts5(tmp_path: Path) -> None:
    store = open_store(Settings(index_dir=tmp_path / "index"))
    store.create(CONFIG)
    with store.writer():
        store.apply(
            Changes(
                upserts=[
                    document("weather-report.txt", _texts(40, 3)),  # "weather", "report" in every title too
                    document("harbour.txt", _texts(25, 5)),
                ]
            )
        )
    statements: list[str] = []
    with store.catalog.db() as conn:
        conn.set_trace_callback(statements.append)
        # A process that did not warm up (a one-shot question) asks FTS5, as before.
        assert _asked_fts5(store, ["weather"], 5, statements)[1]
        store.warm()  # reads every term's postings
        for words in _queries():
            for k in (1, 5, 200):
                found, asked = _asked_fts5(store, words, k, statements)
                assert not asked, "FTS5 was asked to rank a warmed small index"
                assert found == _fts5(conn, words, k), (words, k)  # ids, order and scores, exactly

        # After a change FTS5 answers until the postings are read again: the same results either way.
        with store.writer():
            store.apply(Changes(upserts=[document("harbour.txt", ["snow storm at the harbour", "storm"], digest="d2")]))
        found, asked = _asked_fts5(store, ["storm", "harbour"], 200, statements)
        assert asked and found == _fts5(conn, ["storm", "harbour"], 200)
        store.warm()
        for words in _queries():
            found, asked = _asked_fts5(store, words, 200, statements)
            assert not asked and found == _fts5(conn, words, 200), words
        # A word FTS5 splits into two terms is a phrase: FTS5 matches it, with the same result.
        found, asked = _asked_fts5(store, ["snow_storm"], 10, statements)
        assert asked and found == _fts5(conn, ["snow_storm"], 10) != []
        conn.set_trace_callback(None)
    store.close()
