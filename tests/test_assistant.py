"""The assistant end to end with the real packaged model and real FAISS: answers, citations, indexing."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rag import Answer, Assistant, ConfigError, IndexMismatchError, IndexNotFoundError, InputError, Settings

from .conftest import FACTS, SEED_QUESTION, SEEDS, write

SEED_FILE = next(SEEDS.glob("*.txt"))


def _seed_text() -> str:
    with open(SEED_FILE, encoding="utf-8") as f:
        return f.read()


def test_seed_question_is_answered_with_exact_citation(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask(SEED_QUESTION)
    assert isinstance(answer, Answer)
    assert answer.answered
    assert "Trump" in answer.text
    assert "[1]" in answer.text
    assert len(answer.citations) >= 1
    first = answer.citations[0]
    assert first.n == 1
    assert first.source == SEED_FILE.name
    text = _seed_text()
    assert text[first.start : first.end] == first.text
    # The quoted sentence is highlighted inside the cited passage and is what the answer says.
    (hs, he), *_ = first.highlights
    assert first.start <= hs < he <= first.end
    assert "extended an invitation" in text[hs:he]
    assert " ".join(text[hs:he].split()) in answer.text
    # Every marker in the text points at a citation, and every citation is used.
    markers = {int(m) for m in __import__("re").findall(r"\[(\d+)\]", answer.text)}
    assert markers == {c.n for c in answer.citations}


def test_unanswerable_question_is_refused(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask("What is the boiling point of liquid nitrogen in kelvin?")
    assert not answer.answered
    assert answer.citations == []
    assert "do not contain" in answer.text
    assert answer.passages, "the closest passages are still returned"
    assert "[1]" not in answer.text


def test_every_passage_offset_maps_back_to_the_file(seed_assistant: Assistant) -> None:
    text = _seed_text()
    answer = seed_assistant.ask("What economic cooperation is expected?", k=4)
    assert len(answer.passages) >= 2
    # Ranked by the fused score; no two passages are near-duplicates (overlapping chunks folded).
    for i, a in enumerate(answer.passages):
        for b in answer.passages[i + 1 :]:
            shared = min(a.end, b.end) - max(a.start, b.start)
            assert shared <= 0.5 * min(a.end - a.start, b.end - b.start)
    for passage in answer.passages:
        assert text[passage.start : passage.end] == passage.text


def test_broken_tag_heading_is_searchable(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask("What are the implications for regional stability?", k=1)
    assert "Implications for Regional Stability" in answer.passages[0].text
    assert answer.passages[0].section == "Implications for Regional Stability"


def test_to_dict_has_the_documented_fields(seed_assistant: Assistant) -> None:
    data = seed_assistant.ask(SEED_QUESTION).to_dict()
    assert {"answer", "answered", "citations", "passages"} <= set(data)
    assert {"n", "source", "start", "end", "text", "score"} <= set(data["citations"][0])
    assert {"source", "start", "end", "text", "score"} <= set(data["passages"][0])
    json.dumps(data)


def test_str_lists_numbered_sources(seed_assistant: Assistant) -> None:
    shown = str(seed_assistant.ask(SEED_QUESTION))
    assert "Sources:" in shown and f"[1] {SEED_FILE.name}" in shown


def test_bad_questions_and_k_are_rejected_clearly(seed_assistant: Assistant) -> None:
    with pytest.raises(InputError, match="empty"):
        seed_assistant.ask("   \n\t ")
    with pytest.raises(InputError, match="limit"):
        seed_assistant.ask("why " * 30_000)
    for bad in (0, -3, 1000, "5"):
        with pytest.raises(InputError, match="k must be"):
            seed_assistant.ask("Who invited the prime minister?", k=bad)  # type: ignore[arg-type]
    # Control characters are cleaned, not fatal.
    assert seed_assistant.ask("Who invited\x00 Prime Minister\x07 Takaichi?").answered


def test_formats_are_indexed_and_cited(assistant_factory, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for name, text in FACTS.items():
        write(corpus / name, text)
    assistant = assistant_factory()
    report = assistant.index([corpus])
    assert sorted(report.added) == sorted(FACTS)
    assert report.failed == []

    answer = assistant.ask("Who designed the Harlow Bridge?")
    assert answer.answered and "Mirela Quist" in answer.text
    assert answer.citations[0].source == "guide/bridges.html"
    assert answer.citations[0].section == "The Harlow Bridge"

    answer = assistant.ask("When did Mount Pelmora last erupt?")
    assert answer.answered and "1873" in answer.text
    citation = answer.citations[0]
    assert citation.source == "volcano.md"
    with open(corpus / "volcano.md", encoding="utf-8") as f:
        assert f.read()[citation.start : citation.end] == citation.text

    # Script and style text never reaches the index.
    hits = assistant.ask("zebra secret var color red", k=5)
    assert all("zebra" not in p.text and "color: red" not in p.text for p in hits.passages)


def test_pdf_page_is_the_section(assistant_factory, tmp_path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    corpus = tmp_path / "pdfs"
    corpus.mkdir()
    pdf = canvas.Canvas(str(corpus / "report.pdf"), pagesize=A4)
    pdf.drawString(72, 760, "Annual report of the Kessler Institute.")
    pdf.showPage()
    pdf.drawString(72, 760, "The Kessler Institute was founded by Anika Brandt in 1962.")
    pdf.save()
    assistant = assistant_factory()
    assert assistant.index([corpus]).added == ["report.pdf"]
    answer = assistant.ask("Who founded the Kessler Institute?")
    assert answer.answered and "Anika Brandt" in answer.text
    assert answer.citations[0].section == "page 2"


def test_bad_file_is_reported_and_others_indexed(assistant_factory, tmp_path: Path) -> None:
    corpus = tmp_path / "mixed"
    write(corpus / "otters.txt", FACTS["otters.txt"])
    (corpus / "blob.txt").write_bytes(bytes(range(256)) * 64)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "photo.png").write_bytes(b"\x89PNG\r\n")  # a truncated image: read by OCR, so reported as damaged
    (corpus / "data.bin").write_bytes(b"\x00\x01")
    report = assistant_factory().index([corpus])
    assert report.added == ["otters.txt"]
    failed = {Path(path).name: reason for path, reason in report.failed}
    assert set(failed) == {"blob.txt", "broken.pdf", "empty.md", "photo.png"}
    assert "binary" in failed["blob.txt"]
    assert "PDF" in failed["broken.pdf"]
    assert "empty" in failed["empty.md"]
    assert "image" in failed["photo.png"]
    assert [Path(p).name for p, _ in report.skipped] == ["data.bin"]


def test_incremental_reindexing(assistant_factory, tmp_path: Path) -> None:
    corpus = tmp_path / "notes"
    for name, text in FACTS.items():
        write(corpus / name, text)
    assistant = assistant_factory()
    first = assistant.index([corpus])
    assert first.chunks_embedded == first.chunks_total > 0

    # Unchanged: nothing read, nothing embedded, nothing rewritten.
    generation = assistant.store.generation()
    again = assistant.index([corpus])
    assert sorted(again.unchanged) == sorted(FACTS)
    assert again.added == again.updated == again.removed == []
    assert again.chunks_embedded == 0
    assert assistant.store.generation() == generation

    # Touched but identical content: still unchanged (content hash), no embedding.
    (corpus / "otters.txt").write_text(FACTS["otters.txt"], encoding="utf-8")
    assert assistant.index([corpus]).chunks_embedded == 0

    # One file edited: only its new chunk text is embedded; other documents keep their chunks.
    before = {d.source: d for d in assistant.sources()}
    other_ids = [c.id for c in assistant.store.document_chunks("guide/bridges.html")]
    write(corpus / "otters.txt", FACTS["otters.txt"] + "\n\nA group of otters resting in water is called a raft.")
    edited = assistant.index([corpus])
    assert edited.updated == ["otters.txt"]
    assert 1 <= edited.chunks_embedded <= before["otters.txt"].chunks + 1
    assert [c.id for c in assistant.store.document_chunks("guide/bridges.html")] == other_ids
    answer = assistant.ask("What is a group of otters resting in water called?")
    assert "raft" in answer.text

    # One file deleted: its chunks are gone from the index and from answers.
    (corpus / "volcano.md").unlink()
    removed = assistant.index([corpus])
    assert removed.removed == ["volcano.md"]
    assert "volcano.md" not in {d.source for d in assistant.sources()}
    assert assistant.store.document_chunks("volcano.md") == []
    assert all(p.source != "volcano.md" for p in assistant.ask("When did Mount Pelmora erupt?", k=10).passages)
    assert removed.chunks_total == sum(d.chunks for d in assistant.sources())

    # A fresh process sees the same state (persistence), and search agrees with the stored chunks.
    fresh = Assistant(index_dir=assistant.index_dir)
    assert fresh.stats()["chunks"] == removed.chunks_total
    assert fresh.ask("Who designed the Harlow Bridge?").citations[0].source == "guide/bridges.html"


def test_remove_by_source(assistant_factory, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    write(corpus / "otters.txt", FACTS["otters.txt"])
    write(corpus / "volcano.md", FACTS["volcano.md"])
    assistant = assistant_factory()
    assistant.index([corpus])
    assert assistant.remove("otters.txt") is True
    assert assistant.remove("otters.txt") is False
    assert [d.source for d in assistant.sources()] == ["volcano.md"]
    assert all(p.source != "otters.txt" for p in assistant.ask("How long can a sea otter hold its breath?").passages)


def test_single_file_source_is_its_name(assistant_factory, tmp_path: Path) -> None:
    path = write(tmp_path / "deep" / "er" / "otters.txt", FACTS["otters.txt"])
    assistant = assistant_factory()
    assert assistant.index([path]).added == ["otters.txt"]
    assert assistant.ask("What do sea otters use rocks for?").citations[0].source == "otters.txt"


def test_index_built_with_other_chunking_is_refused(assistant_factory, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    write(corpus / "otters.txt", FACTS["otters.txt"])
    assistant_factory().index([corpus])
    other = assistant_factory(chunk_tokens=120)
    with pytest.raises(IndexMismatchError, match=r"chunk_tokens.*--rebuild"):
        other.ask("What do otters eat?")
    # --rebuild replaces it with the new settings.
    report = other.index([corpus], rebuild=True)
    assert report.added == ["otters.txt"]
    assert other.stats()["chunk_tokens"] == 120


def test_index_built_with_other_model_is_refused(assistant_factory, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    write(corpus / "otters.txt", FACTS["otters.txt"])
    assistant = assistant_factory()
    assistant.index([corpus])
    database = assistant.index_dir / "store.sqlite"
    with sqlite3.connect(database) as conn:
        config = json.loads(conn.execute("SELECT value FROM meta WHERE key='config'").fetchone()[0])
        config["model_fingerprint"] = "0123456789abcdef"
        config["embedding_model"] = "someone/another-model"
        conn.execute("UPDATE meta SET value=? WHERE key='config'", (json.dumps(config),))
    with pytest.raises(IndexMismatchError, match=r"another-model.*rebuild"):
        Assistant(index_dir=assistant.index_dir).ask("What do otters eat?")


def test_index_chunked_by_an_older_version_is_refused_and_an_evaluation_cache_rebuilt(
    assistant_factory, tmp_path: Path
) -> None:
    from rag.evaluation import index_cache

    corpus = tmp_path / "c"
    write(corpus / "otters.txt", FACTS["otters.txt"])
    assistant = assistant_factory()
    assistant.index([corpus])
    with sqlite3.connect(assistant.index_dir / "store.sqlite") as conn:
        config = json.loads(conn.execute("SELECT value FROM meta WHERE key='config'").fetchone()[0])
        config["chunker"] = "an older chunker"
        conn.execute("UPDATE meta SET value=? WHERE key='config'", (json.dumps(config),))
    again = Assistant(index_dir=assistant.index_dir)
    with pytest.raises(IndexMismatchError, match=r"chunker='an older chunker'.*--rebuild"):
        again.ask("What do otters eat?")
    # `rag eval`'s own index is a cache: it is rebuilt rather than refused.
    assert index_cache(again, corpus).added == ["otters.txt"]
    assert again.ask("What do sea otters use rocks for?").answered


def test_a_question_naming_a_report_gets_that_report(assistant_factory, tmp_path: Path) -> None:
    # Quarterly reports in the same words: only the file names say which quarter is which. Without
    # the names as evidence, "the second quarter of 2023" was answered from the Q1 report.
    corpus = tmp_path / "reports"
    body = (
        "Revenue for the quarter was ${revenue} million. Orchard equipment sales in the northern region rose, "
        "irrigation services saw steady demand, and the company kept its prices for pruning tools unchanged. "
        "Costs of fuel and fertiliser went up, while freight costs fell after the new depot opened near the "
        "river. Management expects demand for harvest machinery to stay firm and plans to hire more field "
        "technicians.\n"
    )
    reports = {"2022 Q3": "3,870", "2023 Q1": "4,120", "2023 Q2": "4,310", "2023 Q3": "4,505", "2024 Q1": "4,777"}
    for period, revenue in reports.items():
        write(corpus / f"{period} Orrin.txt", body.replace("{revenue}", revenue))
    assistant = assistant_factory()
    assistant.index([corpus])
    for question, period in (
        ("What was Orrin's revenue in Q3 2022?", "2022 Q3"),
        ("What was Orrin's revenue in the second quarter of 2023?", "2023 Q2"),
        ("What was Orrin's revenue in the third quarter of 2023?", "2023 Q3"),
        ("What was Orrin's revenue in the latest quarterly report?", "2024 Q1"),
    ):
        answer = assistant.ask(question)
        assert [c.source for c in answer.citations] == [f"{period} Orrin.txt"], question
        assert reports[period] in answer.text


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag index"):
        Assistant(index_dir=tmp_path / "nothing").ask("anything?")


def test_settings_are_validated_with_the_bad_value() -> None:
    with pytest.raises(ConfigError, match="got 0"):
        Settings(k=0)
    with pytest.raises(ConfigError, match="'abc'"):
        Settings.from_env({"RAG_K": "abc"})
    with pytest.raises(ConfigError, match="chunk_overlap"):
        Settings(chunk_tokens=50, chunk_overlap=60)
    with pytest.raises(ConfigError, match="/no/such/model"):
        Settings(model="/no/such/model")
    settings = Settings.from_env({"RAG_K": "7", "RAG_MIN_SCORE": "0.4", "RAG_INDEX_DIR": "/tmp/x"})
    assert (settings.k, settings.min_score, settings.index_dir) == (7, 0.4, Path("/tmp/x"))


def test_import_is_light() -> None:
    code = (
        "import sys, rag; from rag import Assistant, Answer, Settings; a = Assistant(index_dir='/tmp/none'); "
        "print(sorted(m for m in ('gradio', 'torch', 'sentence_transformers', 'faiss', 'transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_module_level_ask_uses_given_index(seed_index: Path) -> None:
    from rag import ask

    answer = ask(SEED_QUESTION, index_dir=seed_index)
    assert answer.answered and answer.citations[0].source == SEED_FILE.name


def test_large_builds_stream_in_groups_and_still_commit_all_or_nothing(
    assistant_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files are read and embedded a group at a time inside one transaction (here groups of 2 chunks,
    and no vectors held for the FAISS update): the result equals a one-group build, and a failure in a
    later group leaves the index exactly as it was."""
    import numpy as np

    import rag.indexing as indexing_module
    from rag.stores.faiss_index import FaissIndex

    corpus = tmp_path / "notes"
    for name, text in FACTS.items():
        write(corpus / name, text)
    whole = assistant_factory("whole")
    whole.index([corpus])

    monkeypatch.setattr(indexing_module, "EMBED_GROUP", 2)
    monkeypatch.setattr(FaissIndex, "held", 1)
    calls: list[int] = []
    streamed = assistant_factory("streamed")
    encode = streamed.embedder.encode
    monkeypatch.setattr(
        streamed.embedder, "encode", lambda texts, progress=None: calls.append(len(texts)) or encode(texts, progress)
    )
    report = streamed.index([corpus])
    assert len(calls) >= 2 and sum(calls) == report.chunks_embedded == report.chunks_total

    def layout(a: Assistant) -> list[tuple[str, int, int, str]]:
        chunks = [c for d in a.sources() for c in a.store.document_chunks(d.source)]
        return sorted((c.source, c.start, c.end, c.text) for c in chunks)

    assert layout(streamed) == layout(whole)
    assert streamed.store.vector_index().ntotal == report.chunks_total
    for question, source in [
        ("Who designed the Harlow Bridge?", "guide/bridges.html"),
        ("When did Mount Pelmora erupt?", "volcano.md"),
    ]:
        assert streamed.ask(question).citations[0].source == source
    ids = [c.id for d in streamed.sources() for c in streamed.store.document_chunks(d.source)]
    stored = streamed.store.vectors(ids)
    assert all(np.allclose(streamed.store.vector_index().reconstruct(i), stored[i]) for i in ids)

    # A failure while embedding a later group: nothing of this run is committed.
    before = (layout(streamed), streamed.store.generation())
    for name in ("later-a.txt", "later-b.txt", "later-c.txt"):
        write(corpus / name, f"{name} holds a fact about tide pools.\n\n" * 3)
    seen: list[int] = []

    def fail_on_second_group(texts, progress=None):
        seen.append(len(texts))
        if len(seen) == 2:
            raise RuntimeError("embedding failed in the second group")
        return encode(texts, progress)

    monkeypatch.setattr(streamed.embedder, "encode", fail_on_second_group)
    with pytest.raises(RuntimeError, match="second group"):
        streamed.index([corpus])
    reopened = Assistant(index_dir=streamed.index_dir)
    assert (layout(reopened), reopened.store.generation()) == before
    assert not {"later-a.txt", "later-b.txt", "later-c.txt"} & {d.source for d in reopened.sources()}


def test_missing_path_is_reported_not_raised_and_duplicates_are_not_indexed(assistant_factory, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    write(corpus / "otters.txt", FACTS["otters.txt"])
    write(corpus / "sub" / "otters copy.txt", FACTS["otters.txt"])  # byte-identical, in the same run
    assistant = assistant_factory()
    report = assistant.index([corpus, tmp_path / "no-such-folder"])
    assert report.added == ["otters.txt"]
    assert report.failed == [(str(tmp_path / "no-such-folder"), "no such file or folder")]
    assert report.duplicates == [(str(corpus / "sub" / "otters copy.txt"), "otters.txt")]
    assert "1 duplicate" in report.summary()
    assert report.to_dict()["duplicates"] == [
        {"path": str(corpus / "sub" / "otters copy.txt"), "same_as": "otters.txt"}
    ]
    assert [d.source for d in assistant.sources()] == ["otters.txt"]
    # A later run: a file given directly with the same bytes is not indexed either; answers cite one file.
    copy = write(tmp_path / "elsewhere" / "copy.txt", FACTS["otters.txt"])
    again = assistant.index([copy])
    assert again.duplicates == [(str(copy), "otters.txt")] and again.added == []
    sources = {p.source for p in assistant.ask("How long can a sea otter hold its breath?").passages}
    assert sources == {"otters.txt"}
    # Renaming a file (old name gone, same bytes under a new name) is a rename, not a duplicate.
    (corpus / "otters.txt").rename(corpus / "sea-otters.txt")
    renamed = assistant.index([corpus])
    assert (
        renamed.added == ["sea-otters.txt"]
        and renamed.removed == ["otters.txt"]
        and renamed.duplicates == [(str(corpus / "sub" / "otters copy.txt"), "sea-otters.txt")]
    )


def test_a_heading_is_not_an_answer_and_when_without_a_date_is_refused(seed_assistant: Assistant) -> None:
    # The seed article has a heading "Looking Ahead: What to Expect from a Visit" and no date at all.
    fresh = seed_assistant.ask("When will she visit?")
    assert not fresh.answered, fresh.text
    assert "Looking Ahead" not in fresh.text
    assert fresh.note and "date" in fresh.note
    # Questions the seed article answers stay answered, with sentences (not headings) quoted.
    from ui.examples import SEED_EXAMPLES

    for question in [*SEED_EXAMPLES[SEED_FILE.name], "What economic cooperation is expected?"]:
        answer = seed_assistant.ask(question)
        assert answer.answered, question
        assert all(c.highlights for c in answer.citations)
        for citation in answer.citations:
            for start, end in citation.highlights:
                quoted = _seed_text()[start:end]
                assert quoted.rstrip().endswith((".", "?", "!")), (question, quoted)


def test_one_score_from_0_to_1_in_best_first_order(seed_assistant: Assistant) -> None:
    for question, answered in [
        (SEED_QUESTION, True),
        ("What economic cooperation is expected?", True),
        ("What is the boiling point of liquid nitrogen in kelvin?", False),
    ]:
        answer = seed_assistant.ask(question)
        assert answer.answered is answered
        scores = [p.score for p in answer.passages]
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True), scores
        assert answer.confidence == max(scores)
        by_span = {(p.source, p.start): p.score for p in answer.passages}
        for c in answer.citations:
            assert c.score == by_span[(c.source, c.start)]
        if answered:
            # The answer clears the refusal threshold, and so does the passage it quotes first.
            assert answer.confidence >= seed_assistant.settings.min_score
            assert answer.citations[0].score >= seed_assistant.settings.min_score
        else:
            assert answer.confidence < seed_assistant.settings.min_score


def test_readme_python_snippet_runs_on_a_fresh_clone(tmp_path: Path) -> None:
    import re

    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shutil.copytree(SEEDS, tmp_path / "seeds")  # the clone's seeds/, in a scratch working directory
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "1 added" in result.stdout and "Donald Trump" in result.stdout and "Sources:" in result.stdout


def test_empty_files_fail_as_empty_not_as_duplicates(assistant_factory, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    write(corpus / "otters.txt", FACTS["otters.txt"])
    write(corpus / "empty.md", b"")
    write(corpus / "zero.txt", b"")
    report = assistant_factory().index([corpus])
    assert report.duplicates == []
    assert sorted(Path(p).name for p, _ in report.failed) == ["empty.md", "zero.txt"]


def test_settings_change_through_configure_validated(tmp_path: Path) -> None:
    from rag import Assistant, ConfigError

    assistant = Assistant(index_dir=tmp_path / "index")
    assert assistant.generator is None
    settings = assistant.configure(llm_base_url="http://127.0.0.1:9/v1", llm_model="m")
    assert assistant.settings is settings and settings.llm_model == "m" and assistant.generator is not None
    with pytest.raises(ConfigError, match="llm_base_url"):
        assistant.configure(llm_base_url="ftp://nowhere")
    assert assistant.settings.llm_base_url == "http://127.0.0.1:9/v1", "a refused change changes nothing"
    with pytest.raises(ConfigError, match="chunk_tokens cannot change on an open index"):
        assistant.configure(chunk_tokens=100)
    assert assistant.configure(llm_base_url="").llm_base_url == "" and assistant.generator is None
