"""The Gradio web chat: a Chat tab (streamed answers with their sources), a Documents tab (upload,
list, remove, statistics), a Settings tab (language model server and model) and a stable ``/ask`` API
endpoint returning the ``rag ask --json`` shape.

    from rag import Assistant
    from ui.server import serve
    serve(Assistant(index_dir="index"))          # http://127.0.0.1:7860, until Ctrl-C

This module puts the page together: the title, then one function per tab, each laying its part out
and wiring its events to :class:`ui.handlers.Handlers` (the behaviour, without Gradio):
:func:`ui.chat_tab.chat_tab`, :func:`ui.documents_tab.documents_tab`, :func:`ui.settings_tab.settings_tab`.
The document viewer is a panel the page's script opens beside the chat (:mod:`ui.page`), showing the
routes of :mod:`ui.viewer`. :mod:`ui.server` launches the app.

One :class:`rag.Assistant` serves every request: the model and the index load once per process. Each
browser session has its own :class:`rag.ChatSession`, so follow-up questions are rewritten into
standalone ones before the search. Chat messages are HTML built by :mod:`ui.render` from escaped text
(Markdown rendering is off), so document text is always shown as text.
"""

import logging
import os
from collections.abc import Sequence
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no usage reports or version checks, whatever the env says
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr

from rag import Assistant, IndexWorker, RagError

from .api_events import add_document_api
from .chat_tab import chat_tab
from .documents_tab import documents_tab
from .examples import examples_for
from .handlers import Handlers
from .library import DocumentLibrary
from .llm import LLMSettings
from .settings_tab import settings_tab

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

    with gr.Blocks(title="rag: ask your documents", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("# Ask your documents\nAnswers quote the documents; every `[n]` points at a passage below it.")
        with gr.Tabs():
            chat_tab(app, handlers, examples)
            documents_tab(app, handlers, max_mb)
            settings_tab(app, handlers)
        _api(handlers)
    return app


def _api(handlers: Handlers) -> None:
    """The endpoints for programs: ``/ask``, ``/sources``, ``/upload`` and ``/remove`` (the page's own events are
    private)."""

    def ask(question: str) -> dict[str, Any]:
        """Answer a question from the indexed documents: the JSON of `rag ask --json`."""
        try:
            return handlers.ask(question)
        except RagError as exc:  # a refused question is the user's: no traceback in the log
            raise gr.Error(str(exc), print_exception=False) from exc

    def list_sources() -> list[dict[str, Any]]:
        """The indexed files: source, chunks, size, format, added_at, updated_at, extraction, uploaded."""
        return handlers.sources()

    gr.api(ask, api_name="ask", concurrency_limit=4, concurrency_id="api-ask")
    gr.api(list_sources, api_name="sources", concurrency_limit=None)
    add_document_api(handlers)  # /upload and /remove for programs, with JSON results
