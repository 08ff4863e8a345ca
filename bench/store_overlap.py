"""Same answers on every store? Index squad-dev with FAISS (default) and with Milvus Lite, ask the same questions.

    .venv/bin/python bench/store_overlap.py [N_QUESTIONS] [N_FILES]   # default 200, spread over questions.jsonl;
                                                                   # N_FILES: a reduced run on the first N articles

The Milvus side is configured the way a user would: ``RAG_VECTOR_STORE=milvus-lite:///.../squad.db``.
Prints, for the top-5 passages of each question, the share of passages both stores return (by source
and offsets), how many questions get the identical ranked list, identical answer text and citations,
the share whose top 5 holds the gold span, index build times and search latency. Also checks the
seed question. Writes bench/results/store_overlap.json.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from claims import claim, record
from subset import subset_eval_dir

from rag import Assistant, Settings
from rag.evaluation import load_eval_set, sample

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad-dev"
SEED_QUESTION = "Who invited Prime Minister Takaichi to visit the United States?"


def key(passage: object) -> tuple[str, int, int]:
    return (passage.source, passage.start, passage.end)  # type: ignore[attr-defined]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    work = Path(tempfile.mkdtemp(prefix="rag-overlap-"))
    source, reduced = subset_eval_dir(SQUAD, files, work / "set") if files else (SQUAD, "")
    eval_set = load_eval_set(source)
    questions = sample(eval_set.questions, n)
    stores = {
        "faiss": Settings.from_env({"RAG_INDEX_DIR": str(work / "faiss")}),
        "milvus-lite": Settings.from_env(
            {"RAG_INDEX_DIR": str(work / "milvus"), "RAG_VECTOR_STORE": f"milvus-lite://{work}/squad.db"}
        ),
    }
    results: dict[str, dict] = {}
    for name, settings in stores.items():
        assistant = Assistant(settings=settings)
        began = time.perf_counter()
        report = assistant.index([eval_set.docs])
        build = time.perf_counter() - began
        answers, seconds = [], []
        for q in questions:
            began = time.perf_counter()
            answers.append(assistant.ask(q.text, k=5))
            seconds.append(time.perf_counter() - began)
        seed_store = f"{settings.vector_store}?collection=seed" if settings.vector_store else ""
        seed = Assistant(settings=settings.replace(index_dir=work / f"seed-{name}", vector_store=seed_store))
        seed.index([ROOT / "seeds"])
        seconds.sort()
        results[name] = {
            "answers": answers,
            "seed": seed.ask(SEED_QUESTION),
            "index_s": round(build, 1),
            "chunks": report.chunks_total,
            "ask_p50_ms": round(1000 * seconds[len(seconds) // 2], 1),
            "ask_p95_ms": round(1000 * seconds[int(0.95 * (len(seconds) - 1))], 1),
        }
        print(f"{name}: {report.summary()}; ask p50 {results[name]['ask_p50_ms']} ms", flush=True)
        assistant.store.close()
        seed.store.close()

    a, b = results["faiss"]["answers"], results["milvus-lite"]["answers"]
    shared = sum(len({key(p) for p in x.passages} & {key(p) for p in y.passages}) for x, y in zip(a, b, strict=True))
    total = sum(max(len(x.passages), len(y.passages)) for x, y in zip(a, b, strict=True))
    same_ranking = sum([key(p) for p in x.passages] == [key(p) for p in y.passages] for x, y in zip(a, b, strict=True))
    same_text = sum(x.text == y.text for x, y in zip(a, b, strict=True))
    same_citations = sum(
        [(c.source, c.start, c.end) for c in x.citations] == [(c.source, c.start, c.end) for c in y.citations]
        for x, y in zip(a, b, strict=True)
    )

    def gold(answers: list) -> float:
        hits = sum(
            any(p.source == q.source and any(p.start < e and s < p.end for s, e in q.spans) for p in ans.passages)
            for ans, q in zip(answers, questions, strict=True)
        )
        return round(hits / len(questions), 4)

    seed_a, seed_b = results["faiss"]["seed"], results["milvus-lite"]["seed"]
    summary = {
        "questions": len(questions),
        "top5_overlap": round(shared / total, 4),
        "identical_top5_ranking": same_ranking,
        "identical_answer_text": same_text,
        "identical_citations": same_citations,
        "gold_in_top5": {"faiss": gold(a), "milvus-lite": gold(b)},
        "seed_question_same_answer_and_citations": seed_a.text == seed_b.text
        and [key(c) for c in seed_a.citations] == [key(c) for c in seed_b.citations],
        **{name: {k: v for k, v in r.items() if k not in ("answers", "seed")} for name, r in results.items()},
    }
    print(json.dumps(summary, indent=2))
    out = ROOT / "bench" / "results" / "store_overlap.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not reduced:  # a reduced run's figures go to its claims file only
        out.write_text(json.dumps(summary, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    m = len(questions)
    rows = [
        claim("top-5 passages shared by both stores", summary["top5_overlap"], ">=", 1.0),
        claim(f"questions with the same top 5 in the same order (of {m})", same_ranking, ">=", m),
        claim(f"questions with the same answer text (of {m})", same_text, ">=", m),
        claim(f"questions with the same citations (of {m})", same_citations, ">=", m),
        claim("gold span in the top 5, FAISS", summary["gold_in_top5"]["faiss"]),
        claim("gold span in the top 5, Milvus Lite", summary["gold_in_top5"]["milvus-lite"]),
    ]
    reduced = "; ".join(x for x in (reduced, f"{m} of 200 questions" if m < 200 else "") if x)
    record("store-overlap", "Milvus Lite against FAISS on squad-dev questions", rows, reduced=reduced, details=summary)


if __name__ == "__main__":
    main()
