"""The Gradio web chat: a Chat tab (streamed answers with their sources), a Documents tab (upload,
list, remove, statistics), a Settings tab (language model server and model) and a stable ``/ask`` API
endpoint returning the ``rag ask --json`` shape.

    from rag import Assistant
    from ui.server import serve
    serve(Assistant(index_dir="index"))          # http://127.0.0.1:7860, until Ctrl-C

This module lays the page out and wires its events to :class:`ui.handlers.Handlers` (the behaviour,
without Gradio); :mod:`ui.server` launches it.

One :class:`rag.Assistant` serves every request: the model and the index load once per process. Each
browser session has its own :class:`rag.ChatSession`, so follow-up questions are rewritten into
standalone ones before the search. Chat messages are HTML built by :mod:`ui.render` from escaped text
(Markdown rendering is off), so document text is always shown as text.
"""

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no usage reports or version checks, whatever the env says
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
from gradio.utils import NamedString

from rag import (
    Assistant,
    ChatSession,
    IndexWorker,
    RagError,
)

from . import conversations, render
from .api_events import add_document_api
from .examples import examples_for
from .handlers import BLANK_QUESTION, NO_CHAT_CHOSEN, ChatView, Handlers, Message
from .library import UPLOAD_SUFFIXES, DocumentLibrary
from .llm import LLMSettings

log = logging.getLogger("ui")


def build_app(
    assistant: Assistant,
    *,
    examples: Sequence[str] | None = None,
    stream_delay: float = 0.02,
    upload_max_mb: float | None = None,
    allow_llm_settings: bool | None = None,
) -> gr.Blocks:
    """The web chat over ``assistant`` (its settings give the upload limit unless ``upload_max_mb`` is set).

    ``examples`` are offered on an empty chat; by default, questions about the seed corpus when it is
    indexed. ``stream_delay`` (seconds) paces the streamed words so that people see them arrive.
    """
    max_mb = float(upload_max_mb if upload_max_mb is not None else assistant.settings.upload_max_mb)
    # Uploads are read and embedded in a child process with memory and time limits (rag.index_worker).
    library = DocumentLibrary(assistant, max_bytes=int(max_mb * 1e6), worker=IndexWorker(assistant.settings))
    if examples is None:
        examples = examples_for(library.records())

    llm = LLMSettings(assistant, allow_url_changes=allow_llm_settings)  # default: RAG_UI_ALLOW_LLM_SETTINGS
    handlers = Handlers(assistant, library, llm, stream_delay)

    # ------------------------------------------------------------ Gradio wrappers of the handlers

    def respond(
        question: str, history: list[Message] | None, session: ChatSession | None
    ) -> Iterator[tuple[list[Message], str, ChatSession | None]]:
        # One conversation per browser session (Gradio state): follow-ups are rewritten using its turns.
        if handlers.blank(question):
            gr.Warning(BLANK_QUESTION)
            yield list(history or []), "", session
            return
        for messages, kept in handlers.respond(question, history, session):
            yield messages, "", kept

    def use_example(event: gr.SelectData) -> str:
        value = event.value
        return str(value.get("text", "")) if isinstance(value, Mapping) else str(value)

    def picker(view: ChatView) -> Any:
        return gr.update() if view.choices is None else gr.update(choices=view.choices, value=view.picked)

    def start_chat(store: Any) -> tuple[list[Message], str, None, str, Any]:
        view = handlers.start_chat(store)
        return [], "", None, str(view.chat_id), picker(view)

    def remember(
        messages: list[Message] | None, session: ChatSession | None, chat_id: str | None, store: Any
    ) -> tuple[Any, str, Any]:
        store, chat_id, choices = handlers.remember(messages, session, chat_id, store)
        return store, chat_id, gr.update(choices=choices, value=chat_id)

    def reopen(chat_id: str | None, store: Any) -> tuple[list[Message], ChatSession | None, str, Any]:
        view = handlers.reopen(chat_id, store)
        return view.messages or [], view.session, str(view.chat_id), picker(view)

    def forget(chat_id: str | None, current: str | None, store: Any) -> tuple[Any, Any, Any, Any, Any]:
        store, view = handlers.forget(chat_id, current, store)
        if view is None:
            gr.Info(NO_CHAT_CHOSEN)
            return store, gr.update(choices=conversations.choices(store)), gr.update(), gr.update(), gr.update()
        if view.messages is None:  # another chat was deleted: the open one stays
            return store, picker(view), gr.update(), gr.update(), gr.update()
        return store, picker(view), view.messages, None, view.chat_id

    def restore_last(store: Any) -> tuple[list[Message], ChatSession | None, str, Any, Any]:
        cleaned, view = handlers.restore_last(store)
        return view.messages or [], view.session, str(view.chat_id), picker(view), cleaned

    def ask(question: str) -> dict[str, Any]:
        """Answer a question from the indexed documents: the JSON of `rag ask --json`."""
        try:
            return handlers.ask(question)
        except RagError as exc:  # a refused question is the user's: no traceback in the log
            raise gr.Error(str(exc), print_exception=False) from exc

    def list_sources() -> list[dict[str, Any]]:
        """The indexed files: source, chunks, size, format, added_at, updated_at, extraction, uploaded."""
        return handlers.sources()

    def listing() -> tuple[str, str, Any]:
        shown = handlers.listing()
        return shown.table, shown.stats, gr.update(choices=shown.choices, value=None)

    def upload(
        files: list[str] | None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 - how Gradio injects progress
    ) -> tuple[dict[str, Any], str, str, str, Any, None]:
        result, status = handlers.upload(files, progress=lambda done, desc: progress(done, desc=desc))
        table, stats, choices = listing()
        return result.to_dict(), status, table, stats, choices, None

    def remove(source: str | None) -> tuple[str, str, str, Any]:
        status = handlers.remove(source)
        table, stats, choices = listing()
        return status, table, stats, choices

    def llm_view() -> tuple[str, Any, Any, str]:
        form = handlers.llm_form()
        return (
            form.url,
            gr.update(placeholder=form.key_hint, value=""),
            gr.update(choices=form.choices, value=form.choice),
            form.current,
        )

    def llm_refresh(url: str, key: str, choice: str | None) -> tuple[Any, str]:
        choices, picked, status = handlers.llm_refresh(url, key, choice)
        return (gr.update() if choices is None else gr.update(choices=choices, value=picked)), status

    def llm_apply(url: str, key: str, choice: str | None) -> tuple[str, Any, Any, str, str]:
        applied, status = handlers.llm_apply(url, key, choice)
        if not applied:
            return url, gr.update(), gr.update(), handlers.llm_current(), status
        return (*llm_view(), status)

    # ------------------------------------------------------------ layout

    with gr.Blocks(title="rag: ask your documents", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("# Ask your documents\nAnswers quote the documents; every `[n]` points at a passage below it.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(elem_id="rag-history-row"):
                    history_picker = gr.Dropdown(
                        label="Past chats (kept in this browser only)",
                        choices=[],
                        value=None,
                        elem_id="rag-history",
                        scale=4,
                        min_width=200,
                    )
                    with gr.Column(scale=1, min_width=120):
                        delete_chat = gr.Button("Delete chat", size="sm", elem_id="rag-history-delete")
                chatbot = gr.Chatbot(
                    label="Chat",
                    elem_id="rag-chat",
                    height="62vh",
                    render_markdown=False,
                    sanitize_html=True,
                    allow_tags=False,
                    latex_delimiters=[],
                    feedback_options=None,
                    buttons=["copy"],  # a copy button on each message
                    group_consecutive_messages=True,
                    placeholder="Ask a question about your documents.",
                    examples=[{"text": q} for q in examples] or None,
                )
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask a question about your documents…",
                        show_label=False,
                        elem_id="rag-question",
                        scale=8,
                        autofocus=True,
                        max_length=4000,
                    )
                    ask_button = gr.Button("Ask", variant="primary", elem_id="rag-ask", scale=1)
                    clear_button = gr.Button("New chat", elem_id="rag-clear", scale=1)
            with gr.Tab("Documents", id="documents") as documents_tab:
                stats_box = gr.HTML(elem_id="rag-stats")
                gr.HTML(render.upload_hint_html(UPLOAD_SUFFIXES, max_mb), elem_id="rag-upload-hint")
                # The formats filter the file picker; a wrong file that still arrives (dropped, or sent
                # through the API) is refused by the handler alone, with its reason.
                files = _picker_filter_only(
                    gr.File(
                        label="Add documents",
                        file_count="multiple",
                        file_types=list(UPLOAD_SUFFIXES),
                        type="filepath",
                        elem_id="rag-upload",
                        height=140,
                    )
                )
                status_box = gr.HTML(elem_id="rag-upload-status")
                report_json = gr.JSON(visible=False)
                table_box = gr.HTML(elem_id="rag-documents")
                with gr.Row():
                    remove_choice = gr.Dropdown(
                        label="Remove a file from the index",
                        choices=[],
                        value=None,
                        allow_custom_value=True,
                        scale=4,
                        elem_id="rag-remove",
                    )
                    with gr.Column(scale=1, min_width=160):
                        remove_button = gr.Button("Remove", variant="stop", elem_id="rag-remove-button")
                        refresh_button = gr.Button("Refresh list", size="sm", elem_id="rag-refresh")
            with gr.Tab("Settings", id="settings"):
                gr.Markdown(
                    "**Language model.** Answers are generated by a model on any OpenAI-compatible server "
                    "(Ollama, vLLM, llama.cpp, LM Studio...), with their citations checked; or, without one, "
                    "quoted from the documents. The change applies to everyone using this server."
                )
                llm_current = gr.HTML(elem_id="rag-llm-current")
                initial = handlers.llm_form()
                with gr.Row():
                    llm_url = gr.Textbox(
                        label="Server URL",
                        value=initial.url,
                        placeholder="http://localhost:11434/v1",
                        elem_id="rag-llm-url",
                        scale=3,
                        max_lines=1,
                    )
                    llm_key = gr.Textbox(
                        label="API key",
                        type="password",
                        placeholder="Empty if none is needed",
                        elem_id="rag-llm-key",
                        scale=2,
                        max_lines=1,
                    )
                with gr.Row():
                    llm_model = gr.Dropdown(
                        label="Model",
                        choices=initial.choices,
                        value=initial.choice,
                        allow_custom_value=True,
                        elem_id="rag-llm-model",
                        scale=3,
                    )
                    with gr.Column(scale=1, min_width=160):
                        llm_refresh_button = gr.Button("Refresh models", size="sm", elem_id="rag-llm-refresh")
                        llm_apply_button = gr.Button("Apply", variant="primary", elem_id="rag-llm-apply")
                llm_status = gr.HTML(elem_id="rag-llm-status")

        conversation = gr.State(None)  # this browser session's ChatSession, made on its first question
        chat_id = gr.State(None)  # the id of the open chat in the browser's store
        # Past chats live in this browser (localStorage, encrypted by Gradio), never on the server.
        chats = gr.BrowserState(
            conversations.empty(), storage_key="rag-chats", secret=os.environ.get("RAG_UI_SECRET") or None
        )
        chat_events: dict[str, Any] = {
            "fn": respond,
            "inputs": [question, chatbot, conversation],
            "outputs": [chatbot, question, conversation],
            "api_visibility": "private",
            "concurrency_limit": 4,
            "concurrency_id": "chat",
        }
        save_chat: dict[str, Any] = {
            "fn": remember,
            "inputs": [chatbot, conversation, chat_id, chats],
            "outputs": [chats, chat_id, history_picker],
            "api_visibility": "private",
            "queue": False,
        }
        question.submit(**chat_events).then(**save_chat)
        ask_button.click(**chat_events).then(**save_chat)
        chatbot.example_select(use_example, None, question, api_visibility="private", queue=False).then(
            **chat_events
        ).then(**save_chat)
        fresh_chat: dict[str, Any] = {
            "fn": start_chat,
            "inputs": [chats],
            "outputs": [chatbot, question, conversation, chat_id, history_picker],
            "api_visibility": "private",
            "queue": False,
        }
        clear_button.click(**fresh_chat)
        chatbot.clear(**fresh_chat)  # the chatbot's own trash icon starts a new conversation too
        history_picker.input(
            reopen,
            [history_picker, chats],
            [chatbot, conversation, chat_id, history_picker],
            api_visibility="private",
            queue=False,
        )
        delete_chat.click(
            forget,
            [history_picker, chat_id, chats],
            [chats, history_picker, chatbot, conversation, chat_id],
            api_visibility="private",
            queue=False,
        )
        app.load(
            restore_last,
            [chats],
            [chatbot, conversation, chat_id, history_picker, chats],
            api_visibility="private",
            queue=False,
        )

        listing_outputs = [table_box, stats_box, remove_choice]
        files.upload(
            upload,
            [files],
            [report_json, status_box, table_box, stats_box, remove_choice, files],
            api_name="page_upload",  # page markup, private: programs call the JSON /upload of ui.api_events
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="library",
            show_progress_on=[status_box],  # one progress display, where the outcome appears
        )
        remove_button.click(
            remove,
            [remove_choice],
            [status_box, table_box, stats_box, remove_choice],
            api_name="page_remove",  # page markup, private: programs call the JSON /remove of ui.api_events
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="library",
        )
        refresh_button.click(listing, None, listing_outputs, api_visibility="private", concurrency_limit=None)
        documents_tab.select(listing, None, listing_outputs, api_visibility="private", concurrency_limit=None)
        app.load(listing, None, listing_outputs, api_visibility="private", concurrency_limit=None)

        llm_outputs = [llm_url, llm_key, llm_model, llm_current]
        app.load(llm_view, None, llm_outputs, api_visibility="private", queue=False)
        llm_refresh_button.click(
            llm_refresh,
            [llm_url, llm_key, llm_model],
            [llm_model, llm_status],
            api_visibility="private",
            concurrency_limit=2,
            concurrency_id="llm-settings",
        )
        llm_apply_button.click(
            llm_apply,
            [llm_url, llm_key, llm_model],
            [*llm_outputs, llm_status],
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="llm-apply",
        )

        gr.api(ask, api_name="ask", concurrency_limit=4, concurrency_id="api-ask")
        gr.api(list_sources, api_name="sources", concurrency_limit=None)
        add_document_api(handlers)
    return app


def _picker_filter_only(files: gr.File) -> gr.File:
    """Let ``files.file_types`` filter the file picker only: Gradio would refuse a whole batch for one file
    of another type, where the upload handler refuses that file alone, with its reason. (An instance
    attribute, not a subclass: Gradio writes a ``.pyi`` stub beside the module of a component subclass.)"""
    files._process_single_file = lambda f: NamedString(f.path)  # type: ignore[method-assign]
    return files
