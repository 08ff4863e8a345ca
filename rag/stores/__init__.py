"""Storage: an index is a directory holding a catalog, plus a vector index (FAISS files or Milvus).

Layout of a FAISS index directory::

    manifest.json               model, dimension, chunking settings, library versions, counts (JSON)
    store.sqlite                the catalog: documents, chunks (text, offsets, section, vector), keyword
                                index, metadata; WAL journal
    vectors-<generation>.faiss  FAISS index of the chunk vectors for that committed generation (+ .sha256)
    .lock                       held by the one process that writes

Modules, bottom up: :mod:`.records` (what is stored and changed), :mod:`.fs` (atomic writes, lock,
errors), :mod:`.fulltext` (the keyword index), :mod:`.sqlite_file`, :mod:`.manifest` and
:mod:`.catalog` (the SQLite half), :mod:`.vector_index` (the protocol) with :mod:`.faiss_index`
(+ :mod:`.faiss_build`) and :mod:`.milvus_index` (+ :mod:`.milvus_client`), :mod:`.index_store`
(the two composed; ``open_store``), :mod:`.migration`, :mod:`.uri` (the ``RAG_VECTOR_STORE`` setting).
Nothing is ever pickled. Importing this package is
light: the modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .index_store import FaissStore, IndexStore, MilvusStore, open_store
    from .manifest import MANIFEST, read_manifest
    from .migration import migrate
    from .records import Changes, ChunkRecord, DocumentRecord, NewChunk, VectorStore
    from .sqlite_file import DATABASE
    from .uri import StoreURI, parse_store_uri

_LAZY = {
    "DATABASE": "sqlite_file",
    "MANIFEST": "manifest",
    "read_manifest": "manifest",
    "FaissStore": "index_store",
    "IndexStore": "index_store",
    "MilvusStore": "index_store",
    "open_store": "index_store",
    "migrate": "migration",
    "Changes": "records",
    "ChunkRecord": "records",
    "DocumentRecord": "records",
    "NewChunk": "records",
    "VectorStore": "records",
    "StoreURI": "uri",
    "parse_store_uri": "uri",
}
__all__ = [
    "DATABASE",
    "MANIFEST",
    "Changes",
    "ChunkRecord",
    "DocumentRecord",
    "FaissStore",
    "IndexStore",
    "MilvusStore",
    "NewChunk",
    "StoreURI",
    "VectorStore",
    "migrate",
    "open_store",
    "parse_store_uri",
    "read_manifest",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
