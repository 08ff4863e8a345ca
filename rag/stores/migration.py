"""``rag migrate``: copy FAISS indexes (one, or shards built in parallel) into Milvus without re-embedding."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError
from .index_store import FaissStore, MilvusStore
from .records import Changes, DocumentRecord, NewChunk, incompatible_key
from .uri import StoreURI


def migrate(
    sources: Path | list[Path],
    target: StoreURI,
    dest_dir: Path,
    lock_timeout: float = 600.0,
    progress: Callable[[int], None] | None = None,
    batch_chunks: int = 5000,
) -> dict[str, Any]:
    """Copy FAISS indexes into Milvus (``target``) as one index whose SQLite part is at ``dest_dir``.

    Documents, chunk text, offsets and vectors are copied as they are: nothing is embedded. Several
    sources (shards indexed in parallel by several ``rag index`` workers) are merged; they must share
    the model and chunking and not share document names. Sources are left untouched (their write locks
    are held meanwhile, so they cannot change under the copy).
    """
    began = time.perf_counter()
    folders = [Path(p).expanduser() for p in ([sources] if isinstance(sources, str | Path) else sources)]
    dest_dir = Path(dest_dir).expanduser()
    if not folders:
        raise InputError("give at least one index to migrate with --from DIR")
    stores = [FaissStore(folder, lock_timeout=lock_timeout) for folder in folders]
    for folder, store in zip(folders, stores, strict=True):
        if not store.exists():
            raise InputError(f"no index at {folder} to migrate: 'rag index PATH --index {folder}' builds one")
        if dest_dir.resolve() == folder.resolve():
            raise InputError(
                f"--index names the source folder {folder}: give a new folder for the migrated index's documents "
                "and text (the source is left as it is)"
            )
    dest = MilvusStore(dest_dir, target, lock_timeout=lock_timeout)
    if dest.exists():
        raise InputError(f"{dest_dir} already holds an index: give --index a new folder, or remove that one")
    configs = [store.config() for store in stores]  # refuses a source that is not a FAISS index
    for folder, config in zip(folders[1:], configs[1:], strict=True):
        key = incompatible_key(config, configs[0])
        if key is not None:
            raise InputError(
                f"{folder} was built with {key}={config.get(key)!r} but {folders[0]} with "
                f"{configs[0].get(key)!r}: only indexes built with the same settings can be merged"
            )
    owners: dict[str, Path] = {}
    for folder, store in zip(folders, stores, strict=True):
        for record in store.documents():
            if record.source in owners:
                raise InputError(
                    f"'{record.source}' is in both {owners[record.source]} and {folder}: shards must not share files"
                )
            owners[record.source] = folder
    documents = chunks = 0
    try:
        with contextlib.ExitStack() as locks:
            for store in stores:
                locks.enter_context(store.writer())
            locks.enter_context(dest.writer())
            dest.create(configs[0])
            records = []
            batch: list[tuple[DocumentRecord, list[NewChunk]]] = []
            pending, size = Changes(upserts=batch), 0
            for store in stores:
                for record in store.documents():
                    stored = store.document_chunks(record.source)
                    vectors = store.vectors([c.id for c in stored])
                    new = [NewChunk(c.hash, c.start, c.end, c.section, c.text, vectors[c.id], c.layout) for c in stored]
                    batch.append((record, new))
                    records.append(record)
                    size += len(new)
                    if size >= batch_chunks:
                        dest.apply(pending)
                        chunks += size
                        if progress:
                            progress(size)
                        batch = []
                        pending, size = Changes(upserts=batch), 0
            if batch:
                dest.apply(pending)
                chunks += size
                if progress:
                    progress(size)
            documents = len(records)
            dest.keep_timestamps(records)
    finally:
        for store in stores:
            store.close()
        dest.close()
    return {
        "documents": documents,
        "chunks": chunks,
        "from": [str(folder) for folder in folders],
        "to": target.display(),
        "index": str(dest_dir),
        "seconds": round(time.perf_counter() - began, 2),
    }
