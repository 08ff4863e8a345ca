"""rag: answer questions from your documents, with citations you can check.

    >>> from rag import ask
    >>> print(ask("Who invited Prime Minister Takaichi to visit the United States?"))

The package imports lightly: the model, FAISS and the web UI load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ask": "assistant",
    "Assistant": "assistant",
    "IndexReport": "types",
    "RayIndexer": "distributed",
    "Answer": "types",
    "Citation": "types",
    "Passage": "types",
    "Claim": "types",
    "ChatSession": "conversation",
    "Generator": "generation",
    "LLMClient": "generation",
    "GenerationError": "errors",
    "answer_options": "generation",
    "Settings": "config",
    "Document": "documents",
    "load": "documents",
    "describe_extraction": "pdf",
    "escape_html": "documents",
    "SUPPORTED_SUFFIXES": "documents",
    "DocumentRecord": "stores",
    "VectorStore": "stores",
    "FaissStore": "stores",
    "RagError": "errors",
    "ConfigError": "errors",
    "DocumentError": "errors",
    "IndexNotFoundError": "errors",
    "IndexEmptyError": "errors",
    "IndexWriteError": "errors",
    "IndexMismatchError": "errors",
    "IndexCorruptError": "errors",
    "IndexLockedError": "errors",
    "InputError": "errors",
    "IndexJobError": "errors",
    "IndexWorker": "index_worker",
}

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Answer",
    "Assistant",
    "ChatSession",
    "Citation",
    "Claim",
    "ConfigError",
    "Document",
    "DocumentError",
    "DocumentRecord",
    "FaissStore",
    "GenerationError",
    "Generator",
    "IndexCorruptError",
    "IndexEmptyError",
    "IndexJobError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexReport",
    "IndexWorker",
    "IndexWriteError",
    "InputError",
    "LLMClient",
    "Passage",
    "RagError",
    "RayIndexer",
    "Settings",
    "VectorStore",
    "answer_options",
    "ask",
    "describe_extraction",
    "escape_html",
    "load",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .assistant import Assistant, ask
    from .config import Settings
    from .conversation import ChatSession
    from .distributed import RayIndexer
    from .documents import SUPPORTED_SUFFIXES, Document, escape_html, load
    from .errors import (
        ConfigError,
        DocumentError,
        GenerationError,
        IndexCorruptError,
        IndexEmptyError,
        IndexJobError,
        IndexLockedError,
        IndexMismatchError,
        IndexNotFoundError,
        IndexWriteError,
        InputError,
        RagError,
    )
    from .generation import Generator, LLMClient, answer_options
    from .index_worker import IndexWorker
    from .pdf import describe_extraction
    from .stores import DocumentRecord, FaissStore, VectorStore
    from .types import Answer, Citation, Claim, IndexReport, Passage
