"""Scanned statement tables against their born-digital pages: how many table rows a scan reads as the printed
page does.

Run: .venv/bin/python bench/ocr_scans.py [--out FILE]

Each page is rendered at 200 dpi, turned by a few tenths of a degree, blurred (Gaussian, radius 0.6) and
saved as an image-only PDF, then read by the real extraction (Tesseract OCR and the page layout). Pages: the
statement built by ``tests/test_ocr_tables.py`` at 0, +-0.6 and +-1.5 degrees; Apple's statement of
operations (2023 Q3, page 4) at 0.6, -0.6 and 1.5; the first statement page of Amazon's, Intel's and
Microsoft's 2023 Q2 and NVIDIA's 2023 Q1 filings at 0.6 (the filings are read from the sec-10q evaluation
set). A row line of the born-digital page counts as read when some row line of the scan is at least 97%
alike (``difflib.SequenceMatcher.ratio``): OCR misreads of single characters ("§" for "$") pass, a row
without its label or under another column's header does not. Not part of the tests.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.documents import load
from tests.conftest import SEC as SEC_SET
from tests.test_ocr_tables import _scan, _statement_pdf

SEC = SEC_SET / "docs"
FILINGS = {"2023 Q3 AAPL": (0.6, -0.6, 1.5), "2023 Q2 AMZN": (0.6,), "2023 Q2 INTC": (0.6,), "2023 Q2 MSFT": (0.6,)}
FILINGS["2023 Q1 NVDA"] = (0.6,)
STATEMENT_WORDS = ("STATEMENTS OF OPERATIONS", "INCOME STATEMENTS", "STATEMENTS OF INCOME")


def _statement_page(filing: Path, out: Path) -> None:
    """The filing's first statement page (Apple's: page 4) as a one-page PDF at ``out``."""
    import pypdfium2 as pdfium

    source = pdfium.PdfDocument(str(filing))
    number = 3
    if "AAPL" not in filing.name:
        for i in range(min(15, len(source))):
            text = source[i].get_textpage().get_text_range().upper()
            if any(words in text for words in STATEMENT_WORDS) and text.count(",") > 40:
                number = i
                break
    page = pdfium.PdfDocument.new()
    page.import_pages(source, [number])
    page.save(str(out))


def _rows(path: Path) -> list[str]:
    return [line for line in load(path).text.splitlines() if " | " in line]


def _compare(born: Path, scan: Path) -> dict[str, float | int]:
    printed, scanned = _rows(born), _rows(scan)

    def best(line: str) -> float:
        return max((difflib.SequenceMatcher(None, line, m, autojunk=False).ratio() for m in scanned), default=0.0)

    ratios = [best(line) for line in printed]
    mean = round(sum(ratios) / max(1, len(ratios)), 3)
    return {"rows": len(printed), "read": sum(r >= 0.97 for r in ratios), "mean_similarity": mean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    results: list[dict[str, float | int | str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pages = [(folder / "statement.pdf", degrees) for degrees in (0.0, 0.6, -0.6, 1.5, -1.5)]
        _statement_pdf(folder / "statement.pdf")
        for name, angles in FILINGS.items():
            if not (SEC / f"{name}.pdf").is_file():
                print(f"skipped {name}: not at {SEC}", file=sys.stderr)
                continue
            born = folder / f"{name}.pdf"
            _statement_page(SEC / f"{name}.pdf", born)
            pages += [(born, degrees) for degrees in angles]
        for born, degrees in pages:
            scan = folder / f"{born.stem} {degrees}.pdf"
            _scan(born, scan, degrees=degrees)
            result = {"page": born.stem, "degrees": degrees, **_compare(born, scan)}
            results.append(result)
            print(json.dumps(result), flush=True)
    total = {key: sum(int(r[key]) for r in results) for key in ("rows", "read")}
    print(json.dumps({"total": total}))
    if args.out:
        part = args.out.with_suffix(".part")
        part.write_text(json.dumps({"pages": results, "total": total}, indent=1) + "\n")
        part.replace(args.out)


if __name__ == "__main__":
    main()
