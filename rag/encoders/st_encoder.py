"""Models that are not plain BERT mean-pooling ones, through sentence-transformers (loaded once per process)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import MODELS, MODELS_LOCK, prepare_environment


def load_sentence_transformer(path: Path) -> Any:
    """Load a model folder once per process and share it between embedders."""
    key = str(path.resolve())
    prepare_environment()
    with MODELS_LOCK:
        if key not in MODELS:
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
            MODELS[key] = model
        return MODELS[key]


def embedding_dimension(model: Any) -> int:
    """Length of a SentenceTransformer's vectors (``get_embedding_dimension`` in new releases)."""
    method = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(method())


class SentenceTransformerEncoder:
    """An :class:`~rag.encoders.base.Encoder` over a SentenceTransformer (bf16 autocast when asked)."""

    def __init__(self, path: Path, precision: str, batch_size: int = 16) -> None:
        self.model = load_sentence_transformer(path)
        self.precision = precision
        self.batch_size = batch_size
        self.dimension = embedding_dimension(self.model)
        self.max_tokens = int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Vectors of ``texts`` in order, batches of similar length, renormalised in float32."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        bf16 = self.precision == "bf16"
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            for first in range(0, len(order), self.batch_size):
                batch = order[first : first + self.batch_size]
                vectors = self.model.encode(
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

    def encode_one(self, text: str) -> np.ndarray:
        """The vector of one text."""
        return self.encode([text])[0]
