"""Past conversations of one browser: what the web chat keeps in that browser's storage.

The store is plain JSON held by the browser (``gr.BrowserState``, i.e. its localStorage, encrypted by
Gradio); the server keeps nothing of it, so one browser never sees another's chats. Each chat has an
id, a title (its first question), when it last changed, the chat messages as shown, and the turns its
:class:`rag.ChatSession` needs to rewrite follow-ups (:meth:`rag.ChatSession.history`). Everything
read back is checked: a damaged or foreign value gives an empty store, never an error.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

#: Most chats kept per browser (the oldest are dropped first) and most messages kept per chat.
MAX_CHATS = 30
MAX_MESSAGES = 200
TITLE_CHARS = 60
VERSION = 1

Store = dict[str, Any]
Chat = dict[str, Any]


def empty() -> Store:
    """A store without chats."""
    return {"version": VERSION, "chats": []}


def new_id() -> str:
    """A fresh chat id."""
    return uuid.uuid4().hex[:16]


def clean(store: Any) -> Store:
    """``store`` as read back from the browser, with anything malformed dropped."""
    if not isinstance(store, Mapping) or store.get("version") != VERSION or not isinstance(store.get("chats"), list):
        return empty()
    chats: list[Chat] = []
    seen: set[str] = set()
    for chat in store["chats"]:
        if not isinstance(chat, Mapping):
            continue
        chat_id, title, messages = chat.get("id"), chat.get("title"), chat.get("messages")
        if not isinstance(chat_id, str) or not chat_id or chat_id in seen or not isinstance(title, str):
            continue
        if not isinstance(messages, list) or not all(_is_message(m) for m in messages):
            continue
        turns = chat.get("turns")
        updated = chat.get("updated")
        seen.add(chat_id)
        chats.append(
            {
                "id": chat_id,
                "title": title[:TITLE_CHARS],
                "updated": float(updated) if isinstance(updated, (int, float)) else 0.0,
                "messages": list(messages)[-MAX_MESSAGES:],
                "turns": [t for t in turns if isinstance(t, Mapping)] if isinstance(turns, list) else [],
            }
        )
    return {"version": VERSION, "chats": chats[:MAX_CHATS]}


def _is_message(message: Any) -> bool:
    if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
        return False
    metadata = message.get("metadata")
    return isinstance(message.get("content"), str) and (metadata is None or isinstance(metadata, Mapping))


def plain_messages(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """Chat messages as stored: role, content as one string, and the metadata title when there is one.

    Gradio hands messages back with their content as a list of parts (``{"type": "text", "text": ...}``).
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(
                str(part.get("text") or "")
                for part in content
                if isinstance(part, Mapping) and part.get("type") == "text"
            )
        if not isinstance(content, str):
            continue
        item: dict[str, Any] = {"role": message["role"], "content": content}
        metadata = message.get("metadata")
        title = metadata.get("title") if isinstance(metadata, Mapping) else None
        if isinstance(title, str) and title:
            item["metadata"] = {"title": title}
        out.append(item)
    return out


def title_for(question: str) -> str:
    """A chat's title: its first question, shortened."""
    text = " ".join(question.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


def save(
    store: Any,
    chat_id: str,
    question: str,
    messages: Sequence[Mapping[str, Any]],
    turns: Sequence[Mapping[str, Any]],
    now: float | None = None,
) -> Store:
    """``store`` with chat ``chat_id`` set to ``messages`` and ``turns`` and moved to the top (created
    with ``question`` as its title when new). A chat without messages is not kept."""
    store = clean(store)
    chats = store["chats"]
    old = next((c for c in chats if c["id"] == chat_id), None)
    rest = [c for c in chats if c["id"] != chat_id]
    kept = plain_messages(messages)[-MAX_MESSAGES:]
    if not kept:
        return {"version": VERSION, "chats": rest}
    chat = {
        "id": chat_id,
        "title": old["title"] if old else title_for(question or "Chat"),
        "updated": time.time() if now is None else now,
        "messages": kept,
        "turns": [dict(t) for t in turns],
    }
    return {"version": VERSION, "chats": [chat, *rest][:MAX_CHATS]}


def remove(store: Any, chat_id: str | None) -> Store:
    """``store`` without chat ``chat_id``."""
    store = clean(store)
    return {"version": VERSION, "chats": [c for c in store["chats"] if c["id"] != chat_id]}


def find(store: Any, chat_id: str | None) -> Chat | None:
    """The chat ``chat_id`` of ``store``, or None."""
    return next((c for c in clean(store)["chats"] if c["id"] == chat_id), None)


def latest(store: Any) -> Chat | None:
    """The chat changed last, or None."""
    chats = clean(store)["chats"]
    return max(chats, key=lambda c: c["updated"]) if chats else None


def choices(store: Any) -> list[tuple[str, str]]:
    """``(label, id)`` of every chat, newest first, for a picker: its title and when it last changed."""
    out = []
    for chat in sorted(clean(store)["chats"], key=lambda c: c["updated"], reverse=True):
        when = time.strftime("%d %b %H:%M", time.localtime(chat["updated"])) if chat["updated"] else ""
        out.append((f"{chat['title']} · {when}" if when else chat["title"], chat["id"]))
    return out


def first_question(messages: Sequence[Mapping[str, Any]]) -> str:
    """The plain text of the first user message (messages hold escaped HTML)."""
    for message in plain_messages(messages):
        if message["role"] == "user":
            return html.unescape(re.sub(r"<[^>]*>", "", str(message["content"])))
    return ""


__all__ = [
    "MAX_CHATS",
    "choices",
    "clean",
    "empty",
    "find",
    "first_question",
    "latest",
    "new_id",
    "plain_messages",
    "remove",
    "save",
    "title_for",
]
