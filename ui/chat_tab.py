"""The Chat tab: past chats (kept in the browser), the conversation, the question box and its buttons.

:func:`chat_tab` lays it out inside the page's ``gr.Tabs`` and wires its events to the
:class:`ui.handlers.Handlers`; answers stream in as HTML built by :mod:`ui.render`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gradio as gr

from rag import ChatSession

from . import conversations
from .handlers import NO_CHAT_CHOSEN, ChatView, Handlers, Message

#: What the Past-chats box is for, shown under its label (also while it is empty).
PAST_CHATS_HINT = "Each chat is kept in this browser only, never on the server: pick one to reopen it."


def chat_tab(app: gr.Blocks, handlers: Handlers, examples: Sequence[str]) -> None:
    """The Chat tab, inside ``app``'s tabs, with its events (one :class:`rag.ChatSession` per browser
    session, so that follow-ups are rewritten into standalone questions)."""
    with gr.Tab("Chat", id="chat"):
        with gr.Row(elem_id="rag-history-row"):
            history_picker = gr.Dropdown(
                label="Past chats",
                info=PAST_CHATS_HINT,
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
            show_label=False,  # a label would float over the messages as they scroll
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
            # No max_length: the box would cut a long question silently; the handler refuses it in the
            # API's words instead (Handlers.refusal).
            question = gr.Textbox(
                placeholder="Ask a question about your documents…",
                show_label=False,
                elem_id="rag-question",
                scale=8,
                autofocus=True,
            )
            ask_button = gr.Button("Ask", variant="primary", elem_id="rag-ask", scale=1)
            clear_button = gr.Button("New chat", elem_id="rag-clear", scale=1)
        # (Inside the tab: anything else directly in gr.Tabs would be drawn as a tab of its own.)
        conversation = gr.State(None)  # this browser session's ChatSession, made on its first question
        chat_id = gr.State(None)  # the id of the open chat in the browser's store
        # Past chats live in this browser (localStorage, encrypted by Gradio), never on the server.
        chats = gr.BrowserState(
            conversations.empty(), storage_key="rag-chats", secret=os.environ.get("RAG_UI_SECRET") or None
        )

    def respond(
        text: str, history: list[Message] | None, session: ChatSession | None
    ) -> Iterator[tuple[list[Message], Any, ChatSession | None]]:
        refusal = handlers.refusal(text)
        if refusal is not None:  # the question stays in its box, to be shortened
            gr.Warning(refusal)
            yield list(history or []), gr.update(), session
            return
        for messages, kept in handlers.respond(text, history, session):
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

    page_only: dict[str, Any] = {"api_visibility": "private", "queue": False}
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
        **page_only,
    }
    question.submit(**chat_events).then(**save_chat)
    ask_button.click(**chat_events).then(**save_chat)
    chatbot.example_select(use_example, None, question, **page_only).then(**chat_events).then(**save_chat)
    fresh_outputs = [chatbot, question, conversation, chat_id, history_picker]
    clear_button.click(start_chat, [chats], fresh_outputs, **page_only)
    chatbot.clear(start_chat, [chats], fresh_outputs, **page_only)  # the chatbot's trash icon: a new chat too
    history_picker.input(reopen, [history_picker, chats], [chatbot, conversation, chat_id, history_picker], **page_only)
    delete_chat.click(
        forget,
        [history_picker, chat_id, chats],
        [chats, history_picker, chatbot, conversation, chat_id],
        **page_only,
    )
    app.load(restore_last, [chats], [chatbot, conversation, chat_id, history_picker, chats], **page_only)
