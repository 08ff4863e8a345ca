"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests.

It speaks the parts of the protocol that Ollama, vLLM and llama.cpp's server speak: ``GET /v1/models``
and ``POST /v1/chat/completions``, answering with JSON or, when the request says ``"stream": true``,
with server-sent events in chunked transfer encoding, ending with ``data: [DONE]``.

Replies are scripted in order with :meth:`FakeOpenAI.script`; each can set the text, how it is cut
into stream chunks, an HTTP error, delays, a stream cut off mid-way or a dropped connection. When the
script is empty, :attr:`FakeOpenAI.default` is used. Every request is recorded in
:attr:`FakeOpenAI.requests`. Nothing leaves the loopback interface.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted reply to a chat-completions request."""

    #: The assistant message; streamed in ``chunks`` (default: word by word).
    text: str = ""
    #: Explicit stream pieces (overrides splitting ``text``).
    chunks: list[str] | None = None
    #: HTTP status; anything but 200 sends an OpenAI-style error body with ``error``.
    status: int = 200
    error: str = "scripted error"
    #: Seconds to wait before sending anything (to trigger the client's timeout).
    delay: float = 0.0
    #: Seconds to wait before each stream chunk after the first ``stall_after`` chunks.
    chunk_delay: float = 0.0
    stall_after: int = 0
    #: Stream: stop after this many content chunks and close the connection mid-body (no end chunk).
    cut_after: int | None = None
    #: Stream: end the body cleanly but without a finish_reason and without ``[DONE]``.
    no_finish: bool = False
    finish_reason: str = "stop"
    #: Close the connection without answering at all.
    drop: bool = False
    #: Send this body as-is with status 200 (for malformed responses).
    raw: bytes | None = None
    #: Send an error event in the middle of the stream (as vLLM does) after the content chunks.
    stream_error: str | None = None


@dataclass
class Request:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def prompt(self) -> str:
        """All message contents joined (system, user, ...)."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)

    def passage_number(self, needle: str) -> int:
        """The number the prompt gave to the passage containing ``needle`` (0 if none)."""
        for m in re.finditer(r'<passage n="(\d+)"[^>]*>(.*?)</passage>', self.prompt, re.S):
            if needle in m.group(2):
                return int(m.group(1))
        return 0

    @property
    def passage_count(self) -> int:
        return len(re.findall(r'<passage n="\d+"', self.prompt))


class FakeOpenAI:
    """The server; use as a context manager or call :meth:`start` and :meth:`stop`."""

    def __init__(self, models: tuple[str, ...] = ("m",), default: Reply | None = None) -> None:
        self.models = list(models)
        self.default = default or Reply("The documents say nothing more [1].")
        self.requests: list[Request] = []
        #: Content chunks written to streams so far (to check that a client reads them as they come).
        self.sent = 0
        self.responder: Callable[[Request], Reply] | None = None
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ control

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL a client is given: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply | str) -> FakeOpenAI:
        """Queue replies (a str is a plain text reply), served in order."""
        with self._lock:
            self._script.extend(Reply(r) if isinstance(r, str) else r for r in replies)
        return self

    def chat_requests(self) -> list[Request]:
        """The chat-completions requests received so far."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> FakeOpenAI:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ serving

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            if self._script:
                return self._script.pop(0)
        if self.responder is not None:
            return self.responder(request)
        return self.default

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


def free_port() -> int:
    """A loopback port with nothing listening on it (for 'server unreachable')."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def split_words(text: str) -> list[str]:
    """Stream pieces the way servers send tokens: a word with its leading space, markers split in two."""
    pieces: list[str] = []
    for piece in re.findall(r"\s*\S+", text):
        # Split citation markers across chunks ("[1" then "]") to exercise reassembly.
        m = re.fullmatch(r"(.*\[\d+)(\].*)", piece)
        pieces.extend([m.group(1), m.group(2)] if m else [piece])
    return pieces


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_GET(self) -> None:
            fake.requests.append(Request("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path.rstrip("/") == "/v1/models":
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in fake.models]
                self._json(200, {"object": "list", "data": data})
            else:
                self._error(404, f"no route {self.path}", "not_found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            request = Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            fake.requests.append(request)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route {self.path}", "not_found")
                return
            model = body.get("model")
            if fake.models and model not in fake.models:
                self._error(404, f"model '{model}' not found, try pulling it first", "model_not_found")
                return
            reply = fake._next_reply(request)
            fake._sleep(reply.delay)
            if fake._stopping.is_set():
                return
            try:
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif reply.raw is not None:
                    self._send(200, reply.raw, "application/json")
                elif reply.status != 200:
                    self._error(reply.status, reply.error, "scripted")
                elif body.get("stream"):
                    self._stream(reply, str(model))
                else:
                    self._json(200, _completion(reply, str(model)))
            except OSError:  # the client went away (timed out): nothing to do
                self.close_connection = True

        # -------------------------------------------------------- responses

        def _send(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _error(self, status: int, message: str, code: str) -> None:
            self._json(status, {"error": {"message": message, "type": "invalid_request_error", "code": code}})

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _event(self, data: Any) -> None:
            text = data if isinstance(data, str) else json.dumps(data)
            self._chunk(f"data: {text}\n\n".encode())

        def _stream(self, reply: Reply, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pieces = reply.chunks if reply.chunks is not None else split_words(reply.text)
            created = int(time.time())
            self._event(_chunk_data(model, created, {"role": "assistant", "content": ""}, None))
            for i, piece in enumerate(pieces):
                if reply.cut_after is not None and i >= reply.cut_after:
                    # Close mid-body: no terminating zero-length chunk.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if i >= reply.stall_after:
                    fake._sleep(reply.chunk_delay)
                if fake._stopping.is_set():
                    return
                self._event(_chunk_data(model, created, {"content": piece}, None))
                fake.sent += 1
            if reply.stream_error is not None:
                self._event({"error": {"message": reply.stream_error, "type": "server_error"}})
            elif not reply.no_finish:
                self._event(_chunk_data(model, created, {}, reply.finish_reason))
                self._event("[DONE]")
            self._chunk(b"")

    return Handler


def _chunk_data(model: str, created: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _completion(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
