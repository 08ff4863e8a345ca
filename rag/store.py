"""Storage: an index is a directory; SQLite holds the truth, FAISS is derived from it.

Layout of an index directory::

    manifest.json             model, dimension, chunking settings, library versions, counts (JSON)
    store.sqlite              documents, chunks (text, offsets, section, vector); WAL journal
    vectors-<generation>.faiss  FAISS index of the chunk vectors for that committed generation
    .lock                     held by the one process that writes

Every change is one SQLite transaction, so a crash leaves the last committed state. The FAISS
file is named after the generation it reflects and written atomically (temp file, fsync,
``os.replace``); if it is missing or stale it is rebuilt from the vectors in SQLite. Nothing is
ever pickled. Other vector engines plug in by implementing :class:`VectorStore`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .chunking import chunk_title
from .errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "store.sqlite"

_SCHEMA = """
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
    updated_at REAL NOT NULL
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
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(hash);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


@dataclass(frozen=True)
class DocumentRecord:
    """What the index knows of one indexed file."""

    source: str
    path: str
    root: str
    digest: str
    size: int
    mtime_ns: int
    format: str
    encoding: str
    chunks: int
    added_at: float
    updated_at: float


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk; ``id`` is its row in the store and in the vector index."""

    id: int
    source: str
    ord: int
    hash: str
    start: int
    end: int
    section: str
    text: str


@dataclass
class NewChunk:
    """A chunk to store, with its vector."""

    hash: str
    start: int
    end: int
    section: str
    text: str
    vector: np.ndarray


@dataclass
class Changes:
    """One atomic change: documents to (re)write with their chunks, and sources to remove."""

    upserts: list[tuple[DocumentRecord, list[NewChunk]]] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    touches: list[DocumentRecord] = field(default_factory=list)  # unchanged content, new path/mtime

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removals or self.touches)


class VectorStore(Protocol):
    """What the assistant needs of a storage engine. FAISS is the default; others can follow."""

    def exists(self) -> bool:
        """Whether an index is stored here."""

    def create(self, config: dict[str, Any]) -> None:
        """Make an empty index recording ``config`` (model, dimension, chunking)."""

    def config(self) -> dict[str, Any]:
        """The configuration the index was created with."""

    def documents(self) -> list[DocumentRecord]:
        """Every indexed document."""

    def cached_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors of chunks whose content hash is among ``hashes``."""

    def apply(self, changes: Changes) -> None:
        """Apply ``changes`` atomically."""

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids to ``vector`` with their cosine similarity, best first."""

    def keyword_search(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """The ``k`` best chunk ids for the keyword ``terms`` (BM25 or similar), best first."""

    def chunks(self, ids: list[int]) -> dict[int, ChunkRecord]:
        """Stored chunks by id (missing ids are left out)."""

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Stored vectors by chunk id (missing ids are left out)."""

    def stats(self) -> dict[str, Any]:
        """Counts and settings for display."""


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class FaissStore:
    """The default store: SQLite (truth) plus a FAISS inner-product index (derived, per generation)."""

    def __init__(self, directory: Path, lock_timeout: float = 600.0) -> None:
        self.directory = Path(directory)
        self.lock_timeout = lock_timeout
        self._conn: sqlite3.Connection | None = None
        self._conn_lock = threading.RLock()
        self._index: Any = None
        self._index_generation = -1

    # ------------------------------------------------------------ connection and metadata

    @property
    def database(self) -> Path:
        return self.directory / DATABASE

    def exists(self) -> bool:
        """Whether an index is stored in the directory."""
        return self.database.is_file()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.exists():
                raise IndexNotFoundError(
                    f"no index at {self.directory}: build one with 'rag index PATH --index {self.directory}'"
                )
            try:
                conn = sqlite3.connect(self.database, check_same_thread=False, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("SELECT count(*) FROM meta").fetchone()
            except sqlite3.DatabaseError as exc:
                raise IndexCorruptError(
                    f"the index at {self.directory} is damaged ({exc}): rebuild it with "
                    f"'rag index PATH --index {self.directory} --rebuild'"
                ) from None
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._conn_lock:
            try:
                yield self._connect()
            except sqlite3.DatabaseError as exc:
                raise IndexCorruptError(
                    f"the index at {self.directory} is damaged ({exc}): rebuild it with "
                    f"'rag index PATH --index {self.directory} --rebuild'"
                ) from None

    def create(self, config: dict[str, Any]) -> None:
        """Make an empty index in the directory with ``config`` recorded."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{DATABASE}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            meta = {"schema": SCHEMA_VERSION, "config": config, "generation": 0, "created_at": time.time()}
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()]
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.database)
        _fsync_dir(self.directory)
        self._write_manifest()

    def _meta(self, conn: sqlite3.Connection) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in conn.execute("SELECT key, value FROM meta")}

    def config(self) -> dict[str, Any]:
        """The configuration recorded when the index was created."""
        with self._db() as conn:
            meta = self._meta(conn)
        if meta.get("schema") != SCHEMA_VERSION:
            raise IndexMismatchError(
                f"the index at {self.directory} has storage schema {meta.get('schema')}, this version reads "
                f"{SCHEMA_VERSION}: rebuild it with 'rag index PATH --index {self.directory} --rebuild'"
            )
        return dict(meta["config"])

    def generation(self) -> int:
        """Number of the last committed change."""
        with self._db() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(json.loads(row[0])) if row else 0

    def documents(self) -> list[DocumentRecord]:
        """Every indexed document, by source name."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT source, path, root, digest, size, mtime_ns, format, encoding, chunks, added_at, updated_at "
                "FROM documents ORDER BY source"
            ).fetchall()
        return [DocumentRecord(*row) for row in rows]

    def cached_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors for chunk content hashes, so unchanged text is never embedded twice."""
        wanted = list(set(hashes))
        found: dict[str, np.ndarray] = {}
        with self._db() as conn:
            for first in range(0, len(wanted), 500):
                part = wanted[first : first + 500]
                marks = ",".join("?" * len(part))
                for digest, blob in conn.execute(
                    f"SELECT hash, vector FROM chunks WHERE hash IN ({marks}) GROUP BY hash", part
                ):
                    found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def chunks(self, ids: list[int]) -> dict[int, ChunkRecord]:
        """Stored chunks by id."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._db() as conn:
            rows = conn.execute(
                f'SELECT id, source, ord, hash, start, "end", section, text FROM chunks WHERE id IN ({marks})',
                [int(i) for i in ids],
            ).fetchall()
        return {row[0]: ChunkRecord(*row) for row in rows}

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Stored vectors by chunk id."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._db() as conn:
            rows = conn.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", [int(i) for i in ids])
            return {row[0]: np.frombuffer(row[1], dtype=np.float32) for row in rows}

    def document_chunks(self, source: str) -> list[ChunkRecord]:
        """All chunks of one document, in order."""
        with self._db() as conn:
            rows = conn.execute(
                'SELECT id, source, ord, hash, start, "end", section, text FROM chunks WHERE source=? ORDER BY ord',
                (source,),
            ).fetchall()
        return [ChunkRecord(*row) for row in rows]

    def stats(self) -> dict[str, Any]:
        """Counts, settings and generation of the index."""
        with self._db() as conn:
            meta = self._meta(conn)
            documents = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return {
            "documents": documents,
            "chunks": chunks,
            "generation": meta.get("generation", 0),
            "created_at": meta.get("created_at"),
            "updated_at": meta.get("updated_at"),
            **meta.get("config", {}),
        }

    # ------------------------------------------------------------ writing

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the index's write lock (one writer at a time; others wait up to ``lock_timeout``)."""
        from filelock import FileLock, Timeout

        self.directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.directory / ".lock"))
        try:
            lock.acquire(timeout=self.lock_timeout)
        except Timeout:
            raise IndexLockedError(
                f"another process is writing to the index at {self.directory} and did not finish within "
                f"{self.lock_timeout:.0f} s: wait for it, or raise RAG_LOCK_TIMEOUT"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def apply(self, changes: Changes) -> None:
        """Apply ``changes`` in one transaction, then write the FAISS index for the new generation."""
        if not changes:
            return
        now = time.time()
        removed_ids: list[int] = []
        added: list[tuple[int, np.ndarray]] = []
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                doomed = list(changes.removals) + [record.source for record, _ in changes.upserts]
                for source in doomed:
                    ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE source=?", (source,))]
                    conn.execute("DELETE FROM chunks WHERE source=?", (source,))
                    conn.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])
                    removed_ids += ids
                for source in changes.removals:
                    conn.execute("DELETE FROM documents WHERE source=?", (source,))
                for record, new_chunks in changes.upserts:
                    row = conn.execute("SELECT added_at FROM documents WHERE source=?", (record.source,)).fetchone()
                    added_at = row[0] if row else now
                    values = asdict(record) | {"added_at": added_at, "updated_at": now, "chunks": len(new_chunks)}
                    conn.execute(
                        "INSERT OR REPLACE INTO documents VALUES (:source, :path, :root, :digest, :size, :mtime_ns, "
                        ":format, :encoding, :chunks, :added_at, :updated_at)",
                        values,
                    )
                    for order, chunk in enumerate(new_chunks):
                        vector = np.ascontiguousarray(chunk.vector, dtype=np.float32)
                        cursor = conn.execute(
                            'INSERT INTO chunks(source, ord, hash, start, "end", section, text, vector) '
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                record.source,
                                order,
                                chunk.hash,
                                chunk.start,
                                chunk.end,
                                chunk.section,
                                chunk.text,
                                vector.tobytes(),
                            ),
                        )
                        chunk_id = int(cursor.lastrowid or 0)
                        conn.execute(
                            "INSERT INTO chunks_fts(rowid, title, text) VALUES (?, ?, ?)",
                            (chunk_id, chunk_title(record.source, chunk.section), chunk.text),
                        )
                        added.append((chunk_id, vector))
                for record in changes.touches:
                    conn.execute(
                        "UPDATE documents SET path=?, root=?, mtime_ns=?, size=? WHERE source=?",
                        (record.path, record.root, record.mtime_ns, record.size, record.source),
                    )
                generation = int(
                    json.loads(conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])
                )
                only_touches = not changes.upserts and not changes.removals
                new_generation = generation if only_touches else generation + 1
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('generation', ?), ('updated_at', ?)",
                    (json.dumps(new_generation), json.dumps(now)),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if new_generation != generation:
            self._update_vectors(generation, new_generation, removed_ids, added)
        self._write_manifest()

    def _update_vectors(self, old: int, new: int, removed_ids: list[int], added: list[tuple[int, np.ndarray]]) -> None:
        import faiss

        # Work on a copy: searches in other threads keep using the committed index until the swap.
        index = faiss.clone_index(self._index) if self._index is not None and self._index_generation == old else None
        if index is None and self._faiss_path(old).is_file():
            index = self._read_faiss(old)
        if index is None:
            index = self._rebuild_faiss()
        else:
            if removed_ids:
                index.remove_ids(np.asarray(removed_ids, dtype=np.int64))  # type: ignore[arg-type]
            if added:
                ids = np.asarray([i for i, _ in added], dtype=np.int64)
                index.add_with_ids(np.stack([v for _, v in added]), ids)
        data = faiss.serialize_index(index).tobytes()
        atomic_write(self._faiss_path(new), data)
        self._index, self._index_generation = index, new
        for stale in self.directory.glob("vectors-*.faiss"):
            if stale.name not in {self._faiss_path(new).name, self._faiss_path(old).name}:
                with contextlib.suppress(OSError):
                    stale.unlink()

    def _write_manifest(self) -> None:
        with self._db() as conn:
            meta = self._meta(conn)
            documents = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        manifest = {
            "format": "rag-index",
            "schema": meta.get("schema"),
            **meta.get("config", {}),
            "vector_store": "faiss",
            "faiss_index": "IndexIDMap2(IndexFlatIP)",
            "generation": meta.get("generation", 0),
            "documents": documents,
            "chunks": chunks,
            "created_at": meta.get("created_at"),
            "updated_at": meta.get("updated_at"),
        }
        atomic_write(self.directory / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())

    # ------------------------------------------------------------ searching

    def _faiss_path(self, generation: int) -> Path:
        return self.directory / f"vectors-{generation:08d}.faiss"

    def _read_faiss(self, generation: int) -> Any:
        import faiss

        try:
            data = np.frombuffer(self._faiss_path(generation).read_bytes(), dtype=np.uint8)
            return faiss.deserialize_index(data)
        except (OSError, RuntimeError):
            return None

    def _rebuild_faiss(self) -> Any:
        import faiss

        dimension = int(self.config()["dimension"])
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        with self._db() as conn:
            rows = conn.execute("SELECT id, vector FROM chunks ORDER BY id").fetchall()
        if rows:
            ids = np.asarray([r[0] for r in rows], dtype=np.int64)
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dimension)
            index.add_with_ids(vectors, ids)
        return index

    def vector_index(self) -> Any:
        """The FAISS index of the current generation (loaded once, reloaded after a commit)."""
        generation = self.generation()
        if self._index is None or self._index_generation != generation:
            index = self._read_faiss(generation)
            if index is None:
                index = self._rebuild_faiss()
                with contextlib.suppress(OSError):
                    import faiss

                    atomic_write(self._faiss_path(generation), faiss.serialize_index(index).tobytes())
            self._index, self._index_generation = index, generation
        return self._index

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest chunk ids by inner product (cosine for normalised vectors), best first."""
        index = self.vector_index()
        if index.ntotal == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = index.search(query, min(k, index.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def keyword_search(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """BM25 over chunk text and titles (file name, section) for any of ``terms``, best first.

        Scores are SQLite FTS5's BM25, negated so that higher is better.
        """
        words = [t for t in dict.fromkeys(terms) if t and _FTS_TERM.fullmatch(t)]
        if not words:
            return []
        query = " OR ".join(f'"{w}"' for w in words[:64])
        with self._db() as conn:
            rows = conn.execute(
                "SELECT rowid, bm25(chunks_fts, 0.5, 1.0) FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY bm25(chunks_fts, 0.5, 1.0) LIMIT ?",
                (query, int(k)),
            ).fetchall()
        return [(int(rowid), -float(score)) for rowid, score in rows]

    def close(self) -> None:
        """Close the database connection."""
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_FTS_TERM = re.compile(r"\w+")


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of an index directory, or ``None`` when there is none."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
