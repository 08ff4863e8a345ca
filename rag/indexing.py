"""Indexing: which files changed, reading, chunking and embedding them a group at a time, as store changes.

:class:`Indexer` plans one run for :meth:`rag.Assistant.index` (which holds the write lock and the
transaction); :func:`chunk_hash` and :func:`document_record` are shared with the Ray pipeline
(:mod:`rag.distributed`), so both build the same chunks and records.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from .budgets import Budget
from .chunking import Chunker
from .config import Settings
from .documents import FoundFile, file_digest, load_within
from .embedding import Embedder
from .errors import DocumentError
from .progress import listening
from .stores.records import Changes, DocumentRecord, NewChunk, VectorStore
from .types import IndexReport

#: Chunks read and embedded together while indexing (memory holds one such group, not the corpus).
EMBED_GROUP = 2048


class Indexer:
    """Plans the changes of one indexing run over ``store`` (see :meth:`plan`)."""

    def __init__(self, settings: Settings, store: VectorStore, chunker: Chunker, embedder: Embedder) -> None:
        self.settings = settings
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
        the corpus. Only chunk texts not already stored are embedded.
        """
        max_bytes = int(self.settings.max_file_mb * 1e6)
        budget = Budget.from_settings(self.settings)
        bar = None
        if progress:
            from tqdm import tqdm

            total = sum(stat.st_size for _, _, stat in to_load)
            bar = tqdm(total=total, unit="B", unit_scale=True, desc="Indexing", dynamic_ncols=True)
        try:
            group: list[tuple[DocumentRecord, list[tuple[str, Any, str]], int]] = []
            for item, digest, stat in to_load:
                # Half of a file's bytes on the bar move as its pages are read (OCR included), half as
                # its chunks are embedded; the bar names the file being read.
                reading = _ReadingBar(bar, item.source, stat.st_size // 2)
                try:
                    with listening(reading.page):
                        document = load_within(item.path, item.source, max_bytes, budget)
                    reading.finish()
                    chunks = self.chunker.chunk(document)
                    if not chunks:
                        raise DocumentError("no text to index after extraction")
                except DocumentError as exc:
                    why: str | None = str(exc)
                except Exception as exc:  # noqa: BLE001 - one bad file must not sink the batch
                    why = f"unexpected error while reading: {type(exc).__name__}: {exc}"
                else:
                    why = None
                if why is not None:
                    report.failed.append((str(item.path), why))
                    if bar is not None:
                        bar.update(stat.st_size - reading.shown)
                    continue
                if document.format in ("text", "markdown", "html") and not document.encoding.startswith("utf"):
                    report.notes.append(
                        (
                            str(item.path),
                            f"not UTF-8: read as {document.encoding} (a guess; save it as UTF-8 to be sure)",
                        )
                    )
                found = json.dumps(document.report, separators=(",", ":")) if document.report else "{}"
                record = document_record(item, digest, stat, document.format, document.encoding, len(chunks), found)
                if document.report:
                    report.extraction[item.source] = document.report
                inputs = [self.chunker.embedding_input(item.source, c) for c in chunks]
                hashed = [(chunk_hash(t), c, t) for c, t in zip(chunks, inputs, strict=True)]
                group.append((record, hashed, stat.st_size - reading.shown))
                (report.updated if item.source in existing else report.added).append(item.source)
                if sum(len(hashed) for _, hashed, _ in group) >= EMBED_GROUP:
                    yield from self._embed_group(group, report, bar)
                    group = []
            if group:
                yield from self._embed_group(group, report, bar)
        finally:
            if bar is not None:
                bar.close()

    def _embed_group(
        self, group: list[tuple[DocumentRecord, list[tuple[str, Any, str]], int]], report: IndexReport, bar: Any
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
