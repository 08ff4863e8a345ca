"""The one-question path of the torch encoder: bf16 matrices packed once for oneDNN, the question padded
to a multiple of ``QUESTION_PAD`` pieces (padding masked). Its vectors must match sentence-transformers'
fp32 ones and the bulk path's; where it is off, fails or disagrees, questions take the plain path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from rag.config import model_max_tokens, packaged_model_path
from rag.encoders import torch_bert
from rag.encoders.base import plain_bert_config
from rag.encoders.torch_bert import QUESTION_PAD, TorchBert

from .conftest import ROOT, SEED_QUESTION

#: Questions of many lengths: a few pieces, near and exactly at multiples of QUESTION_PAD, over 64, and one
#: longer than the model reads (truncated to 256 pieces).
QUESTIONS = [
    "hi",
    SEED_QUESTION,
    "What was the company's total revenue for the three months ended March 31, compared with a year earlier?",
    "Ünïcödé façade — naïve café: who founded the bakery on the Rue de Rivoli in 1873, and why?",
    "Which harbour ships barley, rye, oats and wheat to the northern mills every spring, how many tonnes a week "
    "does it load, and which railway company carries the grain inland from the quays after the harvest?",
    "Why? " * 200,
]


def _bf16_model() -> TorchBert:
    """A fresh bf16 encoder (not the process-wide cached one: each test sees its own packing). On a CPU
    without native bf16, ``auto`` would pick fp32; bf16 asked for explicitly still runs there."""
    path = packaged_model_path()
    config = plain_bert_config(path)
    assert config is not None
    return TorchBert(path, config, model_max_tokens(path), "bf16")


def _packs() -> bool:
    """Whether oneDNN computes bf16 here (any x86-64 CPU with AVX-512): where not, the packed path is
    reported unavailable and the tests check the fallback instead."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """sentence-transformers' own fp32 vectors of QUESTIONS."""
    import torch

    from rag.encoders.st_encoder import load_sentence_transformer

    with torch.inference_mode():
        model = load_sentence_transformer(packaged_model_path())
        vectors = model.encode(QUESTIONS, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


def _spy(model: TorchBert, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, per forward pass, whether it ran on packed weights."""
    packed_calls: list[bool] = []
    forward = model._forward

    def spy(tokens: Any, mask: Any, packed: Any = None) -> Any:
        packed_calls.append(packed is not None)
        return forward(tokens, mask, packed)

    monkeypatch.setattr(model, "_forward", spy)
    return packed_calls


def test_packed_questions_match_sentence_transformers_and_the_bulk_path(
    reference: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _bf16_model()
    lengths = [len(model.tokenizer.encode(q).ids) for q in QUESTIONS]
    assert {n % QUESTION_PAD == 0 for n in lengths} == {True, False} and max(lengths) > 2 * QUESTION_PAD, lengths
    packed_calls = _spy(model, monkeypatch)
    vectors = np.stack([model.encode_one(q) for q in QUESTIONS])
    assert model.question_path == ("packed" if _packs() else "no oneDNN bf16")
    assert packed_calls[-len(QUESTIONS) :] == [_packs()] * len(QUESTIONS), "every question took the packed path"
    bulk = model.encode(QUESTIONS)
    assert vectors.shape == (len(QUESTIONS), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    for question, vector, ref, together in zip(QUESTIONS, vectors, reference, bulk, strict=True):
        assert float(vector @ ref) >= 0.9999, (question[:40], float(vector @ ref))
        assert float(vector @ together) >= 0.9999, (question[:40], float(vector @ together))


def test_questions_take_the_plain_path_when_packing_is_off(
    reference: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch_bert, "PACK_QUESTION_WEIGHTS", False)
    model = _bf16_model()
    packed_calls = _spy(model, monkeypatch)
    vectors = np.stack([model.encode_one(q) for q in QUESTIONS])
    assert model.question_path == "off" and model.packed_weights() is None
    assert packed_calls == [False] * len(QUESTIONS)
    assert float(np.min((vectors * reference).sum(axis=1))) >= 0.9999


@pytest.mark.parametrize("failure", ["raises", "wrong"])
def test_a_failing_or_wrong_packing_falls_back_to_the_plain_path(
    failure: str, reference: np.ndarray, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A oneDNN build that cannot pack, or packs wrongly, is caught by the probe when the weights are
    packed: questions then take the plain path and keep their vectors."""
    import torch

    real = torch.ops.mkldnn._reorder_linear_weight

    def broken(weight: Any, rows: int) -> Any:
        if failure == "raises":
            raise RuntimeError("no such kernel")
        return real(weight.flip(1), rows)  # columns permuted: a plausible-looking, wrong matrix

    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", broken)
    model = _bf16_model()
    packed_calls = _spy(model, monkeypatch)
    vectors = np.stack([model.encode_one(q) for q in QUESTIONS])
    if _packs():
        assert model.question_path == ("failed" if failure == "raises" else "disagrees")
        assert "plain path" in caplog.text
    else:
        assert model.question_path == "no oneDNN bf16"
    assert packed_calls[-len(QUESTIONS) :] == [False] * len(QUESTIONS)
    assert float(np.min((vectors * reference).sum(axis=1))) >= 0.9999


_WITHOUT_AMX = """
import json, sys
import numpy as np
from rag.config import model_max_tokens, packaged_model_path
from rag.encoders.base import plain_bert_config
from rag.encoders.torch_bert import TorchBert
path = packaged_model_path()
model = TorchBert(path, plain_bert_config(path), model_max_tokens(path), "bf16")
questions = json.loads(sys.argv[1])
vectors = np.stack([model.encode_one(q) for q in questions])
print("RESULT", json.dumps({"path": model.question_path, "vectors": vectors.tolist()}), flush=True)
"""


@pytest.mark.parametrize("isa", ["AVX512_CORE_BF16", "AVX512_CORE"])
def test_packed_questions_on_a_cpu_without_amx(isa: str, reference: np.ndarray) -> None:
    """The machines this runs on in production have AVX-512 BF16 but no AMX (and a CPU may have neither):
    oneDNN limited to those instruction sets here gives the same vectors through the packed path."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa, "ONEDNN_VERBOSE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_AMX, json.dumps(QUESTIONS)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    isa_lines = [line for line in done.stdout.splitlines() if line.startswith("onednn_verbose") and ",isa:" in line]
    assert isa_lines and "AMX" not in isa_lines[0], isa_lines  # oneDNN really ran without AMX
    assert any(",inner_product," in line for line in done.stdout.splitlines()) or not _packs()
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["path"] == ("packed" if _packs() else "no oneDNN bf16")
    vectors = np.asarray(result["vectors"], dtype=np.float32)
    assert float(np.min((vectors * reference).sum(axis=1))) >= 0.9999
