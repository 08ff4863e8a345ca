"""Reading and chunking files in a second process while this one embeds (an indexing run's two halves).

:class:`ReadProcess` starts ``python -m rag.read_worker`` for a list of files; the child reads each one
(PDFium, OCR, layout, tables; the same :func:`read_file` as in-process indexing) and chunks it, and
sends the chunks back, file by file in order, while the parent embeds the files before. Everything
between the two is JSON lines we write ourselves (no pickle): the job on the child's stdin, and on its
stdout the pages read (for the progress bar), each file's chunks, or why a file failed.

The child runs ahead of the parent by at most :data:`AHEAD_CHUNKS` chunks (memory holds that, not the
corpus). A file that kills the child (a crash in a C library) or keeps it silent past its budget of
seconds is reported as failed, and a new child goes on with the files after it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .budgets import Budget
from .chunking import Chunk, Chunker
from .documents import load_within
from .errors import DocumentError
from .progress import listening

#: Chunks the child may have read beyond those the parent has taken (about one embedding group).
AHEAD_CHUNKS = 2048
#: Seconds beyond a file's budget that a silent child is given before it is stopped.
GRACE_SECONDS = 30.0
#: Seconds a new child may take to start (import its libraries) before its silence counts.
STARTUP_SECONDS = 60.0
#: How often the child tells the pages it has read (the last page of a file is always told).
PAGE_EVERY = 0.2


@dataclass
class Read:
    """One file read and chunked: what indexing needs of it (the document's text stays with the reader)."""

    format: str
    encoding: str
    report: dict[str, Any]
    chunks: list[Chunk]
    #: The text embedded for each chunk (its title line, then its text).
    inputs: list[str]

    def to_json(self) -> dict[str, Any]:
        """Plain data for the pipe."""
        rows = [[c.text, c.start, c.end, c.section, c.layout, c.title] for c in self.chunks]
        return {
            "format": self.format,
            "encoding": self.encoding,
            "report": self.report,
            "chunks": rows,
            "inputs": self.inputs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Read:
        """The inverse of :meth:`to_json`."""
        chunks = [Chunk(str(t), int(a), int(b), str(s), str(lay), str(ti)) for t, a, b, s, lay, ti in data["chunks"]]
        return cls(str(data["format"]), str(data["encoding"]), dict(data["report"]), chunks, list(data["inputs"]))


def read_file(
    path: Path, source: str, max_bytes: int, budget: Budget, chunker: Chunker, listener: Callable[[int, int, str], None]
) -> Read:
    """Read ``path`` under the budgets and chunk it; raises :class:`DocumentError` with the reason."""
    with listening(listener):
        document = load_within(path, source, max_bytes, budget)
    chunks = chunker.chunk(document)
    if not chunks:
        raise DocumentError("no text to index after extraction")
    inputs = [chunker.embedding_input(source, c) for c in chunks]
    return Read(document.format, document.encoding, document.report, chunks, inputs)


def chunker_options(chunker: Chunker) -> dict[str, Any]:
    """What the child needs to build a chunker equal to ``chunker`` (its tokenizer comes from the model folder)."""
    return {
        "chunk_tokens": chunker.budget,
        "overlap": chunker.overlap,
        "max_tokens": chunker.max_tokens,
        "titles": chunker.titles,
    }


#: Told (file's position in the job, outcome): a :class:`Read`, or why the file failed.
Outcome = tuple[int, "Read | str"]
#: Told (file's position, pages done, pages in all, what is being done) as the child reads.
PageCallback = Callable[[int, int, int, str], None]


class ReadProcess:
    """Files read and chunked in a child process, handed over in order (see the module's docstring)."""

    def __init__(
        self, files: list[tuple[Path, str]], tokenizer: Path, chunker: dict[str, Any], max_bytes: int, budget: Budget
    ) -> None:
        self.files = files
        self.job: dict[str, Any] = {
            "tokenizer": str(tokenizer),
            "chunker": chunker,
            "max_bytes": max_bytes,
            "budget": {"unzipped_bytes": budget.unzipped_bytes, "chars": budget.chars, "seconds": budget.seconds},
        }
        self.silence = budget.seconds + GRACE_SECONDS
        self._child: _Child | None = None

    def start(self) -> None:
        """Start the child now (it reads while the parent loads its model); :meth:`outcomes` would otherwise."""
        if self._child is None and self.files:
            self._child = _Child(self.job, self.files, 0)

    def outcomes(
        self, pages: PageCallback, fallback: Callable[[int], Iterator[Outcome]]
    ) -> Generator[Outcome, None, None]:
        """Each file's outcome in order; ``pages`` is told the pages read before each file's outcome. A
        child that ends before it is ready (it cannot start) leaves the files from there to ``fallback``
        (reading them in the parent)."""
        first = 0
        try:
            while first < len(self.files):
                if self._child is None:
                    self._child = _Child(self.job, self.files, first)
                child = self._child
                while True:
                    message = child.next(self.silence)
                    if "page" in message:
                        pages(*message["page"])
                    elif "ready" in message:
                        child.started = True
                    elif "read" in message:
                        yield first, Read.from_json(message["read"])
                        first += 1
                    elif "failed" in message:
                        yield first, str(message["failed"])
                        first += 1
                    else:  # the child ended, or went silent and was stopped
                        break
                self.close()
                if first < len(self.files) and not child.started:
                    yield from fallback(first)
                    return
                if first < len(self.files):  # the file being read took the child down: reported; the rest go on
                    yield first, child.why_stopped()
                    first += 1
        finally:
            self.close()

    def close(self) -> None:
        """Stop the child, if one is running."""
        child, self._child = self._child, None
        if child is not None:
            child.stop()

    def ready(self) -> bool:
        """Whether the next file's outcome is waiting (the parent need not wait for it)."""
        child = self._child
        return child is not None and child.waiting()

    def drain_pages(self, pages: PageCallback) -> None:
        """Pass on the pages read that are waiting at the head of the messages (while the parent embeds)."""
        child = self._child
        if child is not None:
            for message in child.leading_pages():
                pages(*message["page"])


class _Child:
    """One ``python -m rag.read_worker`` process over ``files[first:]``, its messages read by a thread."""

    def __init__(self, job: dict[str, Any], files: list[tuple[Path, str]], first: int) -> None:
        self.first = first
        self.errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - open while the child runs; closed in stop
        self.tail = ""  # the end of the child's stderr, once it has ended
        package = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rag.read_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            env=env,
        )
        self.messages: collections.deque[dict[str, Any]] = collections.deque()
        self.ahead = 0  # chunks received and not yet taken
        self.heard = time.monotonic() + STARTUP_SECONDS  # its start-up is not silence
        self.silent_stop = False
        self.started = False  # it said it is ready (its libraries imported, the job read)
        self.cond = threading.Condition()
        self.done = False
        payload = {**job, "files": [[str(p), s] for p, s in files[first:]], "first": first}
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(payload).encode())
            self.process.stdin.close()
        except OSError:
            pass  # the child died at once: its exit says so
        self.thread = threading.Thread(target=self._listen, name="rag-read-process", daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        try:
            for line in stream:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                size = len(message["read"]["chunks"]) if "read" in message else 0
                with self.cond:
                    self.messages.append(message)
                    self.ahead += size
                    self.heard = time.monotonic()
                    self.cond.notify_all()
                    while self.ahead >= AHEAD_CHUNKS and not self.done:  # hold the child back (its pipe fills)
                        self.cond.wait()
                    self.heard = time.monotonic()  # silence is counted from when it may write again
        except (OSError, ValueError):
            pass
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def next(self, silence: float) -> dict[str, Any]:
        """The next message, or ``{}`` when the child has ended (or was silent ``silence`` seconds: stopped)."""
        with self.cond:
            while not self.messages:
                if self.done:
                    return {}
                if time.monotonic() - self.heard > silence:
                    self.silent_stop = True
                    self._kill()
                    return {}
                self.cond.wait(timeout=0.5)
            message = self.messages.popleft()
            if "read" in message:
                self.ahead -= len(message["read"]["chunks"])
                self.cond.notify_all()
            return message

    def waiting(self) -> bool:
        with self.cond:
            return any("page" not in m for m in self.messages)

    def leading_pages(self) -> list[dict[str, Any]]:
        with self.cond:
            out = []
            while self.messages and "page" in self.messages[0]:
                out.append(self.messages.popleft())
            return out

    def _kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        """End the child (at once if it is still reading) and its listening thread."""
        if self.process.poll() is None:
            self._kill()
        self.process.wait()
        with self.cond:
            self.done = True
            self.cond.notify_all()
        self.thread.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if not self.errors.closed:
            self.errors.seek(0, os.SEEK_END)
            self.errors.seek(max(0, self.errors.tell() - 4000))
            self.tail = self.errors.read().decode("utf-8", "replace")
            self.errors.close()

    def why_stopped(self) -> str:
        """Why the file being read has no outcome: the child's exit (and its last error line), or its silence."""
        if self.silent_stop:
            return "reading stopped: no progress for too long (a file's time limit is RAG_MAX_FILE_SECONDS)"
        lines = [x for x in self.tail.splitlines() if x.strip()]
        code = self.process.returncode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        last = f": {lines[-1].strip()[:300]}" if lines else ""
        return f"the reading process stopped while reading this file ({how}){last}"


def main() -> int:
    """The child: read the job (JSON on stdin), then read and chunk each file, one JSON line per message."""
    from .chunking import Chunker
    from .encoders.base import WordPieceTokenizer
    from .stores.pause import pause_point

    out = os.fdopen(os.dup(1), "w", encoding="utf-8")  # our messages; anything else printed goes to stderr
    os.dup2(2, 1)
    job = json.loads(sys.stdin.read())
    options = job["chunker"]
    chunker = Chunker(
        WordPieceTokenizer(Path(job["tokenizer"])),
        options["chunk_tokens"],
        options["overlap"],
        options["max_tokens"],
        options["titles"],
    )
    budget = Budget(**job["budget"])
    max_bytes = int(job["max_bytes"])

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, separators=(",", ":")) + "\n")
        out.flush()

    send({"ready": True})

    for position, (path, source) in enumerate(job["files"], start=int(job["first"])):

        def listener(done: int, total: int, what: str, position: int = position, told: list[float] = [0.0]) -> None:  # noqa: B006 - one per file
            now = time.monotonic()
            if now - told[0] >= PAGE_EVERY or done == total:
                told[0] = now
                send({"page": [position, done, total, what]})

        pause_point(f"read {source}")  # tests only (rag/stores/pause.py): a child stopped at a known file
        try:
            read = read_file(Path(path), source, max_bytes, budget, chunker, listener)
        except DocumentError as exc:
            send({"failed": str(exc)})
        except Exception as exc:  # noqa: BLE001 - one bad file must not sink the batch
            send({"failed": f"unexpected error while reading: {type(exc).__name__}: {exc}"})
        else:
            send({"read": read.to_json()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
