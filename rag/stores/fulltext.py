"""The keyword half of the catalog: SQLite FTS5 (BM25, porter stemmer) over chunk titles and text.

One unit with ``add``/``remove``/``search`` on the catalog's connection, so that another keyword index
can take its place without touching the rest of the store. Rows are keyed by chunk id.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from functools import cache

from ..chunking import chunk_title
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
#: rarest word always kept. Measured by bench/hybrid_scale.py (docs/scaling.md).
POSTINGS_BUDGET = 10_000

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


def plan(words: list[str], counts: Mapping[str, int] | None) -> list[str]:
    """The query words worth scoring: all of them, unless together they sit in more than
    :data:`POSTINGS_BUDGET` chunks (by ``counts``); then the rarest ones that fit, at least one."""
    if counts is None or len(words) < 2:
        return words
    cost = [sum(counts.get(term, 0) for term in terms) for terms in _tokenizer().terms(words)]
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
    conn: sqlite3.Connection, terms: list[str], k: int, counts: Mapping[str, int] | None = None
) -> list[tuple[int, float]]:
    """BM25 over chunk text and titles for any of ``terms``, best first.

    Scores are SQLite FTS5's BM25 (title weighted 0.5, text 1.0), negated so that higher is better.
    With ``counts`` (chunks per common term, for large indexes) the words found in the most chunks
    may be left out (see :func:`plan`).
    """
    words = plan([t for t in dict.fromkeys(terms) if t and _TERM.fullmatch(t)][:64], counts)
    if not words:
        return []
    query = " OR ".join(f'"{w}"' for w in words[:64])
    rows = conn.execute(
        "SELECT rowid, bm25(chunks_fts, 0.5, 1.0) FROM chunks_fts WHERE chunks_fts MATCH ? "
        "ORDER BY bm25(chunks_fts, 0.5, 1.0) LIMIT ?",
        (query, int(k)),
    ).fetchall()
    return [(int(rowid), -float(score)) for rowid, score in rows]
