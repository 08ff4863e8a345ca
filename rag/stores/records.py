"""What a store holds and is asked to change: records of documents and chunks, one atomic change, the store protocol."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: The recorded settings an index's vectors and chunks depend on: an index (or a Milvus collection,
#: or a shard to merge) built with other values cannot be used or combined; it must be rebuilt.
COMPATIBILITY_KEYS = ("model_fingerprint", "dimension", "chunk_tokens", "chunk_overlap", "chunker", "extractor")


def incompatible_key(recorded: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """The first of :data:`COMPATIBILITY_KEYS` whose values differ between two configurations, or None."""
    return next((key for key in COMPATIBILITY_KEYS if recorded.get(key) != wanted.get(key)), None)


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

    def summary(self) -> dict[str, Any]:
        """What listings show of the file (no server path): source, chunks, size, format, times, extraction."""
        keys = ("source", "chunks", "size", "format", "added_at", "updated_at")
        return {**{key: getattr(self, key) for key in keys}, "extraction": json.loads(self.report or "{}")}


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
    """What the assistant needs of a store: documents, chunks, keyword and vector search, atomic changes."""

    def exists(self) -> bool:
        """Whether an index is stored here."""

    def create(self, config: dict[str, Any]) -> None:
        """Make an empty index recording ``config`` (model, dimension, chunking)."""

    def drop(self) -> None:
        """Delete the index (its catalog and derived files); used when a damaged index is rebuilt from nothing."""

    def config(self) -> dict[str, Any]:
        """The configuration the index was created with."""

    def documents(self) -> list[DocumentRecord]:
        """Every indexed document."""

    def cached_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors of chunks whose content hash is among ``hashes``."""

    def apply(self, changes: Changes) -> None:
        """Apply ``changes`` atomically."""

    def warm(self) -> None:
        """Load what searches use now rather than on the first question."""

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids to ``vector`` with their cosine similarity, best first."""

    def keyword_search(self, terms: list[str], k: int, rescore: Sequence[int] = ()) -> list[tuple[int, float]]:
        """The ``k`` best chunk ids for the keyword ``terms`` (BM25 or similar), best first. Where a large
        index scores only some of the words at first, the chunks ``rescore`` (e.g. dense search's
        candidates) are ranked by every word along with those it found."""

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
