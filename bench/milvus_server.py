"""Search on a real Milvus standalone server (PyPI ``milvus``, one node, this machine): the figures in docs/scaling.md.

    .venv/bin/python bench/milvus_server.py [--n 100000] [--queries 200] [--indexes FLAT,HNSW,IVF_FLAT,IVF_SQ8]

Starts ``milvus-server`` in a temporary folder (as the tests do), inserts the synthetic clustered 384-d
vectors of bench/scale.py (the same data and exact top-10), flushes (seals segments so indexes are
built), builds each index, then searches one query at a time: p50 / p95 latency and recall@10 for
several search depths. Writes bench/results/milvus_server.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.milvus_server import MilvusServer  # noqa: E402 - after the path

_spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "scale.py")
assert _spec is not None and _spec.loader is not None
scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scale)

#: Build parameters per index, and the search parameters tried.
BUILD = {
    "FLAT": ({}, [{}]),
    "HNSW": ({"M": 16, "efConstruction": 200}, [{"ef": 64}, {"ef": 128}, {"ef": 256}]),
    "IVF_FLAT": ({"nlist": 1024}, [{"nprobe": 16}, {"nprobe": 32}, {"nprobe": 64}]),
    "IVF_SQ8": ({"nlist": 1024}, [{"nprobe": 32}, {"nprobe": 64}]),
}


def measure(client: Any, index: str, base: np.ndarray, query: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    from pymilvus import DataType, MilvusClient

    name = f"bench_{index.lower()}"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=base.shape[1])
    client.create_collection(name, schema=schema, consistency_level="Strong")
    from pymilvus.client import ts_utils

    began = time.perf_counter()
    for first in range(0, len(base), 5000):
        client.insert(name, [{"id": first + i, "vector": v} for i, v in enumerate(base[first : first + 5000])])
    insert_s = time.perf_counter() - began
    written = ts_utils.get_collection_ts(name, client._get_connection().server_address, "")
    began = time.perf_counter()
    client.flush(name)
    flush_s = time.perf_counter() - began
    build, searches = BUILD[index]
    params = client.prepare_index_params()
    params.add_index("vector", index_type=index, metric_type="IP", params=build)
    began = time.perf_counter()
    client.create_index(name, params, sync=True)
    while True:  # create_index returns when the task is accepted; wait for every sealed row to be indexed
        info = client.describe_index(name, "vector")
        if int(info.get("indexed_rows", 0)) >= int(info.get("total_rows", 0)) and info.get("state") != "InProgress":
            break
        time.sleep(0.5)
    client.load_collection(name)
    build_s = time.perf_counter() - began
    results = []
    # As rag reads (at the timestamp of the last committed write), and once with Strong consistency.
    at_write = {"consistency_level": "Customized", "guarantee_timestamp": written}
    runs = [(search, "at last write", at_write) for search in searches] + [(searches[0], "Strong", {})]
    for search, consistency, extra in runs:
        search_params = {"metric_type": "IP", "params": search}

        def run(q: np.ndarray, search_params: dict[str, Any] = search_params, extra: Any = extra) -> list[int]:
            hits = client.search(name, data=[q], limit=10, output_fields=["id"], search_params=search_params, **extra)
            return [int(h["id"]) for h in hits[0]]

        for q in query[:10]:
            run(q)  # warm
        results.append({"params": search, "consistency": consistency, **scale.latency(run, query, truth)})
        print(index, search, results[-1], flush=True)
    client.drop_collection(name)
    return {
        "index": index,
        "build_params": build,
        "n": len(base),
        "insert_s": round(insert_s, 1),
        "insert_rows_per_s": round(len(base) / insert_s),
        "flush_s": round(flush_s, 1),
        "index_build_and_load_s": round(build_s, 1),
        "searches": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--indexes", default="FLAT,HNSW,IVF_FLAT,IVF_SQ8")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "milvus_server.json"))
    args = parser.parse_args()
    base, query, truth = scale.dataset(args.n, args.queries)
    folder = Path(tempfile.mkdtemp(prefix="rag-milvus-server-")) / "data"
    server = MilvusServer(folder)
    began = time.perf_counter()
    server.start()
    start_s = time.perf_counter() - began
    from pymilvus import MilvusClient

    client = MilvusClient(uri=f"http://127.0.0.1:{server.port}", token=f"root:{server.password}", timeout=600)
    out: dict[str, Any] = {"milvus": "2.3.5 standalone (PyPI milvus)", "server_start_s": round(start_s, 1), "runs": []}
    try:
        for index in args.indexes.split(","):
            out["runs"].append(measure(client, index, base, query, truth))
            Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    finally:
        client.close()
        server.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
