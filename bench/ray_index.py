"""Indexing squad-dev on Ray against the single-process build: same answers? how fast with 1 and 2 workers?

    .venv/bin/python bench/ray_index.py [N_QUESTIONS] [N_FILES]   # default 200, spread over questions.jsonl;
                                                              # N_FILES: a reduced run on the first N articles
    .venv/bin/python bench/ray_index.py 0                 # build speed only (bench/results/ray_index_speed.json)

Builds the squad-dev index once in one process (``Assistant.index``) and once per worker count on a
local Ray instance (``RayIndexer``, 2 CPUs, the same settings), each from scratch. Prints build times
and chunks per second (the Ray figure includes starting the actors and loading the model in each),
checks the Ray index chunk for chunk against the single-process one, and asks the questions on both:
top-5 overlap (by source and offsets), identical rankings and answers. Writes bench/results/ray_index.json.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from claims import claim, record
from subset import subset_eval_dir

from rag import Assistant
from rag.distributed import RayIndexer, _Embed
from rag.evaluation import load_eval_set, sample

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad-dev"


def key(passage: Any) -> tuple[str, int, int]:
    return (passage.source, passage.start, passage.end)


CPU_LOG = Path(tempfile.gettempdir()) / "rag-ray-bench-cpu"


class TimedEmbed(_Embed):
    """The embedding actor, also writing the CPU seconds it spent embedding (the machine is shared)."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import os

        began = time.process_time()
        out = super().__call__(batch)
        CPU_LOG.mkdir(exist_ok=True)
        with open(CPU_LOG / f"{os.getpid()}.txt", "a") as f:
            f.write(f"{time.process_time() - began}\n")
        return out


class TimedIndexer(RayIndexer):
    embed_actor = TimedEmbed


def cpu_seconds() -> float:
    total = 0.0
    for file in CPU_LOG.glob("*.txt"):
        total += sum(float(line) for line in file.read_text().split())
        file.unlink()
    return total


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def same_chunks(a: Assistant, b: Assistant) -> dict[str, Any]:
    mismatched, worst = 0, 1.0
    for document in a.sources():
        x, y = a.store.document_chunks(document.source), b.store.document_chunks(document.source)
        if [(c.hash, c.start, c.end, c.text) for c in x] != [(c.hash, c.start, c.end, c.text) for c in y]:
            mismatched += 1
            continue
        vx, vy = a.store.vectors([c.id for c in x]), b.store.vectors([c.id for c in y])
        worst = min(worst, min(float(vx[p.id] @ vy[q.id]) for p, q in zip(x, y, strict=True)))
    return {"documents_with_other_chunks": mismatched, "min_vector_cosine": round(worst, 6)}


def main() -> None:
    import ray

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    work = Path(tempfile.mkdtemp(prefix="rag-ray-bench-"))
    source, reduced = subset_eval_dir(SQUAD, files, work / "set") if files else (SQUAD, "")
    eval_set = load_eval_set(source)
    questions = sample(eval_set.questions, n) if n else []
    out: dict[str, Any] = {"questions": len(questions)}

    single = Assistant(index_dir=work / "single")
    began, cpu = time.perf_counter(), time.process_time()
    report = single.index([eval_set.docs])
    seconds = time.perf_counter() - began
    out["single_process"] = {"seconds": round(seconds, 1), "chunks": report.chunks_total}
    out["single_process"]["cpu_s"] = round(time.process_time() - cpu, 1)  # reading, chunking and embedding
    out["single_process"]["load_average"] = load_average()
    out["single_process"]["chunks_per_s"] = round(report.chunks_total / seconds, 1)
    print("single process:", report.summary(), flush=True)

    began = time.perf_counter()
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    out["ray_start_s"] = round(time.perf_counter() - began, 1)
    try:
        for workers in (1, 2):
            spread = TimedIndexer(index_dir=work / f"ray{workers}", workers=workers)
            cpu_seconds()
            began = time.perf_counter()
            report = spread.index([eval_set.docs])
            seconds = time.perf_counter() - began
            result = {"seconds": round(seconds, 1), "chunks": report.chunks_total}
            result["chunks_per_s"] = round(report.chunks_total / seconds, 1)
            result["embedding_cpu_s"] = round(cpu_seconds(), 1)  # in the actors, all of them
            result["load_average"] = load_average()
            result.update(same_chunks(single, spread))
            print(f"ray, {workers} worker(s):", report.summary(), result, flush=True)
            out[f"ray_{workers}_workers"] = result
    finally:
        ray.shutdown()

    if questions:  # 0 questions: build speed only
        spread = Assistant(index_dir=work / "ray2")
        a = [single.ask(q.text, k=5) for q in questions]
        b = [spread.ask(q.text, k=5) for q in questions]
        pairs = list(zip(a, b, strict=True))
        shared = sum(len({key(p) for p in x.passages} & {key(p) for p in y.passages}) for x, y in pairs)
        total = sum(max(len(x.passages), len(y.passages)) for x, y in zip(a, b, strict=True))
        out["top5_overlap"] = round(shared / total, 4)
        out["identical_top5_ranking"] = sum(
            [key(p) for p in x.passages] == [key(p) for p in y.passages] for x, y in zip(a, b, strict=True)
        )
        out["identical_answer_text"] = sum(x.text == y.text for x, y in zip(a, b, strict=True))
        scores = [abs(p.score - q.score) for x, y in pairs for p, q in zip(x.passages, y.passages, strict=False)]
        out["max_passage_score_difference"] = round(float(np.max(scores)), 5) if scores else 0.0
    print(json.dumps(out, indent=2))
    path = ROOT / "bench" / "results" / ("ray_index.json" if questions else "ray_index_speed.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not reduced:  # a reduced run's figures go to its claims file only
        path.write_text(json.dumps(out, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    if not questions:
        return
    m = len(questions)
    lowest = min(out[f"ray_{w}_workers"]["min_vector_cosine"] for w in (1, 2))
    rows = [
        claim(
            "lowest cosine of a chunk's vector, Ray build to single-process build",
            lowest,
            ">=",
            1 - 5e-5,
            digits=6,
            note="the same text embedded in other batches, bf16",
        ),
        claim(
            "documents whose chunks differ",
            max(out[f"ray_{w}_workers"]["documents_with_other_chunks"] for w in (1, 2)),
            "<=",
            0,
        ),
        claim("top-5 passages shared by both builds", out["top5_overlap"], ">=", 1.0),
        claim(f"questions with the same answer text (of {m})", out["identical_answer_text"], ">=", m),
        claim(f"questions with the same top 5 in the same order (of {m})", out["identical_top5_ranking"]),
    ]
    reduced = "; ".join(x for x in (reduced, f"{m} of 200 questions" if m < 200 else "") if x)
    record(
        "ray-index", "Indexing on Ray against the single-process build (squad-dev)", rows, reduced=reduced, details=out
    )


if __name__ == "__main__":
    main()
