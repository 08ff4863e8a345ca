"""Generated answers through any OpenAI-compatible server, with citations checked after generation.

The package: :mod:`.prompts` (the prompts), :mod:`.client` (the HTTP client), :mod:`.citations`
(live renumbering and verification), :mod:`.generator` (the orchestration). The one prompt lives in
:mod:`.prompts` (:data:`SYSTEM_PROMPT`, :func:`build_messages`, :data:`REWRITE_PROMPT`) and
is versioned by :data:`PROMPT_VERSION`, which every generated :class:`~rag.types.Answer` records.

Flow of one answer (:meth:`Generator.stream`):

1. The retrieved passages are numbered and fenced as quoted data, followed by the question.
2. The server's tokens are streamed through :class:`CitationStream`, which renumbers the ``[n]``
   markers live to ``[1]..[m]`` in order of first use and drops markers that point at no passage,
   so the streamed text is already the final text.
3. :func:`verify` splits the answer into claims (sentences with their markers) and checks each
   against the passages it cites (:func:`support`); unsupported claims are flagged, and citations
   carry the passage sentences that back them as highlights.
4. No valid citation, or any failure of the server (unreachable, timeout, HTTP error, unknown
   model, empty or cut-off stream): the extractive answer is returned with a note saying why.

The ``openai`` package is imported only when a request is made, so ``import rag`` stays light.
"""

from __future__ import annotations

from ..errors import GenerationError
from .citations import SUPPORT_THRESHOLD, CitationStream, Verified, key_terms, split_claims, support, verify
from .client import LLMClient, answer_options
from .generator import Generator
from .prompts import (
    MAX_ANSWER_TOKENS,
    MAX_REWRITE_TOKENS,
    PROMPT_VERSION,
    REWRITE_PROMPT,
    SYSTEM_PROMPT,
    build_messages,
    build_rewrite_messages,
)

__all__ = [
    "MAX_ANSWER_TOKENS",
    "MAX_REWRITE_TOKENS",
    "PROMPT_VERSION",
    "REWRITE_PROMPT",
    "SUPPORT_THRESHOLD",
    "SYSTEM_PROMPT",
    "CitationStream",
    "GenerationError",
    "Generator",
    "LLMClient",
    "Verified",
    "answer_options",
    "build_messages",
    "build_rewrite_messages",
    "key_terms",
    "split_claims",
    "support",
    "verify",
]
