"""A one-shot question against a loop of questions, neither calling ``warm()``: the cold start of
``rag ask`` must stay short, and a loop must reach the torch encoder by itself.

Run: .venv/bin/python bench/ask_loop.py [--questions N]
Indexes squad-dev's articles into a temporary folder once, then, each in a fresh process: ``rag ask``
five times (median wall seconds), and ``Assistant.ask`` over N questions, once as it is now (the bulk
model loads in the background from the second question) and once with that switched off (every question
on the NumPy encoder, as before). Prints per-question latency and which encoder answered the last one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from proc import measured

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad-dev"

LOOP = r"""
import json, sys, time
import rag.embedding
if sys.argv[3] == "off":
    rag.embedding.WARM_AFTER_QUESTIONS = 10**9
from rag import Assistant
a = Assistant(index_dir=sys.argv[1])
questions = json.load(open(sys.argv[2]))
began = time.perf_counter()
latency, switched = [], None
for n, q in enumerate(questions, 1):
    t = time.perf_counter()
    a.ask(q)
    latency.append(1000 * (time.perf_counter() - t))
    if switched is None and type(a.embedder.question_encoder).__name__ != "NumpyBert":
        switched = n
print(json.dumps({"latency": latency, "switched": switched, "seconds": time.perf_counter() - began,
                  "encoder": type(a.embedder.question_encoder).__name__}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=300)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    work = Path(tempfile.mkdtemp(prefix="rag-ask-loop-"))
    try:
        index = work / "index"
        subprocess.run(
            [sys.executable, "-m", "rag.cli", "index", str(SQUAD / "docs"), "--index", str(index), "--quiet"],
            check=True,
            env=env,
            capture_output=True,
        )
        lines = (SQUAD / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        questions = [json.loads(line)["question"] for line in lines if line.strip()]
        step = max(1, len(questions) // args.questions)
        chosen = questions[::step][: args.questions]
        (work / "q.json").write_text(json.dumps(chosen), encoding="utf-8")

        colds = [
            measured([sys.executable, "-m", "rag.cli", "ask", chosen[i], "--index", str(index)], env)[0]
            for i in range(5)
        ]
        print(f"cold start: 'rag ask' in a fresh process   median {statistics.median(colds):.2f} s of 5")
        for mode in ("auto", "off"):
            out = subprocess.run(
                [sys.executable, "-c", LOOP, str(index), str(work / "q.json"), mode],
                check=True,
                env=env,
                capture_output=True,
                text=True,
            ).stdout
            result = json.loads(out)
            lat = result["latency"]
            tail = sorted(lat[len(lat) // 2 :])
            label = "background load (now)" if mode == "auto" else "NumPy throughout (before)"
            print(
                f"loop of {len(lat)} Assistant.ask, {label}: all {result['seconds']:.1f} s; "
                f"questions 2-10 p50 {statistics.median(lat[1:10]):.1f} ms; "
                f"second half p50 {tail[len(tail) // 2]:.1f} ms, p95 {tail[int(len(tail) * 0.95)]:.1f} ms; "
                f"torch from question {result['switched']}; last on {result['encoder']}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
