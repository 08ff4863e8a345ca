"""Embedding paths compared on real squad-dev chunks: speed and closeness to sentence-transformers fp32.

Run: .venv/bin/python bench/precision.py [DOCS] [--chunks 400]
Rows: sentence-transformers fp32 (the reference, as the standard recipe runs it), the same under
bf16 autocast, rag's own torch encoder in fp32 and bf16 (what `rag index` uses), rag's NumPy encoder
(questions and small jobs), and dynamic int8 quantisation of the linear layers (torch, VNNI): kept
only if it is faster *and* stays within cosine 0.999 of the reference.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SQUAD_DOCS = ROOT.parent / "shared" / "eval" / "squad-dev" / "docs"


def chunk_inputs(docs: Path, limit: int) -> list[str]:
    """The texts `rag index` embeds (title line + chunk) for the first ``limit`` chunks of ``docs``."""
    from rag import Assistant
    from rag.documents import load

    assistant = Assistant(index_dir=Path("/nonexistent-index"))
    texts: list[str] = []
    for path in sorted(docs.glob("*.txt")):
        for chunk in assistant.chunker.chunk(load(path, path.name)):
            texts.append(assistant.chunker.embedding_input(path.name, chunk))
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", nargs="?", default=str(SQUAD_DOCS))
    parser.add_argument("--chunks", type=int, default=400)
    args = parser.parse_args()

    import torch

    from rag.config import packaged_model_path
    from rag.embedding import Embedder
    from rag.encoders.numpy_bert import NumpyBert
    from rag.encoders.st_encoder import load_sentence_transformer as _load_model
    from rag.encoders.torch_bert import cpu_supports_bf16

    texts = chunk_inputs(Path(args.docs), args.chunks)
    st = _load_model(packaged_model_path())
    pieces = sum(len(st.tokenizer(t, truncation=True, max_length=256)["input_ids"]) for t in texts)
    print(
        f"{len(texts)} squad-dev chunks, {pieces:,} word pieces; {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, native bf16: {cpu_supports_bf16()}"
    )

    def st_encode(model: object, autocast: bool) -> Callable[[list[str]], np.ndarray]:
        def run(batch: list[str]) -> np.ndarray:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                out = model.encode(batch, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
            return np.asarray(out, dtype=np.float32)

        return run

    numpy_bert = NumpyBert.load(packaged_model_path(), 256)
    assert numpy_bert is not None
    quantised = torch.ao.quantization.quantize_dynamic(st, {torch.nn.Linear}, dtype=torch.qint8)
    paths: list[tuple[str, Callable[[list[str]], np.ndarray]]] = [
        ("sentence-transformers fp32 (reference)", st_encode(st, False)),
        ("sentence-transformers, bf16 autocast", st_encode(st, True)),
        ("rag torch encoder, fp32", Embedder(packaged_model_path(), precision="fp32").model.encode),
        ("rag torch encoder, bf16", Embedder(packaged_model_path(), precision="bf16").model.encode),
        ("rag NumPy encoder (fp32, one text at a time)", lambda b: np.stack([numpy_bert.encode_one(t) for t in b])),
        ("dynamic int8 (torch, linear layers)", st_encode(quantised, False)),
    ]
    reference: np.ndarray | None = None
    base = 0.0
    print(f"\n{'path':<46} {'seconds':>8} {'pieces/s':>9} {'vs ref':>7} {'min cosine':>11}")
    for name, encode in paths:
        encode(texts[:8])  # warm-up
        began = time.perf_counter()
        vectors = encode(texts)
        seconds = time.perf_counter() - began
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        if reference is None:
            reference, base = vectors, seconds
        cosine = float((vectors * reference).sum(axis=1).min())
        print(f"{name:<46} {seconds:8.2f} {pieces / seconds:9,.0f} {base / seconds:6.2f}x {cosine:11.5f}", flush=True)


if __name__ == "__main__":
    main()
