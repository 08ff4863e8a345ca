"""Crash safety: a writer killed at any moment leaves the last committed state, readable as it is.

Two kinds of test. ``test_sigkill_during_rag_index`` kills real ``rag index`` processes on squad-dev's
documents at random moments spread over a whole run (timed first); after each kill the index must
hold the old state or the new one, never a mix, answer a question, and the next index run must
finish with the same chunks as an uninterrupted run. Random kills rarely land in the few
milliseconds of writing, so ``test_kill_at_each_write_step`` kills a writer at each step of a
commit in turn (inside the SQLite transaction, before and while the FAISS file and the manifest are
written, while creating and while dropping an index).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant
from rag.stores import DATABASE, Changes, DocumentRecord, FaissStore, NewChunk

from .conftest import SQUAD, needs_squad

RAG = [sys.executable, "-m", "rag.cli"]
SQUAD_DOCS = SQUAD / "docs"
#: Eight of its 24 articles (the shorter ones: the test is about timing, not about size).
SQUAD_ARTICLES = [
    "amazon-rainforest",
    "black-death",
    "civil-disobedience",
    "huguenot",
    "normans",
    "oxygen",
    "pharmacy",
    "prime-number",
]

#: Kills wanted, and the time strata they are drawn from (a run that ends before its kill is redrawn).
KILLS = int(os.environ.get("CRASH_KILLS", "20"))
STRATA = KILLS + 1


def leftovers(index: Path) -> list[str]:
    """Temporary files a writer left in an index directory."""
    return sorted(p.name for p in index.iterdir() if ".tmp" in p.name)


def chunk_layout(assistant: Assistant) -> list[tuple[str, int, int]]:
    """Every stored chunk as (source, start, end): equal layouts mean equal indexes."""
    return sorted(
        (c.source, c.start, c.end) for d in assistant.sources() for c in assistant.store.document_chunks(d.source)
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)
@needs_squad
def test_sigkill_during_rag_index(tmp_path: Path) -> None:
    seed = int(os.environ.get("CRASH_SEED", str(time.time_ns() % 2**32)))
    rng = random.Random(seed)
    names = [f"{name}.txt" for name in SQUAD_ARTICLES]
    added_later, edited = "amazon-rainforest.txt", "huguenot.txt"
    corpus = tmp_path / "docs"
    corpus.mkdir()

    # The old state: one article missing, one extra note, one article before an edit.
    for name in names:
        if name != added_later:
            shutil.copy(SQUAD_DOCS / name, corpus / name)
    (corpus / "retired-notes.txt").write_text(
        "The Quillon Observatory closed in 1987 after its mirror cracked in a storm.\n", encoding="utf-8"
    )
    template = tmp_path / "template"
    builder = Assistant(index_dir=template)
    builder.index([corpus])
    old_docs = {d.source for d in builder.sources()}
    old_chunks = builder.stats()["chunks"]
    builder.store.close()

    # The new state the killed runs are heading for.
    shutil.copy(SQUAD_DOCS / added_later, corpus / added_later)
    (corpus / "retired-notes.txt").unlink()
    with open(corpus / edited, "a", encoding="utf-8") as f:
        f.write("\n\nThe Huguenot cross was redrawn in 1688 by the engraver Anselme Vautrin.\n")

    # One uninterrupted run from the old state: its duration spreads the kills, its result is the target.
    work = tmp_path / "index"
    shutil.copytree(template, work)
    began = time.perf_counter()
    clean = subprocess.run([*RAG, "index", str(corpus), "--index", str(work), "--json"], capture_output=True, text=True)
    duration = time.perf_counter() - began
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert report["added"] == [added_later] and report["updated"] == [edited]
    assert report["removed"] == ["retired-notes.txt"]
    target = Assistant(index_dir=work)
    new_docs = {d.source for d in target.sources()}
    new_chunks = target.stats()["chunks"]
    new_layout = chunk_layout(target)
    # What a build from nothing stores: every file chunked afresh.
    from rag.documents import load

    assert new_chunks == sum(len(target.chunker.chunk(load(p, p.name))) for p in corpus.iterdir())
    target.store.close()
    states = {"old": (old_docs, old_chunks), "new": (new_docs, new_chunks)}

    delays = [duration * (i + rng.random()) / STRATA for i in range(STRATA)]
    rng.shuffle(delays)
    seen: dict[str, int] = {"old": 0, "new": 0}
    kills: list[float] = []
    attempts = 0
    while len(kills) < KILLS:
        attempts += 1
        assert attempts <= 3 * KILLS, f"runs kept finishing before their kill (seed {seed}, run {duration:.1f} s)"
        delay = delays.pop() if delays else rng.uniform(0, 0.9 * duration)
        shutil.rmtree(work)
        shutil.copytree(template, work)
        with open(tmp_path / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(
                [*RAG, "index", str(corpus), "--index", str(work), "--quiet"], stdout=subprocess.DEVNULL, stderr=err
            )
            time.sleep(delay)
            if proc.poll() is not None:
                assert proc.returncode == 0, (tmp_path / "stderr.txt").read_text()
                continue  # finished first: this moment was not a kill
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        kills.append(delay)
        where = f"kill {len(kills)} at {delay:.2f} s of a {duration:.1f} s run (seed {seed})"

        # The index loads and answers as it is, in the old state or the new one.
        reader = Assistant(index_dir=work)
        documents = {d.source for d in reader.sources()}
        state = "old" if documents == old_docs else "new" if documents == new_docs else None
        assert state is not None, f"{where}: a mix of states: {sorted(documents)}"
        seen[state] += 1
        assert reader.stats()["chunks"] == states[state][1], where
        assert sum(d.chunks for d in reader.sources()) == states[state][1], where
        assert reader.store.vector_index().ntotal == states[state][1], where
        answer = reader.ask("When did the Wars of Religion end with the Edict of Nantes?")
        assert answer.passages and {p.source for p in answer.passages} <= documents, where
        assert answer.citations[0].source == edited, where
        reader.store.close()

        # The next run finishes without any repair and stores what an uninterrupted run stores.
        if len(kills) == 1:  # once through the real command, then in this process (faster)
            again = subprocess.run([*RAG, "index", str(corpus), "--index", str(work), "--quiet"], capture_output=True)
            assert again.returncode == 0, f"{where}: {again.stderr.decode()}"
        else:
            Assistant(index_dir=work).index([corpus])
        after = Assistant(index_dir=work)
        assert after.stats()["chunks"] == new_chunks, where
        assert chunk_layout(after) == new_layout, where
        assert after.store.vector_index().ntotal == new_chunks, where
        assert after.ask("Who redrew the Huguenot cross in 1688?").citations[0].source == edited, where
        assert leftovers(work) == [], where
        with sqlite3.connect(work / DATABASE) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", where
        after.store.close()

    span = max(kills) - min(kills)
    assert span >= 0.5 * duration, f"kills at {sorted(kills)} do not spread over the {duration:.1f} s run"
    assert seen["old"] >= 1, seen


# ---------------------------------------------------------------- kills at each step of a commit

DIM = 8
CONFIG = {"dimension": DIM, "model_fingerprint": "crash-test", "chunk_tokens": 200, "chunk_overlap": 40}

#: Run in a child process: apply one change to the store in argv[1], dying at the step in argv[2].
DRIVER = r"""
import json, os, signal, sys
from pathlib import Path
import numpy as np
import rag.stores as store
from rag.stores import fs, fulltext

directory, step = Path(sys.argv[1]), sys.argv[2]
DIM = json.loads(sys.argv[3])["dimension"]
rng = np.random.default_rng(1)

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

def on_call(n, real):
    calls = [0]
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            die()
        return real(*args, **kwargs)
    return wrapper

def chunks(source, n):
    out = []
    for i in range(n):
        v = rng.normal(size=DIM).astype("float32")
        text = f"new text {i} of {source}"
        out.append(store.NewChunk(f"{source}-{i}-new", i * 10, i * 10 + 9, "", text, v / np.linalg.norm(v)))
    return out

def record(source, n):
    return store.DocumentRecord(source, "/x/" + source, "/x", "d-" + source, 1, 1, "text", "utf-8", n, 0.0, 0.0)

if step == "in-transaction":
    fulltext.chunk_title = on_call(3, fulltext.chunk_title)  # called for each chunk inserted in the transaction
elif step == "before-faiss":
    store.FaissStore._update_vectors = die
elif step == "faiss-temp-written":
    os.replace = on_call(1, os.replace)
elif step == "before-manifest":
    fs.atomic_write = on_call(2, fs.atomic_write)
elif step == "manifest-temp-written":
    os.replace = on_call(2, os.replace)
elif step == "creating":
    os.replace = on_call(1, os.replace)
elif step == "dropping":
    # As `rag index --rebuild` does: the database is deleted first; the process dies with its last
    # commit still in the WAL, which must never be replayed into the next database.
    s = store.FaissStore(directory)
    s.apply(store.Changes(upserts=[(record("z.txt", 2), chunks("z.txt", 2))]))
    (directory / store.DATABASE).unlink()
    die()

s = store.FaissStore(directory)
with s.writer():
    if not s.exists():
        s.create(json.loads(sys.argv[3]))
    upserts = [(record("b.txt", 3), chunks("b.txt", 3)), (record("c.txt", 4), chunks("c.txt", 4))]
    s.apply(store.Changes(upserts=upserts, removals=["a.txt"]))
"""


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _old_state(directory: Path) -> None:
    store = FaissStore(directory)
    store.create(CONFIG)
    rng = np.random.default_rng(0)
    upserts = []
    for source, n in (("a.txt", 2), ("b.txt", 5)):
        vectors = _unit(rng.normal(size=(n, DIM)))
        record = DocumentRecord(source, f"/x/{source}", "/x", f"d-{source}", 1, 1, "text", "utf-8", n, 0.0, 0.0)
        chunks = [
            NewChunk(f"{source}-{i}", i * 10, i * 10 + 9, "", f"old text {i} of {source}", v)
            for i, v in enumerate(vectors)
        ]
        upserts.append((record, chunks))
    store.apply(Changes(upserts=upserts))
    store.close()


OLD = ({"a.txt": 2, "b.txt": 5}, 7)
NEW = ({"b.txt": 3, "c.txt": 4}, 7 + 0)  # same total on purpose: the documents tell the states apart


def _state(directory: Path) -> str:
    store = FaissStore(directory)
    try:
        if not store.exists():
            return "none"
        documents = {d.source: d.chunks for d in store.documents()}
        count = store.stats()["chunks"]
        assert count == sum(documents.values())
        index = store.vector_index()
        assert index.ntotal == count and index.d == DIM
        stored = {c.id for source in documents for c in store.document_chunks(source)}
        hits = store.search(_unit(np.ones((1, DIM)))[0], 10)
        assert {i for i, _ in hits} == stored, "the vector index holds exactly the stored chunks"
        assert {i for i, _ in store.keyword_search(["text"], 20)} == stored
        if documents == OLD[0]:
            return "old"
        if documents == NEW[0]:
            assert {c.text.split()[0] for c in store.document_chunks("b.txt")} == {"new"}
            return "new"
        if not documents:
            return "empty"
        raise AssertionError(f"a mix of states: {documents}")
    finally:
        store.close()


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("in-transaction", "old"),
        ("before-faiss", "new"),
        ("faiss-temp-written", "new"),
        ("before-manifest", "new"),
        ("manifest-temp-written", "new"),
        ("creating", "none"),
        ("dropping", "none"),
    ],
)
def test_kill_at_each_write_step(tmp_path: Path, step: str, expected: str) -> None:
    directory = tmp_path / "index"
    if step != "creating":
        _old_state(directory)
    died = subprocess.run(
        [sys.executable, "-c", DRIVER, str(directory), step, json.dumps(CONFIG)], capture_output=True, text=True
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert _state(directory) == expected
    if step == "dropping":
        assert (directory / f"{DATABASE}-wal").exists(), "the scenario needs a WAL left behind"

    # The next writer runs without repair, leaves no temporary files, and the result reads back whole.
    finished = subprocess.run(
        [sys.executable, "-c", DRIVER, str(directory), "none", json.dumps(CONFIG)], capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stderr
    assert leftovers(directory) == []
    assert _state(directory) == "new"
    with sqlite3.connect(directory / DATABASE) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["chunks"] == NEW[1] and manifest["documents"] == 2
