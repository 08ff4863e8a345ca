"""A smaller copy of an evaluation set for a reduced benchmark run: its first N documents and their questions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def subset_eval_dir(source: Path, files: int, dest: Path) -> tuple[Path, str]:
    """Copy the first ``files`` documents of ``source/docs`` (sorted by name) to ``dest/<set name>/docs``, with
    the questions whose every source (or whose article) is among them, and ``unanswerable.jsonl`` as it is.

    Returns the new set's folder and one line saying how it was reduced (for the results file).
    """
    docs = sorted(p for p in (source / "docs").iterdir() if p.is_file() and not p.name.startswith("."))
    kept = docs[:files]
    target = dest / source.name
    (target / "docs").mkdir(parents=True, exist_ok=True)
    for path in kept:
        shutil.copyfile(path, target / "docs" / path.name)
    names = {p.name for p in kept}
    lines = [line for line in (source / "questions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = []
    for line in lines:
        q = json.loads(line)
        wanted = set(q["sources"]) if "sources" in q else {q["source"]}
        if wanted <= names:
            chosen.append(line)
    (target / "questions.jsonl").write_text("\n".join(chosen) + "\n", encoding="utf-8")
    if (source / "unanswerable.jsonl").is_file():
        shutil.copyfile(source / "unanswerable.jsonl", target / "unanswerable.jsonl")
    note = f"{len(kept)} of {len(docs)} documents, {len(chosen)} of {len(lines)} questions"
    return target, note
