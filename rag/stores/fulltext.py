"""The keyword half of the catalog: SQLite FTS5 (BM25, porter stemmer) over chunk titles and text.

One unit with ``add``/``remove``/``search`` on the catalog's connection, so that another keyword index
can take its place without touching the rest of the store. Rows are keyed by chunk id.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable

from ..chunking import chunk_title

#: Created with the catalog's tables (and again when a rebuild resets them).
SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""
TABLE = "chunks_fts"

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


def search(conn: sqlite3.Connection, terms: list[str], k: int) -> list[tuple[int, float]]:
    """BM25 over chunk text and titles for any of ``terms``, best first.

    Scores are SQLite FTS5's BM25 (title weighted 0.5, text 1.0), negated so that higher is better.
    """
    words = [t for t in dict.fromkeys(terms) if t and _TERM.fullmatch(t)]
    if not words:
        return []
    query = " OR ".join(f'"{w}"' for w in words[:64])
    rows = conn.execute(
        "SELECT rowid, bm25(chunks_fts, 0.5, 1.0) FROM chunks_fts WHERE chunks_fts MATCH ? "
        "ORDER BY bm25(chunks_fts, 0.5, 1.0) LIMIT ?",
        (query, int(k)),
    ).fetchall()
    return [(int(rowid), -float(score)) for rowid, score in rows]
