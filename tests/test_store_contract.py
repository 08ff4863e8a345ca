"""The store contract: the same tests, unchanged, against FAISS, Milvus Lite and a real Milvus server.

Most tests write to a store directly with a small deterministic fake embedding (16-d vectors derived
from the text's hash), so they are fast and their expected results are computed exactly. A store is
done when it passes: add, update, delete, search order and scores, persistence across processes,
mismatch refusal, and crash safety (a writer killed mid-change leaves the old or the new state, never
a mix). The last tests go through the real Assistant and the real model on the seed corpus.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import Assistant, ConfigError, IndexLockedError, IndexMismatchError, InputError, Settings
from rag.stores import Changes, DocumentRecord, NewChunk, VectorStore, open_store

from .conftest import ROOT, SEED_QUESTION, SEEDS
from .milvus_server import ENV, milvus_server  # noqa: F401 - the session fixture

STORES = ["faiss", "milvus-lite", "milvus-server"]
DIM = 16
CONFIG = {
    "embedding_model": "fake-hash-16",
    "model_fingerprint": "fake0000",
    "dimension": DIM,
    "max_tokens": 256,
    "chunk_tokens": 200,
    "chunk_overlap": 40,
}


# ------------------------------------------------------------ helpers (also used by the subprocesses)


def fake_vector(text: str) -> np.ndarray:
    """A normalised vector that depends only on ``text`` (the same in every process)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def settings_for(kind: str, base: Path) -> Settings:
    return Settings(index_dir=base / "index", vector_store=store_for(kind, base))


def store_for(kind: str, base: Path) -> str:
    """The ``vector_store`` value of a store of this kind for the test folder ``base``."""
    if kind == "faiss":
        return ""
    if kind == "milvus-lite":
        return f"milvus-lite://{base}/vectors.db"
    # One collection per test folder on the session's server (its address is in the environment).
    return f"{os.environ[ENV]}/t_{hashlib.sha256(str(base).encode()).hexdigest()[:16]}"


def document(source: str, texts: list[str], digest: str = "") -> tuple[DocumentRecord, list[NewChunk]]:
    record = DocumentRecord(
        source, f"/corpus/{source}", "/corpus", digest or f"d-{source}-{len(texts)}", 10, 1, "txt", "utf-8", 0, 0.0, 0.0
    )
    chunks, offset = [], 0
    for text in texts:
        chunks.append(
            NewChunk(
                hashlib.sha256(text.encode()).hexdigest()[:32], offset, offset + len(text), "", text, fake_vector(text)
            )
        )
        offset += len(text) + 1
    return record, chunks


def corpus(name: str, n: int) -> list[str]:
    return [f"{name} passage {i} about topic{i % 7} and subject{i % 3}" for i in range(n)]


def state_of(store: VectorStore) -> dict[str, list[str]]:
    """The committed documents and their chunk texts, in order."""
    return {d.source: [c.text for c in store.document_chunks(d.source)] for d in store.documents()}


def check_consistent(store: VectorStore) -> dict[str, list[str]]:
    """Every committed chunk is searchable with its own vector, and nothing else is: no mix."""
    state = state_of(store)
    records = {c.id: c for source in state for c in store.document_chunks(source)}
    query = fake_vector("probe")
    hits = store.search(query, len(records) + 50)
    assert sorted(i for i, _ in hits) == sorted(records), "search must return exactly the committed chunks"
    for chunk_id, score in hits:
        assert score == pytest.approx(float(fake_vector(records[chunk_id].text) @ query), abs=1e-5)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert {d.source: d.chunks for d in store.documents()} == {s: len(t) for s, t in state.items()}
    return state


SNAPSHOT = """
import json, sys
from pathlib import Path
from rag.stores import open_store
from tests.test_store_contract import settings_for, snapshot
store = open_store(settings_for(sys.argv[1], Path(sys.argv[2])))
print(json.dumps(snapshot(store)))
store.close()
"""


def snapshot(store: VectorStore) -> dict[str, Any]:
    """What a reader sees, by text (ids may differ between stores but not between processes)."""
    state = check_consistent(store)
    texts = {c.id: c.text for source in state for c in store.document_chunks(source)}
    probes = ["alpha passage 1", "beta passage 4", "probe"]
    return {
        "state": state,
        "config": store.config(),
        "search": {p: [[texts[i], round(s, 5)] for i, s in store.search(fake_vector(p), 5)] for p in probes},
        "keyword": [texts[i] for i, _ in store.keyword_search(["topic3", "subject1"], 5)],
        "documents": [[d.source, d.digest, d.chunks] for d in store.documents()],
    }


def python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout, check=False
    )


# ------------------------------------------------------------ fixtures


@pytest.fixture(params=STORES)
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "milvus-server":
        request.getfixturevalue("milvus_server")  # started once, on first use
    return str(request.param)


@pytest.fixture()
def stores(kind: str, tmp_path: Path):
    """``open()`` a store of this kind over tmp_path (closed at the end); ``open(create=True)`` makes it."""
    opened: list[VectorStore] = []

    def open_(create: bool = False) -> VectorStore:
        store = open_store(settings_for(kind, tmp_path))
        opened.append(store)
        if create:
            store.create(dict(CONFIG))
        return store

    yield open_
    for store in opened:
        store.close()


def apply(store: VectorStore, changes: Changes) -> None:
    with store.writer():
        store.apply(changes)


# ------------------------------------------------------------ add, update, delete, search


def test_add_then_read_back(stores) -> None:
    store = stores(create=True)
    assert store.exists() and store.documents() == [] and store.search(fake_vector("x"), 5) == []
    a, b = document("a.txt", corpus("alpha", 3)), document("b.txt", corpus("beta", 2))
    apply(store, Changes(upserts=[a, b]))
    assert [d.source for d in store.documents()] == ["a.txt", "b.txt"]
    assert [d.chunks for d in store.documents()] == [3, 2]
    chunks = store.document_chunks("a.txt")
    assert [(c.text, c.start, c.end, c.ord) for c in chunks] == [
        (n.text, n.start, n.end, i) for i, n in enumerate(a[1])
    ]
    ids = [c.id for c in chunks]
    assert {i: r.text for i, r in store.chunks([*ids, 10**9]).items()} == dict(
        zip(ids, corpus("alpha", 3), strict=True)
    )
    vectors = store.vectors([*ids, 10**9])
    assert sorted(vectors) == sorted(ids)
    for chunk in chunks:
        np.testing.assert_allclose(vectors[chunk.id], fake_vector(chunk.text), atol=1e-6)
    cached = store.cached_vectors([a[1][0].hash, "unknown-hash"])
    assert list(cached) == [a[1][0].hash]
    np.testing.assert_allclose(cached[a[1][0].hash], a[1][0].vector, atol=1e-6)
    stats = store.stats()
    assert (stats["documents"], stats["chunks"], stats["dimension"]) == (2, 5, DIM)
    assert store.generation() == 1
    assert store.config()["model_fingerprint"] == CONFIG["model_fingerprint"]
    check_consistent(store)


def test_search_is_exact_cosine_best_first(stores) -> None:
    store = stores(create=True)
    texts = corpus("gamma", 60)
    apply(store, Changes(upserts=[document("g.txt", texts)]))
    ids = {c.text: c.id for c in store.document_chunks("g.txt")}
    matrix = np.stack([fake_vector(t) for t in texts])
    for probe in ("q1", "q2", texts[7], "q3"):
        query = fake_vector(probe)
        scores = matrix @ query
        order = np.argsort(-scores)[:10]
        hits = store.search(query, 10)
        assert [i for i, _ in hits] == [ids[texts[j]] for j in order]
        np.testing.assert_allclose([s for _, s in hits], scores[order], atol=1e-5)
    assert store.search(fake_vector(texts[7]), 1)[0] == (ids[texts[7]], pytest.approx(1.0, abs=1e-5))
    assert len(store.search(fake_vector("q"), 500)) == 60


def test_keyword_search_ranks_matching_chunks(stores) -> None:
    store = stores(create=True)
    apply(store, Changes(upserts=[document("k.txt", ["zebras graze at dawn", "lions sleep", "zebras and zebras"])]))
    texts = {c.id: c.text for c in store.document_chunks("k.txt")}
    hits = store.keyword_search(["zebras"], 5)
    assert [texts[i] for i, _ in hits] == ["zebras and zebras", "zebras graze at dawn"]
    assert store.keyword_search(["unicorn"], 5) == []


def test_update_replaces_a_document_and_never_reuses_ids(stores) -> None:
    store = stores(create=True)
    apply(store, Changes(upserts=[document("a.txt", corpus("alpha", 4)), document("b.txt", corpus("beta", 3))]))
    old_a = [c.id for c in store.document_chunks("a.txt")]
    b_ids = [c.id for c in store.document_chunks("b.txt")]
    apply(store, Changes(upserts=[document("b.txt", ["beta rewritten 1", "beta rewritten 2"])]))
    apply(store, Changes(upserts=[document("a.txt", ["alpha new"], digest="new")]))
    new_a = [c.id for c in store.document_chunks("a.txt")]
    assert min(new_a) > max(old_a + b_ids), "chunk ids are never reused"
    assert store.chunks(old_a) == {} and store.vectors(old_a) == {}
    assert state_of(store) == {"a.txt": ["alpha new"], "b.txt": ["beta rewritten 1", "beta rewritten 2"]}
    assert store.documents()[0].digest == "new"
    hits = store.search(fake_vector("alpha passage 1"), 10)
    assert not set(old_a) & {i for i, _ in hits}
    assert store.search(fake_vector("alpha new"), 1)[0][0] == new_a[0]
    check_consistent(store)


def test_delete_by_source_and_content_hash(stores) -> None:
    store = stores(create=True)
    a, b = document("a.txt", corpus("alpha", 3)), document("b.txt", corpus("beta", 3))
    apply(store, Changes(upserts=[a, b]))
    gone = [c.id for c in store.document_chunks("a.txt")]
    apply(store, Changes(removals=["a.txt"]))
    assert [d.source for d in store.documents()] == ["b.txt"]
    assert store.document_chunks("a.txt") == [] and store.chunks(gone) == {} and store.vectors(gone) == {}
    assert store.cached_vectors([c.hash for c in a[1]]) == {}
    assert set(store.cached_vectors([c.hash for c in b[1]])) == {c.hash for c in b[1]}
    assert not {i for i, _ in store.search(fake_vector("alpha passage 0"), 50)} & set(gone)
    assert not {i for i, _ in store.keyword_search(["alpha"], 50)} & set(gone)
    check_consistent(store)


def test_touch_changes_no_vectors(stores) -> None:
    store = stores(create=True)
    record, chunks = document("a.txt", corpus("alpha", 2))
    apply(store, Changes(upserts=[(record, chunks)]))
    generation = store.generation()
    moved = dataclasses.replace(record, path="/elsewhere/a.txt", mtime_ns=99)
    apply(store, Changes(touches=[moved]))
    assert store.generation() == generation
    assert store.documents()[0].path == "/elsewhere/a.txt"
    check_consistent(store)


# ------------------------------------------------------------ persistence, mismatch


def test_persistence_across_processes(stores, kind: str, tmp_path: Path) -> None:
    store = stores(create=True)
    apply(store, Changes(upserts=[document("a.txt", corpus("alpha", 5)), document("b.txt", corpus("beta", 6))]))
    apply(store, Changes(removals=["a.txt"], upserts=[document("c.txt", corpus("gamma", 2))]))
    here = snapshot(store)
    store.close()  # Milvus Lite: one process per file
    result = python(SNAPSHOT, kind, str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(json.dumps(here))
    # A change made by another process is seen here.
    change = (
        "import sys; from pathlib import Path; from rag.stores import open_store, Changes\n"
        "from tests.test_store_contract import settings_for\n"
        "s = open_store(settings_for(sys.argv[1], Path(sys.argv[2])))\n"
        "with s.writer(): s.apply(Changes(removals=['b.txt']))\n"
        "s.close()\n"
    )
    assert python(change, kind, str(tmp_path)).returncode == 0
    assert list(state_of(stores())) == ["c.txt"]


def test_opening_with_the_other_store_is_refused(stores, kind: str, tmp_path: Path) -> None:
    store = stores(create=True)
    apply(store, Changes(upserts=[document("a.txt", corpus("alpha", 2))]))
    store.close()
    other = "milvus-lite" if kind == "faiss" else "faiss"
    wrong = open_store(settings_for(other, tmp_path))
    try:
        where = {"faiss": "rag migrate", "milvus-lite": "vectors.db", "milvus-server": r"milvus://127\.0\.0\.1:\d+/t_"}
        with pytest.raises(IndexMismatchError, match=where[kind]):
            wrong.config()
    finally:
        wrong.close()


def test_config_is_recorded_for_the_assistant_to_check(stores, kind: str, tmp_path: Path) -> None:
    """The Assistant refuses an index whose recorded model or chunking differs (see test_assistant for FAISS)."""
    store = stores(create=True)
    store.close()
    reopened = stores()
    assert {k: reopened.config()[k] for k in CONFIG} == CONFIG
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["model_fingerprint"] == CONFIG["model_fingerprint"]
    assert manifest["vector_store"] == ("faiss" if kind == "faiss" else "milvus")


# ------------------------------------------------------------ crash safety

CRASH = """
import os, signal, sys
from pathlib import Path
pause = {k: v for k, v in os.environ.items() if k.startswith("RAG_TEST_")}  # tests.conftest clears RAG_*
from rag.stores import Changes, open_store
from tests.test_store_contract import corpus, document, settings_for
os.environ.update(pause)

kind, base, point = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
store = open_store(settings_for(kind, base))
store.config()

class KillAtCommit:
    def __init__(self, conn):
        self.conn = conn
    def execute(self, sql, *args):
        if sql == "COMMIT":
            os.kill(os.getpid(), signal.SIGKILL)
        return self.conn.execute(sql, *args)
    def __getattr__(self, name):
        return getattr(self.conn, name)

if point == "before-commit":
    store.catalog._conn = KillAtCommit(store.catalog._connect())
elif point == "after-commit":
    store._update_vectors = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
changes = Changes(
    removals=["b.txt"],
    upserts=[document("a.txt", corpus("alpha2", 40)), document("c.txt", corpus("gamma", 1500))],
)
print("ready", flush=True)
with store.writer():
    store.apply(changes)
print("done", flush=True)
"""

OLD = {"a.txt": corpus("alpha", 30), "b.txt": corpus("beta", 30)}
NEW = {"a.txt": corpus("alpha2", 40), "c.txt": corpus("gamma", 1500)}


def _crash(kind: str, base: Path, point: str) -> str:
    """Run CRASH killed at ``point``: "before-commit", "after-commit", or a step of the write where it pauses
    (rag/stores/pause.py) and is killed while it waits. Returns the step it was killed at."""
    flag = base / "paused"
    patched = point in ("before-commit", "after-commit")  # CRASH kills itself there
    env = None if patched else {**os.environ, "RAG_TEST_PAUSE": point, "RAG_TEST_PAUSE_FILE": str(flag)}
    process = subprocess.Popen(
        [sys.executable, "-c", CRASH, kind, str(base), point],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    landed = point
    if not patched:
        deadline = time.monotonic() + 300  # a hang guard
        while not flag.is_file():
            assert process.poll() is None, f"the writer ended (status {process.returncode}) before step {point!r}"
            assert time.monotonic() < deadline, f"the writer did not reach step {point!r} in 300 s"
            time.sleep(0.02)
        landed = flag.read_text()
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=120)
    assert process.stderr is not None
    assert process.returncode == -signal.SIGKILL, (point, process.returncode, process.stderr.read())
    return landed


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ("before-commit", "old"),  # at the catalog's COMMIT, after the vector engine staged its part
        ("after-commit", "new"),  # instead of updating the vector index
        ("chunks", "old"),  # every chunk written in the transaction, the vector engine not yet staged
        ("committed", "new"),  # committed, the derived vector files not yet written
        ("vectors", "new"),  # vector index updated, the manifest still the old one
        ("replace manifest.json", "new"),  # the new manifest written beside the old one, not in place
        ("manifest", "new"),  # everything written, the write lock still held
    ],
)
def test_a_writer_killed_mid_change_leaves_old_or_new(
    stores, kind: str, tmp_path: Path, point: str, expected: str
) -> None:
    store = stores(create=True)
    apply(store, Changes(upserts=[document(s, t) for s, t in OLD.items()]))
    store.close()
    assert _crash(kind, tmp_path, point) == point  # killed, and where it was told to stop
    reopened = stores()
    state = check_consistent(reopened)
    assert state == (OLD if expected == "old" else NEW)
    # The next writer recovers (uncommitted vectors dropped, pending deletes done) and carries on.
    apply(reopened, Changes(upserts=[document("d.txt", corpus("delta", 3))]))
    after = check_consistent(reopened)
    assert after == {**state, "d.txt": corpus("delta", 3)}
    if kind != "faiss" and point == "before-commit":  # ids the crashed change wrote are never reused
        crashed = sum(len(t) for t in OLD.values()) + sum(len(t) for t in NEW.values())
        assert min(c.id for c in reopened.document_chunks("d.txt")) > crashed
    assert len(reopened.search(fake_vector("x"), 5000)) == sum(len(t) for t in after.values())


# ------------------------------------------------------------ settings and the factory


def test_vector_store_setting_is_validated() -> None:
    assert Settings().vector_store == ""
    assert Settings.from_env({"RAG_VECTOR_STORE": "milvus://db.example:19531/docs"}).vector_store.endswith("/docs")
    for bad in (
        "milvus.db",
        "milvus-lite:///tmp/x.sqlite",
        "milvus://host:19530",
        "milvus://host:19530/bad-name",
        "redis://host/x",
        "milvus-lite:///tmp/x.db?index=IVF_PQ",
        "milvus://host/c?nprobe=0",
        "milvus://host/c?colour=red",
    ):
        with pytest.raises(ConfigError, match=bad.split("?")[0].replace(".", r"\.")):
            Settings(vector_store=bad)
    with pytest.raises(ConfigError, match="RAG_VECTOR_STORE"):
        Settings.from_env({"RAG_VECTOR_STORE": "sqlite:///x"})


def test_factory_and_light_import(tmp_path: Path) -> None:
    from rag.stores import FaissStore, MilvusStore

    assert type(open_store(Settings(index_dir=tmp_path))) is FaissStore
    store = open_store(Settings(index_dir=tmp_path, vector_store=f"milvus-lite://{tmp_path}/v.db?collection=c1"))
    assert isinstance(store, MilvusStore) and store.target.collection == "c1"
    code = (
        "import sys, rag; a = rag.Assistant(index_dir='/tmp/none', vector_store='milvus-lite:///tmp/none.db'); "
        "heavy = ('pymilvus', 'milvus_lite', 'torch', 'faiss'); "
        "print(type(a.store).__name__, sorted(m for m in heavy if m in sys.modules))"
    )
    assert python(code).stdout.split() == ["MilvusStore", "[]"]


# ------------------------------------------------------------ Milvus specifics


def _milvus(tmp_path: Path) -> Any:
    return open_store(settings_for("milvus-lite", tmp_path))


def test_milvus_collection_of_another_index_is_refused(tmp_path: Path) -> None:
    first = _milvus(tmp_path / "one")
    first.create(dict(CONFIG))
    apply(first, Changes(upserts=[document("a.txt", corpus("alpha", 2))]))
    first.close()
    # A second index directory pointed at the same collection may not take it over.
    shared = f"milvus-lite://{tmp_path}/one/vectors.db"
    second = open_store(Settings(index_dir=tmp_path / "two", vector_store=shared))
    try:
        with pytest.raises(IndexMismatchError, match="already holds 2 vectors"):
            second.create(dict(CONFIG))
    finally:
        second.close()


def test_milvus_collection_config_is_checked(tmp_path: Path) -> None:
    from pymilvus import MilvusClient

    store = _milvus(tmp_path)
    store.create(dict(CONFIG))
    store.close()
    client = MilvusClient(str(tmp_path / "vectors.db"))
    tampered = {**CONFIG, "model_fingerprint": "someone-else", "embedding_model": "other/model"}
    client.alter_collection_properties("rag_chunks", properties={"rag.config": json.dumps(tampered)})
    client.close()
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(tmp_path / "vectors.db"))
    reopened = _milvus(tmp_path)
    try:
        with pytest.raises(IndexMismatchError, match=r"model_fingerprint='someone-else'.*other/model"):
            reopened.config()
    finally:
        reopened.close()


def test_milvus_lite_held_by_another_process_is_reported(tmp_path: Path) -> None:
    store = _milvus(tmp_path)
    store.create(dict(CONFIG))
    store.close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from tests.test_store_contract import settings_for; "
            "from rag.stores import open_store; s = open_store(settings_for('milvus-lite', Path(sys.argv[1]))); "
            "s.config(); print('open', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        blocked = _milvus(tmp_path)
        with pytest.raises(IndexLockedError, match=r"another process.*milvus-lite server"):
            blocked.config()
        blocked.close()
    finally:
        holder.kill()
        holder.wait()


def test_milvus_server_reads_at_the_committed_write_timestamp(milvus_server, tmp_path: Path) -> None:  # noqa: F811
    """A server read waits for the last committed write, not for its next time tick (Strong: ~200 ms)."""
    writer = open_store(settings_for("milvus-server", tmp_path))
    reader = open_store(settings_for("milvus-server", tmp_path))  # another client, as another process would be
    try:
        writer.create(dict(CONFIG))
        assert writer.milvus._consistency() == {}  # nothing written yet: the collection's Strong level
        apply(writer, Changes(upserts=[document("a.txt", corpus("alpha", 3))]))
        first = reader.milvus._consistency()
        assert first["consistency_level"] == "Customized" and first["guarantee_timestamp"] > 0
        apply(writer, Changes(upserts=[document("b.txt", ["a brand new passage"])]))
        assert reader.milvus._consistency()["guarantee_timestamp"] > first["guarantee_timestamp"]
        new_id = reader.document_chunks("b.txt")[0].id
        assert reader.search(fake_vector("a brand new passage"), 1)[0][0] == new_id
        check_consistent(reader)
    finally:
        writer.close()
        reader.close()


def test_migrate_merges_shards_indexed_in_parallel(tmp_path: Path) -> None:
    from rag.stores import migrate, parse_store_uri

    shards = {"one": {"a.txt": corpus("alpha", 4)}, "two": {"b.txt": corpus("beta", 3), "c.txt": corpus("gamma", 2)}}
    for name, documents in shards.items():
        store = open_store(settings_for("faiss", tmp_path / name))
        store.create(dict(CONFIG))
        apply(store, Changes(upserts=[document(s, t) for s, t in documents.items()]))
        store.close()
    target = parse_store_uri(f"milvus-lite://{tmp_path}/merged.db")
    assert target is not None
    report = migrate([tmp_path / "one" / "index", tmp_path / "two" / "index"], target, tmp_path / "merged")
    assert (report["documents"], report["chunks"]) == (3, 9)
    merged = open_store(Settings(index_dir=tmp_path / "merged", vector_store=f"milvus-lite://{tmp_path}/merged.db"))
    try:
        assert check_consistent(merged) == {**shards["one"], **shards["two"]}
    finally:
        merged.close()
    # Shards must not share files, and must share the model and chunking.
    with pytest.raises(InputError, match="shards must not share files"):
        migrate([tmp_path / "one" / "index", tmp_path / "one" / "index"], target, tmp_path / "again")
    other = open_store(settings_for("faiss", tmp_path / "three"))
    other.create({**CONFIG, "chunk_tokens": 120})
    other.close()
    with pytest.raises(InputError, match="chunk_tokens=120"):
        migrate([tmp_path / "one" / "index", tmp_path / "three" / "index"], target, tmp_path / "again")


# ------------------------------------------------------------ the real Assistant and model, per store


def test_assistant_answers_the_same_on_every_store(kind: str, tmp_path: Path, seed_assistant: Assistant) -> None:
    corpus_dir = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus_dir)
    settings = settings_for(kind, tmp_path)
    assistant = Assistant(settings=settings)
    report = assistant.index([corpus_dir])
    assert report.failed == [] and report.chunks_embedded == report.chunks_total > 0
    answer = assistant.ask(SEED_QUESTION)
    expected = seed_assistant.ask(SEED_QUESTION)
    assert answer.answered and "Trump" in answer.text
    assert answer.text == expected.text
    assert [(c.source, c.start, c.end) for c in answer.citations] == [
        (c.source, c.start, c.end) for c in expected.citations
    ]
    assert [(p.source, p.start, p.end) for p in answer.passages] == [
        (p.source, p.start, p.end) for p in expected.passages
    ]
    for got, want in zip(answer.passages, expected.passages, strict=True):
        assert got.score == pytest.approx(want.score, abs=2e-3)  # re-embedded: bf16 noise
    text = next(corpus_dir.glob("*.txt")).read_text(encoding="utf-8")
    assert all(text[c.start : c.end] == c.text for c in answer.citations)

    # Incremental: nothing to embed again; a changed file embeds only its new text; removal works.
    assert assistant.index([corpus_dir]).chunks_embedded == 0
    seed_file = next(corpus_dir.glob("*.txt"))
    seed_file.write_text(text + "\n\nThe delegation also toured a shipyard in Yokosuka.\n", encoding="utf-8")
    edited = assistant.index([corpus_dir])
    assert edited.updated == [seed_file.name] and 1 <= edited.chunks_embedded < edited.chunks_total
    assert "Yokosuka" in assistant.ask("Which shipyard did the delegation tour?").passages[0].text
    assert assistant.remove(seed_file.name) and assistant.sources() == []
    assistant.store.close()

    # Another chunking is refused with the rebuild command; --rebuild replaces the index.
    other = Assistant(settings=settings, chunk_tokens=120)
    with pytest.raises(IndexMismatchError, match=r"chunk_tokens.*--rebuild"):
        other.ask("anything?")
    rebuilt = other.index([corpus_dir], rebuild=True)
    assert rebuilt.added == [seed_file.name] and other.stats()["chunk_tokens"] == 120
    assert other.ask(SEED_QUESTION).answered
    other.store.close()


def test_migrate_copies_vectors_without_embedding(
    seed_index: Path, seed_assistant: Assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from rag.cli import main
    from rag.embedding import Embedder

    def no_embedding(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("migrate must not embed")

    monkeypatch.setattr(Embedder, "encode", no_embedding)
    uri = f"milvus-lite://{tmp_path}/migrated.db"
    dest = tmp_path / "migrated"
    assert main(["migrate", "--from", str(seed_index), "--to", uri, "--index", str(dest), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    source_docs = seed_assistant.sources()
    assert report["documents"] == len(source_docs) and report["chunks"] == sum(d.chunks for d in source_docs)
    assert report["from"] == [str(seed_index)]
    monkeypatch.undo()

    migrated = Assistant(index_dir=dest, vector_store=uri)
    assert migrated.sources() == source_docs  # records copied as they were, timestamps included
    source_chunks = seed_assistant.store.document_chunks(source_docs[0].source)
    copied = migrated.store.document_chunks(source_docs[0].source)
    assert [(c.hash, c.start, c.end, c.text) for c in copied] == [
        (c.hash, c.start, c.end, c.text) for c in source_chunks
    ]
    before = seed_assistant.store.vectors([c.id for c in source_chunks])
    after = migrated.store.vectors([c.id for c in copied])
    for old, new in zip(source_chunks, copied, strict=True):
        np.testing.assert_array_equal(before[old.id], after[new.id])
    answer, expected = migrated.ask(SEED_QUESTION), seed_assistant.ask(SEED_QUESTION)
    assert answer.text == expected.text
    assert [(c.source, c.start, c.end) for c in answer.citations] == [
        (c.source, c.start, c.end) for c in expected.citations
    ]
    migrated.store.close()

    # The destination must be a new folder; the source is untouched and still FAISS.
    assert main(["migrate", "--from", str(seed_index), "--to", uri, "--index", str(dest)]) == 1
    assert "already holds an index" in capsys.readouterr().err
    assert main(["migrate", "--from", str(seed_index), "--to", uri, "--index", str(seed_index)]) == 1
    assert "source folder" in capsys.readouterr().err
    assert main(["migrate", "--from", str(seed_index), "--to", "faiss", "--index", str(tmp_path / "x")]) == 1
    assert "--to must name a Milvus store" in capsys.readouterr().err
    assert json.loads((seed_index / "manifest.json").read_text())["vector_store"] == "faiss"
