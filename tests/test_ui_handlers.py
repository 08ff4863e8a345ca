"""The web chat's behaviour without Gradio or a browser (ui.handlers), over real assistants and indexes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import Assistant, ChatSession, RagError
from ui import conversations
from ui.handlers import NO_INDEX, Handlers
from ui.library import DocumentLibrary
from ui.llm import LLMSettings

from .conftest import SEED_QUESTION, write


def handlers_for(assistant: Assistant) -> Handlers:
    library = DocumentLibrary(assistant, max_bytes=5_000_000)
    return Handlers(assistant, library, LLMSettings(assistant, allow_url_changes=True), stream_delay=0.0)


def test_a_question_streams_into_an_answer_with_escaped_sources(seed_assistant: Assistant) -> None:
    handlers = handlers_for(seed_assistant)
    steps = list(handlers.respond(f"  {SEED_QUESTION}  <img src=x onerror=alert(1)>", None, None))
    assert len(steps) >= 3  # the question and a placeholder, streamed pieces, the answer with its sources
    messages, session = steps[-1]
    assert isinstance(session, ChatSession) and len(session.history()) == 1
    question, answer, sources = messages
    assert question["role"] == "user" and "&lt;img src=x" in question["content"] and "<img" not in question["content"]
    assert 'class="rag-cite"' in answer["content"] and "Trump" in answer["content"]
    assert "Takaichi" in sources["content"] and sources["metadata"]["title"]
    # The next question continues the same conversation.
    follow, again = list(handlers.respond("When will she visit?", messages, session))[-1]
    assert again is session and len(session.history()) == 2 and len(follow) == 6


def test_past_chats_are_saved_reopened_and_forgotten(seed_assistant: Assistant) -> None:
    handlers = handlers_for(seed_assistant)
    messages, session = list(handlers.respond(SEED_QUESTION, None, None))[-1]
    store, chat_id, choices = handlers.remember(messages, session, None, conversations.empty())
    assert [value for _, value in choices] == [chat_id]
    view = handlers.reopen(chat_id, store)
    assert view.messages == messages and view.chat_id == chat_id and view.choices is None
    assert view.session is not None and view.session.history() == session.history()
    cleaned, last = handlers.restore_last(store)
    assert last.chat_id == chat_id and last.picked == chat_id and last.messages == messages
    store, gone = handlers.forget(chat_id, chat_id, cleaned)
    assert gone is not None and gone.messages == [] and gone.chat_id != chat_id and gone.choices == []
    missing = handlers.reopen(chat_id, store)
    assert missing.messages == [] and missing.session is None


def test_upload_list_and_remove(assistant_factory, tmp_path: Path) -> None:
    assistant = assistant_factory()
    handlers = handlers_for(assistant)
    with pytest.raises(RagError, match="No documents are indexed"):
        handlers.ask("Where is the lighthouse?")
    note = write(tmp_path / "up" / "Light <b>house.md", "The lighthouse of Kermorvan stands on a granite rock.\n")
    bad = write(tmp_path / "up" / "tool.exe", b"MZ\x90\x00")
    result, status = handlers.upload([note, bad])
    # Stored under a safe name; the original name is shown escaped.
    assert result.stored == [("Light <b>house.md", "Light_b_house.md")]
    assert [name for name, _ in result.rejected] == ["tool.exe"]
    assert "tool.exe" in status and "Light &lt;b&gt;house.md" in status and "<b>" not in status
    shown = handlers.listing()
    assert "Light_b_house.md" in shown.table and shown.choices == ["Light_b_house.md"]
    listed = handlers.sources()
    assert [(s["source"], s["uploaded"]) for s in listed] == [("Light_b_house.md", True)]
    assert "path" not in listed[0]  # no server paths through the page's API
    answer = handlers.ask("Where does the lighthouse of Kermorvan stand?")
    assert answer["citations"][0]["source"] == "Light_b_house.md"
    assert "Choose a file" in handlers.remove(None)
    assert "removed" in handlers.remove("Light_b_house.md")
    assert "not in the index" in handlers.remove("Light_b_house.md")
    assert handlers.listing().choices == []
    assert NO_INDEX.startswith("No documents")


def test_language_model_settings_report_problems_in_one_line(seed_assistant: Assistant) -> None:
    handlers = handlers_for(seed_assistant)
    choices, picked, status = handlers.llm_refresh("http://127.0.0.1:9/v1", "", None)
    assert choices is None and picked is None and "Could not list the models" in status
    applied, status = handlers.llm_apply("not a url", "", "some-model")
    assert not applied and "Not applied" in status
    assert seed_assistant.settings.llm_base_url in ("", None)  # nothing changed
