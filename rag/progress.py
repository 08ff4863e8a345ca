"""Progress of reading one file, page by page: a loader reports each page it has read (OCR included),
and whoever indexes listens (:func:`listening`) to show how far it has come and what it reads.

Outside :func:`listening` a report does nothing, so loaders can call :func:`page_read` unconditionally.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

#: Told (pages done, pages in all, what is being done: "page" or "OCR of page").
PageListener = Callable[[int, int, str], None]

_LISTENER: contextvars.ContextVar[PageListener | None] = contextvars.ContextVar("rag_pages", default=None)


@contextlib.contextmanager
def listening(listener: PageListener) -> Iterator[None]:
    """Pass the pages read inside the block to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def page_read(done: int, total: int, what: str = "page") -> None:
    """Report that ``done`` of ``total`` pages (or OCR'd pages) of the current file are read."""
    listener = _LISTENER.get()
    if listener is not None:
        listener(done, total, what)
