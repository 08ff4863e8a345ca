"""Guards of the web chat against abuse: who may point the server at another language model, login
attempts, and documents left behind by killed uploads.

- The Settings tab may only change the language-model server when the operator allows it
  (``RAG_UI_ALLOW_LLM_SETTINGS=1``); otherwise the page can pick a model on the configured server or
  turn the model off, but never make the server fetch another URL (no server-side request forgery).
- :class:`CredentialLimiter` counts wrong credentials however they come (login form, ``/v1`` Basic or
  Bearer, API key) and refuses every attempt for a while after too many; :class:`LoginLimiter` is the
  login form's check over it.
- :class:`RateLimit` answers 429 (with ``Retry-After``) to a client address that sends requests faster
  than the page or a program needs to (``RAG_UI_REQUESTS_PER_MINUTE``, bursts of
  ``RAG_UI_REQUEST_BURST``).
- :func:`set_aside_orphans` moves files of the documents folder that are not in the index (an
  upload killed between its copy and its indexing) out of the way, so the next upload never indexes
  them silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

ALLOW_LLM_SETTINGS = "RAG_UI_ALLOW_LLM_SETTINGS"
#: Private or link-local hosts the page may nevertheless name as the language-model server.
ALLOWED_LLM_HOSTS = "RAG_UI_LLM_HOSTS"
#: Wrong passwords accepted per window before every login is refused until the window has passed.
LOGIN_FAILURES = 10
LOGIN_WINDOW = 60.0
#: Requests (POST: questions, uploads, page events, API calls) one client address may send per minute,
#: and in one burst; a page load sends about 8, a question 1 to 2.
REQUESTS_PER_MINUTE = 120.0
REQUEST_BURST = 40.0
#: Hidden folder (never indexed) inside the documents folder for files no index entry claims.
ORPHANS = ".orphans"

log = logging.getLogger("ui")


def llm_settings_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the page may change the language-model server (``RAG_UI_ALLOW_LLM_SETTINGS=1``)."""
    environ = os.environ if environ is None else environ
    return environ.get(ALLOW_LLM_SETTINGS, "").strip().lower() in {"1", "true", "yes", "on"}


#: Host names of cloud metadata services (their addresses are link-local, but a name may resolve anywhere).
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)


def llm_hosts_listed(environ: Mapping[str, str] | None = None) -> list[str]:
    """Hosts, addresses or networks the page may name as the language-model server although they are
    private, link-local or metadata addresses (``RAG_UI_LLM_HOSTS``, comma-separated)."""
    environ = os.environ if environ is None else environ
    return [item.strip().lower() for item in environ.get(ALLOWED_LLM_HOSTS, "").split(",") if item.strip()]


def llm_url_problem(url: str, listed: Iterable[str] = ()) -> str:
    """Why the page may not send the server to ``url`` (empty when it may): a private (10/8, 172.16/12,
    192.168/16, fc00::/7), link-local (169.254/16 with the cloud metadata service, fe80::/10), unspecified,
    multicast or reserved address, a metadata host name, or a name that resolves to one of them; unless the
    operator lists the host (or a network holding its address) in ``RAG_UI_LLM_HOSTS``. Loopback is
    allowed: a model server on this machine (Ollama, llama.cpp) is the usual case."""
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url).hostname or "").strip().rstrip(".").lower()
    except ValueError:
        return "it is not a valid URL"
    if not host:
        return "it names no host"
    listed = [item.lower() for item in listed]
    networks = []
    for item in listed:
        with contextlib.suppress(ValueError):
            networks.append(ipaddress.ip_network(item, strict=False))
    if host in listed:
        return ""
    if host in METADATA_HOSTS or host.endswith(".internal"):
        return f"{host} is a cloud metadata or internal host name"
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return ""  # unknown name: the client will say it cannot reach it
        addresses = []
        for info in infos:
            with contextlib.suppress(ValueError):
                addresses.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
    for given in addresses:
        address = getattr(given, "ipv4_mapped", None) or given
        if address.is_loopback or any(a in n for a in (given, address) for n in networks if a.version == n.version):
            continue
        if (
            address.is_link_local
            or address.is_private
            or address.is_unspecified
            or address.is_multicast
            or address.is_reserved
        ):
            kind = "link-local (cloud metadata)" if address.is_link_local else "private or reserved"
            return f"{host} is a {kind} address ({address})"
    return ""


def same_secret(given: str, expected: str) -> bool:
    """Whether ``given`` is ``expected``, in time that depends on neither (their SHA-256 digests compared)."""
    a = hashlib.sha256(str(given).encode("utf-8", "surrogatepass")).digest()
    b = hashlib.sha256(str(expected).encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(a, b)


class CredentialLimiter:
    """One count of wrong credentials for the whole server, however they are presented (the login form,
    ``/v1`` with Basic or Bearer ``user:password``, the API key): after :data:`LOGIN_FAILURES` wrong ones
    within :data:`LOGIN_WINDOW` seconds every attempt is refused (the right one too) until the oldest
    failure leaves the window."""

    def __init__(
        self, failures: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures, self.window, self._clock = failures, window, clock
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    def _forget(self, now: float) -> None:
        while self._recent and now - self._recent[0] > self.window:
            self._recent.popleft()

    def attempt(self, correct: bool) -> bool:
        """Record one attempt whose credentials were ``correct``; whether it is accepted."""
        with self._lock:
            now = self._clock()
            self._forget(now)
            if len(self._recent) >= self.failures:
                return False
            if not correct:
                self._recent.append(now)
                if len(self._recent) == self.failures:
                    log.warning(
                        "%d wrong credentials within %.0f s: all refused for a while", self.failures, self.window
                    )
            return correct

    def retry_after(self) -> float:
        """Seconds until attempts are accepted again (0 when they are)."""
        with self._lock:
            now = self._clock()
            self._forget(now)
            if len(self._recent) < self.failures:
                return 0.0
            return max(0.0, self._recent[0] + self.window - now)


class LoginLimiter:
    """A Gradio ``auth`` callable for one user: constant-time comparison, and the attempts counted by a
    :class:`CredentialLimiter` (shared with the API's, when the server has one)."""

    def __init__(
        self,
        user: str,
        password: str,
        failures: int = LOGIN_FAILURES,
        window: float = LOGIN_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        limiter: CredentialLimiter | None = None,
    ) -> None:
        self._user, self._password = user, password
        self.limiter = limiter if limiter is not None else CredentialLimiter(failures, window, clock)

    def __call__(self, user: str, password: str) -> bool:
        """Whether this login is accepted."""
        ok = same_secret(user, self._user)
        ok = same_secret(password, self._password) and ok
        return self.limiter.attempt(ok)


def request_limits(environ: Mapping[str, str] | None = None) -> tuple[float, float]:
    """``(per_minute, burst)`` from ``RAG_UI_REQUESTS_PER_MINUTE`` / ``RAG_UI_REQUEST_BURST`` (checked)."""
    from rag import ConfigError

    environ = os.environ if environ is None else environ
    values = []
    for name, default in (("RAG_UI_REQUESTS_PER_MINUTE", REQUESTS_PER_MINUTE), ("RAG_UI_REQUEST_BURST", REQUEST_BURST)):
        raw = environ.get(name, "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not value > 0 or value == float("inf"):
            raise ConfigError(f"{name} must be a finite number > 0, got {raw!r}")
        values.append(value)
    return values[0], values[1]


#: GET requests counted by :class:`RateLimit` besides every POST: the viewer and the API do work for
#: each (the page and its assets are not counted).
LIMITED_GET_PREFIXES = ("/rag/", "/v1/")


def trusted_proxies(environ: Mapping[str, str] | None = None) -> str:
    """The addresses (or networks) whose ``X-Forwarded-For`` names the client (``RAG_UI_TRUSTED_PROXIES``,
    comma-separated, checked; empty by default: the connecting address is the client, whatever it says)."""
    import ipaddress

    from rag import ConfigError

    environ = os.environ if environ is None else environ
    raw = environ.get("RAG_UI_TRUSTED_PROXIES", "").strip()
    items = [item.strip() for item in raw.split(",") if item.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"RAG_UI_TRUSTED_PROXIES must list IP addresses or networks (e.g. 127.0.0.1,10.0.0.0/8), got {item!r}"
            ) from None
    return ",".join(items)


class RateLimit:
    """ASGI middleware: a token bucket per client address for POST requests (questions, uploads, page
    events, API calls) and GETs of the viewer and the API (:data:`LIMITED_GET_PREFIXES`); over it the
    answer is 429 with ``Retry-After``. Loading the page is not counted. The client address is the
    connecting one unless it is a proxy the operator trusts (:func:`trusted_proxies`)."""

    def __init__(
        self,
        app: Any,
        per_minute: float = REQUESTS_PER_MINUTE,
        burst: float = REQUEST_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.rate, self.burst, self._clock = app, per_minute / 60.0, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, time)
        self._lock = threading.Lock()

    def _wait(self, client: str) -> float:
        """Take a token for ``client``: 0 when it may go on, else the seconds until it may."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[client] = (tokens - 1, now)
            if len(self._buckets) > 10_000:  # forget the addresses whose buckets are full again
                full = [c for c, (t, at) in self._buckets.items() if t + (now - at) * self.rate >= self.burst]
                for c in full:
                    del self._buckets[c]
            return 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on, or answer 429 when its address is over the limit."""
        if scope.get("type") == "http" and _counted(scope.get("method", ""), scope.get("path", "")):
            client = (scope.get("client") or ("?", 0))[0]
            wait = self._wait(str(client))
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                body = f'{{"detail": "Too many requests from this address: wait {seconds} s"}}'.encode()
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(seconds).encode()),
                ]
                await send({"type": "http.response.start", "status": 429, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _counted(method: str, path: str) -> bool:
    return method == "POST" or (method in ("GET", "HEAD") and path.startswith(LIMITED_GET_PREFIXES))


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
