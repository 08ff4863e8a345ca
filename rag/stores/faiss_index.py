"""FAISS as the vector index: files derived from the vectors the catalog keeps.

Each committed generation has its file ``vectors-<generation>.faiss`` with its SHA-256 beside it
(``.sha256``), written atomically after the catalog's commit. A file that is missing, stale, damaged
(checksum) or foreign (wrong count or dimension) is rebuilt from the catalog: a flipped byte never
gives wrong answers, and a writer killed between the commit and the file leaves nothing wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from . import faiss_build, fs
from .catalog import Applied, Catalog
from .records import Changes
from .sqlite_file import DATABASE

_log = logging.getLogger(__name__)


class FaissIndex:
    """FAISS inner-product index of a catalog's vectors, one file per generation (see the module docstring)."""

    kind = "faiss"
    keeps_vectors = True
    #: A change adding more vectors than this keeps none in memory (the index is rebuilt from the catalog).
    held: int | None = 4096

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.directory = catalog.directory
        self._index: Any = None
        self._key: tuple[int, int] = (-1, -1)  # (catalog epoch, generation) of the loaded index

    def path(self, generation: int) -> Path:
        """The vector file of ``generation``."""
        return self.directory / f"vectors-{generation:08d}.faiss"

    def _write(self, generation: int, index: Any) -> None:
        """Write the vector file of ``generation``, then its SHA-256 beside it."""
        digest = hashlib.sha256()
        write = faiss_build.faiss_writer(index)

        def hashed(f: BinaryIO) -> None:
            class Tee:
                def write(self, data: bytes) -> int:
                    digest.update(data)
                    return f.write(data)

            write(Tee())  # type: ignore[arg-type]

        path = self.path(generation)
        fs.atomic_write(path, hashed)
        fs.atomic_write(fs.checksum_path(path), (digest.hexdigest() + "\n").encode())

    def _read(self, generation: int) -> Any:
        """The vector file of ``generation``, or None when it is missing, unverified or damaged."""
        import faiss

        path = self.path(generation)
        if not path.is_file():
            return None
        try:
            recorded = fs.checksum_path(path).read_text().strip()
        except OSError:
            return None  # written by an older version or a writer killed before the checksum: rebuild
        try:
            if fs.file_sha256(path) != recorded:
                _log.debug("the vector file %s is damaged (checksum mismatch): rebuilding it from %s", path, DATABASE)
                return None
            return faiss.read_index(str(path))
        except (OSError, RuntimeError):
            return None

    def _rebuild(self) -> Any:
        """Build the index from the vectors in the catalog, streaming them in batches."""
        dimension = int(self.catalog.config(self.kind)["dimension"])
        with self.catalog.db() as conn:
            count = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            training = None
            if count >= faiss_build.EXACT_LIMIT:
                step = max(1, count // (faiss_build.TRAIN_PER_LIST * faiss_build.ivf_lists(count)))
                rows = conn.execute("SELECT vector FROM chunks WHERE id % ? = 0", (step,)).fetchall()
                training = np.frombuffer(b"".join(r[0] for r in rows), dtype=np.float32).reshape(-1, dimension)
            index = faiss_build.new_vector_index(dimension, count, training)
            cursor = conn.execute("SELECT id, vector FROM chunks ORDER BY id")
            while rows := cursor.fetchmany(8192):
                ids = np.asarray([r[0] for r in rows], dtype=np.int64)
                vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dimension)
                index.add_with_ids(vectors, ids)
        return index

    def current(self) -> Any:
        """The FAISS index of the committed generation (loaded once, reloaded after a commit)."""
        with self.catalog.db() as conn:
            conn.execute("BEGIN")  # one snapshot: the generation, its chunks and, if rebuilt, their vectors
            try:
                generation = self.catalog.generation()
                key = (self.catalog.epoch, generation)
                if self._index is None or self._key != key:
                    index = self._read(generation)
                    if index is None or not self._matches(conn, index):
                        index = self._rebuild()
                        with contextlib.suppress(OSError):
                            self._write(generation, index)
                    self._index, self._key = index, key
            finally:
                conn.execute("COMMIT")
        return self._index

    def _matches(self, conn: sqlite3.Connection, index: Any) -> bool:
        """Whether a FAISS index holds as many vectors of the right dimension as the catalog holds chunks."""
        count = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(index.ntotal) == int(count) and int(index.d) == int(self.catalog.config(self.kind)["dimension"])

    # ------------------------------------------------------------ the VectorIndex protocol

    def create(self, config: dict[str, Any]) -> dict[str, Any]:
        """Nothing to prepare: the files are written with the first change."""
        return {}

    def verify(self, config: dict[str, Any]) -> None:
        """Nothing to check: the files are checked against the catalog when read."""

    def begin(self, changes: Changes) -> Changes:
        """Nothing to do before the transaction."""
        return changes

    def stage(self, conn: sqlite3.Connection, removed: list[int], added: list[tuple[int, np.ndarray]] | None) -> None:
        """Nothing inside the transaction: the vectors are in the catalog."""

    def commit(self, applied: Applied) -> None:
        """Write the file of the new generation: the old index updated in a copy, or rebuilt."""
        import faiss

        old, new, removed, added = applied.old, applied.new, applied.removed, applied.added
        index = None  # a large change (added is None) is built from the catalog rather than held in memory
        if added is not None:
            # Work on a copy: searches in other threads keep using the committed index until the swap.
            if self._index is not None and self._key == (self.catalog.epoch, old):
                index = faiss.clone_index(self._index)
            elif self.path(old).is_file():
                index = self._read(old)
            if index is not None and faiss_build.needs_rebuild(index, index.ntotal - len(removed) + len(added)):
                index = None  # grown past the structure it was built for: rebuild with the right one
        if index is None:
            index = self._rebuild()
        else:
            if removed:
                index.remove_ids(np.asarray(removed, dtype=np.int64))  # type: ignore[arg-type]
            if added:
                ids = np.asarray([i for i, _ in added], dtype=np.int64)
                index.add_with_ids(np.stack([v for _, v in added]), ids)
            with self.catalog.db() as conn:
                if not self._matches(conn, index):  # the old file was damaged or foreign
                    index = self._rebuild()
        self._write(new, index)
        self._index, self._key = index, (self.catalog.epoch, new)
        keep = {self.path(new).name, self.path(old).name}
        for stale in [*self.directory.glob("vectors-*.faiss"), *self.directory.glob("vectors-*.faiss.sha256")]:
            if stale.name.removesuffix(".sha256") not in keep:
                with contextlib.suppress(OSError):
                    stale.unlink()

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest chunk ids by inner product (cosine for normalised vectors), best first."""
        index = self.current()
        if index.ntotal == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = faiss_build.single_threaded(index.search, query, min(k, index.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Vectors by chunk id, from the catalog."""
        return self.catalog.vectors(ids)

    def cached_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors by content hash, from the catalog."""
        return self.catalog.stored_vectors(hashes)

    def count(self) -> int:
        """Number of vectors in the committed generation's index."""
        return int(self.current().ntotal)

    def manifest_fields(self) -> dict[str, Any]:
        """The engine and the index structure (when loaded)."""
        described = faiss_build.describe_index(self._index) if self._index is not None else None
        return {"vector_store": self.kind, "faiss_index": described}

    def stats_fields(self) -> dict[str, Any]:
        """Nothing beyond the catalog's counts."""
        return {}

    def drop(self) -> None:
        """Delete every vector file (and checksum) in the directory."""
        for item in self.directory.glob("vectors-*.faiss*"):
            item.unlink()

    def close(self) -> None:
        """Nothing to release (the index is memory only)."""
