"""The web chat's behaviour without Gradio or a browser (ui.handlers), over real assistants and indexes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import Assistant, ChatSession, RagError
from ui import conversations
from ui.handlers import BLANK_QUESTION, NO_INDEX, Handlers
from ui.library import DocumentLibrary
from ui.llm import EXTRACTIVE, LLMSettings

from .conftest import SEED_QUESTION, write
from .fake_openai import FakeOpenAI, Reply

HOSTILE = (
    "# Kermorvan\n\n"
    "The keeper of the Kermorvan lighthouse painted <script>alert(1)</script> on its door in 1921. "
    "The Kermorvan lighthouse stands on a granite rock at the mouth of the harbour.\n"
)


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


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(models=("m", "other")) as fake:
        fake.default = Reply("The lighthouse stands on a granite rock [1].")
        yield fake


def test_blank_questions_are_told_apart() -> None:
    assert Handlers.blank(None) and Handlers.blank("") and Handlers.blank(" \n\t ")
    assert not Handlers.blank(" why? ")


def test_the_page_refuses_a_long_question_in_the_words_of_the_api() -> None:
    from rag import MAX_QUESTION_CHARS, InputError, clean_question

    long = "word " * MAX_QUESTION_CHARS
    with pytest.raises(InputError) as refused:
        clean_question(long)
    assert Handlers.refusal(long) == str(refused.value) and str(MAX_QUESTION_CHARS) in str(refused.value)
    assert Handlers.refusal(" \n ") == BLANK_QUESTION
    assert Handlers.refusal("x" * MAX_QUESTION_CHARS) is None


LIGHT = "The keeper {} painted the Kermorvan lighthouse green in 1987. It stands on a granite rock.\n"


def test_replacing_an_upload_takes_its_place_and_its_old_text_leaves_the_index(assistant_factory, tmp_path) -> None:
    assistant = assistant_factory()
    handlers = handlers_for(assistant)
    old = write(tmp_path / "a" / "light.txt", LIGHT.format("Oskar Lund"))
    new = write(tmp_path / "b" / "light.txt", LIGHT.format("Greta Holm"))
    handlers.upload([old])
    assert handlers.conflicts([old]) == [] and handlers.conflicts([new]) == ["light.txt"]
    result, status = handlers.upload([new], replace=True)
    assert result.replaced == [("light.txt", "light.txt")] and result.stored == []
    assert "1 file(s) uploaded: 1 replaced" in status
    assert [r.source for r in assistant.sources()] == ["light.txt"]
    answer = handlers.ask("Who painted the Kermorvan lighthouse green?")
    assert "Greta Holm" in answer["answer"] and "Oskar Lund" not in str(answer)
    assert not (handlers.library.folder / ".replaced").exists()
    # Added as a copy when not told to replace.
    again = write(tmp_path / "c" / "light.txt", LIGHT.format("Ida Berg"))
    copied, _ = handlers.upload([again])
    assert copied.stored == [("light.txt", "light-2.txt")]


def test_a_replacement_that_cannot_be_read_leaves_the_old_file_and_its_text(assistant_factory, tmp_path) -> None:
    assistant = assistant_factory()
    handlers = handlers_for(assistant)
    handlers.upload([write(tmp_path / "a" / "light.txt", LIGHT.format("Oskar Lund"))])
    blank = write(tmp_path / "b" / "light.txt", "   \n\n  ")  # nothing to index: refused
    result, status = handlers.upload([blank], replace=True)
    assert [name for name, _ in result.rejected] == ["light.txt"] and result.replaced == []
    assert "not added" in status
    assert (handlers.library.folder / "light.txt").read_text() == LIGHT.format("Oskar Lund")
    assert [r.source for r in assistant.sources()] == ["light.txt"]
    assert "Oskar Lund" in handlers.ask("Who painted the Kermorvan lighthouse green?")["answer"]


def test_document_text_in_an_answer_and_its_sources_is_escaped(assistant_factory, tmp_path: Path) -> None:
    assistant = assistant_factory()
    handlers = handlers_for(assistant)
    note = write(tmp_path / "up" / "kermorvan.md", HOSTILE)
    calls: list[tuple[float, str]] = []
    result, status = handlers.upload([str(note)], progress=lambda done, desc: calls.append((done, desc)))
    assert result.stored == [("kermorvan.md", "kermorvan.md")] and "kermorvan.md" in status
    assert calls[0] == (0.0, "Indexing 1 file(s)")
    question = "What did the keeper paint on the door of the Kermorvan lighthouse?"
    messages, _ = list(handlers.respond(question, [], None))[-1]
    _, answer, sources = messages
    assert '<span class="rag-cite">[1]</span>' in answer["content"]
    for shown in (answer["content"], sources["content"]):
        assert "<script>" not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in sources["content"]
    assert "kermorvan.md" in sources["content"]


def test_the_documents_table_escapes_file_names(assistant_factory, tmp_path: Path) -> None:
    assistant = assistant_factory()
    folder = tmp_path / "docs"
    write(folder / 'R&D "<b>notes</b>".md', "The granite quarry of Locmaria closed in 1954.\n")
    assistant.index([folder])
    shown = handlers_for(assistant).listing()
    assert shown.choices == ['R&D "<b>notes</b>".md']  # the picker gets the name itself (Gradio shows it as text)
    assert "R&amp;D &quot;&lt;b&gt;notes&lt;/b&gt;&quot;.md" in shown.table and "<b>notes" not in shown.table
    assert "<b>1</b> files" in shown.stats


def test_a_bad_server_url_is_refused_in_one_clear_line(assistant_factory) -> None:
    assistant = assistant_factory()
    handlers = handlers_for(assistant)
    applied, status = handlers.llm_apply("ftp://example.org/v1", "", "m")
    assert not applied
    assert "Not applied" in status and "must be an http(s) address" in status and "ftp://example.org/v1" in status
    assert "Traceback" not in status and status.count("\n") == 0
    applied, status = handlers.llm_apply("", "", "m")
    assert not applied and "enter the server&#x27;s URL first" in status
    assert assistant.settings.llm_base_url == "" and "extractive" in handlers.llm_current()


def test_a_locked_server_url_cannot_be_changed_from_the_page(assistant_factory, llm_server: FakeOpenAI) -> None:
    assistant = assistant_factory()
    handlers = Handlers(assistant, DocumentLibrary(assistant, max_bytes=1_000_000), LLMSettings(assistant), 0.0)
    handlers.llm.allow_url_changes = False
    applied, status = handlers.llm_apply(llm_server.url, "", "m")
    assert not applied and "changing the language-model server from this page is off" in status
    assert assistant.settings.llm_base_url == ""


def test_applying_a_model_configures_the_assistant_and_back(assistant_factory, llm_server: FakeOpenAI) -> None:
    assistant = assistant_factory()
    handlers = handlers_for(assistant)
    choices, picked, status = handlers.llm_refresh(llm_server.url, "", None)
    assert choices is not None and {"m", "other"} <= set(choices) and picked == "m" and "2 model(s)" in status
    applied, status = handlers.llm_apply(llm_server.url, "sk-test", "other")
    assert applied and "Applied" in status and "other" in status
    settings = assistant.settings
    assert (settings.llm_base_url, settings.llm_model, settings.llm_api_key) == (llm_server.url, "other", "sk-test")
    form = handlers.llm_form()
    assert form.url == llm_server.url and form.choice == "other" and "other" in form.current
    assert form.key_hint.startswith("A key is saved")  # the key itself never goes back to the page
    applied, status = handlers.llm_apply(llm_server.url, "", EXTRACTIVE)
    assert applied and "extractive" in status and assistant.settings.llm_base_url == ""
    assert handlers.llm_form().url == llm_server.url  # kept for later
