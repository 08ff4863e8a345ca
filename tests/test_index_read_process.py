"""Reading in a second process while the first embeds (rag.read_worker): the same index as reading in-process,
and a file that fails there, takes the reading process down or keeps it silent is reported and skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant, IndexReport, read_worker
from rag.indexing import Indexer

from .conftest import SHARED_EVAL, missing, write

NTSB = SHARED_EVAL / "ntsb-forms" / "docs"


def _corpus(folder: Path, files: int = 4) -> Path:
    """Real small PDFs (accident report forms), a truncated PDF, and a Latin-1 text file."""
    pdfs = sorted(NTSB.glob("*.pdf"))[:files]
    if len(pdfs) < files:
        missing(f"the ntsb-forms PDFs are not at {NTSB}")
    folder.mkdir()
    for pdf in pdfs:
        shutil.copy(pdf, folder / pdf.name)
    write(folder / "damaged.pdf", pdfs[0].read_bytes()[:3000])
    write(folder / "notes.txt", "Die Prüfung der Maschine ergab keinen Mangel am Fahrwerk.\n\n".encode("latin-1") * 3)
    return folder


def _build(index: Path, corpus: Path, read_process: bool) -> tuple[Assistant, IndexReport]:
    assistant = Assistant(index_dir=index)
    make = assistant._indexer

    def indexer() -> Indexer:
        made = make()
        made.read_process = read_process
        return made

    assistant._indexer = indexer  # type: ignore[method-assign]
    return assistant, assistant.index([corpus], progress=True)


def _chunks(assistant: Assistant) -> list[tuple[object, ...]]:
    return [
        (c.source, c.ord, c.hash, c.start, c.end, c.section, c.text, c.layout)
        for d in assistant.sources()
        for c in assistant.store.document_chunks(d.source)
    ]


def _vectors(assistant: Assistant) -> np.ndarray:
    ids = [c.id for d in assistant.sources() for c in assistant.store.document_chunks(d.source)]
    found = assistant.store.vectors(ids)
    return np.stack([found[i] for i in ids])


def test_reading_in_a_second_process_builds_the_same_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = _corpus(tmp_path / "docs")
    trace = tmp_path / "trace"
    monkeypatch.setenv("RAG_TEST_TRACE", str(trace))  # the reading child notes each file it reads
    apart, apart_report = _build(tmp_path / "apart", corpus, read_process=True)
    bar = capsys.readouterr().err
    read = [line for line in trace.read_text().splitlines() if line.startswith("read ")]
    trace.unlink()
    here, here_report = _build(tmp_path / "here", corpus, read_process=False)
    assert sorted(read) == sorted(f"read {p.name}" for p in corpus.iterdir())  # each file, read by the child
    assert not any(line.startswith("read ") for line in trace.read_text().splitlines())
    assert _chunks(apart) == _chunks(here) and len(_chunks(here)) > 10
    cosines = np.sum(_vectors(apart) * _vectors(here), axis=1)
    assert cosines.min() > 0.999  # bf16: batches cut otherwise may round a little otherwise
    for field in ("added", "failed", "notes", "extraction"):
        assert getattr(apart_report, field) == getattr(here_report, field), field
    assert [p for p, _ in apart_report.failed] == [str(corpus / "damaged.pdf")]
    assert "damaged or truncated PDF" in apart_report.failed[0][1]
    assert apart_report.notes and "not UTF-8" in apart_report.notes[0][1]
    assert "Reading 2" in bar and ", page 1 of " in bar and "100%" in bar  # the child's pages reach the bar


def test_a_file_that_takes_the_reading_process_down_is_reported_and_the_rest_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _corpus(tmp_path / "docs", files=3)
    second = sorted(p.name for p in corpus.glob("2*.pdf"))[1]
    monkeypatch.setenv("RAG_TEST_PAUSE", f"read {second}")
    monkeypatch.setenv("RAG_TEST_PAUSE_SECONDS", "0")  # the child exits (status 86) as it starts on that file
    assistant, report = _build(tmp_path / "index", corpus, read_process=True)
    failed = dict(report.failed)
    assert set(failed) == {str(corpus / second), str(corpus / "damaged.pdf")}
    assert "the reading process stopped while reading this file (exit code 86)" in failed[str(corpus / second)]
    indexed = {d.source for d in assistant.sources()}
    assert indexed == {p.name for p in corpus.iterdir()} - {second, "damaged.pdf"}  # files after it too
    assert all(assistant.store.document_chunks(source) for source in indexed)


def test_a_silent_reading_process_is_stopped_and_its_file_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _corpus(tmp_path / "docs", files=2)
    first = sorted(p.name for p in corpus.glob("2*.pdf"))[0]
    monkeypatch.setenv("RAG_TEST_PAUSE", f"read {first}")
    monkeypatch.setenv("RAG_TEST_PAUSE_SECONDS", "120")  # the child hangs on that file (as in a C library)
    monkeypatch.setenv("RAG_MAX_FILE_SECONDS", "3")
    monkeypatch.setattr(read_worker, "GRACE_SECONDS", 1.0)
    assistant, report = _build(tmp_path / "index", corpus, read_process=True)
    failed = dict(report.failed)
    assert "no progress for too long" in failed[str(corpus / first)]
    assert {d.source for d in assistant.sources()} == {p.name for p in corpus.iterdir()} - {first, "damaged.pdf"}


def test_a_reading_process_that_cannot_start_leaves_the_files_to_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    corpus = _corpus(tmp_path / "docs", files=2)
    here, _ = _build(tmp_path / "here", corpus, read_process=False)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the child exits at once, before it is ready
    apart, report = _build(tmp_path / "apart", corpus, read_process=True)
    assert [p for p, _ in report.failed] == [str(corpus / "damaged.pdf")]
    assert _chunks(apart) == _chunks(here)
