"""The web chat's API endpoints for programs that manage documents: ``/upload`` and ``/remove``, each
with one named JSON result. The page's own upload and remove events are private (they return page
markup); these take the same paths through :class:`ui.handlers.Handlers`.

The inputs are hidden components, not :func:`gradio.api` parameters: a ``gr.File`` input only accepts
files uploaded to this server (Gradio checks each path), where a ``gr.api`` parameter would pass a
client's file path through unchecked.

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    client.predict([handle_file("notes.md")], api_name="/upload")   # {"stored": [...], "report": {...}, ...}
    client.predict("notes.md", api_name="/remove")                 # {"source", "removed", "message"}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from rag import RagError

from .handlers import Handlers


def add_document_api(handlers: Handlers) -> None:
    """Add the ``/upload`` and ``/remove`` endpoints to the ``gr.Blocks`` being built (nothing shows on the page)."""

    def upload(files: list[str] | None) -> dict[str, Any]:
        """Add files to the index: what was stored, left unchanged, refused, and the index report."""
        result, _status = handlers.upload(files)
        return result.to_dict()

    def remove(source: str | None) -> dict[str, Any]:
        """Remove one indexed file by its source name (as `/sources` lists it)."""
        name = (source or "").strip()
        if not name:
            return {"source": "", "removed": False, "message": "give a source name: '/sources' lists them"}
        try:
            removed = handlers.library.remove(name)
        except RagError as exc:
            return {"source": name, "removed": False, "message": f"not removed: {exc}"}
        return {"source": name, "removed": removed, "message": "removed" if removed else "not in the index"}

    with gr.Group(visible=False, elem_id="rag-document-api"):
        _endpoint(
            upload,
            gr.File(label="files", file_count="multiple", visible=False),
            "upload report",
            "upload",
            "Add files to the index; returns what was stored, refused and indexed, as JSON.",
        )
        _endpoint(
            remove,
            gr.Textbox(label="source", visible=False),
            "remove result",
            "remove",
            "Remove one indexed file by its source name; returns {source, removed, message}.",
        )


def _endpoint(fn: Callable[..., dict[str, Any]], given: gr.Component, label: str, name: str, about: str) -> None:
    """One hidden endpoint: ``fn(given)`` as one JSON result (``label``) at ``/name``, one call at a time
    with the library's other changes."""
    result = gr.JSON(label=label, visible=False)
    trigger = gr.Button(visible=False)
    trigger.click(
        fn,
        [given],
        [result],
        api_name=name,
        api_description=about,
        concurrency_limit=1,
        concurrency_id="library",
    )
