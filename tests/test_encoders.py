"""The three encoders behind one protocol, and which of them the Embedder uses when (the real packaged model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import packaged_model_path
from rag.embedding import SMALL_JOB_TOKENS, Embedder
from rag.encoders.base import Encoder
from rag.encoders.numpy_bert import NumpyBert
from rag.encoders.st_encoder import SentenceTransformerEncoder
from rag.encoders.torch_bert import TorchBert, load_torch_bert

from .conftest import SEED_QUESTION, SEEDS

TEXTS = [
    SEED_QUESTION,
    "hi",
    "Ünïcödé façade — naïve café, 1873!",
    "Honey bees dance to show the hive where the flowers are. " * 40,  # past 256 word pieces: truncated
    *[p for p in next(SEEDS.glob("*.txt")).read_text(encoding="utf-8").split("\n") if p.strip()][:6],
]


def _encoders() -> dict[str, Encoder]:
    path = packaged_model_path()
    numpy_bert = NumpyBert.load(path, 256)
    assert numpy_bert is not None
    return {
        "numpy": numpy_bert,
        "torch": load_torch_bert(path, 256, "fp32"),
        "sentence-transformers": SentenceTransformerEncoder(path, "fp32"),
    }


def test_the_three_implementations_satisfy_the_protocol_and_agree() -> None:
    """NumPy (questions), torch (bulk) and sentence-transformers, all fp32: one protocol, the same vectors."""
    encoders = _encoders()
    embedder = Embedder(packaged_model_path())
    vectors: dict[str, np.ndarray] = {}
    for name, encoder in encoders.items():
        assert isinstance(encoder, Encoder), name
        assert (encoder.dimension, encoder.max_tokens) == (embedder.dimension, embedder.max_tokens), name
        done: list[int] = []
        vectors[name] = encoder.encode(TEXTS, progress=done.append)
        assert sum(done) == len(TEXTS), name
        assert vectors[name].shape == (len(TEXTS), embedder.dimension) and vectors[name].dtype == np.float32, name
        assert np.allclose(np.linalg.norm(vectors[name], axis=1), 1.0, atol=1e-5), name
        assert float(encoder.encode_one(TEXTS[0]) @ vectors[name][0]) >= 0.9999, name
        assert encoder.encode([]).shape[0] == 0, name
    names = list(vectors)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            cosines = (vectors[a] * vectors[b]).sum(axis=1)
            assert float(cosines.min()) >= 0.9999, (a, b, cosines)


def _spy(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    """Record which encoder class each encode() call went to."""

    def wrap(cls: type, name: str) -> None:
        real: Callable[..., np.ndarray] = cls.encode  # type: ignore[attr-defined]

        def encode(self: Any, *args: Any, **kwargs: Any) -> np.ndarray:
            calls.append(name)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "encode", encode)

    wrap(NumpyBert, "numpy")
    wrap(TorchBert, "torch")
    wrap(SentenceTransformerEncoder, "sentence-transformers")


def test_plain_bert_questions_numpy_until_torch_loads_bulk_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Questions and small jobs in NumPy while torch is not loaded; bulk jobs (many texts, or many
    word pieces) load torch, which then takes questions and small jobs too."""
    calls: list[str] = []
    _spy(monkeypatch, calls)
    embedder = Embedder(packaged_model_path(), precision="fp32")
    assert embedder.plain_bert and isinstance(embedder.question_encoder, NumpyBert)
    embedder.encode_query("a question")
    embedder.encode(["a short job", "of two texts"])  # small: NumPy, torch stays unloaded
    assert embedder._model is None and calls == ["numpy"]
    few_but_long = ["word " * 200] * (SMALL_JOB_TOKENS // 200 + 1)  # few texts, over the token limit
    embedder.encode(few_but_long)
    assert calls[1:] == ["torch"] and isinstance(embedder._model, TorchBert)
    assert embedder.question_encoder is embedder.model  # loaded: questions go through torch's encode_one
    embedder.encode(["a short job"])  # torch is loaded: it takes small jobs too
    assert calls[2:] == ["torch"]

    many = Embedder(packaged_model_path(), precision="fp32")
    assert isinstance(many.question_encoder, NumpyBert)
    many.encode(["short"] * (SMALL_JOB_TOKENS // 100 + 1))  # many texts: bulk, without counting
    assert calls[3:] == ["torch"] and isinstance(many.question_encoder, TorchBert)


def test_warm_loads_torch_for_questions() -> None:
    embedder = Embedder(packaged_model_path(), precision="fp32")
    numpy_vector = embedder.encode_query(TEXTS[0])
    embedder.warm()
    assert isinstance(embedder.question_encoder, TorchBert)
    assert float(embedder.encode_query(TEXTS[0]) @ numpy_vector) >= 0.9999


def test_other_models_use_sentence_transformers_for_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Normalize module: not the plain BERT shape rag runs itself, so sentence-transformers runs it
    (and the wrapper normalises: the same vectors as the packaged model's)."""
    source = packaged_model_path()
    folder = tmp_path / "no-normalize"
    folder.mkdir()
    for item in source.iterdir():
        if item.name != "modules.json":
            (folder / item.name).symlink_to(item)
    modules = json.loads((source / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(modules[:2]))

    calls: list[str] = []
    _spy(monkeypatch, calls)
    embedder = Embedder(folder, precision="fp32")
    assert not embedder.plain_bert and embedder.numpy_encoder is None
    assert isinstance(embedder.question_encoder, SentenceTransformerEncoder)
    question = embedder.encode_query(TEXTS[0])
    vectors = embedder.encode(TEXTS[:2])  # small, but no NumPy encoder: sentence-transformers
    assert calls == ["sentence-transformers", "sentence-transformers"]
    assert (embedder.dimension, embedder.max_tokens) == (embedder.model.dimension, embedder.model.max_tokens)
    reference = Embedder(source, precision="fp32").model.encode(TEXTS[:2])
    assert float((vectors * reference).sum(axis=1).min()) >= 0.999
    assert float(question @ reference[0]) >= 0.999


def test_importing_changes_no_environment_and_loads_no_torch() -> None:
    code = (
        "import os, sys, json\n"
        "before = dict(os.environ)\n"
        "import rag, rag.embedding, rag.encoders.numpy_bert, rag.encoders.torch_bert, rag.encoders.st_encoder\n"
        "from rag.config import packaged_model_path\n"
        "rag.embedding.Embedder(packaged_model_path())\n"
        "changed = sorted(k for k in set(os.environ) | set(before) if os.environ.get(k) != before.get(k))\n"
        "print(json.dumps([changed, sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [[], []], out.stdout + out.stderr


def test_names_imported_from_rag_embedding_before_the_split_still_are() -> None:
    from rag import embedding

    for name in (
        "Embedder",
        "SMALL_JOB_TOKENS",
        "Encoder",
        "NumpyBert",
        "TorchBert",
        "SentenceTransformerEncoder",
        "WordPieceTokenizer",
        "bert_tokenizer",
        "cpu_supports_bf16",
        "load_sentence_transformer",
        "load_torch_bert",
        "padded_batches",
        "plain_bert_config",
        "resolve_precision",
    ):
        assert hasattr(embedding, name), name
        assert name in embedding.__all__, name


def test_a_bf16_disagreement_is_checked_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bf16 encoder that disagrees with fp32 is replaced by the fp32 one; later embedders of the same
    model take fp32 straight away (no second probe, no second warning)."""
    real = TorchBert.encode
    bf16_calls: list[int] = []

    def wrong_in_bf16(self: TorchBert, texts: list[str], progress: Any = None, token_budget: int = 2048) -> np.ndarray:
        if self.precision == "bf16":
            bf16_calls.append(len(texts))
            return np.full((len(texts), 384), 1 / np.sqrt(384), dtype=np.float32)
        return real(self, texts, progress, token_budget)

    monkeypatch.setattr(TorchBert, "encode", wrong_in_bf16)
    monkeypatch.setattr("rag.embedding._BF16_AGREES", {})  # as in a fresh process
    for _ in range(2):
        embedder = Embedder(packaged_model_path(), precision="bf16")
        assert isinstance(embedder.model, TorchBert) and embedder.model.precision == embedder.precision == "fp32"
    assert len(bf16_calls) == 1


def test_loading_the_model_makes_openmp_threads_wait_passively() -> None:
    """Torch's OpenMP threads sleep rather than spin while waiting (a busy machine's cores go to work, not
    to spinning), set before torch loads; a value the user set is kept."""
    code = (
        "import os, sys\n"
        "from rag.config import packaged_model_path\n"
        "from rag.embedding import Embedder\n"
        "assert 'torch' not in sys.modules\n"
        "Embedder(packaged_model_path(), precision='fp32').model\n"
        "print(os.environ.get('OMP_WAIT_POLICY'))\n"
    )
    for given, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if given is not None:
            env["OMP_WAIT_POLICY"] = given
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split()[-1] == expected, out.stdout


def test_a_bulk_job_reuses_freed_memory_instead_of_faulting_in_fresh_pages() -> None:
    """Loading the bulk model fixes glibc's thresholds, so a second bulk encode takes a fraction of the
    page faults it takes with glibc's defaults (measured 13k against 124k here); a setting the user made
    through glibc's own variables is left alone."""
    code = (
        "import resource, sys\n"
        "import rag.encoders.torch_bert as tb\n"
        "from rag.config import packaged_model_path\n"
        "if sys.argv[1] == 'off':\n"
        "    tb._keep_freed_memory = lambda: False\n"
        "model = tb.load_torch_bert(packaged_model_path(), 256, 'fp32')\n"
        "texts = [('word%d ' % i) * 200 for i in range(32)]\n"
        "model.encode(texts)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "model.encode(texts)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    faults = {}
    for mode in ("on", "off"):
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        faults[mode] = int(out.stdout.split()[-1])
    assert faults["on"] * 3 < faults["off"], faults


def test_glibc_thresholds_set_by_the_user_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.encoders.torch_bert import _keep_freed_memory

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert _keep_freed_memory() is False


def test_numpy_gelu_matches_the_exact_erf_gelu() -> None:
    """The in-place GELU of the NumPy encoder against ``math.erf`` over negative, zero and positive inputs."""
    import math

    from rag.encoders.numpy_bert import _gelu

    x = np.concatenate([np.linspace(-12, 12, 20001), [0.0, -0.0, 1e-8, -1e-8]]).astype(np.float32)
    exact = np.array([v * (1 + math.erf(v / math.sqrt(2))) / 2 for v in x.astype(np.float64)])
    got = _gelu(x.copy())
    assert got.dtype == np.float32
    assert float(np.abs(got - exact).max()) < 2e-6


def test_mapped_weights_equal_the_safetensors_library_and_odd_files_fall_back(tmp_path: Path) -> None:
    """The NumPy encoder maps the weights file instead of copying it: the same arrays as the library gives,
    read-only; a file it does not take (another element type, a cut header, offsets past the end) is None."""
    from safetensors.numpy import load_file, save_file

    from rag.encoders.numpy_bert import mapped_safetensors

    model = packaged_model_path() / "model.safetensors"
    mapped, copied = mapped_safetensors(model), load_file(str(model))
    assert mapped is not None and mapped.keys() == copied.keys()
    for name, array in copied.items():
        assert mapped[name].dtype == array.dtype and np.array_equal(mapped[name], array), name
    assert not mapped["embeddings.word_embeddings.weight"].flags.writeable

    save_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(tmp_path / "ok.safetensors"))
    ok = mapped_safetensors(tmp_path / "ok.safetensors")
    assert ok is not None and ok["a"].tolist() == [[0, 1, 2], [3, 4, 5]]
    save_file({"a": np.zeros(4, dtype=np.bool_)}, str(tmp_path / "bool.safetensors"))
    assert mapped_safetensors(tmp_path / "bool.safetensors") is None
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "ok.safetensors").read_bytes()[:20])
    assert mapped_safetensors(tmp_path / "cut.safetensors") is None
    data = (tmp_path / "ok.safetensors").read_bytes()
    (tmp_path / "short.safetensors").write_bytes(data[:-8])  # the header promises more data than there is
    assert mapped_safetensors(tmp_path / "short.safetensors") is None


def test_a_half_precision_weights_file_is_widened_to_float32(tmp_path: Path) -> None:
    """A model folder whose safetensors hold fp16 (mapped as they are) still computes in float32, and its
    vectors stay those of the fp32 file to within fp16 rounding of the weights."""
    import shutil

    from safetensors.numpy import load_file, save_file

    source = packaged_model_path()
    folder = tmp_path / "model"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    weights = load_file(str(source / "model.safetensors"))
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in weights.items()}
    save_file(half, str(folder / "model.safetensors"))
    wide, full = NumpyBert.load(folder, 256), NumpyBert.load(source, 256)
    assert wide is not None and full is not None
    assert all(v.dtype != np.float16 for v in wide.w.values())
    vector = wide.encode_one(SEED_QUESTION)
    assert vector.dtype == np.float32 and float(vector @ full.encode_one(SEED_QUESTION)) >= 0.999
