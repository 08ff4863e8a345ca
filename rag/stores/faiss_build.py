"""FAISS index structures: exact (flat inner product) for small indexes, IVF for large ones; writing one to a file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

#: Below this many vectors search is exact (a flat inner-product scan); above, an IVF index.
EXACT_LIMIT = 50_000
#: Training vectors per IVF list.
TRAIN_PER_LIST = 40
#: IVF lists probed per search: measured by bench/vector_scale.py for recall@10 >= 0.95 at 1M vectors.
IVF_PROBES = 32


def ivf_lists(count: int) -> int:
    """Number of IVF lists for ``count`` vectors (four times the square root, at least 256)."""
    return max(256, int(4 * count**0.5))


def new_vector_index(dimension: int, count: int, training: np.ndarray | None = None) -> Any:
    """An empty FAISS index fitted to ``count`` vectors: exact below :data:`EXACT_LIMIT`, else IVF.

    IVF is trained on ``training`` (a sample of the vectors). Both kinds take ids and support removal,
    so updates stay incremental.
    """
    import faiss

    if count < EXACT_LIMIT or training is None or len(training) < 256:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    lists = min(ivf_lists(count), len(training) // 39)
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFFlat(quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(training, dtype=np.float32))
    index.nprobe = IVF_PROBES
    index.own_fields = True  # the index frees its quantizer; Python must not free it too
    quantizer.this.disown()  # type: ignore[attr-defined]
    return index


def build_vector_index(vectors: np.ndarray, ids: np.ndarray, dimension: int) -> Any:
    """A FAISS index over ``vectors`` with ``ids``, of the structure chosen for their count."""
    count = len(vectors)
    training = None
    if count >= EXACT_LIMIT:
        step = max(1, count // (TRAIN_PER_LIST * ivf_lists(count)))
        training = vectors[::step]
    index = new_vector_index(dimension, count, training)
    for first in range(0, count, 100_000):
        index.add_with_ids(vectors[first : first + 100_000], ids[first : first + 100_000])
    return index


def needs_rebuild(index: Any, count: int) -> bool:
    """Whether an index holding ``count`` vectors should be rebuilt with another structure or size."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        return count < EXACT_LIMIT // 2 or ivf_lists(count) > 2 * inner.nlist
    return count >= EXACT_LIMIT


def set_search_depth(index: Any, depth: int) -> None:
    """Lists probed per search for IVF indexes (no effect on exact ones)."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        inner.nprobe = depth


def describe_index(index: Any) -> dict[str, Any]:
    """The structure and settings of a FAISS index, for the manifest."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        return {
            "type": "IndexIVFFlat",
            "metric": "inner product",
            "nlist": int(inner.nlist),
            "nprobe": int(inner.nprobe),
            "vectors": int(inner.ntotal),
        }
    return {
        "type": "IndexIDMap2(IndexFlatIP)",
        "metric": "inner product",
        "exact": True,
        "vectors": int(index.ntotal),
        "exact_limit": EXACT_LIMIT,
    }


def faiss_writer(index: Any) -> Callable[[BinaryIO], None]:
    """Writes ``index`` to an open file in pieces (no serialised copy of it in memory)."""

    def write(f: BinaryIO) -> None:
        import faiss

        faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))  # type: ignore[attr-defined]

    return write


def single_threaded(call: Any, *args: Any) -> Any:
    """Run a FAISS call on one thread: for one query, OpenMP start-up costs more than it saves, and
    concurrent requests already keep the cores busy."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return call(*args)
    finally:
        faiss.omp_set_num_threads(threads)
