"""The torch BERT encoder for bulk work: the model's own forward pass in plain torch operations, matrices
in bf16 where the CPU computes bf16 natively, texts in length-sorted batches cut to a token budget.

Measured faster than sentence-transformers and ONNX Runtime here at equal retrieval (bench/encoders.py,
README): it is kept for that reason only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import MODELS, MODELS_LOCK, bert_tokenizer, plain_bert_config, prepare_environment

_log = logging.getLogger(__name__)

#: Whether questions in bf16 go through oneDNN with weights packed once (:meth:`TorchBert.packed_weights`);
#: off, or where that is unavailable or disagrees with the plain path, they take the plain path.
PACK_QUESTION_WEIGHTS = True
#: A question is padded (and masked) to a multiple of this many word pieces for the packed path: oneDNN
#: builds a kernel per row count, and a new one for every question length cost 1.7 to 1.9 ms a question
#: (measured, ONEDNN_VERBOSE); with this, questions up to 64 pieces reuse two sets of four kernels.
QUESTION_PAD = 32
#: The packed path is checked once against the plain one on these before any question uses it: one
#: question in each of the first two lengths (which also builds their kernels, in ``warm()``).
_QUESTION_PROBES = (
    "Which harbour ships barley and rye to the northern mills every spring, and how many tonnes?",
    "Which harbour ships barley, rye, oats and wheat to the northern mills every spring, how many tonnes a"
    " week does it load, and which railway company carries the grain inland from the quays?",
)


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
        self.max_tokens = max_tokens
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
        self._packed: dict[str, Any] | None = None
        self._packed_state = "unbuilt"  # "unbuilt", "packed" or the reason questions take the plain path
        self._packed_lock = threading.Lock()

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
        """The vector of one short text (a question): one pass, nothing batched or trimmed, on one thread.

        A question's matrices are a few rows: a second thread saves little, and when the other core is
        busy (another request, another job) waiting for it costs far more: p50 232 ms on two threads
        against 22 ms on one, measured on this 2-core machine under load (docs/incoming-h-lat.md).
        In bf16 it runs on :meth:`packed_weights` when they are available (the plain path otherwise)."""
        torch = self.torch
        ids = self.tokenizer.encode(text).ids
        threads = torch.get_num_threads()
        if threads != 1:
            torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                vector = self._question(ids, self.packed_weights())
        finally:
            if threads != 1:
                torch.set_num_threads(threads)
        return np.asarray(vector.float().numpy(), dtype=np.float32)

    def _question(self, ids: Sequence[int], packed: dict[str, Any] | None) -> Any:
        """One question's vector (a tensor), through the packed weights (padded to ``QUESTION_PAD``
        pieces, padding masked) or, when ``packed`` is None, the plain path (no padding)."""
        torch = self.torch
        length = len(ids)
        if packed is not None:
            positions = int(self.w["embeddings.position_embeddings.weight"].shape[0])
            length = max(length, min(-(-length // QUESTION_PAD) * QUESTION_PAD, positions))
        tokens = torch.zeros((1, length), dtype=torch.int64)
        tokens[0, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        mask = torch.zeros((1, length), dtype=torch.bool)
        mask[0, : len(ids)] = True
        return self._forward(tokens, mask, packed)[0]

    @property
    def question_path(self) -> str:
        """How questions are embedded: ``packed`` (oneDNN, weights packed once), else why not, or
        ``unbuilt`` before the first question."""
        return self._packed_state

    def packed_weights(self) -> dict[str, Any] | None:
        """The encoder's matrices packed once for oneDNN's small-batch kernels, for questions in bf16
        (measured 1.5x faster a question than ``linear``, which reorders its weight on every call), or
        None where that path is off, unavailable (fp32, no oneDNN) or disagrees with the plain path on a
        probe question (then with a warning). Built on the first question, under a lock; +21 MB."""
        if self._packed_state != "unbuilt":
            return self._packed
        with self._packed_lock:
            if self._packed_state == "unbuilt":
                self._packed, self._packed_state = self._pack()
        return self._packed

    def _pack(self) -> tuple[dict[str, Any] | None, str]:
        torch = self.torch
        mkldnn = torch.ops.mkldnn
        if not PACK_QUESTION_WEIGHTS:
            return None, "off"
        if self.matmul != torch.bfloat16:
            return None, "fp32"
        if not (torch.backends.mkldnn.is_available() and hasattr(mkldnn, "_linear_pointwise")):
            return None, "no oneDNN"
        if hasattr(mkldnn, "_is_mkldnn_bf16_supported") and not mkldnn._is_mkldnn_bf16_supported():
            return None, "no oneDNN bf16"
        try:
            with torch.inference_mode():
                packed = {
                    name: mkldnn._reorder_linear_weight(value, QUESTION_PAD)
                    for name, value in self.w.items()
                    if name.startswith("encoder.") and value.ndim == 2
                }
                agreement = 1.0
                for probe in _QUESTION_PROBES:
                    ids = self.tokenizer.encode(probe).ids
                    cosine = float(self._question(ids, packed).float() @ self._question(ids, None).float())
                    agreement = min(agreement, cosine)
        except Exception as exc:  # noqa: BLE001 - any failure of the packed path leaves the plain one
            _log.warning("packed question weights unavailable (%s): questions take the plain path", exc)
            return None, "failed"
        if agreement < 0.9999:
            _log.warning("packed question weights disagree (cosine %.5f): questions take the plain path", agreement)
            return None, "disagrees"
        return packed, "packed"

    def _forward(self, tokens: Any, mask: Any, packed: dict[str, Any] | None = None) -> Any:
        torch, w, eps = self.torch, self.w, self.eps
        functional = torch.nn.functional
        pointwise = torch.ops.mkldnn._linear_pointwise if packed is not None else functional.linear
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

            def dense(h: Any, name: str, p: str = p, gelu: bool = False) -> Any:
                if packed is not None:  # oneDNN on the packed matrix, the exact (erf) gelu fused into it
                    weight = packed[p + name + ".weight"]
                    activation, algorithm = ("gelu", "none") if gelu else ("none", "")
                    return pointwise(h.to(self.matmul), weight, w[p + name + ".bias"], activation, [], algorithm)
                out = functional.linear(h.to(self.matmul), w[p + name + ".weight"], w[p + name + ".bias"])
                return functional.gelu(out) if gelu else out

            def add_norm(x: Any, h: Any, name: str, p: str = p) -> Any:  # residual in fp32, then layer norm
                weight, bias = w[p + name + ".weight"], w[p + name + ".bias"]
                return functional.layer_norm(x + h.float(), (size,), weight, bias, eps)

            qkv = dense(x, "attention.self.qkv").view(rows, length, 3, self.heads, head).permute(2, 0, 3, 1, 4)
            context = functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attend)
            context = context.transpose(1, 2).reshape(rows, length, size)
            x = add_norm(x, dense(context, "attention.output.dense"), "attention.output.LayerNorm")
            x = add_norm(x, dense(dense(x, "intermediate.dense", gelu=True), "output.dense"), "output.LayerNorm")
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return functional.normalize(pooled, dim=-1)


#: Batches are padded to a length that is a multiple of this: torch's fused CPU attention kernel runs about
#: twice as fast per score on such lengths (measured, one core, bf16 and fp32: 254 pieces 2.0 ns per score,
#: 256 pieces 0.95 ns), far more than the few percent of padding costs. Padding is masked, so it changes
#: no vector beyond rounding.
PAD_MULTIPLE = 16


def padded_batches(
    ids: Sequence[Sequence[int]], token_budget: int, multiple: int = PAD_MULTIPLE
) -> Iterator[tuple[list[int], Any, Any]]:
    """Token-id lists sorted by length and cut into batches of at most ``token_budget`` padded pieces:
    ``(positions in ids, tokens int64 (rows, length), mask bool)`` per batch, the length the batch's
    longest rounded up to ``multiple``; padding stays a few percent."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    first = 0
    while first < len(order):
        longest = max(1, len(ids[order[first]]))
        length = -(-longest // multiple) * multiple
        batch = order[first : first + max(1, token_budget // length)]
        first += len(batch)
        tokens = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.bool_)
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


#: glibc's ``mallopt`` parameters (malloc.h) and the values set when the bulk model loads.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_BYTES, _MMAP_BYTES = 256 << 20, 64 << 20


def _keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse while a bulk job runs (process-wide, glibc only).

    By default glibc maps each large tensor fresh and hands the top of its heap back as soon as it is
    freed, so the encoder's activations fault in new pages batch after batch. With fixed thresholds
    (64 MiB for mmap, every activation being smaller; 256 MiB kept at the top of the heap) a squad-dev
    build took 9.06 s against 10.14 s wall (3 alternating fresh-process runs each), system time 0.77
    against 2.25 s, minor faults 0.18 M against 1.0 M, peak RSS within 2% (docs/performance.md).
    :func:`_return_freed_memory` still trims after each job. Leaves the settings alone when the user
    chose them (``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``); False where it cannot apply.
    """
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES))


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


def load_torch_bert(path: Path, max_tokens: int, precision: str) -> TorchBert:
    """Load a plain BERT folder into a :class:`TorchBert` once per process and precision."""
    key = f"torch-bert:{path.resolve()}:{max_tokens}:{precision}"
    prepare_environment()
    with MODELS_LOCK:
        if key not in MODELS:
            config = plain_bert_config(path)
            if config is None:
                raise ConfigError(f"{path} is not a plain BERT mean-pooling model folder")
            import torch

            torch.set_num_threads(max(1, os.cpu_count() or 1))
            _keep_freed_memory()
            try:
                MODELS[key] = TorchBert(path, config, max_tokens, precision)
            except Exception as exc:  # noqa: BLE001 - any load failure means the folder is not usable
                raise ConfigError(f"cannot load the embedding model from {path}: {exc}") from None
        return MODELS[key]
