"""Answers with the value asked for, or a refusal, on real files through the real model and index: PDF
forms with two fields a line (the report's identity on page 1, the fields on page 2), a statement table in
Markdown, and questions about names and periods that no document holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import Assistant
from rag.documents import load

from .helpers import SECTION_HEADING, SECTION_SENTENCE, sectioned_pdf

REPORTS = {
    "report-a.pdf": {
        "identity": [
            ("Location:", "Tallahassee, FL", "Accident Number:", "NYC08CA055"),
            ("Date & Time:", "12/08/2007, 1730 EST", "Registration:", "N5921D"),
        ],
        "fields": [
            ("Altimeter Setting:", "30.27 inches Hg", "Temperature/Dew Point:", "22°C / 17°C"),
            ("Wind Speed/Gusts:", "Calm", "Visibility (RVR):", ""),
            ("Engine Manufacturer:", "Lycoming", "Rated Power:", ""),
        ],
    },
    "report-b.pdf": {
        "identity": [
            ("Location:", "Wausau, WI", "Accident Number:", "CHI08CA047"),
            ("Date & Time:", "12/08/2007, 1145 CST", "Registration:", "N7103E"),
        ],
        "fields": [
            ("Altimeter Setting:", "29.92 inches Hg", "Temperature/Dew Point:", "-8°C / -11°C"),
            ("Wind Speed/Gusts:", "12 knots / 18 knots", "Visibility (RVR):", ""),
            ("Engine Manufacturer:", "Continental", "Rated Power:", "145 hp"),
        ],
    },
}


def _form_pdf(path: Path, spec: dict) -> None:
    """A two-page report: page 1 names the accident, page 2 holds its fields, two to a line."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    pages = [("Aviation Accident Final Report", spec["identity"]), ("Meteorological Information", spec["fields"])]
    for heading, rows in pages:
        c.setFont("Helvetica-Bold", 16)
        c.drawString(54, 780, heading)
        c.setFont("Helvetica", 10)
        y = 740
        for label_a, value_a, label_b, value_b in rows:
            c.drawString(54, y, label_a)
            c.drawString(180, y, value_a)
            c.drawString(330, y, label_b)
            if value_b:
                c.drawString(460, y, value_b)
            y -= 18
        c.drawString(54, y - 30, "The pilot reported that the flight was uneventful until the approach to land.")
        c.showPage()
    c.save()


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    root = tmp_path_factory.mktemp("forms")
    docs = root / "docs"
    docs.mkdir()
    for name, spec in REPORTS.items():
        _form_pdf(docs / name, spec)
    assistant = Assistant(index_dir=root / "index")
    report = assistant.index([docs])
    assert not report.failed
    return assistant


def test_form_rows_become_one_field_a_line(forms: Assistant) -> None:
    text = forms.document_text("report-a.pdf")
    assert "Altimeter Setting: 30.27 inches Hg\nTemperature/Dew Point: 22°C / 17°C" in text
    assert "\nVisibility (RVR):\n" in text  # an empty field stays empty: not the label of its neighbour
    assert "Location: Tallahassee, FL" in forms.identities()["report-a.pdf"]


@pytest.mark.parametrize(
    ("place", "field", "value"),
    [
        ("Tallahassee, FL", "what was the altimeter setting?", "30.27 inches Hg"),
        ("Wausau, WI", "what was the altimeter setting?", "29.92 inches Hg"),
        ("Wausau, WI", "who manufactured the engine?", "Continental"),
        ("Tallahassee, FL", "what were the temperature and dew point?", "22°C / 17°C"),
    ],
)
def test_a_field_on_page_two_is_answered_for_the_report_the_question_names(
    forms: Assistant, place: str, field: str, value: str
) -> None:
    answer = forms.ask(f"In the accident at {place} on 12/08/2007, {field}")
    assert answer.answered, answer.note
    assert value in answer.text
    citation = answer.citations[0]
    wanted = "report-a.pdf" if place.startswith("Tallahassee") else "report-b.pdf"
    assert citation.source == wanted and citation.page == 2
    text = forms.document_text(wanted)
    quoted = [text[a:b] for a, b in citation.highlights]
    assert quoted[-1] == value  # the highlight is the field, not the whole line
    assert citation.boxes and all(0 <= x0 < x1 <= 1 for x0, _, x1, _ in citation.boxes)


def test_an_empty_field_is_never_the_answer(forms: Assistant) -> None:
    answer = forms.ask("In the accident at Tallahassee, FL on 12/08/2007, what was the engine's rated power?")
    assert "Rated Power: [" not in answer.text
    assert "145 hp" not in answer.text  # the other report's value is not this report's


def test_a_report_the_documents_do_not_hold_is_refused(forms: Assistant) -> None:
    answer = forms.ask("In the accident at Boise, ID on 01/14/2008, what was the altimeter setting?")
    assert not answer.answered
    assert "inches Hg" not in answer.text
    assert answer.note and ("Boise" in answer.note or "2008" in answer.note)


STATEMENT = """# Orchard Devices Inc. quarterly report

For the quarterly period ended July 1, 2023.

## Net sales by category

| Category | Three Months Ended July 1, 2023 | Three Months Ended June 25, 2022 | Nine Months Ended July 1, 2023 |
|---|---|---|---|
| Phones | $ 39,669 | $ 40,665 | $ 156,778 |
| Laptops | $ 6,840 | $ 7,382 | $ 21,743 |
| Total net sales | $ 81,797 | $ 82,959 | $ 282,105 |

Net sales fell in the third quarter as phone sales slowed.
"""


@pytest.fixture(scope="module")
def statement(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    root = tmp_path_factory.mktemp("statement")
    docs = root / "docs"
    docs.mkdir()
    (docs / "orchard-q3-2023.md").write_text(STATEMENT, encoding="utf-8")
    assistant = Assistant(index_dir=root / "index")
    assistant.index([docs])
    return assistant


def test_the_cell_of_the_asked_row_and_period_is_the_answer(statement: Assistant) -> None:
    answer = statement.ask("What were Orchard's total net sales for the three months ended July 1, 2023?")
    assert answer.answered
    assert answer.text.startswith("Total net sales, Three Months Ended July 1, 2023: $81,797 [1]")
    nine = statement.ask("What were Orchard's total net sales for the nine months ended July 1, 2023?")
    assert "282,105" in nine.text and "81,797" not in nine.text


def test_another_company_or_a_period_no_document_covers_is_refused(statement: Assistant) -> None:
    for question in (
        "What were Tesla's total net sales for the three months ended July 1, 2023?",
        "What were Orchard's total net sales for the quarter ended December 30, 2023?",
        "What were Orchard's total net sales in the fourth quarter of 2024?",
    ):
        answer = statement.ask(question)
        assert not answer.answered, (question, answer.text)
        assert "81,797" not in answer.text and "$" not in answer.text


def test_a_follow_up_keeps_the_period_and_asks_for_its_own_row(statement: Assistant) -> None:
    session = statement.chat()
    first = session.ask("What were Orchard's phones net sales for the three months ended July 1, 2023?")
    assert "39,669" in first.text
    follow = session.ask("And laptops?")
    assert follow.rewritten_question and "July 1, 2023" in follow.rewritten_question
    assert "6,840" in follow.text and "7,382" not in follow.text


def test_markdown_statement_rows_keep_their_labels(tmp_path: Path) -> None:
    path = tmp_path / "s.md"
    path.write_text(STATEMENT, encoding="utf-8")
    text = load(path).text
    assert "Laptops | Three Months Ended July 1, 2023: $ 6,840" in text


def test_rag_sources_shows_what_each_document_is_taken_to_be(forms: Assistant) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "sources", "--index", str(forms.index_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("report-a.pdf"))
    assert "is: Aviation Accident Final Report; Location: Tallahassee, FL" in lines[at + 1]
    assert "Date & Time: 12/08/2007, 1730 EST" in lines[at + 1]


def _long_report() -> str:
    """A quarterly report whose discussion of inventory fills several passages before the balance sheet."""
    paragraphs = [
        f"Inventory note {i}. Inventory levels in region {i} rose as the Company built inventory ahead of "
        "product launches; inventory management kept inventory levels in line with demand, and the Company "
        "expects inventory levels to ease as component shortages and shipping delays in its supply chain end."
        for i in range(1, 13)
    ]
    sheet = (
        "## Condensed consolidated balance sheets\n\n"
        "| Item | July 1, 2023 | September 24, 2022 |\n|---|---|---|\n"
        "| Cash and cash equivalents | 28,408 | 23,646 |\n"
        "| Inventories | 7,351 | 4,946 |\n"
        "| Vendor non-trade receivables | 19,637 | 32,748 |\n"
    )
    return "# Orchard Devices Inc. quarterly report\n\n## Inventory\n\n" + "\n\n".join(paragraphs) + "\n\n" + sheet


def test_the_asked_row_is_found_beyond_the_retrieved_passages(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    text = _long_report()
    (docs / "orchard-q3-2023.md").write_text(text, encoding="utf-8")
    assistant = Assistant(index_dir=tmp_path / "index")
    assistant.index([docs])
    question = "What were Orchard's inventory levels?"
    (top,) = assistant.search(question, k=1)
    assert "7,351" not in top.text  # the one passage retrieved is the discussion, not the balance sheet
    answer = assistant.ask(question, k=1)
    assert answer.answered
    assert answer.text.startswith("Inventories, July 1, 2023: 7,351 [1]")
    (citation,) = answer.citations[:1]
    derived = load(docs / "orchard-q3-2023.md").text
    assert [derived[a:b] for a, b in citation.highlights] == ["Inventories", "July 1, 2023: 7,351"]
    assert len(answer.passages) == 1 and answer.passages[0].start == citation.start


def test_a_pdf_heading_on_its_own_line_is_not_glued_to_the_quoted_sentence(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    sectioned_pdf(docs / "report.pdf")
    assistant = Assistant(index_dir=tmp_path / "index")
    assert not assistant.index([docs]).failed
    answer = assistant.ask("How many shares did the company repurchase, and for how much?")
    assert answer.answered
    assert answer.text.startswith(SECTION_SENTENCE), answer.text
    assert SECTION_HEADING not in answer.text
    citation = answer.citations[0]
    quoted = citation.quoted()
    assert quoted.startswith(SECTION_SENTENCE) and SECTION_HEADING not in quoted
    # The highlight's boxes start on the sentence's line, not on the heading's.
    assert citation.boxes and all(box[2] - box[0] > 0.3 for box in citation.boxes[:1])


def test_the_best_passages_keep_distinct_scores(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    towns = ("Dover", "Calais", "Brest", "Cork", "Bergen")
    for i, town in enumerate(towns):
        (docs / f"{town.lower()}.txt").write_text(
            f"The lighthouse keeper at {town} lit the lamp at dusk every evening from {1880 + i}.", encoding="utf-8"
        )
    assistant = Assistant(index_dir=tmp_path / "index")
    assistant.index([docs])
    passages = assistant.search("When did the lighthouse keeper light the lamp at dusk?", k=5)
    scores = [p.score for p in passages]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True) and all(0 <= s < 1 for s in scores)
    assert len(set(scores)) == len(scores), scores  # clipped at 1 they all read 1.00


def test_bad_questions_and_odd_tables_through_the_real_model(tmp_path: Path) -> None:
    """Each gets an answer or a refusal (never an error); what no document holds is refused."""
    from .test_answers import BAD_QUESTIONS

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "orchard-q3-2023.md").write_text(STATEMENT, encoding="utf-8")
    (docs / "orchard-segments.md").write_text(
        "# Orchard Devices segments\n\n|   |   |   |\n|---|---|---|\n| Americas | $ 35,383 | $ 37,472 |\n"
        "| Europe | 20,205 | 19,287 |\n\n| Region | Amount | Amount |\n|---|---|---|\n| Japan | 4,821 | 5,446 |\n\n"
        "| Segment | Operating income |\n|---|---|\n| Retail | not meaningful |\n",
        encoding="utf-8",
    )
    assistant = Assistant(index_dir=tmp_path / "index")
    assert not assistant.index([docs]).failed
    for kind, question in BAD_QUESTIONS.items():
        answer = assistant.ask(question)
        assert answer.text, kind
        if kind in ("twenty periods", "twenty quarters", "twenty companies", "a thousand acronyms"):
            assert not answer.answered, (kind, answer.text)
    europe = assistant.ask("What were Orchard Devices' Europe segment net sales?")
    assert europe.answered and "20,205" in europe.text and "35,383" not in europe.text
    japan = assistant.ask("What was the amount for Japan in Orchard Devices' segments?")
    assert japan.answered and "4,821" in japan.text
    retail = assistant.ask("What was the operating income of Orchard Devices' retail segment?")
    assert "not meaningful" in retail.text or not retail.answered



def _quarter_report(path: Path, ended: str, total: str) -> None:
    """A one-page quarterly report PDF whose first page says which period it reports on."""
    from reportlab.pdfgen import canvas

    lines = [
        "FORM 10-Q ORCHARD DEVICES INC.",
        f"For the quarterly period ended {ended}",
        "",
        f"Total net sales were ${total} million in the quarter, as phone sales moved with the season.",
        "Orchard Devices designs phones and laptops and sells them in stores and online worldwide.",
    ]
    c = canvas.Canvas(str(path))
    for i, line in enumerate(lines):
        c.setFont("Helvetica", 10)
        c.drawString(54, 760 - 16 * i, line)
    c.save()


def test_the_latest_report_answers_a_question_about_the_most_recent_quarter(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    # The older report comes first in every listing and shares every word with the question.
    _quarter_report(docs / "a-orchard-report.pdf", "April 1, 2023", "94,836")
    _quarter_report(docs / "b-orchard-report.pdf", "July 1, 2023", "81,797")
    assistant = Assistant(index_dir=tmp_path / "index")
    assistant.index([docs])
    for question in (
        "What were Orchard's total net sales in the most recent quarterly report?",
        "What were Orchard's total net sales in the latest quarter?",
    ):
        answer = assistant.ask(question, k=2)
        assert answer.answered, question
        assert "81,797" in answer.text and "94,836" not in answer.text, (question, answer.text)
        assert {p.source for p in answer.passages} == {"b-orchard-report.pdf"}
    # Without "latest" both reports stay in play.
    both = assistant.ask("What were Orchard's total net sales?", k=2)
    assert len({p.source for p in both.passages}) == 2


def test_the_language_model_is_given_the_row_found_beyond_the_retrieved_passages(tmp_path: Path) -> None:
    from rag.generation import REWRITE_PROMPT

    from .fake_openai import FakeOpenAI, Reply

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "orchard-q3-2023.md").write_text(_long_report(), encoding="utf-8")
    Assistant(index_dir=tmp_path / "index").index([docs])
    question = "What were Orchard's inventory levels?"
    with FakeOpenAI() as server:
        assistant = Assistant(index_dir=tmp_path / "index", llm_base_url=server.url, llm_model="m", llm_timeout=30.0)
        server.responder = lambda r: Reply(f"Inventories were 7,351 [{r.passage_number('7,351')}].")
        answer = assistant.ask(question, k=1)
        (request,) = [r for r in server.chat_requests() if r.messages[0]["content"] != REWRITE_PROMPT]
    # The one passage retrieved is the discussion; the balance sheet's row is sent too, first, and named.
    assert request.passage_number("7,351") == 1
    assert "- [1] Inventories, July 1, 2023: 7,351" in request.prompt
    assert answer.generator == "llm" and answer.claims and all(c.supported for c in answer.claims)
