"""Indexing spread over a Ray cluster: ``rag index PATH --ray`` (``--ray-address ADDRESS`` or ``RAG_RAY_ADDRESS``).

The plan is the single-process one (:meth:`Assistant.index`): the same discovery, the same skipping of
unchanged files by size, time and content hash, the same removals, one store transaction. Only the
reading and embedding of the changed files run on Ray, as a Ray Data pipeline:

1. the list of changed files (path, name) ->
2. ``map_batches(_extract)``: each file read (:func:`rag.documents.load`: parsing, OCR) and chunked
   (:class:`rag.chunking.Chunker`), one row per chunk with its embedding input and content hash; a bad
   file gives one row carrying its reason ->
3. ``map_batches(_Embed)``: actors that load the model once and embed the rows whose text is not in
   the index yet (:meth:`rag.embedding.Embedder.encode`, one CPU and one torch thread each) ->
4. the driver takes the rows back in file order and hands each document to the store inside its
   transaction, as :meth:`Assistant.index` does: a failed job leaves the last good index.

Workers read the files by path: on a cluster, the corpus must be at the same path on every node (a
shared file system), and every node needs this package and the model (the same image). Ray moves
rows between its own processes with its own serialisation; nothing of it is stored.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .assistant import Assistant
from .chunking import Chunker
from .config import Settings
from .documents import FoundFile, load
from .embedding import Embedder
from .errors import ConfigError, DocumentError, InputError, RagError
from .indexing import Indexer, chunk_hash, document_record
from .stores.records import DocumentRecord, NewChunk, VectorStore
from .types import IndexReport

#: The environment variable naming the Ray cluster (``auto``, ``HOST:6379``, ``ray://HOST:10001``).
ADDRESS_ENV = "RAG_RAY_ADDRESS"
#: Chunks per embedding call in an actor.
EMBED_BATCH = 256
#: Files per extraction call.
FILES_PER_TASK = 2

_CHUNKERS: dict[tuple[Any, ...], Chunker] = {}


class RayIndexer(Assistant):
    """An :class:`Assistant` whose ``index`` reads and embeds changed files on a Ray cluster.

    ``ray_address``: ``None`` or ``"local"`` starts a Ray instance on this machine (unless Ray is already
    initialised in this process); anything else is passed to ``ray.init(address=...)``. ``workers`` is
    the number of embedding actors (default: the cluster's CPUs); ``embed_batch`` the chunks per actor call.
    """

    #: The embedding actor class (a subclass of ``_Embed``; None for the default).
    embed_actor: Any = None

    def __init__(
        self,
        index_dir: str | Path | None = None,
        ray_address: str | None = None,
        workers: int | None = None,
        embed_batch: int = EMBED_BATCH,
        **overrides: Any,
    ) -> None:
        super().__init__(index_dir, **overrides)
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise InputError(f"workers must be a whole number of at least 1, got {workers!r}")
        self.ray_address = ray_address if ray_address is not None else (os.environ.get(ADDRESS_ENV) or None)
        self.workers = workers
        self.embed_batch = embed_batch

    def index(self, paths: Any, progress: bool = False, rebuild: bool = False) -> IndexReport:
        """:meth:`Assistant.index`, with the changed files read and embedded on Ray."""
        ray = _import_ray()
        started = _connect(ray, self.ray_address, self.workers)
        try:
            return super().index(paths, progress=progress, rebuild=rebuild)
        finally:
            if started:
                ray.shutdown()

    def _indexer(self) -> Indexer:
        """The plan of an indexing run, reading and embedding on Ray."""
        return _RayPlan(self.settings, self.store, self.chunker, self.embedder, self)


class _RayPlan(Indexer):
    """:class:`Indexer` whose changed files are read, chunked and embedded by a Ray Data pipeline."""

    def __init__(
        self, settings: Settings, store: VectorStore, chunker: Chunker, embedder: Embedder, owner: RayIndexer
    ) -> None:
        super().__init__(settings, store, chunker, embedder)
        self.workers = owner.workers
        self.embed_batch = owner.embed_batch
        self.embed_actor = owner.embed_actor

    def _read_and_embed(
        self, to_load: list[tuple[FoundFile, str, Any]], existing: set[str], report: IndexReport, progress: bool
    ) -> Iterator[tuple[DocumentRecord, list[NewChunk]]]:
        import ray

        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        settings = self.settings
        options = {
            "model_path": str(settings.model_path),
            "chunk_tokens": settings.chunk_tokens,
            "chunk_overlap": settings.chunk_overlap,
            "max_bytes": int(settings.max_file_mb * 1e6),
        }
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # rows come back in file order
        context.enable_progress_bars = False  # the driver shows one bar, in bytes of files
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # a failure is reported in one line
        options["known"] = _known_hashes(self.store)
        # The actor class carries its settings: no constructor arguments to ship.
        embed = type(
            "Embed",
            (self.embed_actor or _Embed,),
            {"settings": (str(settings.model_path), settings.batch_size, settings.precision)},
        )
        files = [{"n": n, "path": str(item.path), "source": item.source} for n, (item, _, _) in enumerate(to_load)]
        with warnings.catch_warnings():  # max_restarts is passed as Ray Data documents it, which Ray deprecates
            warnings.simplefilter("ignore")
            dataset = (
                ray.data.from_items(files, override_num_blocks=max(1, min(len(files), 4 * workers)))
                .map_batches(_extract, fn_kwargs=options, batch_size=FILES_PER_TASK, num_cpus=0)
                .map_batches(
                    embed,
                    batch_size=self.embed_batch,
                    compute=ray.data.ActorPoolStrategy(size=workers),
                    num_cpus=1,
                    max_restarts=0,  # a lost worker fails the job, which leaves the last good index
                )
            )
        bar = None
        if progress:
            from tqdm import tqdm

            total = sum(stat.st_size for _, _, stat in to_load)
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"Indexing on Ray ({workers} workers)")
        embedded: set[str] = set()
        try:
            rows: list[dict[str, Any]] = []
            for batch in _batches(ray, dataset):
                for i in range(len(batch["n"])):
                    row = {key: column[i] for key, column in batch.items()}
                    if rows and int(rows[0]["n"]) != int(row["n"]):
                        yield from self._document(to_load, rows, existing, report, embedded, bar)
                        rows = []
                    rows.append(row)
            if rows:
                yield from self._document(to_load, rows, existing, report, embedded, bar)
        finally:
            if bar is not None:
                bar.close()
        report.chunks_embedded += len(embedded)

    def _document(
        self,
        to_load: list[tuple[FoundFile, str, Any]],
        rows: list[dict[str, Any]],
        existing: set[str],
        report: IndexReport,
        embedded: set[str],
        bar: Any,
    ) -> Iterator[tuple[DocumentRecord, list[NewChunk]]]:
        """One file's rows back from Ray: its record and chunks (vectors from the index where known)."""
        item, digest, stat = to_load[int(rows[0]["n"])]
        if bar is not None:
            bar.update(stat.st_size)
        error = str(rows[0]["error"])
        if error:
            report.failed.append((str(item.path), error))
            return
        vectors = {str(r["hash"]): np.asarray(r["vector"], dtype=np.float32) for r in rows if r["embedded"]}
        embedded.update(vectors)
        wanted = {str(r["hash"]) for r in rows} - set(vectors)
        if wanted:
            cached = self.store.cached_vectors(wanted)
            report.chunks_reused += sum(1 for r in rows if str(r["hash"]) in cached)
            vectors.update(cached)
            inputs = {str(r["hash"]): str(r["input"]) for r in rows if str(r["hash"]) not in vectors}
            if inputs:  # marked known on the workers but gone since: embed them here
                fresh = self.embedder.encode(list(inputs.values()))
                vectors.update(zip(inputs, fresh, strict=True))
                embedded.update(inputs)
        found = str(rows[0]["report"])
        record = document_record(item, digest, stat, str(rows[0]["format"]), str(rows[0]["encoding"]), len(rows), found)
        if found != "{}":
            report.extraction[item.source] = json.loads(found)
        (report.updated if item.source in existing else report.added).append(item.source)
        chunks = [
            NewChunk(str(r["hash"]), int(r["start"]), int(r["end"]), str(r["section"]), str(r["text"]),
                     vectors[str(r["hash"])], str(r["layout"]), str(r["title"]))
            for r in rows
        ]  # fmt: skip
        yield record, chunks


def _batches(ray: Any, dataset: Any) -> Iterator[dict[str, np.ndarray]]:
    """The pipeline's output; a failed job is one line (the store's transaction is rolled back)."""
    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except ray.exceptions.RayError as exc:
        reason = _root_cause(exc)
        raise RagError(
            f"the Ray indexing job failed ({reason}): the index is as it was; fix the cause and run again"
        ) from None


def _root_cause(exc: BaseException) -> str:
    """The user-code error inside a Ray error (``RuntimeError: disk full``), else Ray's first line."""
    text = "\n".join(str(e) for e in (exc, exc.__cause__) if e is not None)
    for line in text.splitlines():
        found = re.match(r"\s*([A-Za-z_][\w.]*(?:Error|Exception)): (.+)", line)
        if found and not found.group(1).startswith("ray."):
            return f"{found.group(1)}: {found.group(2).strip()}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError("indexing on Ray needs Ray Data: pip install 'rag-assistant[ray]'") from None
    return ray


def _connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Join (or start) Ray; True when this call started it (and so must shut it down)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address in (None, "", "local"):
            ray.init(num_cpus=workers, _node_ip_address="127.0.0.1", **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the cluster is one line
        where = "a local Ray instance" if address in (None, "", "local") else f"the Ray cluster at {address}"
        raise ConfigError(
            f"cannot start or reach {where} ({type(exc).__name__}: {exc}): check --ray-address / {ADDRESS_ENV}"
        ) from None
    return True


def _known_hashes(store: Any) -> np.ndarray:
    """The first 64 bits of every chunk hash in the index, sorted: what the workers need not embed."""
    values: list[int] = []
    db = getattr(store, "_db", None)
    if db is not None:
        with db() as conn:
            values = [int(h[:16], 16) for (h,) in conn.execute("SELECT DISTINCT hash FROM chunks")]
    else:  # pragma: no cover - another store: read it through the public API
        for record in store.documents():
            values.extend(int(c.hash[:16], 16) for c in store.document_chunks(record.source))
    return np.unique(np.asarray(values, dtype=np.uint64))


def _extract(batch: dict[str, np.ndarray], **options: Any) -> dict[str, Any]:
    """Ray task: read and chunk a few files; one row per chunk, or one row with the reason a file failed."""
    key = (options["model_path"], options["chunk_tokens"], options["chunk_overlap"])
    chunker = _CHUNKERS.get(key)
    if chunker is None:  # once per worker process
        embedder = Embedder(Path(options["model_path"]))
        chunker = Chunker(embedder.tokenizer, options["chunk_tokens"], options["chunk_overlap"], embedder.max_tokens)
        _CHUNKERS[key] = chunker
    known: np.ndarray = options["known"]
    out: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for n, path, source in zip(batch["n"], batch["path"], batch["source"], strict=True):
        try:
            document = load(Path(str(path)), str(source), max_bytes=options["max_bytes"])
            chunks = chunker.chunk(document)
            if not chunks:
                raise DocumentError("no text to index after extraction")
        except DocumentError as exc:
            why = str(exc)
        except Exception as exc:  # noqa: BLE001 - one bad file must not sink the batch
            why = f"unexpected error while reading: {type(exc).__name__}: {exc}"
        else:
            why = ""
        if why:
            _append(out, n=int(n), error=why)
            continue
        for chunk in chunks:
            text = chunker.embedding_input(str(source), chunk)
            digest = chunk_hash(text)
            _append(
                out,
                n=int(n),
                start=chunk.start,
                end=chunk.end,
                section=chunk.section,
                text=chunk.text,
                input=text,
                hash=digest,
                known=bool(len(known)) and bool(np.isin(np.uint64(int(digest[:16], 16)), known)),
                format=document.format,
                encoding=document.encoding,
                layout=chunk.layout,
                title=chunk.title,
                report=json.dumps(document.report, separators=(",", ":")) if document.report else "{}",
            )
    return out


_COLUMNS = (
    "n", "error", "start", "end", "section", "text", "input", "hash", "known", "format", "encoding", "layout", "title",
    "report",
)  # fmt: skip
_DEFAULTS: dict[str, Any] = {"error": "", "start": 0, "end": 0, "section": "", "text": "", "input": "", "hash": "",
                             "known": True, "layout": "", "title": "", "report": "{}"}  # fmt: skip


def _append(out: dict[str, list[Any]], **values: Any) -> None:
    for name in _COLUMNS:
        out[name].append(values.get(name, _DEFAULTS.get(name, "")))


class _Embed:
    """Ray actor: loads the model once, then embeds the rows whose text the index does not hold yet.

    ``settings`` (model path, batch size, precision) is set on a subclass made per job.
    """

    settings: tuple[str, int, str]

    def __init__(self) -> None:
        import ray
        import torch

        model_path, batch_size, precision = self.settings
        self.embedder = Embedder(Path(model_path), batch_size, precision)
        self.embedder.encode(["warm up"] * 32)  # a bulk-sized call: loads the torch model now, once
        torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        hashes = [str(h) for h in batch["hash"]]
        count = len(hashes)
        vectors = np.zeros((count, self.embedder.dimension), dtype=np.float32)
        done = np.zeros(count, dtype=bool)
        todo: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            if not batch["known"][i]:
                todo.setdefault(h, []).append(i)
        if todo:
            first = [rows[0] for rows in todo.values()]
            fresh = self.embedder.encode([str(batch["input"][i]) for i in first])
            for vector, rows in zip(fresh, todo.values(), strict=True):
                vectors[rows] = vector
                done[rows] = True
        return {**batch, "vector": vectors, "embedded": done}
