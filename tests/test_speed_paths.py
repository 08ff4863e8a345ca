"""The fast paths give the same results as the plain ones: bf16 vs fp32, NumPy query encoder, IVF vs exact
(the encoders themselves, and which one the Embedder uses when: tests/test_encoders.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import Assistant
from rag.config import packaged_model_path
from rag.embedding import Embedder
from rag.encoders.torch_bert import cpu_supports_bf16, resolve_precision
from rag.stores import Changes, DocumentRecord, FaissStore, NewChunk

from .conftest import SEED_QUESTION, SEEDS, SQUAD, missing

TEXTS = [
    SEED_QUESTION,
    "hi",
    "Ünïcödé façade — naïve café, 1873!",
    "The quick brown fox jumps over the lazy dog. " * 60,  # longer than 256 word pieces: truncated
    *[p for p in next(SEEDS.glob("*.txt")).read_text(encoding="utf-8").split("\n") if p.strip()],
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """sentence-transformers' own fp32 vectors of TEXTS: what every fast path is held to."""
    import torch

    from rag.encoders.st_encoder import load_sentence_transformer as _load_model

    with torch.inference_mode():
        vectors = _load_model(packaged_model_path()).encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


def many_texts() -> list[str]:
    if not (SQUAD / "docs").is_dir():
        missing(f"the squad-dev set is not at {SQUAD} (its paragraphs give the texts of mixed lengths)")
    text = (SQUAD / "docs" / "oxygen.txt").read_text(encoding="utf-8")
    return [*TEXTS, *[p for p in text.split("\n\n") if p.strip()][:40]]


def test_auto_precision_follows_the_cpu() -> None:
    assert resolve_precision("auto") == ("bf16" if cpu_supports_bf16() else "fp32")
    assert resolve_precision("fp32") == "fp32"


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])
def test_bulk_encoder_matches_sentence_transformers(precision: str) -> None:
    """The torch encoder that indexes (bf16 where the CPU has it) stays within cosine 0.999 of fp32
    sentence-transformers on texts of mixed lengths batched together (padding masked), in input order."""
    import torch

    from rag.encoders.st_encoder import load_sentence_transformer as _load_model
    from rag.encoders.torch_bert import TorchBert

    texts = many_texts()
    with torch.inference_mode():
        reference = _load_model(packaged_model_path()).encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    embedder = Embedder(packaged_model_path(), precision=precision)
    done: list[int] = []
    fast = embedder.encode(texts, progress=done.append)
    assert isinstance(embedder.model, TorchBert) and embedder.model.precision == resolve_precision(precision)
    assert fast.shape == (len(texts), 384) and fast.dtype == np.float32 and sum(done) == len(texts)
    cosines = (reference * fast).sum(axis=1)
    assert cosines.min() >= (0.99999 if embedder.precision == "fp32" else 0.999), cosines.min()
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    # Alone or in a batch, a text gets the same vector (the padding of its batch does not leak in).
    alone = embedder.model.encode([texts[1]])[0]
    assert float(alone @ fast[1]) >= 0.9999


def test_numpy_query_encoder_matches_torch(reference: np.ndarray) -> None:
    fresh = Embedder(packaged_model_path())
    numpy_encoder = fresh.numpy_encoder
    assert numpy_encoder is not None
    first = fresh.encode_query(TEXTS[0])  # one question alone never loads torch (a loop of them does, later)
    assert fresh._model is None, "the query path must not load torch"
    assert float(first @ reference[0]) >= 0.9999
    for text, ref in zip(TEXTS, reference, strict=True):
        vector = numpy_encoder.encode_one(text)
        assert vector.shape == (384,) and vector.dtype == np.float32
        assert float(vector @ ref) >= 0.9999, text[:40]


def test_small_jobs_and_queries_never_import_torch(tmp_path: Path) -> None:
    """Re-indexing an edited paragraph embeds in NumPy: a fresh process never imports torch for it."""
    code = (
        "import sys, json\n"
        "from rag import Assistant\n"
        f"a = Assistant(index_dir={str(tmp_path / 'i')!r})\n"
        f"r = a.index([{str(tmp_path / 'c')!r}])\n"
        "v = a.embedder.encode(['one more short text', 'and another'])\n"
        "print(json.dumps([r.chunks_embedded, v.shape[0], sorted(m for m in ('torch', 'sentence_transformers',"
        " 'transformers') if m in sys.modules), v.tolist()]))"
    )
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.md").write_text("# Bees\n\nHoney bees dance to show where flowers are.\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    embedded, rows, imported, vectors = json.loads(out.stdout)
    assert (embedded, rows, imported) == (1, 2, []), out.stdout + out.stderr
    # The NumPy vectors of a small job are the torch ones.
    bulk = Embedder(packaged_model_path(), precision="fp32").model.encode(["one more short text", "and another"])
    assert (np.asarray(vectors, dtype=np.float32) * bulk).sum(axis=1).min() >= 0.9999


def test_other_models_go_through_sentence_transformers(tmp_path: Path) -> None:
    """A model that is not plain BERT mean pooling (here: CLS pooling) is run by sentence-transformers."""
    import shutil

    folder = tmp_path / "cls-model"
    shutil.copytree(packaged_model_path(), folder)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    embedder = Embedder(folder, precision="fp32")
    assert not embedder.plain_bert and embedder.numpy_encoder is None
    vectors = embedder.encode(TEXTS[:3])
    from rag.encoders.st_encoder import SentenceTransformerEncoder

    model = embedder.model
    assert isinstance(model, SentenceTransformerEncoder) and type(model.model).__name__ == "SentenceTransformer"
    assert float(embedder.encode_query(TEXTS[0]) @ vectors[0]) >= 0.9999  # questions through the same model
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    mean = Embedder(packaged_model_path(), precision="fp32").encode(TEXTS[:3])
    assert (vectors * mean).sum(axis=1).min() < 0.999, "CLS pooling must differ from mean pooling"


def test_rag_ask_in_a_fresh_process_loads_neither_torch_nor_sentence_transformers(seed_index: Path) -> None:
    code = (
        "import sys, io, contextlib; from rag.cli import main\n"
        "out = io.StringIO()\n"
        f"args = ['ask', {SEED_QUESTION!r}, '--index', {str(seed_index)!r}]\n"
        "with contextlib.redirect_stdout(out): code = main(args)\n"
        "print(code, 'Trump' in out.getvalue(), "
        "sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'gradio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0 True []", out.stdout + out.stderr


def test_unchanged_reindex_never_loads_the_model(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Bees\n\nHoney bees dance to show where flowers are.\n", encoding="utf-8")
    Assistant(index_dir=tmp_path / "i").index([corpus])
    fresh = Assistant(index_dir=tmp_path / "i")
    report = fresh.index([corpus])
    assert report.unchanged == ["a.md"] and report.chunks_embedded == 0
    assert fresh.embedder._model is None


def _clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, 384)).astype(np.float32)
    vectors = centres[rng.integers(0, 20, n)] + 0.8 * rng.standard_normal((n, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_index_structure_follows_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.stores.faiss_build as faiss_build

    monkeypatch.setattr(faiss_build, "EXACT_LIMIT", 600)
    store = FaissStore(tmp_path / "idx")
    store.create({"dimension": 384})
    vectors = _clustered(1200, 1)

    def add(source: str, rows: range) -> None:
        record = DocumentRecord(source, source, "/", source, 1, 1, "text", "utf-8", len(rows), 0.0, 0.0)
        chunks = [NewChunk(f"{source}-{i}", i, i + 1, "", f"chunk {i}", vectors[i]) for i in rows]
        store.apply(Changes(upserts=[(record, chunks)]))

    add("small", range(0, 200))
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["faiss_index"]["type"].startswith("IndexIDMap2")
    add("large", range(200, 1200))
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["faiss_index"]["type"] == "IndexIVFFlat"

    # Approximate search agrees with exact search on most neighbours, ids map back to chunks.
    exact = vectors @ vectors[:50].T
    found = 0
    for q in range(50):
        truth = set(np.argsort(-exact[:, q])[:10].tolist())
        hits = store.search(vectors[q], 10)
        rows = store.chunks([chunk_id for chunk_id, _ in hits])
        found += len(truth & {int(rows[i].text.split()[1]) for i, _ in hits})
    assert found / 500 >= 0.9

    # Removal works on IVF, and a fresh process (a new store object) reads the same index.
    store.apply(Changes(removals=["large"]))
    reopened = FaissStore(tmp_path / "idx")
    assert all(reopened.chunks([i])[i].source == "small" for i, _ in reopened.search(vectors[700], 10))
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["faiss_index"]["type"].startswith("IndexIDMap2"), "shrunk below the limit: exact again"
    assert os.path.exists(tmp_path / "idx" / "store.sqlite")


def test_warm_embeds_questions_through_torch(reference: np.ndarray) -> None:
    """After warm() (what the servers call) questions go through the loaded torch model, same vectors."""
    from rag.encoders.torch_bert import TorchBert

    embedder = Embedder(packaged_model_path())
    numpy_vectors = [embedder.encode_query(text) for text in TEXTS]
    embedder.warm()
    assert isinstance(embedder._model, TorchBert)
    for text, ref, before in zip(TEXTS, reference, numpy_vectors, strict=True):
        vector = embedder.encode_query(text)
        assert vector.shape == (384,) and vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
        floor = 0.9999 if embedder.precision == "fp32" else 0.999
        assert float(vector @ ref) >= floor and float(vector @ before) >= floor, text[:40]


def test_a_loop_of_questions_gets_the_torch_encoder_by_itself(seed_index: Path) -> None:
    """A program that calls ask() in a loop, without warm(), moves to the bulk model on its own; one question
    alone (a one-shot `rag ask`) never starts loading it; a program that exits while it loads exits cleanly."""
    code = (
        "import sys, json\n"
        "from rag import Assistant\n"
        f"a = Assistant(index_dir={str(seed_index)!r})\n"
        f"first = a.ask({SEED_QUESTION!r})\n"
        "after_one = ('torch' in sys.modules, a.embedder._warmer is not None)\n"
        "for _ in range(int(sys.argv[1])): a.ask('When will she visit?')\n"
        "if sys.argv[2] == 'wait':\n"
        "    loaded = a.embedder.wait_warm(timeout=300)\n"
        f"    last = a.ask({SEED_QUESTION!r})\n"
        "    print(json.dumps([after_one, loaded, type(a.embedder.question_encoder).__name__,"
        " last.text == first.text]))\n"
        "else:\n"
        "    print(json.dumps([after_one]))\n"
    )
    looped = subprocess.run([sys.executable, "-c", code, "3", "wait"], capture_output=True, text=True, timeout=600)
    assert looped.returncode == 0, looped.stderr
    after_one, loaded, encoder, same = json.loads(looped.stdout)
    assert after_one == [False, False], "one question never loads torch"
    assert loaded and encoder == "TorchBert" and same
    # two questions, then exit at once (the model may be half loaded): a clean exit, nothing on stderr
    quick = subprocess.run([sys.executable, "-c", code, "1", "exit"], capture_output=True, text=True, timeout=600)
    assert quick.returncode == 0 and "Fatal" not in quick.stderr and "Traceback" not in quick.stderr, quick.stderr


def test_batches_are_padded_to_the_attention_kernels_fast_lengths() -> None:
    """Batches are padded to a multiple of PAD_MULTIPLE word pieces (torch's fused CPU attention runs about
    twice as fast per score there); the padding is masked, so vectors equal those of unpadded batches."""
    from rag.encoders.torch_bert import PAD_MULTIPLE, padded_batches

    embedder = Embedder(packaged_model_path(), precision="fp32")
    texts = many_texts()
    ids = [e.ids for e in embedder.model.tokenizer.encode_batch(texts)]  # type: ignore[attr-defined]
    seen: list[int] = []
    for batch, tokens, mask in padded_batches(ids, 2048):
        assert PAD_MULTIPLE > 1 and tokens.shape[1] % PAD_MULTIPLE == 0 and tokens.shape == mask.shape
        assert tokens.shape[1] - max(len(ids[i]) for i in batch) < PAD_MULTIPLE
        for row, i in enumerate(batch):
            assert mask[row].sum() == len(ids[i]) and list(tokens[row, : len(ids[i])]) == ids[i]
        seen += batch
    assert sorted(seen) == list(range(len(texts)))
    padded = embedder.model.encode(texts)
    import rag.encoders.torch_bert as torch_bert

    plain = list(padded_batches(ids, 2048, multiple=1))
    assert any(tokens.shape[1] % PAD_MULTIPLE for _, tokens, _ in plain)  # the comparison is not vacuous
    original = torch_bert.padded_batches

    def unpadded_batches(ids: Any, budget: int, multiple: int = 1) -> Any:
        return original(ids, budget, multiple=1)

    try:
        torch_bert.padded_batches = unpadded_batches
        unpadded = embedder.model.encode(texts)
    finally:
        torch_bert.padded_batches = original
    assert float((padded * unpadded).sum(axis=1).min()) >= 0.99999
