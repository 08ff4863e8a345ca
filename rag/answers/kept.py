"""What the answer layer works out from a text, kept per text within a budget of characters.

The name checks read a whole document's text for each question (its words, its letters run together,
its acronyms). ``functools.lru_cache`` bounds such caches by their number of entries only: a few
thousand entries of whole documents can hold gigabytes in a server that has seen many large files.
:func:`kept_per_text` bounds them by the characters of the texts kept as well.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

#: Characters of text that each kept function holds at most (its results are of the same order).
TEXT_BUDGET = 8_000_000


class KeptPerText(Generic[T]):
    """``function`` of a text, the results of the most recently used texts kept: at most ``entries`` of
    them and :data:`TEXT_BUDGET` characters of text in all. Safe to call from several threads."""

    def __init__(self, function: Callable[[str], T], entries: int, budget: int = TEXT_BUDGET) -> None:
        self.function = function
        self.entries = entries
        self.budget = budget
        self._kept: OrderedDict[str, T] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def __call__(self, text: str) -> T:
        with self._lock:
            if text in self._kept:
                self._kept.move_to_end(text)
                return self._kept[text]
        value = self.function(text)
        if len(text) > self.budget:
            return value  # larger than the whole budget: computed, not kept
        with self._lock:
            if text not in self._kept:
                self._kept[text] = value
                self._chars += len(text)
                while len(self._kept) > self.entries or self._chars > self.budget:
                    old, _ = self._kept.popitem(last=False)
                    self._chars -= len(old)
        return value

    def cache_clear(self) -> None:
        """Forget every kept result."""
        with self._lock:
            self._kept.clear()
            self._chars = 0

    @property
    def kept_chars(self) -> int:
        """Characters of the texts kept now."""
        return self._chars


def kept_per_text(entries: int, budget: int = TEXT_BUDGET) -> Callable[[Callable[[str], T]], KeptPerText[T]]:
    """Decorate a function of one text to keep its results (see :class:`KeptPerText`)."""

    def wrap(function: Callable[[str], T]) -> KeptPerText[T]:
        return KeptPerText(function, entries, budget)

    return wrap


__all__ = ["TEXT_BUDGET", "KeptPerText", "kept_per_text"]
