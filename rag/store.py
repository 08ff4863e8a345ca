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
import errno
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import numpy as np

from .chunking import chunk_title
from .errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, IndexWriteError

if TYPE_CHECKING:
    from .config import Settings

SCHEMA_VERSION = 2  # 2: chunks carry their page and boxes (layout), documents their extraction report
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
    #: What extraction found, as JSON (pages, OCR'd pages, tables, warnings); "{}" for plain formats.
    report: str = "{}"


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
    #: PDFs and images: JSON ``{"page": n, "runs": [[start, end, x0, y0, x1, y1], ...]}``, else "".
    layout: str = ""


@dataclass
class NewChunk:
    """A chunk to store, with its vector."""

    hash: str
    start: int
    end: int
    section: str
    text: str
    vector: np.ndarray
    layout: str = ""
    #: The chunk's title line for the keyword index (file name, document title, section); derived when empty.
    title: str = ""


@dataclass
class Changes:
    """One atomic change: documents to (re)write with their chunks, and sources to remove.

    ``upserts`` may be a generator: it is consumed once, inside the change's transaction, so a large
    build can embed and store a batch at a time with flat memory and still commit all or nothing.
    """

    upserts: Iterable[tuple[DocumentRecord, list[NewChunk]]] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    touches: list[DocumentRecord] = field(default_factory=list)  # unchanged content, new path/mtime
    #: A rebuild: every table is emptied and the index re-created with this config, inside the same
    #: transaction as the upserts (a crash leaves the old index or the new one, never none).
    reset: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removals or self.touches or self.reset is not None)


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

    def generation(self) -> int:
        """Number of the last committed change."""

    def document_chunks(self, source: str) -> list[ChunkRecord]:
        """All chunks of one document, in order."""

    def writer(self) -> contextlib.AbstractContextManager[None]:
        """Hold the index's write lock while applying changes."""

    def close(self) -> None:
        """Release connections and files."""


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    ``data`` may be a function writing to the open file (large files are then never held twice).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def faiss_writer(index: Any) -> Callable[[BinaryIO], None]:
    """Writes ``index`` to an open file in pieces (no serialised copy of it in memory)."""

    def write(f: BinaryIO) -> None:
        import faiss

        faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))  # type: ignore[attr-defined]

    return write


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class FaissStore:
    """The default store: SQLite (truth) plus a FAISS inner-product index (derived, per generation).

    Other engines reuse its SQLite half (documents, chunk text, BM25, lock, manifest) by overriding the
    vector hooks: ``_vector_blob``, ``_stage_vectors``, ``_update_vectors``, ``_store_meta``,
    ``_manifest_fields`` and the vector reads (see :class:`rag.milvus_store.MilvusStore`).
    """

    #: Recorded as ``vector_store`` in the index's metadata (absent means FAISS); opening it as another kind is refused.
    KIND = "faiss"
    #: A change adding more vectors than this keeps none in memory (the index is rebuilt from SQLite);
    #: None: always hold them (engines that write them inside the transaction).
    HELD_VECTORS: int | None = 4096

    def __init__(self, directory: Path, lock_timeout: float = 600.0) -> None:
        self.directory = Path(directory)
        self.lock_timeout = lock_timeout
        self._conn: sqlite3.Connection | None = None
        self._conn_lock = threading.RLock()
        self._index: Any = None
        self._index_generation = -1
        self._inode: tuple[int, int] | None = None
        self.read_only = False

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
            inode = _inode(self.database)
            try:
                conn = sqlite3.connect(self.database, check_same_thread=False, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("SELECT count(*) FROM meta").fetchone()
                self.read_only = False
            except sqlite3.DatabaseError as exc:
                fallback = self._open_read_only()  # a read-only mount or folder still answers questions
                if fallback is None:
                    raise _problem(exc, self.directory) from None
                conn = fallback
            self._conn, self._inode = conn, inode
        return self._conn

    def _open_read_only(self) -> sqlite3.Connection | None:
        """A read-only connection when the index folder cannot be written (None if it is writable or unreadable)."""
        if _writable(self.directory):
            return None
        from urllib.parse import quote

        for mode in ("mode=ro", "immutable=1"):
            try:
                conn = sqlite3.connect(
                    f"file:{quote(str(self.database.resolve()))}?{mode}",
                    uri=True,
                    check_same_thread=False,
                    timeout=30,
                    isolation_level=None,
                )
                conn.execute("SELECT count(*) FROM meta").fetchone()
            except sqlite3.DatabaseError:
                continue
            self.read_only = True
            return conn
        return None

    def _check_replaced(self) -> None:
        """Reconnect when the database file was replaced or deleted by another process (e.g. a damaged
        index rebuilt from nothing), so a long-running reader never answers from a deleted file."""
        if self._conn is not None and _inode(self.database) != self._inode:
            self._conn.close()
            self._conn = None
            self._index, self._index_generation = None, -1

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._conn_lock:
            self._check_replaced()
            try:
                yield self._connect()
            except sqlite3.DatabaseError as exc:
                raise _problem(exc, self.directory) from None

    def create(self, config: dict[str, Any]) -> None:
        """Make an empty index in the directory with ``config`` recorded."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{DATABASE}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.executescript(_SCHEMA)
                conn.execute("BEGIN")
                self._insert_meta(conn, config, 0)
                conn.execute("COMMIT")
            finally:
                conn.close()
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        except (sqlite3.DatabaseError, OSError) as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _problem(exc, self.directory) from None
        for suffix in ("-wal", "-shm", "-journal"):  # left by a deleted database: SQLite would replay them
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{DATABASE}{suffix}").unlink()
        os.replace(tmp, self.database)
        _fsync_dir(self.directory)
        self._write_manifest()

    def _insert_meta(self, conn: sqlite3.Connection, config: dict[str, Any], generation: int) -> None:
        meta = {"schema": SCHEMA_VERSION, "config": config, "generation": generation, "created_at": time.time()}
        meta |= self._store_meta()
        conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])

    def _reset(self, conn: sqlite3.Connection, config: dict[str, Any]) -> list[int]:
        """Inside a transaction: drop every table and create them anew with ``config``; returns the old chunk ids."""
        old_ids = [r[0] for r in conn.execute("SELECT id FROM chunks")]
        generation = int(json.loads(conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]))
        next_id = _next_chunk_id(conn)
        for table in ("chunks_fts", "chunks", "documents", "meta"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        self._insert_meta(conn, config, generation)
        conn.execute("INSERT INTO meta(key, value) VALUES ('next_id', ?)", (json.dumps(next_id),))
        return old_ids

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
        if meta.get("vector_store", "faiss") != self.KIND:
            raise IndexMismatchError(_other_store(self.directory, meta))
        return dict(meta["config"])

    def _store_meta(self) -> dict[str, Any]:
        """Extra metadata recorded when the index is created (FAISS: none)."""
        return {}

    def generation(self) -> int:
        """Number of the last committed change."""
        with self._db() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(json.loads(row[0])) if row else 0

    def documents(self) -> list[DocumentRecord]:
        """Every indexed document, by source name."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT source, path, root, digest, size, mtime_ns, format, encoding, chunks, added_at, updated_at, "
                "report "
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
                f'SELECT id, source, ord, hash, start, "end", section, text, layout FROM chunks WHERE id IN ({marks})',
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
                'SELECT id, source, ord, hash, start, "end", section, text, layout FROM chunks '
                "WHERE source=? ORDER BY ord",
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

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _problem(exc, self.directory) from None
        if not _writable(self.directory):
            raise IndexWriteError(
                f"the index at {self.directory} is read-only: it can answer questions, but changes need a "
                "writable folder (copy it elsewhere or remount it read-write)"
            )
        lock = FileLock(str(self.directory / ".lock"))
        try:
            try:
                lock.acquire(timeout=0)
            except Timeout:
                if self.lock_timeout > 0:
                    _log.warning(
                        "another process is writing to the index at %s: waiting up to %.0f s for it (RAG_LOCK_TIMEOUT)",
                        self.directory,
                        self.lock_timeout,
                    )
                lock.acquire(timeout=self.lock_timeout)
        except Timeout:
            raise IndexLockedError(
                f"another process is writing to the index at {self.directory} and did not finish within "
                f"{self.lock_timeout:.0f} s: wait for it, or raise RAG_LOCK_TIMEOUT"
            ) from None
        try:
            _remove_leftovers(self.directory)
            yield
        finally:
            lock.release()

    def apply(self, changes: Changes) -> None:
        """Apply ``changes`` in one transaction, then write the FAISS index for the new generation."""
        if not changes:
            if read_manifest(self.directory) is None:
                self._write_manifest()  # derived from SQLite: restore it if it was deleted or damaged
            return
        now = time.time()
        removed_ids: list[int] = []
        added: list[tuple[int, np.ndarray]] | None = []
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if changes.reset is not None:
                    removed_ids.extend(self._reset(conn, changes.reset))
                    if self.HELD_VECTORS is not None:
                        added = None  # the vector index is built anew (the dimension may have changed)
                next_id = _next_chunk_id(conn)  # before deleting: chunk ids are never reused

                def drop_chunks(source: str) -> None:
                    ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE source=?", (source,))]
                    conn.execute("DELETE FROM chunks WHERE source=?", (source,))
                    conn.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])
                    removed_ids.extend(ids)

                for source in changes.removals:
                    drop_chunks(source)
                    conn.execute("DELETE FROM documents WHERE source=?", (source,))
                wrote = False
                for record, new_chunks in changes.upserts:
                    wrote = True
                    drop_chunks(record.source)
                    row = conn.execute("SELECT added_at FROM documents WHERE source=?", (record.source,)).fetchone()
                    added_at = row[0] if row else now
                    values = asdict(record) | {"added_at": added_at, "updated_at": now, "chunks": len(new_chunks)}
                    conn.execute(
                        "INSERT OR REPLACE INTO documents VALUES (:source, :path, :root, :digest, :size, :mtime_ns, "
                        ":format, :encoding, :chunks, :added_at, :updated_at, :report)",
                        values,
                    )
                    for order, chunk in enumerate(new_chunks):
                        vector = np.ascontiguousarray(chunk.vector, dtype=np.float32)
                        chunk_id, next_id = next_id, next_id + 1
                        conn.execute(
                            'INSERT INTO chunks(id, source, ord, hash, start, "end", section, text, vector, layout) '
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                chunk_id,
                                record.source,
                                order,
                                chunk.hash,
                                chunk.start,
                                chunk.end,
                                chunk.section,
                                chunk.text,
                                self._vector_blob(vector),
                                chunk.layout,
                            ),
                        )
                        conn.execute(
                            "INSERT INTO chunks_fts(rowid, title, text) VALUES (?, ?, ?)",
                            (chunk_id, chunk.title or chunk_title(record.source, chunk.section), chunk.text),
                        )
                        if added is not None:
                            added.append((chunk_id, vector))
                            if self.HELD_VECTORS is not None and len(added) > self.HELD_VECTORS:
                                added = None  # too many to hold: the vector index is rebuilt from SQLite
                for record in changes.touches:
                    conn.execute(
                        "UPDATE documents SET path=?, root=?, mtime_ns=?, size=? WHERE source=?",
                        (record.path, record.root, record.mtime_ns, record.size, record.source),
                    )
                generation = int(
                    json.loads(conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])
                )
                only_touches = not wrote and not changes.removals
                new_generation = generation if only_touches else generation + 1
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) "
                    "VALUES ('generation', ?), ('updated_at', ?), ('next_id', ?)",
                    (json.dumps(new_generation), json.dumps(now), json.dumps(next_id)),
                )
                self._stage_vectors(conn, removed_ids, added)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite already rolled back on some errors (a full disk)
                    conn.execute("ROLLBACK")
                raise
        try:
            if new_generation != generation:
                self._update_vectors(generation, new_generation, removed_ids, added)
            self._write_manifest()
        except OSError as exc:  # committed: the derived files are rebuilt by the next reader or writer
            raise _problem(exc, self.directory, committed=True) from None

    def _vector_blob(self, vector: np.ndarray) -> bytes:
        """What the chunks table keeps of a vector (FAISS: all of it; engines holding them elsewhere: b"")."""
        return vector.tobytes()

    def _stage_vectors(
        self, conn: sqlite3.Connection, removed: list[int], added: list[tuple[int, np.ndarray]] | None
    ) -> None:
        """Called inside the transaction just before it commits (FAISS: nothing; it updates after the commit).

        ``added`` is None when the change added more than ``HELD_VECTORS`` vectors (they are in SQLite).
        """

    def _update_vectors(
        self, old: int, new: int, removed_ids: list[int], added: list[tuple[int, np.ndarray]] | None
    ) -> None:
        import faiss

        index = None  # a large change (added is None) is built from SQLite rather than held in memory
        if added is not None:
            # Work on a copy: searches in other threads keep using the committed index until the swap.
            if self._index is not None and self._index_generation == old:
                index = faiss.clone_index(self._index)
            elif self._faiss_path(old).is_file():
                index = self._read_faiss(old)
            if index is not None and needs_rebuild(index, index.ntotal - len(removed_ids) + len(added)):
                index = None  # grown past the structure it was built for: rebuild with the right one
        if index is None:
            index = self._rebuild_faiss()
        else:
            if removed_ids:
                index.remove_ids(np.asarray(removed_ids, dtype=np.int64))  # type: ignore[arg-type]
            if added:
                ids = np.asarray([i for i, _ in added], dtype=np.int64)
                index.add_with_ids(np.stack([v for _, v in added]), ids)
            with self._db() as conn:
                if not self._matches(conn, index):  # the old file was damaged or foreign
                    index = self._rebuild_faiss()
        self._write_faiss(new, index)
        self._index, self._index_generation = index, new
        keep = {self._faiss_path(new).name, self._faiss_path(old).name}
        for stale in [*self.directory.glob("vectors-*.faiss"), *self.directory.glob("vectors-*.faiss.sha256")]:
            if stale.name.removesuffix(".sha256") not in keep:
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
            **self._manifest_fields(),
            "generation": meta.get("generation", 0),
            "documents": documents,
            "chunks": chunks,
            "created_at": meta.get("created_at"),
            "updated_at": meta.get("updated_at"),
        }
        atomic_write(self.directory / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())

    def _manifest_fields(self) -> dict[str, Any]:
        return {
            "vector_store": "faiss",
            "faiss_index": describe_index(self._index) if self._index is not None else None,
        }

    # ------------------------------------------------------------ searching

    def _faiss_path(self, generation: int) -> Path:
        return self.directory / f"vectors-{generation:08d}.faiss"

    def _write_faiss(self, generation: int, index: Any) -> None:
        """Write the vector file of ``generation``, then its SHA-256 beside it (``.sha256``)."""
        digest = hashlib.sha256()
        write = faiss_writer(index)

        def hashed(f: BinaryIO) -> None:
            class Tee:
                def write(self, data: bytes) -> int:
                    digest.update(data)
                    return f.write(data)

            write(Tee())  # type: ignore[arg-type]

        path = self._faiss_path(generation)
        atomic_write(path, hashed)
        atomic_write(_checksum_path(path), (digest.hexdigest() + "\n").encode())

    def _read_faiss(self, generation: int) -> Any:
        """The vector file of ``generation``, or None when it is missing, unverified or damaged (then
        it is rebuilt from SQLite: a flipped byte must never give wrong answers)."""
        import faiss

        path = self._faiss_path(generation)
        if not path.is_file():
            return None
        try:
            recorded = _checksum_path(path).read_text().strip()
        except OSError:
            return None  # written by an older version or a writer killed before the checksum: rebuild
        try:
            if _file_sha256(path) != recorded:
                _log.debug("the vector file %s is damaged (checksum mismatch): rebuilding it from %s", path, DATABASE)
                return None
            return faiss.read_index(str(path))
        except (OSError, RuntimeError):
            return None

    def _rebuild_faiss(self) -> Any:
        """Build the vector index from the vectors in SQLite, streaming them in batches."""
        dimension = int(self.config()["dimension"])
        with self._db() as conn:
            count = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            training = None
            if count >= EXACT_LIMIT:
                step = max(1, count // (TRAIN_PER_LIST * ivf_lists(count)))
                rows = conn.execute("SELECT vector FROM chunks WHERE id % ? = 0", (step,)).fetchall()
                training = np.frombuffer(b"".join(r[0] for r in rows), dtype=np.float32).reshape(-1, dimension)
            index = new_vector_index(dimension, count, training)
            cursor = conn.execute("SELECT id, vector FROM chunks ORDER BY id")
            while rows := cursor.fetchmany(8192):
                ids = np.asarray([r[0] for r in rows], dtype=np.int64)
                vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dimension)
                index.add_with_ids(vectors, ids)
        return index

    def vector_index(self) -> Any:
        """The FAISS index of the current generation (loaded once, reloaded after a commit).

        A missing, damaged or foreign file (wrong count or dimension) is rebuilt from SQLite.
        """
        with self._db() as conn:
            conn.execute("BEGIN")  # one snapshot: the generation, its chunks and, if rebuilt, their vectors
            try:
                generation = self.generation()
                if self._index is None or self._index_generation != generation:
                    index = self._read_faiss(generation)
                    if index is None or not self._matches(conn, index):
                        index = self._rebuild_faiss()
                        with contextlib.suppress(OSError):
                            self._write_faiss(generation, index)
                    self._index, self._index_generation = index, generation
            finally:
                conn.execute("COMMIT")
        return self._index

    def _matches(self, conn: sqlite3.Connection, index: Any) -> bool:
        """Whether a FAISS index holds as many vectors of the index's dimension as SQLite holds chunks."""
        count = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(index.ntotal) == int(count) and int(index.d) == int(self.config()["dimension"])

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest chunk ids by inner product (cosine for normalised vectors), best first."""
        index = self.vector_index()
        if index.ntotal == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = _single_threaded(index.search, query, min(k, index.ntotal))
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
_log = logging.getLogger(__name__)
#: Temporary files of atomic_write and create: ".<name>.<pid>[.<thread>].tmp" (plus SQLite's journal).
_LEFTOVER = re.compile(r"\..+?\.(\d+)(?:\.\d+)?\.tmp(?:-journal|-wal|-shm)?")


def _remove_leftovers(directory: Path) -> None:
    """Delete temporary files of writers that died (killed mid-write); called with the write lock held."""
    for item in directory.iterdir():
        match = _LEFTOVER.fullmatch(item.name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                item.unlink()


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (false on a read-only mount or an immutable folder)."""
    if not os.access(folder, os.W_OK):
        return False
    with contextlib.suppress(OSError):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return False
    return True


def _low_space(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < (4 << 20)


def _problem(exc: BaseException, directory: Path, committed: bool = False) -> Exception:
    """One clear error for a failed database or file operation: disk full, read-only, or damage."""
    message = str(exc).lower()
    code = getattr(exc, "errno", None)
    full = code in (errno.ENOSPC, errno.EDQUOT) or "database or disk is full" in message
    if full or ("disk i/o error" in message and _low_space(directory)):
        after = "the change was saved; derived files are rebuilt later" if committed else "the index was not changed"
        return IndexWriteError(
            f"disk full: no space left for the index at {directory} ({after}); free some space and run again"
        )
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "readonly" in message or "read-only" in message:
        why = "permission denied" if code in (errno.EACCES, errno.EPERM) else "read-only"
        return IndexWriteError(
            f"the index at {directory} cannot be written ({why}): it can answer questions, "
            "but changes need a writable folder"
        )
    if isinstance(exc, OSError):
        return IndexWriteError(f"cannot write the index at {directory}: {exc.strerror or exc}")
    return IndexCorruptError(
        f"the index at {directory} is damaged ({exc}): rebuild it with 'rag index PATH --index {directory} --rebuild'"
    )


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


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


def open_store(settings: Settings) -> VectorStore:
    """The store ``settings.vector_store`` names for ``settings.index_dir``: FAISS unless it names Milvus."""
    from .store_uri import parse_store_uri

    target = parse_store_uri(settings.vector_store)
    if target is None:
        return FaissStore(settings.index_dir, lock_timeout=settings.lock_timeout)
    from .milvus_store import MilvusStore

    return MilvusStore(settings.index_dir, target, lock_timeout=settings.lock_timeout)


def _single_threaded(call: Any, *args: Any) -> Any:
    """Run a FAISS call on one thread: for one query, OpenMP start-up costs more than it saves, and
    concurrent requests already keep the cores busy."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return call(*args)
    finally:
        faiss.omp_set_num_threads(threads)


#: Below this many vectors search is exact (a flat inner-product scan); above, an IVF index.
EXACT_LIMIT = 50_000
#: Training vectors per IVF list.
TRAIN_PER_LIST = 40
#: IVF lists probed per search: measured by bench/vector_scale.py for recall@10 >= 0.95 at 1M vectors.
IVF_PROBES = 32


def ivf_lists(count: int) -> int:
    """Number of IVF lists for ``count`` vectors (four times the square root, at least 256)."""
    return max(256, int(4 * count**0.5))


def new_vector_index(dimension: int, count: int, training: np.ndarray | None = None) -> Any:
    """An empty FAISS index fitted to ``count`` vectors: exact below :data:`EXACT_LIMIT`, else IVF.

    IVF is trained on ``training`` (a sample of the vectors). Both kinds take ids and support removal,
    so updates stay incremental.
    """
    import faiss

    if count < EXACT_LIMIT or training is None or len(training) < 256:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    lists = min(ivf_lists(count), len(training) // 39)
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFFlat(quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(training, dtype=np.float32))
    index.nprobe = IVF_PROBES
    index.own_fields = True  # the index frees its quantizer; Python must not free it too
    quantizer.this.disown()  # type: ignore[attr-defined]
    return index


def build_vector_index(vectors: np.ndarray, ids: np.ndarray, dimension: int) -> Any:
    """A FAISS index over ``vectors`` with ``ids``, of the structure chosen for their count."""
    count = len(vectors)
    training = None
    if count >= EXACT_LIMIT:
        step = max(1, count // (TRAIN_PER_LIST * ivf_lists(count)))
        training = vectors[::step]
    index = new_vector_index(dimension, count, training)
    for first in range(0, count, 100_000):
        index.add_with_ids(vectors[first : first + 100_000], ids[first : first + 100_000])
    return index


def needs_rebuild(index: Any, count: int) -> bool:
    """Whether an index holding ``count`` vectors should be rebuilt with another structure or size."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        return count < EXACT_LIMIT // 2 or ivf_lists(count) > 2 * inner.nlist
    return count >= EXACT_LIMIT


def set_search_depth(index: Any, depth: int) -> None:
    """Lists probed per search for IVF indexes (no effect on exact ones)."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        inner.nprobe = depth


def describe_index(index: Any) -> dict[str, Any]:
    """The structure and settings of a FAISS index, for the manifest."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        return {
            "type": "IndexIVFFlat",
            "metric": "inner product",
            "nlist": int(inner.nlist),
            "nprobe": int(inner.nprobe),
            "vectors": int(inner.ntotal),
        }
    return {
        "type": "IndexIDMap2(IndexFlatIP)",
        "metric": "inner product",
        "exact": True,
        "vectors": int(index.ntotal),
        "exact_limit": EXACT_LIMIT,
    }


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
