"""`rag mcp` driven by the official `mcp` SDK client: over stdio (the server as a subprocess, as desktop and
IDE clients run it) and over streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, SEED_QUESTION, SEEDS, write
from .fake_openai import free_port

mcp = pytest.importorskip("mcp")
from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

SEED_FILE = next(SEEDS.glob("*.txt"))
READ_TOOLS = {"ask", "search", "list_sources"}
LIGHTHOUSE = "The keeper Oskar Lund painted the Hexaplume lighthouse green in 1987."


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag.cli", *args]


async def check_read_side(client: Any, index_text: str) -> dict[str, Any]:
    """The checks both transports share; returns the tools by name."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    for tool in tools.values():
        assert len(tool.description) > 80, f"{tool.name}: a description a model can act on"
        assert tool.input_schema["type"] == "object" and tool.output_schema is not None
    assert tools["ask"].input_schema["required"] == ["question"]
    assert set(tools["ask"].input_schema["properties"]) == {"question", "k"}
    assert set(tools["search"].input_schema["properties"]) == {"query", "k"}
    assert tools["ask"].annotations.read_only_hint is True

    result = await client.call_tool("ask", {"question": SEED_QUESTION})
    assert not result.is_error
    answer = result.structured_content
    assert answer["answered"] is True and "Trump" in answer["answer"] and "[1]" in answer["answer"]
    citation = answer["citations"][0]
    assert citation["source"] == SEED_FILE.name and citation["page"] is None
    assert index_text[citation["start"] : citation["end"]] == citation["text"]
    assert "Trump" in result.content[0].text, "the text content carries the answer too"

    refused = (await client.call_tool("ask", {"question": "What is the capital of Peru?"})).structured_content
    assert refused["answered"] is False and refused["citations"] == []

    found = await client.call_tool("search", {"query": "invitation to visit the United States", "k": 3})
    passages = found.structured_content["passages"]
    assert len(passages) == 3
    assert any("extended an invitation" in p["text"] for p in passages)
    for passage in passages:
        assert index_text[passage["start"] : passage["end"]] == passage["text"]

    bad = await client.call_tool("ask", {"question": "   "})
    assert bad.is_error and "empty" in bad.content[0].text

    sources = (await client.call_tool("list_sources", {})).structured_content["documents"]
    assert [s["source"] for s in sources] == [SEED_FILE.name]

    resources = (await client.list_resources()).resources
    assert [r.name for r in resources] == [SEED_FILE.name]
    assert str(resources[0].uri) == sources[0]["uri"]
    content = (await client.read_resource(resources[0].uri)).contents[0]
    assert content.text == index_text and content.mime_type == "text/plain"
    return tools


def test_stdio(seed_index: Path) -> None:
    from rag import load

    text = load(SEED_FILE).text

    async def session() -> None:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "rag.cli", "mcp", "--index", str(seed_index)], env=_env()
        )
        async with Client(params, read_timeout_seconds=120) as client:
            assert client.server_info is not None and client.server_info.name == "rag"
            tools = await check_read_side(client, text)
            assert set(tools) == READ_TOOLS, "read-only unless --allow-write"
            result = await client.call_tool("remove", {"source": SEED_FILE.name})
            assert result.is_error

    asyncio.run(session())


@pytest.fixture()
def http_server(seed_index: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`rag mcp --http PORT --allow-write` over a private copy of the seed index."""
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    port = free_port()
    process = subprocess.Popen(
        _cli("mcp", "--http", str(port), "--index", str(index), "--allow-write"),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/mcp", tmp_path
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_streamable_http_with_write_tools(http_server: tuple[str, Path]) -> None:
    from rag import load

    url, folder = http_server
    text = load(SEED_FILE).text
    note = write(folder / "new" / "lighthouse.md", f"# Lighthouse\n\n{LIGHTHOUSE}\n")

    async def session() -> None:
        async with Client(url, read_timeout_seconds=120) as client:
            tools = await check_read_side(client, text)
            assert set(tools) == READ_TOOLS | {"index", "remove"}
            assert tools["remove"].annotations.destructive_hint is True

            report = (await client.call_tool("index", {"paths": [str(note.parent)]})).structured_content
            assert report["added"] == ["lighthouse.md"] and report["failed"] == []
            answer = await client.call_tool("ask", {"question": "Who painted the Hexaplume lighthouse?"})
            assert "Oskar Lund" in answer.structured_content["answer"]
            resources = (await client.list_resources()).resources
            assert {r.name for r in resources} == {SEED_FILE.name, "lighthouse.md"}
            # A file changed since it was indexed is reported, not served with offsets that no longer match.
            uri = next(r.uri for r in resources if r.name == "lighthouse.md")
            assert LIGHTHOUSE in (await client.read_resource(uri)).contents[0].text
            note.write_text(f"# Lighthouse\n\n{LIGHTHOUSE} The lamp was replaced in 2001.\n")
            with pytest.raises(MCPError, match=r"'lighthouse\.md' changed since it was indexed: index it again"):
                await client.read_resource(uri)
            report = (await client.call_tool("index", {"paths": [str(note.parent)]})).structured_content
            assert report["updated"] == ["lighthouse.md"], report
            assert "replaced in 2001" in (await client.read_resource(uri)).contents[0].text
            note.rename(note.with_name("moved.md"))
            with pytest.raises(MCPError, match="no longer at"):
                await client.read_resource(uri)
            missing = await client.call_tool("index", {"paths": [str(folder / "nowhere")]})
            assert missing.is_error and "no such file" in missing.content[0].text

            removed = (await client.call_tool("remove", {"source": "lighthouse.md"})).structured_content
            assert removed == {"source": "lighthouse.md", "removed": True}
            again = (await client.call_tool("remove", {"source": "lighthouse.md"})).structured_content
            assert again["removed"] is False
            listed = (await client.call_tool("list_sources", {})).structured_content["documents"]
            assert [s["source"] for s in listed] == [SEED_FILE.name]

    asyncio.run(session())


def test_http_beyond_loopback_needs_a_key(seed_index: Path) -> None:
    env = {k: v for k, v in _env().items() if k != "RAG_API_KEY"}
    result = subprocess.run(
        _cli("mcp", "--http", str(free_port()), "--host", "0.0.0.0", "--index", str(seed_index)),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1
    assert "RAG_API_KEY" in result.stderr and "Traceback" not in result.stderr


def test_http_bearer_guard(seed_index: Path) -> None:
    from starlette.testclient import TestClient

    from rag import Assistant
    from rag.mcp_server import http_app

    app = http_app(Assistant(index_dir=seed_index), api_key="k3y")
    # The host a local client sends (the server refuses other Host headers: DNS rebinding).
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        client_info = {"name": "t", "version": "0"}
        params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client_info}
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
        accept = {"Accept": "application/json, text/event-stream"}
        assert client.post("/mcp", json=hello, headers=accept).status_code == 401
        assert client.post("/mcp", json=hello, headers={**accept, "Authorization": "Bearer nope"}).status_code == 401
        assert client.post("/mcp", json=hello, headers={**accept, "Authorization": "Basic k3y"}).status_code == 401
        allowed = client.post("/mcp", json=hello, headers={**accept, "Authorization": "Bearer k3y"})
        assert allowed.status_code == 200, (allowed.status_code, allowed.text)
        assert allowed.headers.get("mcp-session-id"), "the server opened a session"
        assert '"id":1,"result":' in allowed.text and '"tools"' in allowed.text, allowed.text[:300]


def test_http_port_in_use_is_one_clear_line(seed_index: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            _cli("mcp", "--http", str(port), "--index", str(seed_index)),
            env=_env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_search_is_best_first_by_the_score_it_shows(seed_index: Path) -> None:
    """In memory: `search` lists passages sorted by their 0-1 score, the same score `ask` gives them."""
    from rag import Assistant
    from rag.mcp_server import RagMCP

    assistant = Assistant(index_dir=seed_index)
    query = "invitation to visit the United States"  # fused order and similarity disagree on this one

    async def session() -> list[dict[str, Any]]:
        async with Client(RagMCP(assistant)) as client:
            found = await client.call_tool("search", {"query": query, "k": 5})
            assert not found.is_error
            return list(found.structured_content["passages"])

    passages = asyncio.run(session())
    scores = [p["score"] for p in passages]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True), scores
    assert all(0.0 <= s <= 1.0 for s in scores)
    asked = assistant.ask(query, k=5).passages
    assert [(p.source, p.start, round(p.score, 4)) for p in asked] == [
        (p["source"], p["start"], p["score"]) for p in passages
    ]


def test_a_missing_index_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    result = subprocess.run(
        _cli("mcp", "--index", str(typo)),
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("rag: error: no index at ") and str(typo) in lines[0], lines
    assert "rag index PATH --index" in lines[0]
