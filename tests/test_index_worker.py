"""Indexing in a worker process: the same index as in-process, and a file that blows up memory stops the
worker (with the reason), never the process that asked, nor the questions it answers meanwhile."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rag import Assistant, IndexJobError, IndexWorker, Settings
from ui.library import PARKED, DocumentLibrary

from .conftest import write
from .test_bombs import MB, PARAGRAPH, rewrite_docx

ROOT = Path(__file__).resolve().parent.parent
#: A worker limit well above the model's footprint and well below what the bomb below takes.
LIMIT_MB = 700.0
GOOD = "The Harlow kiln in Zaragoza fires its blue churros at exactly 900 degrees every morning."


def _resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _bomb(folder: Path) -> Path:
    """256 MiB of paragraphs in a 0.8 MB DOCX; with the DOCX budgets switched off it takes gigabytes."""
    return rewrite_docx(folder / "paragraphs.docx", body=(PARAGRAPH, 256 * MB // len(PARAGRAPH)))


def _unbudgeted(index: Path) -> Settings:
    """Settings whose per-file budgets would let the bomb through: only the worker's limit is left."""
    return Settings.from_env(index_dir=index, max_unzipped_mb=100_000, max_file_chars=10**10, index_memory_mb=LIMIT_MB)


def _chunks(assistant: Assistant) -> list[tuple[str, int, int, str]]:
    return sorted(
        (c.source, c.start, c.end, c.text)
        for d in assistant.sources()
        for c in assistant.store.document_chunks(d.source)
    )


def test_the_worker_builds_the_index_the_process_itself_would(tmp_path: Path) -> None:
    seeds = ROOT / "seeds"
    worker = IndexWorker(Settings.from_env(index_dir=tmp_path / "worker"))
    fractions: list[float] = []
    report = worker.index([seeds], progress=lambda fraction, _: fractions.append(fraction))
    direct = Assistant(index_dir=tmp_path / "direct").index([seeds])
    assert report.added == direct.added and report.chunks_total == direct.chunks_total > 0
    assert _chunks(Assistant(index_dir=tmp_path / "worker")) == _chunks(Assistant(index_dir=tmp_path / "direct"))
    assert fractions and fractions[-1] == 1.0
    assert 0 < worker.peak_mb < LIMIT_MB and worker.pid is None


def test_a_memory_bomb_stops_the_worker_and_the_index_keeps_its_state(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write(docs / "kiln.txt", GOOD)
    settings = _unbudgeted(tmp_path / "index")
    worker = IndexWorker(settings)
    worker.index([docs])
    _bomb(docs)
    before = _resident_mb()
    with pytest.raises(IndexJobError, match=r"more than 700 MB of memory.*RAG_INDEX_MEMORY_MB"):
        worker.index([docs])
    assert LIMIT_MB <= worker.peak_mb < LIMIT_MB + 600  # stopped soon after the limit (polled every 50 ms)
    assert _resident_mb() - before < 100, "the bomb grew the calling process"
    assistant = Assistant(settings=settings)
    assert [d.source for d in assistant.sources()] == ["kiln.txt"]
    assert assistant.ask("At what temperature does the Harlow kiln fire churros?").answered


def test_the_limits_are_settings_checked_when_built() -> None:
    from rag import ConfigError

    for name in ("index_memory_mb", "index_job_seconds"):
        for bad in (0, -1.0, float("nan"), float("inf")):
            with pytest.raises(ConfigError, match=name):
                Settings.from_env(**{name: bad})


def test_an_upload_batch_with_a_bomb_indexes_the_rest_while_questions_are_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web chat's library: the bomb is refused with the reason, the good file of the same batch is
    indexed, the folder keeps no copy of the bomb, and questions are answered while the worker runs: its
    first worker waits at the start of its job (rag/stores/pause.py) until the questions are answered."""
    uploads = tmp_path / "uploads"
    write(uploads / "seed.txt", (ROOT / "seeds" / "000_22749be4b06f8346.txt").read_text(encoding="utf-8"))
    settings = _unbudgeted(tmp_path / "index")
    assistant = Assistant(settings=settings)
    library = DocumentLibrary(assistant, max_bytes=10**7, worker=IndexWorker(settings))
    library.add([uploads / "seed.txt"])
    write(uploads / "kiln.txt", GOOD)
    bomb = _bomb(uploads)

    paused, release = tmp_path / "paused", tmp_path / "release"
    monkeypatch.setenv("RAG_TEST_PAUSE", "worker job")
    monkeypatch.setenv("RAG_TEST_PAUSE_FILE", str(paused))
    monkeypatch.setenv("RAG_TEST_PAUSE_RELEASE", str(release))  # later workers pass once it exists
    outcome: dict[str, object] = {}
    adding = threading.Thread(target=lambda: outcome.update(result=library.add([bomb, uploads / "kiln.txt"])))
    adding.start()
    deadline = time.monotonic() + 300  # a hang guard
    while not paused.is_file():
        assert adding.is_alive(), "the upload ended before its worker started"
        assert time.monotonic() < deadline, "the upload never started its worker"
        time.sleep(0.01)
    running = library.worker.pid if library.worker is not None else None
    assert running is not None and Path(f"/proc/{running}").exists()
    answers = [assistant.ask("Who invited Prime Minister Takaichi to visit the United States?") for _ in range(3)]
    assert Path(f"/proc/{running}").exists() and library.worker is not None and library.worker.pid == running
    release.write_text("go")
    adding.join(timeout=300)
    assert not adding.is_alive(), "the upload did not finish within 300 s"

    assert all(a.answered and "Trump" in a.text for a in answers)
    result = outcome["result"]
    lines = dict((text.split(":", 1)[0], text) for _, text in result.lines())  # type: ignore[attr-defined]
    assert "more than 700 MB" in lines["paragraphs.docx"] and "indexed" in lines["kiln.txt"]
    folder = library.folder
    assert sorted(p.name for p in folder.iterdir()) == ["kiln.txt", "seed.txt"] and not (folder / PARKED).exists()
    assert assistant.ask("At what temperature does the Harlow kiln fire churros?").answered


def test_progress_moves_page_by_page_and_names_the_file_and_page_read(tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    from .test_pdf import LEFT, RIGHT, WRAPPED, _paragraph_pdf

    docs = tmp_path / "docs"
    text_pdf = _paragraph_pdf(docs / "report.pdf", [WRAPPED, LEFT, RIGHT], pages=3)
    pages = [page.render(scale=150 / 72).to_pil().convert("RGB") for page in pdfium.PdfDocument(str(text_pdf))][:2]
    pages[0].save(docs / "scan.pdf", "PDF", resolution=150, save_all=True, append_images=pages[1:])
    seen: list[tuple[float, str]] = []
    report = IndexWorker(Settings.from_env(index_dir=tmp_path / "index")).index(
        [docs], progress=lambda f, doing: seen.append((f, doing))
    )
    assert report.failed == [] and sorted(report.added) == ["report.pdf", "scan.pdf"]
    said = [doing for _, doing in seen]
    assert any(d.startswith("Reading report.pdf, page ") for d in said), said
    assert "Reading scan.pdf, OCR of page 2 of 2" in said, said
    reading = [f for f, doing in seen if doing.startswith("Reading ")]
    assert any(0 < f < 0.5 for f in reading), f"the bar did not move while pages were read: {seen}"
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
