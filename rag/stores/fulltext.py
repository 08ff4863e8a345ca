"""The keyword half of the catalog: SQLite FTS5 (BM25, porter stemmer) over chunk titles and text.

One unit with ``add``/``remove``/``search`` on the catalog's connection, so that another keyword index
can take its place without touching the rest of the store. Rows are keyed by chunk id.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path

from ..chunking import chunk_title
from .postings import Postings, varints
from .term_counts import Tokenizer

TOKENIZE = "porter unicode61 remove_diacritics 2"
#: Created with the catalog's tables (and again when a rebuild resets them).
SCHEMA = f"""
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, tokenize = '{TOKENIZE}'
);
"""
TABLE = "chunks_fts"
#: FTS5 scores every chunk holding any query word before it sorts, so a search costs about as much as
#: its words' chunk counts added up (0.4 us each here). On a large index a search scores at most about
#: this many: the words held by the most chunks are left out (their weight in BM25 is the lowest), the
#: rarest word always kept, and a second pass puts them back for a short list (:data:`RESCORED`).
#: Measured by bench/hybrid_scale.py (docs/scaling.md).
POSTINGS_BUDGET = 5_000
#: When words were left out, the second pass scores this many of the chunks found and as many of the
#: chunks handed to it (best first) by every word; the rest keep their first-pass score, a lower bound.
RESCORED = 30
#: Column weights (title, text) and FTS5's own BM25 constants, shared by the query and the second pass.
WEIGHTS = (0.5, 1.0)
K1, B = 1.2, 0.75

_TERM = re.compile(r"\w+")


def add(conn: sqlite3.Connection, chunk_id: int, source: str, section: str, title: str, text: str) -> None:
    """Index one chunk; ``title`` is its title line, derived from the file name and section when empty."""
    conn.execute(
        "INSERT INTO chunks_fts(rowid, title, text) VALUES (?, ?, ?)",
        (chunk_id, title or chunk_title(source, section), text),
    )


def remove(conn: sqlite3.Connection, ids: Iterable[int]) -> None:
    """Forget the chunks ``ids``."""
    conn.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])


@cache
def _tokenizer() -> Tokenizer:
    return Tokenizer(TOKENIZE)


#: Query words already turned into index terms (see :func:`terms_of`), at most this many kept.
_KNOWN_WORDS = 65_536
_known: dict[str, tuple[str, ...]] = {}


def terms_of(words: list[str]) -> list[tuple[str, ...]]:
    """The index terms of each of ``words`` (FTS5's tokenizer, see :class:`Tokenizer`), remembered."""
    found = {w: _known.get(w) for w in words}
    missing = [w for w, terms in found.items() if terms is None]
    if missing:
        new = dict(zip(missing, map(tuple, _tokenizer().terms(missing)), strict=True))
        if len(_known) + len(new) > _KNOWN_WORDS:
            _known.clear()
        _known.update(new)
        found.update(new)
    return [found[w] or () for w in words]


def postings(database: Path, epoch: int = 0) -> Postings:
    """The in-memory BM25 of the keyword table of ``database`` (see :mod:`rag.stores.postings`), not read yet."""
    return Postings(database, TABLE, WEIGHTS, K1, B, epoch)


def plan(words: list[str], counts: Mapping[str, int] | None) -> list[str]:
    """The query words worth scoring: all of them, unless together they sit in more than
    :data:`POSTINGS_BUDGET` chunks (by ``counts``); then the rarest ones that fit, at least one."""
    if counts is None or len(words) < 2:
        return words
    cost = _costs(words, counts)
    if sum(cost) <= POSTINGS_BUDGET:
        return words
    kept: list[str] = []
    spent = 0
    for c, word in sorted(zip(cost, words, strict=True), key=lambda pair: pair[0]):
        if kept and spent + c > POSTINGS_BUDGET:
            break
        kept.append(word)
        spent += c
    return kept


def search(
    conn: sqlite3.Connection,
    terms: list[str],
    k: int,
    counts: Mapping[str, int] | None = None,
    rescore: Sequence[int] = (),
    memory: Postings | None = None,
) -> list[tuple[int, float]]:
    """BM25 over chunk text and titles for any of ``terms``, best first.

    Scores are SQLite FTS5's BM25 (title weighted 0.5, text 1.0), negated so that higher is better.
    With ``counts`` (chunks per common term, for large indexes) the words found in the most chunks
    may be left out of the search (see :func:`plan`); then a second pass scores the best chunks found
    and the first of ``rescore`` (e.g. dense search's candidates, best first), :data:`RESCORED` of
    each, by every query word with FTS5's own formula (see :func:`exact_scores`), so that the common
    words still rank that short list. The other chunks found keep their first-pass scores (the part of
    their BM25 due to the words searched: a lower bound). When even the rarest word is in more chunks
    than the budget, there is no first pass: the second ranks the chunks of ``rescore`` alone (measured
    at 1M chunks: BM25 p50 12.5 -> 6.4 ms, hit@1/@5 0.837/0.850 -> 0.840/0.870, docs/scaling.md). With
    ``memory`` (a small index, no ``counts``) the same ranking and scores are computed from kept postings
    (see :mod:`rag.stores.postings`).
    """
    words = [t for t in dict.fromkeys(terms) if t and _TERM.fullmatch(t)][:64]
    if memory is not None and counts is None and words:
        phrases = terms_of(words)
        if all(len(phrase) == 1 for phrase in phrases):  # else FTS5 matches the phrases itself
            found = memory.search(conn, [phrase[0] for phrase in phrases], k)
            if found is not None:
                return found
    kept = plan(words, counts)
    if not kept:
        return []
    # Even the rarest word is in more chunks than the budget: FTS5 would score them all (1 to 2 us each),
    # and a word that common ranks poorly anyway. The second pass then ranks the chunks handed to it.
    over = counts is not None and bool(rescore) and sum(_costs(kept, counts)) > POSTINGS_BUDGET
    found = [] if over else _first_pass(conn, kept, k)
    if not over and (len(kept) == len(words) or counts is None):
        return found
    assert counts is not None
    ids = list(dict.fromkeys([i for i, _ in found[:RESCORED]] + [int(i) for i in list(rescore)[:RESCORED]]))
    scores = exact_scores(conn, words, ids, counts)
    if scores is None:  # the index's statistics could not be read: the first pass stands
        return found if not over else _first_pass(conn, kept, k)
    merged = dict(found)
    merged.update(scores)
    return sorted(merged.items(), key=lambda item: item[1], reverse=True)[: int(k)]


def _first_pass(conn: sqlite3.Connection, words: list[str], k: int) -> list[tuple[int, float]]:
    """FTS5's BM25 over the chunks holding any of ``words``, best first (negated: higher is better)."""
    query = " OR ".join(f'"{w}"' for w in words)
    rows = conn.execute(
        f"SELECT rowid, bm25({TABLE}, {WEIGHTS[0]}, {WEIGHTS[1]}) FROM {TABLE} WHERE {TABLE} MATCH ? "
        f"ORDER BY bm25({TABLE}, {WEIGHTS[0]}, {WEIGHTS[1]}) LIMIT ?",
        (query, int(k)),
    ).fetchall()
    return [(int(rowid), -float(score)) for rowid, score in rows]


def _costs(words: list[str], counts: Mapping[str, int]) -> list[int]:
    """How many postings a search reads for each of ``words`` (chunks per term of the word, added up)."""
    return [sum(counts.get(term, 0) for term in terms) for terms in terms_of(words)]


def exact_scores(
    conn: sqlite3.Connection, words: list[str], ids: list[int], counts: Mapping[str, int]
) -> dict[int, float] | None:
    """BM25 of the chunks ``ids`` for every one of ``words`` (each a phrase of its terms), as FTS5's
    ``bm25()`` with :data:`WEIGHTS` would score them (higher is better); chunks holding none are left out.

    FTS5 counts the chunks that hold each word by reading its whole posting list, which is what
    :func:`plan` avoids; here those counts come from ``counts`` (read in the background), or, for the
    rare words they leave out, from a search for that word alone. The chunks' own term frequencies come
    from running FTS5's tokenizer on their stored title and text. None if the index's totals are unreadable.
    """
    if not ids or not words:
        return {}
    totals = varints(conn.execute(f"SELECT block FROM {TABLE}_data WHERE id=1").fetchone() or [b""])
    if len(totals) != 1 + len(WEIGHTS) or totals[0] <= 0:
        return None
    rows, avgdl = totals[0], sum(totals[1:]) / totals[0]
    marks = ",".join("?" * len(ids))
    texts = conn.execute(f"SELECT rowid, title, text FROM {TABLE} WHERE rowid IN ({marks})", ids).fetchall()
    phrases = [list(terms) for terms in terms_of(words)]
    lengths, freqs = _candidates().frequencies(texts, phrases)
    scores: dict[int, float] = {}
    for word, phrase, freq in zip(words, phrases, freqs, strict=True):
        if not freq:
            continue
        held = counts.get(phrase[0]) if len(phrase) == 1 else None
        if held is None:
            held = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE {TABLE} MATCH ?", (f'"{word}"',)).fetchone()[0]
        idf = math.log((rows - held + 0.5) / (held + 0.5))
        idf = idf if idf > 0 else 1e-6
        for chunk_id, f in freq.items():
            norm = K1 * (1 - B + B * lengths[chunk_id] / avgdl)
            scores[chunk_id] = scores.get(chunk_id, 0.0) + idf * f * (K1 + 1) / (f + norm)
    return scores


class _Candidates:
    """A private in-memory FTS5 table with the keyword index's tokenizer, for the second pass's chunks."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.executescript(
            f"CREATE VIRTUAL TABLE c USING fts5(title, text, content = '', tokenize = '{TOKENIZE}');"
            "CREATE VIRTUAL TABLE c_terms USING fts5vocab(c, instance);"
        )
        self._lock = threading.Lock()

    def frequencies(
        self, texts: list[tuple[int, str, str]], phrases: list[list[str]]
    ) -> tuple[dict[int, int], list[dict[int, float]]]:
        """Each chunk's length in tokens, and per phrase its weighted count of occurrences in each chunk."""
        wanted = sorted({term for phrase in phrases for term in phrase})
        with self._lock:
            self._conn.execute("INSERT INTO c(c) VALUES ('delete-all')")
            self._conn.executemany("INSERT INTO c(rowid, title, text) VALUES (?, ?, ?)", texts)
            lengths = {int(i): sum(varints([sz])) for i, sz in self._conn.execute("SELECT id, sz FROM c_docsize")}
            at: dict[str, set[tuple[int, str, int]]] = {}
            for term in wanted:  # one lookup per term: "term IN (...)" would scan the whole vocabulary
                rows = self._conn.execute("SELECT doc, col, offset FROM c_terms WHERE term = ?", (term,))
                at[term] = {(int(doc), str(col), int(offset)) for doc, col, offset in rows}
        weight = {"title": WEIGHTS[0], "text": WEIGHTS[1]}
        freqs: list[dict[int, float]] = []
        for phrase in phrases:
            freq: dict[int, float] = {}
            if phrase:
                rest = [at.get(term, set()) for term in phrase[1:]]
                for doc, col, offset in at.get(phrase[0], ()):
                    if all((doc, col, offset + n) in later for n, later in enumerate(rest, 1)):
                        freq[doc] = freq.get(doc, 0.0) + weight[col]
            freqs.append(freq)
        return lengths, freqs


@cache
def _candidates() -> _Candidates:
    return _Candidates()
