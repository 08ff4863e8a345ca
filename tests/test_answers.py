"""The answer layer's parts on their own: reading a question, cells of a passage, constraint checks, the
choice of a cell. (The whole path, with the real model and real files, is in test_answers_real.py.)"""

from __future__ import annotations

import pytest

from rag.answers import Answerer, cells_of, check_passages, document_identity, read_question, wants_value
from rag.answers.answerer import coverage
from rag.answers.constraints import (
    Scope,
    document_period,
    header_agrees,
    latest_sources,
    missing_names,
    missing_period,
)
from rag.answers.question import MONTHS, read_period
from rag.answers.values import best_cell
from rag.page_forms import identity_lines, is_label
from rag.types import Passage


def passage(text: str, source: str = "report.pdf", start: int = 100, score: float = 0.8) -> Passage:
    return Passage(source, start, start + len(text), text, score)


# ------------------------------------------------------------------ questions


@pytest.mark.parametrize(
    ("question", "dates", "quarters", "years", "span"),
    [
        (
            "What was Apple's total net sales for the three months ended July 1, 2023?",
            ((2023, 7, 1),),
            (),
            (2023,),
            "three",
        ),
        ("What was Tesla's total revenue in the third quarter of 2023?", (), ((3, 2023),), (2023,), "three"),
        ("What was Uber's gross bookings in Q3 2023?", (), ((3, 2023),), (2023,), ""),  # "Q3" names a report
        ("What was Dell's revenue in Q2 fiscal 2024?", (), ((2, 2024),), (2024,), ""),
        (
            "In the accident at Tallahassee, FL on 12/08/2007, what was the altimeter setting?",
            ((2007, 12, 8),),
            (),
            (2007,),
            "",
        ),
        ("How much did it spend in the nine months ended 2023-07-01?", ((2023, 7, 1),), (), (2023,), "nine"),
        ("Who wrote the book?", (), (), (), ""),
    ],
)
def test_periods_are_read_from_the_question(question, dates, quarters, years, span):
    period = read_period(question)
    assert period.dates == dates
    assert period.quarters == quarters
    assert period.years == years
    assert period.span == span


def test_names_and_measure_words():
    asked = read_question("What was Microsoft's Intelligent Cloud revenue for the quarter ended December 31, 2023?")
    assert asked.names == ("Microsoft", "Intelligent Cloud")
    assert asked.measure == {"revenu", "microsoft", "intellig", "cloud"}
    asked = read_question("How much did IBM spend on research and development?")
    assert asked.names == ("IBM",)
    assert {"research", "develop", "spend"} <= asked.measure
    assert read_question("what was the NTSB accident number?").names == ("NTSB",)
    assert read_question("When was the iPhone launched?").names == ("iPhone",)


def test_explanations_are_not_value_questions():
    assert wants_value(read_question("What was the altimeter setting?"))
    assert wants_value(read_question("How much did Apple spend on research and development?"))
    assert not wants_value(read_question("What are the major factors contributing to the change in gross margin?"))
    assert not wants_value(read_question("Why did revenue fall?"))
    for question in (
        "What effects did currency fluctuations have on the financial statements?",
        "What do the inventory levels suggest about inventory management?",
        "What details did the company give about its debt?",
        "How significant was data center revenue relative to total revenue?",
    ):
        assert not wants_value(read_question(question)), question


# ------------------------------------------------------------------ cells


def test_form_fields_and_table_cells_keep_their_offsets():
    text = (
        "Altimeter Setting: 30.27 inches Hg\nRegistration:\n"
        "Total net sales | Three Months Ended July 1, 2023: $ 81,797 | Three Months Ended June 25, 2022: $ 82,959\n"
        "A sentence with no field."
    )
    p = passage(text)
    cells = cells_of(p)
    assert [(c.label, c.header, c.value, c.kind) for c in cells] == [
        ("Altimeter Setting", "", "30.27 inches Hg", "field"),
        ("Registration", "", "", "field"),
        ("Total net sales", "Three Months Ended July 1, 2023", "$ 81,797", "cell"),
        ("Total net sales", "Three Months Ended June 25, 2022", "$ 82,959", "cell"),
    ]
    document = " " * p.start + text
    for c in cells:
        assert document[c.start : c.end].endswith(c.value)
        assert document[c.label_start : c.label_end] == c.label
    assert cells[1].empty and not cells[0].empty
    assert cells[2].quote() == "Total net sales, Three Months Ended July 1, 2023: $81,797"
    assert cells[0].quote() == "Altimeter Setting: 30.27 inches Hg"


def test_label_shapes():
    assert is_label("Date & Time: 12/08/2007")
    assert is_label("Certified Max Gross Wt.: 2000 lbs")
    assert not is_label("The pilot said: we are going down")
    assert not is_label("at 10:30 the plane left")
    assert not is_label("A sentence. Then: more")


def test_identity_lines_take_fields_and_dates_of_the_first_page():
    page = (
        "Aviation Accident Final Report\n\nLocation: Tallahassee, FL\nAccident Number: NYC08CA055\n"
        "Defining Event:\nA long paragraph of prose that goes on for a while and does not identify the report "
        "at all, however long it is, and so it is left out of the identity lines entirely.\n"
        "For the quarterly period ended July 1, 2023"
    )
    assert identity_lines(page) == [
        "Location: Tallahassee, FL",
        "Accident Number: NYC08CA055",
        "For the quarterly period ended July 1, 2023",
    ]


# ------------------------------------------------------------------ constraints


def test_names_must_be_in_the_passage_or_its_document():
    asked = read_question("What was Tesla's total revenue in the third quarter of 2023?")
    scope = Scope("Total revenue | Three Months Ended Sep 30, 2023: 14,158", "2023 Q3 INTC\nINTEL CORPORATION")
    assert missing_names(asked, scope) == ["Tesla"]
    asked = read_question("What was Intel's total revenue?")
    assert missing_names(asked, scope) == []
    acronym = read_question("What was the NTSB accident number?")
    assert missing_names(acronym, Scope("Accident Number: X1", "National Transportation Safety Board Report")) == []


def test_periods_must_be_held():
    period = read_period("for the quarter ended December 30, 2023")
    assert missing_period(period, "For the quarterly period ended July 1, 2023") == "December 30, 2023"
    assert missing_period(period, "Three Months Ended December 30, 2023") == ""
    q4 = read_period("in the fourth quarter of 2023")
    assert missing_period(q4, "2023 Q3 INTC\nthird quarter of 2023") == "Q4 2023"
    assert missing_period(read_period("Q1 2023"), "2023 Q1 AAPL") == ""
    assert missing_period(read_period("on 12/08/2007"), "Date & Time: 12/08/2007, 1730 EST") == ""
    assert missing_period(read_period("on 12/08/2007"), "Date & Time: December 8, 2007") == ""


def test_column_headers_must_agree():
    period = read_period("for the three months ended July 1, 2023")
    assert header_agrees(period, "Three Months Ended July 1, 2023") is True
    assert header_agrees(period, "Nine Months Ended July 1, 2023") is False
    assert header_agrees(period, "Three Months Ended June 25, 2022") is False
    assert header_agrees(period, "Change") is None


# ------------------------------------------------------------------ choosing


def test_the_cell_in_the_asked_row_and_column_is_chosen():
    asked = read_question("What was Apple's total net sales for the three months ended July 1, 2023?")
    p = passage(
        "Products | Three Months Ended July 1, 2023: $ 60,584 | Nine Months Ended July 1, 2023: $ 230,901\n"
        "Total net sales | Three Months Ended June 25, 2022: $ 82,959 | Three Months Ended July 1, 2023: $ 81,797"
        " | Nine Months Ended July 1, 2023: $ 282,105",
        "2023 Q3 AAPL.pdf",
    )
    match = best_cell(asked, [p], {})
    assert match is not None
    assert match.cell.value == "$ 81,797"


def test_empty_fields_and_unrelated_labels_are_never_chosen():
    asked = read_question("What was the registration?")
    p = passage("Registration:\nAircraft Damage: Substantial\nLocation: Tallahassee, FL")
    assert best_cell(asked, [p], {}) is None
    asked = read_question("how badly was the aircraft damaged?")
    match = best_cell(asked, [p], {})
    assert match is not None and match.cell.value == "Substantial"


def test_the_answerer_quotes_the_cell_and_cites_it():
    question = "In the accident at Tallahassee, FL on 12/08/2007, what was the altimeter setting?"
    report = passage("Wind Speed/Gusts: Calm /\nAltimeter Setting: 30.27 inches Hg\nTemperature/Dew Point: 22°C / 17°C")
    other = passage("Altimeter Setting: 29.92 inches Hg", source="other.pdf")
    identities = {
        "report.pdf": document_identity(
            "report.pdf", {"identity": ["Location: Tallahassee, FL", "Date & Time: 12/08/2007"]}
        ),
        "other.pdf": document_identity("other.pdf", {"identity": ["Location: Wausau, WI", "Date & Time: 12/08/2007"]}),
    }
    answer = Answerer(min_score=0.0).answer(question, [other, report], identities)
    assert answer.answered
    assert answer.text == "Altimeter Setting: 30.27 inches Hg [1]"
    citation = answer.citations[0]
    assert citation.source == "report.pdf"
    document = " " * report.start + report.text
    quoted = [document[a:b] for a, b in citation.highlights]
    assert quoted == ["Altimeter Setting", "30.27 inches Hg"]


def test_a_question_about_what_no_document_names_is_refused():
    identities = {"2023 Q3 INTC.pdf": "2023 Q3 INTC\nINTEL CORPORATION"}
    p = passage("Total revenue | Three Months Ended Sep 30, 2023: $ 14,158", "2023 Q3 INTC.pdf", score=0.9)
    answer = Answerer(min_score=0.0).answer(
        "What was Tesla's total revenue in the third quarter of 2023?", [p], identities
    )
    assert not answer.answered
    assert "Tesla" in (answer.note or "")
    checked = check_passages(read_question("What was Intel's total revenue in Q3 2023?"), [p], identities)
    assert checked.allowed == [p]


def test_a_follow_up_asks_for_its_own_row_in_the_carried_period():
    table = passage(
        "iPhone | Three Months Ended July 1, 2023: $ 39,669 | Three Months Ended June 25, 2022: $ 40,665\n"
        "Mac | Three Months Ended July 1, 2023: $ 6,840 | Three Months Ended June 25, 2022: $ 7,382\n"
        "Total net sales | Three Months Ended July 1, 2023: $ 81,797 | Three Months Ended June 25, 2022: $ 82,959",
        "2023 Q3 AAPL.pdf",
    )
    asked = read_question("And Mac? (about: Apple's, three months ended July 1, 2023, iPhone, net, sales)")
    assert asked.measure == {"mac"}
    assert asked.period.dates == ((2023, 7, 1),)
    match = best_cell(asked, [table], {"2023 Q3 AAPL.pdf": {"appl", "inc"}})
    assert match is not None
    assert (match.cell.label, match.cell.value) == ("Mac", "$ 6,840")


def test_prose_may_name_its_subject_in_another_passage_of_its_document_but_a_value_may_not():
    asked = read_question("Who did Denver beat in the 2015 AFC Championship game?")
    named = passage("The Broncos won the 2015 AFC Championship over the Patriots.", "Super_Bowl_50.txt", start=0)
    other = passage("Denver finished the season 12-4.", "Super_Bowl_50.txt", start=500)
    checked = check_passages(asked, [named, other], {})
    assert named not in checked.allowed  # "Denver" is not in it
    assert named in checked.related  # but another passage of its document names Denver
    alike = read_question("How much Saharan dust falls on the Amazon?")
    dust = passage("Dust from the Sahara reaches the Amazon each year.", "Amazon_rainforest.txt", start=0)
    assert dust in check_passages(alike, [dust], {}).related
    unrelated = read_question("What was Broadcom's revenue?")
    broadband = passage("Broadband revenue | 2023: 1,200", "2023 Q3 XYZ.pdf")
    assert check_passages(unrelated, [broadband], {}).related == []


def test_a_quarter_without_a_year_pins_no_period():
    assert read_period("Who scored in the fourth quarter?").quarters == ()
    assert read_period("revenue in the fourth quarter of 2023").quarters == ((4, 2023),)


# ------------------------------------------------------------------ fiscal quarters, whole documents, kinds


def test_a_quarter_is_the_one_the_document_reports_on_whatever_its_fiscal_calendar():
    asked = read_period("What were Apple's operating expenses in Q1 2023?")
    identity = "2023 Q1 AAPL\nApple Inc.\nFor the quarterly period ended December 31, 2022 or"
    period = document_period(asked, identity)
    assert period.dates == ((2022, 12, 31),)
    assert header_agrees(period, "Three Months Ended December 31, 2022") is True
    assert header_agrees(period, "Three Months Ended December 25, 2021") is False
    # A document that does not name the quarter keeps the question's period as it is.
    assert document_period(asked, "Apple Inc.\nFor the quarterly period ended April 1, 2023") == asked
    # Without the document's word for it, a quarter agrees with a date that may end it in some fiscal
    # calendar (December 2022 may end a fiscal Q1 2023), not with one a year earlier.
    assert header_agrees(asked, "Three Months Ended December 31, 2022") is True
    assert header_agrees(asked, "Three Months Ended December 25, 2021") is False
    assert header_agrees(read_period("in Q4 2023"), "Three Months Ended March 31, 2023") is False


class _Documents:
    """The rest of a document, as :class:`rag.answers.answerer.Documents` gives it (placed marks the call)."""

    def __init__(self, passages: list[Passage]) -> None:
        self.rest = passages
        self.placed_ids: list[int] = []

    def passages(self, source: str) -> list[Passage]:
        return [p for p in self.rest if p.source == source]

    def text(self, source: str) -> str:
        return "\n".join(p.text for p in self.passages(source))

    def placed(self, p: Passage) -> Passage:
        self.placed_ids.append(p.chunk_id)
        return p


def test_the_asked_row_is_found_in_a_passage_of_the_document_that_was_not_retrieved():
    question = "What were Apple's inventory levels in the Q3 2022 report?"
    identities = {"2022 Q3 AAPL.pdf": "2022 Q3 AAPL\nApple Inc.\nFor the quarterly period ended June 25, 2022"}
    prose = Passage(
        "2022 Q3 AAPL.pdf", 0, 60, "The Company's supply chain remained constrained in the quarter.", 0.7, chunk_id=1
    )
    sheet_text = (
        "Inventories | June 25, 2022: 5,433 | September 25, 2021: 6,580\n"
        "Vendor non-trade receivables | June 25, 2022: 26,058"
    )
    sheet = Passage("2022 Q3 AAPL.pdf", 900, 900 + len(sheet_text), sheet_text, 0.4, chunk_id=7)
    answerer = Answerer(min_score=0.0)
    without = answerer.answer(question, [prose], identities)
    assert "5,433" not in without.text
    documents = _Documents([prose, sheet])
    answer = answerer.answer(question, [prose], identities, documents)
    assert answer.text == "Inventories, June 25, 2022: 5,433 [1]"
    assert answer.citations[0].start == 900 and documents.placed_ids == [7]
    assert [p.chunk_id for p in answer.passages] == [7]  # as many passages as were retrieved, the cited first


def test_the_kind_of_value_asked_for_shapes_the_choice():
    fields = passage("Departure Time: 1710 EST\nDeparture Point: Quincy, FL (2J9)\nRegistration: N461TC\nAge: 85, Male")
    where = best_cell(read_question("Where did it depart from?"), [fields], {})
    assert where is not None and where.cell.value == "Quincy, FL (2J9)"  # a time is not a place
    old = best_cell(read_question("How old was the pilot?"), [fields], {})
    assert old is not None and old.cell.value == "85, Male"  # "how old" asks for an age
    assert best_cell(read_question("Who was the registered owner?"), [fields], {}) is None  # a code is not a person


def test_the_current_column_is_preferred_whether_a_statement_sets_it_first_or_last():
    asked = read_question("What was AWS segment revenue?")
    older_first = passage(
        "AWS | Three Months Ended September 30, 2022: 20,538 | Three Months Ended September 30, 2023: 23,059"
    )
    match = best_cell(asked, [older_first], {})
    assert match is not None and match.cell.value == "23,059"


def test_a_column_of_changes_answers_only_a_question_about_change():
    row = passage(
        "Revenue | Three Months Ended $ Change: 2 | Quarter-over-Quarter Change: 19 % | Three Months Ended: 7,192"
    )
    value = best_cell(read_question("What was NVIDIA's revenue?"), [row], {})
    assert value is not None and value.cell.value == "7,192"
    change = best_cell(read_question("By how much did revenue change quarter over quarter?"), [row], {})
    assert change is not None and "Change" in change.cell.header


def test_a_row_of_several_values_without_column_headers_does_not_answer_a_question_that_pins_a_period():
    # A cash-flow row whose header row was not read with it: which column is 2023's cannot be told.
    headless = passage("FINANCING ACTIVITIES:\nCommon stock repurchased | — | — | (6,000) | — | (6,000) | —")
    dated = read_question("How much common stock did Amazon repurchase in Q3 2023?")
    assert best_cell(dated, [headless], {}) is None
    assert Answerer().answer(dated.text, [headless], {}).text != "Common stock repurchased: (6,000) [1]"
    # The same row answers a question that pins no period, and one value without a header still answers.
    assert best_cell(read_question("How much common stock was repurchased?"), [headless], {}) is not None
    single = passage("Common stock repurchased | (6,000)")
    match = best_cell(dated, [single], {})
    assert match is not None and match.cell.value == "(6,000)"


def test_a_change_is_quoted_after_the_value_it_changes():
    row = passage(
        "Interest expense | Three Months Ended April 30, 2023: (66) | Three Months Ended May 1, 2022: (68) | "
        "Three Months Ended $ Change: 2 | Three Months Ended % Change: (3) %"
    )
    answer = Answerer().answer("How did interest expense change?", [row], {})
    value_first = "Interest expense, Three Months Ended April 30, 2023: (66); "
    assert answer.text.startswith(value_first + "Interest expense, Three Months Ended $ Change: 2 [1]"), answer.text
    highlighted = [row.text[a - row.start : b - row.start] for a, b in answer.citations[0].highlights]
    assert any("(66)" in h for h in highlighted) and any("$ Change: 2" in h for h in highlighted)
    # A question about the value itself gets the value alone.
    value = Answerer().answer("What was the interest expense?", [row], {})
    assert value.text.startswith("Interest expense, Three Months Ended April 30, 2023: (66) [1]"), value.text


def test_a_value_question_is_not_answered_by_a_row_that_lacks_its_rarest_word():
    leases = passage(
        "Gross lease liabilities | September 30, 2023 Operating Leases: $ 88,814 | Finance Leases: $ 2,030\n"
        "Less: imputed interest | September 30, 2023 Operating Leases: (19,245) | Finance Leases: (245)\n"
        "Present value of lease liabilities | September 30, 2023 Operating Leases: $ 69,569\n"
        "Current portion of lease liabilities | September 30, 2023 Operating Leases: (8,322)"
    )
    # No label says "margin": the lease row holds "gross" only, and is no answer to a question for one value.
    assert best_cell(read_question("What was the gross margin?"), [leases], {}, one_value=True) is None
    assert not Answerer().answer("What was the gross margin?", [leases], {}).text.startswith("Gross lease")
    # A row that holds both words is found as before.
    margin = passage(leases.text + "\nGross margin | September 30, 2023 Operating Leases: 12,000")
    match = best_cell(read_question("What was the gross margin?"), [margin], {}, one_value=True)
    assert match is not None and match.cell.label == "Gross margin"


def test_a_fiscal_year_asks_for_the_year_not_a_quarter_of_it():
    period = read_period("What was NVIDIA's total revenue for fiscal year 2024?")
    assert period.span == "twelve"
    assert header_agrees(period, "Three Months Ended October 29, 2023 (fiscal 2024)") is False
    assert read_period("R&D in Q1 fiscal 2024").span == ""


def test_a_name_matches_without_its_accents_and_spaced_otherwise():
    scope = Scope("Der Stürmer printed it; Jean de Rély published the Bible; SkyDrive Pro was renamed.", "")
    for question in (
        "How did Der Sturmer describe it?",
        "Where did Jean De Rely publish?",
        "What was Sky Drive Pro renamed to?",
    ):
        assert missing_names(read_question(question), scope) == [], question
    assert missing_names(read_question("What did Sky Net publish?"), scope) == ["Sky Net"]


def test_the_match_score_stays_under_one_and_separates_good_passages():
    from rag.extractive import match_score

    scores = [match_score(c, v) for c, v in ((0.95, 1.0), (0.8, 1.0), (0.7, 0.9), (0.6, 0.8), (0.9, 0.4))]
    assert all(0 < s < 1 for s in scores[1:]) and scores[0] <= 1
    assert len(set(scores)) == len(scores)  # clipped at 1, the first four read 1.00 alike
    assert match_score(1.0, 1.0) == 1.0 and match_score(-0.2, 0.0) == 0.0


def test_a_question_about_two_rows_gets_both_from_one_column():
    table = passage(
        "iPhone | Three Months Ended July 1, 2023: $ 39,669 | Three Months Ended June 25, 2022: $ 40,665\n"
        "Mac | Three Months Ended July 1, 2023: $ 6,840 | Three Months Ended June 25, 2022: $ 7,382\n"
        "Services | Three Months Ended July 1, 2023: $ 21,213 | Three Months Ended June 25, 2022: $ 19,604",
        "2023 Q3 AAPL.pdf",
    )
    identities = {"2023 Q3 AAPL.pdf": "2023 Q3 AAPL\nApple Inc."}
    both = Answerer(min_score=0.0).answer(
        "What were Apple's iPhone and Mac net sales for the three months ended July 1, 2023?", [table], identities
    )
    assert both.text == (
        "iPhone, Three Months Ended July 1, 2023: $39,669; Mac, Three Months Ended July 1, 2023: $6,840 [1]"
    )
    document = " " * table.start + table.text
    assert [document[a:b] for a, b in both.citations[0].highlights] == [
        "iPhone",
        "Three Months Ended July 1, 2023: $ 39,669",
        "Mac",
        "Three Months Ended July 1, 2023: $ 6,840",
    ]
    one = Answerer(min_score=0.0).answer(
        "What were Apple's iPhone net sales for the three months ended July 1, 2023?", [table], identities
    )
    assert one.text == "iPhone, Three Months Ended July 1, 2023: $39,669 [1]"


# ------------------------------------------------------------------ bad input: an answer or a refusal, never a crash

_MONTHS = [m.capitalize() for m in MONTHS]
_COMPANIES = [
    "Tesla",
    "IBM",
    "Oracle",
    "Cisco",
    "Adobe",
    "Netflix",
    "Qualcomm",
    "Broadcom",
    "Salesforce",
    "Uber",
    "Airbnb",
    "PayPal",
    "Dell",
    "Intel",
    "Amazon",
    "Microsoft",
    "NVIDIA",
    "Alphabet",
    "Meta",
    "Samsung",
]


def _filing_passages(n: int) -> list[Passage]:
    """``n`` passages of five documents: a statement table and prose naming acronyms, dates and quarters."""
    rows = "\n".join(
        f"Line {i} item | Three Months Ended July 1, 2023: {i * 137:,} | Nine Months Ended July 1, 2023: {i * 411:,}"
        for i in range(1, 25)
    )
    prose = (
        "Apple Inc. reported that Research and Development grew in Q3 2023. The National Transportation Safety "
        "Board and the Securities and Exchange Commission were named in the quarter ended July 1, 2023. "
    ) * 8
    return [passage(rows if i % 2 else prose, f"doc{i % 5}.md", start=i * 5000) for i in range(n)]


BAD_QUESTIONS = {
    "4,000 characters": ("What were the total net sales of Apple Mac for the three months ended July 1, 2023 " * 60)[
        :3999
    ]
    + "?",
    "twenty periods": "What were net sales for "
    + ", ".join(f"the three months ended {_MONTHS[i % 12]} {1 + i}, {2001 + i}" for i in range(20))
    + "?",
    "twenty quarters": "What was revenue in " + ", ".join(f"Q{1 + i % 4} {2004 + i}" for i in range(20)) + "?",
    "twenty companies": "What was the revenue of " + ", ".join(_COMPANIES) + " in Q3 2023?",
    # Hundreds of names in capitals, each one looked for as the initials of a run of words: this took
    # minutes over 100 passages when every passage re-read its document for every name.
    "a thousand acronyms": "What did "
    + ", ".join(f"{a}{b}{c}" for a in "ABCDEFGHIJ" for b in "ABCDEFGHIJ" for c in "ABCDEFGHIJ")[:3900]
    + " say?",
    "German": "Wie hoch war der Nettoumsatz von Apple mit dem Mac in den drei Monaten bis zum 1. Juli 2023?",
    "Japanese": "2023年7月1日に終了した3か月間のAppleのMacの純売上高はいくらでしたか？",
}


@pytest.mark.timeout(120)  # a hang guard, not a timing: each answer takes well under a second
@pytest.mark.parametrize("kind", sorted(BAD_QUESTIONS))
def test_a_bad_question_gets_an_answer_or_a_refusal(kind: str) -> None:
    from rag.config import MAX_K

    question = BAD_QUESTIONS[kind]
    answer = Answerer().answer(question, _filing_passages(MAX_K), {})
    assert answer.text and answer.question == question
    if kind in ("twenty periods", "twenty quarters", "twenty companies", "a thousand acronyms"):
        assert not answer.answered and answer.note, kind  # what no passage holds is named
        assert "does not" not in answer.note


def test_a_table_with_empty_headers_keeps_its_first_row_as_a_row(tmp_path) -> None:
    from rag.documents import load

    path = tmp_path / "orchard.md"
    path.write_text(
        "# Orchard Devices net sales\n\n|   |   |   |\n|---|---|---|\n| Phones | $ 39,669 | $ 40,665 |\n"
        "| Laptops | $ 6,840 | $ 7,382 |\n",
        encoding="utf-8",
    )
    text = load(path).text
    assert "Phones | $ 39,669 | $ 40,665\nLaptops | $ 6,840 | $ 7,382" in text  # not a header of figures
    answer = Answerer().answer("What were Orchard Devices' laptops net sales?", [passage(text, "orchard.md")], {})
    assert answer.answered and answer.text.startswith("Laptops: $6,840 [1]")


@pytest.mark.parametrize(
    ("table", "question", "quoted"),
    [
        # Every header the same: the row is found, the first of its cells quoted with the header.
        (
            "Apples | Amount: 1,200 | Amount: 1,350\nPears | Amount: 800 | Amount: 760",
            "How many pears were harvested?",
            "Pears, Amount: 800 [1]",
        ),
        # Headers that are empty before their colon: the value alone, not ": 6,840".
        (
            "Phones | : 39,669 | : 40,665\nLaptops | : 6,840 | : 7,382",
            "What were laptops net sales?",
            "Laptops: 6,840 [1]",
        ),
        # A "figure" column of text: quoted as the document says it, with its labels.
        (
            "Retail | Revenue: see note 4 | Operating income: not meaningful\nOnline | Revenue: n/a",
            "What was the operating income of the retail segment?",
            "Retail, Operating income: not meaningful [1]",
        ),
    ],
)
def test_odd_tables_are_quoted_with_what_labels_they_have(table: str, question: str, quoted: str) -> None:
    answer = Answerer().answer(question, [passage(f"# Results\n\n{table}\n", "results.md")], {})
    assert answer.answered and answer.text.startswith(quoted), answer.text


# ------------------------------------------------------------------ acronyms, percentages, the latest report


def test_an_acronym_matches_the_label_whose_words_spell_it():
    p = passage(
        "Cost of revenue | Three Months Ended Apr 1, 2023: 7,707\n"
        "Research and development | Three Months Ended Apr 1, 2023: 4,109\n"
        "Selling, general and administrative | Three Months Ended Apr 1, 2023: 1,367\n"
        "Earnings per share | Three Months Ended Apr 1, 2023: (0.66)"
    )
    for question, value in (
        ("What was the R&D expenditure in the three months ended April 1, 2023?", "4,109"),
        ("What were SG&A expenses for the three months ended April 1, 2023?", "1,367"),
        ("What was EPS for the three months ended April 1, 2023?", "(0.66)"),
    ):
        match = best_cell(read_question(question), [p], {})
        assert match is not None and match.cell.value == value, question
    assert best_cell(read_question("What was the XYZ in the three months ended April 1, 2023?"), [p], {}) is None


def test_a_percentage_answers_only_a_question_about_a_share_or_rate():
    p = passage(
        "Net income | Three Months Ended July 30, 2023: 45.7 %\n"
        "Revenue | Three Months Ended July 30, 2023: 100.0 %\n"
        "Net income | Three Months Ended July 30, 2023 (In millions): $ 6,188"
    )
    amount = best_cell(read_question("What was the net income in the three months ended July 30, 2023?"), [p], {})
    assert amount is not None and amount.cell.value == "$ 6,188"
    share = best_cell(
        read_question("What was net income as a percentage of revenue in the three months ended July 30, 2023?"),
        [p],
        {},
    )
    assert share is not None and share.cell.value == "45.7 %"


def test_the_latest_report_is_the_named_entitys_last_period():
    identities = {
        "2023 Q2 NVDA.pdf": "2023 Q2 NVDA\nNVIDIA CORPORATION\nFor the quarterly period ended July 30, 2023",
        "2023 Q3 NVDA.pdf": "2023 Q3 NVDA\nNVIDIA CORPORATION\nFor the quarterly period ended October 29, 2023",
        "2023 Q3 INTC.pdf": "2023 Q3 INTC\nINTEL CORPORATION\nFor the quarterly period ended December 30, 2023",
        "notes.md": "notes",
    }
    latest = read_question("What was NVIDIA's effective tax rate in the latest quarter?")
    assert latest_sources(latest, identities) == {"2023 Q3 NVDA.pdf"}
    assert latest_sources(read_question("What was NVIDIA's tax rate in Q2 2023?"), identities) is None
    assert latest_sources(read_question("What was the latest tax rate?"), identities) is None  # no entity named
    assert latest_sources(read_question("What was Intel's latest tax rate?"), identities) is None  # one report
    # The cell is the document's own period, not an older column of it.
    p = passage("Effective tax rate | Three Months Ended July 30, 2023: 12.0 %", "2023 Q3 NVDA.pdf")
    assert best_cell(latest, [p], {}, identities) is None
    period = document_period(latest.period, identities["2023 Q3 NVDA.pdf"], latest=True)
    assert period.dates == ((2023, 10, 29),)
    assert header_agrees(period, "Three Months Ended July 30, 2023") is False
    assert header_agrees(period, "Three Months Ended October 29, 2023") is True


def test_a_document_named_by_its_identity_may_hold_the_questions_other_names_anywhere():
    asked = read_question("What were the sales figures for NVIDIA's gaming and professional GPU segments?")
    identities = {
        "2023 Q3 NVDA.pdf": "2023 Q3 NVDA\nNVIDIA CORPORATION",
        "2023 Q3 INTC.pdf": "2023 Q3 INTC\nINTEL CORPORATION",
    }
    texts = {
        "2023 Q3 NVDA.pdf": "Gaming revenue rose as GPU demand grew.\nGaming | Three Months Ended Oct 29, 2023: 2,856",
        "2023 Q3 INTC.pdf": "NVIDIA sells GPU products.\nGaming | Three Months Ended Sep 30, 2023: 1,000",
    }
    rows = [
        passage("Gaming | Three Months Ended Oct 29, 2023: 2,856", "2023 Q3 NVDA.pdf"),
        passage("Gaming | Three Months Ended Sep 30, 2023: 1,000", "2023 Q3 INTC.pdf"),
    ]
    strict = check_passages(asked, rows, identities)
    assert strict.allowed == [] and strict.why_not == "GPU"
    loose = check_passages(asked, rows, identities, text_of=texts.__getitem__)
    # NVIDIA's filing names GPU elsewhere: its row may be quoted; Intel's filing does not name NVIDIA.
    assert [p.source for p in loose.allowed] == ["2023 Q3 NVDA.pdf"]
    assert loose.related == []  # prose is not quoted on that ground
    gone = {"2023 Q3 NVDA.pdf": "Gaming | Three Months Ended Oct 29, 2023: 2,856", "2023 Q3 INTC.pdf": ""}
    assert check_passages(asked, rows, identities, text_of=gone.__getitem__).allowed == []


def test_a_whole_year_is_not_held_by_a_quarter_or_months_of_it():
    period = read_question("What was NVIDIA's total revenue for fiscal year 2024?").period
    assert period.span == "twelve"
    for text in (
        "Revenue outside the US was 67% and 77% of total revenue for the first quarter of fiscal years 2024 and 2023.",
        "During the third quarter and first nine months of fiscal year 2024, we repurchased 8.3 million shares.",
        "Revenue for the six months ended July 30, 2024 was $20,699 million.",
    ):
        assert missing_period(period, text) == "2024", text
    assert missing_period(period, "Total revenue for fiscal year 2024 was $60,922 million.") == ""
    # A question about a quarter still finds its year there.
    quarter = read_question("What was NVIDIA's revenue in the first quarter of fiscal 2024?").period
    assert missing_period(quarter, "revenue for the first quarter of fiscal year 2024") == ""


def test_a_refusal_says_what_the_documents_cover():
    identities = {
        "2023 Q3 NVDA.pdf": "2023 Q3 NVDA\nNVIDIA CORPORATION\nFor the quarterly period ended October 29, 2023",
        "2022 Q3 AAPL.pdf": "2022 Q3 AAPL\nApple Inc.\nFor the quarterly period ended June 25, 2022",
    }
    p = passage("Total revenue | Three Months Ended Oct 29, 2023: $ 18,120", "2023 Q3 NVDA.pdf", score=0.9)
    answer = Answerer().answer("What was Tesla's total revenue in Q3 2023?", [p], identities)
    assert not answer.answered
    assert answer.note == (
        "No passage found here matches 'Tesla' from the question. The documents here: 2022 Q3 AAPL, 2023 Q3 NVDA;"
        " periods ended June 25, 2022 to October 29, 2023."
    )
    many = {f"doc{i:02d}.md": f"doc{i:02d}" for i in range(10)}
    assert coverage(many) == " The documents here: doc00, doc01, doc02, doc03, doc04, doc05 and 4 more."
