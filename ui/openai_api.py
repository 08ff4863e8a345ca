"""An OpenAI-compatible HTTP API over one :class:`rag.Assistant`, served by ``rag serve`` beside the web chat
(same FastAPI app, same port): ``GET /v1/models`` and ``POST /v1/chat/completions`` (JSON or server-sent
events ending with ``data: [DONE]``).

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:7860/v1", api_key="...")
    reply = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": "..."}])
    reply.choices[0].message.content      # the answer, with [n] markers
    reply.model_extra["rag"]["citations"] # n, source, start, end, text, page, score (see ui.openai_format)

The last user message is the question; earlier user/assistant turns make a :class:`rag.ChatSession`,
so follow-ups are rewritten the way the web chat rewrites them. ``max_tokens`` and ``temperature`` go
to the language model when one is configured. At most ``max_active`` answers are worked out at once,
``max_waiting`` more wait for a turn; beyond that a request gets 429 at once.

Access: ``Authorization: Bearer <RAG_API_KEY>`` when that is set; otherwise, when the web chat has a
login (``RAG_UI_USER``/``RAG_UI_PASSWORD``), Bearer ``user:password`` or HTTP Basic with that login;
otherwise open on a loopback address, and closed (401 saying to set ``RAG_API_KEY``) on any other.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from rag import Answer, Assistant, ConfigError, InputError, RagError, answer_options

from .guard import CredentialLimiter, same_secret
from .openai_format import (
    MAX_JSON_DEPTH,
    ApiError,
    ChatRequest,
    api_error,
    chunk,
    completion,
    content,
    count_usage,
    env_bool,
    env_int,
    error_response,
    footer,
    json_depth,
    new_id,
    parse_request,
    rag_field,
    unknown_model,
)

log = logging.getLogger("ui.api")

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: The assistant's own model name; ``rag/<language model>`` is listed too when one is configured.
MODEL = "rag"


@dataclass(frozen=True)
class ApiSettings:
    """How the API is served; :meth:`from_env` reads ``RAG_API_*``."""

    #: The Bearer key clients must send (``RAG_API_KEY``); empty: see the module docstring.
    api_key: str = field(default="", repr=False)
    #: The web chat's login, accepted when there is no API key.
    login: tuple[str, str] | None = field(default=None, repr=False)
    #: No key and no login means no access (set when the server listens beyond loopback).
    require_auth: bool = False
    #: Append a text list of the sources to each answer (``RAG_API_SOURCES_FOOTER``); a request may override it.
    sources_footer: bool = False
    #: Answers worked out at once (``RAG_API_MAX_ACTIVE``) and requests allowed to wait (``RAG_API_MAX_WAITING``).
    max_active: int = 4
    max_waiting: int = 64
    #: Largest request body in bytes (``RAG_API_MAX_BODY_KB``, in kilobytes).
    max_body_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        if isinstance(self.max_active, bool) or not isinstance(self.max_active, int) or self.max_active < 1:
            raise ConfigError(f"RAG_API_MAX_ACTIVE must be a whole number >= 1, got {self.max_active!r}")
        if isinstance(self.max_waiting, bool) or not isinstance(self.max_waiting, int) or self.max_waiting < 0:
            raise ConfigError(f"RAG_API_MAX_WAITING must be a whole number >= 0, got {self.max_waiting!r}")
        if not isinstance(self.max_body_bytes, int) or self.max_body_bytes < 1000:
            raise ConfigError(f"RAG_API_MAX_BODY_KB must be >= 1, got {self.max_body_bytes / 1000!r}")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, host: str = "127.0.0.1", **overrides: Any
    ) -> ApiSettings:
        """Settings from ``RAG_API_*`` (and ``RAG_UI_USER``/``RAG_UI_PASSWORD`` for the login), for ``host``."""
        environ = os.environ if environ is None else environ
        user, password = environ.get("RAG_UI_USER", ""), environ.get("RAG_UI_PASSWORD", "")
        values: dict[str, Any] = {
            "api_key": environ.get("RAG_API_KEY", "").strip(),
            "login": (user, password) if user and password else None,
            "require_auth": host not in LOOPBACK,
            "sources_footer": env_bool(environ, "RAG_API_SOURCES_FOOTER"),
            "max_active": env_int(environ, "RAG_API_MAX_ACTIVE", 4),
            "max_waiting": env_int(environ, "RAG_API_MAX_WAITING", 64),
            "max_body_bytes": env_int(environ, "RAG_API_MAX_BODY_KB", 1000) * 1000,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def open_to_all(self) -> bool:
        """Whether requests need no credentials."""
        return not self.api_key and self.login is None and not self.require_auth


class OpenAIApi:
    """The API's state (settings, worker threads, admission count) and its routes (:attr:`router`)."""

    def __init__(
        self, assistant: Assistant, settings: ApiSettings | None = None, limiter: CredentialLimiter | None = None
    ) -> None:
        self.assistant = assistant
        self.settings = settings or ApiSettings()
        #: Counts wrong keys and logins; the web chat's login form shares it (see :func:`ui.server.launch`).
        self.limiter = limiter if limiter is not None else CredentialLimiter()
        self._pool = ThreadPoolExecutor(max_workers=self.settings.max_active, thread_name_prefix="rag-api")
        self._admitted = 0
        self._lock = threading.Lock()
        self.router = APIRouter(prefix="/v1")
        self.router.add_api_route("/models", self.models, methods=["GET"], include_in_schema=False)
        self.router.add_api_route("/models/{name:path}", self.model, methods=["GET"], include_in_schema=False)
        self.router.add_api_route("/chat/completions", self.chat, methods=["POST"], include_in_schema=False)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for ``usage``: word pieces of the embedding model's tokenizer (no model load)."""
        return self.assistant.embedder.tokenizer.count(text)

    def close(self) -> None:
        """Stop the worker threads (answers under way finish first)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ names

    def model_names(self) -> list[str]:
        """``rag``, and ``rag/<model>`` when a language model is configured and its name is known."""
        names = [MODEL]
        settings = self.assistant.settings
        if settings.llm_base_url:
            generator = self.assistant.generator
            llm = settings.llm_model or (generator.model if generator is not None else "")
            if llm:
                names.append(f"{MODEL}/{llm}")
        return names

    def _model_entry(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 0, "owned_by": "rag"}

    # ------------------------------------------------------------ routes

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``."""
        try:
            self._authorize(request)
        except ApiError as exc:
            return error_response(exc)
        return JSONResponse({"object": "list", "data": [self._model_entry(n) for n in self.model_names()]})

    async def model(self, request: Request, name: str) -> Response:
        """``GET /v1/models/{name}``."""
        try:
            self._authorize(request)
            if name not in self.model_names():
                raise unknown_model(name, self.model_names())
        except ApiError as exc:
            return error_response(exc)
        return JSONResponse(self._model_entry(name))

    async def chat(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""
        try:
            self._authorize(request)
            chat = parse_request(await self._json(request))
            if chat.model not in self.model_names():
                raise unknown_model(chat.model, self.model_names())
            self._admit()
        except ApiError as exc:
            return error_response(exc)
        run = _Run(self, chat)
        try:
            self._pool.submit(run.work)
        except RuntimeError:  # shut down
            self._release()
            return error_response(ApiError(503, "the server is shutting down", "server_shutting_down"))
        first = await run.next()
        if isinstance(first, ApiError):
            return error_response(first)
        with_footer = self.settings.sources_footer if chat.sources_footer is None else chat.sources_footer
        if not chat.stream:
            while not isinstance(first, Answer):
                first = await run.next()
                if isinstance(first, ApiError):
                    return error_response(first)
            usage = count_usage(self.count_tokens, chat.prompt(), content(first, with_footer))
            return JSONResponse(completion(first, chat.model, with_footer, usage))
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            _events(run, first, chat, with_footer, self.count_tokens), media_type="text/event-stream", headers=headers
        )

    # ------------------------------------------------------------ checks

    def _authorize(self, request: Request) -> None:
        settings = self.settings
        if settings.open_to_all:
            return
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        accepted: list[str] = []
        if settings.api_key:
            accepted.append(settings.api_key)
        elif settings.login is not None:
            user, password = settings.login
            accepted.append(f"{user}:{password}")
            if scheme.lower() == "basic":
                try:
                    value = base64.b64decode(value, validate=True).decode("utf-8")
                except ValueError:
                    value = ""
                scheme = "bearer"
        else:
            raise ApiError(
                401,
                "this server listens beyond this machine, so its API needs a key: start it with RAG_API_KEY set "
                "and send that key as the API key (Authorization: Bearer ...)",
                "api_key_required",
            )
        if scheme.lower() != "bearer" or not value:
            raise ApiError(
                401,
                "no API key given: send 'Authorization: Bearer <key>' (the server's RAG_API_KEY)",
                "missing_api_key",
            )
        correct = False
        for key in accepted:
            correct = same_secret(value, key) or correct
        if not self.limiter.attempt(correct):
            wait = self.limiter.retry_after()
            if wait > 0:
                raise ApiError(
                    429,
                    f"too many wrong keys or passwords for this server: every attempt is refused for "
                    f"{max(1, math.ceil(wait))} s",
                    "too_many_attempts",
                )
            raise ApiError(401, "the API key is not valid for this server", "invalid_api_key")

    async def _json(self, request: Request) -> Any:
        limit = self.settings.max_body_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise ApiError(413, f"the request is {int(length):,} bytes; the limit is {limit:,}", "request_too_large")
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > limit:
                raise ApiError(413, f"the request is over the limit of {limit:,} bytes", "request_too_large")
        depth = json_depth(bytes(body), MAX_JSON_DEPTH)
        if depth > MAX_JSON_DEPTH:
            raise ApiError(
                400, f"the request body nests more than {MAX_JSON_DEPTH} levels of brackets: not read", "invalid_json"
            )
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ApiError(400, "the request body is not valid JSON", "invalid_json") from None

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.settings.max_active + self.settings.max_waiting:
                raise ApiError(
                    429,
                    f"the server is busy ({self._admitted} questions under way or waiting): try again shortly",
                    "server_busy",
                )
            self._admitted += 1

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1


_END = object()


class _Run:
    """One request's answer, worked out in a pool thread and handed to the event loop item by item."""

    def __init__(self, api: OpenAIApi, chat: ChatRequest) -> None:
        self.api = api
        self.chat = chat
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = threading.Event()

    def _put(self, item: Any) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def work(self) -> None:
        """In a pool thread: the session's stream, each item put on the queue; errors as ApiError."""
        try:
            if self.cancelled.is_set():
                return
            session = self.api.assistant.chat(k=self.chat.k)
            for question, answer in self.chat.history:
                try:
                    session.remember(question, answer)
                except InputError:
                    continue  # an empty or oversized earlier turn is left out of the history
            with answer_options(self.chat.max_tokens, self.chat.temperature):
                items: Iterator[str | Answer] = session.stream(self.chat.question)
                try:
                    for item in items:
                        self._put(item)
                        if self.cancelled.is_set():
                            break
                finally:
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()
        except Exception as exc:  # answered as an OpenAI error; unexpected ones are logged
            if not isinstance(exc, RagError):
                log.exception("chat completion failed")
            self._put(api_error(exc))
        finally:
            self.api._release()
            self._put(_END)

    async def next(self) -> Any:
        """The next item: a text delta, the final Answer, an ApiError, or _END."""
        return await self.queue.get()


async def _events(
    run: _Run, first: Any, chat: ChatRequest, with_footer: bool, count: Callable[[str], int]
) -> AsyncIterator[bytes]:
    """The server-sent events of a streamed completion."""
    ident, created = new_id(), int(time.time())

    def event(data: Any) -> bytes:
        if chat.include_usage and data.get("object") == "chat.completion.chunk":
            data.setdefault("usage", None)  # as OpenAI does: null on every chunk but the last
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

    yield event(chunk(ident, created, chat.model, {"role": "assistant", "content": ""}))
    streamed: list[str] = []
    item = first
    try:
        while item is not _END:
            if isinstance(item, ApiError):
                yield event(item.body())
                break
            if isinstance(item, str):
                streamed.append(item)
                yield event(chunk(ident, created, chat.model, {"content": item}))
            elif isinstance(item, Answer):
                tail = ""
                if "".join(streamed) != item.text:  # a generated answer fell back: show the answer used
                    tail = f"\n\n(The text above is replaced: {item.note or 'see the answer below'})\n\n{item.text}"
                if with_footer:
                    tail += footer(item)
                if tail:
                    yield event(chunk(ident, created, chat.model, {"content": tail}))
                last = chunk(ident, created, chat.model, {}, "stop")
                last["rag"] = {**rag_field(item), "text": item.text}
                yield event(last)
                if chat.include_usage:
                    usage_chunk = chunk(ident, created, chat.model, {})
                    usage_chunk["choices"] = []
                    usage_chunk["usage"] = count_usage(count, chat.prompt(), "".join(streamed) + tail)
                    yield event(usage_chunk)
            item = await run.next()
        yield b"data: [DONE]\n\n"
    finally:
        run.cancelled.set()


__all__ = ["MODEL", "ApiSettings", "OpenAIApi"]
