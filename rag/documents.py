"""Documents: find files, read them (txt, md, html, pdf, docx) into text with section headings.

Offsets everywhere in the assistant are into ``Document.text``. For plain text that text is the
decoded file with universal newlines, exactly what ``open(path).read()`` returns for a UTF-8 file; for
Markdown it is that too, except that each table is written as ``label | header: value`` rows
(:mod:`rag.markdown_tables`); for HTML, PDF and DOCX it is the extracted text (tables as rows, forms
one field a line).
"""

from __future__ import annotations

import bisect
import hashlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .boxes import Run, boxes_for
from .budgets import Budget, check_chars, checkpoint, safe_docx, within
from .encodings import decode_text
from .errors import DocumentError
from .html_text import escape_unclosed as escape_unclosed  # re-exported: it lived here before rag.html_text
from .html_text import html_to_text as html_to_text  # re-exported: tests and callers read HTML through it
from .html_text import read_html
from .html_text import repair_markup as repair_markup  # re-exported: it lived here before rag.html_text
from .markdown_tables import markdown_text
from .sections import Section, text_sections
from .sections import markdown_sections as markdown_sections  # re-exported: headings of Markdown text

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | IMAGE_SUFFIXES | {".pdf", ".docx"}
#: How HTML, Markdown and DOCX files are read into text; recorded with the index (beside the PDF
#: extractor's name), so an index built by older readers is rebuilt. Change it when their text changes.
READERS = "html-tables-1 markdown-tables-1 docx-forms-1"


@dataclass
class Document:
    """A readable file: its extracted text, where it came from, and its sections."""

    source: str
    path: Path
    text: str
    format: str
    sections: list[Section] = field(default_factory=list)
    encoding: str = "utf-8"
    #: PDFs and images: where each piece of ``text`` is on its page (sorted by offset).
    runs: list[Run] = field(default_factory=list)
    #: What extraction found (pages, OCR, tables, warnings); empty for plain formats.
    report: dict[str, Any] = field(default_factory=dict)
    #: The document's own title where it shows one (a PDF's largest lines on its first page), else "".
    title: str = ""
    #: The lines that say which document this is (a PDF's first-page fields and dates), joined by "; ".
    identity: str = ""

    def page_at(self, offset: int) -> int | None:
        """1-based page of the text at ``offset`` (PDFs and images), else None."""
        if self.format not in ("pdf", "image"):
            return None
        match = re.match(r"page (\d+)", self.section_at(offset))
        return int(match.group(1)) if match else None

    def boxes(self, start: int, end: int) -> list[tuple[float, float, float, float]]:
        """Boxes (0-1 of the page, top-left origin) of ``text[start:end]``, merged per line."""
        return boxes_for(self.runs, start, end)

    def section_at(self, offset: int) -> str:
        """Title of the section in effect at ``offset`` ('' when there is none)."""
        starts = [s.start for s in self.sections]
        i = bisect.bisect_right(starts, offset) - 1
        return self.sections[i].title if i >= 0 else ""


@dataclass(frozen=True)
class FoundFile:
    """A file found under an indexed path: where it is and the name it is indexed under."""

    path: Path
    source: str
    root: str


@dataclass(frozen=True)
class Skipped:
    """A file that was found but not read, with the reason."""

    path: str
    reason: str


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (memory stays flat for big files)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def discover(paths: list[Path]) -> tuple[list[FoundFile], list[Skipped]]:
    """Expand files and folders into the supported files under them.

    Hidden files and folders are passed over; unsupported files and symlinks that lead out of
    the folder are returned as skipped with their reason. A path that does not exist raises.
    """
    found: list[FoundFile] = []
    skipped: list[Skipped] = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            raise DocumentError(f"no such file or folder: {given}")
        if path.is_file():
            resolved = path.resolve()
            if resolved.suffix.lower() not in SUPPORTED_SUFFIXES and path.suffix.lower() not in SUPPORTED_SUFFIXES:
                skipped.append(Skipped(str(path), _unsupported(path)))
                continue
            found.append(FoundFile(resolved, path.name, str(resolved)))
            continue
        root = path.resolve()
        for file in _walk(root, skipped):
            found.append(FoundFile(file, file.relative_to(root).as_posix(), str(root)))
    return found, skipped


def _unsupported(path: Path) -> str:
    kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
    return f"unsupported file type '{path.suffix or '(none)'}' (supported: {kinds})"


def _walk(root: Path, skipped: list[Skipped]) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            file = Path(folder) / name
            if file.is_symlink():
                target = file.resolve()
                if not target.is_relative_to(root):
                    skipped.append(Skipped(str(file), "symlink pointing outside the indexed folder (not followed)"))
                    continue
                if not target.is_file():
                    skipped.append(Skipped(str(file), "broken symlink"))
                    continue
            if file.suffix.lower() not in SUPPORTED_SUFFIXES:
                skipped.append(Skipped(str(file), _unsupported(file)))
                continue
            yield file


def load(path: Path, source: str | None = None, max_bytes: int | None = None) -> Document:
    """Read one file into a :class:`Document`; raises :class:`DocumentError` with the reason."""
    path = Path(path)
    source = source or path.name
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise DocumentError(
                f"file is {size:,} bytes ({size / 1e6:.1f} MB), over the {max_bytes / 1e6:g} MB limit "
                "(raise RAG_MAX_FILE_MB)"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read file: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return _load_pdf(data, source, path)
    if suffix in IMAGE_SUFFIXES:
        return _load_pdf(data, source, path, image=True)
    if suffix == ".docx":
        return _load_docx(data, source, path)
    if not data:
        raise DocumentError("empty file: nothing to index")
    text, encoding = decode_text(data)
    if not text.strip():
        raise DocumentError("file holds only white space: nothing to index")
    if suffix in HTML_SUFFIXES:
        html_text, sections, report = read_html(text)
        if not html_text.strip():
            raise DocumentError("HTML page has no visible text")
        return Document(source, path, html_text, "html", sections, encoding, report=report)
    if suffix in {".md", ".markdown"}:
        md_text, sections, tables = markdown_text(text)
        report = {"tables": tables} if tables else {}
        return Document(source, path, md_text, "markdown", sections, encoding, report=report)
    return Document(source, path, text, "text", text_sections(text), encoding)


# ---------------------------------------------------------------- PDF, image and DOCX readers


def _load_pdf(data: bytes, source: str, path: Path, image: bool = False) -> Document:
    if not data:
        raise DocumentError(f"empty {'image' if image else 'PDF'} file (0 bytes)")
    from .pdf import extract_image, extract_pdf

    try:
        extracted = extract_image(data) if image else extract_pdf(data)
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken file must never sink the batch
        raise DocumentError(f"unreadable {'image' if image else 'PDF'} ({type(exc).__name__}: {exc})") from None
    report = extracted.report
    if not extracted.text.strip():
        pages = report["pages"]
        why = "; ".join(report["warnings"]) or "no text layer and no text found by OCR"
        raise DocumentError(f"no extractable text in {pages} page(s): {why}")
    sections = [Section(start, f"page {number}") for start, number in extracted.pages]
    fmt = "image" if image else "pdf"
    return Document(
        source, path, extracted.text, fmt, sections, fmt, runs=extracted.runs, report=report, title=extracted.title,
        identity="; ".join(report.get("identity", [])),
    )


def _load_docx(data: bytes, source: str, path: Path) -> Document:
    if not data:
        raise DocumentError("empty DOCX file (0 bytes)")
    try:
        import docx
    except ImportError:  # pragma: no cover - optional dependency
        raise DocumentError("reading .docx needs python-docx: pip install python-docx") from None
    data = safe_docx(data)  # zip bombs and DTDs stop here, before python-docx parses anything
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file, not a crash
        raise DocumentError(f"damaged DOCX ({type(exc).__name__})") from None
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    from .forms import form_lines
    from .tables import table_lines, two_column_form

    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    tables = 0
    for number, block in enumerate(document.iter_inner_content()):  # paragraphs and tables, in document order
        if number % 1024 == 0:
            checkpoint()
            check_chars(offset)
        if isinstance(block, Table):
            rows = [[cell.text for cell in row.cells] for row in block.rows]
            form = two_column_form(rows) if rows and max(len(r) for r in rows) == 2 else None
            text = "\n".join(form if form is not None else table_lines(rows))
            tables += 1 if text else 0
        elif isinstance(block, Paragraph):
            text = form_lines(block.text).strip()  # several "Label: value" fields on a line: one a line
        else:  # pragma: no cover - python-docx yields only these two
            continue
        if not text:
            continue
        if parts:
            parts.append("\n\n")
            offset += 2
        style = (block.style.name if isinstance(block, Paragraph) and block.style is not None else "") or ""
        if style.lower().startswith(("heading", "title")):
            sections.append(Section(offset, text[:200]))
        parts.append(text)
        offset += len(text)
    text = "".join(parts)
    if not text.strip():
        raise DocumentError("DOCX has no text")
    report = {"tables": tables} if tables else {}
    return Document(source, path, text, "docx", sections, "docx", report=report)


def load_within(path: Path, source: str | None, max_bytes: int | None, budget: Budget) -> Document:
    """:func:`load` under ``budget`` (decompressed bytes, characters, seconds); over it, DocumentError."""
    with within(budget):
        document = load(path, source, max_bytes)
        check_chars(len(document.text))
    return document
