"""The OpenAI-compatible API of `rag serve`, driven with the official `openai` client against real servers on
127.0.0.1: the web chat's app launched in-process with the API routes, and `rag serve` as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from .conftest import ROOT, SEED_QUESTION, SEEDS
from .fake_openai import FakeOpenAI, Reply, Request, free_port

pytest.importorskip("gradio")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

SEED_FILE = next(SEEDS.glob("*.txt"))
UNANSWERABLE = "What is the capital of Peru?"
FOLLOW_UP = "When will she visit?"
INVITE = "extended an invitation"
CITATION_FIELDS = {"n", "source", "start", "end", "text", "page", "score"}


def _launch(assistant: Any, **api_settings: Any) -> SimpleNamespace:
    from ui.openai_api import ApiSettings, OpenAIApi
    from ui.server import launch

    api = OpenAIApi(assistant, ApiSettings(**api_settings))
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, stream_delay=0, api=api)
    base = url.rstrip("/") + "/v1"
    return SimpleNamespace(app=app, api=api, url=url, base=base, assistant=assistant)


@pytest.fixture()
def launched() -> Iterator[Callable[..., SimpleNamespace]]:
    """Start apps with given API settings; all are closed at the end of the test."""
    started: list[SimpleNamespace] = []

    def start(assistant: Any, **api_settings: Any) -> SimpleNamespace:
        served = _launch(assistant, **api_settings)
        started.append(served)
        return served

    yield start
    for served in started:
        served.app.close()
        served.api.close()


@pytest.fixture(scope="module")
def served(seed_index: Path) -> Iterator[SimpleNamespace]:
    """One open app (loopback, no key) over the seed index, extractive answers."""
    from rag import Assistant

    served = _launch(Assistant(index_dir=seed_index))
    served.client = openai.OpenAI(base_url=served.base, api_key="unused", max_retries=0, timeout=60)
    yield served
    served.app.close()
    served.api.close()


def ask(client: Any, *messages: str, **options: Any) -> Any:
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": m} for i, m in enumerate(messages)]
    return client.chat.completions.create(model="rag", messages=turns, **options)


def streamed(client: Any, *messages: str, **options: Any) -> tuple[str, list[Any]]:
    chunks = list(ask(client, *messages, stream=True, **options))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and isinstance(error["code"], str)
    return dict(error)


# ---------------------------------------------------------------- answers


def test_models_are_listed(served: SimpleNamespace) -> None:
    models = served.client.models.list()
    assert [m.id for m in models] == ["rag"]
    assert served.client.models.retrieve("rag").id == "rag"


def test_seed_question_answered_with_citations(served: SimpleNamespace) -> None:
    reply = ask(served.client, SEED_QUESTION)
    expected = served.assistant.ask(SEED_QUESTION)
    assert reply.object == "chat.completion" and reply.model == "rag"
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content == expected.text
    assert "Trump" in choice.message.content and "[1]" in choice.message.content
    extra = reply.model_extra["rag"]
    assert extra["answered"] is True and extra["generator"] == "extractive"
    document = SEED_FILE.read_text(encoding="utf-8")
    assert len(extra["citations"]) == len(expected.citations) >= 1
    for citation in extra["citations"]:
        assert set(citation) >= CITATION_FIELDS
        assert citation["source"] == SEED_FILE.name and citation["page"] is None
        assert document[citation["start"] : citation["end"]] == citation["text"]
        assert f"[{citation['n']}]" in choice.message.content
    assert INVITE in extra["citations"][0]["text"]


def test_stream_reassembles_into_the_answer(served: SimpleNamespace) -> None:
    whole = ask(served.client, SEED_QUESTION)
    text, chunks = streamed(served.client, SEED_QUESTION)
    assert text == whole.choices[0].message.content
    pieces = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3, "the answer arrives in several pieces"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["rag"]["citations"] == whole.model_extra["rag"]["citations"]
    assert last.model_extra["rag"]["text"] == text


def test_stream_is_server_sent_events_ending_with_done(served: SimpleNamespace) -> None:
    body = {"model": "rag", "stream": True, "messages": [{"role": "user", "content": SEED_QUESTION}]}
    with httpx.stream("POST", served.base + "/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in events[:-1]]
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


def test_follow_up_in_messages_is_rewritten_like_the_chat(served: SimpleNamespace) -> None:
    session = served.assistant.chat()
    first = session.ask(SEED_QUESTION)
    chat_answer = session.ask(FOLLOW_UP)
    assert chat_answer.rewritten_question is not None

    reply = ask(served.client, SEED_QUESTION, first.text, FOLLOW_UP)
    extra = reply.model_extra["rag"]
    assert extra["rewritten_question"] == chat_answer.rewritten_question
    assert "Takaichi" in extra["rewritten_question"]
    assert reply.choices[0].message.content == chat_answer.text
    alone = ask(served.client, FOLLOW_UP).model_extra["rag"]
    assert alone["rewritten_question"] is None, "without history nothing is carried over"


def test_refusal_shape(served: SimpleNamespace) -> None:
    expected = served.assistant.ask(UNANSWERABLE)
    assert expected.answered is False
    reply = ask(served.client, UNANSWERABLE)
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == expected.text
    assert reply.choices[0].message.refusal is None
    extra = reply.model_extra["rag"]
    assert extra["answered"] is False and extra["citations"] == []
    assert extra["passages"] and extra["passages"][0]["source"] == SEED_FILE.name
    text, chunks = streamed(served.client, UNANSWERABLE)
    assert text == expected.text and chunks[-1].model_extra["rag"]["answered"] is False


def test_sources_footer_on_request_and_stripped_from_history(served: SimpleNamespace) -> None:
    reply = ask(served.client, SEED_QUESTION, extra_body={"sources_footer": True})
    content = reply.choices[0].message.content
    plain = served.assistant.ask(SEED_QUESTION).text
    assert content.startswith(plain) and content != plain
    assert f"\n\nSources:\n[1] {SEED_FILE.name}, " in content and " (characters 0-" in content
    text, _ = streamed(served.client, SEED_QUESTION, extra_body={"sources_footer": True})
    assert text == content
    # A client sends the answer back with its footer: the follow-up is rewritten as without it.
    with_footer = ask(served.client, SEED_QUESTION, content, FOLLOW_UP).model_extra["rag"]["rewritten_question"]
    without = ask(served.client, SEED_QUESTION, plain, FOLLOW_UP).model_extra["rag"]["rewritten_question"]
    assert with_footer == without is not None


def test_text_parts_and_system_messages_are_accepted(served: SimpleNamespace) -> None:
    reply = served.client.chat.completions.create(
        model="rag",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": [{"type": "text", "text": SEED_QUESTION}]},
        ],
    )
    assert "Trump" in reply.choices[0].message.content


# ---------------------------------------------------------------- errors


def test_bad_requests_are_400_in_the_openai_shape(served: SimpleNamespace) -> None:
    url = served.base + "/chat/completions"
    user = [{"role": "user", "content": SEED_QUESTION}]
    cases = {
        "invalid_json": httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}),
        "no messages": httpx.post(url, json={"model": "rag", "messages": []}),
        "no model": httpx.post(url, json={"messages": user}),
        "last is assistant": httpx.post(url, json={"model": "rag", "messages": [*user, {"role": "assistant"}]}),
        "bad role": httpx.post(url, json={"model": "rag", "messages": [{"role": "wizard", "content": "x"}]}),
        "bad temperature": httpx.post(url, json={"model": "rag", "messages": user, "temperature": 7}),
        "bad max_tokens": httpx.post(url, json={"model": "rag", "messages": user, "max_tokens": 0}),
        "n=2": httpx.post(url, json={"model": "rag", "messages": user, "n": 2}),
        "image part": httpx.post(
            url, json={"model": "rag", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}
        ),
        "too long question": httpx.post(
            url, json={"model": "rag", "messages": [{"role": "user", "content": "a" * 5000}]}
        ),
    }
    for name, response in cases.items():
        assert response.status_code == 400, name
        error = error_of(response)
        assert error["type"] == "invalid_request_error", name
    assert error_of(cases["bad temperature"])["param"] == "temperature"
    assert "4000" in error_of(cases["too long question"])["message"]
    with pytest.raises(openai.BadRequestError) as raised:
        served.client.chat.completions.create(model="rag", messages=[{"role": "user", "content": "   "}])
    assert raised.value.status_code == 400


def test_unknown_model_is_404(served: SimpleNamespace) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        served.client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": SEED_QUESTION}])
    assert raised.value.body["code"] == "model_not_found" and "rag" in raised.value.body["message"]
    response = httpx.get(served.base + "/models/gpt-4o")
    assert response.status_code == 404 and error_of(response)["type"] == "not_found_error"


def test_oversized_body_is_413(served: SimpleNamespace) -> None:
    big = {"model": "rag", "messages": [{"role": "user", "content": "x " * 600_000}]}
    response = httpx.post(served.base + "/chat/completions", json=big)
    assert response.status_code == 413 and error_of(response)["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"model": "rag", "messages": [{"role": "user", "content": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}]}'

    response = httpx.post(served.base + "/chat/completions", content=chunks())
    assert response.status_code == 413 and error_of(response)["type"] == "invalid_request_error"


def test_saturated_server_answers_429_then_recovers(seed_index: Path, launched: Callable[..., SimpleNamespace]) -> None:
    from rag import Assistant

    with FakeOpenAI() as llm:

        def slow(request: Request) -> Reply:
            n = request.passage_number(INVITE)
            return Reply(f"Donald Trump invited her [{n}].", delay=4.0)  # holds the one slot

        llm.responder = slow
        assistant = Assistant(index_dir=seed_index, llm_base_url=llm.url, llm_model="m", llm_timeout=10.0)
        served = launched(assistant, max_active=1, max_waiting=0)
        client = openai.OpenAI(base_url=served.base, api_key="x", max_retries=0, timeout=60)
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(ask, client, SEED_QUESTION)
            deadline = time.monotonic() + 30
            while not llm.chat_requests() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert llm.chat_requests(), "the first question reached the language model"
            with pytest.raises(openai.RateLimitError) as raised:
                ask(client, SEED_QUESTION)
            assert raised.value.status_code == 429 and raised.value.body["code"] == "server_busy"
            assert raised.value.response.headers["retry-after"] == "1"
            assert busy.result().model_extra["rag"]["generator"] == "llm"
        assert ask(client, SEED_QUESTION).choices[0].finish_reason == "stop"


def test_max_tokens_and_temperature_reach_the_language_model(
    seed_index: Path, launched: Callable[..., SimpleNamespace]
) -> None:
    from rag import Assistant

    with FakeOpenAI(models=("m",)) as llm:
        llm.responder = lambda request: Reply(f"Donald Trump invited her [{request.passage_number(INVITE)}].")
        assistant = Assistant(index_dir=seed_index, llm_base_url=llm.url, llm_model="m", llm_timeout=10.0)
        served = launched(assistant)
        client = openai.OpenAI(base_url=served.base, api_key="x", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list()] == ["rag", "rag/m"]
        reply = client.chat.completions.create(
            model="rag/m", messages=[{"role": "user", "content": SEED_QUESTION}], max_tokens=200, temperature=0.4
        )
        assert reply.model_extra["rag"]["generator"] == "llm"
        assert reply.choices[0].message.content == "Donald Trump invited her [1]."
        sent = llm.chat_requests()[-1].body
        assert sent["max_tokens"] == 200 and sent["temperature"] == 0.4
        text, chunks = streamed(client, SEED_QUESTION, max_tokens=5000)
        assert text == "Donald Trump invited her [1]." and chunks[-1].model_extra["rag"]["citations"][0]["n"] == 1
        sent = llm.chat_requests()[-1].body
        assert sent["max_tokens"] == 1024 and sent["temperature"] == 0.0, "capped; the default temperature"


def test_login_rules_without_an_api_key(seed_index: Path, launched: Callable[..., SimpleNamespace]) -> None:
    from rag import Assistant

    assistant = Assistant(index_dir=seed_index)
    served = launched(assistant, login=("ann", "pw"))
    url = served.base + "/models"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer ann:wrong"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer ann:pw"}).status_code == 200
    assert httpx.get(url, auth=("ann", "pw")).status_code == 200
    client = openai.OpenAI(base_url=served.base, api_key="ann:pw", max_retries=0)
    assert "Trump" in ask(client, SEED_QUESTION).choices[0].message.content

    closed = launched(assistant, require_auth=True)
    response = httpx.get(closed.base + "/models", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "api_key_required" and "RAG_API_KEY" in error["message"]


# ---------------------------------------------------------------- concurrency


def test_twenty_clients_at_once(served: SimpleNamespace) -> None:
    questions = [SEED_QUESTION, UNANSWERABLE, "What would the visit to the United States include?"]
    expected = {q: served.assistant.ask(q).text for q in questions}
    start = threading.Barrier(20)

    def one(i: int) -> tuple[str, str]:
        client = openai.OpenAI(base_url=served.base, api_key="x", max_retries=0, timeout=120)
        question = questions[i % len(questions)]
        start.wait(timeout=30)
        if i % 2:
            text, chunks = streamed(client, question)
            assert chunks[-1].choices[0].finish_reason == "stop"
        else:
            text = ask(client, question).choices[0].message.content
        return question, text

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert len(results) == 20
    for question, text in results:
        assert text == expected[question]


# ---------------------------------------------------------------- `rag serve` for real


def test_rag_serve_answers_the_openai_client_and_enforces_the_key(seed_index: Path) -> None:
    port = free_port()
    env = {**os.environ, "RAG_API_KEY": "s3cret-key", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "rag.cli", "serve", "--index", str(seed_index), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(base + "/models", timeout=2).status_code == 401:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        missing = httpx.get(base + "/models")
        assert missing.status_code == 401 and error_of(missing)["code"] == "missing_api_key"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
        client = openai.OpenAI(base_url=base, api_key="s3cret-key", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list()] == ["rag"]
        reply = ask(client, SEED_QUESTION)
        assert "Trump" in reply.choices[0].message.content
        assert reply.model_extra["rag"]["citations"][0]["source"] == SEED_FILE.name
        text, _ = streamed(client, SEED_QUESTION)
        assert text == reply.choices[0].message.content
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200, "the web chat is on the same port"
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert f"OpenAI-compatible API at http://127.0.0.1:{port}/v1" in output


def test_import_rag_loads_neither_fastapi_nor_mcp() -> None:
    code = (
        "import sys, rag; rag.Assistant; rag.answer_options; "
        "print(sorted(m for m in ('fastapi', 'mcp', 'gradio', 'starlette') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_no_index_yet_is_503(tmp_path: Path, launched: Callable[..., SimpleNamespace]) -> None:
    from rag import Assistant

    served = launched(Assistant(index_dir=tmp_path / "empty"))
    client = openai.OpenAI(base_url=served.base, api_key="x", max_retries=0)
    assert [m.id for m in client.models.list()] == ["rag"]
    for stream in (False, True):
        body = {"model": "rag", "stream": stream, "messages": [{"role": "user", "content": SEED_QUESTION}]}
        response = httpx.post(served.base + "/chat/completions", json=body, timeout=60)
        assert response.status_code == 503
        error = error_of(response)
        assert error["code"] == "no_index" and "rag index" in error["message"]


def test_answer_options_are_checked_and_scoped() -> None:
    from rag import InputError, answer_options
    from rag.generation.client import _OPTIONS

    for bad in ({"temperature": 3}, {"temperature": True}, {"max_tokens": 0}, {"max_tokens": 2.5}):
        with pytest.raises(InputError), answer_options(**bad):
            pass
    with answer_options(max_tokens=99_999, temperature=0.5):
        assert _OPTIONS.get() == (1024, 0.5)
    assert _OPTIONS.get() == (None, None)


def test_follow_up_rewritten_by_the_language_model(seed_index: Path, launched: Callable[..., SimpleNamespace]) -> None:
    from rag import Assistant
    from rag.generation import REWRITE_PROMPT

    standalone = "When will Prime Minister Takaichi visit the United States?"
    with FakeOpenAI(models=("m",)) as llm:

        def route(request: Request) -> Reply:
            if request.messages[0]["content"] == REWRITE_PROMPT:
                return Reply(standalone)
            n = request.passage_number(INVITE) or 1
            return Reply(f"Donald Trump invited her [{n}].")

        llm.responder = route
        assistant = Assistant(index_dir=seed_index, llm_base_url=llm.url, llm_model="m", llm_timeout=10.0)
        served = launched(assistant)
        client = openai.OpenAI(base_url=served.base, api_key="x", max_retries=0, timeout=60)
        first = ask(client, SEED_QUESTION).choices[0].message.content
        reply = ask(client, SEED_QUESTION, first, FOLLOW_UP)
        assert reply.model_extra["rag"]["rewritten_question"] == standalone
        rewrite = next(r for r in llm.chat_requests() if r.messages[0]["content"] == REWRITE_PROMPT)
        assert SEED_QUESTION in rewrite.prompt and "Donald Trump invited her." in rewrite.prompt
        assert f"Latest question: {FOLLOW_UP}" in rewrite.prompt
        assert f"Question: {standalone}" in llm.chat_requests()[-1].prompt


def test_usage_counts_tokens_with_the_models_tokenizer(served: SimpleNamespace) -> None:
    """`usage` on every JSON completion, and in a stream when stream_options.include_usage asks for it:
    word pieces of the embedding model's tokenizer, prompt and answer."""
    count = served.assistant.embedder.tokenizer.count
    reply = ask(served.client, SEED_QUESTION)
    text = reply.choices[0].message.content
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count(SEED_QUESTION) > 0
    assert reply.usage.completion_tokens == count(text) > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    # a follow-up counts the turns sent with it
    follow = ask(served.client, SEED_QUESTION, text, FOLLOW_UP)
    assert follow.usage.prompt_tokens == count(f"{SEED_QUESTION}\n{text}\n{FOLLOW_UP}")

    streamed_text, chunks = streamed(served.client, SEED_QUESTION, stream_options={"include_usage": True})
    assert streamed_text == text
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (count(SEED_QUESTION), count(text))
    assert all(c.usage is None for c in chunks[:-1])
    # the rag field rides on the chunk whose finish_reason is set, as the docs say
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finished) == 1 and finished[0] is chunks[-2] and "rag" in finished[0].model_extra
    _, plain = streamed(served.client, SEED_QUESTION)
    assert all(getattr(c, "usage", None) is None for c in plain) and plain[-1].choices[0].finish_reason == "stop"
