"""Decoding text files: byte-order marks, UTF-8, UTF-16 without a mark, and legacy single-byte encodings."""

from __future__ import annotations

import re

from .errors import DocumentError

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
