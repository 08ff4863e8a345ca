"""Indexing in a child process under a memory and a time limit, for files nobody vouches for.

The web chat indexes uploads through :class:`IndexWorker`: the reading, OCR and embedding run in a
fresh ``python -m rag.index_worker`` process, watched from here. A child that grows past
``settings.index_memory_mb`` of resident memory (its own and its helpers': Tesseract runs as its
children), or runs past ``settings.index_job_seconds``, is killed
and the call raises :class:`IndexJobError` with the reason; the index keeps its last committed state
(every write is atomic), and the calling process (a server answering other people's questions)
neither grows nor stalls. The job and its report travel as JSON on the child's stdin and stdout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import IndexJobError, RagError

#: How often the child's resident memory is read, and every how many reads its helpers' is too.
POLL_SECONDS = 0.05
TREE_EVERY = 4
#: A line of the child's progress bar: its description (what it reads) and its percentage.
_BAR = re.compile(r"(?:^|[\r\n])([^\r\n]*?):\s+(\d{1,3})%\|")


class IndexWorker:
    """Runs :meth:`rag.Assistant.index` for ``settings`` in a child process, one job at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        #: The running child's process id (None between jobs): for monitoring and tests.
        self.pid: int | None = None
        #: Peak resident memory of the last job's child and its helpers together, in MB.
        self.peak_mb = 0.0

    def index(self, paths: Sequence[str | Path], progress: Callable[[float, str], None] | None = None) -> Any:
        """Index ``paths`` in a child process and return its :class:`rag.IndexReport`.

        ``progress(fraction, doing)`` is called as the child reports progress (``doing`` names the file
        and page being read, or the embedding). Raises :class:`rag.IndexJobError`
        when the child is stopped or dies, and :class:`rag.RagError` with the child's message when
        indexing failed there (the index locked or not writable, say).
        """
        from .types import IndexReport

        job = {"settings": _settings_json(self.settings), "paths": [str(p) for p in paths]}
        limit_mb, limit_s = float(self.settings.index_memory_mb), float(self.settings.index_job_seconds)
        with self._lock:
            child = subprocess.Popen(
                [sys.executable, "-m", "rag.index_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: OCR helpers die with it
                env={**os.environ, "TQDM_MININTERVAL": "0.5"},
            )
            self.pid, self.peak_mb = child.pid, 0.0
            assert child.stdin is not None and child.stdout is not None and child.stderr is not None
            out: list[bytes] = []
            done: list[tuple[float, str]] = []  # the child's progress, passed on from this thread by _watch
            readers = [
                threading.Thread(target=lambda: out.append(child.stdout.read()), daemon=True),  # type: ignore[union-attr]
                threading.Thread(target=_follow_progress, args=(child.stderr, done.append), daemon=True),
            ]
            for reader in readers:
                reader.start()
            try:
                child.stdin.write(json.dumps(job).encode())
                child.stdin.close()
            except OSError:
                pass  # the child died at once: its exit code says so below
            stopped = self._watch(child, limit_mb, limit_s, done, progress)
            for reader in readers:
                reader.join(timeout=5)
            self.pid = None
        if stopped:
            raise IndexJobError(stopped)
        result = _last_json(b"".join(out))
        if result is None:
            raise IndexJobError(f"indexing stopped: the worker process ended with code {child.returncode}")
        if "error" in result:
            raise RagError(str(result["error"]))
        return IndexReport.from_dict(result["report"])

    def _watch(
        self,
        child: subprocess.Popen[bytes],
        limit_mb: float,
        limit_s: float,
        done: list[tuple[float, str]],
        progress: Callable[[float, str], None] | None,
    ) -> str:
        """Wait for the child, killing it over a limit, passing on its progress; returns why it was
        stopped ("" when it ended by itself)."""
        deadline = time.monotonic() + limit_s
        shown: tuple[float, str] | None = None
        told = 0
        polls, helpers = 0, 0.0
        while child.poll() is None:
            if progress is not None:
                new = done[told:]  # each new line, in order (a poll may come after several)
                told += len(new)
                for item in new:
                    if item != shown:
                        shown = item
                        progress(*shown)
            polls += 1
            if polls % TREE_EVERY == 1:  # the helpers' memory less often: reading it scans /proc
                helpers = _tree_mb(child.pid) - _resident_mb(child.pid)
            rss = _resident_mb(child.pid) + max(0.0, helpers)
            self.peak_mb = max(self.peak_mb, rss)
            if rss > limit_mb:
                _kill(child)
                return (
                    f"indexing stopped: it used more than {limit_mb:g} MB of memory "
                    "(setting RAG_INDEX_MEMORY_MB); a file in it expands too far"
                )
            if time.monotonic() > deadline:
                _kill(child)
                return f"indexing stopped: it ran longer than {limit_s:g} s (setting RAG_INDEX_JOB_SECONDS)"
            time.sleep(POLL_SECONDS)
        if progress is not None and done and done[-1] != shown:
            progress(*done[-1])
        return ""


def _settings_json(settings: Settings) -> dict[str, Any]:
    data = dataclasses.asdict(settings)
    data["index_dir"] = str(settings.index_dir)
    return data


def _resident_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _tree_mb(pid: int) -> float:
    """Resident memory in MB of process ``pid`` and every process of its session (the worker runs in a
    session of its own, so this counts its OCR helpers, which are its children, too)."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    try:
        entries = os.listdir("/proc")
    except OSError:
        return _resident_mb(pid)
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        # After the name: state ppid pgrp session ... rss is the 22nd field after ")" (0-based 21).
        if len(fields) > 21 and (int(entry) == pid or int(fields[3]) == pid):
            total += int(fields[21]) * page
    return total / (1024 * 1024)


def _kill(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        child.kill()
    child.wait()


def _follow_progress(stream: Any, progress: Callable[[tuple[float, str]], None]) -> None:
    """Read the child's progress bar (stderr) and pass on (its percentage as a fraction, its description)."""
    pending = ""
    while block := stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096):
        pending = (pending + block.decode("utf-8", errors="replace"))[-8192:]
        end = 0
        for m in _BAR.finditer(pending):  # every line drawn, so that no page said in between is lost
            doing, percent = m.group(1), m.group(2)
            progress((min(100, int(percent)) / 100, doing.strip()))
            end = m.end()
        pending = pending[end:]


def _last_json(output: bytes) -> dict[str, Any] | None:
    for line in reversed(output.decode("utf-8", errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                return data
    return None


def main() -> int:
    """The child: read a job (JSON on stdin), index, print the report (JSON on stdout)."""
    from .assistant import Assistant
    from .stores.pause import pause_point

    job = json.loads(sys.stdin.read())
    pause_point("worker job")  # tests only (rag/stores/pause.py): a worker known to be running
    try:
        settings = Settings.from_env({}, **job["settings"])
        report = Assistant(settings=settings).index([Path(p) for p in job["paths"]], progress=True)
    except RagError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 1
    print(json.dumps({"report": report.to_dict()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
