"""How many chunks hold each common keyword, so that a keyword search on a large index can leave out
the words that are everywhere (see :func:`rag.stores.fulltext.plan`).

The counts come from FTS5's own vocabulary (an ``fts5vocab`` row table in a private connection's temp
schema), read on a separate read-only connection in a background thread: about 0.4 s per 100k
chunks, so searches never wait for it. They belong to the generation they were read at; after a
change they are read again (at most once every :data:`REFRESH_SECONDS`). Stale counts only decide
which words a search leaves out, so they can make it a little less exact, never wrong.

Query words are turned into the index's terms by FTS5's own tokenizer (an in-memory table with the same
``tokenize`` setting), so the counts and the search always agree on what a term is.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path

_log = logging.getLogger(__name__)

#: Indexes with fewer chunks than this search every query word: counting would not pay.
COUNT_FROM_CHUNKS = 50_000
#: Words in fewer chunks than this are not kept in the counts (they are never the ones left out).
MIN_KEPT = 200
#: After a change, counts are read again at most this often.
REFRESH_SECONDS = 30.0


class TermCounts:
    """Chunk counts of the common terms of one catalog file, read in the background (see the module docstring)."""

    def __init__(self, database: Path, epoch: int = 0) -> None:
        self.database = database
        #: The catalog's count of reconnections to a replaced file when these counts were made.
        self.epoch = epoch
        self._counts: dict[str, int] | None = None
        self._generation = -1
        self._started = float("-inf")
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def for_search(self, conn: sqlite3.Connection) -> Mapping[str, int] | None:
        """The counts for a search on ``conn`` (the catalog's connection): None on an index of fewer than
        :data:`COUNT_FROM_CHUNKS` chunks (ids are never reused, so the largest bounds the count)."""
        largest = conn.execute("SELECT max(id) FROM chunks").fetchone()[0] or 0
        if largest < COUNT_FROM_CHUNKS:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return self.get(int(row[0]) if row else 0)

    def get(self, generation: int) -> Mapping[str, int] | None:
        """The counts (of ``generation`` or an earlier one), or None before the first read has finished.

        Starts a read in the background when the counts are missing or older than ``generation``.
        """
        with self._lock:
            stale = generation != self._generation
            running = self._thread is not None and self._thread.is_alive()
            if stale and not running and time.monotonic() - self._started >= REFRESH_SECONDS:
                self._started = time.monotonic()
                self._thread = threading.Thread(target=self._read, name="rag-term-counts", daemon=True)
                self._thread.start()
            return self._counts

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a read in progress (used to warm a server up before it takes questions)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _read(self) -> None:
        try:
            conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            _log.debug("term counts of %s not read: %s", self.database, exc)
            return
        try:
            conn.execute("CREATE VIRTUAL TABLE temp.term_rows USING fts5vocab(main, chunks_fts, row)")
            conn.execute("BEGIN")  # one snapshot: the generation and the counts
            row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
            generation = int(row[0]) if row else 0
            counts = dict(conn.execute("SELECT term, doc FROM temp.term_rows WHERE doc >= ?", (MIN_KEPT,)).fetchall())
            conn.execute("COMMIT")
        except sqlite3.Error as exc:  # replaced or damaged meanwhile: the next search tries again
            _log.debug("term counts of %s not read: %s", self.database, exc)
            return
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        with self._lock:
            self._counts, self._generation = counts, generation


class Tokenizer:
    """FTS5's tokenizer of the keyword index, run on query words: word -> the index's terms."""

    def __init__(self, tokenize: str) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.execute(f"CREATE VIRTUAL TABLE words USING fts5(w, tokenize = '{tokenize}')")
        self._conn.execute("CREATE VIRTUAL TABLE word_terms USING fts5vocab(words, instance)")
        self._lock = threading.Lock()

    def terms(self, words: list[str]) -> list[list[str]]:
        """The index terms of each word, in order (a word such as "manning's" gives two)."""
        with self._lock:
            self._conn.execute("DELETE FROM words")
            self._conn.executemany("INSERT INTO words(rowid, w) VALUES (?, ?)", list(enumerate(words)))
            found: list[list[str]] = [[] for _ in words]
            for doc, term in self._conn.execute("SELECT doc, term FROM word_terms ORDER BY doc, offset"):
                found[int(doc)].append(str(term))
        return found
