"""The NumPy BERT encoder: questions and small jobs embedded without importing torch (a fresh process
answers in well under a second); the same vectors as sentence-transformers' fp32 ones (tested)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import bert_tokenizer, plain_bert_config


def _erf(x: np.ndarray) -> np.ndarray:
    """Error function (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7)."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class NumpyBert:
    """A BERT encoder with mean pooling and normalisation, in NumPy, for one text at a time.

    Reads the same ``model.safetensors`` and ``tokenizer.json`` as sentence-transformers.
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
        from safetensors.numpy import load_file

        weights = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        for name in [k for k in weights if k.startswith("encoder.") and k.endswith(".weight") and weights[k].ndim == 2]:
            weights[name[: -len("weight")] + "weight_t"] = np.ascontiguousarray(weights.pop(name).T)
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
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        size = x.shape[1]
        head = size // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return h @ w[p + name + ".weight_t"] + w[p + name + ".bias"]

            q = dense(x, "attention.self.query").reshape(n, self.heads, head).transpose(1, 0, 2)
            k = dense(x, "attention.self.key").reshape(n, self.heads, head).transpose(1, 0, 2)
            v = dense(x, "attention.self.value").reshape(n, self.heads, head).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(head)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, size)
            x = _layer_norm(
                x + dense(context, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            h = dense(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
            x = _layer_norm(
                x + dense(h, "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps
            )
        pooled = x.mean(0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
