"""Documents: find files, read them (txt, md, html, pdf, docx) into text with section headings.

Offsets everywhere in the assistant are into ``Document.text``. For plain text and markdown that
text is the decoded file with universal newlines, exactly what ``open(path).read()`` returns for a
UTF-8 file; for HTML, PDF and DOCX it is the extracted text.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape as _escape_html
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from .boxes import Run, boxes_for
from .budgets import Budget, check_chars, checkpoint, safe_docx, within
from .errors import DocumentError

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | IMAGE_SUFFIXES | {".pdf", ".docx"}


@dataclass(frozen=True)
class Section:
    """A heading (or PDF page) that starts at ``start`` in the document text."""

    start: int
    title: str


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
        html_text, sections = html_to_text(text)
        if not html_text.strip():
            raise DocumentError("HTML page has no visible text")
        return Document(source, path, html_text, "html", sections, encoding)
    if suffix in {".md", ".markdown"}:
        return Document(source, path, text, "markdown", markdown_sections(text), encoding)
    return Document(source, path, text, "text", text_sections(text), encoding)


# ---------------------------------------------------------------- encodings

_BOMS = [
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes to text with universal newlines; returns ``(text, encoding)``.

    BOMs are honoured, then strict UTF-8, then the best guess of charset-normalizer for legacy
    encodings. Every decode is strict: bytes are never dropped. Binary data raises.
    """
    text: str | None = None
    encoding = ""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(name.replace("-sig", ""))
                encoding = name
            except UnicodeDecodeError:
                raise DocumentError(f"file starts with a {name} byte-order mark but is not valid {name}") from None
            break
    if text is None:
        if b"\x00" in data[:4096]:
            text, encoding = _guess_utf16(data)
        else:
            try:
                text, encoding = data.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                text, encoding = _decode_legacy(data)
    controls = len(_CONTROL.findall(text[:65536]))
    if controls > max(8, len(text[:65536]) // 100):
        raise DocumentError("looks like a binary file, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


def _guess_utf16(data: bytes) -> tuple[str, str]:
    head = data[:4096]
    even_nuls = head[0::2].count(0)
    odd_nuls = head[1::2].count(0)
    name = "utf-16-le" if odd_nuls > even_nuls else "utf-16-be"
    if max(even_nuls, odd_nuls) > len(head) // 4:
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            pass
    raise DocumentError("looks like a binary file, not text")


def _decode_legacy(data: bytes) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    results = from_bytes(data[: 1 << 20])
    best = results.best()
    western = _western(data)
    if western is not None:
        # Western European text (cp1252/Latin-1, the most common legacy case) wins unless a detector
        # finds clearly better text in another code page; on short texts detectors guess at random.
        mine = [m for m in results if m.encoding in ("cp1252", "latin_1", "iso8859_15")]
        cleaner = [m for m in results if mine and m.chaos < min(x.chaos for x in mine)]
        likelier = [m for m in results if m.coherence > max((x.coherence for x in mine), default=0.0) + 0.2]
        if not cleaner and not likelier:
            return western
    candidates = [best.encoding] if best is not None else []
    # On a tie charset-normalizer picks alphabetically (cp1250 before cp1252), turning "naïve" into
    # "naďve"; prefer cp1252, the most common legacy encoding, when it scores exactly as well.
    if best is not None and any(
        m.encoding == "cp1252" and m.chaos == best.chaos and m.coherence == best.coherence for m in results
    ):
        candidates = ["cp1252"]
    candidates += ["cp1252", "latin-1"]
    for name in candidates:
        try:
            return data.decode(name), name
        except (UnicodeDecodeError, LookupError):
            continue
    raise DocumentError("cannot decode the file's text")  # pragma: no cover - latin-1 always decodes


_INSIDE_WORD = "’‘´'·-–"


def _western(data: bytes) -> tuple[str, str] | None:
    """``(text, "cp1252")`` when ``data`` reads as Western European cp1252 text, else None.

    Such text is mostly ASCII letters with some accented ones, and has no symbol (``³``, ``¿``...)
    inside a word: the marks of another code page read as cp1252 (Polish, Russian, Greek...).
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    ascii_letters = other_letters = 0
    previous = ""
    for i, ch in enumerate(text):
        if ch.isascii():
            ascii_letters += ch.isalpha()
        elif ch.isalpha():
            other_letters += 1
        elif previous.isalpha() and text[i + 1 : i + 2].isalpha() and ch not in _INSIDE_WORD:
            return None
        previous = ch
    if other_letters > ascii_letters:
        return None
    return text, "cp1252"


# ---------------------------------------------------------------- headings of plain text and markdown

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_SETEXT = re.compile(r"^(?P<title>[^\n]+)\n(?:=+|-+)[ \t]*$", re.M)
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.M)


def markdown_sections(text: str) -> list[Section]:
    """ATX (``# Title``) and setext headings of a markdown text, outside code fences."""
    fenced: list[tuple[int, int]] = []
    marks = [m.start() for m in _FENCE.finditer(text)]
    for a, b in zip(marks[0::2], marks[1::2] + [len(text)] * (len(marks) % 2), strict=False):
        fenced.append((a, b))

    def in_fence(pos: int) -> bool:
        return any(a <= pos < b for a, b in fenced)

    found = [Section(m.start(), m.group(2).strip()) for m in _MD_HEADING.finditer(text) if not in_fence(m.start())]
    found += [
        Section(m.start(), m.group("title").strip())
        for m in _SETEXT.finditer(text)
        if m.group("title").strip() and not in_fence(m.start()) and not m.group("title").lstrip().startswith("#")
    ]
    return sorted(found, key=lambda s: s.start)


_LINE = re.compile(r"[^\n]+")
_HEADING_MARK = re.compile(r"^(?:<[hH][1-6]>?|[<#]+)")  # "<h2Title" or "## Title"; not the H of "High"


def text_sections(text: str) -> list[Section]:
    """Heading-like lines of plain text: short, unpunctuated lines followed by a longer paragraph."""
    sections: list[Section] = []
    lines = list(_LINE.finditer(text))
    for i, m in enumerate(lines[:-1]):
        line = m.group().strip()
        nxt = lines[i + 1].group().strip()
        words = line.split()
        if (
            2 <= len(words) <= 12
            and len(line) <= 100
            and line[-1] not in ".,;:!?\"'”)-"
            and len(words[-1]) > 1
            and (line[0].isupper() or line[0] in "<#")
            and line.count("(") == line.count(")")
            and nxt[:1].isupper()
            and len(nxt.split()) > len(words) + 3
        ):
            sections.append(Section(m.start(), _HEADING_MARK.sub("", line).strip() or line))
    return sections


# ---------------------------------------------------------------- HTML

_KNOWN_TAGS = set(
    """
    a abbr address area article aside audio b base bdi bdo blockquote body br button canvas caption cite code
    col colgroup data datalist dd del details dfn dialog div dl dt em embed fieldset figcaption figure footer
    form h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label legend li link main map
    mark menu meta meter nav noscript object ol optgroup option output p param picture pre progress q rp rt ruby
    s samp script search section select slot small source span strong style sub summary sup svg table tbody td
    template textarea tfoot th thead time title tr track u ul var video wbr center font big tt strike nobr math
    """.split()  # noqa: SIM905 - a word list reads best as text
)
_BLOCK_TAGS = set(
    """
    address article aside blockquote body br dd details dialog div dl dt fieldset figcaption figure footer form
    h1 h2 h3 h4 h5 h6 header hgroup hr li main nav ol p pre section summary table tbody tfoot thead tr td th ul
    title caption center
    """.split()  # noqa: SIM905 - a word list reads best as text
)
_SKIP_TAGS = {"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object", "textarea"}
_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "title"}
_TAG_START = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)")
_GLUED_PREFIX = re.compile(r"^(h[1-6]|p|li|dt|dd|td|th|b|i|em|strong)(?=[A-Z])")


def repair_markup(html: str) -> str:
    """Make stray or broken tags harmless before parsing, so no text is swallowed.

    ``<h2Implications for ...`` (a tag glued to its text) becomes ``<h2>Implications for ...</h2>``;
    any other ``<word`` that is not an HTML element is kept as literal text.
    """
    out: list[str] = []
    pos = 0
    for m in _TAG_START.finditer(html):
        name = m.group(1)
        if name.lower() in _KNOWN_TAGS:
            continue
        out.append(html[pos : m.start()])
        glued = _GLUED_PREFIX.match(name)
        if glued:
            tag = glued.group(1)
            line_end = html.find("\n", m.end(), m.end() + 1000)  # bounded: linear on one long line
            line_end = min(len(html), m.end() + 1000) if line_end < 0 else line_end
            line = html[m.start() + 1 + len(tag) : line_end]
            if "<" not in line and ">" not in line:
                out.append(f"<{tag}>{line}</{tag}>")
                pos = line_end
                continue
        out.append("&lt;")
        pos = m.start() + 1
    out.append(html[pos:])
    return "".join(out)


def escape_unclosed(html: str) -> str:
    """Turn each ``<`` whose markup is not closed before the next ``<`` into ``&lt;`` (kept as text).

    Python's HTML parser rescans unclosed markup (``<a<a<a...`` without ``>``) from every ``<``, which
    is quadratic; after this pass every tag it sees is closed. Linear time: each scan starts where the
    previous one stopped. Comments (``<!-- ... -->``) are skipped whole when they are closed.
    """
    out: list[str] = []
    pos, end = 0, len(html)
    gt = -1  # the next ">" after the current "<" (end when there is none)
    comments_close = True  # False once a "<!--" found no "-->" after it (none can follow either)
    i = html.find("<")
    while i >= 0:
        if comments_close and html.startswith("<!--", i):
            close = html.find("-->", i + 4)
            if close >= 0:
                i = html.find("<", close + 3)
                continue
            comments_close = False
        if gt <= i:
            gt = html.find(">", i + 1)
            gt = end if gt < 0 else gt
        nxt = html.find("<", i + 1, gt)
        if nxt >= 0 or gt == end:
            out.append(html[pos:i])
            out.append("&lt;")
            pos = i + 1
        i = nxt if nxt >= 0 else html.find("<", gt)
    out.append(html[pos:])
    return "".join(out)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.pending_newlines = 0
        self.skip_depth = 0
        self.pre_depth = 0
        self.heading: tuple[str, int, int] | None = None  # tag, offset, len(parts) at start
        self.sections: list[Section] = []

    def _break(self, n: int) -> None:
        if self.length:
            self.pending_newlines = max(self.pending_newlines, n)

    def _emit(self, text: str) -> None:
        if not text:
            return
        if self.pending_newlines:
            self.parts.append("\n" * self.pending_newlines)
            self.length += self.pending_newlines
            self.pending_newlines = 0
        elif self.parts and self.parts[-1].endswith(" ") and text.startswith(" "):
            text = text.lstrip(" ")
            if not text:
                return
        self.parts.append(text)
        self.length += len(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            if tag not in {"br", "hr"}:
                self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag == "pre":
            self.pre_depth += 1
        if tag in _BLOCK_TAGS:
            self._break(2 if tag in _HEADING_TAGS or tag in {"p", "div", "section", "article", "table"} else 1)
        if tag in _HEADING_TAGS:
            self._close_heading()
            self.heading = (tag, -1, len(self.parts))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.handle_data(f" {alt} ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            return
        self.handle_starttag(tag, attrs)
        if tag in _HEADING_TAGS:
            self._close_heading()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in _HEADING_TAGS:
            self._close_heading()
        if tag in _BLOCK_TAGS:
            self._break(2 if tag in _HEADING_TAGS or tag in {"p", "div", "section", "article", "table"} else 1)

    def _close_heading(self) -> None:
        if self.heading is None:
            return
        _, offset, first_part = self.heading
        self.heading = None
        title = " ".join("".join(self.parts[first_part:]).split())
        if title and offset >= 0:
            self.sections.append(Section(offset, title[:200]))

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if not self.pre_depth:
            data = re.sub(r"\s+", " ", data)
            if not self.length or self.pending_newlines:
                data = data.lstrip(" ")
        if not data:
            return
        if self.heading is not None and self.heading[1] < 0:
            tag, _, _ = self.heading
            starts_at = self.length + (self.pending_newlines if self.length else 0)
            self.heading = (tag, starts_at, len(self.parts))
        self._emit(data)

    def text(self) -> str:
        self._close_heading()
        return "".join(self.parts)


def html_to_text(html: str) -> tuple[str, list[Section]]:
    """Visible text of an HTML page (no script/style), paragraphs kept, with its headings."""
    parser = _TextExtractor()
    parser.feed(escape_unclosed(repair_markup(html)))
    parser.close()
    raw = parser.text()
    # Trailing spaces before newlines are cosmetic; remove them while keeping section offsets right.
    cleaned: list[str] = []
    shift: list[tuple[int, int]] = []  # (raw offset, removed so far)
    removed = 0
    pos = 0
    for m in re.finditer(r" +(?=\n)", raw):
        cleaned.append(raw[pos : m.start()])
        removed += m.end() - m.start()
        shift.append((m.end(), removed))
        pos = m.end()
    cleaned.append(raw[pos:])
    text = "".join(cleaned)
    ends = [s[0] for s in shift]

    def moved(offset: int) -> int:
        i = bisect.bisect_right(ends, offset) - 1
        return offset - (shift[i][1] if i >= 0 else 0)

    stripped = len(text) - len(text.rstrip())
    text = text.rstrip() if stripped else text
    sections = [Section(moved(s.start), s.title) for s in parser.sections if moved(s.start) < len(text)]
    return text, sections


def escape_html(text: str) -> str:
    """Escape text for safe display inside HTML (document text and file names)."""
    return _escape_html(text, quote=True)


# ---------------------------------------------------------------- PDF and DOCX


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
        source, path, extracted.text, fmt, sections, fmt, runs=extracted.runs, report=report, title=extracted.title
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

    from .tables import table_lines

    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    tables = 0
    for number, block in enumerate(document.iter_inner_content()):  # paragraphs and tables, in document order
        if number % 1024 == 0:
            checkpoint()
            check_chars(offset)
        if isinstance(block, Table):
            text = "\n".join(table_lines([[cell.text for cell in row.cells] for row in block.rows]))
            tables += 1 if text else 0
        elif isinstance(block, Paragraph):
            text = block.text.strip()
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
