"""The indexed originals, for showing where a citation comes from: a document's text and its pages as images.

Citations point at character offsets of a document's extracted text (and, for PDFs and images, at a
page and boxes on it). :class:`Originals` gives that text back (extracted again from the indexed file
and checked against the stored chunks, so offsets still match) and renders a page as PNG bytes with
pypdfium2, cached on disk in the index directory under a size cap. Only files the index holds are
opened, by their source name as the index records it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .boxes import boxes_for, parse_layout
from .budgets import Budget
from .documents import IMAGE_SUFFIXES, Document, load_within
from .errors import DocumentError, InputError
from .stores.fs import atomic_write

if TYPE_CHECKING:
    from .config import Settings
    from .stores import ChunkRecord, DocumentRecord, VectorStore

#: Folder of rendered pages inside the index directory, and the most bytes it may hold.
PAGES_FOLDER = "pages"
PAGE_CACHE_BYTES = 200_000_000
#: Rendered width in pixels: the default, and the most a request may ask for; pages larger than
#: ``MAX_PAGE_POINTS`` on a side (a poster, or a hostile size) are refused.
PAGE_WIDTH = 1200
MAX_PAGE_WIDTH = 2400
MAX_PAGE_POINTS = 14_400
#: Most pixels of one rendered page (a letter page 2,400 px wide has 7.4 million): a page so tall or so
#: narrow that its width would need more is rendered narrower, so one render holds at most about
#: 150 MB (the bitmap, its RGB copy and the PNG).
MAX_PAGE_PIXELS = 16_000_000
#: Most pixels of an image file the viewer decodes (the OCR limit: larger images are not indexed either).
MAX_IMAGE_PIXELS = 60_000_000
#: Pages rendered at once in this process; more requests wait their turn (bounds the memory of renders).
RENDERS_AT_ONCE = 2
_RENDERS = threading.BoundedSemaphore(RENDERS_AT_ONCE)
#: Documents whose text is kept in memory after extraction (the viewer asks for the same one often).
TEXT_CACHE = 4


class Originals:
    """Text and page images of the documents of one index."""

    def __init__(self, store: VectorStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._texts: OrderedDict[tuple[str, str], Document] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, source: str) -> DocumentRecord:
        """The index's record of ``source``; :class:`InputError` when the index does not hold it."""
        for record in self.store.documents():
            if record.source == source:
                return record
        raise InputError(f"{source!r} is not in the index: 'rag sources' lists the indexed files")

    def path(self, source: str) -> Path:
        """Where the indexed file ``source`` is, checked to be the file that was indexed (to read it,
        use :meth:`open`: the path may point elsewhere by the time it is opened again)."""
        with self.open(source) as f:
            return Path(f.name)

    def open(self, source: str) -> BinaryIO:
        """The indexed file ``source``, open for reading at its start, checked through this very handle to
        hold the bytes that were indexed (a file swapped after the check cannot be what is read)."""
        record = self.record(source)
        path = Path(record.path)
        try:
            f = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
        except OSError:
            raise InputError(f"{source} was indexed from {path}, which cannot be read any more") from None
        try:
            digest = hashlib.sha256()
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
            f.seek(0)
        except OSError:
            f.close()
            raise InputError(f"{source} was indexed from {path}, which cannot be read any more") from None
        if digest.hexdigest() != record.digest:
            f.close()
            raise InputError(f"{source} changed since it was indexed: run 'rag index' again to see it as it is now")
        return f

    def document(self, source: str) -> Document:
        """The document as it was indexed (its text is what citation offsets point into)."""
        record = self.record(source)
        key = (source, record.digest)
        with self._lock:
            if key in self._texts:
                self._texts.move_to_end(key)
                return self._texts[key]
        path = self.path(source)
        document = load_within(path, source, int(self.settings.max_file_mb * 1e6), Budget.from_settings(self.settings))
        chunks = self.store.document_chunks(source)
        if any(document.text[c.start : c.end] != c.text for c in chunks[:3] + chunks[-3:]):
            raise InputError(f"{source} reads differently now than when it was indexed: rebuild the index")
        with self._lock:
            self._texts[key] = document
            while len(self._texts) > TEXT_CACHE:
                self._texts.popitem(last=False)
        return document

    def page_count(self, source: str) -> int:
        """Pages of a PDF (1 for an image, 0 for other documents)."""
        with self.open(source) as f:
            path = Path(f.name)
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                return 1
            if suffix != ".pdf":
                return 0
            pdf = _open_pdf(path, f)
            try:
                return len(pdf)
            finally:
                pdf.close()

    def render_page(self, source: str, page: int, width: int = PAGE_WIDTH) -> bytes:
        """PNG bytes of page ``page`` (1-based) of a PDF or image, ``width`` pixels wide, cached on disk."""
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise InputError(f"page must be a whole number from 1, got {page!r}")
        if isinstance(width, bool) or not isinstance(width, int) or not 16 <= width <= MAX_PAGE_WIDTH:
            raise InputError(f"width must be a whole number of pixels from 16 to {MAX_PAGE_WIDTH}, got {width!r}")
        record = self.record(source)
        name = hashlib.sha256(f"{record.digest}:{page}:{width}".encode()).hexdigest()[:32] + ".png"
        cached = Path(self.settings.index_dir) / PAGES_FOLDER / name
        with contextlib.suppress(OSError):
            data = cached.read_bytes()
            _touch(cached)  # recently used: evicted last
            return data
        with self.open(source) as f, _RENDERS:
            image = _render(f, Path(record.path), page, width)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=False)
            del image
            data = buffer.getvalue()
        with contextlib.suppress(OSError):  # a read-only index still shows pages, uncached
            cached.parent.mkdir(exist_ok=True)
            atomic_write(cached, data)
            _touch(cached)
            _trim(cached.parent, PAGE_CACHE_BYTES)
        return data

    def locate(self, source: str, start: int, end: int) -> tuple[int | None, list[tuple[float, float, float, float]]]:
        """The page of ``[start, end)`` of a PDF or image and its boxes there (0-1 of the page, per line);
        ``(None, [])`` for documents without pages."""
        for chunk in self.chunks(source):
            if chunk.start <= start < chunk.end and chunk.layout:
                page, runs = parse_layout(chunk.layout)
                return page, boxes_for(runs, start, min(end, chunk.end))
        return None, []

    def chunks(self, source: str) -> list[ChunkRecord]:
        """The stored chunks of ``source`` in order."""
        self.record(source)
        return self.store.document_chunks(source)


def _touch(path: Path) -> None:
    """Mark a cached page as used now, to the nanosecond (the file system's own clock may tick in
    milliseconds: two pages used within one tick would tie, and the wrong one could be evicted)."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))


def _open_pdf(path: Path, handle: BinaryIO | None = None) -> Any:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(handle if handle is not None else str(path))
    except pdfium.PdfiumError as exc:
        raise DocumentError(f"{path.name}: cannot open the PDF ({exc})") from None


def page_scale(points_w: float, points_h: float, width: int) -> float:
    """Pixels per point to render a page ``points_w`` x ``points_h`` points ``width`` pixels wide, or
    narrower when that would take more than :data:`MAX_PAGE_PIXELS`."""
    scale = width / points_w
    if points_w * points_h * scale * scale > MAX_PAGE_PIXELS:
        scale = (MAX_PAGE_PIXELS / (points_w * points_h)) ** 0.5
        while math.ceil(points_w * scale) * math.ceil(points_h * scale) > MAX_PAGE_PIXELS:  # whole pixels
            scale *= 0.995
    return scale


def _render(handle: BinaryIO, path: Path, page: int, width: int) -> Any:
    """The page of the file open as ``handle`` (named ``path``) as a PIL image ``width`` pixels wide
    (narrower when it would exceed :data:`MAX_PAGE_PIXELS`)."""
    from PIL import Image

    if path.suffix.lower() in IMAGE_SUFFIXES:
        if page != 1:
            raise InputError(f"{path.name} is an image: it has one page, not page {page}")
        with Image.open(handle) as original:  # reads the header only: the size is known before decoding
            if original.width * original.height > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"{path.name} is {original.width} x {original.height} pixels, over the limit of "
                    f"{MAX_IMAGE_PIXELS:,} pixels: too large to show"
                )
            scale = page_scale(original.width, original.height, width)
            size = (max(1, round(original.width * scale)), max(1, round(original.height * scale)))
            original.draft("RGB", size)  # JPEG: decode at a reduced size
            return original.convert("RGB").resize(size)
    if path.suffix.lower() != ".pdf":
        raise InputError(f"{path.name} has no pages to show: its text is shown instead")
    pdf = _open_pdf(path, handle)
    try:
        if page > len(pdf):
            raise InputError(f"{path.name} has {len(pdf)} page(s), not page {page}")
        item = pdf[page - 1]
        points_w, points_h = item.get_size()
        if not 0 < points_w <= MAX_PAGE_POINTS or not 0 < points_h <= MAX_PAGE_POINTS:
            raise InputError(f"page {page} of {path.name} is {points_w:.0f} x {points_h:.0f} points: too large to show")
        bitmap = item.render(scale=page_scale(points_w, points_h, width))
        image = bitmap.to_pil().convert("RGB")
        item.close()
        return image
    finally:
        pdf.close()


def _trim(folder: Path, limit: int) -> None:
    """Delete the least recently used files of ``folder`` until it holds at most ``limit`` bytes."""
    files = []
    for item in folder.glob("*.png"):
        with contextlib.suppress(OSError):
            stat = item.stat()
            files.append((stat.st_mtime_ns, stat.st_size, item))
    total = sum(size for _, size, _ in files)
    for _, size, item in sorted(files):
        if total <= limit:
            break
        with contextlib.suppress(OSError):
            item.unlink()
            total -= size
