"""What the web chat does, without Gradio: plain values in, plain values out (testable without a browser).

The page's tabs (:mod:`ui.chat_tab`, :mod:`ui.documents_tab`, :mod:`ui.settings_tab`) lay it out and
wire its events to a :class:`Handlers`; they only turn these
values into Gradio updates, warnings and errors. Every piece of text that reaches the page goes
through :mod:`ui.render`, which escapes it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag import Answer, Assistant, ChatSession, IndexNotFoundError, InputError, RagError, clean_question

from . import conversations, render
from .library import DocumentLibrary, UploadResult
from .llm import LLMSettings, for_page

log = logging.getLogger("ui")

NO_INDEX = "No documents are indexed yet: add some in the Documents tab, or run 'rag index PATH'."
BLANK_QUESTION = "Type a question about your documents first."
NO_CHAT_CHOSEN = "Choose a chat to delete first."
Message = dict[str, Any]


@dataclass
class ChatView:
    """What the chat area shows after a chat is opened, started or deleted.

    ``choices`` is the list of past chats for the picker, ``picked`` its selection; a field left as
    ``None`` where the handler's docstring says "unchanged" leaves that part of the page as it is.
    """

    messages: list[Message] | None
    session: ChatSession | None
    chat_id: str | None
    choices: list[tuple[str, str]] | None
    picked: str | None = None


@dataclass
class LLMForm:
    """The Settings tab's fields: server URL, the API key box's hint, the model picker, what is in force."""

    url: str
    key_hint: str
    choices: list[str]
    choice: str
    current: str


@dataclass
class Listing:
    """The Documents tab: the table, the statistics line and the names offered for removal."""

    table: str
    stats: str
    choices: list[str]


class Handlers:
    """The page's behaviour over one :class:`rag.Assistant` (shared by every browser session)."""

    def __init__(
        self, assistant: Assistant, library: DocumentLibrary, llm: LLMSettings, stream_delay: float = 0.02
    ) -> None:
        self.assistant = assistant
        self.library = library
        self.llm = llm
        self.stream_delay = stream_delay

    # ------------------------------------------------------------ chat

    @staticmethod
    def blank(question: str | None) -> bool:
        """Whether ``question`` has nothing to ask (the page then warns :data:`BLANK_QUESTION`)."""
        return not " ".join((question or "").split())

    @classmethod
    def refusal(cls, question: str | None) -> str | None:
        """Why ``question`` cannot be asked, or None: blank (:data:`BLANK_QUESTION`), or longer than the
        limit that the API and ``ask()`` have too, in their words."""
        if cls.blank(question):
            return BLANK_QUESTION
        try:
            clean_question(question)
        except InputError as exc:
            return str(exc)
        return None

    def respond(
        self, question: str, history: list[Message] | None, session: ChatSession | None
    ) -> Iterator[tuple[list[Message], ChatSession]]:
        """Answer ``question`` in ``session`` (made on the first question), yielding the messages as the
        answer streams in; the last yield holds the answer and its sources. ``question`` must not be
        :meth:`blank`."""
        if session is None:
            session = self.assistant.chat()
        messages = list(history or [])
        text = " ".join(question.split())
        messages.append({"role": "user", "content": render.question_html(text)})
        messages.append({"role": "assistant", "content": render.pending_html()})
        yield messages, session
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
                    wait = self.stream_delay - (time.monotonic() - shown_at)
                    if wait > 0:
                        time.sleep(wait)
                    content = render.streaming_html(streamed, searched[-1] if searched else None)
                    messages[-1] = {"role": "assistant", "content": content}
                    shown_at = time.monotonic()
                    yield messages, session
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
                    "content": render.sources_html(answer, self.assistant.settings.min_score),
                    "metadata": {"title": render.sources_title(answer)},
                }
            )
        yield messages, session

    # ------------------------------------------------------------ past chats (kept in the browser)

    def start_chat(self, store: Any) -> ChatView:
        """A new, empty conversation; past chats stay listed, none picked."""
        return ChatView([], None, conversations.new_id(), conversations.choices(store))

    def remember(
        self, messages: list[Message] | None, session: ChatSession | None, chat_id: str | None, store: Any
    ) -> tuple[Any, str, list[tuple[str, str]]]:
        """Save this conversation in the browser's store: (new store, its id, the picker's choices)."""
        chat_id = chat_id or conversations.new_id()
        messages = list(messages or [])
        turns = session.history() if session is not None else []
        store = conversations.save(store, chat_id, conversations.first_question(messages), messages, turns)
        return store, chat_id, conversations.choices(store)

    def reopen(self, chat_id: str | None, store: Any) -> ChatView:
        """A past chat shown again and continued (its follow-ups are rewritten as before); the picker's
        choices are unchanged (``None``) unless the chat is gone."""
        chat = conversations.find(store, chat_id)
        if chat is None:
            return ChatView([], None, conversations.new_id(), conversations.choices(store))
        return ChatView(chat["messages"], self._session(chat["turns"]), chat["id"], None)

    def forget(self, chat_id: str | None, current: str | None, store: Any) -> tuple[Any, ChatView | None]:
        """Delete a past chat from the store: (new store, what the chat area shows; its ``messages`` are
        ``None`` when the open chat is another one and stays). Deleting nothing (``chat_id`` empty) only
        cleans the store and gives ``None``: the page then says :data:`NO_CHAT_CHOSEN`."""
        if not chat_id:
            return conversations.clean(store), None
        store = conversations.remove(store, chat_id)
        choices = conversations.choices(store)
        if chat_id == current:
            return store, ChatView([], None, conversations.new_id(), choices)
        return store, ChatView(None, None, None, choices)

    def restore_last(self, store: Any) -> tuple[Any, ChatView]:
        """On page load: (the cleaned store, the chat changed last reopened), so that a reload loses nothing."""
        cleaned = conversations.clean(store)
        chat = conversations.latest(cleaned)
        choices = conversations.choices(cleaned)
        if chat is None:
            return cleaned, ChatView([], None, conversations.new_id(), choices)
        return cleaned, ChatView(chat["messages"], self._session(chat["turns"]), chat["id"], choices, chat["id"])

    def _session(self, turns: list[Any]) -> ChatSession:
        session = self.assistant.chat()
        session.restore(turns)
        return session

    # ------------------------------------------------------------ API

    def ask(self, question: str) -> dict[str, Any]:
        """The JSON of ``rag ask --json``; a question that cannot be answered raises :class:`rag.RagError`
        with a message for people (no index: :data:`NO_INDEX`)."""
        try:
            return self.assistant.ask(question).to_dict()
        except IndexNotFoundError as exc:
            raise RagError(NO_INDEX) from exc

    def sources(self) -> list[dict[str, Any]]:
        """The indexed files (:meth:`DocumentRecord.summary`) and whether each was uploaded here."""
        records = self.library.records()
        mine = set(self.library.uploaded(records))
        return [{**r.summary(), "uploaded": r.source in mine} for r in records]

    # ------------------------------------------------------------ documents

    def listing(self) -> Listing:
        """The Documents tab as it is now."""
        records = self.library.records()
        table = render.documents_table_html(records, self.library.uploaded(records))
        stats = render.stats_html(self.library.stats(), str(self.assistant.index_dir))
        return Listing(table, stats, sorted((r.source for r in records), key=str.casefold))

    def conflicts(self, files: Sequence[str | Path] | None) -> list[str]:
        """The uploaded documents that ``files`` would replace (same name, other content)."""
        return self.library.conflicts([Path(f) for f in files or []])

    def replace_question(self, names: Sequence[str]) -> str:
        """The confirmation asked before :meth:`upload` replaces ``names``."""
        return render.replace_question_html(names)

    def cancel_upload(self, files: Sequence[str | Path] | None) -> str:
        """Drop uploads held for a confirmation: the status line."""
        for path in files or []:
            drop_upload(Path(path))
        return render.upload_status_html([("info", "Nothing was added: the upload was cancelled.")])

    def upload(
        self,
        files: Sequence[str | Path] | None,
        progress: Callable[[float, str], None] | None = None,
        replace: bool = False,
    ) -> tuple[UploadResult, str]:
        """Index uploaded files (temporary copies, deleted afterwards): the result and its status line(s).

        ``progress(fraction, description)`` is told how far indexing has come. ``replace``: a file named
        like an uploaded document replaces it (:meth:`conflicts`); otherwise it is added as a copy."""
        paths = [Path(f) for f in files or []]
        if not paths:
            return UploadResult(), render.upload_status_html([("info", "No files were chosen.")])
        try:
            track = _described(progress, f"Indexing {len(paths)} file(s)") if progress is not None else False
            result = self.library.add(paths, progress=track, on_copied=drop_upload, replace=replace)
            lines = result.lines()
            lines.append(("info", upload_summary(result)))
            return result, render.upload_status_html(lines)
        except RagError as exc:
            result = UploadResult(rejected=[(p.name, str(exc)) for p in paths])
            return result, render.upload_status_html([("error", f"Nothing was added: {exc}")])
        finally:
            for path in paths:
                drop_upload(path)

    def remove(self, source: str | None) -> str:
        """Remove one indexed file by its source name: the status line."""
        if not source:
            return render.upload_status_html([("info", "Choose a file to remove first.")])
        try:
            removed = self.library.remove(source)
            line = ("ok", f"{source}: removed") if removed else ("error", f"{source}: not in the index")
        except RagError as exc:
            line = ("error", f"{source}: not removed: {exc}")
        return render.upload_status_html([line])

    # ------------------------------------------------------------ language model settings

    def llm_form(self) -> LLMForm:
        """The Settings tab as the settings in force make it (the key box stays empty: a saved key is
        never sent back to the page)."""
        view = self.llm.view()
        hint = "A key is saved for this server: leave empty to keep it" if view.key_saved else "Empty if none is needed"
        return LLMForm(view.url, hint, view.choices, view.choice, render.llm_current_html(view.summary))

    def llm_current(self) -> str:
        """The line telling how answers are made now."""
        return render.llm_current_html(self.llm.summary())

    def llm_refresh(self, url: str, key: str, choice: str | None) -> tuple[list[Any] | None, str | None, str]:
        """The models a server lists: (picker choices or None when unchanged, the pick, the status line)."""
        try:
            models = self.llm.models(url, key)
        except RagError as exc:
            return None, None, render.settings_status_html("error", f"Could not list the models: {for_page(str(exc))}")
        picked = choice if choice in models else (models[0] if models else choice)
        if models:
            listed = ", ".join(models[:20]) + (f" and {len(models) - 20} more" if len(models) > 20 else "")
            status = render.settings_status_html(
                "ok", f"{len(models)} model(s) at {url.strip()}: {listed}. Pick one and press Apply."
            )
        else:
            message = "The server lists no models: type a model name, or choose Extractive (no LLM)."
            status = render.settings_status_html("warning", message)
        return self.llm.choices(models, picked or ""), picked, status

    def llm_apply(self, url: str, key: str, choice: str | None) -> tuple[bool, str]:
        """Use this server and model for everyone's next question: (applied, the status line)."""
        try:
            kind, message = self.llm.apply(url, key, choice or "")
        except RagError as exc:
            return False, render.settings_status_html("error", f"Not applied: {for_page(str(exc))}")
        return True, render.settings_status_html(kind, message)


def upload_summary(result: UploadResult) -> str:
    """One line counting what the user's upload did (not the other files of the index)."""
    counts = [
        (result.stored, "indexed"),
        (result.replaced, "replaced"),
        (result.unchanged, "unchanged"),
        (result.duplicates, "already indexed under another name"),
        (result.rejected, "not added"),
    ]
    done = ", ".join(f"{len(items)} {label}" for items, label in counts if items)
    line = f"{result.files()} file(s) uploaded: {done}"
    report = result.report
    if report is not None and (report.chunks_embedded or report.chunks_reused):
        line += f" ({report.chunks_embedded + report.chunks_reused} passages, {report.seconds:.1f} s)"
    return line


def _described(progress: Callable[[float, str], None], desc: str) -> Callable[[float, str], None]:
    """``progress`` told ``desc`` and what is being done (the file and page being read) with every
    fraction, starting at 0."""
    progress(0.0, desc)
    return lambda done, doing: progress(done, f"{desc}: {doing}" if doing else desc)


def upload_folder() -> Path:
    """Where Gradio keeps its temporary copies of uploads."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


def drop_upload(path: Path) -> None:
    """Delete Gradio's temporary copy of an upload (never anything outside its upload folder)."""
    try:
        resolved = Path(path).resolve()
        if upload_folder() not in resolved.parents:
            return
        resolved.unlink(missing_ok=True)
        if resolved.parent != upload_folder() and not any(resolved.parent.iterdir()):
            resolved.parent.rmdir()
    except OSError:
        return
