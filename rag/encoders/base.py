"""What every encoder shares: the :class:`Encoder` protocol, the model folder's tokenizer and config
checks, the once-per-process model cache, and the settings model libraries read when they load."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: Loaded models by key (folder, kind, precision): each is loaded once per process and shared.
MODELS: dict[str, Any] = {}
MODELS_LOCK = threading.Lock()


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors of one model."""

    #: Length of the vectors.
    dimension: int
    #: Longest input read, in word pieces (special tokens included); longer texts are truncated.
    max_tokens: int

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Vectors of ``texts`` in order, shape (n, dimension); ``progress(n_done)`` as batches finish."""
        ...

    def encode_one(self, text: str) -> np.ndarray:
        """The vector of one short text (a question), shape (dimension,)."""
        ...


def prepare_environment() -> None:
    """Settings the model libraries read when they load (not on ``import rag``: only when a model loads).

    No hub (the model is a local folder), no tokenizer threads of their own, and a small oneDNN kernel
    cache: length-sorted batches have a new shape almost every time, so a large cache only grows
    (measured: +120 MiB on squad-dev, no speed-up). OpenMP threads sleep while they wait rather than
    spin: on a machine whose cores are busy with other work, spinning threads burn the CPU the
    descheduled ones need (measured, 300 squad-dev chunks, 2 threads, load average 15 on 2 cores:
    58 s wall and 19.4 CPU-s spinning, 4 to 16 s and 3.7 to 4.4 CPU-s passive). Read when torch loads,
    which is after this. Variables the user set are kept.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
    prepare_environment()
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer
