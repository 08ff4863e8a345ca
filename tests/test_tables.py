"""Tables and forms outside PDFs: HTML and Markdown tables as labelled rows, forms as one field a line.

Unit tests of the conversions, real files through the real assistant (packaged model, FAISS), and bad
input (huge, wide, spanning, nested, ragged) read within the budgets.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.budgets import Budget
from rag.documents import load, load_within
from rag.errors import DocumentError
from rag.forms import form_fields, form_lines, line_fields
from rag.html_tables import MAX_GRID_CELLS
from rag.html_text import read_html
from rag.markdown_tables import find_tables, markdown_text
from rag.tables import table_lines

from .conftest import write

FESTIVAL = """<!DOCTYPE html>
<html><head><title>Lakeside Folk Festival 2026</title></head><body>
<h1>Lakeside Folk Festival 2026</h1>
<p>The Lakeside Folk Festival runs from Friday 14 August to Sunday 16 August 2026 on the meadows by Lake
Orvik. Gates open at 10:00 each day and the last set ends at 23:00.</p>
<h2>Tickets</h2>
<table>
  <caption>Ticket prices (booking fee included)</caption>
  <thead><tr><th>Ticket</th><th>Adult</th><th>Child</th></tr></thead>
  <tbody>
    <tr><td>Day pass</td><td>&euro;35</td><td>&euro;15</td></tr>
    <tr><td>Weekend pass</td><td>&euro;85</td><td>&euro;40</td></tr>
    <tr><td>Camping add-on</td><td colspan="2">&euro;20</td></tr>
  </tbody>
</table>
<p>Children under five go free. Tickets are sold at the gate while they last.</p>
<h2>Getting there</h2>
<p>A shuttle bus runs every twenty minutes from Orvik station to the main gate.</p>
</body></html>
"""


def _lines(html: str) -> list[str]:
    text, _, _ = read_html(html)
    return [line for line in text.splitlines() if line]


# ---------------------------------------------------------------- HTML tables: unit tests


def test_html_table_rows_with_headers_and_caption() -> None:
    text, sections, report = read_html(FESTIVAL)
    assert "Ticket prices (booking fee included)\nDay pass | Adult: €35 | Child: €15\n" in text
    assert "Weekend pass | Adult: €85 | Child: €40" in text.splitlines()
    assert "Camping add-on | Adult / Child: €20" in text.splitlines()
    assert "Ticket | Adult" not in text  # the header row is in every row, not a row of its own
    assert report == {"tables": 1}
    assert [s.title for s in sections] == ["Lakeside Folk Festival 2026", "Tickets", "Getting there"]
    for s in sections:
        assert text[s.start :].startswith(s.title)


def test_html_leading_th_rows_and_spans_name_the_columns() -> None:
    html = (
        "<table><tr><th></th><th colspan=2>2023</th><th colspan=2>2024</th></tr>"
        "<tr><th></th><th>H1</th><th>H2</th><th>H1</th><th>H2</th></tr>"
        "<tr><td rowspan=2>Sales</td><td>10</td><td>11</td><td>12</td><td>13</td></tr>"
        "<tr><td>20</td><td>21</td><td>22</td><td>23</td></tr>"
        "<tr><th>Staff</th><td>5<td>6<td>7<td>8</tr></table>"  # cells left open, as HTML allows
    )
    assert _lines(html) == [
        "Sales | 2023 H1: 10 | 2023 H2: 11 | 2024 H1: 12 | 2024 H2: 13",
        "Sales | 2023 H1: 20 | 2023 H2: 21 | 2024 H1: 22 | 2024 H2: 23",
        "Staff | 2023 H1: 5 | 2023 H2: 6 | 2024 H1: 7 | 2024 H2: 8",
    ]


def test_html_table_without_th_takes_its_header_from_the_figures() -> None:
    html = "<table><tr><td>Ticket</td><td>Adult</td><td>Child</td></tr>"
    html += "<tr><td>Day</td><td>€35</td><td></td></tr></table>"
    assert _lines(html) == ["Day | Adult: €35"]  # the empty cell is left out


def test_html_two_column_table_and_dl_are_forms() -> None:
    html = (
        "<p>Booking</p><table><tr><th>Name:</th><td>Ana Lind</td></tr><tr><td>Reference</td><td>BK-2291</td></tr>"
        "<tr><td>Voucher</td><td></td></tr><tr><td colspan=2>Payment</td></tr><tr><td>Paid</td><td>Yes</td></tr>"
        "</table><dl><dt>Venue</dt><dd>Orvik meadows</dd><dt>Gates</dt><dd>open at <b>10:00</b></dd>"
        "<dt>Parking</dt><dd></dd><dt>Dogs</dt></dl><p>End.</p>"
        "<dl><dt>Prices</dt><dd><table><tr><th>Ticket</th><th>Adult</th></tr><tr><td>Day</td><td>€35</td></tr>"
        "</table></dd></dl>"
    )
    assert _lines(html) == [
        "Booking",
        "Name: Ana Lind",
        "Reference: BK-2291",
        "Payment",
        "Paid: Yes",
        "Venue: Orvik meadows",
        "Gates: open at 10:00",
        "Dogs",
        "End.",
        "Prices",
        "Day | Adult: €35",
    ]


def test_a_title_row_across_the_table_is_not_a_header() -> None:
    html = "<table><tr><th colspan=2>Lake Orvik</th></tr><tr><th>Area</th><td>12 km²</td></tr>"
    html += "<tr><th>Max. depth</th><td>41 m</td></tr></table>"
    assert _lines(html) == ["Lake Orvik", "Area: 12 km²", "Max. depth: 41 m"]


def test_two_column_table_over_figures_is_a_table() -> None:
    html = "<table><tr><td>Quarter</td><td>Revenue</td></tr><tr><td>Q1</td><td>1,200</td></tr>"
    html += "<tr><td>Q2</td><td>1,350</td></tr></table>"
    assert _lines(html) == ["Q1 | Revenue: 1,200", "Q2 | Revenue: 1,350"]


def test_docx_two_column_table_is_a_form(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    form = d.add_table(rows=4, cols=2)
    for r, (label, value) in enumerate(
        [("Name", "Ana Lind"), ("Date of birth:", "3 May 1990"), ("Fax", ""), ("Plan", "Gold")]
    ):
        form.cell(r, 0).text, form.cell(r, 1).text = label, value
    figures = d.add_table(rows=3, cols=2)
    for r, (label, value) in enumerate([("Quarter", "Revenue"), ("Q1", "1,200"), ("Q2", "1,350")]):
        figures.cell(r, 0).text, figures.cell(r, 1).text = label, value
    d.save(str(tmp_path / "form.docx"))
    doc = load(tmp_path / "form.docx")
    assert doc.text.splitlines() == [
        "Name: Ana Lind",
        "Date of birth: 3 May 1990",
        "Plan: Gold",
        "",
        "Q1 | Revenue: 1,200",
        "Q2 | Revenue: 1,350",
    ]


def test_html_nested_table_is_read_as_its_own_table() -> None:
    html = (
        "<table><thead><tr><th>Stage</th><th>Friday</th><th>Saturday</th></tr></thead>"
        "<tr><td>Main</td><td>The Orviks</td><td><table><tr><th>Time</th><th>Act</th></tr>"
        "<tr><td>18:00</td><td>Lina Berg</td></tr><tr><td>20:00</td><td>North Wind</td></tr></table></td></tr>"
        "<tr><td>Barn</td><td>Fiddlers</td><td>Harpists</td></tr></table>"
    )
    lines = _lines(html)
    assert lines[:2] == ["Main | Friday: The Orviks", "Barn | Friday: Fiddlers | Saturday: Harpists"]
    assert lines[2:] == ["18:00 | Act: Lina Berg", "20:00 | Act: North Wind"]


def test_html_layout_table_stays_running_text() -> None:
    html = (
        "<table role='presentation'><tr><td><h2>Menu</h2><p>Home</p></td><td><h1>News</h1>"
        "<p>The council met on Monday.</p><table><tr><th>Item</th><th>Votes</th></tr>"
        "<tr><td>Budget</td><td>12</td></tr></table></td></tr></table>"
    )
    text, sections, report = read_html(html)
    assert [s.title for s in sections] == ["Menu", "News"]
    assert "The council met on Monday." in text
    assert "Budget | Votes: 12" in text.splitlines()  # the data table inside the layout is still read as one
    assert report == {"tables": 1}


def test_table_lines_merged_values_name_every_header() -> None:
    rows = [["", "Q1", "Q2", "Q3"], ["Revenue", "0", "0", "5"], ["Costs", "", "7", "7"]]
    assert table_lines(rows) == ["Revenue | Q1 / Q2: 0 | Q3: 5", "Costs | Q2 / Q3: 7"]


# ---------------------------------------------------------------- Markdown tables


CUPS = """# Coffee survey

Every office counted the cups drunk in one week of March.

| site | cups | staff |
|:-----|-----:|------:|
| Oslo | 412 | 38 |
| Bergen | 296 | 25 |
| Tromsø \\| north | 118 | 9 |

## Notes

The Bergen count misses the Friday.

```
| not | a table |
|-----|---------|
| in  | a fence |
```
"""


def test_markdown_table_rows_and_headings() -> None:
    text, sections, tables = markdown_text(CUPS)
    assert tables == 1
    rows = "Oslo | cups: 412 | staff: 38\nBergen | cups: 296 | staff: 25\nTromsø | north | cups: 118 | staff: 9\n"
    assert rows in text
    assert "| in  | a fence |" in text  # a table in a code fence is code
    assert text.startswith("# Coffee survey\n\nEvery office") and text.endswith("```\n")
    assert [s.title for s in sections] == ["Coffee survey", "Notes"]
    for s in sections:
        assert text[s.start :].lstrip("# ").startswith(s.title)


def test_markdown_ragged_rows_and_no_table() -> None:
    raw = "a | b | c\n--|--|--\n1\n2 | 3 | 4 | 5 | 6\n| | |\n\nPlain | prose with a pipe.\n---\n"
    text, _, tables = markdown_text(raw)
    assert tables == 1
    assert text.startswith("1\n2 | b: 3 | c: 4\n\nPlain | prose")  # cells past the header's are not shown
    assert markdown_text("no tables | here\n\n---\n") == ("no tables | here\n\n---\n", [], 0)
    assert find_tables("| a |\n| --- | --- |\n| 1 |\n") == []  # the delimiter row must match the header


def test_markdown_document_text_is_the_rows(tmp_path: Path) -> None:
    doc = load(write(tmp_path / "cups.md", CUPS))
    assert doc.format == "markdown" and doc.report == {"tables": 1}
    assert "Oslo | cups: 412 | staff: 38" in doc.text.splitlines()
    assert doc.section_at(doc.text.index("Oslo")) == "Coffee survey"
    assert doc.section_at(doc.text.index("Friday")) == "Notes"
    plain = load(write(tmp_path / "plain.md", "# Title\n\nNo table here.\n"))
    assert plain.text == "# Title\n\nNo table here.\n" and plain.report == {}


# ---------------------------------------------------------------- forms


FORM = (
    "Accident Report\n"
    "Aircraft Make: Piper\tModel: PA-28-181\n"
    "Airframe Total Time: 3861 Hours   Engine Manufacturer: Lycoming\n"
    "Registration:\tOperator: Orvik Flying Club\n"
    "Pilot:   Jane   Holm     Certificate: Commercial\n"
    "The wind was light, at 10:30   the pilot called the tower.\n"
    "Signature: ________   Date: 2 May 2024\n"
)


def test_form_fields_are_found_from_their_shape() -> None:
    fields = form_fields(FORM)
    found = [(f.label, f.value) for f in fields]
    assert found == [
        ("Aircraft Make", "Piper"),
        ("Model", "PA-28-181"),
        ("Airframe Total Time", "3861 Hours"),
        ("Engine Manufacturer", "Lycoming"),
        ("Registration", ""),
        ("Operator", "Orvik Flying Club"),
        ("Pilot", "Jane Holm"),
        ("Certificate", "Commercial"),
        ("Signature", "________"),
        ("Date", "2 May 2024"),
    ]
    for f in fields:  # spans are in the text as it is
        assert FORM[f.start : f.end].startswith(f.label + ":")
        assert " ".join(FORM[f.start : f.end].split()).endswith(f.value)
    assert [f.label for f in fields if f.empty] == ["Registration", "Signature"]
    assert line_fields("Note: the gate opens at 10:30   see the map") == []  # one label only: prose


def test_form_lines_write_one_field_a_line_without_empty_ones() -> None:
    assert form_lines(FORM).splitlines() == [
        "Accident Report",
        "Aircraft Make: Piper",
        "Model: PA-28-181",
        "Airframe Total Time: 3861 Hours",
        "Engine Manufacturer: Lycoming",
        "Operator: Orvik Flying Club",
        "Pilot: Jane Holm",
        "Certificate: Commercial",
        "The wind was light, at 10:30   the pilot called the tower.",
        "Date: 2 May 2024",
    ]


def test_plain_text_form_keeps_its_raw_text(tmp_path: Path) -> None:
    doc = load(write(tmp_path / "form.txt", FORM))
    assert doc.text == FORM
    spans = [doc.text[f.start : f.end] for f in form_fields(doc.text)]
    assert spans[:2] == ["Aircraft Make: Piper", "Model: PA-28-181"]


def _docx_form(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.add_heading("Hire agreement", level=1)
    d.add_paragraph("Agreement between Orvik Boat Hire and the hirer named below.")
    d.add_paragraph("Hirer: Tomas Berg\tPhone: 555 0142")
    d.add_paragraph("Boat: Kestrel (rowing boat)\tDeposit: NOK 500")
    d.add_paragraph("Return by: 18:00\tInsurance:")
    d.add_paragraph("The hirer returns the boat clean and with its oars.")
    d.save(str(path))
    return path


def test_docx_form_fields_one_a_line(tmp_path: Path) -> None:
    doc = load(_docx_form(tmp_path / "hire.docx"))
    lines = doc.text.splitlines()
    for field in ("Hirer: Tomas Berg", "Phone: 555 0142", "Boat: Kestrel (rowing boat)", "Deposit: NOK 500"):
        assert field in lines
    assert "Return by: 18:00" in lines and "Insurance" not in doc.text  # the empty field is left out
    assert [s.title for s in doc.sections] == ["Hire agreement"]


# ---------------------------------------------------------------- real files through the assistant


def _found(answer, source: str, *needles: str) -> None:
    """The best passage found is in ``source`` and holds a line with every needle (label and value
    together), at offsets that map back to the document's text. (Which sentence the answer quotes is
    the answer layer's choice; the row must be what retrieval puts first.)"""
    top = answer.passages[0]
    assert top.source == source, [(p.source, p.text[:80]) for p in answer.passages]
    assert any(all(n in line for n in needles) for line in top.text.splitlines()), top.text


def _exact(assistant, answer) -> None:
    for p in [*answer.citations, *answer.passages]:
        assert assistant.document_text(p.source)[p.start : p.end] == p.text


def test_html_table_row_answers_through_the_assistant(tmp_path: Path, assistant_factory) -> None:
    write(tmp_path / "docs" / "festival.html", FESTIVAL)
    write(
        tmp_path / "docs" / "ferry.html",
        "<h1>Orvik ferry</h1><p>The ferry to the festival island leaves every hour; an adult return costs NOK 90.</p>",
    )
    assistant = assistant_factory()
    report = assistant.index([tmp_path / "docs"])
    assert report.failed == []
    answer = assistant.ask("How much is an adult weekend pass?")
    _found(answer, "festival.html", "Weekend pass", "Adult: €85")
    _exact(assistant, answer)


def test_markdown_table_row_answers_through_the_assistant(tmp_path: Path, assistant_factory) -> None:
    write(tmp_path / "docs" / "cups.md", CUPS)
    write(tmp_path / "docs" / "tea.md", "# Tea\n\nThe Oslo office prefers green tea; the kettle was replaced in May.\n")
    assistant = assistant_factory()
    assistant.index([tmp_path / "docs"])
    answer = assistant.ask("How many cups were drunk in Bergen?")
    _found(answer, "cups.md", "Bergen", "cups: 296")
    _exact(assistant, answer)


def test_docx_form_field_answers_through_the_assistant(tmp_path: Path, assistant_factory) -> None:
    (tmp_path / "docs").mkdir()
    _docx_form(tmp_path / "docs" / "hire.docx")
    assistant = assistant_factory()
    assistant.index([tmp_path / "docs"])
    answer = assistant.ask("How much is the deposit for the boat?")
    _found(answer, "hire.docx", "Deposit: NOK 500")
    assert "Deposit: NOK 500" in answer.passages[0].text.splitlines()  # the field on a line of its own
    _exact(assistant, answer)


# ---------------------------------------------------------------- bad input, within the budgets


def _within(path: Path):
    return load_within(path, None, None, Budget())


def test_thousand_column_table(tmp_path: Path) -> None:
    head = "".join(f"<th>c{i}</th>" for i in range(1000))
    body = "".join("<tr>" + "".join(f"<td>{r}.{i}</td>" for i in range(1000)) + "</tr>" for r in range(20))
    doc = _within(write(tmp_path / "wide.html", f"<table><tr>{head}</tr>{body}</table>"))
    lines = doc.text.splitlines()
    assert len(lines) == 20 and lines[3].startswith("3.0 | c1: 3.1 | c2: 3.2") and lines[3].endswith("c999: 3.999")


def test_colspan_of_a_billion_is_clipped(tmp_path: Path) -> None:
    html = (
        f"<table><tr><th>Item</th><th colspan={10**9}>Price</th></tr>"
        f"<tr><td>Tea</td><td colspan={10**9} rowspan={10**9}>3</td></tr><tr><td>Cake</td><td>4</td></tr></table>"
    )
    doc = _within(write(tmp_path / "span.html", html))
    assert doc.text.splitlines() == ["Tea | Price: 3", "Cake | Price: 3 | 4"]  # the span reaches down, as shown
    huge = "<table>" + f"<tr><td>a</td><td colspan={10**9}>b</td></tr>" * 3000 + "</table>"
    doc = _within(write(tmp_path / "huge.html", huge))  # 3 million cells when spread: read as text
    assert doc.report["warnings"] == [f"a table of over {MAX_GRID_CELLS:,} cells: read as running text"]
    assert doc.text.count("a\nb") == 3000


def test_ten_thousand_rows(tmp_path: Path) -> None:
    rows = "".join(f"<tr><td>Lot {r}</td><td>{r * 3}</td><td>{r % 7}</td></tr>" for r in range(10_000))
    html = f"<table><thead><tr><th>Lot</th><th>Weight</th><th>Grade</th></tr></thead>{rows}</table>"
    doc = _within(write(tmp_path / "long.html", html))
    assert "Lot 9999 | Weight: 29997 | Grade: 3" in doc.text.splitlines()
    md = "| lot | weight |\n|---|---|\n" + "".join(f"| Lot {r} | {r * 3} |\n" for r in range(10_000))
    doc = _within(write(tmp_path / "long.md", md))
    assert doc.text.count("\n") == 10_000 and "Lot 9999 | weight: 29997" in doc.text


@pytest.mark.parametrize("depth", [3, 300])
def test_nested_tables(tmp_path: Path, depth: int) -> None:
    html = "<table><tr><td>cell</td><td>" * depth + "<b>core</b>" + "</td></tr></table>" * depth
    doc = _within(write(tmp_path / "nested.html", html))
    assert "core" in doc.text and doc.text.count("cell") == depth
    if depth > 10:
        assert any("nested" in w for w in doc.report["warnings"])


def test_docx_form_with_hundreds_of_fields(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    for line in range(50):
        d.add_paragraph("\t".join(f"Field {line}-{i}: value {i}" if i % 3 else f"Blank {line}-{i}:" for i in range(12)))
    d.save(str(tmp_path / "wide.docx"))
    lines = _within(tmp_path / "wide.docx").text.splitlines()
    assert "Field 49-11: value 11" in lines and len([x for x in lines if x.startswith("Field")]) == 50 * 8
    assert not any(x.startswith("Blank") for x in lines)  # 200 empty fields left out


def test_unclosed_tables_and_a_budget_of_characters(tmp_path: Path) -> None:
    doc = _within(write(tmp_path / "open.html", "<p>Intro</p><table><tr><th>k</th><th>v</th><tr><td>a</td><td>1"))
    assert doc.text == "Intro\n\na | v: 1"
    rows = "".join(f"<tr><td>row {r}</td><td>{'x' * 50}</td><td>y</td></tr>" for r in range(5000))
    with pytest.raises(DocumentError, match="characters"):
        load_within(write(tmp_path / "big.html", f"<table>{rows}</table>"), None, None, Budget(chars=100_000))


# ---------------------------------------------------------------- properties

_WORD = st.text(alphabet="abcdefgh€:|,.0123 ", min_size=1, max_size=12)


@st.composite
def _table_html(draw: st.DrawFn, depth: int = 0) -> str:
    """Random tables: headers, spans (some huge), captions, empty cells, nested tables, definition lists."""
    parts = [draw(st.sampled_from(["<table>", "<table role=presentation>"]))]
    if draw(st.booleans()):
        parts.append(f"<caption>{html.escape(draw(_WORD))}</caption>")
    for _ in range(draw(st.integers(0, 5))):
        parts.append(draw(st.sampled_from(["<tr>", "<thead><tr>", "<tbody><tr>", "<tr>"])))
        for _ in range(draw(st.integers(0, 5))):
            tag = draw(st.sampled_from(["td", "th"]))
            span = draw(
                st.sampled_from(["", " colspan=2", " rowspan=3", f" colspan={10**9}", " rowspan=0", " colspan=x"])
            )
            kind = draw(st.sampled_from(["word", "word", "empty", "nested", "dl"] if depth < 2 else ["word", "empty"]))
            if kind == "nested":
                inner = draw(_table_html(depth + 1))
            elif kind == "dl":
                inner = f"<dl><dt>{html.escape(draw(_WORD))}</dt><dd>{html.escape(draw(_WORD))}</dd></dl>"
            else:
                inner = html.escape(draw(_WORD)) if kind == "word" else ""
            parts.append(f"<{tag}{span}>{inner}</{tag}>")
        parts.append("</tr>")
    parts.append("</table>")
    return "".join(parts)


def _words(text: str) -> set[str]:
    return {w.strip(":|/") for w in text.split()} - {""}


@settings(max_examples=200, deadline=None)
@given(page=_table_html())
def test_property_tables_read_without_inventing_words(page: str) -> None:
    text, sections, report = read_html(f"<h1>Head</h1>{page}<p>tail</p>")
    source_words = _words(html.unescape(re.sub(r"<[^>]*>", " ", page))) | {"Head", "tail"}
    assert _words(text) <= source_words, (page, text)
    assert text.startswith("Head") and text.endswith("tail")
    assert [s.title for s in sections] == ["Head"]
    assert set(report) <= {"tables", "warnings"}


_MD_LINE = st.sampled_from(
    [
        "| a | b |",
        "|---|---|",
        "| 1 | 2 | 3 |",
        "x y",
        "",
        "# H",
        "```",
        "- item",
        "c \\| d",
        "|:-:|",
        "---",
        "Title",
        "===",
    ]
)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(_MD_LINE, max_size=30))
def test_property_markdown_rows_keep_words_and_headings(lines: list[str]) -> None:
    raw = "\n".join(lines)
    text, sections, tables = markdown_text(raw)
    seen = _words(text.replace("\\|", " ").replace("-", " "))
    assert seen <= _words(raw.replace("\\|", " ").replace("-", " "))
    if not tables:
        assert text == raw
    for s in sections:
        assert 0 <= s.start < len(text)
        assert text[s.start :].lstrip(" #").startswith(s.title[:1])


@settings(max_examples=200, deadline=None)
@given(line=st.lists(st.sampled_from(["Name:", "Jo", "\t", "   ", "Date: 5", "10:30", "a: b", ":", " "]), max_size=12))
def test_property_form_fields_are_spans_of_the_text(line: list[str]) -> None:
    text = "".join(line) + "\nnext line"
    for f in form_fields(text):
        span = text[f.start : f.end]
        assert span == span.strip() and (not f.label or re.match(re.escape(f.label) + r"\s*:", span)), (text, f)
        assert " ".join(text[f.start : f.end].split()).endswith(f.value)
