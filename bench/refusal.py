"""The refusal calibration: with half of squad-dev's articles indexed, how many questions are answered when
their article is indexed and refused when it is not, at the default match score and around it.

Run: .venv/bin/python bench/refusal.py [EVAL_DIR] [--questions 600] [--files N]

The questions are squad-dev's *other* questions: none of the 500 that `rag eval --sample 500` (bench/quality.py)
asks. Every other article is indexed (as `rag eval --refusal` does); each question is asked once with the score
limit off (``min_score`` -1), which gives its match score (``Answer.confidence``) and whether it would be
answered at all; at a limit ``t`` it is answered when both hold and the score is at least ``t``. Results:
bench/results/claims/refusal.json (bench/claims.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from claims import claim, record
from subset import subset_eval_dir

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad-dev"
THRESHOLDS = (0.33, 0.35, 0.37, 0.41)  # 0.50, 0.52, 0.56 and 0.62 before the score was divided by 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", nargs="?", default=str(SQUAD))
    parser.add_argument("--questions", type=int, default=600)
    parser.add_argument("--files", type=int, default=0, help="a reduced run: the first N articles")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from rag import Assistant, Settings
    from rag.evaluation import load_eval_set, sample

    with tempfile.TemporaryDirectory(prefix="rag-refusal-") as tmp:
        work = Path(tmp)
        source, reduced = (Path(args.eval_dir), "")
        full = load_eval_set(source)
        asked_by_eval = {q.id for q in sample(full.questions, 500)}
        if args.files:
            source, reduced = subset_eval_dir(source, args.files, work / "set")
        eval_set = load_eval_set(source)
        others = [q for q in eval_set.questions if q.id not in asked_by_eval]
        questions = sample(others, args.questions)
        files = sorted(p for p in eval_set.docs.iterdir() if p.is_file() and not p.name.startswith("."))
        kept = {p.name for p in files[::2]}
        half = work / "half"
        half.mkdir()
        for p in files:
            if p.name in kept:
                (half / p.name).write_bytes(p.read_bytes())
        default = Settings.from_env().min_score
        settings = Settings.from_env(index_dir=work / "index", min_score=-1.0)
        assistant = Assistant(settings=settings)
        assistant.index([half])
        inside: list[tuple[bool, float]] = []
        outside: list[tuple[bool, float]] = []
        for q in questions:
            answer = assistant.ask(q.text)
            (inside if q.source in kept else outside).append((answer.answered, answer.confidence or 0.0))
        assistant.store.close()

    def rates(t: float) -> tuple[float, float]:
        answered = sum(ok and score >= t for ok, score in inside) / max(1, len(inside))
        refused = sum(not (ok and score >= t) for ok, score in outside) / max(1, len(outside))
        return answered, refused

    rows = []
    for t in sorted({*THRESHOLDS, default}):
        answered, refused = rates(t)
        is_default = abs(t - default) < 1e-9
        name = f"match score {t:.2f}{' (default)' if is_default else ''}"
        rows.append(
            claim(f"{name}: answered, article indexed", round(answered, 3), *((">=", 0.95) if is_default else ()))
        )
        rows.append(
            claim(f"{name}: refused, article not indexed", round(refused, 3), *((">=", 0.90) if is_default else ()))
        )
    if len(questions) < args.questions:
        reduced = "; ".join(x for x in (reduced, f"{len(questions)} questions, not {args.questions}") if x)
    details = {"questions_indexed": len(inside), "questions_not_indexed": len(outside), "default": default}
    title = (
        f"Refusal calibration: {len(questions)} other squad-dev questions, half the articles indexed "
        f"({len(inside)} whose article is, {len(outside)} not)"
    )
    record("refusal", title, rows, reduced=reduced, details=details)


if __name__ == "__main__":
    main()
