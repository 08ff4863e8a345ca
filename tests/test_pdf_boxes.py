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
