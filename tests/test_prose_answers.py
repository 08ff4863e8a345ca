"""The sentence answer for prose: the sentence that holds what the question asks, read with its neighbours."""

from __future__ import annotations

import os
import subprocess
import sys

from rag.answers import Answerer
from rag.extractive import gives_kind, refers_back
from rag.types import Passage


def passage(text: str, source: str, start: int = 0, score: float = 0.7) -> Passage:
    return Passage(source, start, start + len(text), text, score)


def answer(question: str, *texts: str) -> str:
    passages = [passage(text, f"notes-{i}.txt") for i, text in enumerate(texts)]
    result = Answerer().answer(question, passages, {})
    assert result.answered
    return result.text


def test_a_sentence_that_points_back_is_recognised() -> None:
    assert refers_back("This discrepancy is known as the galaxy rotation problem.")
    assert refers_back("In principle, this means that new evidence cannot be included.")
    assert refers_back("She was the first woman to win a Nobel Prize.")
    assert not refers_back("Spiral galaxies rotate faster at their edges than their visible mass allows.")
    assert not refers_back("the sentence goes on after a line break, this one")  # not a sentence's start


def test_the_next_sentence_that_names_what_the_best_one_describes_is_quoted_with_it() -> None:
    text = answer(
        "What discrepancy concerns galaxies that rotate faster than their visible mass allows?",
        "Spiral galaxies rotate faster at their edges than the visible mass in them would allow. This discrepancy "
        "is known as the galaxy rotation problem. Astronomers have proposed dark matter to explain it.",
        "Galaxies come in several shapes: spiral, elliptical and irregular. The Milky Way is a barred spiral galaxy.",
    )
    assert "galaxy rotation problem" in text
    assert "dark matter" not in text  # only the sentence that adds what was asked


def test_a_best_sentence_that_points_back_is_quoted_with_the_sentence_it_points_at() -> None:
    text = answer(
        "Who was the first woman to win a Nobel Prize?",
        "Marie Curie moved to Paris in 1891 to study physics and mathematics. She was the first woman to win a "
        "Nobel Prize, and the only person to win one in two sciences.",
        "The Nobel Prize is awarded each year in Stockholm and Oslo.",
    )
    assert text.startswith("Marie Curie moved to Paris")
    assert "first woman to win" in text


def test_a_sentence_in_another_paragraph_is_not_read_as_the_one_pointed_at() -> None:
    text = answer(
        "Who was the first woman to win a Nobel Prize?",
        "Marie Curie moved to Paris in 1891 to study physics and mathematics.\n\nShe was the first woman to win a "
        "Nobel Prize, and the only person to win one in two sciences.",
    )
    assert not text.startswith("Marie Curie")


def test_a_year_is_not_the_number_a_how_many_question_asks_for() -> None:
    assert not gives_kind("number", "The survey was published in 1998 and revised on March 3, 2004.", "How many?")
    assert gives_kind("number", "Volunteers recorded 212 species.", "How many?")
    assert gives_kind("time", "The survey was published in 1998.", "When?")
    text = answer(
        "How many species of birds did the island survey record?",
        "The island survey of birds was first published in 1998 and revised in 2004.\n\n"
        "Volunteers recorded 212 species over six seasons.",
        "Sea birds nest on the cliffs of the island in spring.",
    )
    assert "212 species" in text


def test_table_rows_and_unit_lines_are_never_quoted_as_sentences() -> None:
    from rag.extractive import is_caption, is_table_row

    assert is_table_row("Revenue | Three Months Ended December 31, 2022: $ 52,747 | Six Months Ended: $ 104,475")
    assert is_table_row("| Three Months Ended Oct 1, 2022: 8,124 | Three Months Ended Sep 25, 2021: 9,788")
    assert is_table_row("Short-term debt | 1,250 | 1,250")
    assert not is_table_row("Revenue increased $6.4 billion or 13% driven by growth in Intelligent Cloud.")
    assert is_caption("(In millions)") and is_caption("Net sales by category:")
    assert not is_caption("(a) Revenue grew because of higher prices (see note 4).")
    # An explanation gets the sentence that explains, not a row of figures or a unit line beside it.
    text = answer(
        "What were the key factors influencing the segment's operating income?",
        "(In millions)\nOperating income | Three Months Ended July 1, 2023: 1,016 | Three Months Ended July 2: 851",
        "Operating income increased 19% from a year earlier, with an operating margin of 15%, on lower costs.",
    )
    assert "Operating income increased 19%" in text and "(In millions)" not in text and " | " not in text, text


_SAME_SCORES = """
from rag.answers import Answerer
from rag.types import Passage
texts = [
    "The quarry holds granite, basalt, marble, slate and chalk.",
    "The mine holds copper, silver, tin, zinc and lead.",
    "Basalt and silver are sold here.",
    "Marble, tin, slate and zinc go by rail.",
    "Chalk, lead, slate and zinc go by sea.",
]
passages = [Passage(f"n{i}.txt", 0, len(t), t, 0.7) for i, t in enumerate(texts)]
question = "Where are granite, basalt, marble, slate, chalk, copper, silver, tin, zinc and lead found?"
print(Answerer().answer(question, passages, {}).text)
"""


def test_the_answer_is_the_same_in_every_process() -> None:
    # The second passage's sentence matches as well as the first's, one place lower: exactly at the margin
    # for an extra sentence. Summed in the order of a set of words, it was quoted under some hash seeds only.
    answers = set()
    for seed in range(6):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        run = subprocess.run([sys.executable, "-c", _SAME_SCORES], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        answers.add(run.stdout.strip())
    assert len(answers) == 1, answers
    assert "copper, silver, tin" in answers.pop()
