"""Vector index at scale: exact vs IVF vs HNSW on synthetic clustered 384-d vectors.

Run: .venv/bin/python bench/vector_scale.py [--n 1000000] [--queries 500]
Prints build time, index memory, search p50/p95 (one query at a time) and recall@10 against exact search.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from claims import claim, record


def synthetic(n: int, dim: int, clusters: int, seed: int, noise: float) -> np.ndarray:
    """Normalised vectors drawn around ``clusters`` random centres (real embeddings are clustered too).

    With noise 0.7 two vectors of one cluster have a cosine near 0.67, about what all-MiniLM-L6-v2 gives
    a passage and its nearest neighbour in a real corpus.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for first in range(0, n, step):
        m = min(step, n - first)
        labels = rng.integers(0, clusters, m)
        out[first : first + m] = centres[labels] + noise * rng.standard_normal((m, dim)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(index, queries: np.ndarray, truth: np.ndarray, k: int = 10) -> tuple[float, float, float]:
    import faiss

    faiss.omp_set_num_threads(1)  # as the store searches: one query, one thread
    times = []
    found = 0
    for i, q in enumerate(queries):
        began = time.perf_counter()
        _, ids = index.search(q.reshape(1, -1), k)
        times.append(time.perf_counter() - began)
        found += len(set(ids[0]) & set(truth[i]))
    faiss.omp_set_num_threads(2)
    times.sort()
    return 1000 * times[len(times) // 2], 1000 * times[int(len(times) * 0.95)], found / (k * len(queries))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--hnsw", action="store_true", help="also build HNSW (slow to build, no removal)")
    parser.add_argument("--noise", type=float, default=0.7, help="spread around cluster centres")
    args = parser.parse_args()

    import faiss

    from rag.stores.faiss_build import build_vector_index, set_search_depth

    print(
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, n={args.n:,}, dim={args.dim}, "
        f"noise {args.noise}"
    )
    began = time.perf_counter()
    data = synthetic(args.n + args.queries, args.dim, clusters=max(100, args.n // 200), seed=7, noise=args.noise)
    base, queries = data[: args.n], data[args.n :]
    ids = np.arange(args.n, dtype=np.int64)
    print(f"data: {time.perf_counter() - began:.1f} s, {base.nbytes / 2**20:.0f} MiB of vectors")

    exact = faiss.IndexFlatIP(args.dim)
    exact.add(base)
    began = time.perf_counter()
    _, truth = exact.search(queries, 10)
    exact_ms = 1000 * (time.perf_counter() - began) / len(queries)
    p50, p95, _ = measure(exact, queries[:50], truth[:50])
    print(f"exact   : search p50 {p50:.2f} ms p95 {p95:.2f} ms (batched {exact_ms:.2f} ms/query), recall 1.000")
    del exact

    before = rss_mb()
    began = time.perf_counter()
    index = build_vector_index(base, ids, args.dim)
    build = time.perf_counter() - began
    size = faiss.serialize_index(index).nbytes / 2**20
    print(
        f"chosen  : {type(faiss.downcast_index(index.index) if hasattr(index, 'index') else index).__name__}"
        f" built in {build:.1f} s, serialized {size:.0f} MiB, peak RSS +{rss_mb() - before:.0f} MiB"
    )
    at: dict[int, tuple[float, float, float]] = {}
    for depth in (16, 32, 64, 128):
        set_search_depth(index, depth)
        at[depth] = p50, p95, recall = measure(index, queries, truth)
        print(f"  depth {depth:3d}: search p50 {p50:.2f} ms p95 {p95:.2f} ms recall@10 {recall:.3f}")
    del index
    p50, p95, recall = at[32]
    rows = [
        claim(f"search p50, {args.n:,} vectors, 32 probed", round(p50, 2), "<=", 5, unit="ms", digits=2),
        claim("search p95", round(p95, 2), unit="ms", digits=2),
        claim("recall@10 against exact search", round(recall, 3), ">=", 0.95),
        claim("build", round(build, 1), unit="s", digits=1),
    ]
    reduced = f"{args.n:,} vectors, not 1,000,000" if args.n < 1_000_000 else ""
    title = f"The vector index at {args.n:,} synthetic {args.dim}-d vectors"
    record("vector-scale", title, rows, reduced=reduced, details={"depths": at, "exact_p50_ms": exact_ms})
    if not args.hnsw:
        return

    began = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(args.dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(base)
    build = time.perf_counter() - began
    print(f"hnsw32  : built in {build:.1f} s, serialized {faiss.serialize_index(hnsw).nbytes / 2**20:.0f} MiB")
    for ef in (32, 64, 128):
        hnsw.hnsw.efSearch = ef
        p50, p95, recall = measure(hnsw, queries, truth)
        print(f"  ef {ef:3d}: search p50 {p50:.2f} ms p95 {p95:.2f} ms recall@10 {recall:.3f}")


if __name__ == "__main__":
    main()
