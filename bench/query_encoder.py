"""One question through the warmed torch encoder: the packed bf16 path (oneDNN, weights packed once, the
question padded to QUESTION_PAD pieces) against the plain path, in one process, alternating per question.

Run: .venv/bin/python bench/query_encoder.py [--rounds 2] [--index DIR]
Prints thread CPU and wall p50 of ``TorchBert.encode_one`` on each path over the sec-10q questions, the
cosine of both paths' vectors to sentence-transformers fp32 on the sec-10q and 500 squad-dev questions, and,
with ``--index`` (a copy of an index; it is only read), how often their dense top-10 agree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def questions(name: str, limit: int) -> list[str]:
    """Questions of one evaluation set, spread over the file (every n-th), at most ``limit``."""
    rows = [json.loads(line)["question"] for line in (EVAL / name / "questions.jsonl").open(encoding="utf-8")]
    return rows[:: max(1, len(rows) // limit)][:limit]


def use(model: Any, packed: Any) -> None:
    """Send ``model``'s questions through ``packed`` weights, or the plain path when None."""
    model._packed, model._packed_state = (packed, "packed") if packed is not None else (None, "off")


def timing(model: Any, texts: list[str], rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(thread CPU, wall) seconds per question on each path, the order alternating question by question."""
    packed = model.packed_weights()
    times: dict[str, list[tuple[float, float]]] = {"plain": [], "packed": []}
    for r in range(rounds):
        for i, text in enumerate(texts):
            order = [("plain", None), ("packed", packed)]
            for name, weights in order if (i + r) % 2 == 0 else order[::-1]:
                use(model, weights)
                cpu, wall = time.thread_time(), time.perf_counter()
                model.encode_one(text)
                times[name].append((time.thread_time() - cpu, time.perf_counter() - wall))
    use(model, packed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--index", type=Path, help="an index (copy) to compare dense top-10 rankings on")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from rag import Settings
    from rag.embedding import Embedder
    from rag.encoders.st_encoder import load_sentence_transformer

    settings = Settings()
    embedder = Embedder(settings.model_path, settings.batch_size, settings.precision)
    embedder.warm()
    model: Any = embedder.model
    print(f"precision {model.precision}, question path {model.question_path}")
    sec = questions("sec-10q", 1000)
    for name, rows in timing(model, sec, args.rounds).items():
        cpu = statistics.median(c for c, _ in rows) * 1e3
        wall = statistics.median(w for _, w in rows) * 1e3
        print(f"{name:7s} {len(rows)} questions: thread CPU p50 {cpu:.2f} ms, wall p50 {wall:.2f} ms")
    reference = load_sentence_transformer(settings.model_path)
    packed = model.packed_weights()
    for set_name, texts in (("sec-10q", sec), ("squad-dev", questions("squad-dev", 500))):
        vectors: dict[str, np.ndarray] = {}
        for path, weights in (("plain", None), ("packed", packed)):
            use(model, weights)
            vectors[path] = np.stack([model.encode_one(t) for t in texts])
        use(model, packed)
        with torch.inference_mode():
            fp32 = reference.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
        for path in ("plain", "packed"):
            cosines = (vectors[path] * fp32).sum(axis=1)
            print(f"{set_name} {path} vs sentence-transformers fp32: cosine min {cosines.min():.6f}")
        if args.index is not None and set_name == "sec-10q":
            from rag.stores import FaissStore

            store = FaissStore(args.index)
            top = {p: [[i for i, _ in store.search(v, 10)] for v in vectors[p]] for p in ("plain", "packed")}
            same = sum(a == b for a, b in zip(top["plain"], top["packed"], strict=True))
            print(f"{set_name} dense top-10 identical on both paths: {same}/{len(texts)}")


if __name__ == "__main__":
    main()
