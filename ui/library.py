"""The documents uploaded through the web chat: a folder inside the index directory, indexed as one folder.

Uploads are copied into ``<index>/documents/`` under a sanitised, unique name and the folder is indexed
with :meth:`rag.Assistant.index`, so removing a file there (or through :meth:`DocumentLibrary.remove`)
keeps the index consistent. A file that cannot be indexed is reported with its reason and its copy is
dropped again; the rest of the batch and the existing documents are untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rag import (
    SUPPORTED_SUFFIXES,
    Assistant,
    DocumentRecord,
    IndexJobError,
    IndexNotFoundError,
    IndexReport,
    IndexWorker,
)

from .guard import set_aside_orphans
from .upload_result import UploadResult as UploadResult  # re-exported: it lived here first

#: File types the web chat accepts: the ones ``rag index`` reads (one list for both).
UPLOAD_SUFFIXES = tuple(sorted(SUPPORTED_SUFFIXES))

FOLDER_NAME = "documents"
#: Hidden folder (never indexed) where a batch waits while its files are indexed one by one.
PARKED = ".parked"
#: Hidden file of the index directory locked (by every server on the index) while uploads are added or removed.
LOCK_NAME = ".documents.lock"
#: Hidden folder (never indexed) holding the old bytes of replaced files until the new ones are indexed.
REPLACED = ".replaced"
_MAX_STEM = 100
_UNSAFE = re.compile(r"[^\w.-]+")
_RUNS = re.compile(r"_{2,}")


def safe_name(name: str) -> str:
    """A file name that is safe to create in the documents folder.

    Keeps only the last path component (``/`` and ``\\`` both count), letters, digits, ``_``, ``-`` and
    ``.``; no leading dots or dashes; a lower-case extension; at most 100 characters before it.
    """
    base = re.split(r"[\\/]", str(name))[-1]
    base = unicodedata.normalize("NFKC", base)
    base = "".join(ch for ch in base if ch.isprintable())
    base = _RUNS.sub("_", _UNSAFE.sub("_", base)).strip("._- ")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = stem.strip("._- ")[:_MAX_STEM].rstrip("._- ") or "document"
    ext = ext.lower()
    return f"{stem}.{ext}" if ext else stem


class DocumentLibrary:
    """Add uploaded files to an assistant's index and remove them again.

    ``max_bytes`` limits each upload. One change at a time (a lock); questions are never blocked. With a
    ``worker`` the files are read and embedded in its child process (memory and time limits): a file
    that makes it stop is refused with the reason, and the rest of the batch is indexed without it.
    """

    def __init__(self, assistant: Assistant, max_bytes: int, worker: IndexWorker | None = None) -> None:
        self.assistant = assistant
        self.max_bytes = int(max_bytes)
        self.worker = worker
        self.folder = Path(assistant.index_dir) / FOLDER_NAME
        self._lock = threading.Lock()
        with self._lock, self._documents_lock(wait=False) as held:
            if held:  # another server on this index is adding files: its copies are not orphans
                self.set_aside_orphans()

    @contextlib.contextmanager
    def _documents_lock(self, wait: bool = True) -> Iterator[bool]:
        """Hold the documents folder for one change, against every process serving this index (a file
        lock), so that one server never takes another's copy in flight for an orphan. Yields whether it
        is held (False only with ``wait=False`` when another process holds it)."""
        from filelock import FileLock, Timeout

        from rag import IndexWriteError

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            yield False  # the index is not writable: there is nothing to change
            return
        lock = FileLock(str(self.folder.parent / LOCK_NAME))
        timeout = float(self.assistant.settings.lock_timeout) if wait else 0.0
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            if wait:
                raise IndexWriteError(
                    f"another server is adding documents to this index and has not finished within {timeout:g} s "
                    "(RAG_LOCK_TIMEOUT): try again later"
                ) from None
            yield False
            return
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def set_aside_orphans(self) -> list[str]:
        """Move files of the documents folder that the index does not hold (left by a killed upload) to
        ``documents/.orphans``, so they are never indexed silently; returns their names."""
        return set_aside_orphans(self.folder, self.uploaded())

    # ------------------------------------------------------------ reading

    def records(self) -> list[DocumentRecord]:
        """Every indexed document (empty when there is no index yet)."""
        try:
            return self.assistant.sources()
        except IndexNotFoundError:
            return []

    def stats(self) -> dict[str, Any] | None:
        """Index statistics, or None when there is no index yet."""
        try:
            return self.assistant.stats()
        except IndexNotFoundError:
            return None

    def uploaded(self, records: Sequence[DocumentRecord] | None = None) -> list[str]:
        """Source names of the indexed documents that live in the documents folder."""
        root = str(self.folder.resolve())
        return [r.source for r in (self.records() if records is None else records) if r.root == root]

    def conflicts(self, paths: Sequence[str | Path], names: Sequence[str] | None = None) -> list[str]:
        """The stored names that ``paths`` (uploaded as ``names``) would replace: uploaded documents of the
        same name with other bytes. :meth:`add` stores those as copies unless told to replace them."""
        names = [Path(p).name for p in paths] if names is None else list(names)
        mine = {s.casefold() for s in self.uploaded()}
        clashes = []
        for path, original in zip(paths, names, strict=True):
            name = safe_name(original)
            existing = self.folder / name
            if name.casefold() in mine and existing.is_file() and not _same_bytes(existing, Path(path)):
                clashes.append(name)
        return clashes

    # ------------------------------------------------------------ changing

    def add(
        self,
        paths: Sequence[str | Path],
        names: Sequence[str] | None = None,
        progress: bool | Callable[[float, str], None] = False,
        on_copied: Callable[[Path], None] | None = None,
        replace: bool = False,
    ) -> UploadResult:
        """Copy ``paths`` into the documents folder (as ``names``, sanitised) and index them.

        ``progress``: show a progress bar (True), or a function given the fraction done and what is being
        done (the file and page being read; with a worker).

        ``replace``: an upload named like an uploaded document (:meth:`conflicts`) takes its place, and
        its old text leaves the index; when the new file cannot be indexed, the old one is put back. By
        default it is stored beside it as a copy (``name-2.txt``).

        ``on_copied(path)`` is called for each source file once it has been copied (or refused), e.g.
        to delete an upload's temporary copy. Raises :class:`rag.RagError` only when the index itself
        cannot be written; the copies made by this call are then removed again.
        """
        names = [Path(p).name for p in paths] if names is None else list(names)
        result = UploadResult()
        with self._lock, self._documents_lock():
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.folder / PARKED, ignore_errors=True)  # left by a killed server: never indexed
            shutil.rmtree(self.folder / REPLACED, ignore_errors=True)
            self.set_aside_orphans()
            taken = {p.name.casefold() for p in self.folder.iterdir()}
            taken |= {r.source.casefold() for r in self.records()}
            replaceable = set(self.conflicts(paths, names)) if replace else set()
            copies: list[tuple[str, Path]] = []
            backups: dict[Path, Path] = {}  # replaced file -> its old bytes, until the new ones are indexed
            try:
                for path, original in zip(paths, names, strict=True):
                    try:
                        outcome = self._store(Path(path), original, taken, replaceable, backups)
                    finally:
                        if on_copied is not None:
                            on_copied(Path(path))
                    if isinstance(outcome, Path):
                        copies.append((original, outcome))
                    elif outcome[0] == "same":
                        result.unchanged.append((original, outcome[1]))
                    else:
                        result.rejected.append((original, outcome[1]))
                if not copies:
                    return result
                result.report = self._index(copies, result, progress)
            except BaseException:
                for _, copy in copies:
                    with contextlib.suppress(OSError):
                        copy.unlink()
                self._restore(backups)
                raise
            failed = {str(Path(p).resolve()): reason for p, reason in result.report.failed}
            duplicate = {str(Path(p).resolve()): same for p, same in result.report.duplicates}
            for original, copy in copies:
                reason = failed.get(str(copy.resolve()))
                same = duplicate.get(str(copy.resolve()))
                if same is not None:  # the bytes are indexed already: keep no second copy
                    with contextlib.suppress(OSError):
                        copy.unlink()
                    result.duplicates.append((original, same))
                elif reason is None:
                    (result.replaced if copy in backups else result.stored).append((original, copy.name))
                    if copy in backups:
                        backups.pop(copy).unlink(missing_ok=True)
                else:
                    with contextlib.suppress(OSError):
                        copy.unlink()
                    result.rejected.append((original, reason))
            if backups:  # a replacement that could not be indexed: the old file and its text come back
                self._restore(backups)
                self._index([], result, False)
            shutil.rmtree(self.folder / REPLACED, ignore_errors=True)
        return result

    def _restore(self, backups: dict[Path, Path]) -> None:
        """Put replaced files back (their backups over whatever is at their place)."""
        for target, backup in list(backups.items()):
            with contextlib.suppress(OSError):
                os.replace(backup, target)
            backups.pop(target)
        shutil.rmtree(self.folder / REPLACED, ignore_errors=True)

    def _index(
        self, copies: list[tuple[str, Path]], result: UploadResult, progress: bool | Callable[[float, str], None]
    ) -> IndexReport:
        """Index the folder (in the worker when there is one).

        When the worker is stopped (memory or time), each new copy is indexed alone: those it stops on
        are refused with the reason and removed (from ``copies`` too), the others are indexed.
        """
        if self.worker is None:
            return self.assistant.index([self.folder], progress=bool(progress))
        try:
            return self.worker.index([self.folder], progress=progress if callable(progress) else None)
        except IndexJobError:
            pass
        parked = self.folder / PARKED
        parked.mkdir(exist_ok=True)
        for _, copy in copies:
            os.replace(copy, parked / copy.name)
        reports: list[IndexReport] = []
        try:
            for original, copy in list(copies):
                os.replace(parked / copy.name, copy)
                try:
                    reports.append(self.worker.index([self.folder]))
                except IndexJobError as exc:
                    copy.unlink(missing_ok=True)
                    copies.remove((original, copy))
                    result.rejected.append((original, str(exc)))
        finally:
            shutil.rmtree(parked, ignore_errors=True)
        return _merged(reports)

    def _store(
        self, path: Path, original: str, taken: set[str], replaceable: set[str], backups: dict[Path, Path]
    ) -> Path | tuple[str, str]:
        """Copy one file in; returns its new path, ("same", name) or ("error", reason). A name in
        ``replaceable`` takes the place of the file of that name, whose bytes wait in ``backups``."""
        name = safe_name(original)
        suffix = Path(name).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            kinds = " ".join(UPLOAD_SUFFIXES)
            return ("error", f"unsupported file type '{suffix or '(none)'}' (supported: {kinds})")
        try:
            size = path.stat().st_size
        except OSError as exc:
            return ("error", f"cannot read the upload: {exc.strerror or exc}")
        if size > self.max_bytes:
            return (
                "error",
                f"the file is {size / 1e6:.1f} MB; the upload limit is {self.max_bytes / 1e6:g} MB "
                "(setting RAG_UPLOAD_MAX_MB)",
            )
        existing = self.folder / name
        if name.casefold() in taken and existing.is_file() and _same_bytes(existing, path):
            return ("same", name)
        replacing = name in replaceable and existing not in backups
        if not replacing:
            name = _unique(name, taken)
        target = self.folder / name
        partial = self.folder / f".upload-{uuid.uuid4().hex}.part"
        try:
            shutil.copyfile(path, partial)
            if replacing:  # the old bytes wait (hidden, never indexed) until the new ones are indexed
                (self.folder / REPLACED).mkdir(exist_ok=True)
                backup = self.folder / REPLACED / f"{uuid.uuid4().hex}-{name}"
                os.link(target, backup)
                backups[target] = backup
            os.replace(partial, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            return ("error", f"cannot store the upload: {exc.strerror or exc}")
        taken.add(name.casefold())
        return target

    def remove(self, source: str) -> bool:
        """Drop ``source`` from the index; an uploaded file is also deleted from the documents folder."""
        with self._lock, self._documents_lock():
            records = {r.source: r for r in self.records()}
            record = records.get(source)
            if record is None:
                return False
            self.assistant.remove(source)
            if record.root == str(self.folder.resolve()):
                target = (self.folder / source).resolve()
                if target.parent == self.folder.resolve():
                    with contextlib.suppress(FileNotFoundError):
                        target.unlink()
            return True


def _merged(reports: list[IndexReport]) -> IndexReport:
    """One report for several index runs of the same folder, one after the other."""
    merged = IndexReport()
    for report in reports:
        for name in ("added", "updated", "removed", "failed", "skipped", "duplicates", "notes"):
            getattr(merged, name).extend(getattr(report, name))
        merged.chunks_embedded += report.chunks_embedded
        merged.chunks_reused += report.chunks_reused
        merged.chunks_total = report.chunks_total
        merged.seconds += report.seconds
        merged.extraction.update(report.extraction)
    merged.unchanged = [s for s in reports[-1].unchanged if s not in merged.added] if reports else []
    return merged


def _unique(name: str, taken: set[str]) -> str:
    if name.casefold() not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    number = 2
    while True:
        candidate = f"{stem}-{number}.{ext}" if ext else f"{stem}-{number}"
        if candidate.casefold() not in taken:
            return candidate
        number += 1


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                block_a, block_b = fa.read(1 << 20), fb.read(1 << 20)
                if block_a != block_b:
                    return False
                if not block_a:
                    return True
    except OSError:
        return False


__all__ = ["FOLDER_NAME", "UPLOAD_SUFFIXES", "DocumentLibrary", "UploadResult", "safe_name"]
