"""Real PDFs and scans: reading order, wrapped sentences, tables, running lines, OCR, pages and boxes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from rag.documents import load
from rag.errors import DocumentError

from .conftest import SEC, encrypted_pdf, missing, needs_ocr

WRAPPED = (
    "After installing or modifying its configuration file, every application must run the refresh-catalog "
    "command, which rebuilds the shared lookup tables that the Varnholm desktop reads at start-up."
)
LEFT = (
    "The northern orchard of Kellmar grows eleven kinds of pear. Its oldest tree was planted in 1802 by the "
    "gardener Ilse Brandt, who also dug the first irrigation channel from the river Aumel. "
) * 3
RIGHT = (
    "The southern vineyard of Kellmar produces a dry white wine called Sollen. The harvest begins in the last "
    "week of September and ends when the first frost arrives on the terraces. "
) * 3


def _paragraph_pdf(path: Path, paragraphs: list[str], columns: int = 1, header: str = "", pages: int = 1) -> Path:
    """A born-digital PDF of wrapped paragraphs (reportlab), optionally in two columns and with running lines."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import BaseDocTemplate, Frame, PageBreak, PageTemplate, Paragraph

    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = A4
    margin = 60
    if columns == 2:
        half = (width - 2 * margin - 20) / 2
        frames = [
            Frame(margin, margin, half, height - 2 * margin, id="left"),
            Frame(margin + half + 20, margin, half, height - 2 * margin, id="right"),
        ]
    else:
        frames = [Frame(margin, margin, width - 2 * margin, height - 2 * margin, id="body")]

    def running(canvas: object, doc: object) -> None:
        if header:
            canvas.setFont("Helvetica", 8)  # type: ignore[attr-defined]
            canvas.drawString(margin, height - 30, header)  # type: ignore[attr-defined]
            canvas.drawString(margin, 25, f"{header} | page {doc.page}")  # type: ignore[attr-defined]

    doc = BaseDocTemplate(str(path), pagesize=A4)
    doc.addPageTemplates([PageTemplate(id="p", frames=frames, onPage=running)])
    style = getSampleStyleSheet()["BodyText"]
    story: list[object] = []
    for page in range(pages):
        if page:
            story.append(PageBreak())
        story += [Paragraph(text, style) for text in paragraphs]
    doc.build(story)
    return path


#: Figures and their headers set flush right, as filings set them.
RIGHT_ALIGNED = ("ALIGN", (1, 0), (-1, -1), "RIGHT")


def _table_pdf(path: Path) -> Path:
    rows = [
        ["", "Three Months Ended", "", "Nine Months Ended", ""],
        ["", "July 1, 2023", "June 25, 2022", "July 1, 2023", "June 25, 2022"],
        ["Net sales:", "", "", "", ""],
        ["Products", "$ 60,584", "$ 63,355", "$ 230,901", "$ 245,241"],
        ["Services", "21,213", "19,604", "62,886", "58,941"],
        ["Total net sales", "81,797", "82,959", "293,787", "304,182"],
        ["Gross margin", "36,413", "35,885", "128,721", "132,687"],
    ]
    spans = [("SPAN", (1, 0), (2, 0)), ("SPAN", (3, 0), (4, 0))]
    intro = "Condensed statements of operations of the Orrin Company (in millions)."
    return _write_table_pdf(path, rows, [150, 90, 90, 90, 90], [*spans, RIGHT_ALIGNED], intro)


def _write_table_pdf(
    path: Path, rows: list[list[str]], widths: list[int], style: list[tuple] | None = None, intro: str = ""
) -> Path:
    """A one-page PDF of one table (reportlab table style commands ``style``), after a paragraph ``intro``."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    path.parent.mkdir(parents=True, exist_ok=True)
    table = Table(rows, colWidths=widths)
    if style:
        table.setStyle(TableStyle(style))
    story = [Paragraph(intro, getSampleStyleSheet()["BodyText"])] if intro else []
    SimpleDocTemplate(str(path), pagesize=letter).build([*story, table])
    return path


def _scan(born_digital: Path, path: Path, dpi: int = 200) -> Path:
    """An image-only copy of a PDF's first page: rendered, then wrapped as a PDF (or saved as PNG)."""
    import pypdfium2 as pdfium

    path.parent.mkdir(parents=True, exist_ok=True)
    image = pdfium.PdfDocument(str(born_digital))[0].render(scale=dpi / 72).to_pil().convert("RGB")
    if path.suffix == ".png":
        image.save(path, "PNG")
    else:
        image.save(path, "PDF", resolution=dpi)
    return path


def _word_box(pdf: Path, word: str) -> tuple[float, float, float, float]:
    """Where PDFium says ``word`` is on page 1 (0-1 of the page, origin top left)."""
    import pypdfium2 as pdfium

    page = pdfium.PdfDocument(str(pdf))[0]
    width, height = page.get_size()
    textpage = page.get_textpage()
    found = textpage.search(word, match_case=True, match_whole_word=True).get_next()
    assert found is not None, word
    first, count = found
    boxes = [textpage.get_charbox(i) for i in range(first, first + count)]
    left, bottom = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, top = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return left / width, (height - top) / height, right / width, (height - bottom) / height


def _inside(inner: tuple[float, float, float, float], outer: tuple[float, ...], slack: float = 0.01) -> bool:
    return (
        outer[0] - slack <= inner[0]
        and outer[1] - slack <= inner[1]
        and inner[2] <= outer[2] + slack
        and inner[3] <= outer[3] + slack
    )


def test_wrapped_sentence_is_one_sentence_and_answered_whole(tmp_path: Path, assistant_factory) -> None:
    pdf = _paragraph_pdf(tmp_path / "docs" / "spec.pdf", [WRAPPED])
    doc = load(pdf)
    assert WRAPPED in doc.text  # the line wraps are gone: the sentence is one line of text
    assistant = assistant_factory()
    assistant.index([tmp_path / "docs"])
    answer = assistant.ask("Which command must every application run after modifying its configuration file?")
    assert answer.answered
    body = answer.text.replace(" [1]", "")
    assert WRAPPED in body and answer.text.count("[1]") == 1 and answer.text.rstrip().endswith("[1]")
    citation = answer.citations[0]
    assert citation.page == 1 and citation.boxes
    # The quoted sentence's boxes cover the word "refresh-catalog" where PDFium draws it.
    word = _word_box(pdf, "Varnholm")
    assert any(_inside(word, box) for box in citation.boxes)


def test_two_columns_read_column_by_column(tmp_path: Path) -> None:
    pdf = _paragraph_pdf(tmp_path / "cols.pdf", [LEFT, RIGHT], columns=2)
    text = load(pdf).text
    first = "Its oldest tree was planted in 1802 by the gardener Ilse Brandt, who also dug the first irrigation"
    assert first in text
    assert "The harvest begins in the last week of September" in text
    assert text.index("irrigation channel") < text.index("southern vineyard")


def test_table_rows_keep_their_label_and_headers(tmp_path: Path, assistant_factory) -> None:
    pdf = _table_pdf(tmp_path / "docs" / "orrin.pdf")
    doc = load(pdf)
    assert doc.report["tables"] == 1
    row = next(line for line in doc.text.splitlines() if line.startswith("Total net sales"))
    assert "Three Months Ended July 1, 2023: 81,797" in row
    assert "Nine Months Ended June 25, 2022: 304,182" in row
    assistant = assistant_factory()
    assistant.index([tmp_path / "docs"])
    answer = assistant.ask("What were total net sales in the three months ended July 1, 2023?")
    assert answer.answered and "81,797" in answer.text
    # The cited row's boxes lie over the row's label on the page.
    label = _word_box(pdf, "Total")
    assert any(_inside(label, box) for c in answer.citations for box in c.boxes)


def test_running_header_and_footer_left_out(tmp_path: Path) -> None:
    paragraphs = [
        "The ledger of the Tamsin harbour lists every ship that docked there since 1790.",
        "Its busiest year was 1911, when the herring fleet landed a record catch.",
    ]
    pdf = _paragraph_pdf(tmp_path / "report.pdf", paragraphs, header="Tamsin Harbour Board - Annual Review", pages=4)
    doc = load(pdf)
    assert "Annual Review" not in doc.text
    assert doc.text.count("The ledger of the Tamsin harbour") == 4
    assert doc.text.count("landed a record catch") == 4
    assert doc.report["running_lines_removed"] >= 8
    assert [s.title for s in doc.sections] == ["page 1", "page 2", "page 3", "page 4"]


def test_encrypted_with_aes_and_owner_password_only_opens(tmp_path: Path) -> None:
    import pypdf

    plain = _paragraph_pdf(tmp_path / "plain.pdf", [WRAPPED])
    writer = pypdf.PdfWriter(clone_from=str(plain))
    writer.encrypt(user_password="", owner_password="owner-only", algorithm="AES-256")
    buf = io.BytesIO()
    writer.write(buf)
    path = tmp_path / "aes.pdf"
    path.write_bytes(buf.getvalue())
    assert WRAPPED in load(path).text
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(encrypted_pdf(plain))
    with pytest.raises(DocumentError, match="password"):
        load(locked)


def test_page_without_any_text_is_reported(tmp_path: Path, assistant_factory) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "docs" / "blank.pdf"
    path.parent.mkdir()
    c = canvas.Canvas(str(path))
    c.rect(100, 100, 200, 200, fill=1)  # a drawing, no text
    c.showPage()
    c.save()
    (tmp_path / "docs" / "note.txt").write_text("The blank file sits beside this note.")
    report = assistant_factory().index([tmp_path / "docs"])
    failed = dict(report.failed)
    assert any("blank.pdf" in p for p in failed)
    assert "no extractable text" in next(r for p, r in report.failed if "blank.pdf" in p)
    assert report.added == ["note.txt"]


@needs_ocr
def test_scanned_page_is_read_by_ocr_and_cited_with_page_and_boxes(tmp_path: Path, assistant_factory) -> None:
    born = _paragraph_pdf(tmp_path / "born.pdf", [WRAPPED])
    scan = _scan(born, tmp_path / "docs" / "scan.pdf")
    doc = load(scan)
    assert doc.report["ocr_pages"] == 1 and doc.report["text_pages"] == 0
    assert "refresh-catalog" in doc.text and "Varnholm" in doc.text
    assistant = assistant_factory()
    assistant.index([tmp_path / "docs"])
    answer = assistant.ask("Which command must every application run after modifying its configuration file?")
    assert answer.answered and "refresh-catalog" in answer.text
    citation = answer.citations[0]
    assert citation.source == "scan.pdf" and citation.page == 1
    word = _word_box(born, "Varnholm")  # the scan is a picture of the born-digital page: same place
    assert any(_inside(word, box, slack=0.02) for box in citation.boxes)


@needs_ocr
def test_png_image_is_an_indexable_document(tmp_path: Path) -> None:
    born = _paragraph_pdf(tmp_path / "born.pdf", [WRAPPED])
    doc = load(_scan(born, tmp_path / "page.png"))
    assert doc.format == "image" and doc.report["ocr_pages"] == 1
    assert "refresh-catalog" in doc.text
    assert doc.page_at(0) == 1 and doc.boxes(0, 10)


def test_ocr_leaves_the_thread_limit_to_tesseract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OMP_THREAD_LIMIT=1 (one thread per Tesseract) must not reach this process: torch's bf16 matrix
    products come out wrong under it, and every chunk embedded after an OCR'd page would be garbage."""
    import numpy as np

    from rag.config import packaged_model_path
    from rag.embedding import Embedder

    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    born = _paragraph_pdf(tmp_path / "born.pdf", [WRAPPED])
    assert "refresh-catalog" in load(_scan(born, tmp_path / "page.png")).text
    assert "OMP_THREAD_LIMIT" not in os.environ
    embedder = Embedder(packaged_model_path())
    text = "The harbour of Ostrava Quay ships barley and rye to the northern mills."
    reference = embedder.encode_query(text)  # NumPy, fp32
    bulk = embedder.encode([text] * 40)  # past the small-job size: the torch encoder
    assert float(np.min(bulk @ reference)) >= 0.999


def test_debian_specification_sentence_is_not_cut(tmp_path: Path) -> None:
    spec = Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")
    if not spec.is_file():
        missing("Debian's shared-mime-info documentation is not installed (make test-pdfs installs it)")
    text = load(spec).text
    assert (
        "After installing, uninstalling or modifying this file, the application MUST run the "
        "update-mime-database command, which is provided by the freedesktop.org shared database[SharedMIME]."
    ) in text


@pytest.mark.parametrize("name", sorted(p.name for p in (SEC / "docs").glob("*.pdf")) or ["(sec-10q missing)"])
def test_every_sec_filing_loads(name: str) -> None:
    path = SEC / "docs" / name
    if not path.is_file():
        missing(f"the sec-10q set is not at {SEC}")
    doc = load(path)
    report = doc.report
    assert report["pages"] >= 20 and report["text_pages"] >= report["pages"] - 1
    assert report["tables"] >= 10
    # Offsets map back: every page section starts inside the text, and runs point inside it.
    assert all(0 <= s.start < len(doc.text) for s in doc.sections)
    assert all(0 <= r.start < r.end <= len(doc.text) for r in doc.runs[:: max(1, len(doc.runs) // 200)])


def test_debian_manual_list_items_stay_apart() -> None:
    manual = Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf")
    if not manual.is_file():
        missing("Debian's libtasn1-doc is not installed (make test-pdfs installs it)")
    text = load(manual).text
    start = text.index("The main features of this library are:")
    block = text[start : start + 400]
    assert (
        "\n\n• On-line ASN.1 structure management that doesn’t require any C code file generation.\n\n• Off-line"
        in block
    )
    assert "structures management, and Distinguished Encoding Rules" in text  # "man-agement" joined back


@needs_ocr
def test_filing_page_answers_the_same_from_its_scan(tmp_path: Path, assistant_factory) -> None:
    """A real filing's income statement, born-digital and as an image-only scan: the same figure is answered."""
    import pypdf

    filing = SEC / "docs" / "2023 Q3 AAPL.pdf"
    if not filing.is_file():
        missing(f"the sec-10q set is not at {SEC}")
    writer = pypdf.PdfWriter()
    writer.append(str(filing), pages=[3])  # page 4: condensed consolidated statements of operations
    born = tmp_path / "born" / "apple-q3-2023-operations.pdf"
    born.parent.mkdir()
    writer.write(born)
    scan = _scan(born, tmp_path / "scan" / "apple-q3-2023-operations.pdf", dpi=300)
    question = "What were Apple's total net sales for the three months ended July 1, 2023?"
    answers = []
    for folder in ("born", "scan"):
        assistant = assistant_factory(f"index-{folder}")
        report = assistant.index([tmp_path / folder])
        assert report.failed == []
        answers.append(assistant.ask(question))
    for answer in answers:
        assert answer.answered and "81,797" in answer.text
        assert answer.citations[0].page == 1 and answer.citations[0].boxes
    assert load(scan).report["ocr_pages"] == 1


def test_docx_table_rows_keep_label_and_headers(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_paragraph("Quarterly figures of the Orrin Company.")
    table = d.add_table(rows=3, cols=3)
    for r, values in enumerate([["", "Q1 2024", "Q2 2024"], ["Revenue", "1,200", "1,350"], ["Headcount", "42", "45"]]):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    d.add_paragraph("Figures are unaudited.")
    path = tmp_path / "orrin.docx"
    d.save(str(path))
    doc = load(path)
    assert "Revenue | Q1 2024: 1,200 | Q2 2024: 1,350" in doc.text
    assert doc.text.index("Quarterly figures") < doc.text.index("Revenue") < doc.text.index("unaudited")
    assert doc.report == {"tables": 1}


def test_documents_tab_shows_the_extraction_report_escaped() -> None:
    import json as _json

    from rag import DocumentRecord
    from ui.render import documents_table_html

    report = {"pages": 3, "text_pages": 2, "ocr_pages": 1, "empty_pages": 0, "tables": 4, "warnings": ["<b>page 3</b>"]}
    record = DocumentRecord("scan.pdf", "/x/scan.pdf", "/x", "d", 10, 0, "pdf", "pdf", 5, 0.0, 0.0, _json.dumps(report))
    html = documents_table_html([record])
    assert "3 pages (2 with text, 1 by OCR, 0 empty), 4 tables, 1 warning(s)" in html
    assert "&lt;b&gt;page 3&lt;/b&gt;" in html and "<b>page 3" not in html


def test_layout_never_fails_on_odd_pages() -> None:
    """Random words, rows of years only, overlapping boxes: lay_out gives text whose runs map back."""
    import random

    from rag.layout import Word, lay_out

    rng = random.Random(7)
    vocabulary = ["2023", "2022", "Total", "$", "1,234", "(5)", "—", "Net", "sales:", "the", "7.5%", "-", "•"]
    for _ in range(150):
        words = []
        for _ in range(rng.randint(0, 60)):
            x, y = rng.uniform(0, 600), rng.choice([rng.uniform(0, 800), 100.0, 112.0, 124.0])
            words.append(Word(rng.choice(vocabulary), x, y, x + rng.uniform(1, 40), y + rng.uniform(2, 14)))
        years = [Word(t, 300 + 80 * k, 50, 330 + 80 * k, 60) for k, t in enumerate(["2023", "2022"])]
        layout = lay_out([(1, 612, 792, words + years), (2, 612, 792, years)])
        for run in layout.runs:
            assert 0 <= run.start < run.end <= len(layout.text)
            assert 0 <= run.x0 <= run.x1 and 0 <= run.y0 <= run.y1


def _bomb_pdf(chars: int, pages: int) -> bytes:
    """A small PDF whose pages all show one Flate stream that inflates to a ``chars``-long string."""
    import zlib

    stream = zlib.compress(b"BT /F1 1 Tf 10 400 Td (" + b"A" * chars + b") Tj ET", 9)
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages))
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
        b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        *[page] * pages,
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_tiny_pdfs_that_expand_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18, finding 2: a 60 MB string behind a small stream, and 300 pages sharing it."""
    import json

    from .test_bombs import GB, RAG, run_watched

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one page.pdf").write_bytes(_bomb_pdf(60_000_000, 1))
    (corpus / "300 pages.pdf").write_bytes(_bomb_pdf(60_000_000, 300))
    (corpus / "good.txt").write_text("Sea otters use rocks as tools to crack open shellfish.")
    assert sum(p.stat().st_size for p in corpus.iterdir()) < 400_000
    monkeypatch.setenv("RAG_MAX_FILE_SECONDS", "10")  # the 300-page file would take minutes: the budget stops it
    code, out, err, peak = run_watched(
        [*RAG, "index", str(corpus), "--index", str(tmp_path / "index"), "--json"], limit=3 * GB, timeout=300
    )
    report = json.loads(out)
    failed = {Path(f["path"]).name: f["reason"] for f in report["failed"]}
    assert "300 pages.pdf" in failed and "RAG_MAX_FILE_SECONDS" in failed["300 pages.pdf"], (code, err)
    assert "good.txt" in report["added"] and "one page.pdf" in report["added"]
    assert report["chunks_total"] < 1000  # PDFium keeps 32,767 characters of the one huge string
    # 0.25-0.28 GB measured alone and three at once (one run of a whole suite on a loaded machine once saw
    # 1.73 GB, never reproduced since); issue 18's bound for every bomb is 1.5 GB.
    print(f"peak RSS {peak / GB:.2f} GB")
    assert peak < 1.5 * GB, f"peak RSS {peak / GB:.2f} GB"


def test_a_row_of_years_with_a_change_column_heads_the_table(tmp_path: Path) -> None:
    rows = [
        ["", "Three Months Ended", "", ""],
        ["", "2023", "2022", "Change"],
        ["Americas", "35,383", "37,472", "(6)%"],
        ["Total net sales", "81,797", "82,959", "(1)%"],
    ]
    row = _row_of_table(tmp_path / "segments.pdf", rows, [150, 90, 90, 90], "Total net sales")
    assert "2023: 81,797" in row and "2022: 82,959" in row and "Change: (1)%" in row


def test_a_group_heading_set_over_its_last_column_names_the_whole_group(tmp_path: Path) -> None:
    # Filings set "Three Months Ended" flush right over the group's last column, not across the group.
    rows = [
        ["", "", "Three Months Ended", "", "Six Months Ended"],
        ["", "", "December 31,", "", "December 31,"],
        ["", "2022", "2021", "2022", "2021"],
        ["Revenue", "52,747", "51,728", "102,869", "97,045"],
        ["Research and development", "6,844", "5,758", "13,472", "11,357"],
    ]
    row = _row_of_table(
        tmp_path / "income.pdf", rows, [170, 70, 90, 70, 90], "Research and development", [RIGHT_ALIGNED]
    )
    assert "Three Months Ended December 31, 2022: 6,844" in row
    assert "Three Months Ended December 31, 2021: 5,758" in row
    assert "Six Months Ended December 31, 2022: 13,472" in row
    assert "Six Months Ended December 31, 2021: 11,357" in row


def _row_of_table(
    path: Path, rows: list[list[str]], widths: list[int], label: str, style: list[tuple] | None = None
) -> str:
    """The extracted line of the row labelled ``label`` of a one-table PDF (style ``style``) at ``path``."""
    _write_table_pdf(path, rows, widths, style)
    return next(line for line in load(path).text.splitlines() if line.startswith(label))


def test_period_groups_over_amount_and_share_columns_name_each_column(tmp_path: Path) -> None:
    # Each period is centred over two columns, an amount and its share of revenue (as Intel sets its
    # statements): every column takes its own period, and "% of Net" stays with the share columns.
    rows = [
        ["", "Three Months Ended", "", "", "", "Six Months Ended", "", "", ""],
        ["", "Q2 2023", "", "Q2 2022", "", "YTD 2023", "", "YTD 2022", ""],
        ["", "", "% of Net", "", "% of Net", "", "% of Net", "", "% of Net"],
        ["", "Amount", "Revenue", "Amount", "Revenue", "Amount", "Revenue", "Amount", "Revenue"],
        ["Net revenue", "12,949", "100.0 %", "15,321", "100.0 %", "24,664", "100.0 %", "33,674", "100.0 %"],
        ["Research and development", "4,080", "31.5 %", "4,400", "28.7 %", "8,189", "33.2 %", "8,762", "26.0 %"],
    ]
    spans = [("SPAN", (1, 0), (4, 0)), ("SPAN", (5, 0), (8, 0))]
    spans += [("SPAN", (c, 1), (c + 1, 1)) for c in (1, 3, 5, 7)]
    style = [*spans, ("ALIGN", (1, 0), (-1, 1), "CENTER"), ("ALIGN", (1, 2), (-1, -1), "RIGHT")]
    widths = [130, 50, 60, 50, 60, 50, 60, 50, 60]
    row = _row_of_table(tmp_path / "intel.pdf", rows, widths, "Research and development", style)
    expected = [
        "Three Months Ended Q2 2023 Amount: 4,080",
        "Three Months Ended Q2 2023 % of Net Revenue: 31.5 %",
        "Three Months Ended Q2 2022 Amount: 4,400",
        "Three Months Ended Q2 2022 % of Net Revenue: 28.7 %",
        "Six Months Ended YTD 2023 Amount: 8,189",
        "Six Months Ended YTD 2022 % of Net Revenue: 26.0 %",
    ]
    assert [cell for cell in expected if cell not in row] == [], row


def test_a_change_column_beside_a_period_group_keeps_its_own_header(tmp_path: Path) -> None:
    # Dates set over two lines, "Three Months Ended" over them, and a "Change" column after the group:
    # the change is not one of the group's periods.
    rows = [
        ["", "Three Months Ended", "", "", "Nine Months Ended", "", ""],
        ["", "July 1,", "June 25,", "", "July 1,", "June 25,", ""],
        ["", "2023", "2022", "Change", "2023", "2022", "Change"],
        ["Americas", "$ 35,383", "$ 37,472", "(6)%", "$ 122,445", "$ 129,850", "(6)%"],
        ["Greater China", "15,758", "14,604", "8 %", "57,475", "58,730", "(2)%"],
    ]
    spans = [("SPAN", (1, 0), (2, 0)), ("SPAN", (4, 0), (5, 0)), ("ALIGN", (1, 0), (-1, 1), "CENTER")]
    style = [*spans, ("ALIGN", (1, 2), (-1, -1), "RIGHT")]
    row = _row_of_table(tmp_path / "segments.pdf", rows, [130, 70, 70, 50, 70, 70, 50], "Greater China", style)
    assert "Three Months Ended July 1, 2023: 15,758" in row
    assert "Three Months Ended June 25, 2022: 14,604" in row
    assert "| Change: 8 % |" in row
    assert "Nine Months Ended June 25, 2022: 58,730" in row
    assert row.endswith("| Change: (2)%")


@needs_ocr
def test_image_over_60_megapixels_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README: images over 60 megapixels are refused before decoding. A 1-bit PNG of 8000 x 7600 pixels
    (60.8 million, a few kB on disk) is reported with its size, and its pixels are never decoded."""
    from PIL import Image

    from rag.ocr import MAX_PIXELS

    assert MAX_PIXELS == 60_000_000
    path = tmp_path / "poster.png"
    Image.new("1", (8000, 7600), 1).save(path)
    assert path.stat().st_size < 1_000_000
    decoded: list[object] = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self) or real_load(self))
    with pytest.raises(DocumentError, match=r"image is 8000 x 7600 pixels, over the limit of 60,000,000 pixels"):
        load(path)
    assert decoded == [], "the image was decoded before its size was checked"


def test_dollar_and_percent_change_columns_keep_their_own_labels(tmp_path: Path) -> None:
    # As NVIDIA sets its segment tables: "$" and "%" on one row over two change columns, "Change" under
    # each, the month over the day over the year for the period columns.
    rows = [
        ["", "Three Months Ended", "", "", ""],
        ["", "October", "October", "$", "%"],
        ["", "29,", "30,", "Change", "Change"],
        ["", "2023", "2022", "", ""],
        ["Compute & Networking", "$ 14,645", "$ 3,816", "$ 10,829", "284 %"],
        ["Graphics", "3,475", "2,115", "1,360", "64 %"],
    ]
    style = [("SPAN", (1, 0), (2, 0)), ("ALIGN", (1, 0), (-1, 3), "CENTER"), ("ALIGN", (1, 4), (-1, -1), "RIGHT")]
    row = _row_of_table(tmp_path / "segments.pdf", rows, [150, 70, 70, 70, 70], "Graphics", style)
    assert "October 29, 2023: 3,475" in row and "October 30, 2022: 2,115" in row, row
    assert "| $ Change: 1,360 |" in row and row.endswith("| % Change: 64 %"), row
    assert "$ %" not in row


def test_nvidia_filing_change_columns_read_dollar_change_and_percent_change() -> None:
    """The real filing (read only, from the shared evaluation data)."""
    filing = SEC / "docs" / "2023 Q1 NVDA.pdf"
    if not filing.is_file():
        pytest.skip("the sec-10q filings are not here")
    line = next(line for line in load(filing).text.splitlines() if line.startswith("Graphics | Three Months"))
    assert "Three Months Ended $ Change: (1,884)" in line and "Three Months Ended % Change: (41)%" in line, line
