"""A scanned statement table (OCR): each row keeps its label with its figures, in reading order, and the
column headers are the table's own. The page is a statement as a 10-Q sets it, printed to a PDF, rendered
at 200 dpi, turned 0.6 degree and blurred as a scanner leaves it, and saved as an image-only PDF."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag import Assistant
from rag.documents import Document, load

from .conftest import SEC, missing, needs_ocr

pytestmark = needs_ocr

CAPTION = [
    "Orchard Devices Inc.",
    "CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS (Unaudited)",
    "(In millions, except number of shares which are reflected in thousands and per share amounts)",
]
HEADERS = [
    "Three Months Ended July 1, 2023",
    "Three Months Ended June 25, 2022",
    "Nine Months Ended July 1, 2023",
    "Nine Months Ended June 25, 2022",
]
ROWS: list[tuple[str, tuple[str, ...]]] = [
    ("Net sales:", ()),
    ("Products", ("$ 60,584", "$ 63,355", "$ 230,901", "$ 245,241")),
    ("Services", ("21,213", "19,604", "62,886", "58,941")),
    ("Total net sales", ("81,797", "82,959", "293,787", "304,182")),
    ("Cost of sales:", ()),
    ("Products", ("39,136", "41,485", "146,696", "155,084")),
    ("Services", ("6,248", "5,589", "18,370", "16,411")),
    ("Total cost of sales", ("45,384", "47,074", "165,066", "171,495")),
    ("Gross margin", ("36,413", "35,885", "128,721", "132,687")),
    ("Operating expenses:", ()),
    ("Research and development", ("$ 7,442", "$ 6,797", "$ 22,608", "$ 19,490")),
    ("Selling, general and administrative", ("5,973", "6,012", "18,781", "18,654")),
    ("Total operating expenses", ("13,415", "12,809", "41,389", "38,144")),
    ("Operating income", ("22,998", "23,076", "87,332", "94,543")),
    ("Other income/(expense), net", ("(265)", "(10)", "(594)", "(97)")),
    ("Net income", ("$ 19,881", "$ 19,442", "$ 74,039", "$ 79,082")),
]


def _statement_pdf(path: Path, raised: float = 0.0) -> None:
    """The statement page, born digital: a caption over the table, periods over dates over years, labels at
    the left, figures set flush right with "$" at the left of the first and last rows' cells; the second
    period's heading set ``raised`` points higher than the first's (as Amazon sets its statements)."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    width, height = letter
    c.setFont("Helvetica-Bold", 11)
    c.drawCentredString(width / 2, height - 72, CAPTION[0])
    c.drawCentredString(width / 2, height - 88, CAPTION[1])
    c.setFont("Helvetica", 9)
    c.drawCentredString(width / 2, height - 102, CAPTION[2])
    right = [330, 400, 480, 550]  # each value column's right edge
    y = height - 130
    c.setFont("Helvetica-Bold", 9)
    c.drawCentredString((right[0] + right[1]) / 2 - 25, y, "Three Months Ended")
    c.drawCentredString((right[2] + right[3]) / 2 - 25, y + raised, "Nine Months Ended")
    for line in (["July 1,", "June 25,", "July 1,", "June 25,"], ["2023", "2022", "2023", "2022"]):
        y -= 12
        for x, text in zip(right, line, strict=True):
            c.drawRightString(x, y, text)
    y -= 18
    c.setFont("Helvetica", 9)
    for label, figures in ROWS:
        c.drawString(72, y, label)
        for x, figure in zip(right, figures, strict=False):
            if figure.startswith("$ "):
                c.drawString(x - 62, y, "$")
            c.drawRightString(x, y, figure.removeprefix("$ "))
        y -= 14
    c.setFont("Helvetica", 8)
    c.drawString(72, y - 10, "See accompanying Notes to Condensed Consolidated Financial Statements.")
    c.showPage()
    c.save()


def _scan(born: Path, path: Path, dpi: int = 200, degrees: float = 0.6) -> None:
    """An image-only PDF of ``born``'s page as a scanner gives it: a little askew, a little blurred."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageFilter

    image = pdfium.PdfDocument(str(born))[0].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    image = image.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=255)
    image.filter(ImageFilter.GaussianBlur(0.6)).save(path, "PDF", resolution=dpi)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the born-digital page (born/) and its scan (docs/)."""
    root = tmp_path_factory.mktemp("scanned-statement")
    (root / "born").mkdir()
    (root / "docs").mkdir()
    _statement_pdf(root / "born" / "statement.pdf")
    _scan(root / "born" / "statement.pdf", root / "docs" / "statement-scan.pdf")
    return root


@pytest.fixture(scope="module")
def scan(pages: Path) -> Document:
    doc = load(pages / "docs" / "statement-scan.pdf")
    assert doc.report["ocr_pages"] == 1 and doc.report["text_pages"] == 0
    return doc


def _row_line(text: str, label: str, after: int = 0) -> str:
    """The first line at or after offset ``after`` that starts with the row label ``label`` and a cell."""
    found = re.compile(rf"^{re.escape(label)} \| .*$", re.M).search(text, after)
    assert found is not None, f"no row line for {label!r} in:\n{text}"
    return found.group(0)


def _cells(line: str) -> list[tuple[str, str]]:
    """(header, figure) of each cell of a row line; a figure's currency sign is left off (OCR reads some
    "$" as "§")."""
    cells = [cell.rpartition(": ") for cell in line.split(" | ")[1:]]
    return [(header, re.sub(r"^[^\d(]+", "", figure)) for header, _, figure in cells]


def _assert_rows(text: str) -> None:
    """Every row of the statement is one line of ``text``, its label then its figures under their headers, in
    the order printed."""
    after = 0
    for label, figures in ROWS:
        if not figures:
            continue
        line = _row_line(text, label, after)  # in reading order: each row after the one above it
        after = text.index(line, after) + len(line)
        expected = [(header, figure.removeprefix("$ ")) for header, figure in zip(HEADERS, figures, strict=True)]
        assert _cells(line) == expected, line


def test_scanned_row_reads_label_then_its_figures_under_its_headers(scan: Document) -> None:
    line = _row_line(scan.text, "Gross margin")
    assert line.startswith("Gross margin | Three Months Ended July 1, 2023: 36,413 | "), line
    _assert_rows(scan.text)


def test_a_scan_turned_further_the_other_way_reads_the_same_rows(pages: Path, tmp_path: Path) -> None:
    _scan(pages / "born" / "statement.pdf", tmp_path / "turned.pdf", degrees=-1.5)
    _assert_rows(load(tmp_path / "turned.pdf").text)


def test_period_headings_set_apart_in_height_head_one_row_of_the_scan(tmp_path: Path) -> None:
    """OCR boxes are a line's type height, as a text layer's are, not the ink's: "Nine Months Ended" set
    3.5 points above "Three Months Ended" is one row of headings in the scan as on the printed page (with
    ink boxes, a third of the type's height, they were two rows, and every column read both periods)."""
    _statement_pdf(tmp_path / "born.pdf", raised=3.5)
    _assert_rows(load(tmp_path / "born.pdf").text)
    _scan(tmp_path / "born.pdf", tmp_path / "scan.pdf")
    _assert_rows(load(tmp_path / "scan.pdf").text)


def test_a_filing_statement_scanned_askew_keeps_its_row_and_period(tmp_path: Path) -> None:
    """The real filing's page, as a scan turned 0.6 degree: the row keeps its label and its period, whose
    dates sit on two tight lines ("July 1," over "2023"; a descender no longer moves "July" a line down)."""
    filing = SEC / "docs" / "2023 Q3 AAPL.pdf"
    if not filing.is_file():
        missing(f"the sec-10q set is not at {SEC}")
    import pypdfium2 as pdfium

    source = pdfium.PdfDocument(str(filing))
    page = pdfium.PdfDocument.new()
    page.import_pages(source, [3])  # page 4: condensed consolidated statements of operations
    page.save(str(tmp_path / "born.pdf"))
    _scan(tmp_path / "born.pdf", tmp_path / "scan.pdf")
    line = _row_line(load(tmp_path / "scan.pdf").text, "Gross margin")
    assert line.startswith("Gross margin | Three Months Ended July 1, 2023: 36,413 | "), line
    assert "| Three Months Ended June 25, 2022: 35,885 |" in line, line


def test_scanned_table_headers_hold_no_caption_words(scan: Document) -> None:
    rows = [line for line in scan.text.splitlines() if " | " in line]
    assert len(rows) == sum(1 for _, figures in ROWS if figures)
    headers = {header for line in rows for header, _ in _cells(line)}
    assert headers == set(HEADERS)
    caption_words = {w.strip("(),.").lower() for w in " ".join(CAPTION).split()} - {"in", "and", "of"}
    header_words = {w.strip("(),.").lower() for h in headers for w in h.split()}
    assert not header_words & caption_words


def test_scanned_row_maps_back_to_its_place_on_the_page(pages: Path, scan: Document) -> None:
    """Offsets map back exactly: the label of the row line is the words OCR read where the label is printed."""
    import pypdfium2 as pdfium

    line = _row_line(scan.text, "Gross margin")
    start = scan.text.index(line)
    boxes = scan.boxes(start, start + len("Gross margin"))
    assert len(boxes) == 1
    page = pdfium.PdfDocument(str(pages / "born" / "statement.pdf"))[0]
    width, height = page.get_size()
    textpage = page.get_textpage()
    found = textpage.search("Gross margin", match_case=True).get_next()
    assert found is not None
    chars = [textpage.get_charbox(i) for i in range(found[0], found[0] + found[1])]
    printed = (
        min(b[0] for b in chars) / width,
        (height - max(b[3] for b in chars)) / height,
        max(b[2] for b in chars) / width,
        (height - min(b[1] for b in chars)) / height,
    )
    box = boxes[0]
    assert all(abs(a - b) < 0.01 for a, b in zip(box, printed, strict=True)), (box, printed)


def test_scanned_statement_answers_a_row_question_citing_the_row(pages: Path, tmp_path: Path) -> None:
    assistant = Assistant(index_dir=tmp_path / "index")
    report = assistant.index([pages / "docs"])
    assert report.failed == [] and report.added == ["statement-scan.pdf"]
    answer = assistant.ask("What was the gross margin for the three months ended July 1, 2023?")
    assert answer.answered, answer.note
    assert "36,413" in answer.text
    citation = answer.citations[0]
    assert citation.source == "statement-scan.pdf" and citation.page == 1 and citation.boxes
    text = assistant.document_text("statement-scan.pdf")
    assert text[citation.start : citation.end] == citation.text
    cited_lines = [line for line in citation.text.splitlines() if "36,413" in line]
    assert cited_lines and all(line.startswith("Gross margin | ") for line in cited_lines), citation.text
