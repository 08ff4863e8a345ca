"""The OpenAI chat-completions wire format of the API in :mod:`ui.openai_api`: requests read and checked,
answers written as completions or stream chunks, errors in OpenAI's shape.

Beyond OpenAI's fields, every completion carries ``rag``, and so does the chunk of a stream whose
``finish_reason`` is set (the last one, unless ``stream_options.include_usage`` asks for the usage
chunk, which then follows it)::

    "rag": {
      "citations": [{"n": 1, "source": "notes.txt", "start": 120, "end": 480, "text": "...",
                     "page": null, "score": 0.71, "section": "", "supported": true}, ...],
      "passages": [...],             # every passage retrieved (same fields, without n/supported)
      "answered": true,              # false: the documents do not answer (the text says so)
      "generator": "extractive",     # or "llm"
      "rewritten_question": null,    # what was searched when a follow-up was rewritten
      "note": null,                  # e.g. why a language model's answer was not used
      "confidence": 0.83
    }

``start``/``end`` are character offsets into the document's extracted text (``text`` is that span);
``page`` is the PDF page when known, else null.

``usage`` counts tokens with the embedding model's tokenizer (its word pieces): the prompt is the
question and the earlier turns sent with it, the completion is the text sent back.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rag import Answer, ConfigError, IndexNotFoundError, InputError, RagError

#: Roles a client may send; system/developer/tool messages are accepted and not used (the assistant
#: answers only from the documents, with its own instructions).
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
#: Start of the text-only sources list appended when the sources footer is on (stripped from history).
FOOTER_START = "\n\nSources:\n"


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "code", "param"}}``."""

    def __init__(self, status: int, message: str, code: str, kind: str = "", param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.kind = kind or _KINDS.get(status, "api_error")
        self.param = param

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return {"error": {"message": self.message, "type": self.kind, "code": self.code, "param": self.param}}


_KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


def bad_request(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    """A 400 error."""
    return ApiError(400, message, code, param=param)


@dataclass
class ChatRequest:
    """A checked chat-completions request."""

    model: str
    question: str
    #: Earlier (user question, assistant answer) pairs, oldest first.
    history: list[tuple[str, str]] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    k: int | None = None
    sources_footer: bool | None = None

    def prompt(self) -> str:
        """The conversation the answer was asked for: earlier turns, then the question (what ``usage`` counts)."""
        return "\n".join([*(f"{q}\n{a}" for q, a in self.history), self.question])


def parse_request(body: Any) -> ChatRequest:
    """Read a chat-completions body; raises :class:`ApiError` (400) naming the bad field."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("'model' is required: GET /v1/models lists the names (e.g. 'rag')", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of {role, content} objects", "messages")
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise bad_request(
                f"messages[{i}] must be an object with a role of {', '.join(sorted(ROLES))}", f"messages[{i}]"
            )
        if message["role"] in ("user", "assistant"):
            turns.append((message["role"], _text(message.get("content"), i)))
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise bad_request("the last user/assistant message must be the user's question, and not empty", "messages")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in turns[:-1]:
        if role == "user":
            pending = text if text.strip() else pending
        elif pending is not None:
            history.append((pending, strip_footer(text)))
            pending = None
    if body.get("n") not in (None, 1):
        raise bad_request("only n=1 is supported", "n")
    stream = _flag(body, "stream", False)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise bad_request(f"'max_tokens' must be a whole number >= 1, got {max_tokens!r}", "max_tokens")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise bad_request(f"'temperature' must be a number from 0 to 2, got {temperature!r}", "temperature")
    k = body.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100):
        raise bad_request(f"'k' (passages to retrieve) must be from 1 to 100, got {k!r}", "k")
    footer = body.get("sources_footer")
    if footer is not None and not isinstance(footer, bool):
        raise bad_request("'sources_footer' must be true or false", "sources_footer")
    return ChatRequest(
        model.strip(),
        turns[-1][1],
        history,
        stream,
        include_usage,
        max_tokens,
        None if temperature is None else float(temperature),
        k,
        footer,
    )


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"'{name}' must be true or false", name)
    return value


def _text(content: Any, i: int) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", "input_text"):
                raise bad_request(f"messages[{i}]: only text content is supported", f"messages[{i}].content")
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request(f"messages[{i}]: a text part needs a 'text' string", f"messages[{i}].content")
            parts.append(text)
        return "\n".join(parts)
    raise bad_request(f"messages[{i}].content must be a string or a list of text parts", f"messages[{i}].content")


def strip_footer(text: str) -> str:
    """An earlier answer without the sources list this API may have appended to it."""
    cut = text.find(FOOTER_START)
    return text[:cut] if cut >= 0 else text


# ------------------------------------------------------------------ answers


def citation_dict(citation: Any) -> dict[str, Any]:
    """One citation: ``n, source, start, end, text, page, score`` (+ ``section``, ``supported``)."""
    return {
        "n": citation.n,
        "source": citation.source,
        "start": citation.start,
        "end": citation.end,
        "text": citation.text,
        "page": citation.page,
        "score": round(float(citation.score), 4),
        "section": citation.section,
        "supported": citation.supported,
    }


def passage_dict(passage: Any) -> dict[str, Any]:
    """One retrieved passage: ``source, start, end, text, page, score, section``."""
    return {
        "source": passage.source,
        "start": passage.start,
        "end": passage.end,
        "text": passage.text,
        "page": passage.page,
        "score": round(float(passage.score), 4),
        "section": passage.section,
    }


def rag_field(answer: Answer) -> dict[str, Any]:
    """The ``rag`` extra field of a completion."""
    return {
        "citations": [citation_dict(c) for c in answer.citations],
        "passages": [passage_dict(p) for p in answer.passages],
        "answered": answer.answered,
        "generator": answer.generator,
        "rewritten_question": answer.rewritten_question,
        "note": answer.note,
        "confidence": None if answer.confidence is None else round(float(answer.confidence), 4),
    }


def footer(answer: Answer) -> str:
    """The text-only sources list (for clients that show only the message text), or '' when none."""
    lines = []
    for c in answer.citations:
        where = "".join([f", page {c.page}" if c.page else "", f", {c.section}" if c.section else ""])
        lines.append(f"[{c.n}] {c.source}{where} (characters {c.start}-{c.end})")
    if not lines:
        return ""
    note = f"\nNote: {answer.note}" if answer.note else ""
    return FOOTER_START + "\n".join(lines) + note


def new_id() -> str:
    """A completion id."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion(answer: Answer, model: str, with_footer: bool, usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A whole ``chat.completion`` object for ``answer``; ``usage`` from :func:`count_usage` of its text."""
    text = content(answer, with_footer)
    data: dict[str, Any] = {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "rag": rag_field(answer),
    }
    if usage is not None:
        data["usage"] = usage
    return data


def content(answer: Answer, with_footer: bool) -> str:
    """The text a non-streamed completion sends for ``answer``."""
    return answer.text + (footer(answer) if with_footer else "")


def chunk(ident: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk``."""
    return {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def count_usage(count: Callable[[str], int], prompt: str, text: str) -> dict[str, int]:
    """OpenAI's ``usage`` fields: ``count`` (a tokenizer's token count) of the prompt and of the answer's text."""
    asked, answered = count(prompt), count(text)
    return {"prompt_tokens": asked, "completion_tokens": answered, "total_tokens": asked + answered}


#: Deepest nesting of arrays and objects read in a request (a chat request needs 4).
MAX_JSON_DEPTH = 32
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(body: bytes, limit: int) -> int:
    """How deep the arrays and objects of JSON text ``body`` nest, counted up to ``limit + 1`` (brackets
    inside strings do not count); linear in the body, and cheap when it has few brackets."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return 0
    depth = 0
    for token in _JSON_TOKENS.finditer(body):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return depth
        elif char in (b"]", b"}"):
            depth -= 1
    return max(depth, 0)


def api_error(exc: BaseException) -> ApiError:
    """The OpenAI-shaped error for a failure while answering."""
    if isinstance(exc, IndexNotFoundError):
        return ApiError(
            503, "no documents are indexed yet: add some in the web chat or run 'rag index PATH'", "no_index"
        )
    if isinstance(exc, InputError):
        return ApiError(400, str(exc), "invalid_question", param="messages")
    if isinstance(exc, RagError):
        return ApiError(503, str(exc), "index_unavailable")
    return ApiError(
        500, f"unexpected error ({type(exc).__name__}); see the server log", "internal_error", "server_error"
    )


def unknown_model(name: str, names: list[str]) -> ApiError:
    """404 for a model this server does not have."""
    return ApiError(
        404, f"the model {name!r} does not exist here; use one of: {', '.join(names)}", "model_not_found", param="model"
    )


def error_response(exc: ApiError) -> Any:
    """The JSON response for ``exc`` (with ``Retry-After`` or ``WWW-Authenticate`` where it needs one)."""
    from fastapi.responses import JSONResponse

    headers = {"Retry-After": "1"} if exc.status == 429 else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="rag"'}
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def env_bool(environ: Mapping[str, str], name: str) -> bool:
    """A 1/0 (true/false, yes/no, on/off) setting ``name`` of ``environ``; unset is false."""
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be 1 or 0 (true/false), got {raw!r}")


def env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    """A whole-number setting ``name`` of ``environ``, ``default`` when unset."""
    raw = environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


__all__ = [
    "FOOTER_START",
    "MAX_JSON_DEPTH",
    "ApiError",
    "ChatRequest",
    "api_error",
    "bad_request",
    "chunk",
    "citation_dict",
    "completion",
    "content",
    "count_usage",
    "env_bool",
    "env_int",
    "error_response",
    "footer",
    "json_depth",
    "parse_request",
    "rag_field",
    "strip_footer",
    "unknown_model",
]
