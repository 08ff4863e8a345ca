"""The PDF budgets the docs state (docs/documents.md, "Files that open"): at most 2,000 pages a file, and a page
of more than 200,000 characters skipped and reported while the rest of the file is read. Real PDFs written by
reportlab, read by the real reader (PDFium)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rag.documents import load
from rag.errors import DocumentError
from rag.pdf import Budgets

SENTENCE = "The harbour master logs every ship that enters the bay."


def _pdf(path: Path, pages: int, dense_first_page: int = 0) -> Path:
    """``pages`` pages, the last with :data:`SENTENCE`; the first packed with ``dense_first_page`` characters."""
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for number in range(1, pages + 1):
        if number == 1 and dense_first_page:
            pdf.setFont("Helvetica", 1)
            line = "abcde fghij " * 42
            for row in range(-(-dense_first_page // len(line))):
                pdf.drawString(10, 5 + row * 1.9, line)
        if number == pages:
            pdf.setFont("Helvetica", 12)
            pdf.drawString(72, 700, SENTENCE)
        pdf.showPage()
    pdf.save()
    path.write_bytes(buffer.getvalue())
    return path


def test_the_page_limit_is_two_thousand_pages_a_file(tmp_path: Path) -> None:
    assert Budgets().max_pages == 2000
    at_limit = load(_pdf(tmp_path / "at-limit.pdf", 2000))
    assert at_limit.report["pages"] == 2000 and at_limit.text == SENTENCE
    with pytest.raises(DocumentError, match=r"^PDF has 2,001 pages, over the limit of 2,000 pages per file$"):
        load(_pdf(tmp_path / "over.pdf", 2001))


def test_a_page_over_two_hundred_thousand_characters_is_skipped_and_reported(tmp_path: Path) -> None:
    assert Budgets().max_page_chars == 200_000
    doc = load(_pdf(tmp_path / "dense.pdf", 2, dense_first_page=205_000))
    (warning,) = doc.report["warnings"]
    assert warning.startswith("page 1: ") and warning.endswith(" characters, over the page limit")
    assert int(warning.split()[2].replace(",", "")) > 200_000
    assert doc.report["empty_pages"] == 1 and doc.report["text_pages"] == 1
    assert doc.text == SENTENCE  # the rest of the file is read
    # under the limit, the same kind of page is read
    lighter = load(_pdf(tmp_path / "lighter.pdf", 2, dense_first_page=150_000))
    assert not lighter.report["warnings"] and len(lighter.text) > 100_000
