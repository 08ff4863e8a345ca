"""The catalog: one SQLite file holding an index's documents, chunks, keyword index and metadata.

Every change is one SQLite transaction (WAL journal, ``synchronous=FULL``), so a crash leaves the last
committed state; its ``generation`` counts committed changes and names the derived files. Chunk ids
are never reused. The ``vector`` column holds each chunk's vector when the vector index needs them to
rebuild its files (FAISS); it is empty (``b""``) when the vector engine keeps them itself (Milvus).
A read-only folder still answers questions (the database is opened read-only).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexMismatchError
from . import fs, fulltext, manifest, term_counts
from .manifest import MANIFEST
from .pause import pause_point
from .postings import Postings
from .records import Changes, ChunkRecord, DocumentRecord
from .sqlite_file import SQLiteFile

SCHEMA_VERSION = 2  # 2: chunks carry their page and boxes (layout), documents their extraction report

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    source TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    root TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    format TEXT NOT NULL,
    encoding TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    report TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    ord INTEGER NOT NULL,
    hash TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    section TEXT NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL,
    layout TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(hash);
"""
    + fulltext.SCHEMA
)
_CHUNK_COLUMNS = 'id, source, ord, hash, start, "end", section, text, layout'

#: Called inside a change's transaction just before it commits: (connection, removed ids, added
#: (id, vector) pairs or None when there were too many to hold).
Stage = Callable[[sqlite3.Connection, list[int], "list[tuple[int, np.ndarray]] | None"], None]


@dataclass
class Applied:
    """What a committed change did: generations before and after, chunk ids removed and added."""

    old: int
    new: int
    removed: list[int]
    #: (id, vector) of the added chunks; None when more than the vector index holds were added.
    added: list[tuple[int, np.ndarray]] | None
    #: The configuration a rebuild recorded (``Changes.reset``), else None.
    reset: dict[str, Any] | None = None


class Catalog(SQLiteFile):
    """The SQLite half of an index directory (see the module docstring)."""

    def __init__(self, directory: Path, lock_timeout: float = 600.0, keep_vectors: bool = True) -> None:
        super().__init__(directory)
        self.lock_timeout = lock_timeout
        #: Whether the ``vector`` column keeps each chunk's vector (else b"").
        self.keep_vectors = keep_vectors
        self._counts: term_counts.TermCounts | None = None
        self._postings: Postings | None = None

    # ------------------------------------------------------------ creating and dropping

    def create(self, config: dict[str, Any], extra: dict[str, Any]) -> None:
        """Make an empty catalog recording ``config`` (and the vector engine's ``extra`` metadata)."""

        def initialise(conn: sqlite3.Connection) -> None:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            _insert_meta(conn, config, 0, extra)
            conn.execute("COMMIT")

        self.create_file(initialise)

    def drop(self) -> None:
        """Delete the catalog and the manifest (see :meth:`SQLiteFile.drop_file`)."""
        self.drop_file(MANIFEST)

    def _reset(self, conn: sqlite3.Connection, config: dict[str, Any], kind: str) -> list[int]:
        """Inside a transaction: drop every table and create them anew with ``config``; returns the old chunk ids.

        The vector engine's metadata (``vector_store`` and its ``kind`` entry) is kept.
        """
        old_ids = [r[0] for r in conn.execute("SELECT id FROM chunks")]
        meta = self.meta(conn)
        next_id = _next_chunk_id(conn)
        for table in (fulltext.TABLE, "chunks", "documents", "meta"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        kept = {key: meta[key] for key in ("vector_store", kind) if key in meta}
        _insert_meta(conn, config, int(meta["generation"]), kept)
        conn.execute("INSERT INTO meta(key, value) VALUES ('next_id', ?)", (json.dumps(next_id),))
        return old_ids

    # ------------------------------------------------------------ metadata

    def meta(self, conn: sqlite3.Connection | None = None) -> dict[str, Any]:
        """Every metadata entry (schema, config, generation, times, the vector engine's entries)."""
        if conn is None:
            with self.db() as conn:
                return self.meta(conn)
        return {key: json.loads(value) for key, value in conn.execute("SELECT key, value FROM meta")}

    def set_meta(self, key: str, value: Any) -> None:
        """Record (or with None, delete) one metadata entry, committed at once."""
        with self.db() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key=?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def config(self, kind: str) -> dict[str, Any]:
        """The configuration recorded when the index was created; refused if another ``kind`` of vector
        engine keeps its vectors or the storage schema is another."""
        meta = self.meta()
        if meta.get("schema") != SCHEMA_VERSION:
            raise IndexMismatchError(
                f"the index at {self.directory} has storage schema {meta.get('schema')}, this version reads "
                f"{SCHEMA_VERSION}: rebuild it with 'rag index PATH --index {self.directory} --rebuild'"
            )
        if meta.get("vector_store", "faiss") != kind:
            raise IndexMismatchError(_other_store(self.directory, meta))
        return dict(meta["config"])

    def generation(self) -> int:
        """Number of the last committed change."""
        with self.db() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(json.loads(row[0])) if row else 0

    def next_id(self, conn: sqlite3.Connection) -> int:
        """The first chunk id never used."""
        return _next_chunk_id(conn)

    def _summary(self) -> tuple[dict[str, Any], int, int]:
        """The metadata, and the numbers of documents and chunks, read in one go."""
        with self.db() as conn:
            meta = self.meta(conn)
            documents = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return meta, int(documents), int(chunks)

    def write_manifest(self, fields: dict[str, Any]) -> None:
        """Write ``manifest.json`` (derived from the catalog, plus the vector engine's ``fields``)."""
        manifest.write_manifest(self.directory, *self._summary(), fields)

    def writer(self) -> contextlib.AbstractContextManager[None]:
        """Hold the index's write lock (one writer at a time; others wait up to ``lock_timeout``)."""
        return fs.write_lock(self.directory, self.lock_timeout)

    def stats(self) -> dict[str, Any]:
        """Counts, settings and generation of the index."""
        meta, documents, chunks = self._summary()
        return {
            "documents": documents,
            "chunks": chunks,
            "generation": meta.get("generation", 0),
            "created_at": meta.get("created_at"),
            "updated_at": meta.get("updated_at"),
            **meta.get("config", {}),
        }

    # ------------------------------------------------------------ reading

    def documents(self) -> list[DocumentRecord]:
        """Every indexed document, by source name."""
        with self.db() as conn:
            rows = conn.execute(
                "SELECT source, path, root, digest, size, mtime_ns, format, encoding, chunks, added_at, updated_at, "
                "report FROM documents ORDER BY source"
            ).fetchall()
        return [DocumentRecord(*row) for row in rows]

    def chunks(self, ids: list[int]) -> dict[int, ChunkRecord]:
        """Stored chunks by id."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self.db() as conn:
            rows = conn.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})", [int(i) for i in ids]
            ).fetchall()
        return {row[0]: ChunkRecord(*row) for row in rows}

    def document_chunks(self, source: str) -> list[ChunkRecord]:
        """All chunks of one document, in order."""
        with self.db() as conn:
            rows = conn.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE source=? ORDER BY ord", (source,)
            ).fetchall()
        return [ChunkRecord(*row) for row in rows]

    def committed(self, ids: Iterable[int]) -> set[int]:
        """Those of ``ids`` that are stored chunks."""
        wanted = [int(i) for i in ids]
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        with self.db() as conn:
            return {row[0] for row in conn.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", wanted)}

    def first_with_hash(self, hashes: Iterable[str]) -> dict[int, str]:
        """For each of ``hashes`` that a stored chunk has: the first such chunk's id -> the hash."""
        wanted = list(set(hashes))
        by_id: dict[int, str] = {}
        with self.db() as conn:
            for first in range(0, len(wanted), 500):
                part = wanted[first : first + 500]
                marks = ",".join("?" * len(part))
                rows = conn.execute(f"SELECT hash, min(id) FROM chunks WHERE hash IN ({marks}) GROUP BY hash", part)
                by_id.update({int(i): digest for digest, i in rows})
        return by_id

    def stored_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors kept in the catalog for chunk content hashes (``keep_vectors`` catalogs only)."""
        wanted = list(set(hashes))
        found: dict[str, np.ndarray] = {}
        with self.db() as conn:
            for first in range(0, len(wanted), 500):
                part = wanted[first : first + 500]
                marks = ",".join("?" * len(part))
                for digest, blob in conn.execute(
                    f"SELECT hash, vector FROM chunks WHERE hash IN ({marks}) GROUP BY hash", part
                ):
                    found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Vectors kept in the catalog, by chunk id (``keep_vectors`` catalogs only)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self.db() as conn:
            rows = conn.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", [int(i) for i in ids])
            return {row[0]: np.frombuffer(row[1], dtype=np.float32) for row in rows}

    def keyword_search(self, terms: list[str], k: int, rescore: Sequence[int] = ()) -> list[tuple[int, float]]:
        """The keyword index's best chunks for ``terms``, with ``rescore`` among the chunks a second,
        exact pass ranks when a large index left common words out (see :func:`rag.stores.fulltext.search`)."""
        with self.db() as conn:
            largest = conn.execute("SELECT max(id) FROM chunks").fetchone()[0] or 0
            if largest < term_counts.COUNT_FROM_CHUNKS:  # a small index: every word, in memory once warmed
                return fulltext.search(conn, terms, k, None, rescore, self._kept_postings())
            return fulltext.search(conn, terms, k, self._term_counts(conn), rescore)

    def _kept_postings(self) -> Postings | None:
        """The in-memory BM25 of a warmed small index (None before :meth:`warm`)."""
        if self._postings is not None and self._postings.epoch != self.epoch:  # the file was replaced
            self._postings = fulltext.postings(self.database, self.epoch)
        return self._postings

    def _term_counts(self, conn: sqlite3.Connection) -> Mapping[str, int] | None:
        """Chunks per common term on a large index (None on a small one, or while they are first read)."""
        if self._counts is None or self._counts.epoch != self.epoch:  # none yet, or the file was replaced
            self._counts = term_counts.TermCounts(self.database, self.epoch)
        return self._counts.for_search(conn)

    def warm(self) -> None:
        """Read what searches use before the first question: the term counts of a large index, every
        term's postings on a small one (see :mod:`rag.stores.postings`)."""
        with self.db() as conn:
            largest = conn.execute("SELECT max(id) FROM chunks").fetchone()[0] or 0
            if largest >= term_counts.COUNT_FROM_CHUNKS:
                self._term_counts(conn)
                waited: term_counts.TermCounts | Postings | None = self._counts
            else:
                if self._kept_postings() is None:
                    self._postings = fulltext.postings(self.database, self.epoch)
                waited = self._postings
                assert waited is not None
                waited.current(conn)  # starts a read unless they are the current generation's
        if waited is not None:
            waited.wait()

    # ------------------------------------------------------------ writing

    def _vector_blob(self, vector: np.ndarray) -> bytes:
        """What the chunks table keeps of a vector: all of it, or b"" when the vector engine keeps them."""
        return vector.tobytes() if self.keep_vectors else b""

    def apply(self, changes: Changes, kind: str, held: int | None, stage: Stage) -> Applied:
        """Apply ``changes`` in one transaction; ``stage`` runs inside it just before the commit.

        ``held``: above this many added vectors none are kept in memory (``Applied.added`` is None);
        None keeps them all. A reset empties every table first (``kind`` names the vector engine whose
        metadata is kept).
        """
        now = time.time()
        removed: list[int] = []
        added: list[tuple[int, np.ndarray]] | None = []
        with self.db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if changes.reset is not None:
                    removed.extend(self._reset(conn, changes.reset, kind))
                    pause_point("reset")
                    if held is not None:
                        added = None  # the vector index is built anew (the dimension may have changed)
                next_id = _next_chunk_id(conn)  # before deleting: chunk ids are never reused

                def drop_chunks(source: str) -> None:
                    ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE source=?", (source,))]
                    conn.execute("DELETE FROM chunks WHERE source=?", (source,))
                    fulltext.remove(conn, ids)
                    removed.extend(ids)

                for source in changes.removals:
                    drop_chunks(source)
                    conn.execute("DELETE FROM documents WHERE source=?", (source,))
                wrote = False
                for record, new_chunks in changes.upserts:
                    wrote = True
                    drop_chunks(record.source)
                    row = conn.execute("SELECT added_at FROM documents WHERE source=?", (record.source,)).fetchone()
                    values = asdict(record) | {
                        "added_at": row[0] if row else now,
                        "updated_at": now,
                        "chunks": len(new_chunks),
                    }
                    conn.execute(
                        "INSERT OR REPLACE INTO documents VALUES (:source, :path, :root, :digest, :size, :mtime_ns, "
                        ":format, :encoding, :chunks, :added_at, :updated_at, :report)",
                        values,
                    )
                    for order, chunk in enumerate(new_chunks):
                        vector = np.ascontiguousarray(chunk.vector, dtype=np.float32)
                        chunk_id, next_id = next_id, next_id + 1
                        conn.execute(
                            f"INSERT INTO chunks({_CHUNK_COLUMNS}, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                chunk_id,
                                record.source,
                                order,
                                chunk.hash,
                                chunk.start,
                                chunk.end,
                                chunk.section,
                                chunk.text,
                                chunk.layout,
                                self._vector_blob(vector),
                            ),
                        )
                        fulltext.add(conn, chunk_id, record.source, chunk.section, chunk.title, chunk.text)
                        if added is not None:
                            added.append((chunk_id, vector))
                            if held is not None and len(added) > held:
                                added = None  # too many to hold: the vector index is rebuilt from the catalog
                for record in changes.touches:
                    conn.execute(
                        "UPDATE documents SET path=?, root=?, mtime_ns=?, size=? WHERE source=?",
                        (record.path, record.root, record.mtime_ns, record.size, record.source),
                    )
                generation = int(
                    json.loads(conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])
                )
                new_generation = generation if not wrote and not changes.removals else generation + 1
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) "
                    "VALUES ('generation', ?), ('updated_at', ?), ('next_id', ?)",
                    (json.dumps(new_generation), json.dumps(now), json.dumps(next_id)),
                )
                pause_point("chunks")
                stage(conn, removed, added)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite already rolled back on some errors (a full disk)
                    conn.execute("ROLLBACK")
                raise
        return Applied(generation, new_generation, removed, added, changes.reset)

    def keep_timestamps(self, records: Iterable[DocumentRecord]) -> None:
        """Set documents' ``added_at``/``updated_at`` from ``records`` (a migration keeps the originals)."""
        with self.db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "UPDATE documents SET added_at=?, updated_at=? WHERE source=?",
                [(r.added_at, r.updated_at, r.source) for r in records],
            )
            conn.execute("COMMIT")


def _insert_meta(conn: sqlite3.Connection, config: dict[str, Any], generation: int, extra: dict[str, Any]) -> None:
    meta = {"schema": SCHEMA_VERSION, "config": config, "generation": generation, "created_at": time.time()}
    meta |= extra
    conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])


def _next_chunk_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key='next_id'").fetchone()
    top = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM chunks").fetchone()[0]
    return max(int(json.loads(row[0])) if row else 1, int(top))


def _other_store(directory: Path, meta: dict[str, Any]) -> str:
    kind = meta.get("vector_store", "faiss")
    if kind == "faiss":
        return (
            f"the index at {directory} keeps its vectors in FAISS files: leave RAG_VECTOR_STORE (--store) empty, "
            f"or copy it into Milvus with 'rag migrate --from {directory} --to URI --index NEW_DIR'"
        )
    location = (meta.get(kind) or {}).get("location", kind)
    return f"the index at {directory} keeps its vectors in {location}: set RAG_VECTOR_STORE (or --store) to it"
