"""File-system helpers of an index directory: atomic writes, checksums, the write lock, clear errors.

Modules call these through the module (``fs.atomic_write``), so a test can make one of them fail.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import IndexCorruptError, IndexLockedError, IndexWriteError
from .pause import pause_point

_log = logging.getLogger(__name__)
#: Temporary files of atomic_write and create: ".<name>.<pid>[.<thread>].tmp" (plus SQLite's journal).
_LEFTOVER = re.compile(r"\..+?\.(\d+)(?:\.\d+)?\.tmp(?:-journal|-wal|-shm)?")


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    ``data`` may be a function writing to the open file (large files are then never held twice).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        pause_point(f"replace {path.name}")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable; ignored where folders cannot be synced."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def checksum_path(path: Path) -> Path:
    """Where the SHA-256 of ``path`` is kept."""
    return path.with_name(path.name + ".sha256")


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def inode(path: Path) -> tuple[int, int] | None:
    """Device and inode of a file (None when missing): tells a replaced file from the one opened."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (false on a read-only mount or an immutable folder)."""
    if not os.access(folder, os.W_OK):
        return False
    with contextlib.suppress(OSError):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return False
    return True


def _low_space(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < (4 << 20)


def problem(exc: BaseException, directory: Path, committed: bool = False) -> Exception:
    """One clear error for a failed database or file operation: disk full, read-only, or damage."""
    message = str(exc).lower()
    code = getattr(exc, "errno", None)
    full = code in (errno.ENOSPC, errno.EDQUOT) or "database or disk is full" in message
    if full or ("disk i/o error" in message and _low_space(directory)):
        after = "the change was saved; derived files are rebuilt later" if committed else "the index was not changed"
        return IndexWriteError(
            f"disk full: no space left for the index at {directory} ({after}); free some space and run again"
        )
    if code in (errno.EACCES, errno.EPERM) and (not _exists(directory) or not os.access(directory, os.R_OK | os.X_OK)):
        return no_access(directory)
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "readonly" in message or "read-only" in message:
        why = "permission denied" if code in (errno.EACCES, errno.EPERM) else "read-only"
        return IndexWriteError(
            f"the index at {directory} cannot be written ({why}): it can answer questions, "
            "but changes need a writable folder"
        )
    if isinstance(exc, OSError):
        return IndexWriteError(f"cannot write the index at {directory}: {exc.strerror or exc}")
    return IndexCorruptError(
        f"the index at {directory} is damaged ({exc}): rebuild it with 'rag index PATH --index {directory} --rebuild'"
    )


def no_access(directory: Path) -> IndexWriteError:
    """The error for an index folder this user may not read (or, when it does not exist yet, create)."""
    try:
        exists = directory.exists()
    except OSError:
        exists = True
    if not exists:
        parent = next((p for p in directory.parents if _exists(p)), directory.parent)
        return IndexWriteError(
            f"cannot create the index at {directory}: permission denied in {parent}; "
            "pass an --index folder you can write, or give this user access to it"
        )
    return IndexWriteError(
        f"the index at {directory} cannot be read or written (permission denied): it can neither answer nor "
        "change; give this user access to the folder (chmod or chown) or pass another --index"
    )


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return True


@contextlib.contextmanager
def write_lock(directory: Path, timeout: float) -> Iterator[None]:
    """Hold the index's write lock (one writer at a time; others wait up to ``timeout`` seconds).

    Temporary files of writers that died are removed once it is held.
    """
    from filelock import FileLock, Timeout

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise problem(exc, directory) from None
    if not os.access(directory, os.R_OK | os.X_OK):
        raise no_access(directory)
    if not writable(directory):
        raise IndexWriteError(
            f"the index at {directory} is read-only: it can answer questions, but changes need a "
            "writable folder (copy it elsewhere or remount it read-write)"
        )
    lock = FileLock(str(directory / ".lock"))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if timeout > 0:
                _log.warning(
                    "another process is writing to the index at %s: waiting up to %.0f s for it (RAG_LOCK_TIMEOUT)",
                    directory,
                    timeout,
                )
            lock.acquire(timeout=timeout)
    except Timeout:
        raise IndexLockedError(
            f"another process is writing to the index at {directory} and did not finish within "
            f"{timeout:.0f} s: wait for it, or raise RAG_LOCK_TIMEOUT"
        ) from None
    try:
        _remove_leftovers(directory)
        yield
    finally:
        lock.release()


def _remove_leftovers(directory: Path) -> None:
    """Delete temporary files of writers that died (killed mid-write); called with the write lock held."""
    for item in directory.iterdir():
        match = _LEFTOVER.fullmatch(item.name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                item.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
