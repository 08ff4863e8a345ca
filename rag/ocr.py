"""OCR with Tesseract: scanned PDF pages and images into positioned words.

Used only where a page has no usable text layer. Pages are rendered with PDFium at :data:`OCR_DPI`
and read by the ``tesseract`` program (Debian packages ``tesseract-ocr`` and ``tesseract-ocr-eng``)
run as a subprocess (hOCR output: words, and the baseline and type size of their lines), two pages at a
time (one per core).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from typing import Any

from .errors import DocumentError
from .layout import Word
from .progress import page_read

#: Rendering resolution for OCR (dots per inch). Measured on three filing pages (a statement, a note, prose):
#: words matching the text layer 0.95 / 0.89 / 0.96 at 200 dpi, 0.93 / 0.88 / 0.96 at 300, 0.66 / 0.82 / 0.93
#: at 150; 200 reads as well as 300 with 0.44x the pixels.
OCR_DPI = 200
#: Words Tesseract is less sure of than this (0-100) are left out: they are mostly specks and rules.
MIN_CONFIDENCE = 30
#: Largest image read, in pixels (a decompression bomb is refused before it is decoded).
MAX_PIXELS = 60_000_000
#: Most pixels of one page sent to Tesseract (an A4 page at 200 dpi has 3.9 million): a larger page or
#: image is read at a lower resolution, so each Tesseract stays near 200 MB whatever the scan's size.
OCR_MAX_PIXELS = 16_000_000
#: Seconds Tesseract may spend on one page.
PAGE_TIMEOUT = 120


def available() -> bool:
    """Whether the ``tesseract`` program is installed."""
    return shutil.which("tesseract") is not None


def image_words(image: Any, scale: float = 1.0) -> list[Word]:
    """Words Tesseract reads in a PIL image; boxes divided by ``scale`` (pixels per output unit).

    A word's box spans its ink across and its line of type down: from the line's baseline under the word,
    Tesseract's descender depth below it and its text height above (hOCR's ``baseline``, ``x_size`` and
    ``x_descenders``), as a PDF text layer gives every character the height of its font. Words of one
    line then stand level with each other, whatever their ascenders and descenders, and are grouped into
    rows as printed text is.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    # Pages are read two at a time (one per core): one thread each, or Tesseract's OpenMP oversubscribes.
    # Only Tesseract's own environment gets the limit: set in this process, OMP_THREAD_LIMIT=1 reaches
    # torch, whose bf16 matrix products then come out wrong (measured: cosine 0.12 to the right vector).
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = ["tesseract", "stdin", "stdout", "-l", "eng", "hocr"]
    try:
        done = subprocess.run(command, input=buffer.getvalue(), capture_output=True, env=env, timeout=PAGE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DocumentError(f"OCR took over {PAGE_TIMEOUT} s on one page") from None
    except OSError as exc:
        raise DocumentError(f"tesseract could not run ({exc}): install tesseract-ocr") from None
    if done.returncode != 0:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        raise DocumentError(f"tesseract failed on a page: {last}")
    reader = _Hocr()
    reader.feed(done.stdout.decode("utf-8", "replace"))
    reader.close()
    return [
        Word(text, x0 / scale, y0 / scale, x1 / scale, y1 / scale)
        for text, (x0, y0, x1, y1), confidence in reader.words
        if text and confidence >= MIN_CONFIDENCE
    ]


class _Hocr(HTMLParser):
    """Words of Tesseract's hOCR: (text, box in pixels, confidence), boxes as :func:`image_words` says."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words: list[tuple[str, tuple[float, float, float, float], float]] = []
        self._line: dict[str, list[float]] = {}
        self._word: dict[str, list[float]] | None = None
        self._text: list[str] = []
        self._depth = 0  # open tags inside the current word

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._word is not None:
            self._depth += 1
            return
        values = dict(attrs)
        kind = values.get("class") or ""
        if kind == "ocr_line" or kind in ("ocr_caption", "ocr_header", "ocr_textfloat"):
            self._line = _properties(values.get("title") or "")
        elif kind == "ocrx_word":
            self._word, self._text, self._depth = _properties(values.get("title") or ""), [], 0

    def handle_endtag(self, tag: str) -> None:
        if self._word is None:
            return
        if self._depth:
            self._depth -= 1
            return
        word, self._word = self._word, None
        box = word.get("bbox")
        if box is None or len(box) != 4:
            return
        self.words.append((" ".join("".join(self._text).split()), _type_box(box, self._line), _first(word, "x_wconf")))

    def handle_data(self, data: str) -> None:
        if self._word is not None:
            self._text.append(data)


def _properties(title: str) -> dict[str, list[float]]:
    """hOCR's ``title`` ("bbox 10 20 30 40; x_wconf 96") as numbers by name."""
    found: dict[str, list[float]] = {}
    for part in title.split(";"):
        name, *values = part.split()
        try:
            found[name] = [float(v) for v in values]
        except ValueError:
            continue  # a property that is not numbers (image "..."): not used
    return found


def _first(values: dict[str, list[float]], name: str) -> float:
    found = values.get(name)
    return found[0] if found else -1.0


def _type_box(box: list[float], line: dict[str, list[float]]) -> tuple[float, float, float, float]:
    """A word's ink ``box`` across, and its ``line``'s type down (baseline, text height and descenders)."""
    x0, y0, x1, y1 = box
    edges, baseline, size = line.get("bbox"), line.get("baseline"), _first(line, "x_size")
    if not edges or len(edges) != 4 or not baseline or len(baseline) != 2 or size <= 0:
        return x0, y0, x1, y1  # no line around the word: its ink
    descent = max(0.0, _first(line, "x_descenders"))
    base = edges[3] + baseline[1] + baseline[0] * ((x0 + x1) / 2 - edges[0])
    top, bottom = base + descent - size, base + descent
    if not top <= (y0 + y1) / 2 <= bottom:
        return x0, y0, x1, y1  # the word is not on the line's baseline (a line Tesseract joined wrongly)
    return x0, top, x1, bottom


def ocr_pdf_pages(pages: Sequence[tuple[int, Any]]) -> dict[int, list[Word]]:
    """OCR of PDFium pages given as (number, page): words in PDF points, origin top left."""
    if not available():
        return {}
    render = threading.Lock()  # PDFium renders one page at a time; the tesseract processes run two at once

    def read(item: tuple[int, Any]) -> tuple[int, list[Word]]:
        number, page = item
        width, height = page.get_size()
        scale = _scale(width, height, OCR_DPI / 72)
        with render:
            image = page.render(scale=scale, grayscale=True).to_pil()
        return number, image_words(image, scale)

    # Each page is rendered when a Tesseract is free for it: at most two page images exist at once.
    results: dict[int, list[Word]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for number, words in pool.map(read, pages):
            results[number] = words
            page_read(len(results), len(pages), "OCR of page")  # here: the pool's threads do not listen
    return results


def _scale(width: float, height: float, scale: float) -> float:
    """``scale``, or less when a ``width`` x ``height`` page would have more than :data:`OCR_MAX_PIXELS`."""
    if width * height * scale * scale > OCR_MAX_PIXELS:
        return float((OCR_MAX_PIXELS / (width * height)) ** 0.5)
    return scale


def read_image(data: bytes) -> tuple[float, float, list[Word]]:
    """An image file's size in pixels and the words OCR reads in it."""
    from PIL import Image, UnidentifiedImageError

    image: Image.Image
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise _too_large(image.width, image.height)
        image.load()
    except Image.DecompressionBombError as exc:  # Pillow's own check, on sizes far over ours
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "more pixels than Pillow will read"
        raise DocumentError(
            f"image has {size}, over the limit of {MAX_PIXELS:,} pixels: not read (scan it smaller)"
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DocumentError(f"damaged or unsupported image ({type(exc).__name__})") from None
    if not available():
        raise DocumentError("reading images needs Tesseract OCR: install tesseract-ocr and tesseract-ocr-eng")
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    width, height = float(image.width), float(image.height)
    scale = _scale(width, height, 1.0)
    if scale < 1.0:
        image = image.resize((max(1, int(width * scale)), max(1, int(height * scale))))
    return width, height, image_words(image, scale)


def _too_large(width: int, height: int) -> DocumentError:
    return DocumentError(
        f"image is {width} x {height} pixels, over the limit of {MAX_PIXELS:,} pixels: not read (scan it smaller)"
    )
