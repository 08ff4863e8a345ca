"""Latency of one answer through each way in: Assistant.ask in-process, the OpenAI-compatible API of
`rag serve` (JSON and streamed, with the openai client), the web app's Gradio /ask endpoint, and the MCP
`ask` tool over stdio and over streamable HTTP (with the mcp SDK client).

Run: .venv/bin/python bench/api_latency.py [--repeats 30] [--index DIR]
Everything runs on 127.0.0.1 with the packaged model and extractive answers (no language model), so the
figures are the overhead of each path around the same retrieval. Questions rotate over four seed
questions; the first call of each path is a warm-up and is not counted. Prints p50/p90 in milliseconds
(and time to the first streamed piece) and writes them to bench/results/api_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from proc import SEED_QUESTIONS

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = SEED_QUESTIONS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def summary(samples: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in samples)
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[max(0, int(0.9 * len(ms)) - 1)], 1),
        "n": len(ms),
    }


async def ask_mcp(client: Any, question: str) -> None:
    result = await client.call_tool("ask", {"question": question})
    assert not result.is_error and result.structured_content["citations"]


async def measure(paths: dict[str, Callable[[str], Any]], repeats: int) -> dict[str, list[float]]:
    """Time every path on the same question in turn (a noisy machine slows them all alike); one warm-up each."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for i in range(-1, repeats):
        question = QUESTIONS[max(i, 0) % len(QUESTIONS)]
        for name, call in paths.items():
            began = time.perf_counter()
            result = call(question)
            if asyncio.iscoroutine(result):
                await result
            if i >= 0:
                times[name].append(time.perf_counter() - began)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--index", default=None, help="index directory (default: a fresh one built from seeds/)")
    args = parser.parse_args()

    import openai
    from gradio_client import Client as GradioClient
    from mcp import Client as MCPClient
    from mcp.client.stdio import StdioServerParameters

    from rag import Assistant
    from ui.openai_api import ApiSettings, OpenAIApi
    from ui.server import launch

    index = Path(args.index) if args.index else Path(tempfile.mkdtemp(prefix="rag-api-bench-")) / "index"
    assistant = Assistant(index_dir=index)
    if not assistant.store.exists():
        assistant.index([ROOT / "seeds"])
    api = OpenAIApi(assistant, ApiSettings())
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, stream_delay=0, api=api)
    client = openai.OpenAI(base_url=url.rstrip("/") + "/v1", api_key="x", max_retries=0)
    gradio = GradioClient(url, verbose=False)
    first: list[float] = []

    def completion(q: str) -> None:
        reply = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": q}])
        assert reply.model_extra["rag"]["citations"]

    def stream(q: str) -> None:
        began = time.perf_counter()
        seen = False
        for chunk in client.chat.completions.create(
            model="rag", messages=[{"role": "user", "content": q}], stream=True
        ):
            if not seen and chunk.choices and chunk.choices[0].delta.content:
                first.append(time.perf_counter() - began)
                seen = True

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "rag.cli", "mcp", "--index", str(index)]
    port = free_port()
    server = subprocess.Popen([*command, "--http", str(port)], env=env, stderr=subprocess.DEVNULL)

    async def run() -> dict[str, list[float]]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                await asyncio.sleep(0.3)
        params = StdioServerParameters(command=command[0], args=command[1:], env=env)
        async with (
            MCPClient(params, read_timeout_seconds=120) as over_stdio,
            MCPClient(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=120) as over_http,
        ):
            paths: dict[str, Callable[[str], Any]] = {
                "Assistant.ask (in-process)": assistant.ask,
                "OpenAI API, JSON (openai client)": completion,
                "OpenAI API, streamed (openai client)": stream,
                "Gradio /ask (gradio_client)": lambda q: gradio.predict(q, api_name="/ask"),
                "MCP ask, stdio (mcp client)": lambda q: ask_mcp(over_stdio, q),
                "MCP ask, streamable HTTP (mcp client)": lambda q: ask_mcp(over_http, q),
            }
            return await measure(paths, args.repeats)

    try:
        times = asyncio.run(run())
    finally:
        app.close()
        api.close()
        server.terminate()
        server.wait(timeout=30)
    results: dict[str, Any] = {name: summary(samples) for name, samples in times.items()}
    results["OpenAI API, streamed (openai client)"]["first_piece_p50_ms"] = summary(first[1:])["p50_ms"]

    width = max(len(name) for name in results)
    for name, figures in results.items():
        extra = f"  first piece p50 {figures['first_piece_p50_ms']:.1f}" if "first_piece_p50_ms" in figures else ""
        print(f"{name:<{width}}  p50 {figures['p50_ms']:7.1f} ms  p90 {figures['p90_ms']:7.1f} ms{extra}")
    out = ROOT / "bench" / "results" / "api_latency.json"
    out.write_text(json.dumps({"repeats": args.repeats, "results": results}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
