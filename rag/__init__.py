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
    "SUPPORTED_SUFFIXES": "documents",
    "DocumentRecord": "stores",
    "VectorStore": "stores",
    "FaissStore": "stores",
    "Changes": "stores",
    "NewChunk": "stores",
    "open_store": "stores",
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
    "clean_question": "text",
    "MAX_QUESTION_CHARS": "text",
}

#: The public API: the names of the lazy table above (one list, kept in step by tests/test_architecture.py).
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # names re-exported for type checkers ("X as X"): the same as the lazy table
    from .assistant import Assistant as Assistant
    from .assistant import ask as ask
    from .config import Settings as Settings
    from .conversation import ChatSession as ChatSession
    from .distributed import RayIndexer as RayIndexer
    from .documents import SUPPORTED_SUFFIXES as SUPPORTED_SUFFIXES
    from .documents import Document as Document
    from .documents import load as load
    from .errors import (
        ConfigError as ConfigError,
    )
    from .errors import (
        DocumentError as DocumentError,
    )
    from .errors import (
        GenerationError as GenerationError,
    )
    from .errors import (
        IndexCorruptError as IndexCorruptError,
    )
    from .errors import (
        IndexEmptyError as IndexEmptyError,
    )
    from .errors import (
        IndexJobError as IndexJobError,
    )
    from .errors import (
        IndexLockedError as IndexLockedError,
    )
    from .errors import (
        IndexMismatchError as IndexMismatchError,
    )
    from .errors import (
        IndexNotFoundError as IndexNotFoundError,
    )
    from .errors import (
        IndexWriteError as IndexWriteError,
    )
    from .errors import (
        InputError as InputError,
    )
    from .errors import (
        RagError as RagError,
    )
    from .generation import Generator as Generator
    from .generation import LLMClient as LLMClient
    from .generation import answer_options as answer_options
    from .index_worker import IndexWorker as IndexWorker
    from .pdf import describe_extraction as describe_extraction
    from .stores import (
        Changes as Changes,
    )
    from .stores import (
        DocumentRecord as DocumentRecord,
    )
    from .stores import (
        FaissStore as FaissStore,
    )
    from .stores import (
        NewChunk as NewChunk,
    )
    from .stores import (
        VectorStore as VectorStore,
    )
    from .stores import (
        open_store as open_store,
    )
    from .text import MAX_QUESTION_CHARS as MAX_QUESTION_CHARS
    from .text import clean_question as clean_question
    from .types import (
        Answer as Answer,
    )
    from .types import (
        Citation as Citation,
    )
    from .types import (
        Claim as Claim,
    )
    from .types import (
        IndexReport as IndexReport,
    )
    from .types import (
        Passage as Passage,
    )
