"""The Documents tab: index statistics, the upload area (with the question asked before a file replaces a
document of the same name), the list of indexed files and their removal.

:func:`documents_tab` lays it out inside the page's ``gr.Tabs`` and wires its events to the
:class:`ui.handlers.Handlers`. Uploads are read and embedded in a child process with memory and time
limits (:class:`rag.IndexWorker`), one change at a time.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.utils import NamedString

from . import render
from .handlers import Handlers
from .library import UPLOAD_SUFFIXES

#: One change of the index at a time, whichever button started it.
_LIBRARY: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "library"}


def documents_tab(app: gr.Blocks, handlers: Handlers, max_mb: float) -> None:
    """The Documents tab, inside ``app``'s tabs, with its events. ``/upload`` and ``/remove`` stay named
    API endpoints; the confirmation before a replacement is the page's alone."""
    with gr.Tab("Documents", id="documents") as tab:
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
        with gr.Group(visible="hidden", elem_id="rag-replace") as confirm_box:  # in the page, shown when asked
            confirm_text = gr.HTML()
            with gr.Row():
                replace_button = gr.Button("Replace", variant="primary", elem_id="rag-replace-yes")
                copy_button = gr.Button("Add as a copy", elem_id="rag-replace-copy")
                cancel_button = gr.Button("Cancel", elem_id="rag-replace-cancel")
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
        api_upload = gr.Button(visible=False)  # the /upload endpoint for programs (no confirmation)
        pending = gr.State(None)  # uploads waiting for Replace / Add as a copy / Cancel

    def listing() -> tuple[str, str, Any]:
        shown = handlers.listing()
        return shown.table, shown.stats, gr.update(choices=shown.choices, value=None)

    def run(paths: list[str] | None, replace: bool, progress: gr.Progress) -> tuple[Any, ...]:
        result, status = handlers.upload(paths, lambda done, desc: progress(done, desc=desc), replace=replace)
        return (result.to_dict(), status, *listing(), None)

    def upload(
        paths: list[str] | None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 - how Gradio injects it
    ) -> tuple[Any, ...]:
        return run(paths, False, progress)

    def page_upload(
        paths: list[str] | None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 - how Gradio injects it
    ) -> tuple[Any, ...]:
        clashes = handlers.conflicts(paths)
        if clashes:  # ask first; the files wait in this session's state
            question = handlers.replace_question(clashes)
            unchanged = (gr.update(), "", gr.update(), gr.update(), gr.update(), None)
            return (*unchanged, paths, gr.update(visible=True), question)
        return (*run(paths, False, progress), None, gr.update(visible="hidden"), "")

    def settle(replace: bool) -> Any:
        def chosen(
            paths: list[str] | None,
            progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 - how Gradio injects it
        ) -> tuple[Any, ...]:
            return (*run(paths, replace, progress), None, gr.update(visible="hidden"), "")

        return chosen

    def cancel(paths: list[str] | None) -> tuple[str, None, Any, str]:
        return handlers.cancel_upload(paths), None, gr.update(visible="hidden"), ""

    def remove(source: str | None) -> tuple[str, str, str, Any]:
        return (handlers.remove(source), *listing())

    listing_outputs = [table_box, stats_box, remove_choice]
    upload_outputs = [report_json, status_box, *listing_outputs, files]
    settled = [*upload_outputs, pending, confirm_box, confirm_text]
    page: dict[str, Any] = {"api_visibility": "private", "show_progress_on": [status_box], **_LIBRARY}
    files.upload(page_upload, [files], settled, **page)
    replace_button.click(settle(True), [pending], settled, **page)
    copy_button.click(settle(False), [pending], settled, **page)
    cancel_button.click(cancel, [pending], [status_box, pending, confirm_box, confirm_text], **page)
    api_upload.click(
        upload,
        [files],
        upload_outputs,
        api_name="page_upload",  # page markup, private: programs call the JSON /upload of ui.api_events
        api_visibility="private",
        **_LIBRARY,
    )
    remove_button.click(
        remove,
        [remove_choice],
        [status_box, *listing_outputs],
        api_name="page_remove",  # page markup, private: programs call the JSON /remove of ui.api_events
        api_visibility="private",
        **_LIBRARY,
    )
    quick: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None}
    refresh_button.click(listing, None, listing_outputs, **quick)
    tab.select(listing, None, listing_outputs, **quick)
    app.load(listing, None, listing_outputs, **quick)


def _picker_filter_only(files: gr.File) -> gr.File:
    """Let ``files.file_types`` filter the file picker only: Gradio would refuse a whole batch for one file
    of another type, where the upload handler refuses that file alone, with its reason. (An instance
    attribute, not a subclass: Gradio writes a ``.pyi`` stub beside the module of a component subclass.)"""
    files._process_single_file = lambda f: NamedString(f.path)  # type: ignore[method-assign]
    return files
