"""What size costs, measured on this machine: the figures behind docs/scaling.md.

    .venv/bin/python bench/scale.py                       # everything (about 30-40 min on 2 cores)
    .venv/bin/python bench/scale.py --parts embed         # only the embedding throughput
    .venv/bin/python bench/scale.py --sizes 100000 --parts faiss,milvus

Parts (each measurement runs in its own process, so memory figures are that process's growth):

- ``embed``: embedding throughput of the real model on squad-dev chunks, in word pieces per second of
  wall time (best of 3) and per CPU-second (what a core delivers, whatever else runs on a shared
  machine), with 1 and 2 torch threads, fp32 and bf16; and the latency of one query embedding.
- ``faiss``: exact (IndexFlatIP), HNSW (M=32) and IVF (flat and PQ48) indexes over synthetic, clustered,
  normalised 384-d vectors: build time, memory, search p50/p95 one query at a time, recall@10 against exact.
- ``milvus``: Milvus Lite (FLAT and HNSW through pymilvus, in-process): insert rate, search p50,
  recall@10, memory and disk. Inserting stops at ``--milvus-budget`` seconds; what was not
  inserted is reported, never guessed.
- ``bm25``: SQLite FTS5 (the BM25 side, as the index uses it): insert rate, size and query time on
  synthetic passages with a Zipf vocabulary.

Results are printed and written as JSON to ``--out`` (default bench/results/scale.json). The bench is
not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad-dev" / "docs"
CACHE = Path(tempfile.gettempdir()) / "rag-bench-scale"


# ------------------------------------------------------------ helpers


def rss_mb() -> float:
    """Resident memory of this process now, in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def synthetic(n: int, seed: int) -> np.ndarray:
    """Normalised 384-d vectors around n/200 random centres (real embeddings are clustered, not uniform)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(100, n // 200), DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for first in range(0, n, 100_000):
        m = min(100_000, n - first)
        out[first : first + m] = centres[rng.integers(0, len(centres), m)]
        out[first : first + m] += 1.2 * rng.standard_normal((m, DIM)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def dataset(n: int, queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base vectors, query vectors (from the same distribution) and exact top-10 ids, cached on disk."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"data-{n}-{queries}.npz"
    if not path.exists():
        import faiss

        data = synthetic(n + queries, seed=7)
        base, query = data[:n], data[n:]
        exact = faiss.IndexFlatIP(DIM)
        exact.add(base)
        _, truth = exact.search(query, 10)
        np.savez(path, base=base, query=query, truth=truth)
    loaded = np.load(path)
    return loaded["base"], loaded["query"], loaded["truth"]


def latency(search: Any, queries: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Search one query at a time: p50 / p95 in ms and recall@10 against the exact ids."""
    times, found = [], 0
    for q, want in zip(queries, truth, strict=True):
        began = time.perf_counter()
        ids = search(q)
        times.append(time.perf_counter() - began)
        found += len(set(int(i) for i in ids[:10]) & set(int(i) for i in want))
    times.sort()
    return {
        "p50_ms": round(1000 * times[len(times) // 2], 2),
        "p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 2),
        "recall_at_10": round(found / (10 * len(queries)), 4),
    }


def child(part: str, **kwargs: Any) -> dict[str, Any]:
    """Run one measurement in a fresh process and return its JSON line."""
    command = [sys.executable, __file__, "--child", json.dumps({"part": part, **kwargs})]
    result = subprocess.run(command, capture_output=True, text=True, timeout=4 * 3600, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        return {"part": part, **kwargs, "error": (result.stderr or result.stdout)[-2000:]}
    return dict(json.loads(lines[-1]))


# ------------------------------------------------------------ measurements (run in children)


def measure_faiss(kind: str, n: int, queries: int) -> dict[str, Any]:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    base, query, truth = dataset(n, queries)
    before = rss_mb()
    began, began_cpu = time.perf_counter(), time.process_time()
    if kind == "flat":
        index = faiss.IndexFlatIP(DIM)
        index.add(base)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 64
        index.add(base)
    else:  # ivf-flat, ivf-pq48
        lists = 1024 if n >= 500_000 else 256
        quantizer = faiss.IndexFlatIP(DIM)
        if kind == "ivf-flat":
            index = faiss.IndexIVFFlat(quantizer, DIM, lists, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFPQ(quantizer, DIM, lists, 48, 8, faiss.METRIC_INNER_PRODUCT)
        index.train(base[:: max(1, n // (lists * 40))])
        index.add(base)
    build, build_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    grown = rss_mb() - before
    size = faiss.serialize_index(index).nbytes / 2**20
    results: dict[str, Any] = {
        "build_s": round(build, 1),
        "build_cpu_s": round(build_cpu, 1),
        "index_mib": round(size, 1),
        "rss_growth_mib": round(grown),
    }
    faiss.omp_set_num_threads(1)  # latency of one query on one core, as a server handling many would see it
    depths = {"hnsw": [32, 64, 128], "ivf-flat": [8, 32], "ivf-pq48": [8, 32]}.get(kind, [0])
    for depth in depths:
        if kind == "hnsw":
            index.hnsw.efSearch = depth
        elif kind.startswith("ivf"):
            index.nprobe = depth
        measured = latency(lambda q: index.search(q.reshape(1, -1), 10)[1][0], query, truth)
        results[f"search_{depth}" if depth else "search"] = measured
    if kind == "ivf-pq48":  # re-rank 10x the candidates with the full vectors (kept on disk at scale)
        refine = faiss.IndexRefineFlat(index, faiss.swig_ptr(base))
        refine.k_factor = 10
        index.nprobe = 32
        results["search_32_rerank100"] = latency(lambda q: refine.search(q.reshape(1, -1), 10)[1][0], query, truth)
    return {"bytes_per_vector": round(size * 2**20 / n, 1), **results}


def measure_milvus(index: str, n: int, queries: int, budget: float) -> dict[str, Any]:
    from pymilvus import DataType, MilvusClient

    base, query, truth = dataset(n, queries)
    folder = CACHE / f"milvus-{index}-{n}.db"
    shutil.rmtree(folder, ignore_errors=True)
    before = rss_mb()
    client = MilvusClient(str(folder))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    params = client.prepare_index_params()
    extra = {"M": 32, "efConstruction": 64} if index == "HNSW" else {}
    params.add_index("vector", index_type=index, metric_type="IP", params=extra)
    client.create_collection("bench", schema=schema, consistency_level="Strong")
    client.create_index("bench", params, sync=False)
    client.load_collection("bench")
    began = time.perf_counter()
    inserted = 0
    for first in range(0, n, 5000):
        rows = [{"id": first + i, "vector": v} for i, v in enumerate(base[first : first + 5000])]
        client.insert("bench", rows)
        inserted = first + len(rows)
        if time.perf_counter() - began > budget:
            break
    insert_s = time.perf_counter() - began
    began = time.perf_counter()
    client.flush("bench")
    flush_s = time.perf_counter() - began
    if inserted < n:  # exact answers for the rows that made it in
        sub = base[:inserted]
        truth = np.argsort(-(query @ sub.T), axis=1)[:, :10]
    search_params = {"metric_type": "IP", "params": {"ef": 128} if index == "HNSW" else {}}

    def search(q: np.ndarray) -> list[int]:
        hits = client.search("bench", data=[q], limit=10, output_fields=["id"], search_params=search_params)
        return [int(h["id"]) for h in hits[0]]

    search(query[0])
    measured = latency(search, query, truth)
    disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    client.close()
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "inserted": inserted,
        "complete": inserted == n,
        "insert_s": round(insert_s, 1),
        "insert_rows_per_s": round(inserted / insert_s),
        "flush_s": round(flush_s, 1),
        "rss_growth_mib": round(rss_mb() - before),
        "disk_mib": round(disk),
        "search": measured,
    }


def measure_embedding(threads: int, precision: str, sample: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    from rag import Assistant

    assistant = Assistant(index_dir=CACHE / "embed-index", precision=precision)
    chunker, embedder = assistant.chunker, assistant.embedder
    from rag.documents import load

    texts: list[str] = []
    for path in sorted(SQUAD.glob("*.txt")):
        document = load(path, path.name)
        texts += [chunker.embedding_input(path.name, c) for c in chunker.chunk(document)]
        if len(texts) >= sample:
            break
    texts = texts[:sample]
    pieces = sum(min(embedder.tokenizer.count(t) + 2, embedder.max_tokens) for t in texts)
    embedder.encode(texts[:32])  # warm up (loading the model sets torch to all cores: set it back)
    torch.set_num_threads(threads)
    seconds = cpu = float("inf")
    for _ in range(3):  # best of 3: the wall time of a shared machine only ever gets worse
        began, began_cpu = time.perf_counter(), time.process_time()
        embedder.encode(texts)
        seconds = min(seconds, time.perf_counter() - began)
        cpu = min(cpu, time.process_time() - began_cpu)
    query_times = []
    for text in texts[:50]:
        began = time.perf_counter()
        embedder.encode_query(text[:200])
        query_times.append(time.perf_counter() - began)
    query_times.sort()
    return {
        "chunks": len(texts),
        "word_pieces": pieces,
        "mean_pieces_per_chunk": round(pieces / len(texts), 1),
        "seconds": round(seconds, 2),
        "pieces_per_s": round(pieces / seconds),
        "cpu_s": round(cpu, 2),
        "pieces_per_cpu_s": round(pieces / cpu),
        "chunks_per_s": round(len(texts) / seconds, 1),
        "query_embedding_p50_ms": round(1000 * query_times[len(query_times) // 2], 1),
        "precision": embedder.precision,
    }


def measure_bm25(n: int, queries: int) -> dict[str, Any]:
    import sqlite3

    rng = np.random.default_rng(11)
    vocabulary = np.array([f"w{i}" for i in range(50_000)])
    ranks = np.arange(1, len(vocabulary) + 1)
    probability = (1 / ranks) / (1 / ranks).sum()
    path = CACHE / f"fts-{n}.sqlite"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text, tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    began = time.perf_counter()
    for first in range(0, n, 20_000):
        m = min(20_000, n - first)
        words = vocabulary[rng.choice(len(vocabulary), size=(m, 150), p=probability)]
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO chunks_fts(rowid, title, text) VALUES (?, ?, ?)",
            ((first + i + 1, f"doc{(first + i) // 20}", " ".join(row)) for i, row in enumerate(words)),
        )
        conn.execute("COMMIT")
    insert_s = time.perf_counter() - began
    times = []
    content = slice(100, 20_000)  # the first 100 ranks act as stop words, which questions lose before BM25
    weights = probability[content] / probability[content].sum()
    for _ in range(queries):
        terms = vocabulary[content][rng.choice(len(weights), size=5, p=weights)]
        match = " OR ".join(f'"{t}"' for t in dict.fromkeys(terms))
        began = time.perf_counter()
        conn.execute(
            "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts, 0.5, 1.0) LIMIT 100",
            (match,),
        ).fetchall()
        times.append(time.perf_counter() - began)
    conn.close()
    size = sum(p.stat().st_size for p in CACHE.glob(f"fts-{n}.sqlite*")) / 2**20
    for p in CACHE.glob(f"fts-{n}.sqlite*"):
        p.unlink()
    times.sort()
    return {
        "passages": n,
        "words_per_passage": 150,
        "insert_s": round(insert_s, 1),
        "rows_per_s": round(n / insert_s),
        "disk_mib": round(size),
        "query_p50_ms": round(1000 * times[len(times) // 2], 1),
        "query_p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 1),
    }


# ------------------------------------------------------------ orchestration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="vector counts, comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="queries per search measurement")
    parser.add_argument("--parts", default="embed,faiss,milvus,bm25")
    parser.add_argument("--milvus-budget", type=float, default=480, help="seconds of inserting per Milvus Lite run")
    parser.add_argument("--milvus-indexes", default="FLAT,HNSW", help="Milvus Lite index types to measure")
    parser.add_argument("--embed-sample", type=int, default=256, help="chunks embedded per measurement")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        spec = json.loads(args.child)
        part = spec.pop("part")
        began = time.perf_counter()
        function = {"faiss": measure_faiss, "milvus": measure_milvus, "embed": measure_embedding, "bm25": measure_bm25}
        result = function[part](**spec)
        print(json.dumps({"part": part, **spec, **result, "wall_s": round(time.perf_counter() - began, 1)}))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    parts = set(args.parts.split(","))
    out = Path(args.out)
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    results["machine"] = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }

    def record(key: str, value: dict[str, Any]) -> None:
        results[key] = value
        print(f"{key}: {json.dumps(value)}", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")

    if "embed" in parts:
        for precision in ("fp32", "bf16"):
            for threads in (1, 2):
                record(
                    f"embed/{precision}/{threads}t",
                    child("embed", threads=threads, precision=precision, sample=args.embed_sample),
                )
    for n in sizes:
        if parts & {"faiss", "milvus"}:
            dataset(n, args.queries)  # build the shared data and ground truth once
        if "faiss" in parts:
            for kind in ("flat", "hnsw", "ivf-flat", "ivf-pq48"):
                record(f"faiss/{kind}/{n}", child("faiss", kind=kind, n=n, queries=args.queries))
        if "milvus" in parts:
            for index in args.milvus_indexes.split(","):
                record(
                    f"milvus-lite/{index}/{n}",
                    child("milvus", index=index, n=n, queries=min(args.queries, 50), budget=args.milvus_budget),
                )
        if "bm25" in parts:
            record(f"bm25/{n}", child("bm25", n=n, queries=args.queries))


if __name__ == "__main__":
    main()
