"""Budgets for reading untrusted files: decompressed bytes, characters and seconds per file.

A loader runs inside :func:`within` (which :func:`rag.documents.load_within` sets up) and calls
:func:`checkpoint` now and then; a file over a budget raises :class:`DocumentError` with the reason and
the setting to raise, so it is reported and skipped while the rest of the batch goes on.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import DocumentError

if TYPE_CHECKING:
    from .config import Settings

MB = 1_000_000


@dataclass(frozen=True)
class Budget:
    """Limits for one file (the defaults are those of :class:`rag.Settings`)."""

    #: Decompressed bytes of the XML inside one DOCX (zip members).
    unzipped_bytes: int = 64 * MB
    #: Characters of extracted text per file.
    chars: int = 20_000_000
    #: Seconds to extract one file's text.
    seconds: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Budget:
        """The budget the settings give (``max_unzipped_mb``, ``max_file_chars``, ``max_file_seconds``)."""
        return cls(int(settings.max_unzipped_mb * MB), settings.max_file_chars, float(settings.max_file_seconds))


@dataclass(frozen=True)
class _Running:
    budget: Budget
    deadline: float


_CURRENT: contextvars.ContextVar[_Running | None] = contextvars.ContextVar("rag_budget", default=None)


@contextlib.contextmanager
def within(budget: Budget) -> Iterator[None]:
    """Run the block under ``budget`` (its clock starts now)."""
    token = _CURRENT.set(_Running(budget, time.monotonic() + budget.seconds))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> Budget:
    """The budget in effect (the defaults outside :func:`within`)."""
    running = _CURRENT.get()
    return running.budget if running is not None else Budget()


def checkpoint() -> None:
    """Raise :class:`DocumentError` when the file has taken longer than its budget of seconds."""
    running = _CURRENT.get()
    if running is not None and time.monotonic() > running.deadline:
        raise DocumentError(
            f"reading took longer than {running.budget.seconds:g} s, the limit per file (raise RAG_MAX_FILE_SECONDS)"
        )


def check_chars(count: int) -> None:
    """Raise :class:`DocumentError` when a file's text is longer than the budget of characters."""
    limit = current().chars
    if count > limit:
        raise DocumentError(
            f"the extracted text has {count:,} characters, over the limit of {limit:,} per file "
            "(raise RAG_MAX_FILE_CHARS)"
        )


#: Zip members kept for python-docx: the XML parts. Others (images, embedded files) are replaced by
#: empty members and never decompressed: they carry no text.
_XML_SUFFIXES = (".xml", ".rels")
_MAX_MEMBERS = 10_000
_PIECE = 1 << 20
#: An XML part compressed more than :data:`MAX_XML_RATIO` times may hold at most :data:`RATIO_SHARE` of the
#: unzipped budget (``RAG_MAX_UNZIPPED_MB``; 8 MB of the default 64 MB). Word's own XML compresses 5 to 20
#: times; a part repeating one tag 300 to 1,000 times, and parsing tens of megabytes of it tied up the
#: indexing slot for minutes (a 184 KB file with 63 MB of XML: 121 s and 1,193 MB before the time limit
#: refused it).
MAX_XML_RATIO = 100
RATIO_SHARE = 1 / 8


def safe_docx(data: bytes) -> bytes:
    """A copy of a DOCX (zip) that is safe to parse: XML members decompressed under the budget, other members
    emptied, XML with a DTD refused. The budget is checked against the sizes the zip's directory declares,
    before anything is decompressed; a member is never read past its declared size (zipfile stops there, and
    a part that is longer fails its CRC: a damaged DOCX), so no part can expand further than declared.

    Raises :class:`DocumentError` with the reason.
    """
    limit = current().unzipped_bytes
    try:
        source = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentError(f"damaged DOCX (not a zip file: {exc})") from None
    with source:
        members = source.infolist()
        if len(members) > _MAX_MEMBERS:
            raise DocumentError(f"DOCX has {len(members):,} parts, over the limit of {_MAX_MEMBERS:,}")
        xml = [m for m in members if m.filename.lower().endswith(_XML_SUFFIXES) and not m.is_dir()]
        declared = sum(m.file_size for m in xml)
        if declared > limit:
            raise _too_big(declared, limit)
        for member in xml:
            _check_ratio(member, member.file_size, limit)
        wanted = {id(m) for m in xml}
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
            for member in members:
                if member.is_dir():
                    continue
                if id(member) not in wanted:
                    copy.writestr(member.filename, b"")
                    continue
                pieces: list[bytes] = []
                size = 0
                try:
                    with source.open(member) as f:
                        while piece := f.read(_PIECE):
                            size += len(piece)
                            _check_ratio(member, size, limit)
                            pieces.append(piece)
                            checkpoint()
                except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
                    raise DocumentError(f"damaged DOCX (part {member.filename}: {exc})") from None
                blob = b"".join(pieces)
                del pieces
                if b"<!DOCTYPE" in blob or b"<!ENTITY" in blob:
                    raise DocumentError(
                        f"DOCX part {member.filename} declares XML entities (Word never writes them): not read"
                    )
                copy.writestr(member.filename, blob)
                del blob
    return out.getvalue()


def _check_ratio(member: zipfile.ZipInfo, size: int, limit: int) -> None:
    """Refuse an XML part of ``size`` bytes that expands more than :data:`MAX_XML_RATIO` times and holds more
    than :data:`RATIO_SHARE` of the unzipped budget ``limit``."""
    packed = max(member.compress_size, 1)
    allowed = limit * RATIO_SHARE
    if size > allowed and size > MAX_XML_RATIO * packed:
        raise DocumentError(
            f"DOCX part {member.filename} expands {size / packed:,.0f} times ({size / MB:,.1f} MB from "
            f"{packed / 1000:,.0f} KB): a part compressed over {MAX_XML_RATIO} times may hold at most "
            f"{allowed / MB:g} MB (a zip bomb?): not read"
        )


def _too_big(size: int, limit: int) -> DocumentError:
    return DocumentError(
        f"DOCX expands to more than {limit / MB:g} MB of XML ({size / MB:,.0f} MB seen; a zip bomb?): not read "
        "(raise RAG_MAX_UNZIPPED_MB)"
    )
