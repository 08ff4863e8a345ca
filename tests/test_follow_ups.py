"""A follow-up keeps the period (and the company) of the question before it, unless it names its own,
through every way in that keeps a conversation: ``ChatSession``, the OpenAI-compatible ``/v1`` API (the
whole history sent with each request, as an OpenAI client does) and ``rag chat``. The web chat in a real
browser is in tests/test_follow_ups_browser.py. Real model, real index, real servers on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from rag import Assistant
from rag.generation import REWRITE_PROMPT

from .fake_openai import FakeOpenAI, Reply, Request
from .statements import TURNS, write_statements


def check_turn(text: str, wanted: str, others: tuple[str, ...], question: str) -> None:
    assert wanted in text, (question, text)
    for other in others:
        assert other not in text, (question, other, text)


@pytest.fixture(scope="module")
def statements(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    root = tmp_path_factory.mktemp("follow-ups")
    assistant = Assistant(index_dir=root / "index")
    report = assistant.index([write_statements(root / "docs")])
    assert not report.failed
    return assistant


def test_a_chat_session_keeps_the_date_and_takes_a_new_span(statements: Assistant) -> None:
    session = statements.chat()
    for question, wanted, others in TURNS:
        answer = session.ask(question)
        assert answer.answered, (question, answer.note)
        check_turn(answer.text, wanted, others, question)
    # A year of its own replaces the date; the span of months and the row stay.
    answer = session.ask("And in 2022?")
    check_turn(answer.text, "28,669", ("21,743", "7,382", "6,840", "10,852"), "And in 2022?")


@pytest.fixture(scope="module")
def served(statements: Assistant) -> Iterator[SimpleNamespace]:
    openai = pytest.importorskip("openai")
    from .test_openai_api import _launch

    served = _launch(statements)
    served.client = openai.OpenAI(base_url=served.base, api_key="unused", max_retries=0, timeout=120)
    yield served
    served.app.close()
    served.api.close()


def test_v1_follow_ups_keep_the_date_with_the_whole_history_sent(served: SimpleNamespace) -> None:
    messages: list[dict[str, str]] = []
    for question, wanted, others in TURNS:
        messages.append({"role": "user", "content": question})
        reply = served.client.chat.completions.create(model="rag", messages=messages)
        text = reply.choices[0].message.content
        check_turn(text, wanted, others, question)
        assert reply.model_extra["rag"]["answered"] is True
        messages.append({"role": "assistant", "content": text})


def test_rag_chat_follow_ups_keep_the_date(statements: Assistant) -> None:
    questions = "".join(f"{q}\n" for q, _, _ in TURNS) + "\n"
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "chat", "--index", str(statements.index_dir)],
        input=questions,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers = result.stdout.split("question> ")[1:]
    assert len(answers) == len(TURNS) + 1  # the last prompt got the empty line
    for (question, wanted, others), shown in zip(TURNS, answers, strict=False):
        check_turn(shown.split("Sources")[0], wanted, others, question)


# ------------------------------------------------------------------ with a language model (scripted, on loopback)

MAC = "What were Mac net sales for the three months ended July 1, 2023?"


@pytest.fixture()
def llm(statements: Assistant) -> Iterator[tuple[Assistant, FakeOpenAI]]:
    with FakeOpenAI() as server:
        assistant = Assistant(index_dir=statements.index_dir, llm_base_url=server.url, llm_model="m", llm_timeout=30.0)
        yield assistant, server


def answer_requests(server: FakeOpenAI) -> list[Request]:
    return [r for r in server.chat_requests() if r.messages[0]["content"] != REWRITE_PROMPT]


def test_the_prompt_names_the_matched_cell_and_holds_only_passages_of_the_asked_period(
    llm: tuple[Assistant, FakeOpenAI],
) -> None:
    assistant, server = llm
    server.responder = lambda r: Reply(f"Mac net sales were $6,840 million [{r.passage_number('6,840')}].")
    answer = assistant.ask(MAC)
    request = answer_requests(server)[-1]
    n = request.passage_number("6,840")
    assert n, "the passage with the Mac row was not sent"
    assert f"- [{n}] Mac, Three Months Ended July 1, 2023: 6,840" in request.prompt
    assert request.prompt.index("Matched value") > request.prompt.rindex("</passage>")
    assert "December 31, 2022" not in request.prompt  # the other filing's passages fail the period check
    assert answer.generator == "llm" and answer.claims and all(c.supported for c in answer.claims)


def test_a_generated_figure_that_no_cited_passage_holds_is_flagged(llm: tuple[Assistant, FakeOpenAI]) -> None:
    assistant, server = llm
    # 6,743 is pieced together from figures that are there (6,840 and 21,743), but is in no passage.
    server.responder = lambda r: Reply(
        f"Mac net sales for the three months ended July 1, 2023 were $6,743 million [{r.passage_number('6,840')}]."
    )
    answer = assistant.ask(MAC)
    assert answer.generator == "llm"
    (claim,) = answer.claims
    assert not claim.supported and "6,743" in claim.missing
    assert answer.note and "not backed" in answer.note
    assert not answer.citations[0].supported


def test_a_model_rewrite_that_drops_the_date_gets_it_back(llm: tuple[Assistant, FakeOpenAI]) -> None:
    assistant, server = llm

    def route(request: Request) -> Reply:
        if request.messages[0]["content"] == REWRITE_PROMPT:
            return Reply("What were Mac net sales?")
        n = request.passage_number("6,840") or request.passage_number("39,669")
        return Reply(f"The passages give the figures [{n}].")

    server.responder = route
    session = assistant.chat()
    session.ask(TURNS[0][0])
    follow = session.ask("And Mac?")
    assert follow.rewritten_question and "three months ended July 1, 2023" in follow.rewritten_question
    request = answer_requests(server)[-1]
    assert "July 1, 2023" in request.prompt.split("Question:")[-1]
    assert "December 31, 2022" not in request.prompt
    assert "- [" in request.prompt and "Mac, Three Months Ended July 1, 2023: 6,840" in request.prompt
