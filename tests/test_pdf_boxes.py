"""Boxes of quoted sentences on a PDF page (issue 27): a sentence's box ends where its last word ends and
the next sentence's box starts at its first word, even when narrow letters and wide ones share a line."""

from __future__ import annotations

from pathlib import Path

from rag import load
from rag.boxes import boxes_for
from rag.text import split_sentences

from .test_pdf import _paragraph_pdf, _word_box

#: One line: a sentence of narrow letters, then one of wide capitals (an average character width misplaces
#: the cut between them by several letters).
NARROW_THEN_WIDE = "Ill fill it till lit illicit. WMW MWM WWM MMW WWW."


def test_a_quoted_sentence_box_stops_at_its_last_word_and_the_next_starts_at_its_first(tmp_path: Path) -> None:
    pdf = _paragraph_pdf(tmp_path / "line.pdf", [NARROW_THEN_WIDE])
    document = load(pdf)
    (a, b), (c, d) = split_sentences(document.text)
    assert document.text[a:b] == "Ill fill it till lit illicit." and document.text[c:d].startswith("WMW")
    first, second = boxes_for(document.runs, a, b), boxes_for(document.runs, c, d)
    assert len(first) == 1 and len(second) == 1
    last_word, next_word = _word_box(pdf, "illicit"), _word_box(pdf, "WMW")
    assert first[0][2] < next_word[0], f"the box runs into the next sentence: {first[0]} / {next_word}"
    assert first[0][2] >= last_word[2] - 0.002, f"the box stops before the sentence ends: {first[0]} / {last_word}"
    assert abs(second[0][0] - next_word[0]) < 0.002, f"the next sentence's box starts elsewhere: {second[0]}"


def _heading_then_paragraph(path: Path) -> Path:
    """A page like a filing's: a bold heading on its own line, its paragraph right below at the same leading."""
    from reportlab.lib.pagesizes import LETTER
    from reportlab.pdfgen import canvas

    page = canvas.Canvas(str(path), pagesize=LETTER)
    lines = [
        ("Helvetica-Bold", "Share Repurchases"),
        ("Helvetica", "For the three months ended July 1, 2023, the Company repurchased 123 million shares of its"),
        ("Helvetica", "common stock for $19.0 billion under its share repurchase program. All repurchases were"),
        ("Helvetica", "made in the open market. The program has no expiration date."),
    ]
    y = 700.0
    for font, text in lines:
        page.setFont(font, 10)
        page.drawString(72, y, text)
        y -= 12.5
    page.save()
    return path


def test_a_heading_on_its_own_line_is_not_glued_to_the_first_sentence(tmp_path: Path) -> None:
    document = load(_heading_then_paragraph(tmp_path / "filing.pdf"))
    sentences = [document.text[a:b] for a, b in split_sentences(document.text)]
    assert sentences[0] == "Share Repurchases", sentences[:2]
    assert sentences[1].startswith("For the three months ended July 1, 2023"), sentences[:2]
    assert "repurchase program. All repurchases" in document.text  # the paragraph itself is still one
