"""PDF files (and scanned pages) into positioned words, page by page, under budgets.

The text layer is read with PDFium (pypdfium2): every character with its box. Pages without a usable
text layer are rendered and read by Tesseract OCR (:mod:`rag.ocr`). The words then go through
:mod:`rag.layout`, which gives the reading-order text and the boxes behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .boxes import Run
from .budgets import check_chars, checkpoint
from .errors import DocumentError
from .layout import Layout, Word, lay_out, title_of
from .page_forms import identity_lines
from .progress import page_read

#: Names the extraction; recorded with each document so that an index built by another one is noticed.
EXTRACTOR = "pdfium-layout-6"

#: A page with fewer visible characters than this has no usable text layer (a scan): it is OCR'd.
MIN_TEXT_CHARS = 20
#: PDFium's character flags: generated characters (spaces, line breaks it inserts) have no box of their own.
_SPACES = {" ", "\u00a0", "\t", "\u2002", "\u2003", "\u2009", "\u200b"}


@dataclass
class Budgets:
    """PDF limits beside the per-file ones of :mod:`rag.budgets` (characters, seconds): pages per file, and
    characters per page (a page over it is skipped and reported, the rest of the file is read)."""

    max_pages: int = 2000
    max_page_chars: int = 200_000


@dataclass
class PdfPage:
    """A page's words in points (origin top left), its size, and how they were found."""

    number: int
    width: float
    height: float
    words: list[Word] = field(default_factory=list)
    source: str = "text"  # "text", "ocr" or "empty"
    note: str = ""


def _page_words(textpage: object, count: int, height: float) -> tuple[list[Word], int]:
    """Words of a PDFium text page; returns (words, visible characters)."""
    import pypdfium2.raw as raw

    handle = textpage.raw  # type: ignore[attr-defined]
    rect = raw.FS_RECTF()
    words: list[Word] = []
    chars: list[str] = []
    box = [0.0, 0.0, 0.0, 0.0]
    visible = 0

    def flush() -> None:
        if chars:
            words.append(Word("".join(chars), box[0], box[1], box[2], box[3]))
            chars.clear()

    for i in range(count):
        code = raw.FPDFText_GetUnicode(handle, i)
        ch = chr(code) if 0 < code < 0x110000 else ""
        if not ch or ch in _SPACES or ch in "\r\n" or raw.FPDFText_IsGenerated(handle, i) == 1:
            flush()
            continue
        if ch in "\ufffe\x02\u00ad":  # a hyphen PDFium marks as soft: the word goes on on the next line
            if chars:
                chars.append("-")
            flush()
            continue
        raw.FPDFText_GetLooseCharBox(handle, i, rect)
        x0, x1, y0, y1 = rect.left, rect.right, height - rect.top, height - rect.bottom
        if x1 - x0 <= 0 and y1 - y0 <= 0:
            continue
        visible += 1
        if chars:  # words end at spaces; also at a wide gap or a change of line with no space between
            gap = x0 - box[2]
            size = max(1.0, box[3] - box[1], y1 - y0)
            if gap > 0.6 * size or gap < -2.0 * size or abs((y0 + y1) / 2 - (box[1] + box[3]) / 2) > 0.5 * size:
                flush()
        if chars:
            box[0], box[1], box[2], box[3] = min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1)
        else:
            box[0], box[1], box[2], box[3] = x0, y0, x1, y1
        chars.append(ch)
    flush()
    return words, visible


def read_pdf(
    data: bytes,
    budgets: Budgets | None = None,
    ocr: Callable[[list[tuple[int, object]]], dict[int, list[Word]]] | None = None,
) -> list[PdfPage]:
    """Every page of a PDF as positioned words; scanned pages through ``ocr`` when it is given.

    Raises :class:`DocumentError` for files that cannot be opened (damaged, password-protected) or
    that go over a budget.
    """
    import pypdfium2 as pdfium

    budgets = budgets or Budgets()
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise DocumentError(
                "encrypted PDF that needs a password to open: save a copy without the password and index that"
            ) from None
        raise DocumentError(f"damaged or truncated PDF ({message})") from None
    try:
        count = len(pdf)
        if count > budgets.max_pages:
            raise DocumentError(f"PDF has {count:,} pages, over the limit of {budgets.max_pages:,} pages per file")
        pages: list[PdfPage] = []
        scans: list[tuple[int, object]] = []
        total = 0
        for index in range(count):
            checkpoint()  # the file's budget of seconds (OCR, run after, has its own limit per page)
            page = pdf[index]
            width, height = page.get_size()
            result = PdfPage(index + 1, float(width), float(height))
            textpage = page.get_textpage()
            chars = textpage.count_chars()
            if chars > budgets.max_page_chars:
                result.source, result.note = "empty", f"page {index + 1}: {chars:,} characters, over the page limit"
            else:
                result.words, visible = _page_words(textpage, chars, float(height))
                total += visible
                check_chars(total)
                if visible < MIN_TEXT_CHARS and _has_image(page):
                    scans.append((index + 1, page))  # a scan: OCR'd below (its few characters kept if OCR finds none)
                if not result.words:
                    result.source = "empty"
            textpage.close()
            if not scans or scans[-1][0] != index + 1:
                page.close()  # now, not at garbage collection: a page can hold a large decoded content stream
            pages.append(result)
            page_read(index + 1, count + len(scans))  # the scans found so far are read again by OCR
        if scans and ocr is not None:
            found = ocr(scans)
            for number, words in found.items():
                page_result = pages[number - 1]
                if words:
                    page_result.words, page_result.source = words, "ocr"
                elif not page_result.words:
                    page_result.note = f"page {number}: no text layer, and OCR found no text"
        return pages
    finally:
        pdf.close()


def _has_image(page: object) -> bool:
    import pypdfium2.raw as raw

    handle = page.raw  # type: ignore[attr-defined]
    for i in range(raw.FPDFPage_CountObjects(handle)):
        obj = raw.FPDFPage_GetObject(handle, i)
        if raw.FPDFPageObj_GetType(obj) in (raw.FPDF_PAGEOBJ_IMAGE, raw.FPDF_PAGEOBJ_PATH, raw.FPDF_PAGEOBJ_FORM):
            return True
    return False


@dataclass
class Extracted:
    """A PDF's or image's text with its page sections, the boxes behind it, and the extraction report."""

    text: str
    pages: list[tuple[int, int]]  # (offset where the page's text starts, page number)
    runs: list[Run]
    report: dict[str, Any]
    title: str = ""


def extract_pdf(data: bytes, budgets: Budgets | None = None) -> Extracted:
    """Text of a PDF in reading order, OCR for scanned pages, and what was found on each page."""
    from .ocr import available, ocr_pdf_pages

    pages = read_pdf(data, budgets, ocr_pdf_pages)
    layout = lay_out([(p.number, p.width, p.height, p.words) for p in pages])
    warnings = [p.note for p in pages if p.note]
    scanned = [p for p in pages if p.source == "empty" and not p.note]
    if scanned and not available():
        warnings.append(f"{len(scanned)} page(s) without a text layer: install tesseract-ocr to read them by OCR")
    report = _report(pages, layout, warnings)
    starts = [(p.start, p.number) for p in layout.pages if p.end > p.start]
    title = title_of(pages[0].words) if pages else ""
    first = next((p for p in layout.pages if p.end > p.start), None)
    report["title"] = title
    report["identity"] = identity_lines(layout.text[first.start : first.end]) if first else []
    return Extracted(layout.text, starts, layout.runs, report, title)


def extract_image(data: bytes) -> Extracted:
    """Text of an image file by OCR, as one page."""
    from .ocr import read_image

    width, height, words = read_image(data)
    page = PdfPage(1, width, height, words, "ocr" if words else "empty")
    layout = lay_out([(1, width, height, words)])
    warnings = [] if words else ["page 1: OCR found no text"]
    return Extracted(layout.text, [(0, 1)] if layout.text else [], layout.runs, _report([page], layout, warnings))


def _report(pages: list[PdfPage], layout: Layout, warnings: list[str]) -> dict[str, Any]:
    return {
        "pages": len(pages),
        "text_pages": sum(p.source == "text" for p in pages),
        "ocr_pages": sum(p.source == "ocr" for p in pages),
        "empty_pages": sum(p.source == "empty" for p in pages),
        "tables": sum(p.tables for p in layout.pages),
        "running_lines_removed": sum(p.dropped_rows for p in layout.pages),
        "warnings": warnings,
        "extractor": EXTRACTOR,
    }


def describe_extraction(report: dict[str, Any]) -> str:
    """One line of an extraction report: "29 pages (29 with text, 0 by OCR, 0 empty), 32 tables"."""
    if not report:
        return ""
    if "pages" not in report:  # a DOCX or HTML file: tables only
        return f"{report.get('tables', 0)} tables"
    line = (
        f"{report.get('pages', 0)} pages ({report.get('text_pages', 0)} with text, {report.get('ocr_pages', 0)} "
        f"by OCR, {report.get('empty_pages', 0)} empty), {report.get('tables', 0)} tables"
    )
    warnings = report.get("warnings") or []
    return line + (f", {len(warnings)} warning(s)" if warnings else "")
