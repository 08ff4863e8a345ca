"""The OpenAI-compatible HTTP client: streaming, model listing, and every failure as one short line."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import contextvars
import re
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import GenerationError, InputError
from .prompts import MAX_ANSWER_TOKENS, MAX_REWRITE_TOKENS

#: ``(max_tokens, temperature)`` for the answers generated in the current context (see :func:`answer_options`).
_OPTIONS: contextvars.ContextVar[tuple[int | None, float | None]] = contextvars.ContextVar(
    "rag_answer_options", default=(None, None)
)


@contextlib.contextmanager
def answer_options(max_tokens: int | None = None, temperature: float | None = None) -> Iterator[None]:
    """Within the ``with`` block (same thread), generated answers use these instead of the defaults.

    ``max_tokens`` is capped at :data:`MAX_ANSWER_TOKENS`; ``temperature`` must be from 0 to 2 (default 0).
    Used by the OpenAI-compatible API to pass on its clients' ``max_tokens`` and ``temperature``.
    """
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise InputError(f"max_tokens must be a whole number >= 1, got {max_tokens!r}")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise InputError(f"temperature must be a number from 0 to 2, got {temperature!r}")
    token = _OPTIONS.set((None if max_tokens is None else min(max_tokens, MAX_ANSWER_TOKENS), temperature))
    try:
        yield
    finally:
        _OPTIONS.reset(token)


class LLMClient:
    """A thin wrapper of ``openai.OpenAI`` for one server and model; every failure is a GenerationError.

    ``timeout`` bounds each wait: connecting, the first token, and the gap between two tokens.
    """

    def __init__(self, base_url: str, model: str = "", api_key: str = "", timeout: float = 60.0) -> None:
        self.base_url = base_url
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The ``openai.OpenAI`` client (imported and built on first use, no retries, no redirects followed)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        import openai
                    except ImportError as exc:  # pragma: no cover - openai is a dependency
                        raise GenerationError(
                            "the openai package is not installed: run 'pip install openai' to use a language model"
                        ) from exc
                    self._client = openai.OpenAI(
                        base_url=self.base_url,
                        api_key=self.api_key or "not-needed",
                        timeout=self.timeout,
                        max_retries=0,
                        # A redirect would send the prompt (document passages) and the key elsewhere.
                        http_client=openai.DefaultHttpxClient(follow_redirects=False, timeout=self.timeout),
                    )
        return self._client

    def list_models(self) -> list[str]:
        """The model names the server offers (``GET /models``), e.g. for a model picker."""
        try:
            return [m.id for m in self.client.models.list()]
        except Exception as exc:
            raise self._error(exc) from exc

    def resolve_model(self) -> str:
        """The configured model, or when none is set, the first the server lists."""
        if self.model:
            return self.model
        models = self.list_models()
        if not models:
            raise GenerationError(f"the server at {self.base_url} lists no models: set RAG_LLM_MODEL")
        self.model = models[0]
        return self.model

    def stream_chat(
        self, messages: list[dict[str, str]], max_tokens: int = MAX_ANSWER_TOKENS
    ) -> cabc.Generator[str, None, None]:
        """The text pieces of the reply as the server sends them.

        Raises :class:`GenerationError` on any failure, including a stream that ends without a
        finish reason (cut off), one that hit the token limit, or one with no text at all.
        """
        model = self.resolve_model()
        chosen_tokens, temperature = _OPTIONS.get()
        max_tokens = chosen_tokens or max_tokens
        try:
            stream = self.client.chat.completions.create(
                model=model, messages=messages, stream=True, temperature=temperature or 0.0, max_tokens=max_tokens
            )
        except Exception as exc:
            raise self._error(exc) from exc
        finish: str | None = None
        received = False
        chunks = 0
        try:
            for chunk in stream:
                chunks += 1
                for choice in getattr(chunk, "choices", None) or []:
                    if getattr(choice, "index", 0) not in (0, None):
                        continue
                    delta = getattr(choice, "delta", None)
                    content = getattr(delta, "content", None) if delta is not None else None
                    if content:
                        received = True
                        yield content
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except GenerationError:
            raise
        except Exception as exc:
            raise self._stream_error(exc, model) from exc
        finally:
            stream.close()
        if chunks == 0:
            kind = getattr(getattr(stream, "response", None), "headers", {}).get("content-type", "unknown")
            raise GenerationError(
                f"the server at {self.base_url} sent no chat-completions stream (content type {kind}): "
                "is RAG_LLM_BASE_URL an OpenAI-compatible endpoint (usually ending in /v1)?"
            )
        if finish is None:
            raise GenerationError(
                f"the answer from {model} at {self.base_url} was cut off: the stream ended before the model finished"
            )
        if finish == "length":
            raise GenerationError(f"the answer from {model} was cut off at the limit of {max_tokens} tokens")
        if finish == "content_filter":
            raise GenerationError(f"{model} withheld its answer (content filter)")
        if not received:
            raise GenerationError(f"{model} at {self.base_url} sent an empty answer")

    def complete(self, messages: list[dict[str, str]], max_tokens: int = MAX_REWRITE_TOKENS) -> str:
        """The whole reply in one JSON response (no streaming)."""
        model = self.resolve_model()
        try:
            response = self.client.chat.completions.create(
                model=model, messages=messages, temperature=0.0, max_tokens=max_tokens
            )
            text = response.choices[0].message.content if response.choices else None
        except Exception as exc:
            raise self._error(exc) from exc
        if not text or not text.strip():
            raise GenerationError(f"{model} at {self.base_url} sent an empty answer")
        return str(text)

    def _stream_error(self, exc: Exception, model: str) -> GenerationError:
        """A failure after the answer started: a stall or a dropped connection is a cut-off answer."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return GenerationError(
                f"the answer from {model} stalled: nothing arrived within {self.timeout:g} s "
                "(raise RAG_LLM_TIMEOUT if the server is slow)"
            )
        if isinstance(exc, openai.APIConnectionError):
            return GenerationError(
                f"the answer from {model} at {self.base_url} was cut off: the connection closed in the middle"
            )
        return self._error(exc)

    def _error(self, exc: Exception) -> GenerationError:
        """One readable line for a failure of the openai client."""
        if isinstance(exc, GenerationError):
            return exc
        import openai

        url, model = self.base_url, self.model or "(first listed)"
        if isinstance(exc, openai.APITimeoutError):
            return GenerationError(
                f"the language model server at {url} did not answer within {self.timeout:g} s: "
                "it may be loading the model or overloaded; raise RAG_LLM_TIMEOUT or try again"
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            why = f" ({type(cause).__name__}: {cause})" if cause else ""
            return GenerationError(
                f"cannot reach the language model server at {url}{why}: is it running? check RAG_LLM_BASE_URL"
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            message = _server_message(exc, self.api_key)
            if status in (401, 403):
                return GenerationError(
                    f"the language model server at {url} refused the API key (HTTP {status}: {message}): "
                    "set RAG_LLM_API_KEY"
                )
            if 300 <= status < 400:
                return GenerationError(
                    f"the language model server at {url} redirects elsewhere (HTTP {status}); redirects are not "
                    "followed, so prompts never leave for an address you did not set: set RAG_LLM_BASE_URL to "
                    "the address it redirects to"
                )
            if status == 404 and "model" in message.lower():
                return GenerationError(
                    f"the language model server at {url} has no model {model!r} ({message}): "
                    "set RAG_LLM_MODEL to one it serves (for Ollama, 'ollama pull' it first)"
                )
            if status == 404:
                return GenerationError(
                    f"the server at {url} has no chat completions endpoint (HTTP 404: {message}): "
                    "RAG_LLM_BASE_URL usually ends in /v1"
                )
            return GenerationError(f"the language model server at {url} answered HTTP {status}: {message}")
        if isinstance(exc, openai.APIError):
            return GenerationError(
                f"the language model server at {url} reported an error: {_summary(exc.message, self.api_key)}"
            )
        return GenerationError(f"unexpected reply from the language model server at {url}: {type(exc).__name__}: {exc}")


def _server_message(exc: Any, api_key: str = "") -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return _summary(str(message), api_key)
    return _summary(str(getattr(exc, "message", exc)), api_key)


#: Secrets a server may echo in an error (its request headers, a stack trace with settings): never shown.
_SECRETS = re.compile(
    r"(?i)\b(?:proxy-)?authorization\b\W{0,3}(?:(?:bearer|basic|token)\s+)?\S+"  # the header with its value
    r"|(?:bearer|basic)\s+\S+"
    r"|(?<=://)[^\s/@]+@"  # user and password in a URL
    r"|[?&;][^\s=&;#]*(?:key|token|secret|password|passwd|pwd|sig|signature|auth|credential)[^\s=&;#]*=[^\s&;#]*"
    r"|(?<![a-z0-9])(?:api[-_ ]?key|x-api-key|password|passwd|secret|token|cookie)\b\W{0,3}\S+"  # access_token=
    r"|\bsk-[\w-]{6,}"
)
#: Longest server text passed on (a one-line summary, never a response body).
SUMMARY_CHARS = 120


def _summary(text: str, api_key: str = "") -> str:
    """A server's error text as one short line with keys, tokens and passwords taken out."""
    line = next((part for part in str(text).splitlines() if part.strip()), "")
    if api_key:
        line = line.replace(api_key, "[key]")
    line = _SECRETS.sub("[redacted]", " ".join(line.split()))
    return line if len(line) <= SUMMARY_CHARS else line[: SUMMARY_CHARS - 1].rstrip() + "…"
