"""One store: a catalog (SQLite) and a vector index (FAISS or Milvus), changed together through ``apply``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import fs
from .catalog import Applied, Catalog
from .faiss_index import FaissIndex
from .manifest import read_manifest
from .milvus_index import MilvusIndex
from .pause import pause_point
from .records import Changes, ChunkRecord, DocumentRecord
from .vector_index import VectorIndex

if TYPE_CHECKING:
    from ..config import Settings
    from .records import VectorStore
    from .uri import StoreURI


class IndexStore:
    """An index directory's catalog composed with a vector index (implements :class:`VectorStore`).

    ``apply`` runs a change as one catalog transaction; the vector index stages its part inside it
    and commits after it, so readers see both at once (see :mod:`rag.stores.vector_index`).
    """

    def __init__(self, catalog: Catalog, index: VectorIndex) -> None:
        self.catalog = catalog
        self.index = index
        self.directory = catalog.directory

    @property
    def read_only(self) -> bool:
        """Whether the catalog was opened read-only (the folder cannot be written)."""
        return self.catalog.read_only

    def exists(self) -> bool:
        """Whether an index is stored in the directory."""
        return self.catalog.exists()

    def create(self, config: dict[str, Any]) -> None:
        """Make an empty index recording ``config``."""
        extra = self.index.create(config)
        self.catalog.create(config, extra)
        self._write_manifest()

    def drop(self) -> None:
        """Delete the index's catalog, manifest and vector files (``--rebuild`` of an unreadable index)."""
        self.close()
        self.catalog.drop()
        self.index.drop()

    def config(self) -> dict[str, Any]:
        """The configuration recorded when the index was created, once the vectors are checked against it."""
        config = self.catalog.config(self.index.kind)
        self.index.verify(config)
        return config

    def generation(self) -> int:
        """Number of the last committed change."""
        return self.catalog.generation()

    def documents(self) -> list[DocumentRecord]:
        """Every indexed document, by source name."""
        return self.catalog.documents()

    def chunks(self, ids: list[int]) -> dict[int, ChunkRecord]:
        """Stored chunks by id."""
        return self.catalog.chunks(ids)

    def document_chunks(self, source: str) -> list[ChunkRecord]:
        """All chunks of one document, in order."""
        return self.catalog.document_chunks(source)

    def stats(self) -> dict[str, Any]:
        """Counts, settings and generation of the index, and where its vectors are."""
        return {**self.catalog.stats(), **self.index.stats_fields()}

    def cached_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors for chunk content hashes, so unchanged text is never embedded twice."""
        return self.index.cached_vectors(hashes)

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Stored vectors by chunk id."""
        return self.index.vectors(ids)

    def warm(self) -> None:
        """Load what searches use now (the vector index, a large index's term counts), not on the first question."""
        if self.catalog.exists():
            self.index.count()
            self.catalog.warm()

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids by inner product (cosine for normalised vectors), best first."""
        return self.index.search(vector, k)

    def keyword_search(self, terms: list[str], k: int, rescore: Sequence[int] = ()) -> list[tuple[int, float]]:
        """The ``k`` best chunk ids for the keyword ``terms``, best first (``rescore``: see the protocol)."""
        return self.catalog.keyword_search(terms, k, rescore)

    def writer(self) -> contextlib.AbstractContextManager[None]:
        """Hold the index's write lock (one writer at a time; others wait up to the lock timeout)."""
        return self.catalog.writer()

    def apply(self, changes: Changes) -> None:
        """Apply ``changes`` atomically: one catalog transaction, the vector index staged in it and
        committed after it, then the manifest."""
        if not changes:
            if read_manifest(self.directory) is None:
                self._write_manifest()  # derived from the catalog: restore it if it was deleted or damaged
            return
        changes = self.index.begin(changes)
        applied = self.catalog.apply(changes, self.index.kind, self.index.held, self.index.stage)
        pause_point("committed")
        try:
            if applied.new != applied.old:
                self._update_vectors(applied)
            pause_point("vectors")
            self._write_manifest()
            pause_point("manifest")
        except OSError as exc:  # committed: the derived files are rebuilt by the next reader or writer
            raise fs.problem(exc, self.directory, committed=True) from None

    def _update_vectors(self, applied: Applied) -> None:
        self.index.commit(applied)

    def _write_manifest(self) -> None:
        self.catalog.write_manifest(self.index.manifest_fields())

    def keep_timestamps(self, records: Iterable[DocumentRecord]) -> None:
        """Set documents' ``added_at``/``updated_at`` from ``records`` (a migration keeps the originals)."""
        self.catalog.keep_timestamps(records)
        self._write_manifest()

    def close(self) -> None:
        """Close the database and the vector engine's connections."""
        self.catalog.close()
        self.index.close()


class FaissStore(IndexStore):
    """The default store: the catalog keeps the vectors (the truth), FAISS files are derived from them."""

    def __init__(self, directory: Path, lock_timeout: float = 600.0) -> None:
        catalog = Catalog(Path(directory), lock_timeout=lock_timeout, keep_vectors=FaissIndex.keeps_vectors)
        self.faiss = FaissIndex(catalog)
        super().__init__(catalog, self.faiss)

    def vector_index(self) -> Any:
        """The FAISS index of the committed generation (a missing or damaged file is rebuilt)."""
        return self.faiss.current()


class MilvusStore(IndexStore):
    """The catalog (without vectors) in the index directory, the vectors in a Milvus collection."""

    def __init__(self, directory: Path, target: StoreURI, lock_timeout: float = 600.0) -> None:
        catalog = Catalog(Path(directory), lock_timeout=lock_timeout, keep_vectors=MilvusIndex.keeps_vectors)
        self.milvus = MilvusIndex(catalog, target)
        self.target = target
        super().__init__(catalog, self.milvus)


def open_store(settings: Settings) -> VectorStore:
    """The store ``settings.vector_store`` names for ``settings.index_dir``: FAISS unless it names Milvus."""
    from .uri import parse_store_uri

    target = parse_store_uri(settings.vector_store)
    if target is None:
        return FaissStore(settings.index_dir, lock_timeout=settings.lock_timeout)
    return MilvusStore(settings.index_dir, target, lock_timeout=settings.lock_timeout)
