"""Keyword search on a large index leaves out the words that are everywhere (rag.stores.fulltext.plan).

The store here is a real catalog and FAISS index with fake 16-d vectors; the size threshold and the
budget are lowered so that a few dozen chunks behave like a large index.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rag import Settings
from rag.stores import Changes, VectorStore, fulltext, open_store, term_counts

from .test_store_contract import CONFIG, document


def test_plan_keeps_the_rarest_words_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 100)
    counts = {"common": 90, "team": 60, "bowl": 30, "afc": 5}
    words = ["common", "team", "bowl", "afc", "unseen"]
    assert fulltext.plan(words, None) == words  # a small index: every word
    assert fulltext.plan(["common", "team"], {}) == ["common", "team"]  # no counts known: every word
    # Rarest first while they fit: unseen (0) + afc (5) + bowl (30) = 35; + team (60) = 95; + common: over.
    assert fulltext.plan(words, counts) == ["unseen", "afc", "bowl", "team"]
    # Every word over the budget: the rarest one is still searched.
    assert fulltext.plan(["common", "team"], {"common": 500, "team": 400}) == ["team"]
    # Words are counted by the index's terms: "represented" is the term "repres", "manning's" two terms.
    assert fulltext.plan(["represented", "rare"], {"repres": 101}) == ["rare"]
    assert fulltext.plan(["manning's", "rare"], {"man": 50, "s": 60}) == ["rare"]


def test_query_words_become_the_terms_the_index_holds(tmp_path: Path) -> None:
    words = ["Represented", "manning's", "Über", "broadcasted", "50th", "teams"]
    conn = sqlite3.connect(tmp_path / "t.sqlite")
    conn.executescript(fulltext.SCHEMA)
    for i, word in enumerate(words):
        conn.execute("INSERT INTO chunks_fts(rowid, title, text) VALUES (?, '', ?)", (i, word))
    conn.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, chunks_fts, instance)")
    held: dict[int, list[str]] = {}
    for doc, term in conn.execute("SELECT doc, term FROM temp.v ORDER BY doc, offset"):
        held.setdefault(int(doc), []).append(term)
    assert term_counts.Tokenizer(fulltext.TOKENIZE).terms(words) == [held[i] for i in range(len(words))]
    assert held[1] == ["man", "s"] and held[0] == ["repres"]


def _large_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, texts: list[str], min_kept: int) -> VectorStore:
    """A store of ``texts`` (one document) that behaves as a large index: term counts from 10 chunks up,
    terms in ``min_kept`` chunks or more counted, a postings budget of 10; warmed."""
    monkeypatch.setattr(term_counts, "COUNT_FROM_CHUNKS", 10)
    monkeypatch.setattr(term_counts, "MIN_KEPT", min_kept)
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 10)
    store = open_store(Settings(index_dir=tmp_path / "index"))
    store.create(CONFIG)
    with store.writer():
        store.apply(Changes(upserts=[document("a.txt", texts)]))
    store.warm()
    return store


def test_a_large_index_searches_its_rarest_words_and_recounts_after_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(term_counts, "REFRESH_SECONDS", 0.0)
    texts = [f"weather report number {i}" for i in range(30)] + ["weather over the fjord", "a fjord at dawn"]
    store = _large_index(tmp_path, monkeypatch, texts, min_kept=1)
    by_id = {c.id: c.text for c in store.document_chunks("a.txt")}
    found = [by_id[i] for i, _ in store.keyword_search(["weather", "fjord"], 50)]
    # "weather" is in 31 chunks (over the budget of 10): only "fjord" is searched.
    assert sorted(found) == ["a fjord at dawn", "weather over the fjord"]
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 1000)  # within the budget: every word, as before
    assert len(store.keyword_search(["weather", "fjord"], 50)) == 32

    # After a change the counts are read again: "fjord" is now the common word, "weather" the rare one.
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 10)
    more = [f"fjord number {i}" for i in range(40)]
    with store.writer():
        store.apply(Changes(upserts=[document("a.txt", ["weather alone", *more], digest="d2")]))
    store.warm()
    by_id = {c.id: c.text for c in store.document_chunks("a.txt")}
    assert [by_id[i] for i, _ in store.keyword_search(["weather", "fjord"], 50)] == ["weather alone"]
    store.close()


def test_a_second_pass_ranks_the_short_list_by_every_word_as_fts5_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    both, short = "weather fjord", "fjord"
    texts = [f"weather report number {i}" for i in range(30)] + [f"quiet harbour {i}" for i in range(70)]
    # "fjord" (2 chunks) is not counted (under 3): looked up by a search
    store = _large_index(tmp_path, monkeypatch, [*texts, both, short], min_kept=3)
    by_text = {c.text: c.id for c in store.document_chunks("a.txt")}
    weather_only = by_text["weather report number 3"]
    # "weather" (in 31 of 102 chunks, over the budget of 10) is left out of the search, so "fjord" alone
    # finds the two chunks, and on "fjord" alone the short one would come first; the common word decides.
    assert [i for i, _ in store.keyword_search(["weather", "fjord"], 5)] == [by_text[both], by_text[short]]
    found = store.keyword_search(["weather", "fjord"], 5, rescore=[weather_only])
    assert [i for i, _ in found] == [by_text[both], by_text[short], weather_only]
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 10**9)  # every word scored by FTS5 itself
    exact = dict(store.keyword_search(["weather", "fjord"], 200))
    # The second pass gives FTS5's own BM25 scores, for the chunks found and for the ones it was handed.
    assert [score for _, score in found] == pytest.approx([exact[i] for i, _ in found], rel=1e-9)
    # A chunk handed in that holds no query word is not a keyword result.
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 10)
    unrelated = by_text["quiet harbour 5"]
    assert unrelated not in dict(store.keyword_search(["weather", "fjord"], 5, [unrelated]))
    store.close()


def test_when_even_the_rarest_word_is_over_the_budget_the_second_pass_ranks_the_chunks_handed_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [f"weather report number {i}" for i in range(30)] + [f"river weather {i}" for i in range(20)]
    texts += [f"quiet harbour {i}" for i in range(50)]
    store = _large_index(tmp_path, monkeypatch, texts, min_kept=1)
    by_text = {c.text: c.id for c in store.document_chunks("a.txt")}
    handed = [by_text["weather report number 4"], by_text["river weather 7"], by_text["quiet harbour 2"]]
    first_pass: list[str] = []
    real = fulltext._first_pass

    def spied(conn: sqlite3.Connection, words: list[str], k: int) -> list[tuple[int, float]]:
        first_pass.append(" ".join(words))
        return real(conn, words, k)

    monkeypatch.setattr(fulltext, "_first_pass", spied)
    # "river" (20 chunks) and "weather" (50) are both over the budget of 10: no first pass; the chunks
    # handed in are ranked by both words, FTS5's own scores, and the one holding neither is left out.
    found = store.keyword_search(["river", "weather"], 5, rescore=handed)
    assert first_pass == []
    assert [i for i, _ in found] == [by_text["river weather 7"], by_text["weather report number 4"]]
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 10**9)
    exact = dict(store.keyword_search(["river", "weather"], 200))
    assert [score for _, score in found] == pytest.approx([exact[i] for i, _ in found], rel=1e-9)
    # Without chunks to rank (keyword search alone), the first pass runs, over budget or not.
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 10)
    first_pass.clear()
    alone = store.keyword_search(["river", "weather"], 5)
    assert first_pass and alone and all(i in {by_text[f"river weather {n}"] for n in range(20)} for i, _ in alone[:5])
    store.close()
