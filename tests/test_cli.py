"""The ``rag`` command as a user runs it: real processes, real files, exit codes and JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SEED_QUESTION, SEEDS, SQUAD, needs_squad

RAG = [sys.executable, "-m", "rag.cli"]


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RAG, *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def assert_user_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("cli")
    corpus = base / "corpus"
    shutil.copytree(SEEDS, corpus)
    index = base / "index"
    result = run("index", str(corpus), "--index", str(index), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == [next(SEEDS.glob("*.txt")).name]
    assert report["chunks_total"] > 0
    return corpus, index


def test_ask_json_answers_with_exact_citation(cli_index: tuple[Path, Path]) -> None:
    corpus, index = cli_index
    result = run("ask", SEED_QUESTION, "--index", str(index), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answered"] is True
    assert "Trump" in data["answer"] and "[1]" in data["answer"]
    citation = data["citations"][0]
    assert citation["n"] == 1
    with open(corpus / citation["source"], encoding="utf-8") as f:
        assert f.read()[citation["start"] : citation["end"]] == citation["text"]
    assert data["passages"] and {"source", "start", "end", "text", "score"} <= set(data["passages"][0])


def test_ask_refusal_and_plain_output(cli_index: tuple[Path, Path]) -> None:
    _, index = cli_index
    result = run("ask", "How many moons does Neptune have?", "--index", str(index), "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["answered"] is False and data["citations"] == []
    plain = run("ask", SEED_QUESTION, "--index", str(index), "-k", "3")
    assert plain.returncode == 0
    assert "Sources:" in plain.stdout and "[1]" in plain.stdout


def test_reindex_unchanged_sources_and_remove(cli_index: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, index = cli_index
    copy = tmp_path / "index"
    shutil.copytree(index, copy)
    result = run("index", str(corpus), "--index", str(copy), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["chunks_embedded"] == 0 and len(report["unchanged"]) == 1
    name = report["unchanged"][0]

    listed = run("sources", "--index", str(copy))
    assert listed.returncode == 0 and name in listed.stdout and "chunks" in listed.stdout
    listed_json = json.loads(run("sources", "--index", str(copy), "--json").stdout)
    assert listed_json[0]["source"] == name and listed_json[0]["chunks"] > 0

    assert run("remove", name, "--index", str(copy)).returncode == 0
    assert json.loads(run("sources", "--index", str(copy), "--json").stdout) == []
    assert_user_error(run("remove", name, "--index", str(copy)), 1, "not in the index")


def test_chat_loop_answers_from_stdin(cli_index: tuple[Path, Path]) -> None:
    _, index = cli_index
    result = run("chat", "--index", str(index), stdin=f"{SEED_QUESTION}\n\n")
    assert result.returncode == 0, result.stderr
    assert "Trump" in result.stdout and "Sources:" in result.stdout


def test_user_errors_are_one_line_without_traceback(tmp_path: Path, cli_index: tuple[Path, Path]) -> None:
    _, index = cli_index
    assert_user_error(run("ask", "anything", "--index", str(tmp_path / "none")), 1, "no index", "rag index")
    assert_user_error(run("index", str(tmp_path / "missing"), "--index", str(tmp_path / "i")), 1, "no such file")
    assert_user_error(run("ask", "hello", "--index", str(index), "-k", "0"), 1, "k must be")
    assert_user_error(run("ask", "   ", "--index", str(index)), 1, "empty")
    assert_user_error(run("ask", "--no-such-flag"), 2, "--help")
    assert_user_error(run("ask", "q", "--index", str(index), env={"RAG_K": "many"}), 1, "RAG_K", "'many'")


def test_index_reports_bad_files_and_continues(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "good.md").write_text("# Tides\n\nSpring tides happen at new and full moon.\n", encoding="utf-8")
    (corpus / "bad.pdf").write_bytes(b"%PDF-1.4 truncated")
    result = run("index", str(corpus), "--index", str(tmp_path / "i"), "--quiet")
    # Some files failed, the rest were indexed: a documented non-zero status so that scripts notice.
    assert result.returncode == 3, result.stderr
    assert "1 added" in result.stdout and "1 failed" in result.stdout
    assert "bad.pdf" in result.stderr and "Traceback" not in result.stderr
    # Run again with nothing failing: 0. Unsupported files are skipped, not failed: still 0.
    (corpus / "bad.pdf").unlink()
    (corpus / "photo.bin").write_bytes(b"\x89PNG\r\n")
    again = run("index", str(corpus), "--index", str(tmp_path / "i"), "--quiet")
    assert again.returncode == 0, again.stderr
    assert "1 skipped" in again.stdout


def test_index_reports_a_missing_path_among_others_and_a_duplicate(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    guide = "# Varnholm\n\nThe Varnholm ferry leaves the harbour at seven every morning.\n"
    (corpus / "varnholm-guide.md").write_text(guide, encoding="utf-8")
    index = tmp_path / "i"
    assert run("index", str(corpus), "--index", str(index), "--quiet").returncode == 0
    (corpus / "copy of guide.md").write_text(guide, encoding="utf-8")  # byte-identical, another name
    result = run("index", str(corpus), str(tmp_path / "nowhere"), "--index", str(index), "--quiet")
    assert result.returncode == 3, result.stderr
    assert f"failed: {tmp_path / 'nowhere'}: no such file or folder" in result.stderr
    assert "duplicate:" in result.stderr and "same content as varnholm-guide.md" in result.stderr
    assert "0 added" in result.stdout and "1 unchanged" in result.stdout and "1 duplicate" in result.stdout
    report = json.loads(run("index", str(corpus), "--index", str(index), "--json").stdout)
    assert report["duplicates"] == [{"path": str(corpus / "copy of guide.md"), "same_as": "varnholm-guide.md"}]
    assert report["added"] == [] and report["unchanged"] == ["varnholm-guide.md"]
    listed = run("sources", "--index", str(index))
    assert listed.returncode == 0
    assert "copy of guide" not in listed.stdout
    # One file with one chunk: singular nouns ("1 chunk", not "1 chunks").
    assert "1 file, 1 chunk" in listed.stdout and "1 chunks" not in listed.stdout


def test_plain_ask_quotes_the_sentence_of_each_source(cli_index: tuple[Path, Path]) -> None:
    _, index = cli_index
    plain = run("ask", SEED_QUESTION, "--index", str(index))
    assert plain.returncode == 0, plain.stderr
    sources = plain.stdout.split("Sources:", 1)[1]
    first = sources.strip().splitlines()
    assert first[0].startswith("[1] ") and "score " in first[0]
    assert first[1].strip().startswith('"') and "Donald Trump extended an invitation" in first[1]
    assert "score: how well a passage matches the question, 0 to 1" in sources


@pytest.mark.slow
@needs_squad
def test_squad_dev_articles_are_cited(tmp_path: Path) -> None:
    index = tmp_path / "squad"
    result = run("index", str(SQUAD / "docs"), "--index", str(index), "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["added"]) == 24
    questions = [json.loads(line) for line in (SQUAD / "questions.jsonl").read_text().splitlines()]
    sample = questions[:: len(questions) // 12][:12]
    from rag import Assistant

    assistant = Assistant(index_dir=index)
    right = 0
    for q in sample:
        answer = assistant.ask(q["question"])
        right += bool(answer.citations) and answer.citations[0].source == q["source"]
    assert right >= 9, f"only {right} of {len(sample)} questions cited their article first"


def test_index_help_lists_every_format_and_the_exit_status() -> None:
    from rag import SUPPORTED_SUFFIXES

    shown = run("index", "--help").stdout
    assert all(suffix in shown for suffix in SUPPORTED_SUFFIXES) and "3 some files failed" in shown


def test_readme_says_make_run_prints_the_address_and_how_to_change_it() -> None:
    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "opens the web chat" not in readme
    assert "`make run` does not open a browser: it prints the address" in readme
    assert "make run PORT=8080" in readme and "make run HOST=0.0.0.0 PORT=8080" in readme
    run_target = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "--host $(HOST)" in run_target and "--port $(PORT)" in run_target
