"""The Gradio web chat: a Chat tab (streamed answers with their sources), a Documents tab (upload,
list, remove, statistics), a Settings tab (language model server and model) and a stable ``/ask`` API
endpoint returning the ``rag ask --json`` shape.

    from rag import Assistant
    from ui.app import serve
    serve(Assistant(index_dir="index"))          # http://127.0.0.1:7860, until Ctrl-C

One :class:`rag.Assistant` serves every request: the model and the index load once per process. Each
browser session has its own :class:`rag.ChatSession`, so follow-up questions are rewritten into
standalone ones before the search. Chat messages are HTML built by :mod:`ui.render` from escaped text
(Markdown rendering is off), so document text is always shown as text.
"""

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no usage reports or version checks, whatever the env says
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
from gradio.utils import NamedString

from rag import (
    Answer,
    Assistant,
    ChatSession,
    ConfigError,
    IndexNotFoundError,
    IndexWorker,
    InputError,
    RagError,
)

from . import conversations, render, viewer
from .examples import examples_for
from .guard import LoginGate, LoginLimiter, RateLimit, request_limits
from .library import UPLOAD_SUFFIXES, DocumentLibrary, UploadResult
from .llm import LLMSettings, for_page
from .page import CSS, I18N_EN, PAGE_JS

log = logging.getLogger("ui")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
NO_INDEX = "No documents are indexed yet: add some in the Documents tab, or run 'rag index PATH'."


Message = dict[str, Any]


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

    # ------------------------------------------------------------ chat

    def respond(
        question: str, history: list[Message] | None, session: ChatSession | None
    ) -> Iterator[tuple[list[Message], str, ChatSession]]:
        # One conversation per browser session (Gradio state): follow-ups are rewritten using its turns.
        if session is None:
            session = assistant.chat()
        messages = list(history or [])
        text = " ".join((question or "").split())
        if not text:
            gr.Warning("Type a question about your documents first.")
            yield messages, "", session
            return
        messages.append({"role": "user", "content": render.question_html(text)})
        messages.append({"role": "assistant", "content": render.pending_html()})
        yield messages, "", session
        answer: Answer | None = None
        streamed = ""
        searched: list[str] = []
        shown_at = 0.0
        try:
            for piece in session.stream(text, on_rewrite=searched.append):
                if isinstance(piece, str):
                    streamed += piece
                    # Pace pieces that arrive at once (the extractive answer) so people see them come in;
                    # a language model's tokens, slower than that, pass straight through.
                    wait = stream_delay - (time.monotonic() - shown_at)
                    if wait > 0:
                        time.sleep(wait)
                    content = render.streaming_html(streamed, searched[-1] if searched else None)
                    messages[-1] = {"role": "assistant", "content": content}
                    shown_at = time.monotonic()
                    yield messages, "", session
                else:
                    # The final answer; its text replaces what was streamed (they differ when a generated
                    # answer fell back to the extractive one, which its note explains).
                    answer = piece
        except IndexNotFoundError:
            messages[-1] = {"role": "assistant", "content": render.error_html(NO_INDEX)}
        except RagError as exc:
            messages[-1] = {"role": "assistant", "content": render.error_html(str(exc))}
        except Exception as exc:  # the page must keep working; details go to the log
            log.exception("question failed: %r", text)
            messages[-1] = {
                "role": "assistant",
                "content": render.error_html(f"unexpected error ({type(exc).__name__}); see the server log"),
            }
        if answer is not None:
            messages[-1] = {"role": "assistant", "content": render.answer_html(answer)}
            messages.append(
                {
                    "role": "assistant",
                    "content": render.sources_html(answer, assistant.settings.min_score),
                    "metadata": {"title": render.sources_title(answer)},
                }
            )
        yield messages, "", session

    def use_example(event: gr.SelectData) -> str:
        value = event.value
        return str(value.get("text", "")) if isinstance(value, Mapping) else str(value)

    # ------------------------------------------------------------ past chats (kept in the browser)

    def start_chat(store: Any) -> tuple[list[Message], str, None, str, Any]:
        """A new, empty conversation (New chat, the chatbot's trash icon); past chats stay listed."""
        return [], "", None, conversations.new_id(), gr.update(choices=conversations.choices(store), value=None)

    def remember(
        messages: list[Message] | None, session: ChatSession | None, chat_id: str | None, store: Any
    ) -> tuple[Any, str, Any]:
        """Save this conversation in the browser after each answer."""
        chat_id = chat_id or conversations.new_id()
        messages = list(messages or [])
        turns = session.history() if session is not None else []
        store = conversations.save(store, chat_id, conversations.first_question(messages), messages, turns)
        return store, chat_id, gr.update(choices=conversations.choices(store), value=chat_id)

    def reopen(chat_id: str | None, store: Any) -> tuple[list[Message], ChatSession | None, str, Any]:
        """Show a past chat again and continue it (its follow-ups are rewritten as before)."""
        chat = conversations.find(store, chat_id)
        if chat is None:
            return [], None, conversations.new_id(), gr.update(choices=conversations.choices(store), value=None)
        session = assistant.chat()
        session.restore(chat["turns"])
        return chat["messages"], session, chat["id"], gr.update()

    def forget(chat_id: str | None, current: str | None, store: Any) -> tuple[Any, Any, Any, Any, Any]:
        """Delete the chosen past chat from this browser (the open one is emptied when it is that one)."""
        if not chat_id:
            gr.Info("Choose a chat to delete first.")
            store = conversations.clean(store)
            return store, gr.update(choices=conversations.choices(store)), gr.update(), gr.update(), gr.update()
        store = conversations.remove(store, chat_id)
        picker = gr.update(choices=conversations.choices(store), value=None)
        if chat_id == current:
            return store, picker, [], None, conversations.new_id()
        return store, picker, gr.update(), gr.update(), gr.update()

    def restore_last(store: Any) -> tuple[list[Message], ChatSession | None, str, Any, Any]:
        """On page load: reopen the chat changed last, so that a reload loses nothing."""
        cleaned = conversations.clean(store)
        chat = conversations.latest(cleaned)
        picker = gr.update(choices=conversations.choices(cleaned), value=chat["id"] if chat else None)
        if chat is None:
            return [], None, conversations.new_id(), picker, cleaned
        session = assistant.chat()
        session.restore(chat["turns"])
        return chat["messages"], session, chat["id"], picker, cleaned

    # ------------------------------------------------------------ API

    def ask(question: str) -> dict[str, Any]:
        """Answer a question from the indexed documents: the JSON of `rag ask --json`."""
        try:
            return assistant.ask(question).to_dict()
        except IndexNotFoundError as exc:  # a refused question is the user's: no traceback in the log
            raise gr.Error(NO_INDEX, print_exception=False) from exc
        except RagError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    def list_sources() -> list[dict[str, Any]]:
        """The indexed files: source, chunks, size, format, added_at, updated_at, uploaded."""
        records = library.records()
        mine = set(library.uploaded(records))
        return [
            {
                "source": r.source,
                "chunks": r.chunks,
                "size": r.size,
                "format": r.format,
                "added_at": r.added_at,
                "updated_at": r.updated_at,
                "uploaded": r.source in mine,
            }
            for r in records
        ]

    # ------------------------------------------------------------ documents

    def listing() -> tuple[str, str, Any]:
        records = library.records()
        table = render.documents_table_html(records, library.uploaded(records))
        stats = render.stats_html(library.stats(), str(assistant.index_dir))
        choices = sorted((r.source for r in records), key=str.casefold)
        return table, stats, gr.update(choices=choices, value=None)

    def upload(
        files: list[str] | None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 - how Gradio injects progress
    ) -> tuple[dict[str, Any], str, str, str, Any, None]:
        paths = [Path(f) for f in files or []]
        if not paths:
            result = UploadResult()
            status = render.upload_status_html([("info", "No files were chosen.")])
        else:
            progress(0.0, desc=f"Indexing {len(paths)} file(s)")
            try:
                desc = f"Indexing {len(paths)} file(s)"
                result = library.add(paths, progress=lambda done: progress(done, desc=desc), on_copied=_drop_upload)
                lines = result.lines()
                if result.report is not None:
                    lines.append(("info", f"Index: {result.report.summary()}"))
                status = render.upload_status_html(lines)
            except RagError as exc:
                result = UploadResult(rejected=[(p.name, str(exc)) for p in paths])
                status = render.upload_status_html([("error", f"Nothing was added: {exc}")])
            finally:
                for path in paths:
                    _drop_upload(path)
        table, stats, choices = listing()
        return result.to_dict(), status, table, stats, choices, None

    def remove(source: str | None) -> tuple[str, str, str, Any]:
        if not source:
            status = render.upload_status_html([("info", "Choose a file to remove first.")])
        else:
            try:
                removed = library.remove(source)
                line = ("ok", f"{source}: removed") if removed else ("error", f"{source}: not in the index")
            except RagError as exc:
                line = ("error", f"{source}: not removed: {exc}")
            status = render.upload_status_html([line])
        table, stats, choices = listing()
        return status, table, stats, choices

    # ------------------------------------------------------------ language model settings

    llm = LLMSettings(assistant, allow_url_changes=allow_llm_settings)  # default: RAG_UI_ALLOW_LLM_SETTINGS

    def llm_view() -> tuple[str, Any, Any, str]:
        view = llm.view()
        key_hint = (
            "A key is saved for this server: leave empty to keep it" if view.key_saved else "Empty if none is needed"
        )
        return (
            view.url,
            gr.update(placeholder=key_hint, value=""),
            gr.update(choices=view.choices, value=view.choice),
            render.llm_current_html(view.summary),
        )

    def llm_refresh(url: str, key: str, choice: str | None) -> tuple[Any, str]:
        try:
            models = llm.models(url, key)
        except RagError as exc:
            return gr.update(), render.settings_status_html("error", f"Could not list the models: {for_page(str(exc))}")
        picked = choice if choice in models else (models[0] if models else choice)
        if models:
            listed = ", ".join(models[:20]) + (f" and {len(models) - 20} more" if len(models) > 20 else "")
            message = f"{len(models)} model(s) at {url.strip()}: {listed}. Pick one and press Apply."
            status = render.settings_status_html("ok", message)
        else:
            message = "The server lists no models: type a model name, or choose Extractive (no LLM)."
            status = render.settings_status_html("warning", message)
        return gr.update(choices=llm.choices(models, picked or ""), value=picked), status

    def llm_apply(url: str, key: str, choice: str | None) -> tuple[str, Any, Any, str, str]:
        try:
            kind, message = llm.apply(url, key, choice or "")
        except RagError as exc:
            status = render.settings_status_html("error", f"Not applied: {for_page(str(exc))}")
            return (url, gr.update(), gr.update(), render.llm_current_html(llm.summary()), status)
        view_url, key_box, picker, current = llm_view()
        return view_url, key_box, picker, current, render.settings_status_html(kind, message)

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
                initial = llm.view()
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
            api_name="upload",
            api_description="Add files to the index; returns what was stored, refused and indexed.",
            concurrency_limit=1,
            concurrency_id="library",
            show_progress_on=[status_box],  # one progress display, where the outcome appears
        )
        remove_button.click(
            remove,
            [remove_choice],
            [status_box, table_box, stats_box, remove_choice],
            api_name="remove",
            api_description="Remove one indexed file by its source name.",
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
    return app


def _theme() -> gr.themes.Base:
    """Gradio's default theme with colours that pass a contrast audit (WCAG AA: 4.5:1 for text)."""
    return gr.themes.Default(primary_hue="blue").set(
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white",
        button_cancel_background_fill="#b91c1c",
        button_cancel_background_fill_hover="#991b1b",
        button_cancel_text_color="white",
        body_text_color_subdued="*neutral_600",
        color_accent="*primary_700",
    )


def _picker_filter_only(files: gr.File) -> gr.File:
    """Let ``files.file_types`` filter the file picker only: Gradio would refuse a whole batch for one file
    of another type, where the upload handler refuses that file alone, with its reason. (An instance
    attribute, not a subclass: Gradio writes a ``.pyi`` stub beside the module of a component subclass.)"""
    files._process_single_file = lambda f: NamedString(f.path)  # type: ignore[method-assign]
    return files


def _upload_folder() -> Path:
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


def _drop_upload(path: Path) -> None:
    """Delete Gradio's temporary copy of an upload (never anything outside its upload folder)."""
    try:
        resolved = Path(path).resolve()
        if _upload_folder() not in resolved.parents:
            return
        resolved.unlink(missing_ok=True)
        if resolved.parent != _upload_folder() and not any(resolved.parent.iterdir()):
            resolved.parent.rmdir()
    except OSError:
        return


def auth_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """``(user, password)`` from ``RAG_UI_USER`` / ``RAG_UI_PASSWORD``, or None when neither is set."""
    environ = os.environ if environ is None else environ
    user = environ.get("RAG_UI_USER", "")
    password = environ.get("RAG_UI_PASSWORD", "")
    if not user and not password:
        return None
    if not user or not password:
        raise ConfigError("set both RAG_UI_USER and RAG_UI_PASSWORD to require a login, or neither")
    return user, password


def _app_kwargs(
    api: Any = None, requests: tuple[float, float] | None = None, routes: Sequence[Any] = ()
) -> dict[str, Any]:
    """FastAPI options: no /docs or /openapi.json, every route behind the login when one is set (the
    OpenAI-compatible routes of ``api``, mounted first, check their own key), POST requests per client
    address limited to ``requests`` (per minute, burst; default from the environment)."""
    from starlette.middleware import Middleware

    per_minute, burst = requests if requests is not None else request_limits()
    options: dict[str, Any] = {
        "docs_url": None,
        "redoc_url": None,
        "openapi_url": None,
        "middleware": [Middleware(RateLimit, per_minute=per_minute, burst=burst), Middleware(LoginGate)],
    }
    options["routes"] = [*routes, *(api.router.routes if api is not None else [])]
    return options


def launch(
    assistant: Assistant,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    auth: tuple[str, str] | None = None,
    block: bool = True,
    quiet: bool = True,
    api: Any = None,
    requests: tuple[float, float] | None = None,
    **options: Any,
) -> tuple[gr.Blocks, str]:
    """Build the app over ``assistant`` and start serving it; returns the app and its URL.

    ``block=False`` returns at once (the server runs in a thread; stop it with ``app.close()``).
    Safe defaults: analytics off, no extra served paths (and the index directory blocked), the upload
    limit of the settings, no server-side rendering, no monitoring or MCP endpoints. ``options`` go to
    :func:`build_app`. ``api`` (a :class:`ui.openai_api.OpenAIApi`) adds its ``/v1`` routes to the same
    FastAPI app, ahead of Gradio's own. ``requests``: POST requests per minute and burst per client
    address (default: ``RAG_UI_REQUESTS_PER_MINUTE`` / ``RAG_UI_REQUEST_BURST``, 120 and 40).
    """
    app = build_app(assistant, **options)
    max_mb = float(options.get("upload_max_mb") or assistant.settings.upload_max_mb)
    try:
        _, url, _ = app.launch(
            server_name=host,
            server_port=int(port),
            prevent_thread_lock=True,
            auth=LoginLimiter(*auth) if auth else None,
            app_kwargs=_app_kwargs(api, requests, viewer.routes(assistant)),
            max_file_size=int(max_mb * 1e6),
            blocked_paths=[str(Path(assistant.index_dir).resolve())],  # never served, even by mistake
            share=False,
            inbrowser=False,
            quiet=quiet,
            show_error=False,
            ssr_mode=False,
            mcp_server=False,
            enable_monitoring=False,
            run_history=False,
            footer_links=["api"],
            css=CSS,
            theme=_theme(),
            js=PAGE_JS,
            i18n=gr.I18n(en=I18N_EN),
        )
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port}: the port is in use or the address is not available; "
            "pass another --port or --host"
        ) from exc
    if block:
        try:
            app.block_thread()
        finally:
            app.close()
    return app, str(url)


def serve(
    assistant: Assistant,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    announce: Any = print,
    api: bool = True,
    sources_footer: bool | None = None,
) -> None:
    """``rag serve``: load the model and index, print the URL, serve until interrupted.

    With ``api`` the OpenAI-compatible API (:mod:`ui.openai_api`) is served on the same port under ``/v1``.
    """
    auth = auth_from_env()
    openai_api = None
    if api:
        from .openai_api import ApiSettings, OpenAIApi

        settings = ApiSettings.from_env(host=host)
        if sources_footer is not None:
            settings = dataclasses.replace(settings, sources_footer=sources_footer)
        openai_api = OpenAIApi(assistant, settings)
    try:
        stats = assistant.stats()
        summary = f"{stats['documents']} file(s), {stats['chunks']} chunks in {assistant.index_dir}"
    except IndexNotFoundError:
        summary = f"no index yet at {assistant.index_dir}: upload documents in the Documents tab"
    assistant.warm()  # load the model and the index now, not on the first question

    app, url = launch(assistant, host, port, auth=auth, block=False, api=openai_api)
    announce(f"rag: web chat at {url} ({summary}); Ctrl-C to stop")
    if openai_api is not None:
        announce(f"rag: OpenAI-compatible API at {url.rstrip('/')}/v1 (model 'rag')")
        if openai_api.settings.require_auth and not openai_api.settings.api_key and auth is None:
            announce("rag: warning: the API refuses every request until RAG_API_KEY is set (not a loopback address)")
    if host not in {"127.0.0.1", "localhost", "::1"} and auth is None:
        announce("rag: warning: reachable beyond this machine without a login; set RAG_UI_USER and RAG_UI_PASSWORD")
    try:
        app.block_thread()
    finally:
        app.close()
        if openai_api is not None:
            openai_api.close()
