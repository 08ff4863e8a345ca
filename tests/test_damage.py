"""Damaged vector files, full disks and read-only indexes (issue 18, findings 6 and 9).

A flipped byte inside the FAISS file is caught by the checksum recorded beside it and the file is
rebuilt from SQLite (never a wrong passage, never a cosine above 1). A full disk gives one line
saying so and leaves the index as it was; a read-only index still answers.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant

from .conftest import FACTS, missing, write

RAG = [sys.executable, "-m", "rag.cli"]
QUESTION, WORDS, SOURCE = "Who designed the Harlow Bridge?", "Mirela Quist", "bridges.html"


@pytest.fixture(scope="module")
def facts_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("facts")
    for name, text in FACTS.items():
        write(base / "corpus" / Path(name).name, text)
    assistant = Assistant(index_dir=base / "index")
    assistant.index([base / "corpus"])
    assistant.store.close()
    return base / "index"


def ask_json(index: Path, question: str = QUESTION) -> tuple[subprocess.CompletedProcess[str], dict]:
    result = subprocess.run([*RAG, "ask", question, "--index", str(index), "--json"], capture_output=True, text=True)
    return result, json.loads(result.stdout) if result.returncode == 0 else {}


def best_chunk(index: Path) -> tuple[int, bytes]:
    """Id and vector bytes of the chunk that answers QUESTION."""
    with sqlite3.connect(index / "store.sqlite") as conn:
        return conn.execute("SELECT id, vector FROM chunks WHERE source=? ORDER BY ord", (SOURCE,)).fetchone()


@pytest.mark.parametrize("damage", ["id byte", "exponent byte", "last byte"])
def test_flipped_byte_in_the_vector_file_never_gives_wrong_answers(
    facts_index: Path, tmp_path: Path, damage: str
) -> None:
    index = tmp_path / "index"
    shutil.copytree(facts_index, index)
    (vectors,) = index.glob("vectors-*.faiss")
    data = bytearray(vectors.read_bytes())
    chunk_id, vector = best_chunk(index)
    count = len(list(index.glob("*")))
    if damage == "id byte":  # the id map is the file's tail: one int64 per vector
        with sqlite3.connect(index / "store.sqlite") as conn:
            n = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        ids = np.frombuffer(bytes(data[-8 * n :]), dtype=np.int64)
        at = len(data) - 8 * n + 8 * int(np.flatnonzero(ids == chunk_id)[0])
        data[at] ^= 0x01
    elif damage == "exponent byte":
        at = bytes(data).find(vector)
        assert at > 0
        data[at + 3] ^= 0x02  # the exponent of the first component: its value is multiplied by 2**±32
    else:
        data[-1] ^= 0xFF
    vectors.write_bytes(bytes(data))
    result, answer = ask_json(index)
    assert result.returncode == 0, result.stderr
    assert answer["answered"] and WORDS in answer["answer"], answer
    assert answer["citations"][0]["source"] == SOURCE
    assert all(p["score"] <= 1.0001 for p in answer["passages"]), answer["passages"]
    # Rebuilt from SQLite, with its checksum.
    assert vectors.read_bytes() != bytes(data)
    assert len(list(index.glob("*"))) == count


def mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        missing(f"cannot mount a tmpfs here (needs root in a machine or container that allows it): {done.stderr!r}")


@pytest.fixture()
def small_disk(tmp_path: Path):
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_tmpfs(where, "3m")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_full_disk_gives_one_line_and_keeps_the_index(facts_index: Path, small_disk: Path, tmp_path: Path) -> None:
    index = small_disk / "index"
    shutil.copytree(facts_index, index)
    layout = _layout(index)
    filler = small_disk / "filler"
    # Fill the disk to several levels short of full and try a change each time.
    big = write(tmp_path / "corpus" / "big.txt", "The observatory at Tarsk measures gas output every week. " * 6_000)
    for leave in (0, 4096, 64 * 1024, 200 * 1024):
        filler.unlink(missing_ok=True)
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, shutil.disk_usage(small_disk).free - leave))
        result = subprocess.run(
            [*RAG, "index", str(big), "--index", str(index), "--quiet"], capture_output=True, text=True
        )
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1, (leave, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(lines) == 1 and "disk full" in lines[0], (leave, result.stderr)
        assert "--rebuild" not in lines[0]
        assert _layout(index) == layout
        answer, data = ask_json(index)
        assert answer.returncode == 0 and WORDS in data["answer"], (leave, answer.stderr)
        assert [p.name for p in index.iterdir() if ".tmp" in p.name] == []
    filler.unlink()
    removed = subprocess.run([*RAG, "remove", "otters.txt", "--index", str(index)], capture_output=True, text=True)
    assert removed.returncode == 0, removed.stderr
    with sqlite3.connect(index / "store.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _layout(index: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(f"file:{index / 'store.sqlite'}?mode=ro", uri=True) as conn:
        return sorted(conn.execute("SELECT source, count(*) FROM chunks GROUP BY source").fetchall())


def test_read_only_index_answers_and_refuses_changes_in_one_line(facts_index: Path, tmp_path: Path) -> None:
    where = tmp_path / "ro"
    mount_tmpfs(where, "20m")
    try:
        shutil.copytree(facts_index, where / "index")
        remount = subprocess.run(["mount", "-o", "remount,ro", str(where)], capture_output=True, text=True)
        if remount.returncode != 0:
            missing(f"cannot remount read-only: {remount.stderr}")
        index = where / "index"
        answer, data = ask_json(index)
        assert answer.returncode == 0, answer.stderr
        assert WORDS in data["answer"]
        listed = subprocess.run([*RAG, "sources", "--index", str(index)], capture_output=True, text=True)
        assert listed.returncode == 0 and "bridges.html" in listed.stdout, listed.stderr
        removed = subprocess.run([*RAG, "remove", "otters.txt", "--index", str(index)], capture_output=True, text=True)
        lines = [line for line in removed.stderr.splitlines() if line.strip()]
        assert removed.returncode == 1 and len(lines) == 1 and "read-only" in lines[0], removed.stderr
        assert "damaged" not in removed.stderr
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_vector_file_is_fsynced_before_it_is_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README: the FAISS file (and its checksum, and the manifest) is written beside, fsynced, renamed
    into place, and the folder fsynced after the rename. Checked on the calls an indexing run makes."""
    import os

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(("replace", f"{os.fspath(src)} -> {os.fspath(dst)}"))
        real_replace(src, dst)

    write(tmp_path / "corpus" / "otters.txt", FACTS["otters.txt"])
    index = tmp_path / "index"
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    Assistant(index_dir=index).index([tmp_path / "corpus"])
    monkeypatch.undo()
    (vectors,) = index.glob("vectors-*.faiss")
    for final in (vectors, vectors.with_name(vectors.name + ".sha256"), index / "manifest.json"):
        renames = [i for i, (kind, what) in enumerate(events) if kind == "replace" and what.endswith(f" -> {final}")]
        assert renames, f"{final.name} was not written beside and renamed"
        for at in renames:
            tmp = events[at][1].split(" -> ")[0]
            assert Path(tmp).parent == index and Path(tmp).name.startswith(f".{final.name}.") and tmp.endswith(".tmp")
            assert ("fsync", tmp) in events[:at], f"{final.name} was renamed into place before its bytes were synced"
            assert ("fsync", str(index)) in events[at + 1 :], f"the folder was not synced after {final.name}"
