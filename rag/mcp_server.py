"""A Model Context Protocol server over one index, with the official ``mcp`` SDK: ``rag mcp`` (stdio, for
desktop and IDE assistants) and ``rag mcp --http PORT`` (streamable HTTP at ``/mcp``, on 127.0.0.1 unless
told otherwise).

Tools: ``ask`` (a cited answer), ``search`` (passages with their source, page, span and score) and
``list_sources``; with ``allow_write`` also ``index`` and ``remove``. Every indexed document is a
resource ``rag://documents/<source, URL-encoded>`` whose content is its extracted text (the text that
citation offsets point into).

Imported only by ``rag mcp``: ``import rag`` does not load the SDK.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import Resource, ToolAnnotations
from pydantic import Field

import rag
from rag import Assistant, DocumentError, IndexNotFoundError, RagError

from .mcp_models import (
    AskResult,
    CitationOut,
    IndexResult,
    PassageOut,
    RemoveResult,
    SearchResult,
    SourceOut,
    SourcesResult,
)

log = logging.getLogger("rag.mcp")

URI_PREFIX = "rag://documents/"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

INSTRUCTIONS = """\
This server answers questions from the user's own documents (an index of their files) and quotes them.
Use `ask` for a direct answer with numbered citations, `search` to read the most relevant passages
yourself, and `list_sources` to see which documents exist. Each document's full extracted text is also
available as a resource (rag://documents/<name>). Cite the source names and passages you rely on; if a
tool says the documents do not contain an answer, say so rather than guessing."""

ASK = """\
Answer a question from the user's indexed documents, with citations.

Returns `answer` (text with [n] markers), `answered` (false when the documents do not contain an
answer: then say so, do not guess), and `citations`: for each [n], the document `source`, the exact
quoted `text`, its character span `start`-`end` in the document's extracted text, `page` (PDF page,
or null) and a relevance `score`. Ask one standalone question per call (write names out instead of
"she" or "it": this tool does not see the conversation)."""

SEARCH = """\
Find the passages of the user's indexed documents most relevant to a query, best first.

Use it to read the evidence yourself (e.g. to compare documents or answer something `ask` refused).
Each passage has `source` (document name), `text`, `start`/`end` (character span in the document's
extracted text), `page` (PDF page, or null), `section` (heading, may be empty) and `score` (0 to 1:
how well the passage matches the query; the list is sorted by it, best first)."""

LIST_SOURCES = """\
List the documents in the index: `source` (name), `format`, `chunks` (passages), `size` (bytes of the
file) and `uri` (the resource holding its full extracted text)."""

INDEX = """\
Add or update files or folders (paths on the server's machine) in the index: .txt .md .html .pdf .docx.
Unchanged files are skipped. Returns what was added, updated, removed, failed (with reasons) or skipped."""

REMOVE = """\
Remove one document from the index by its `source` name (as `list_sources` shows it). Returns whether
it was in the index."""

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def document_uri(source: str) -> str:
    """The resource URI of an indexed document."""
    return URI_PREFIX + quote(source, safe="")


def _tool_error(exc: RagError) -> ToolError:
    if isinstance(exc, IndexNotFoundError):
        return ToolError("no documents are indexed yet: the user needs to index some first ('rag index PATH')")
    return ToolError(str(exc))


class RagMCP(MCPServer):
    """The MCP server; the resource list is read from the index on every request (documents come and go)."""

    def __init__(self, assistant: Assistant, allow_write: bool = False) -> None:
        super().__init__(
            "rag", title="rag: your documents", instructions=INSTRUCTIONS, version=rag.__version__, log_level="WARNING"
        )
        self.assistant = assistant
        self.allow_write = allow_write
        self.add_tool(self._ask, name="ask", title="Ask the documents", description=ASK, annotations=_READ_ONLY)
        self.add_tool(
            self._search, name="search", title="Search the documents", description=SEARCH, annotations=_READ_ONLY
        )
        self.add_tool(
            self._list_sources,
            name="list_sources",
            title="List the documents",
            description=LIST_SOURCES,
            annotations=_READ_ONLY,
        )
        if allow_write:
            writes = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
            self.add_tool(self._index, name="index", title="Index files", description=INDEX, annotations=writes)
            removes = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
            self.add_tool(
                self._remove, name="remove", title="Remove a document", description=REMOVE, annotations=removes
            )
        self.resource(
            URI_PREFIX + "{source}",
            name="document",
            title="An indexed document",
            description="The extracted text of an indexed document (citation offsets point into it).",
            mime_type="text/plain",
        )(self._document)

    # ------------------------------------------------------------ tools

    def _ask(
        self,
        question: Annotated[str, Field(description="The question, standalone (names written out).")],
        k: Annotated[int, Field(ge=1, le=100, description="Passages to retrieve (default 5).")] = 5,
    ) -> AskResult:
        try:
            answer = self.assistant.ask(question, k=k)
        except RagError as exc:
            raise _tool_error(exc) from exc
        citations = [
            CitationOut(
                n=c.n,
                source=c.source,
                start=c.start,
                end=c.end,
                text=c.text,
                page=c.page,
                score=round(float(c.score), 4),
                section=c.section,
            )
            for c in answer.citations
        ]
        return AskResult(
            question=answer.question,
            answer=answer.text,
            answered=answer.answered,
            citations=citations,
            note=answer.note,
            generator=answer.generator,
        )

    def _search(
        self,
        query: Annotated[str, Field(description="What to look for: a question or key words.")],
        k: Annotated[int, Field(ge=1, le=100, description="How many passages (default 5).")] = 5,
    ) -> SearchResult:
        query = " ".join(query.split())
        if not query:
            raise ToolError("the query is empty: give a question or key words")
        try:
            self.assistant.stats()  # a clear error when there is no index
            passages = self.assistant.search(query, k)  # best first by score, as the description says
        except RagError as exc:
            raise _tool_error(exc) from exc
        out = [
            PassageOut(
                source=p.source,
                text=p.text,
                start=p.start,
                end=p.end,
                page=p.page,
                section=p.section,
                score=round(float(p.score), 4),
            )
            for p in passages
        ]
        return SearchResult(query=query, passages=out)

    def _list_sources(self) -> SourcesResult:
        try:
            records = self.assistant.sources()
        except RagError as exc:
            raise _tool_error(exc) from exc
        documents = [
            SourceOut(source=r.source, format=r.format, chunks=r.chunks, size=r.size, uri=document_uri(r.source))
            for r in records
        ]
        return SourcesResult(documents=documents)

    def _index(
        self,
        paths: Annotated[list[str], Field(min_length=1, description="Files or folders on the server's machine.")],
    ) -> IndexResult:
        missing = [p for p in paths if not Path(p).expanduser().exists()]
        if missing:
            raise ToolError(f"no such file or folder: {', '.join(missing)}")
        try:
            report = self.assistant.index(paths)
        except RagError as exc:
            raise _tool_error(exc) from exc
        return IndexResult(
            summary=report.summary(),
            added=report.added,
            updated=report.updated,
            removed=report.removed,
            failed=[{"path": p, "reason": r} for p, r in report.failed],
            skipped=[{"path": p, "reason": r} for p, r in report.skipped],
        )

    def _remove(
        self, source: Annotated[str, Field(description="The document's name, as list_sources shows it.")]
    ) -> RemoveResult:
        try:
            return RemoveResult(source=source, removed=self.assistant.remove(source))
        except RagError as exc:
            raise _tool_error(exc) from exc

    # ------------------------------------------------------------ resources

    async def list_resources(self) -> list[Resource]:
        """Every indexed document (none when there is no index yet)."""
        import anyio.to_thread

        try:
            records = await anyio.to_thread.run_sync(self.assistant.sources)
        except RagError:
            return []
        return [
            Resource(
                uri=document_uri(r.source),
                name=r.source,
                title=r.source,
                description=f"Extracted text of {r.source} ({r.format}, {r.chunks} passages)",
                mime_type="text/plain",
            )
            for r in records
        ]

    def _document(self, source: str) -> str:
        return document_text(self.assistant, source)


def document_text(assistant: Assistant, source: str) -> str:
    """The extracted text of an indexed document, read again from its file.

    Raises :class:`ResourceError` when it is not indexed, or its file is gone or changed since it was
    indexed (the citation offsets would no longer match: index it again).
    """
    try:
        record = next((r for r in assistant.sources() if r.source == source), None)
    except RagError as exc:
        raise ResourceError(str(_tool_error(exc))) from exc
    if record is None:
        raise ResourceError(f"'{source}' is not in the index: list_sources shows what is")
    path = Path(record.path)
    try:
        stat = path.stat()
    except OSError:
        raise ResourceError(f"the file of '{source}' is no longer at {path}: index it again") from None
    if stat.st_size != record.size or stat.st_mtime_ns != record.mtime_ns:
        raise ResourceError(f"'{source}' changed since it was indexed: index it again to read it")
    try:
        return rag.load(path, source, max_bytes=int(assistant.settings.max_file_mb * 1e6)).text
    except DocumentError as exc:
        raise ResourceError(f"'{source}' cannot be read: {exc}") from exc


def run_stdio(assistant: Assistant, allow_write: bool = False) -> None:
    """Serve over stdin/stdout until the client closes them."""
    RagMCP(assistant, allow_write).run("stdio")


def http_app(assistant: Assistant, allow_write: bool = False, api_key: str = "", host: str = "127.0.0.1") -> Any:
    """The streamable-HTTP ASGI app (endpoint ``/mcp``); with ``api_key``, requests need ``Bearer <api_key>``."""
    app = RagMCP(assistant, allow_write).streamable_http_app(host=host)
    return _BearerGuard(app, api_key) if api_key else app


class _BearerGuard:
    """ASGI wrapper: 401 unless ``Authorization: Bearer <key>``."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            scheme, _, value = headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(value.strip(), self.key):
                body = b'{"error": "send the server\'s RAG_API_KEY as Authorization: Bearer <key>"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def run_http(
    assistant: Assistant,
    port: int,
    host: str = "127.0.0.1",
    allow_write: bool = False,
    api_key: str = "",
    announce: Any = None,
) -> None:
    """Serve streamable HTTP on ``host:port`` until interrupted; beyond loopback, ``api_key`` is required."""
    import uvicorn

    if host not in LOOPBACK and not api_key:
        raise rag.ConfigError(
            f"--host {host} makes the MCP server reachable beyond this machine: set RAG_API_KEY so that clients "
            "must send it (Authorization: Bearer ...), or leave --host at 127.0.0.1"
        )
    import socket

    try:  # a clear error now rather than uvicorn's log line and exit
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise rag.InputError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): pass another --http port or --host"
        ) from None
    app = http_app(assistant, allow_write, api_key, host)
    if announce is not None:
        announce(f"rag: MCP server (streamable HTTP) at http://{host}:{port}/mcp; Ctrl-C to stop")
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = ["RagMCP", "document_text", "document_uri", "http_app", "run_http", "run_stdio"]
