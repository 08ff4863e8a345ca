"""Test-only pause points between the steps of an index write, so a crash test can kill the writer at a known step.

Off unless ``RAG_TEST_PAUSE`` or ``RAG_TEST_TRACE`` is set (tests set them only in the child processes they
start). ``RAG_TEST_TRACE`` names a file to which each step passed is appended as a line. When a step's name
matches the glob pattern ``RAG_TEST_PAUSE``, the writer writes the step's name to the file
``RAG_TEST_PAUSE_FILE`` (atomically) and waits there: to be killed, or, when ``RAG_TEST_PAUSE_RELEASE`` names
a file, until that file exists, and then goes on. If neither happens within ``RAG_TEST_PAUSE_SECONDS``
(default 300) it exits with status 86, so a test that forgot it fails, not hangs.
"""

from __future__ import annotations

import fnmatch
import os
import time

#: The exit status of a writer left paused past its time.
PAUSE_EXPIRED = 86


def pause_point(step: str) -> None:
    """Stop here when ``RAG_TEST_PAUSE`` matches ``step`` (tests only; a no-op otherwise)."""
    trace = os.environ.get("RAG_TEST_TRACE")
    if trace:
        fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{step}\n".encode())  # one short append: whole lines only
        finally:
            os.close(fd)
    pattern = os.environ.get("RAG_TEST_PAUSE")
    if not pattern or not fnmatch.fnmatchcase(step, pattern):
        return
    flag = os.environ.get("RAG_TEST_PAUSE_FILE", "")
    if flag:
        tmp = f"{flag}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(step)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, flag)
    release = os.environ.get("RAG_TEST_PAUSE_RELEASE", "")
    deadline = time.monotonic() + float(os.environ.get("RAG_TEST_PAUSE_SECONDS", "300"))
    while time.monotonic() < deadline:
        if release and os.path.exists(release):
            return
        time.sleep(0.05)
    os._exit(PAUSE_EXPIRED)
