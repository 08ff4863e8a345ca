"""Follow-ups without a language model: which questions lean on an earlier turn, and which terms of the
earlier turns they are given (rag/conversation.py; no model, no index)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from rag.answers.question import read_period, read_question
from rag.conversation import MAX_CARRIED_TERMS, ChatSession, _key_terms, carry_terms, is_follow_up, keep_period

WHO = "Who invited Prime Minister Takaichi to visit the United States?"
WHO_ANSWER = "President Donald Trump invited Japanese Prime Minister Sanae Takaichi [1]."


class NoModel:
    """An assistant stand-in without a language model: the session falls back to carrying terms."""

    generator = None


def session(memory: int = 3) -> ChatSession:
    return ChatSession(cast(Any, NoModel()), memory=memory)


def test_key_terms_keep_names_whole_and_drop_question_and_stop_words() -> None:
    assert _key_terms(WHO) == ["invited", "Prime Minister Takaichi", "visit", "United States"]
    # Citation markers go; a number joins the name before it; order kept, no duplicates.
    assert _key_terms(WHO_ANSWER + " She was invited again in March 2026 [2].") == [
        "President Donald Trump",
        "invited",
        "Japanese Prime Minister Sanae Takaichi",
        "March 2026",
    ]


@pytest.mark.parametrize(
    ("question", "follows"),
    [
        ("When will she visit?", True),  # a pronoun
        ("And Japan?", True),  # a continuation
        ("Why?", True),  # nothing of its own
        ("What about 2019?", True),
        ("Who is Takaichi?", False),  # short, but names someone
        ("Tell me about the Treaty of Versailles signed in 1919", False),
        ("What are the implications for regional stability?", False),
    ],
)
def test_what_counts_as_a_follow_up(question: str, follows: bool) -> None:
    assert is_follow_up(question) is follows


def test_she_gets_the_names_of_the_previous_question_first() -> None:
    assert carry_terms("When will she visit?", WHO) == (
        "When will she visit? (about: Prime Minister Takaichi, United States, invited)"
    )


def test_terms_the_question_already_has_are_not_carried() -> None:
    assert carry_terms("When will Prime Minister Takaichi visit?", WHO) == (
        "When will Prime Minister Takaichi visit? (about: United States, invited)"
    )
    # A name is carried whole when the question has only part of it.
    assert carry_terms("When will Takaichi visit the United States after being invited?", WHO) == (
        "When will Takaichi visit the United States after being invited? (about: Prime Minister Takaichi)"
    )
    assert carry_terms("Who won the Super Bowl?", "Who won the Super Bowl?") == "Who won the Super Bowl?"


def test_names_from_the_previous_answer_are_carried_but_not_twice() -> None:
    # "Japanese Prime Minister Sanae Takaichi" shares words with the carried "Prime Minister Takaichi": left out.
    assert carry_terms("When will she visit?", WHO, WHO_ANSWER) == (
        "When will she visit? (about: Prime Minister Takaichi, United States, President Donald Trump, invited)"
    )
    # At most two names of the answer (multi-word ones), after the question's own terms.
    answer = "Sanae Takaichi won [1]. Donald Trump lost. Joe Biden watched."
    assert (
        carry_terms("What did she say?", "Who won?", answer)
        == "What did she say? (about: Sanae Takaichi, Donald Trump, won)"
    )


def test_at_most_a_few_terms_are_carried() -> None:
    previous = "What did alpha beta gamma delta epsilon zeta eta theta iota do?"
    carried = carry_terms("Why?", previous)
    assert carried == "Why? (about: alpha, beta, gamma, delta, epsilon, zeta)"
    assert carried.count(",") + 1 == MAX_CARRIED_TERMS


def test_a_session_without_a_model_carries_terms_from_the_last_standalone_question() -> None:
    chat = session()
    assert chat.standalone("When will she visit?") == ("When will she visit?", None), "no earlier turn: as asked"
    chat.remember(WHO, WHO_ANSWER)
    chat.remember("When will she visit?", "No date is given.")
    second = chat.history()[1]
    assert second["question"] == "When will she visit?"
    assert second["standalone"] == (
        "When will she visit? (about: Prime Minister Takaichi, United States, President Donald Trump, invited)"
    )
    # The third question leans on the second's standalone form, so Takaichi is still in what is searched.
    standalone, note = chat.standalone("Where will it be?")
    assert (
        note is None and standalone.startswith("Where will it be? (about: ") and "Prime Minister Takaichi" in standalone
    )
    # A question that stands alone is searched as asked.
    assert chat.standalone("What is the capital of Peru?") == ("What is the capital of Peru?", None)


def test_a_session_keeps_only_its_memory() -> None:
    chat = session(memory=2)
    for question in (WHO, "When will she visit?", "Where is it?"):
        chat.remember(question, "an answer")
    assert [turn["question"] for turn in chat.history()] == ["When will she visit?", "Where is it?"]
    chat.reset()
    assert chat.history() == []


def test_a_follow_up_keeps_the_earlier_period_until_it_names_its_own() -> None:
    first = "What were Apple's iPhone net sales for the three months ended July 1, 2023?"
    kept = carry_terms("And Mac?", first)
    assert "three months ended July 1, 2023" in kept
    assert read_period(kept).dates == ((2023, 7, 1),)
    replaced = carry_terms("What about 2022?", first)
    assert "July 1, 2023" not in replaced
    assert read_period(replaced).years == (2022,)
    quarter = carry_terms("And Microsoft?", "What was Intel's revenue in Q3 2023?")
    assert read_period(quarter).quarters == ((3, 2023),)


def test_a_follow_up_replaces_only_the_part_of_the_period_it_names() -> None:
    first = "What were iPhone net sales for the three months ended July 1, 2023?"
    mac = carry_terms("And Mac?", first)
    # A span of its own keeps the date, not the old span, and no loose period words are carried.
    nine = carry_terms("What about the nine months?", mac, "Mac, Three Months Ended July 1, 2023: $6,840 [1]")
    period = read_period(nine)
    assert period.dates == ((2023, 7, 1),) and period.span == "nine"
    assert "three" not in nine.lower() and "ended" not in nine
    # A year of its own keeps the span, not the date.
    year = carry_terms("And in 2022?", nine, "Mac, Nine Months Ended July 1, 2023: $21,743 [1]")
    period = read_period(year)
    assert period.years == (2022,) and period.span == "nine" and not period.dates
    # Both named: nothing of the old period is carried.
    both = carry_terms("What about the three months ended June 25, 2022?", nine)
    assert read_period(both).dates == ((2022, 6, 25),) and "July" not in both


def test_a_name_of_its_own_replaces_the_names_carried_before() -> None:
    first = "What were iPhone net sales for the three months ended July 1, 2023?"
    mac = carry_terms("And Mac?", first)
    assert "iPhone" in mac  # still searched with, but no longer required of a passage
    asked = read_question(mac)
    assert asked.names == ("Mac",) and asked.measure == {"mac"}
    nine = carry_terms("What about the nine months?", mac)
    assert "iPhone" not in nine and "Mac" in nine
    asked = read_question(nine)
    assert asked.names == ("Mac",)  # the follow-up names nothing: the carried name holds
    assert {"mac", "net", "sale"} <= asked.measure  # and it asks for the measure asked before


def test_a_model_that_drops_the_period_gets_it_back() -> None:
    first = "What were iPhone net sales for the three months ended July 1, 2023?"
    assert keep_period("What were Mac net sales?", "And Mac?", first) == (
        "What were Mac net sales? (about: three months ended July 1, 2023)"
    )
    kept = "What were Mac net sales for the three months ended July 1, 2023?"
    assert keep_period(kept, "And Mac?", first) == kept
    assert keep_period("What were Mac net sales in 2022?", "And Mac in 2022?", first).endswith("2022?")
