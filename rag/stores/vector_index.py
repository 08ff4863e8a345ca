"""What a store needs of a vector engine (FAISS files, a Milvus collection): the :class:`VectorIndex` protocol.

An engine never changes on its own: every change is part of a catalog transaction. ``stage`` runs
inside that transaction just before it commits (an engine that writes elsewhere, like Milvus, writes
there and records in the catalog what to undo or finish after a crash); ``commit`` runs after it (an
engine whose files derive from the catalog, like FAISS, writes them then). Readers therefore see a
change in the catalog and in the vectors at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

from .catalog import Applied
from .records import Changes


class VectorIndex(Protocol):
    """The vector half of a store: chunk id -> vector, searched by inner product."""

    #: Recorded as ``vector_store`` in the catalog's metadata (absent means FAISS).
    kind: str
    #: Whether the catalog keeps each chunk's vector (FAISS rebuilds its files from them).
    keeps_vectors: bool
    #: Above this many vectors added by one change none are held in memory (``stage``/``commit`` get
    #: None; the engine reads them from the catalog); None: always held.
    held: int | None

    def create(self, config: dict[str, Any]) -> dict[str, Any]:
        """Prepare an empty index for ``config``; returns metadata to record in the new catalog."""

    def verify(self, config: dict[str, Any]) -> None:
        """Check that the vectors belong to the catalog recording ``config`` (raises a clear error)."""

    def begin(self, changes: Changes) -> Changes:
        """Before a change's transaction (write lock held): recover from a crashed writer, reserve ids."""

    def stage(self, conn: sqlite3.Connection, removed: list[int], added: list[tuple[int, np.ndarray]] | None) -> None:
        """Inside the change's transaction, just before it commits."""

    def commit(self, applied: Applied) -> None:
        """After the change committed: make it visible in the vectors (or finish it)."""

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest committed chunk ids with their inner product, best first."""

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Vectors of committed chunks by id (missing ids are left out)."""

    def cached_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors of stored chunks by content hash, so unchanged text is never embedded twice."""

    def count(self) -> int:
        """Number of vectors searched."""

    def manifest_fields(self) -> dict[str, Any]:
        """What the manifest says of the engine."""

    def stats_fields(self) -> dict[str, Any]:
        """What ``stats()`` adds about the engine."""

    def drop(self) -> None:
        """Delete the engine's files in the index directory (a collection is replaced by ``create``)."""

    def close(self) -> None:
        """Release connections."""
