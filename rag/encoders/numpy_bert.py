"""The NumPy BERT encoder: questions and small jobs embedded without importing torch (a fresh process
answers in well under a second); the same vectors as sentence-transformers' fp32 ones (tested)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import bert_tokenizer, plain_bert_config

#: Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7): erf(a) = 1 - t * poly(t) * exp(-a^2),
#: t = 1 / (1 + P a), a >= 0. Coefficients of poly, highest first (Horner).
_ERF_P = np.float32(0.3275911)
_ERF_POLY = [np.float32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)]
_ROOT_HALF = np.float32(np.sqrt(0.5))
#: safetensors' element types that the mapped reader takes as they are.
_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}
#: The largest header the mapped reader reads (the safetensors library's own limit).
_MAX_HEADER = 100_000_000


def mapped_safetensors(path: Path) -> dict[str, np.ndarray] | None:
    """Read-only arrays over a memory map of the safetensors file ``path``; None when it holds anything
    this reader does not take (the caller then uses the safetensors library).

    The library copies all 90 MB of the packaged model out of the file (57 to 63 ms); mapped, a fresh
    process reads only the pages it touches (load and a first pass 9.5 ms), most of the word embeddings
    never. The format: an 8-byte little-endian header length, a JSON header (each tensor's dtype, shape
    and byte offsets in the data after the header), then the data.
    """
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if size > _MAX_HEADER:
                return None
            header = json.loads(f.read(size))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
        arrays: dict[str, np.ndarray] = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = np.dtype(_DTYPES[info["dtype"]])
            start, end = (int(v) for v in info["data_offsets"])
            shape = tuple(int(v) for v in info["shape"])
            if not 0 <= start <= end <= len(data) or end - start != dtype.itemsize * int(np.prod(shape)):
                return None
            array = data[start:end].view(dtype).reshape(shape)
            if not array.flags.aligned:
                return None
            arrays[name] = array
        return arrays
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _gelu(h: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU of ``h`` (float32), in place, with a few scratch arrays.

    gelu(x) = x * (1 + erf(x / sqrt 2)) / 2; with a = |x| / sqrt 2 and r = t * poly(t) * exp(-a^2) / 2, that
    is x * (1/2 + sign(x) * (1/2 - r)).
    """
    a = np.abs(h)
    a *= _ROOT_HALF
    t = a * _ERF_P
    t += 1.0
    np.reciprocal(t, out=t)
    r = t * _ERF_POLY[0]
    for c in _ERF_POLY[1:]:
        r += c
        r *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    r *= a
    r *= np.float32(-0.5)
    r += np.float32(0.5)
    np.copysign(r, h, out=r)
    r += np.float32(0.5)
    h *= r
    return h


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """Layer norm over the last axis, in place."""
    x -= x.mean(-1, keepdims=True)
    scale = np.square(x).mean(-1, keepdims=True)
    scale += eps
    np.sqrt(scale, out=scale)
    x /= scale
    x *= weight
    x += bias
    return x


class NumpyBert:
    """A BERT encoder with mean pooling and normalisation, in NumPy, for one text at a time.

    Reads the same ``model.safetensors`` and ``tokenizer.json`` as sentence-transformers. Matrices are
    used as stored, (out, in): ``h @ w.T`` hands the transposed view to BLAS without a copy.
    """

    def __init__(self, weights: dict[str, np.ndarray], config: dict[str, Any], tokenizer: Any, max_tokens: int) -> None:
        self.w = weights
        self.dimension = int(config["hidden_size"])
        self.max_tokens = max_tokens
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, path: Path, max_tokens: int) -> NumpyBert | None:
        """Load ``path`` if it holds a plain BERT mean-pooling, normalising model; else None."""
        config = plain_bert_config(path)
        if config is None:
            return None
        raw = mapped_safetensors(path / "model.safetensors")
        if raw is None:
            from safetensors.numpy import load_file

            raw = load_file(str(path / "model.safetensors"))
        # Arithmetic is float32 whatever the file stores (a half-precision file is widened once here).
        weights = {
            k.removeprefix("bert."): v.astype(np.float32) if v.dtype.kind == "f" and v.dtype != np.float32 else v
            for k, v in raw.items()
        }
        for i in range(int(config["num_hidden_layers"])):  # one matrix product for query, key and value
            p = f"encoder.layer.{i}.attention.self."
            for part in ("weight", "bias"):
                names = [f"{p}{n}.{part}" for n in ("query", "key", "value")]
                weights[f"{p}qkv.{part}"] = np.concatenate([weights.pop(n) for n in names])
        return cls(weights, config, bert_tokenizer(path, max_tokens), max_tokens)

    def tokens(self, texts: Sequence[str]) -> int:
        """Word pieces the model reads for ``texts`` (special tokens included, truncated)."""
        return sum(len(e.ids) for e in self.tokenizer.encode_batch(list(texts)))

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Vectors of ``texts``, one at a time, shape (n, dimension)."""
        out = (
            np.stack([self.encode_one(text) for text in texts]) if texts else np.zeros((0, self.dimension), np.float32)
        )
        if progress is not None:
            progress(len(texts))
        return out

    def encode_one(self, text: str) -> np.ndarray:
        """The normalised mean-pooled embedding of ``text``."""
        w = self.w
        ids = np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)
        n = len(ids)
        x = w["embeddings.word_embeddings.weight"][ids]
        x += w["embeddings.position_embeddings.weight"][:n]
        x += w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        size = x.shape[1]
        head = size // self.heads
        scale = np.float32(1.0 / np.sqrt(head))
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
                out = h @ w[p + name + ".weight"].T
                out += w[p + name + ".bias"]
                return out

            qkv = dense(x, "attention.self.qkv").reshape(n, 3, self.heads, head).transpose(1, 2, 0, 3)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 2, 1)
            scores *= scale
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, size)
            attended = dense(context, "attention.output.dense")
            attended += x
            x = _layer_norm(
                attended, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps
            )
            out = dense(_gelu(dense(x, "intermediate.dense")), "output.dense")
            out += x
            x = _layer_norm(out, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        pooled = x.mean(0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
