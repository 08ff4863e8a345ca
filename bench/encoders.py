"""Bulk encoders compared on this machine: throughput and retrieval quality (issue 16's encoder table).

Run: .venv/bin/python bench/encoders.py [--chunks N] [--questions N] [--rounds R]

Variants: rag's hand-written torch BERT (fp32, bf16), sentence-transformers on torch (fp32, bf16
autocast), and ONNX Runtime on a graph exported here from the packaged weights with torch.onnx (fp32,
and int8 by onnxruntime's dynamic quantization). (sentence-transformers' own ``backend="onnx"`` needs
``optimum``, whose current release pins transformers 4.x while sentence-transformers 6 needs 5.x: not
installable beside it.) Every variant embeds the same squad-dev chunks (title line + text, as
indexed), rounds interleaved so that the machine's load falls on all alike; quality is dense-only
hit@5 of the questions (embedded by rag's NumPy query path, as in production) against each variant's
chunk vectors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad-dev"
sys.path.insert(0, str(ROOT))


def _chunks(limit: int) -> tuple[list[str], list[tuple[str, int, int]]]:
    from rag import Assistant
    from rag.documents import load

    assistant = Assistant(index_dir=Path(tempfile.mkdtemp()) / "unused")
    texts, where = [], []
    for path in sorted((SQUAD / "docs").glob("*.txt")):
        document = load(path, path.name)
        for chunk in assistant.chunker.chunk(document):
            texts.append(assistant.chunker.embedding_input(path.name, chunk))
            where.append((path.name, chunk.start, chunk.end))
    return texts[:limit] if limit else texts, where[:limit] if limit else where


def _onnx(model_path: Path, folder: Path, quantize: bool) -> Any:
    """An ONNX Runtime session for the packaged BERT (exported with torch.onnx), optionally int8."""
    import onnxruntime as ort
    import torch
    from transformers import AutoModel

    fp32 = folder / "bert.onnx"
    if not fp32.exists():
        bert = AutoModel.from_pretrained(str(model_path)).eval()

        class Hidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.bert(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        ids = torch.ones((2, 16), dtype=torch.long)
        with torch.no_grad():
            torch.onnx.export(
                Hidden(),
                (ids, ids, torch.zeros_like(ids)),
                str(fp32),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "b", 1: "t"} for n in ("input_ids", "attention_mask", "token_type_ids")},
                opset_version=17,
                dynamo=False,
            )
    path = fp32
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        path = folder / "bert-int8.onnx"
        if not path.exists():
            quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_encode(session: Any, tokenizer: Any, texts: list[str], budget: int = 2048) -> np.ndarray:
    from rag.encoders.torch_bert import padded_batches

    out = np.empty((len(texts), 384), dtype=np.float32)
    for batch, tokens, flags in padded_batches([e.ids for e in tokenizer.encode_batch(texts)], budget):
        mask = flags.astype(np.int64)
        (hidden,) = session.run(None, {"input_ids": tokens, "attention_mask": mask, "token_type_ids": 0 * tokens})
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out[batch] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=0, help="chunks to embed (0: all of squad-dev)")
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import torch

    from rag.config import packaged_model_path
    from rag.embedding import Embedder
    from rag.encoders.base import bert_tokenizer, plain_bert_config
    from rag.encoders.st_encoder import load_sentence_transformer as _load_model
    from rag.encoders.torch_bert import TorchBert
    from rag.evaluation import load_eval_set, sample

    torch.set_num_threads(2)
    path = packaged_model_path()
    texts, where = _chunks(args.chunks)
    config = plain_bert_config(path)
    assert config is not None
    tokenizer = bert_tokenizer(path, 256)
    folder = Path(tempfile.mkdtemp())
    st = _load_model(path)

    def st_encode(bf16: bool) -> Any:
        def run(batch: list[str]) -> np.ndarray:
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.inference_mode()
            with torch.inference_mode(), ctx:
                v = st.encode(batch, batch_size=16, normalize_embeddings=True, convert_to_numpy=True)
            v = np.asarray(v, dtype=np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        return run

    hand = {p: TorchBert(path, config, 256, p) for p in ("fp32", "bf16")}
    sessions = {q: _onnx(path, folder, q) for q in (False, True)}
    variants = {
        "rag torch BERT fp32": lambda b: hand["fp32"].encode(b),
        "rag torch BERT bf16": lambda b: hand["bf16"].encode(b),
        "sentence-transformers fp32": st_encode(False),
        "sentence-transformers bf16": st_encode(True),
        "onnxruntime fp32": lambda b: _onnx_encode(sessions[False], tokenizer, b),
        "onnxruntime int8 (dynamic)": lambda b: _onnx_encode(sessions[True], tokenizer, b),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, encode in variants.items():
            began = time.perf_counter()
            vectors[name] = encode(texts)
            seconds[name].append(time.perf_counter() - began)

    eval_set = load_eval_set(SQUAD)
    questions = sample(eval_set.questions, args.questions)
    query = Embedder(path)
    q = np.stack([query.encode_query(x.text) for x in questions])
    rows = []
    reference = vectors["rag torch BERT fp32"]
    for name in variants:
        top = np.argsort(-(q @ vectors[name].T), axis=1)[:, :5]
        hits = sum(
            any(where[j][0] == x.source and any(where[j][1] < b and a < where[j][2] for a, b in x.spans) for j in row)
            for x, row in zip(questions, top, strict=True)
        )
        best = min(seconds[name])
        rows.append(
            {
                "variant": name,
                "chunks_per_second": round(len(texts) / best, 1),
                "dense_hit@5": round(hits / len(questions), 3),
                "min_cosine_to_fp32": round(float(np.min(np.sum(vectors[name] * reference, axis=1))), 4),
                "seconds": [round(s, 2) for s in seconds[name]],
            }
        )
    for row in rows:
        print(json.dumps(row))
    print(json.dumps({"chunks": len(texts), "questions": len(questions), "rounds": args.rounds}))
    out = ROOT / "bench" / "results" / "encoders.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(statistics.mean(1.0 for _ in rows) and f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
