"""The structured results of the MCP tools in :mod:`rag.mcp_server` (their output schemas)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CitationOut(BaseModel):
    """A cited passage: [n] in the answer points at it."""

    n: int
    source: str
    start: int
    end: int
    text: str
    page: int | None = None
    score: float
    section: str = ""


class AskResult(BaseModel):
    """The answer to one question."""

    question: str
    answer: str = Field(description="The answer text with [n] citation markers.")
    answered: bool = Field(description="False when the documents do not contain an answer.")
    citations: list[CitationOut]
    note: str | None = None
    generator: str = Field(description="'extractive' (quoted sentences) or 'llm' (generated, citations checked).")


class PassageOut(BaseModel):
    """A retrieved passage."""

    source: str
    text: str
    start: int
    end: int
    page: int | None = None
    section: str = ""
    score: float


class SearchResult(BaseModel):
    """Passages for a query, best first."""

    query: str
    passages: list[PassageOut]


class SourceOut(BaseModel):
    """An indexed document."""

    source: str
    format: str
    chunks: int
    size: int
    uri: str


class SourcesResult(BaseModel):
    """The indexed documents."""

    documents: list[SourceOut]


class IndexResult(BaseModel):
    """What an index run did."""

    summary: str
    added: list[str]
    updated: list[str]
    removed: list[str]
    failed: list[dict[str, str]]
    skipped: list[dict[str, str]]


class RemoveResult(BaseModel):
    """Whether the document was removed."""

    source: str
    removed: bool
