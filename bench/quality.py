"""squad-dev quality as `rag eval --sample 500 --refusal` measures it, printed beside the targets.

Run: .venv/bin/python bench/quality.py [EVAL_DIR] [--sample 500] [--files N]

``rag eval`` runs in a fresh process with its own temporary folder (its index and the refusal check's half
index are built there, never in a cache another job shares). ``--files N`` is a reduced run: the first N
articles and their questions. Results: ``bench/results/claims/squad-dev.json`` (``bench/claims.py``), from
which ``bench/report.py`` renders the table of docs/quality.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from claims import claim, record
from proc import measured
from subset import subset_eval_dir

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad-dev"


def rows(output: dict) -> list[dict]:
    """The figures of `rag eval --json --refusal` beside the squad-dev targets."""
    m, refusal = output["metrics"], output["refusal"]

    def row(figure: str, value: float | None, op: str | None = None, target: float | None = None) -> dict:
        return claim(figure, None if value is None else round(value, 3), op, target)

    return [
        row("hit@1", m["hit@1"], ">=", 0.79),
        row("hit@5", m["hit@5"], ">=", 0.94),
        row("MRR", m["mrr"]),
        row("answer contains a gold answer (SQuAD normalisation)", m["answer_contains_gold"], ">=", 0.76),
        row("a citation overlaps the gold span", m["citation_on_gold"]),
        row("answered, article indexed (half-index check)", refusal["answered_when_indexed"], ">=", 0.95),
        row("refused, article not indexed (half-index check)", refusal["refused_when_not_indexed"], ">=", 0.90),
        claim("mean answer length", round(m["mean_answer_words"], 1), unit="words", digits=1),
        claim("ask latency p50 (in the eval's process)", round(m["latency_p50_ms"], 1), unit="ms", digits=1),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", nargs="?", default=str(SQUAD))
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--files", type=int, default=0, help="a reduced run: the first N articles")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results" / "claims"))
    args = parser.parse_args()
    eval_dir = Path(args.eval_dir)
    with tempfile.TemporaryDirectory(prefix="rag-quality-") as tmp:
        reduced = ""
        if args.files:
            eval_dir, reduced = subset_eval_dir(eval_dir, args.files, Path(tmp) / "set")
        cmd = [sys.executable, "-m", "rag.cli", "eval", str(eval_dir), "--sample", str(args.sample)]
        cmd += ["--refusal", "--json", "--index", str(Path(tmp) / "index")]
        seconds, stdout, peak = measured(cmd, env={"TMPDIR": tmp})
    output = json.loads(stdout)
    if args.files or output["questions"] < args.sample:
        reduced = f"{reduced}; {output['questions']} questions asked".lstrip("; ")
    details = {**output, "seconds": round(seconds, 1), "peak_rss_mib": round(peak)}
    title = f"squad-dev: `rag eval --sample {args.sample} --refusal` against the targets"
    record(eval_dir.name, title, rows(output), reduced=reduced, details=details, out_dir=Path(args.out_dir))


if __name__ == "__main__":
    main()
