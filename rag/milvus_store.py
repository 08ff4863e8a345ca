"""A Milvus vector store behind the same API as the FAISS one (``RAG_VECTOR_STORE``, see :mod:`rag.store_uri`).

Where things live:

- **Milvus** (a server or cluster, or Milvus Lite in-process) holds the chunk vectors: one collection
  with an INT64 primary key (the chunk id) and a FLOAT_VECTOR field, searched by inner product on the
  normalised vectors (cosine, as FAISS). The collection's properties record the index configuration
  (model fingerprint, dimension, chunking) and which index owns it (``rag.index``: an id, host, folder).
- **The index directory** keeps the same SQLite file as a FAISS index, minus the vectors: documents,
  chunk text and offsets, the FTS5 table for BM25, and the metadata. :class:`MilvusStore` reuses all of
  that from :class:`~rag.store.FaissStore` and replaces its vector half.

Crash safety (``apply``): SQLite's commit is the truth, and chunk ids are never reused.

1. A writer first records in SQLite (committed) the id range the change will use, at and above the
   committed ``next_id``; then, inside the SQLite transaction that adds the chunks, it upserts their
   vectors into Milvus under those ids, records the ids to delete from Milvus, and commits.
2. After the commit it deletes the removed chunks' vectors and clears that record.

Searches only return ids below the committed ``next_id``, not pending deletion and present in SQLite,
each once, so a crash anywhere leaves readers with the old state or the new one, never a mix; the next writer
deletes the uncommitted vectors of a crashed attempt (ids at or above ``next_id``), moves ``next_id``
past the range it had recorded (so those ids are never reused, even if a delete lags), and finishes
pending deletes. Milvus Lite writes its WAL to the operating system on every call, so a killed
process loses nothing it acknowledged; on a server, Milvus's own log makes writes durable.

Milvus Lite allows one process per data file; serve it with ``milvus-lite server`` (or use a Milvus
server) when several processes need the same vectors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, IndexCorruptError, IndexLockedError, IndexMismatchError, InputError
from .store import Changes, DocumentRecord, FaissStore, NewChunk
from .store_uri import StoreURI

#: Rows per Milvus insert/get/delete call (keeps each gRPC message well under its 64 MiB limit).
BATCH = 2000
#: Milvus's largest ``limit`` per search.
MAX_LIMIT = 16384
#: Collection property names.
CONFIG_PROPERTY = "rag.config"
OWNER_PROPERTY = "rag.index"

_PENDING = "milvus_pending_deletes"
_STAGING = "milvus_staging"
#: The Milvus timestamp of the last committed vector write (servers): reads are guaranteed to see it.
_READ_TS = "milvus_read_ts"

#: The in-process Milvus Lite server refuses pymilvus's default keepalive pings (every 10 s, even when
#: idle) with GOAWAY "too_many_pings" after a minute of embedding; on a loopback channel they are useless.
_LITE_GRPC = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": False}
_lite_lock = threading.Lock()
_lite_users: dict[str, int] = {}


class MilvusStore(FaissStore):
    """SQLite in the index directory (documents, text, BM25) plus the vectors in a Milvus collection."""

    KIND = "milvus"
    HELD_VECTORS = None  # its vectors go to Milvus inside the transaction, so a change keeps them

    def __init__(self, directory: Path, target: StoreURI, lock_timeout: float = 600.0) -> None:
        super().__init__(directory, lock_timeout=lock_timeout)
        self.target = target
        self._client: Any = None
        self._checked = False
        self._client_lock = threading.RLock()
        self._new_index_id = ""

    # ------------------------------------------------------------ connection

    def _connect_milvus(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = _open_client(self.target)
            return self._client

    def _milvus(self) -> Any:
        """The client, once the collection is checked against this index (model, dimension, owner)."""
        client = self._connect_milvus()
        if not self._checked:
            self._check_collection(client)
            self._checked = True
        return client

    def _check_collection(self, client: Any) -> None:
        with self._db() as conn:
            meta = self._meta(conn)
        recorded = meta.get("milvus") or {}
        name = self.target.collection
        where = f"Milvus collection '{name}' at {self.target.display()}"
        if not client.has_collection(name):
            raise IndexCorruptError(
                f"the index at {self.directory} keeps its vectors in {recorded.get('location', 'Milvus')}, but there "
                f"is no {where}: point RAG_VECTOR_STORE at where they are, or rebuild with "
                f"'rag index PATH --index {self.directory} --rebuild'"
            )
        properties = client.describe_collection(name).get("properties", {})
        owner = _loads(properties.get(OWNER_PROPERTY))
        if owner.get("index_id") != recorded.get("index_id"):
            raise IndexMismatchError(
                f"the {where} belongs to another index ({owner.get('host', '?')}:{owner.get('directory', '?')}), "
                f"not to the one at {self.directory}: set RAG_VECTOR_STORE to {recorded.get('location')}, or "
                f"rebuild with 'rag index PATH --index {self.directory} --rebuild'"
            )
        stored = _loads(properties.get(CONFIG_PROPERTY))
        config = meta.get("config", {})
        for key in ("model_fingerprint", "dimension", "chunk_tokens", "chunk_overlap"):
            if stored.get(key) != config.get(key):
                raise IndexMismatchError(
                    f"the {where} was built with {key}={stored.get(key)!r} (model {stored.get('embedding_model')}), "
                    f"but the index at {self.directory} records {config.get(key)!r}: rebuild with "
                    f"'rag index PATH --index {self.directory} --rebuild'"
                )
        if str(client.get_load_state(name).get("state")) != "Loaded":  # e.g. after a restart
            client.load_collection(name)

    def config(self) -> dict[str, Any]:
        """The configuration recorded in the index, once the collection is checked against it."""
        config = super().config()
        self._milvus()
        return config

    # ------------------------------------------------------------ creating

    def create(self, config: dict[str, Any]) -> None:
        """Make an empty collection and an empty index directory recording ``config``.

        An existing collection is replaced only when it is empty or was made for this very index
        directory on this host (a rebuild); otherwise it belongs to someone else and is refused.
        """
        client = self._connect_milvus()  # first: without pymilvus it says which extra to install
        from pymilvus import DataType, MilvusClient

        name = self.target.collection
        directory = str(self.directory.resolve())
        if client.has_collection(name):
            properties = client.describe_collection(name).get("properties", {})
            owner = _loads(properties.get(OWNER_PROPERTY))
            ours = owner.get("host") == socket.gethostname() and owner.get("directory") == directory
            rows = self._count(client)
            if rows and not ours:
                raise IndexMismatchError(
                    f"the Milvus collection '{name}' at {self.target.display()} already holds {rows} vectors of "
                    f"the index at {owner.get('host', '?')}:{owner.get('directory', '?')}: name another collection "
                    "in RAG_VECTOR_STORE, or drop that one"
                )
            client.drop_collection(name)
        dimension = int(config["dimension"])
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        index = client.prepare_index_params()
        index.add_index("vector", index_type=self.target.index, metric_type="IP", params=self._index_params(dimension))
        index_id = uuid.uuid4().hex
        owner = {"index_id": index_id, "host": socket.gethostname(), "directory": directory, "created_at": time.time()}
        client.create_collection(
            name,
            schema=schema,
            consistency_level="Strong",
            properties={CONFIG_PROPERTY: json.dumps(config), OWNER_PROPERTY: json.dumps(owner)},
        )
        client.create_index(name, index, sync=False)  # an empty collection: nothing to wait for
        client.load_collection(name)
        self._new_index_id = index_id
        try:
            super().create(config)
        finally:
            self._new_index_id = ""
        self._checked = False

    def _store_meta(self) -> dict[str, Any]:
        location = {"location": self.target.display(), "collection": self.target.collection}
        return {"vector_store": self.KIND, "milvus": {**location, "index_id": self._new_index_id}}

    def _index_params(self, dimension: int) -> dict[str, Any]:
        t = self.target
        return {
            "HNSW": {"M": 16, "efConstruction": 200},
            "IVF_FLAT": {"nlist": t.nlist},
            "IVF_SQ8": {"nlist": t.nlist},
            "IVF_PQ": {"nlist": t.nlist, "m": t.pq_m or max(1, dimension // 8), "nbits": 8},
        }.get(t.index, {})

    def _search_params(self, limit: int) -> dict[str, Any]:
        t = self.target
        params: dict[str, Any] = {
            "HNSW": {"ef": max(t.ef, limit)},
            "IVF_FLAT": {"nprobe": t.nprobe},
            "IVF_SQ8": {"nprobe": t.nprobe},
            "IVF_PQ": {"nprobe": t.nprobe},
            "DISKANN": {"search_list": max(t.ef, limit)},
        }.get(t.index, {})
        return {"metric_type": "IP", "params": params}

    def _manifest_fields(self) -> dict[str, Any]:
        t = self.target
        return {"vector_store": self.KIND, "milvus": {"location": t.display(), "index": t.index, "metric": "IP"}}

    def stats(self) -> dict[str, Any]:
        """Counts and settings, with where the vectors are."""
        return {**super().stats(), "vector_store": self.target.display(), "milvus_index": self.target.index}

    # ------------------------------------------------------------ writing

    def apply(self, changes: Changes) -> None:
        """Apply ``changes``: vectors into Milvus inside the SQLite transaction, deletions after it."""
        if not changes:
            super().apply(changes)
            return
        self._milvus()
        self._recover()
        # The id range is reserved before any vector is written, so the change is counted first (a
        # streamed change is held in memory here: Milvus receives its vectors inside the transaction).
        changes = replace(changes, upserts=list(changes.upserts))
        count = sum(len(chunks) for _, chunks in changes.upserts)
        if count:  # committed before any vector of this change reaches Milvus, with the ids it will use
            first = self._visible()[0]
            self._set_meta(_STAGING, {"from": first, "to": first + count})
        super().apply(changes)

    def _stage_vectors(
        self, conn: sqlite3.Connection, removed: list[int], added: list[tuple[int, np.ndarray]] | None
    ) -> None:
        client = self._milvus()
        added = added or []  # never None here: HELD_VECTORS is None for Milvus
        for first in range(0, len(added), BATCH):
            rows = [{"id": int(i), "vector": v} for i, v in added[first : first + BATCH]]
            client.upsert(self.target.collection, rows)
        written = _write_timestamp(client, self.target) if added else 0
        if written:  # committed with the chunks: readers wait for these vectors, and for nothing newer
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_READ_TS, json.dumps(written)))
        if removed:
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_PENDING, json.dumps(sorted(removed)))
            )
        conn.execute("DELETE FROM meta WHERE key=?", (_STAGING,))

    def _update_vectors(
        self, old: int, new: int, removed_ids: list[int], added: list[tuple[int, np.ndarray]] | None
    ) -> None:
        if removed_ids:
            self._delete(removed_ids)
            self._set_meta(_PENDING, None)

    def _recover(self) -> None:
        """Finish what a crashed writer left: pending deletes, and vectors of an uncommitted change."""
        with self._db() as conn:
            meta = self._meta(conn)
            top = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM chunks").fetchone()[0]
        if meta.get(_PENDING):
            self._delete([int(i) for i in meta[_PENDING]])
            self._set_meta(_PENDING, None)
        staging = meta.get(_STAGING)
        if staging:
            next_id = max(int(meta.get("next_id") or 1), int(top))
            self._milvus().delete(self.target.collection, filter=f"id >= {next_id}")
            if isinstance(staging, dict):  # never reuse the ids the crashed change may have written
                self._set_meta("next_id", max(next_id, int(staging.get("to", next_id))))
            self._set_meta(_STAGING, None)

    def _delete(self, ids: list[int]) -> None:
        client = self._milvus()
        for first in range(0, len(ids), BATCH):
            client.delete(self.target.collection, ids=[int(i) for i in ids[first : first + BATCH]])

    def _set_meta(self, key: str, value: Any) -> None:
        with self._db() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key=?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # ------------------------------------------------------------ reading

    def _visible(self) -> tuple[int, set[int]]:
        """Committed chunk ids are below the first number; the set holds removed ids not yet deleted."""
        with self._db() as conn:
            rows = dict(
                conn.execute("SELECT key, value FROM meta WHERE key IN ('next_id', ?, ?)", (_PENDING, _READ_TS))
            )
            top = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM chunks").fetchone()[0]
        next_id = max(int(json.loads(rows["next_id"])) if "next_id" in rows else 1, int(top))
        return next_id, set(json.loads(rows[_PENDING])) if _PENDING in rows else set()

    def _consistency(self) -> dict[str, Any]:
        """How a read waits for writes (see :func:`_write_timestamp`).

        A Milvus server answers a Strong read only once its time tick has passed the moment of the
        request (about 200 ms on Milvus 2.3). Every write this index relies on is committed in SQLite
        with its Milvus timestamp, so reads ask for exactly that point: they see every committed
        vector, in any process, without waiting. Milvus Lite, and indexes without a recorded
        timestamp, read with the collection's Strong level.
        """
        if self.target.lite:
            return {}
        with self._db() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key=?", (_READ_TS,)).fetchone()
        if row is None:
            return {}
        return {"consistency_level": "Customized", "guarantee_timestamp": int(json.loads(row[0]))}

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest chunk ids by inner product (cosine for normalised vectors), best first."""
        next_id, pending = self._visible()
        if next_id <= 1 or k < 1:
            return []
        limit = min(2 * k + len(pending), MAX_LIMIT)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        result = self._milvus().search(
            self.target.collection,
            data=[query],
            anns_field="vector",
            limit=limit,
            filter=f"id < {next_id}",
            output_fields=["id"],
            search_params=self._search_params(limit),
            **self._consistency(),
        )
        hits = [(int(hit["id"]), float(hit["distance"])) for hit in result[0]]
        # A writer killed mid-change can leave rows that SQLite (the truth) never committed, or a second
        # row under one id: keep committed ids only, each once (its best row).
        ids = sorted({chunk_id for chunk_id, _ in hits if chunk_id not in pending})
        committed: set[int] = set()
        if ids:
            marks = ",".join("?" * len(ids))
            with self._db() as conn:
                committed = {row[0] for row in conn.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", ids)}
        out: list[tuple[int, float]] = []
        seen: set[int] = set()
        for chunk_id, score in hits:
            if chunk_id in committed and chunk_id not in seen:
                seen.add(chunk_id)
                out.append((chunk_id, score))
        return out[:k]

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Stored vectors of committed chunks, by id."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._db() as conn:
            rows = conn.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", [int(i) for i in ids])
            committed = [row[0] for row in rows]
        return self._fetch(committed)

    def cached_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors for chunk content hashes, so unchanged text is never embedded twice."""
        wanted = list(set(hashes))
        by_id: dict[int, str] = {}
        with self._db() as conn:
            for first in range(0, len(wanted), 500):
                part = wanted[first : first + 500]
                marks = ",".join("?" * len(part))
                rows = conn.execute(f"SELECT hash, min(id) FROM chunks WHERE hash IN ({marks}) GROUP BY hash", part)
                by_id.update({int(i): digest for digest, i in rows})
        return {by_id[i]: vector for i, vector in self._fetch(list(by_id)).items()}

    def _fetch(self, ids: list[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        client = self._milvus()
        consistency = self._consistency()
        found: dict[int, np.ndarray] = {}
        for first in range(0, len(ids), BATCH):
            part = ids[first : first + BATCH]
            for row in client.get(self.target.collection, ids=part, output_fields=["vector"], **consistency):
                found[int(row["id"])] = np.asarray(row["vector"], dtype=np.float32)
        return found

    def keep_timestamps(self, records: Iterable[Any]) -> None:
        """Set documents' ``added_at``/``updated_at`` from ``records`` (a migration keeps the originals)."""
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "UPDATE documents SET added_at=?, updated_at=? WHERE source=?",
                [(r.added_at, r.updated_at, r.source) for r in records],
            )
            conn.execute("COMMIT")
        self._write_manifest()

    def _count(self, client: Any) -> int:
        rows = client.query(self.target.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def close(self) -> None:
        """Close the database and the Milvus connection (Milvus Lite frees its file for other processes)."""
        super().close()
        with self._client_lock:
            if self._client is not None:
                client, self._client = self._client, None
                self._checked = False
                _close_client(client, self.target)


def _write_timestamp(client: Any, target: StoreURI) -> int:
    """The Milvus timestamp of this process's last write to the collection (0 if unknown, or Milvus Lite).

    pymilvus keeps it for its Session consistency level; it is read from there.
    """
    if target.lite:
        return 0
    try:
        from pymilvus.client import ts_utils

        address = client._get_connection().server_address
        return int(ts_utils.get_collection_ts(target.collection, address, "") or 0)
    except Exception:  # noqa: BLE001 - another pymilvus: reads fall back to Strong consistency
        return 0


def _loads(value: Any) -> dict[str, Any]:
    try:
        data = json.loads(value) if value else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _open_client(target: StoreURI) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise ConfigError(
            f"RAG_VECTOR_STORE={target.display()} needs the Milvus client: pip install 'rag-assistant[milvus]' "
            "(or pip install 'pymilvus[milvus-lite]')"
        ) from None
    if not target.lite:
        try:
            return MilvusClient(uri=target.uri, token=target.token, timeout=30)
        except Exception as exc:  # noqa: BLE001 - any connection failure becomes one actionable line
            raise ConfigError(
                f"cannot reach Milvus at {target.display()} ({type(exc).__name__}: {exc}): start it, or fix "
                "RAG_VECTOR_STORE"
            ) from None
    path = target.uri
    import importlib.util

    if importlib.util.find_spec("milvus_lite") is None:
        raise ConfigError(
            f"RAG_VECTOR_STORE={target.display()} needs Milvus Lite: pip install 'rag-assistant[milvus]' "
            "(or pip install 'pymilvus[milvus-lite]')"
        )
    with _lite_lock:
        if _lite_users.get(path, 0) == 0:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            if _locked_elsewhere(Path(path)):
                raise IndexLockedError(
                    f"the Milvus Lite data at {path} is open in another process (Milvus Lite allows one process per "
                    f"file): stop it, or serve the file with 'milvus-lite server --data-dir {path}' and set "
                    f"RAG_VECTOR_STORE=milvus://127.0.0.1:19530/{target.collection}"
                )
        with _quiet("milvus_lite"):
            try:
                client = MilvusClient(uri=path, grpc_options=_LITE_GRPC)
            except Exception as exc:  # noqa: BLE001
                raise IndexCorruptError(
                    f"Milvus Lite cannot open {path} ({type(exc).__name__}: {exc}): check the folder, or move it "
                    "aside and rebuild the index"
                ) from None
        _lite_users[path] = _lite_users.get(path, 0) + 1
    return client


def _close_client(client: Any, target: StoreURI) -> None:
    with contextlib.suppress(Exception):
        client.close()
    if not target.lite:
        return
    with _lite_lock:
        users = _lite_users.get(target.uri, 0) - 1
        if users > 0:
            _lite_users[target.uri] = users
            return
        _lite_users.pop(target.uri, None)
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(target.uri)


def _locked_elsewhere(path: Path) -> bool:
    """Whether another process holds Milvus Lite's lock on the data folder ``path``."""
    lock = path / "LOCK"
    if not lock.is_file():
        return False
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: Milvus Lite reports it itself
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


# ------------------------------------------------------------ migration


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
        for key in ("model_fingerprint", "dimension", "chunk_tokens", "chunk_overlap"):
            if config.get(key) != configs[0].get(key):
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
