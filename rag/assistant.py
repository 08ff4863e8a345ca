"""The assistant: index documents, answer questions with citations. ``ask()`` for one-liners."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chunking import Chunker
from .config import MAX_K, Settings, checkout_index_dir, default_corpus_dir
from .documents import READERS, discover
from .embedding import Embedder
from .errors import (
    ConfigError,
    IndexEmptyError,
    IndexMismatchError,
    IndexNotFoundError,
    InputError,
    RagError,
)
from .indexing import Indexer, library_versions
from .originals import PAGE_WIDTH, Originals
from .retrieval import Retriever
from .stores.index_store import open_store
from .stores.records import Changes, DocumentRecord, VectorStore, incompatible_key
from .text import clean_question
from .types import Answer, IndexReport, Passage

if TYPE_CHECKING:
    from .answers import Answerer
    from .conversation import ChatSession
    from .generation import Generator


class Assistant:
    """Question answering over one index directory.

    Construction is cheap: the model, tokenizer and index load on first use, once per process.
    """

    def __init__(self, index_dir: str | Path | None = None, settings: Settings | None = None, **overrides: Any) -> None:
        base = settings if settings is not None else Settings.from_env()
        if index_dir is not None:
            overrides["index_dir"] = Path(index_dir)
        self.settings = base.replace(**overrides) if overrides else base
        self.store: VectorStore = open_store(self.settings)
        self._write_lock = threading.Lock()
        self._checked_generation = -2

    @property
    def index_dir(self) -> Path:
        """Where the index lives."""
        return self.settings.index_dir

    @cached_property
    def embedder(self) -> Embedder:
        """The embedding model (loaded lazily)."""
        return Embedder(self.settings.model_path, self.settings.batch_size, self.settings.precision)

    @cached_property
    def chunker(self) -> Chunker:
        """The chunker, sized by the model's tokenizer."""
        return Chunker(
            self.embedder.tokenizer, self.settings.chunk_tokens, self.settings.chunk_overlap, self.embedder.max_tokens
        )

    @cached_property
    def retriever(self) -> Retriever:
        """Finds passages in the store."""
        return Retriever(self.store, self.settings.fusion)

    @cached_property
    def answerer(self) -> Answerer:
        """Builds extractive answers (a field or cell when a value is asked for, else sentences)."""
        from .answers import Answerer  # here, not at the top: indexing needs none of the answer layer

        return Answerer(self.settings.max_answer_sentences, self.settings.min_score)

    def identities(self) -> dict[str, str]:
        """Each indexed document's identity (file name words, title, first-page lines), by source;
        read once per committed change of the index."""
        generation = self.store.generation()
        cached = getattr(self, "_identities", None)
        if cached is None or cached[0] != generation:
            from .answers import document_identity

            documents = self.store.documents()
            cached = (generation, {d.source: document_identity(d.source, d.summary()["extraction"]) for d in documents})
            self._identities = cached
        return cached[1]

    def configure(self, **changes: Any) -> Settings:
        """Change settings of this assistant (validated like :meth:`Settings.replace`); returns the new ones.

        Meant for the language-model fields (``llm_base_url``, ``llm_model``, ``llm_api_key``,
        ``llm_timeout``) and answer options; the next question uses them. Fields that shape the index
        (model, chunking, where the index or vectors live) cannot change under an open index: make a
        new :class:`Assistant` for those.
        """
        fixed = sorted(set(changes) & _INDEX_FIELDS)
        if fixed:
            raise ConfigError(f"{', '.join(fixed)} cannot change on an open index: make a new Assistant")
        with self._write_lock:
            self.settings = self.settings.replace(**changes)
        return self.settings

    @property
    def generator(self) -> Generator | None:
        """The language-model answerer when ``settings.llm_base_url`` is set; None means extractive answers.

        Built on first use and again when the ``llm_*`` settings change (e.g. a model picked in a UI).
        """
        settings = self.settings
        if not settings.llm_base_url:
            return None
        key = (settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout)
        cached = getattr(self, "_generator", None)
        if cached is None or cached[0] != key:
            from .generation import Generator

            cached = (key, Generator.from_settings(settings))
            self._generator = cached
        return cached[1]

    # ------------------------------------------------------------ configuration checks

    def index_config(self) -> dict[str, Any]:
        """The settings an index built now would record in its manifest."""
        from .pdf import EXTRACTOR

        return {
            "embedding_model": self.embedder.name,
            "model_fingerprint": self.embedder.fingerprint,
            "dimension": self.embedder.dimension,
            "max_tokens": self.embedder.max_tokens,
            "chunk_tokens": self.settings.chunk_tokens,
            "chunk_overlap": self.settings.chunk_overlap,
            "chunker": "langchain RecursiveCharacterTextSplitter, tokenizer, per section; pages: small pieces joined",
            "embedding_input": "title line (file name: section - caption) + chunk text",
            "keyword_index": "SQLite FTS5 BM25 (porter stemmer), title and text",
            "metric": "cosine (normalised inner product)",
            "extractor": f"{EXTRACTOR} {READERS}",
            "versions": library_versions(),
        }

    def _check_index(self) -> None:
        if not self.store.exists():
            raise IndexNotFoundError(
                f"no index at {self.index_dir}: build one with 'rag index PATH --index {self.index_dir}'"
            )
        if self._checked_generation == -1:
            return
        stored = self.store.config()
        wanted = self.index_config()
        key = incompatible_key(stored, wanted)
        if key is not None:
            raise IndexMismatchError(
                f"the index at {self.index_dir} was built with {key}={stored.get(key)!r} "
                f"(model {stored.get('embedding_model')}), but the current settings give {wanted[key]!r}: "
                f"rebuild it with 'rag index PATH --index {self.index_dir} --rebuild' or use matching settings"
            )
        self._checked_generation = -1

    # ------------------------------------------------------------ indexing

    def default_corpus(self) -> Path | None:
        """The folder to build this index from before first use: the project's ``seeds/`` when this is
        the checkout's own ``index/`` (run from the clone) and it holds no index yet; otherwise None."""
        corpus, own = default_corpus_dir(), checkout_index_dir()
        if corpus is None or own is None or self.index_dir.resolve() != own.resolve() or self.store.exists():
            return None
        return corpus

    def index(self, paths: Iterable[str | Path], progress: bool = False, rebuild: bool = False) -> IndexReport:
        """Add or update the documents under ``paths`` (files or folders).

        Unchanged files are skipped by size, time and content hash; changed files are re-chunked and
        only chunks whose text is new are embedded; files deleted from an indexed folder are removed.
        Unreadable files, and paths that do not exist, are reported in ``IndexReport.failed`` and never
        stop the run. A new file with the same bytes as an indexed one (or as another file of this run)
        is not indexed again: it is listed in ``IndexReport.duplicates`` with the source it repeats.
        """
        began = time.perf_counter()
        given = [Path(p).expanduser() for p in paths]
        if not given:
            raise InputError("give at least one file or folder to index")
        folders = [p for p in given if p.exists()]
        missing = [(str(p), "no such file or folder") for p in given if not p.exists()]
        found, skipped = discover(folders)
        report = IndexReport(failed=missing, skipped=[(s.path, s.reason) for s in skipped])
        with self._write_lock, self.store.writer():
            reset = None
            if rebuild and self.store.exists():
                # Built beside the old index inside one transaction: a crash leaves the old one, never none.
                try:
                    self.store.documents()
                    reset = self.index_config()
                except RagError:  # unreadable: nothing to keep
                    self.store.drop()
            if not self.store.exists():
                self.store.create(self.index_config())
            self._checked_generation = -2
            if reset is None:
                self._check_index()
            changes = self._indexer().plan(found, folders, report, progress, fresh=reset is not None)
            changes.reset = reset
            self.store.apply(changes)
            self._checked_generation = -2
        report.chunks_total = int(self.store.stats()["chunks"])
        report.seconds = time.perf_counter() - began
        return report

    def _indexer(self) -> Indexer:
        """The plan of an indexing run (reading and embedding in this process; Ray's runs elsewhere)."""
        return Indexer(self.settings, self.store, self.chunker, self.embedder)

    def remove(self, source: str) -> bool:
        """Remove one document by its source name; returns whether it was indexed."""
        self._check_index()
        with self._write_lock, self.store.writer():
            known = {d.source for d in self.store.documents()}
            if source not in known:
                return False
            self.store.apply(Changes(removals=[source]))
        return True

    def sources(self) -> list[DocumentRecord]:
        """Every indexed document with its chunk count."""
        self._check_index()
        return self.store.documents()

    def stats(self) -> dict[str, Any]:
        """Counts and settings of the index."""
        self._check_index()
        return self.store.stats()

    @cached_property
    def originals(self) -> Originals:
        """The indexed files: their text and rendered pages (see :mod:`rag.originals`)."""
        return Originals(self.store, self.settings)

    def document_text(self, source: str) -> str:
        """The text of indexed document ``source``, into which citations' ``start``/``end`` point."""
        self._check_index()
        return self.originals.document(source).text

    def locate(self, source: str, start: int, end: int) -> tuple[int | None, list[tuple[float, float, float, float]]]:
        """Where characters ``[start, end)`` of ``source`` are: page (None without pages) and boxes (0-1, per line)."""
        self._check_index()
        return self.originals.locate(source, start, end)

    def render_page(self, source: str, page: int, width: int = PAGE_WIDTH) -> bytes:
        """Page ``page`` (1-based) of indexed PDF or image ``source`` as PNG bytes, ``width`` pixels wide."""
        self._check_index()
        return self.originals.render_page(source, page, width)

    # ------------------------------------------------------------ asking

    def warm(self) -> None:
        """Load the model, the vector index and the keyword counts now, for a process that will answer
        many questions (the web chat, the API and MCP servers): questions are then embedded by torch,
        faster than the NumPy path a one-shot ``rag ask`` uses to start quickly."""
        self.embedder.warm()
        with contextlib.suppress(IndexNotFoundError):
            self.store.warm()
            self._prepare_answers()

    def _prepare_answers(self) -> None:
        """What answers read of each document (cells, sentences, names), worked out before the first
        question (see :meth:`rag.answers.Answerer.prepare`): a warm server's first questions then cost
        what later ones do (sec-10q, first ask of each question, CPU p50: see docs/performance.md)."""
        import numpy as np

        identities = self.identities()
        nothing = np.zeros(self.embedder.dimension, dtype=np.float32)
        retriever = self.retriever
        documents = (
            (identity, retriever.document_text(source), retriever.document_passages(source, nothing))
            for source, identity in identities.items()
        )
        try:
            self.answerer.prepare(documents)
        except Exception as exc:  # noqa: BLE001 - only a head start: a question meets the same work, and says what fails
            logging.getLogger(__name__).warning("preparing the documents for answers stopped: %s", exc)

    def search(self, query: str, k: int | None = None) -> list[Passage]:
        """The ``k`` passages that match ``query`` best, without an answer: best first by their 0-1 match
        score (the score an answer's passages carry)."""
        query = clean_question(query)
        k = self.settings.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InputError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
        self._check_index()
        passages = self.retriever.search(query, self.embedder.encode_query(query), k)
        return sorted(self.answerer.rescore(query, passages), key=lambda p: -p.score)

    def ask(self, question: str, k: int | None = None) -> Answer:
        """Answer ``question`` from the index, with ``[n]`` citations.

        With a language model configured (``settings.llm_base_url``) the answer is generated and its
        citations verified (``Answer.generator == "llm"``); otherwise, or when the model fails (see
        ``Answer.note``), it is made of extractive sentences.
        """
        answer = None
        for item in self.respond(question, k):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def stream(self, question: str, k: int | None = None) -> Iterator[str | Answer]:
        """Answer ``question`` piece by piece: text deltas (``str``), then the final :class:`Answer`.

        Joining the deltas gives ``Answer.text``. A generated answer streams the model's tokens as they
        arrive (citation markers already renumbered); the extractive answer is sent a few words at a
        time so that interfaces show progress the same way. One exception: when a generated answer
        falls back to the extractive one after tokens were sent (the model failed mid-way, or cited no
        passage), the final Answer's text differs and its ``note`` says why: show that text instead.
        """
        yield from self.respond(question, k)

    def respond(self, question: str, k: int | None = None, search: str | None = None) -> Iterator[str | Answer]:
        """:meth:`stream` for ``question``, retrieving with ``search`` instead when given (a rewritten follow-up)."""
        question = clean_question(question)
        search = question if search is None else clean_question(search)
        k = self.settings.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InputError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
        self._check_index()
        query = self.embedder.encode_query(search)
        passages = self.retriever.search(search, query, k)
        if not passages and not self.store.stats()["chunks"]:
            raise IndexEmptyError(
                f"the index at {self.index_dir} is empty: add documents with 'rag index PATH --index {self.index_dir}'"
            )
        identities = self.identities()
        documents = self.retriever.documents(query)
        # "The latest 10-Q": passages of the entity's latest report only.
        passages = self.answerer.latest(search, passages, identities, documents)
        # Each passage's score becomes its match score (0-1, the scale of min_score); same order.
        scored = self.answerer.rescore(search, passages)
        confidence = max((p.score for p in scored), default=0.0)

        def extractive() -> Answer:
            answer = self.answerer.answer(search, passages, identities, documents)
            return answer if search == question else replace(answer, question=question)

        generator = self.generator
        # The model sees only passages whose document matches the question's names and periods.
        checked = self.answerer.check(search, scored, identities) if generator is not None else None
        allowed = checked.allowed if checked is not None else []
        if generator is not None and checked is not None and allowed and confidence >= self.settings.min_score:
            # ... and the cell or field the extractive answer would quote (chosen as it does, from the
            # same passages with their retrieval scores), with its labels.
            extra, matched = self.answerer.matched(
                search, [passages[i] for i in checked.positions], identities, documents
            )
            given = [replace(extra, score=confidence), *allowed] if extra is not None else allowed
            from .extractive import best_first

            for item in generator.stream(search, given, extractive, matched):
                if isinstance(item, Answer):
                    item = replace(item, question=question, passages=best_first(item.passages), confidence=confidence)
                yield item
            return
        answer = extractive()
        if generator is not None:
            answer = replace(
                answer, note="No passage is close enough to the question: the language model was not asked."
            )
        words = re.findall(r"\S+\s*", answer.text)
        for first in range(0, len(words), 4):
            yield "".join(words[first : first + 4])
        yield answer

    def chat(self, k: int | None = None) -> ChatSession:
        """A conversation: ``session.ask(...)`` / ``session.stream(...)`` rewrite follow-up questions
        ("When will she visit?") into standalone ones before searching (``Answer.rewritten_question``).
        """
        from .conversation import ChatSession

        return ChatSession(self, k=k)


#: Settings that shape the index: fixed for the life of an :class:`Assistant`.
_INDEX_FIELDS = frozenset({"index_dir", "model", "chunk_tokens", "chunk_overlap", "vector_store", "precision"})


_DEFAULT: dict[str, Assistant] = {}
_DEFAULT_LOCK = threading.Lock()


def default_assistant() -> Assistant:
    """The process-wide assistant over the default index, built from ``seeds/`` if it is missing."""
    with _DEFAULT_LOCK:
        settings = Settings.from_env()
        key = str(settings.index_dir)
        if key not in _DEFAULT:
            assistant = Assistant(settings=settings)
            corpus = assistant.default_corpus()
            if corpus is not None:
                assistant.index([corpus])
            _DEFAULT[key] = assistant
        return _DEFAULT[key]


def ask(question: str, k: int | None = None, index_dir: str | Path | None = None) -> Answer:
    """Answer ``question`` from the default index (or ``index_dir``), loading everything once per process."""
    if index_dir is not None:
        key = str(Path(index_dir).expanduser())
        with _DEFAULT_LOCK:
            if key not in _DEFAULT:
                _DEFAULT[key] = Assistant(index_dir=index_dir)
            assistant = _DEFAULT[key]
    else:
        assistant = default_assistant()
    return assistant.ask(question, k=k)
