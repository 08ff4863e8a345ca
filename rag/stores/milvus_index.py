"""Milvus as the vector index (``RAG_VECTOR_STORE``, see :mod:`rag.stores.uri`).

Where things live:

- **Milvus** (a server or cluster, or Milvus Lite in-process) holds the chunk vectors: one collection
  with an INT64 primary key (the chunk id) and a FLOAT_VECTOR field, searched by inner product on the
  normalised vectors (cosine, as FAISS). The collection's properties record the index configuration
  (model fingerprint, dimension, chunking) and which index owns it (``rag.index``: an id, host, folder).
- **The index directory** keeps the catalog (documents, chunk text and offsets, the keyword index, the
  metadata) without the vectors: reusing the vectors of unchanged chunks reads them from Milvus.

Crash safety (a change): the catalog's commit is the truth, and chunk ids are never reused.

1. A writer first records in the catalog (committed) the id range the change will use, at and above
   the committed ``next_id``; then, inside the catalog transaction that adds the chunks, it upserts their
   vectors into Milvus under those ids, records the ids to delete from Milvus, and commits.
2. After the commit it deletes the removed chunks' vectors and clears that record.

Searches only return ids below the committed ``next_id``, not pending deletion and present in the
catalog, each once, so a crash anywhere leaves readers with the old state or the new one, never a mix;
the next writer deletes the uncommitted vectors of a crashed attempt (ids at or above ``next_id``),
moves ``next_id`` past the range it had recorded (so those ids are never reused, even if a delete
lags), and finishes pending deletes. Milvus Lite writes its WAL to the operating system on every call,
so a killed process loses nothing it acknowledged; on a server, Milvus's own log makes writes durable.

Milvus Lite allows one process per data file; serve it with ``milvus-lite server`` (or use a Milvus
server) when several processes need the same vectors.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import IndexCorruptError, IndexMismatchError
from . import milvus_client
from .catalog import Applied, Catalog
from .milvus_client import loads
from .records import Changes, incompatible_key
from .uri import StoreURI

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


class MilvusIndex:
    """The vectors of a catalog's chunks in a Milvus collection (see the module docstring)."""

    kind = "milvus"
    keeps_vectors = False
    held: int | None = None  # the vectors go to Milvus inside the transaction, so a change keeps them

    def __init__(self, catalog: Catalog, target: StoreURI) -> None:
        self.catalog = catalog
        self.directory = catalog.directory
        self.target = target
        self._client: Any = None
        self._checked = False
        self._client_lock = threading.RLock()

    # ------------------------------------------------------------ connection

    def _connect(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = milvus_client.open_client(self.target)
            return self._client

    def _milvus(self) -> Any:
        """The client, once the collection is checked against this index (model, dimension, owner)."""
        client = self._connect()
        if not self._checked:
            self._check_collection(client)
            self._checked = True
        return client

    def _check_collection(self, client: Any) -> None:
        meta = self.catalog.meta()
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
        owner = loads(properties.get(OWNER_PROPERTY))
        if owner.get("index_id") != recorded.get("index_id"):
            raise IndexMismatchError(
                f"the {where} belongs to another index ({owner.get('host', '?')}:{owner.get('directory', '?')}), "
                f"not to the one at {self.directory}: set RAG_VECTOR_STORE to {recorded.get('location')}, or "
                f"rebuild with 'rag index PATH --index {self.directory} --rebuild'"
            )
        stored = loads(properties.get(CONFIG_PROPERTY))
        config = meta.get("config", {})
        key = incompatible_key(stored, config)
        if key is not None:
            raise IndexMismatchError(
                f"the {where} was built with {key}={stored.get(key)!r} (model {stored.get('embedding_model')}), "
                f"but the index at {self.directory} records {config.get(key)!r}: rebuild with "
                f"'rag index PATH --index {self.directory} --rebuild'"
            )
        if str(client.get_load_state(name).get("state")) != "Loaded":  # e.g. after a restart
            client.load_collection(name)

    def verify(self, config: dict[str, Any]) -> None:
        """Check the collection against the catalog (once per connection)."""
        self._milvus()

    # ------------------------------------------------------------ creating

    def create(self, config: dict[str, Any]) -> dict[str, Any]:
        """Make an empty collection for ``config``; returns what the catalog records of it.

        An existing collection is replaced only when it is empty or was made for this very index
        directory on this host (a rebuild); otherwise it belongs to someone else and is refused.
        """
        client = self._connect()  # first: without pymilvus it says which extra to install
        from pymilvus import DataType, MilvusClient

        name = self.target.collection
        directory = str(self.directory.resolve())
        if client.has_collection(name):
            properties = client.describe_collection(name).get("properties", {})
            owner = loads(properties.get(OWNER_PROPERTY))
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
        self._checked = False
        location = {"location": self.target.display(), "collection": self.target.collection}
        return {"vector_store": self.kind, "milvus": {**location, "index_id": index_id}}

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

    def manifest_fields(self) -> dict[str, Any]:
        """Where the vectors are and how they are indexed."""
        t = self.target
        return {"vector_store": self.kind, "milvus": {"location": t.display(), "index": t.index, "metric": "IP"}}

    def stats_fields(self) -> dict[str, Any]:
        """Where the vectors are."""
        return {"vector_store": self.target.display(), "milvus_index": self.target.index}

    # ------------------------------------------------------------ writing

    def begin(self, changes: Changes) -> Changes:
        """Finish a crashed writer's work, then reserve (committed) the ids this change will use.

        A streamed change is held in memory here: Milvus receives its vectors inside the transaction.
        """
        self._milvus()
        self._recover()
        changes = replace(changes, upserts=list(changes.upserts))
        count = sum(len(chunks) for _, chunks in changes.upserts)
        if count:  # committed before any vector of this change reaches Milvus, with the ids it will use
            first = self._visible()[0]
            self.catalog.set_meta(_STAGING, {"from": first, "to": first + count})
        return changes

    def stage(self, conn: sqlite3.Connection, removed: list[int], added: list[tuple[int, np.ndarray]] | None) -> None:
        """Upsert the added vectors; record the write's timestamp and the ids to delete after the commit."""
        client = self._milvus()
        added = added or []  # never None here: ``held`` is None
        for first in range(0, len(added), BATCH):
            rows = [{"id": int(i), "vector": v} for i, v in added[first : first + BATCH]]
            client.upsert(self.target.collection, rows)
        written = milvus_client.write_timestamp(client, self.target) if added else 0
        if written:  # committed with the chunks: readers wait for these vectors, and for nothing newer
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_READ_TS, json.dumps(written)))
        if removed:
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_PENDING, json.dumps(sorted(removed)))
            )
        conn.execute("DELETE FROM meta WHERE key=?", (_STAGING,))

    def commit(self, applied: Applied) -> None:
        """Delete the removed chunks' vectors, then clear the record of them; a rebuild also records
        its configuration in the collection (checked against the catalog's when the index is opened)."""
        if applied.reset is not None:
            properties = {CONFIG_PROPERTY: json.dumps(applied.reset)}
            self._milvus().alter_collection_properties(self.target.collection, properties=properties)
        if applied.removed:
            self._delete(applied.removed)
            self.catalog.set_meta(_PENDING, None)

    def _recover(self) -> None:
        """Finish what a crashed writer left: pending deletes, and vectors of an uncommitted change."""
        with self.catalog.db() as conn:
            meta = self.catalog.meta(conn)
            top = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM chunks").fetchone()[0]
        if meta.get(_PENDING):
            self._delete([int(i) for i in meta[_PENDING]])
            self.catalog.set_meta(_PENDING, None)
        staging = meta.get(_STAGING)
        if staging:
            next_id = max(int(meta.get("next_id") or 1), int(top))
            self._milvus().delete(self.target.collection, filter=f"id >= {next_id}")
            if isinstance(staging, dict):  # never reuse the ids the crashed change may have written
                self.catalog.set_meta("next_id", max(next_id, int(staging.get("to", next_id))))
            self.catalog.set_meta(_STAGING, None)

    def _delete(self, ids: list[int]) -> None:
        client = self._milvus()
        for first in range(0, len(ids), BATCH):
            client.delete(self.target.collection, ids=[int(i) for i in ids[first : first + BATCH]])

    def drop(self) -> None:
        """Nothing in the directory: the collection is replaced when the index is created again."""

    # ------------------------------------------------------------ reading

    def _visible(self) -> tuple[int, set[int]]:
        """Committed chunk ids are below the first number; the set holds removed ids not yet deleted."""
        with self.catalog.db() as conn:
            rows = dict(
                conn.execute("SELECT key, value FROM meta WHERE key IN ('next_id', ?, ?)", (_PENDING, _READ_TS))
            )
            top = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM chunks").fetchone()[0]
        next_id = max(int(json.loads(rows["next_id"])) if "next_id" in rows else 1, int(top))
        return next_id, set(json.loads(rows[_PENDING])) if _PENDING in rows else set()

    def _consistency(self) -> dict[str, Any]:
        """How a read waits for writes (see :func:`rag.stores.milvus_client.write_timestamp`).

        A Milvus server answers a Strong read only once its time tick has passed the moment of the
        request (about 200 ms on Milvus 2.3). Every write this index relies on is committed in the
        catalog with its Milvus timestamp, so reads ask for exactly that point: they see every committed
        vector, in any process, without waiting. Milvus Lite, and indexes without a recorded
        timestamp, read with the collection's Strong level.
        """
        if self.target.lite:
            return {}
        with self.catalog.db() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key=?", (_READ_TS,)).fetchone()
        if row is None:
            return {}
        return {"consistency_level": "Customized", "guarantee_timestamp": int(json.loads(row[0]))}

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest committed chunk ids by inner product (cosine for normalised vectors), best first."""
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
        # A writer killed mid-change can leave rows that the catalog (the truth) never committed, or a
        # second row under one id: keep committed ids only, each once (its best row).
        committed = self.catalog.committed({chunk_id for chunk_id, _ in hits if chunk_id not in pending})
        out: list[tuple[int, float]] = []
        seen: set[int] = set()
        for chunk_id, score in hits:
            if chunk_id in committed and chunk_id not in seen:
                seen.add(chunk_id)
                out.append((chunk_id, score))
        return out[:k]

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Stored vectors of committed chunks, by id."""
        return self._fetch(sorted(self.catalog.committed(ids)))

    def cached_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors of stored chunks by content hash, read from Milvus (the catalog keeps none)."""
        by_id = self.catalog.first_with_hash(hashes)
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

    def count(self) -> int:
        """Rows in the collection (including any a crashed writer left, until the next writer removes them)."""
        return self._count(self._milvus())

    def _count(self, client: Any) -> int:
        rows = client.query(self.target.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def close(self) -> None:
        """Close the Milvus connection (Milvus Lite frees its file for other processes)."""
        with self._client_lock:
            if self._client is not None:
                client, self._client = self._client, None
                self._checked = False
                milvus_client.close_client(client, self.target)
