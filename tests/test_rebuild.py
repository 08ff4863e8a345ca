"""Rebuilds and long-running readers (issue 18, findings 4 and 5).

``rag index --rebuild`` builds the new index inside one transaction beside the old one: killed at any
moment it leaves the old index or the new one, never an empty one. The kills land at known steps of the
write: test-only pause points (rag/stores/pause.py) stop the writer there, and the test kills it while it
waits. A reader that stays open (the web server) sees a rebuild by another process at its next question,
and its own later writes land in the rebuilt index. An empty index says so instead of "the documents do
not contain an answer".
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import Assistant, IndexEmptyError

from .conftest import FACTS, write

RAG = [sys.executable, "-m", "rag.cli"]
OLD = {Path(name).name for name in FACTS}
NEW_FILES = {
    "observatory.txt": "The Quillon Observatory closed in 1987 after its mirror cracked in a storm.",
    "otters.txt": FACTS["otters.txt"],
}
NEW = set(NEW_FILES)


def _corpora(tmp_path: Path) -> tuple[Path, Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    for name, text in FACTS.items():
        write(old / Path(name).name, text)
    for name, text in NEW_FILES.items():
        write(new / name, text)
    index = tmp_path / "index"
    assistant = Assistant(index_dir=index)
    assistant.index([old])
    assistant.store.close()
    return old, new, index


def _state(index: Path) -> str:
    """'old' or 'new' after checking that the index answers; anything else fails the test."""
    assistant = Assistant(index_dir=index)
    try:
        sources = {d.source for d in assistant.sources()}
        if sources == OLD:
            assert "Mirela Quist" in assistant.ask("Who designed the Harlow Bridge?").text
            return "old"
        assert sources == NEW, f"neither the old nor the new index: {sources}"
        assert "1987" in assistant.ask("When did the Quillon Observatory close?").text
        assert assistant.stats()["chunks"] == sum(d.chunks for d in assistant.sources())
        return "new"
    finally:
        assistant.store.close()


#: `rag index --rebuild` in a child that kills itself while storing its second chunk (inside the transaction).
KILLED_IN_TRANSACTION = r"""
import os, signal, sys
import rag.stores.catalog as catalog
import rag.cli

real, calls = catalog.Catalog._vector_blob, [0]
def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
catalog.Catalog._vector_blob = dying
sys.exit(rag.cli.main(["index", sys.argv[1], "--index", sys.argv[2], "--rebuild", "--quiet"]))
"""


def test_rebuild_killed_while_writing_keeps_the_old_index(tmp_path: Path) -> None:
    _, new, index = _corpora(tmp_path)
    died = subprocess.run([sys.executable, "-c", KILLED_IN_TRANSACTION, str(new), str(index)], capture_output=True)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert _state(index) == "old"
    finished = subprocess.run([*RAG, "index", str(new), "--index", str(index), "--rebuild"], capture_output=True)
    assert finished.returncode == 0, finished.stderr
    assert _state(index) == "new"
    assert sorted(p.name for p in index.iterdir() if ".tmp" in p.name) == []


#: The steps of a rebuild's write (rag/stores/pause.py), in the order a rebuild passes them, and the index that a
#: kill at each leaves: before the commit the old one, after it the new one (derived files rebuilt by readers).
STEPS = [
    ("reset", "old"),  # inside the transaction: the old tables dropped
    ("chunks", "old"),  # inside the transaction: every new chunk written, not committed
    ("committed", "new"),  # the catalog committed, no vector file for it yet
    ("replace vectors-*.faiss", "new"),  # the new vector file written and synced, not yet in place
    ("replace vectors-*.faiss.sha256", "new"),  # in place, its checksum not yet
    ("vectors", "new"),  # vector file and checksum in place, the manifest still the old one
    ("replace manifest.json", "new"),  # the new manifest written, not yet in place
    ("manifest", "new"),  # everything written, the lock still held
]


def _rebuild(new: Path, index: Path, trace: Path, **env: str) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "RAG_TEST_TRACE": str(trace), **env}
    command = [*RAG, "index", str(new), "--index", str(index), "--rebuild", "--quiet"]
    return subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(flag: Path, proc: subprocess.Popen[bytes], step: str, seconds: float = 300) -> str:
    """The step the writer paused at; fails if it ends first or never gets there (a hang guard only)."""
    deadline = time.monotonic() + seconds
    while not flag.is_file():
        if proc.poll() is not None:
            pytest.fail(f"the rebuild ended (status {proc.returncode}) without reaching step {step!r}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the rebuild did not reach step {step!r} within {seconds:.0f} s")
        time.sleep(0.02)
    return flag.read_text()


@pytest.mark.timeout(900)
def test_rebuild_killed_at_each_step_of_its_write_leaves_old_or_new(tmp_path: Path) -> None:
    """Each kill lands at a known step: the writer pauses there, says so, and is killed while it waits."""
    _, new, index = _corpora(tmp_path)
    template = tmp_path / "template"
    shutil.copytree(index, template)
    # A clean rebuild, traced: the steps it passes, in order (each step of STEPS exactly once).
    clean = _rebuild(new, index, tmp_path / "clean-trace")
    assert clean.wait(timeout=300) == 0, clean.stderr.read() if clean.stderr else ""
    passed = (tmp_path / "clean-trace").read_text().splitlines()
    at = [next(i for i, step in enumerate(passed) if fnmatch.fnmatchcase(step, pattern)) for pattern, _ in STEPS]
    assert at == sorted(at), passed
    assert [sum(fnmatch.fnmatchcase(step, p) for step in passed) for p, _ in STEPS] == [1] * len(STEPS), passed
    assert _state(index) == "new"
    for (pattern, expected), where in zip(STEPS, at, strict=True):
        shutil.rmtree(index)
        shutil.copytree(template, index)
        flag, trace = tmp_path / f"paused-{where}", tmp_path / f"trace-{where}"
        proc = _rebuild(new, index, trace, RAG_TEST_PAUSE=pattern, RAG_TEST_PAUSE_FILE=str(flag))
        paused = _wait_for(flag, proc, pattern)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, (pattern, proc.returncode)
        # Where it landed: at this step, after every step before it and none after.
        assert paused == passed[where], (pattern, paused)
        assert trace.read_text().splitlines() == passed[: where + 1], pattern
        assert _state(index) == expected, pattern
        if not pattern.startswith("replace "):
            continue
        # Killed with a written temporary file: the next rebuild finishes and leaves none.
        assert [p.name for p in index.iterdir() if ".tmp" in p.name], pattern
        again = subprocess.run([*RAG, "index", str(new), "--index", str(index), "--rebuild"], capture_output=True)
        assert again.returncode == 0, (pattern, again.stderr)
        assert _state(index) == "new"
        assert sorted(p.name for p in index.iterdir() if ".tmp" in p.name) == [], pattern


def test_open_reader_sees_a_rebuild_by_another_process_and_keeps_its_writes(tmp_path: Path) -> None:
    old, new, index = _corpora(tmp_path)
    reader = Assistant(index_dir=index)  # stays open, as the web server does
    assert "Mirela Quist" in reader.ask("Who designed the Harlow Bridge?").text
    rebuilt = subprocess.run([*RAG, "index", str(new), "--index", str(index), "--rebuild"], capture_output=True)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "1987" in reader.ask("When did the Quillon Observatory close?").text
    assert {d.source for d in reader.sources()} == NEW
    # A later write by the open reader lands in the rebuilt index that other processes read.
    upload = write(tmp_path / "uploads" / "lighthouse.txt", "The Korsvik lighthouse was painted red in 1911.")
    assert reader.index([upload]).added == ["lighthouse.txt"]
    listed = subprocess.run([*RAG, "sources", "--index", str(index)], capture_output=True, text=True)
    assert "lighthouse.txt" in listed.stdout and "observatory.txt" in listed.stdout
    # The same when the database file itself is replaced (a damaged index rebuilt from nothing).
    (index / "store.sqlite").write_bytes(b"damaged" * 100)
    redone = subprocess.run([*RAG, "index", str(old), "--index", str(index), "--rebuild"], capture_output=True)
    assert redone.returncode == 0, redone.stderr
    assert "Mirela Quist" in reader.ask("Who designed the Harlow Bridge?").text
    reader.store.close()


def test_an_empty_index_says_so(tmp_path: Path) -> None:
    _, _, index = _corpora(tmp_path)
    for name in OLD:
        assert subprocess.run([*RAG, "remove", name, "--index", str(index)], capture_output=True).returncode == 0
    result = subprocess.run(
        [*RAG, "ask", "Who designed the Harlow Bridge?", "--index", str(index)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "empty" in result.stderr and "rag index" in result.stderr, result.stderr
    with pytest.raises(IndexEmptyError):
        Assistant(index_dir=index).ask("Who designed the Harlow Bridge?")
