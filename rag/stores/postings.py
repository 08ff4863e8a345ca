"""BM25 in memory for a small keyword index: FTS5's own ranking, without FTS5 scoring every matching chunk.

On an index of a few thousand chunks a question's common words ("net", "sales", "three") are in most
of them, and FTS5's ``bm25()`` runs per matching row (about 5,000 rows, 5 ms on the 20 sec-10q filings).
Here each query term's postings (the chunks that hold it, with its count in each column) are read once
per committed change from FTS5's own index (an ``fts5vocab`` instance table), kept, and scored with
NumPy by FTS5's formula, in FTS5's order of operations, so that the scores are the ones ``bm25()``
gives, to the last bit (tested), and so is the ranking (ties: the lower rowid first, as FTS5 returns
them). The table's row count and token total come from FTS5's averages record, each chunk's length
from its size record.

Used below :data:`rag.stores.term_counts.COUNT_FROM_CHUNKS` chunks, where every query word is scored;
a word that is more than one index term (a phrase) leaves the search to FTS5.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict

import numpy as np

#: Postings (chunk-term pairs) kept at most; the least recently used terms are dropped beyond it.
KEPT_POSTINGS = 4_000_000


class Postings:
    """Per-term postings and chunk lengths of one keyword table, for one generation of the index."""

    def __init__(self, table: str, weights: tuple[float, float], k1: float, b: float) -> None:
        self.table = table
        self.weights = weights
        self.k1, self.b = k1, b
        self._generation = -1
        self._rows = 0
        self._avgdl = 1.0
        self._lengths = np.zeros(0, dtype=np.float64)
        self._terms: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def search(self, conn: sqlite3.Connection, terms: list[str], k: int) -> list[tuple[int, float]] | None:
        """The ``k`` best chunks for any of ``terms`` (index terms, one per query word, in query order),
        with FTS5's BM25 scores negated (higher is better), best first; None when the index's records
        could not be read (the caller then asks FTS5)."""
        with self._lock:
            begun = not conn.in_transaction
            if begun:
                conn.execute("BEGIN")  # one snapshot: the generation, the lengths and the postings
            try:
                if not self._current(conn):
                    return None
                lists = [self._term(conn, term) for term in terms]
            finally:
                if begun:
                    conn.execute("COMMIT")
            rows, avgdl, lengths = self._rows, self._avgdl, self._lengths
        k1, b = self.k1, self.b
        scores = np.zeros(len(lengths), dtype=np.float64)
        matched = np.zeros(len(lengths), dtype=np.bool_)
        for ids, freq in lists:  # FTS5 adds the phrases' terms in query order, each as below
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

    def _current(self, conn: sqlite3.Connection) -> bool:
        """Make the kept records those of the connection's generation; False if they cannot be read."""
        row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        generation = int(json.loads(row[0])) if row else 0
        if generation == self._generation:
            return True
        self._terms.clear()
        self._held = 0
        self._generation = -1
        totals = varints(conn.execute(f"SELECT block FROM {self.table}_data WHERE id=1").fetchone() or [b""])
        if len(totals) != 1 + len(self.weights) or totals[0] <= 0:
            return False
        sizes = conn.execute(f"SELECT id, sz FROM {self.table}_docsize").fetchall()
        lengths = np.zeros(max((int(i) for i, _ in sizes), default=-1) + 1, dtype=np.float64)
        for chunk_id, size in sizes:
            lengths[int(chunk_id)] = sum(varints([size]))
        vocabulary = f"fts5vocab(main, {self.table}, instance)"
        conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{self.table}_postings USING {vocabulary}")
        self._rows, self._avgdl, self._lengths = totals[0], sum(totals[1:]) / totals[0], lengths
        self._generation = generation
        return True

    def _term(self, conn: sqlite3.Connection, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The chunks that hold ``term`` (ascending) and its column-weighted count in each."""
        kept = self._terms.get(term)
        if kept is not None:
            self._terms.move_to_end(term)
            return kept
        weight = {"title": self.weights[0], "text": self.weights[1]}
        freq: dict[int, float] = {}
        rows = conn.execute(
            f"SELECT doc, col, count(*) FROM temp.{self.table}_postings WHERE term = ? GROUP BY doc, col", (term,)
        )
        for doc, col, count in rows:
            freq[int(doc)] = freq.get(int(doc), 0.0) + weight.get(str(col), 1.0) * int(count)
        ids = np.fromiter(sorted(freq), dtype=np.int64, count=len(freq))
        kept = (ids, np.fromiter((freq[int(i)] for i in ids), dtype=np.float64, count=len(ids)))
        self._terms[term] = kept
        self._held += len(ids)
        while self._held > KEPT_POSTINGS and len(self._terms) > 1:
            _, (dropped, _) = self._terms.popitem(last=False)
            self._held -= len(dropped)
        return kept


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
