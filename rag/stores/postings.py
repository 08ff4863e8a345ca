"""BM25 in memory for a small keyword index: FTS5's own ranking, without FTS5 scoring every matching chunk.

On an index of a few thousand chunks a question's common words ("net", "sales", "three") are in most
of them, and FTS5's ``bm25()`` runs per matching row (about 5,000 rows, 5 ms on the 20 sec-10q filings).
Here every term's postings (the chunks that hold it, with its count in each column), the table's row
count and token total (FTS5's averages record) and each chunk's length (its size record) are read from
FTS5's own index (an ``fts5vocab`` instance table) in one snapshot, in a background thread on a read-only
connection (about 2 s for the sec-10q filings), and a search scores them with NumPy by FTS5's formula,
in FTS5's order of operations: the scores are those ``bm25()`` gives, to the last bit, and so is the
ranking (ties: the lower rowid first, as FTS5 returns them); tested.

A search uses them only when they are of the index's current generation; otherwise (before the first
read ends, or after a change until they are read again) FTS5 answers, with the same result. Reading
starts when a server warms up (:meth:`rag.stores.catalog.Catalog.warm`); a one-shot process never reads
them. Used below :data:`rag.stores.term_counts.COUNT_FROM_CHUNKS` chunks, where every word is scored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from pathlib import Path

import numpy as np

_log = logging.getLogger(__name__)


class Postings:
    """Every term's postings and every chunk's length of one keyword table, read in the background."""

    def __init__(
        self, database: Path, table: str, weights: tuple[float, float], k1: float, b: float, epoch: int = 0
    ) -> None:
        self.database = database
        self.table = table
        self.weights = weights
        self.k1, self.b = k1, b
        #: The catalog's count of reconnections to a replaced file when these postings were made.
        self.epoch = epoch
        self._state: _State | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def read(self) -> None:
        """Start reading the postings in the background, unless a read is under way."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._read, name="rag-postings", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a read under way (a server warming up)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def current(self, conn: sqlite3.Connection) -> _State | None:
        """The postings of the generation ``conn`` sees, or None (then a read is started)."""
        row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        generation = int(json.loads(row[0])) if row else 0
        state = self._state
        if state is None or state.generation != generation:
            self.read()
            return None
        return state

    def search(self, conn: sqlite3.Connection, terms: list[str], k: int) -> list[tuple[int, float]] | None:
        """The ``k`` best chunks for any of ``terms`` (index terms, one per query word, in query order),
        with FTS5's BM25 scores negated (higher is better), best first; None when the postings are not
        those of the generation ``conn`` sees (a new read is started)."""
        state = self.current(conn)
        return None if state is None else state.search(terms, k, self.k1, self.b)

    def _read(self) -> None:
        try:
            conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            _log.debug("postings of %s not read: %s", self.database, exc)
            return
        try:
            vocabulary = f"fts5vocab(main, {self.table}, instance)"
            conn.execute(f"CREATE VIRTUAL TABLE temp.{self.table}_postings USING {vocabulary}")
            conn.execute("BEGIN")  # one snapshot: the generation, the totals, the lengths and the postings
            state = self._snapshot(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:  # replaced or damaged meanwhile: the next search tries again
            _log.debug("postings of %s not read: %s", self.database, exc)
            return
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        if state is not None:
            self._state = state

    def _snapshot(self, conn: sqlite3.Connection) -> _State | None:
        row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        generation = int(json.loads(row[0])) if row else 0
        totals = varints(conn.execute(f"SELECT block FROM {self.table}_data WHERE id=1").fetchone() or [b""])
        if len(totals) != 1 + len(self.weights) or totals[0] <= 0:
            return None
        sizes = conn.execute(f"SELECT id, sz FROM {self.table}_docsize").fetchall()
        lengths = np.zeros(max((int(i) for i, _ in sizes), default=-1) + 1, dtype=np.float64)
        for chunk_id, size in sizes:
            lengths[int(chunk_id)] = sum(varints([size]))
        weight = {"title": self.weights[0], "text": self.weights[1]}
        terms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        term: str | None = None
        ids: list[int] = []
        freqs: list[float] = []
        rows = conn.execute(
            f"SELECT term, doc, col, count(*) FROM temp.{self.table}_postings GROUP BY term, doc, col "
            "ORDER BY term, doc, col"
        )
        for name, doc, col, count in rows:  # by term, then chunk: a chunk's columns come together
            if name != term:
                if term is not None:
                    terms[term] = (np.asarray(ids, dtype=np.int64), np.asarray(freqs, dtype=np.float64))
                term, ids, freqs = name, [], []
            f = weight.get(col, 1.0) * count
            if ids and ids[-1] == doc:
                freqs[-1] += f
            else:
                ids.append(doc)
                freqs.append(f)
        if term is not None:
            terms[term] = (np.asarray(ids, dtype=np.int64), np.asarray(freqs, dtype=np.float64))
        return _State(generation, totals[0], sum(totals[1:]) / totals[0], lengths, terms)


class _State:
    """One generation's postings: ``terms`` maps a term to its chunks (ascending) and its column-weighted
    count in each."""

    def __init__(
        self,
        generation: int,
        rows: int,
        avgdl: float,
        lengths: np.ndarray,
        terms: dict[str, tuple[np.ndarray, np.ndarray]],
    ) -> None:
        self.generation = generation
        self.rows, self.avgdl, self.lengths, self.terms = rows, avgdl, lengths, terms

    def search(self, terms: list[str], k: int, k1: float, b: float) -> list[tuple[int, float]]:
        rows, avgdl, lengths = self.rows, self.avgdl, self.lengths
        scores = np.zeros(len(lengths), dtype=np.float64)
        matched = np.zeros(len(lengths), dtype=np.bool_)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
        for term in terms:  # FTS5 adds the phrases' terms in query order, each as below
            ids, freq = self.terms.get(term, empty)
            held = len(ids)
            idf = float(np.log((rows - held + 0.5) / (held + 0.5)))
            idf = idf if idf > 0.0 else 1e-6
            if held:
                scores[ids] += idf * ((freq * (k1 + 1.0)) / (freq + k1 * (1 - b + b * lengths[ids] / avgdl)))
                matched[ids] = True
        found = np.flatnonzero(matched)
        k = min(max(0, int(k)), len(found))
        if not k:
            return []
        values = scores[found]
        if k < len(found):  # the k best, and every chunk tied with the k-th (ties: lower rowid first)
            least = np.partition(values, len(values) - k)[len(values) - k]
            keep = values >= least
            found, values = found[keep], values[keep]
        order = np.lexsort((found, -values))[:k]
        return [(int(found[i]), float(values[i])) for i in order]


def varints(row: tuple[bytes] | list[bytes]) -> list[int]:
    """The SQLite varints of an FTS5 record (its averages or a document's sizes)."""
    blob, values, i = bytes(row[0] or b""), [], 0
    while i < len(blob):
        value = 0
        for n in range(9):
            byte = blob[i]
            i += 1
            if n == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
            if i >= len(blob):
                return []
        values.append(value)
    return values
