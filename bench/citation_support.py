"""Measure rag.generation.support (the citation check) on squad-dev; the source of SUPPORT_THRESHOLD.

Each sampled question becomes a claim "<gold answer> <question without its question word>" checked
against (a) its gold paragraph (supported), (b) another paragraph of the same article without the
answer (a wrong citation), (c) its gold paragraph with the answer swapped for another question's
answer of the same kind (a made-up fact). Prints the share judged supported per threshold.

    .venv/bin/python bench/citation_support.py [N_QUESTIONS]     # default 400, seed 7; lexical, no model
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

from rag.extractive import answer_kind
from rag.generation import support

SQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "squad-dev"
AUX = {"did", "does", "do", "is", "was", "are", "were", "has", "have", "had", "can", "could", "will", "would"}


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def claim(question: str, answer: str) -> str:
    words = question.rstrip("?").split()
    if words and words[0].lower() in {"what", "which", "who", "whom", "whose", "when", "where", "how", "why"}:
        words = words[1:]
        if words and words[0].lower() in {"many", "much", "long", "old", "far", "large", "big"}:
            words = words[1:]
        if words and words[0].lower() in AUX:
            words = words[1:]
    return f"{answer} {' '.join(words)}."


def main(n: int) -> None:
    rng = random.Random(7)
    questions = [json.loads(line) for line in (SQUAD / "questions.jsonl").read_text().splitlines()]
    rng.shuffle(questions)
    paragraphs: dict[str, list[tuple[int, int, str]]] = {}
    for name in {q["source"] for q in questions}:
        text, pos, out = (SQUAD / "docs" / name).read_text(), 0, []
        for part in text.split("\n\n"):
            start = text.index(part, pos)
            pos = start + len(part)
            if part.strip():
                out.append((start, pos, part))
        paragraphs[name] = out
    by_kind: dict[str, list[dict]] = {}
    for q in questions:
        by_kind.setdefault(answer_kind(q["question"]), []).append(q)
    cases = []
    for q in questions[:n]:
        paras = paragraphs[q["source"]]
        gold = next((p for p in paras if p[0] <= q["spans"][0][0] < p[1]), None)
        if gold is None:
            continue
        answer = q["answers"][0]
        cases.append(("supported", claim(q["question"], answer), gold[2], q["question"]))
        others = [p for p in paras if p is not gold and norm(answer) not in norm(p[2])]
        if others:
            cases.append(("wrong citation", claim(q["question"], answer), rng.choice(others)[2], q["question"]))
        pool = [
            o
            for o in by_kind[answer_kind(q["question"])]
            if o["id"] != q["id"] and norm(o["answers"][0]) not in norm(gold[2])
        ]
        if pool:
            fake = rng.choice(pool)["answers"][0]
            cases.append(("made-up fact", claim(q["question"], fake), gold[2], q["question"]))
    scored = [(label, *support(text, [passage], question)) for label, text, passage, question in cases]
    labels = ["supported", "wrong citation", "made-up fact"]
    print(f"{len(cases)} cases; share judged supported ({' / '.join(labels)}), with and without the names rule")
    for threshold in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8):
        row = []
        for rule in (True, False):
            shares = []
            for label in labels:
                hits = [s >= threshold and (not missing or not rule) for lab, s, missing in scored if lab == label]
                shares.append(100 * sum(hits) / max(1, len(hits)))
            row.append(" / ".join(f"{x:5.1f}" for x in shares))
        print(f"{threshold:.2f}: {row[0]}    without: {row[1]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
