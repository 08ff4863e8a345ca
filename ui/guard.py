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
from typing import Any

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


#: Paths that answer without a login (the login page and what it loads); every other route needs it.
PUBLIC_PATHS = frozenset(
    {"/", "/login", "/login/", "/logout", "/logout/", "/favicon.ico", "/theme.css", "/manifest.json"}
    | {"/config", "/config/", "/gradio_api/theme.css", "/gradio_api/login_check", "/gradio_api/login_check/"}
    | {"/gradio_api/startup-events"}  # called by launch() itself
)
#: ``/v1/`` is the OpenAI-compatible API: it checks its own Bearer key (or the login as ``user:password``).
PUBLIC_PREFIXES = ("/static/", "/assets/", "/svelte/", "/v1/")


class LoginGate:
    """ASGI middleware: when the app has a login, every route outside :data:`PUBLIC_PATHS` needs a
    logged-in session (Gradio itself leaves some open: heartbeat, reset, cancel, streams...)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on, or answer 401 when it needs a login it does not carry."""
        if scope.get("type") in ("http", "websocket"):
            server = scope.get("app")
            path = scope.get("path", "")
            public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
            if getattr(server, "auth", None) is not None and not public and not _logged_in(server, scope):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = b'{"detail": "Not authenticated: log in first"}'
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 401, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _logged_in(server: Any, scope: Any) -> bool:
    from http.cookies import SimpleCookie

    cookies: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            with contextlib.suppress(Exception):
                cookies.load(value.decode("latin-1"))
    cookie_id = getattr(server, "cookie_id", "")
    tokens = getattr(server, "tokens", {})
    for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
        morsel = cookies.get(name)
        if morsel is not None and tokens.get(morsel.value) is not None:
            return True
    return False
