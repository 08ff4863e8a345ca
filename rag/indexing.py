"""Indexing: which files changed, reading, chunking and embedding them a group at a time, as store changes.

:class:`Indexer` plans one run for :meth:`rag.Assistant.index` (which holds the write lock and the
transaction); :func:`chunk_hash` and :func:`document_record` are shared with the Ray pipeline
(:mod:`rag.distributed`), so both build the same chunks and records.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Generator, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from .budgets import Budget
from .chunking import Chunker
from .config import Settings
from .documents import FoundFile, file_digest
from .embedding import Embedder
from .errors import DocumentError
from .read_worker import Read, ReadProcess, chunker_options, read_file
from .stores.records import Changes, DocumentRecord, NewChunk, VectorStore
from .types import IndexReport

#: Chunks read and embedded together while indexing (memory holds one such group, not the corpus).
EMBED_GROUP = 2048
#: With a reading process: the fewest chunks embedded at once while it has no further file ready.
OVERLAP_GROUP = 256
#: Runs of at least two files and this many bytes are read in a second process while this one embeds.
READ_PROCESS_BYTES = 256_000


class Indexer:
    """Plans the changes of one indexing run over ``store`` (see :meth:`plan`)."""

    def __init__(self, settings: Settings, store: VectorStore, chunker: Chunker, embedder: Embedder) -> None:
        self.settings = settings
        #: Read in a second process: True, False, or None to decide by the run's size (see ``_read_process``).
        self.read_process: bool | None = None
        self.store = store
        self.chunker = chunker
        self.embedder = embedder

    def plan(
        self, found: list[FoundFile], paths: list[Path], report: IndexReport, progress: bool, fresh: bool = False
    ) -> Changes:
        """The changes that bring the store in line with ``found`` (files under ``paths``): unchanged files
        skipped, changed ones read and embedded lazily (the upserts are a generator, consumed in the
        store's transaction), files gone from an indexed folder removed. Problems go to ``report``."""
        existing = {} if fresh else {d.source: d for d in self.store.documents()}
        changes = Changes()
        to_load: list[tuple[FoundFile, str, Any]] = []
        seen: set[str] = set()
        # Same bytes as a document that stays indexed (or as a file earlier in this run): not indexed twice.
        folders = {str(p.resolve()) for p in paths if p.is_dir()}
        present = {item.source for item in found}
        by_digest = {d.digest: d.source for d in existing.values() if d.root not in folders or d.source in present}
        for item in found:
            if item.source in seen:
                report.failed.append((str(item.path), f"another file in this run is also named '{item.source}'"))
                continue
            seen.add(item.source)
            old = existing.get(item.source)
            if old is not None and old.root != item.root and Path(old.path).exists() and old.path != str(item.path):
                report.failed.append(
                    (str(item.path), f"'{item.source}' is already indexed from {old.path}: rename one of them")
                )
                continue
            try:
                stat = item.path.stat()
            except OSError as exc:
                report.failed.append((str(item.path), f"cannot read file: {exc.strerror or exc}"))
                continue
            if old is not None and old.size == stat.st_size and old.mtime_ns == stat.st_mtime_ns:
                report.unchanged.append(item.source)
                continue
            try:
                digest = file_digest(item.path)
            except OSError as exc:
                report.failed.append((str(item.path), f"cannot read file: {exc.strerror or exc}"))
                continue
            if old is not None and old.digest == digest:
                report.unchanged.append(item.source)
                changes.touches.append(
                    document_record(item, digest, stat, old.format, old.encoding, old.chunks, old.report)
                )
                continue
            same = by_digest.get(digest) if stat.st_size else None  # empty files fail on their own
            if old is None and same is not None and same != item.source:
                report.duplicates.append((str(item.path), same))
                continue
            by_digest.setdefault(digest, item.source)
            to_load.append((item, digest, stat))

        # Removals: files that were in an indexed folder and are gone from it.
        for source, old in existing.items():
            if old.root in folders and source not in present:
                changes.removals.append(source)
                report.removed.append(source)

        if to_load:
            changes.upserts = self._read_and_embed(to_load, set(existing), report, progress)
        return changes

    def _read_and_embed(
        self, to_load: list[tuple[FoundFile, str, Any]], existing: set[str], report: IndexReport, progress: bool
    ) -> Iterator[tuple[DocumentRecord, list[NewChunk]]]:
        """Read, chunk and embed the changed files a group at a time, yielding each with its chunks.

        Consumed inside the store's transaction: memory holds one group (``EMBED_GROUP`` chunks), not
        the corpus. Only chunk texts not already stored are embedded. A large run reads and chunks in a
        second process (:class:`rag.read_worker.ReadProcess`) while this one embeds the files before:
        then a group is embedded as soon as no further file is waiting, so neither side waits long.
        """
        max_bytes = int(self.settings.max_file_mb * 1e6)
        budget = Budget.from_settings(self.settings)
        bar = None
        if progress:
            from tqdm import tqdm

            total = sum(stat.st_size for _, _, stat in to_load)
            bar = tqdm(total=total, unit="B", unit_scale=True, desc="Indexing", dynamic_ncols=True)
        # Half of a file's bytes on the bar move as its pages are read (OCR included), half as its chunks
        # are embedded; the bar names the file being read.
        readings: dict[int, _ReadingBar] = {}

        def reading_bar(position: int) -> _ReadingBar:
            if position not in readings:
                item, _, stat = to_load[position]
                readings[position] = _ReadingBar(bar, item.source, stat.st_size // 2)
            return readings[position]

        def pages(position: int, done: int, total: int, what: str) -> None:
            reading_bar(position).page(done, total, what)

        reader = self._read_process(to_load, max_bytes, budget)

        def read_here(first: int) -> Iterator[tuple[int, Read | str]]:
            return self._read_here(to_load, max_bytes, budget, reading_bar, first)

        outcomes: Generator[tuple[int, Read | str], None, None] = (
            self._read_here(to_load, max_bytes, budget, reading_bar)
            if reader is None
            else reader.outcomes(pages, read_here)
        )
        between = None if reader is None or bar is None else lambda: reader.drain_pages(pages)
        try:
            if reader is not None:
                reader.start()
                _ = self.embedder.model  # loads (torch, the weights) while the child reads the first files
            group: list[tuple[DocumentRecord, list[tuple[str, Any, str]], int]] = []
            for position, outcome in outcomes:
                item, digest, stat = to_load[position]
                reading = reading_bar(position)
                del readings[position]
                if isinstance(outcome, str):
                    report.failed.append((str(item.path), outcome))
                    if bar is not None:
                        bar.update(stat.st_size - reading.shown)
                    continue
                reading.finish()
                if outcome.format in ("text", "markdown", "html") and not outcome.encoding.startswith("utf"):
                    report.notes.append(
                        (
                            str(item.path),
                            f"not UTF-8: read as {outcome.encoding} (a guess; save it as UTF-8 to be sure)",
                        )
                    )
                found = json.dumps(outcome.report, separators=(",", ":")) if outcome.report else "{}"
                chunks = outcome.chunks
                record = document_record(item, digest, stat, outcome.format, outcome.encoding, len(chunks), found)
                if outcome.report:
                    report.extraction[item.source] = outcome.report
                hashed = [(chunk_hash(t), c, t) for c, t in zip(chunks, outcome.inputs, strict=True)]
                group.append((record, hashed, stat.st_size - reading.shown))
                (report.updated if item.source in existing else report.added).append(item.source)
                held = sum(len(hashed) for _, hashed, _ in group)
                if held >= EMBED_GROUP or (reader is not None and held >= OVERLAP_GROUP and not reader.ready()):
                    yield from self._embed_group(group, report, bar, between)
                    group = []
            if group:
                yield from self._embed_group(group, report, bar, between)
        finally:
            outcomes.close()
            if reader is not None:
                reader.close()  # a reading child still running is stopped here
            if bar is not None:
                bar.close()

    def _read_process(
        self, to_load: list[tuple[FoundFile, str, Any]], max_bytes: int, budget: Budget
    ) -> ReadProcess | None:
        """A second process to read the files in, when the run is large enough to gain from it (and the
        chunker is the model's own, which the child can build again), else None."""
        use = self.read_process
        if use is None:
            size = sum(stat.st_size for _, _, stat in to_load)
            use = len(to_load) >= 2 and size >= READ_PROCESS_BYTES and _cores() >= 2
        tokenizer = self.embedder.model_path / "tokenizer.json"
        if not use or self.chunker.tokenizer is not self.embedder.tokenizer or not tokenizer.is_file():
            return None
        files = [(item.path, item.source) for item, _, _ in to_load]
        return ReadProcess(files, tokenizer, chunker_options(self.chunker), max_bytes, budget)

    def _read_here(
        self,
        to_load: list[tuple[FoundFile, str, Any]],
        max_bytes: int,
        budget: Budget,
        reading_bar: Callable[[int], _ReadingBar],
        first: int = 0,
    ) -> Generator[tuple[int, Read | str], None, None]:
        """Each file from ``first`` on read and chunked in this process, in order: a :class:`Read` or why it failed."""
        for position, (item, _, _) in enumerate(to_load[first:], start=first):
            reading = reading_bar(position)
            try:
                outcome: Read | str = read_file(item.path, item.source, max_bytes, budget, self.chunker, reading.page)
            except DocumentError as exc:
                outcome = str(exc)
            except Exception as exc:  # noqa: BLE001 - one bad file must not sink the batch
                outcome = f"unexpected error while reading: {type(exc).__name__}: {exc}"
            yield position, outcome

    def _embed_group(
        self,
        group: list[tuple[DocumentRecord, list[tuple[str, Any, str]], int]],
        report: IndexReport,
        bar: Any,
        between: Callable[[], None] | None = None,
    ) -> Iterator[tuple[DocumentRecord, list[NewChunk]]]:
        vectors = self.store.cached_vectors({h for _, hashed, _ in group for h, _, _ in hashed})
        report.chunks_reused += sum(1 for _, hashed, _ in group for h, _, _ in hashed if h in vectors)
        missing: dict[str, str] = {}
        for _, hashed, _ in group:
            for h, _, text in hashed:
                if h not in vectors:
                    missing.setdefault(h, text)
        size = sum(nbytes for _, _, nbytes in group)
        moved = [0, 0]  # chunks embedded, bytes shown: the bar counts bytes of files, spread over chunks

        def advance(chunks: int) -> None:
            if between is not None:
                between()  # pages the reading process has read meanwhile
            moved[0] += chunks
            target = size * moved[0] // len(missing)
            bar.update(target - moved[1])
            moved[1] = target

        if bar is not None:
            bar.set_description(f"Embedding {len(missing)} passage(s)")
        if missing:
            fresh = self.embedder.encode(list(missing.values()), progress=advance if bar is not None else None)
            vectors.update(zip(missing.keys(), fresh, strict=True))
            report.chunks_embedded += len(missing)
        if bar is not None:
            bar.update(size - moved[1])
        for record, hashed, _ in group:
            yield (
                record,
                [NewChunk(h, c.start, c.end, c.section, c.text, vectors[h], c.layout, c.title) for h, c, _ in hashed],
            )


def _cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _ReadingBar:
    """The progress bar's share of one file's reading: ``share`` bytes moved page by page."""

    def __init__(self, bar: Any, source: str, share: int) -> None:
        self.bar, self.source, self.share = bar, source, share
        self.shown = 0
        self.pages = 0  # text-layer pages read
        self.said = 0.0
        if bar is not None:
            bar.set_description(f"Reading {source}")

    def page(self, done: int, total: int, what: str) -> None:
        if self.bar is None:
            return
        if what == "page":
            self.pages = done
            self._move(self.share * min(done, total) // max(total, 1))
        else:  # OCR of the scans, after the text layer of every page: the two in one fraction
            self._move(self.share * min(self.pages + done, self.pages + total) // max(self.pages + total, 1))
        now = time.monotonic()
        if now - self.said >= 0.25 or done == total:  # a hundred text pages a second need not each be said
            self.said = now
            self.bar.set_description(f"Reading {self.source}, {what} {done} of {total}")

    def finish(self) -> None:
        self._move(self.share)

    def _move(self, target: int) -> None:
        if self.bar is not None and target > self.shown:
            self.bar.update(target - self.shown)
            self.shown = target


def chunk_hash(text: str) -> str:
    """The content key of a chunk's embedding input (SHA-256, 32 hex digits): equal texts share a vector."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def document_record(
    item: FoundFile, digest: str, stat: Any, fmt: str, encoding: str, chunks: int, report: str = "{}"
) -> DocumentRecord:
    """The catalog record of a found file (timestamps are set by the catalog)."""
    return DocumentRecord(
        item.source,
        str(item.path),
        item.root,
        digest,
        stat.st_size,
        stat.st_mtime_ns,
        fmt,
        encoding,
        chunks,
        0.0,
        0.0,
        report,
    )


def library_versions() -> dict[str, str]:
    """Versions of the libraries an index's vectors and chunks depend on, for its manifest."""
    out = {}
    for name in (
        "rag-assistant",
        "sentence-transformers",
        "transformers",
        "torch",
        "faiss-cpu",
        "langchain-text-splitters",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
