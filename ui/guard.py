"""Guards of the web chat against abuse: who may point the server at another language model, login
attempts, and documents left behind by killed uploads.

- The Settings tab may only change the language-model server when the operator allows it
  (``RAG_UI_ALLOW_LLM_SETTINGS=1``); otherwise the page can pick a model on the configured server or
  turn the model off, but never make the server fetch another URL (no server-side request forgery).
- :class:`LoginLimiter` checks the login and refuses every attempt for a while after too many
  wrong passwords.
- :func:`set_aside_orphans` moves files of the documents folder that are not in the index (an
  upload killed between its copy and its indexing) out of the way, so the next upload never indexes
  them silently.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

ALLOW_LLM_SETTINGS = "RAG_UI_ALLOW_LLM_SETTINGS"
#: Wrong passwords accepted per window before every login is refused until the window has passed.
LOGIN_FAILURES = 10
LOGIN_WINDOW = 60.0
#: Hidden folder (never indexed) inside the documents folder for files no index entry claims.
ORPHANS = ".orphans"

log = logging.getLogger("ui")


def llm_settings_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the page may change the language-model server (``RAG_UI_ALLOW_LLM_SETTINGS=1``)."""
    environ = os.environ if environ is None else environ
    return environ.get(ALLOW_LLM_SETTINGS, "").strip().lower() in {"1", "true", "yes", "on"}


class LoginLimiter:
    """A Gradio ``auth`` callable for one user: constant-time comparison, and after
    :data:`LOGIN_FAILURES` wrong attempts within :data:`LOGIN_WINDOW` seconds every attempt is refused
    (the right password too) until the oldest failure leaves the window."""

    def __init__(
        self,
        user: str,
        password: str,
        failures: int = LOGIN_FAILURES,
        window: float = LOGIN_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._user, self._password = user.encode(), password.encode()
        self.failures, self.window, self._clock = failures, window, clock
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str) -> bool:
        """Whether this login is accepted."""
        with self._lock:
            now = self._clock()
            while self._recent and now - self._recent[0] > self.window:
                self._recent.popleft()
            if len(self._recent) >= self.failures:
                return False
            ok = hmac.compare_digest(str(user).encode(), self._user)
            ok = hmac.compare_digest(str(password).encode(), self._password) and ok
            if not ok:
                self._recent.append(now)
                if len(self._recent) == self.failures:
                    log.warning("%d wrong logins within %.0f s: logins refused for a while", self.failures, self.window)
            return ok


def set_aside_orphans(folder: Path, indexed: Iterable[str]) -> list[str]:
    """Move files of ``folder`` that are not among the ``indexed`` source names into ``folder/.orphans``.

    Returns the names moved. Hidden files (the upload's own partial copies) are left alone.
    """
    if not folder.is_dir():
        return []
    known = set(indexed)
    moved: list[str] = []
    for item in sorted(folder.iterdir()):
        if item.name.startswith(".upload-") and item.name.endswith(".part"):  # a copy cut short
            with contextlib.suppress(OSError):
                item.unlink()
            continue
        if item.name.startswith(".") or not item.is_file() or item.name in known:
            continue
        target = folder / ORPHANS / item.name
        try:
            target.parent.mkdir(exist_ok=True)
            os.replace(item, target)
        except OSError:
            continue
        moved.append(item.name)
    if moved:
        log.warning(
            "%d file(s) in %s were not in the index (an upload that was interrupted): moved to %s",
            len(moved),
            folder,
            folder / ORPHANS,
        )
    return moved
