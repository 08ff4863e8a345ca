"""Load: N concurrent clients asking through the web app's /ask API on loopback for S seconds.

Run: .venv/bin/python bench/load.py [--clients 50] [--seconds 60] [--index DIR]
Starts the real app (Gradio, the packaged model, the default index built from seeds/ if missing) on
127.0.0.1, then every client asks seed questions in a loop with gradio_client. Prints requests, errors,
uncited answers and latency p50/p95/max. Exits non-zero on any error or any answer without a citation.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from proc import SEED_QUESTIONS

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = SEED_QUESTIONS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--index", default=None, help="index directory (default: a fresh one built from seeds/)")
    args = parser.parse_args()

    from gradio_client import Client

    import rag
    from ui.server import launch

    index = Path(args.index) if args.index else Path(tempfile.mkdtemp(prefix="rag-load-")) / "index"
    assistant = rag.Assistant(index_dir=index)
    if not assistant.store.exists():
        assistant.index([ROOT / "seeds"])
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app, url = launch(assistant, "127.0.0.1", port, block=False)
    url = url if url.endswith("/") else url + "/"

    latencies: list[float] = []
    errors: list[str] = []
    uncited = 0
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds
    ready = threading.Barrier(args.clients)

    def client(number: int) -> None:
        nonlocal uncited
        try:
            api = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            with lock:
                errors.append(f"client {number} could not connect: {exc}")
            ready.abort()
            return
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
        i = number
        while time.monotonic() < deadline:
            question = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            began = time.perf_counter()
            try:
                result = api.predict(question, api_name="/ask")
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                if not (isinstance(result, dict) and result.get("answered") and result.get("citations")):
                    uncited += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + 120)
    wall = time.perf_counter() - began
    app.close()

    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return 1000 * latencies[min(n - 1, int(n * p))] if n else 0.0

    print(
        f"{args.clients} clients for {args.seconds:.0f} s on {url}: {n} answers in {wall:.1f} s "
        f"({n / wall:.1f}/s), {len(errors)} errors, {uncited} without a citation"
    )
    print(f"latency p50 {pct(0.5):.0f} ms, p95 {pct(0.95):.0f} ms, max {1000 * (latencies[-1] if n else 0):.0f} ms")
    for error in errors[:5]:
        print("error:", error)
    return 1 if errors or uncited or not n else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
