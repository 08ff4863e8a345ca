"""OCR with Tesseract: scanned PDF pages and images into positioned words.

Used only where a page has no usable text layer. Pages are rendered with PDFium at :data:`OCR_DPI`
and read by the ``tesseract`` program (Debian packages ``tesseract-ocr`` and ``tesseract-ocr-eng``)
through pytesseract, two pages at a time (one per core).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .errors import DocumentError
from .layout import Word

#: Rendering resolution for OCR (dots per inch). Measured on three filing pages (a statement, a note, prose):
#: words matching the text layer 0.95 / 0.89 / 0.96 at 200 dpi, 0.93 / 0.88 / 0.96 at 300, 0.66 / 0.82 / 0.93
#: at 150; 200 reads as well as 300 with 0.44x the pixels.
OCR_DPI = 200
#: Words Tesseract is less sure of than this (0-100) are left out: they are mostly specks and rules.
MIN_CONFIDENCE = 30
#: Largest image read, in pixels (a decompression bomb is refused before it is decoded).
MAX_PIXELS = 60_000_000
#: Seconds Tesseract may spend on one page.
PAGE_TIMEOUT = 120


def available() -> bool:
    """Whether the ``tesseract`` program is installed."""
    return shutil.which("tesseract") is not None


def image_words(image: Any, scale: float = 1.0) -> list[Word]:
    """Words Tesseract reads in a PIL image; boxes divided by ``scale`` (pixels per output unit)."""
    import pytesseract

    # Pages are read two at a time (one per core): one thread each, or Tesseract's OpenMP oversubscribes.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        data = pytesseract.image_to_data(image, lang="eng", output_type=pytesseract.Output.DICT, timeout=PAGE_TIMEOUT)
    except RuntimeError as exc:  # pytesseract's timeout
        raise DocumentError(f"OCR took over {PAGE_TIMEOUT} s on one page ({exc})") from None
    words: list[Word] = []
    for text, conf, left, top, width, height in zip(
        data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=False
    ):
        text = (text or "").strip()
        if not text or float(conf) < MIN_CONFIDENCE:
            continue
        words.append(Word(text, left / scale, top / scale, (left + width) / scale, (top + height) / scale))
    return words


def ocr_pdf_pages(pages: Sequence[tuple[int, Any]]) -> dict[int, list[Word]]:
    """OCR of PDFium pages given as (number, page): words in PDF points, origin top left."""
    if not available():
        return {}
    scale = OCR_DPI / 72

    # Rendering is done here, one page at a time; the tesseract processes run two at once.
    images: list[tuple[int, Any]] = []
    for number, page in pages:
        width, height = page.get_size()
        if width * height * scale * scale > MAX_PIXELS:
            continue
        images.append((number, page.render(scale=scale, grayscale=True).to_pil()))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(lambda item: (item[0], image_words(item[1], scale)), images))
    return results


def read_image(data: bytes) -> tuple[float, float, list[Word]]:
    """An image file's size in pixels and the words OCR reads in it."""
    import io

    from PIL import Image, UnidentifiedImageError

    image: Image.Image
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise DocumentError(
                f"image is {image.width}x{image.height} pixels, over the limit of {MAX_PIXELS:,} pixels"
            )
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DocumentError(f"damaged or unsupported image ({type(exc).__name__})") from None
    if not available():
        raise DocumentError("reading images needs Tesseract OCR: install tesseract-ocr and tesseract-ocr-eng")
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return float(image.width), float(image.height), image_words(image)
