"""Errors raised by the assistant: each says what is wrong and what to do."""

from __future__ import annotations


class RagError(Exception):
    """Base class for every error meant for a person: the message is one actionable line."""


class ConfigError(RagError, ValueError):
    """A setting has a bad value."""


class IndexNotFoundError(RagError):
    """The index directory does not exist or holds no index."""


class IndexEmptyError(IndexNotFoundError):
    """The index exists but holds no documents, so there is nothing to answer from."""


class IndexWriteError(RagError):
    """A change could not be written (full disk, read-only folder); the index keeps its last state."""


class IndexMismatchError(RagError):
    """The index was built with another model or chunking than the current settings."""


class IndexCorruptError(RagError):
    """The index directory exists but cannot be read."""


class IndexLockedError(RagError):
    """Another process is writing to the index and the lock timeout ran out."""


class DocumentError(RagError):
    """A file cannot be read as a document (the reason is in the message)."""


class InputError(RagError, ValueError):
    """A question or argument given by the user is not usable."""


class IndexJobError(RagError):
    """An indexing job in a worker process was stopped (memory or time limit) or died."""


class GenerationError(RagError):
    """The language model server could not give an answer; the message says why and what to do."""
