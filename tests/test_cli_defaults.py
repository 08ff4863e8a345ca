"""What a new user meets on the command line outside the clone: the default index is the one ``--help``
names (``./index`` of the folder the command runs in), every command says which index it uses, options
do not swallow paths, and the README's scratch folders stay out of git. Real processes, real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import ROOT, SEEDS, write

RAG = [sys.executable, "-m", "rag.cli"]
LIGHTHOUSE = "The keeper Oskar Lund painted the Hexaplume lighthouse green in 1987.\n"


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return subprocess.run([*RAG, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600, check=False)


def first_line(text: str) -> str:
    return text.splitlines()[0] if text.strip() else ""


def test_outside_the_clone_the_default_index_is_the_current_folders(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write(home / "docs" / "lighthouse.txt", LIGHTHOUSE)
    index = (home / "index").resolve()
    assert "(default: RAG_INDEX_DIR or ./index)" in run(home, "sources", "--help").stdout

    nothing = run(home, "sources")
    assert nothing.returncode == 1 and str(index) in nothing.stderr, "no index here yet: say where it was looked for"
    assert str(ROOT) not in nothing.stdout + nothing.stderr, "the clone's index is not the default elsewhere"

    built = run(home, "index", "docs")
    assert built.returncode == 0, built.stderr
    assert first_line(built.stdout) == f"index: {index}"
    assert (index / "manifest.json").is_file()

    listed = run(home, "sources")
    assert listed.returncode == 0, listed.stderr
    assert first_line(listed.stdout) == f"index: {index}"
    assert "lighthouse.txt" in listed.stdout and "000_" not in listed.stdout, "only this folder's files"

    asked = run(home, "ask", "Who painted the Hexaplume lighthouse?")
    assert asked.returncode == 0, asked.stderr
    assert first_line(asked.stdout) == f"index: {index}" and "Oskar Lund" in asked.stdout
    data = json.loads(run(home, "ask", "Who painted the Hexaplume lighthouse?", "--json").stdout)
    assert data["index"] == str(index) and data["answered"] is True

    shown = run(home, "show", "lighthouse.txt:11-21")
    assert shown.returncode == 0 and first_line(shown.stdout) == f"index: {index}", shown.stderr
    removed = run(home, "remove", "lighthouse.txt")
    assert removed.returncode == 0 and first_line(removed.stdout) == f"removed lighthouse.txt from the index at {index}"

    # an explicit --index is named the same way, whatever the current folder
    other = run(tmp_path, "index", str(home / "docs"), "--index", "elsewhere", "--json")
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)["index"] == str((tmp_path / "elsewhere").resolve())


def test_eval_without_index_uses_its_own_cache_as_its_help_says(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    name = f"tiny-eval-{os.getpid()}-{tmp_path.name}"
    evalset = tmp_path / name
    write(evalset / "docs" / "lighthouse.txt", LIGHTHOUSE)
    start = LIGHTHOUSE.index("Oskar Lund")
    question = {
        "id": "q1",
        "question": "Who painted the Hexaplume lighthouse green?",
        "answers": ["Oskar Lund"],
        "source": "lighthouse.txt",
        "spans": [[start, start + len("Oskar Lund")]],
    }
    write(evalset / "questions.jsonl", json.dumps(question) + "\n")
    shown = run(home, "eval", "--help").stdout
    assert "temporary folder" in " ".join(shown.split()) and "RAG_INDEX_DIR is not used" in " ".join(shown.split())

    result = run(home, "eval", str(evalset), "--json")
    try:
        assert result.returncode == 0, result.stderr
        used = Path(json.loads(result.stdout)["index"])
        assert used.is_relative_to(Path(tempfile.gettempdir()).resolve()) and name in str(used)
        assert not (home / "index").exists()
        plain = run(home, "eval", str(evalset))
        assert plain.returncode == 0 and first_line(plain.stdout) == f"index: {used}", plain.stderr
    finally:
        shutil.rmtree(Path(tempfile.gettempdir()) / f"rag-eval-{name}-200", ignore_errors=True)


def test_ray_switch_does_not_swallow_the_path(tmp_path: Path) -> None:
    """``rag index --ray docs/`` reads docs/ as the path (the address has its own --ray-address)."""
    from rag.cli import build_parser

    parser = build_parser()
    for argv in (["index", "--ray", "docs/"], ["index", "docs/", "--ray"]):
        args = parser.parse_args(argv)
        assert args.paths == ["docs/"] and args.ray is True and args.ray_address is None
    args = parser.parse_args(["index", "--ray-address", "ray://head:10001", "docs/"])
    assert args.paths == ["docs/"] and args.ray_address == "ray://head:10001"

    # as a user runs it: without Ray installed, the one line is about Ray, not a missing PATH
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["PYTHONPATH"] = str(ROOT)
    blocked = "import sys; sys.modules['ray'] = None; from rag.cli import main; sys.exit(main(sys.argv[1:]))"
    write(tmp_path / "docs" / "a.txt", "Some text to index.")
    result = subprocess.run(
        [sys.executable, "-c", blocked, "index", "--ray", "docs", "--index", "idx"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "rag: error: indexing on Ray needs Ray Data: pip install 'rag-assistant[ray]'"
    ]


def test_readme_scratch_index_is_ignored_by_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("my-index/manifest.json", "site/index.html"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{path} is not git-ignored"


def test_the_clone_still_builds_its_own_index_from_seeds(tmp_path: Path) -> None:
    """Only the checkout's own index/ is built from seeds/ on first use (checked without touching it)."""
    from rag import Assistant
    from rag.config import checkout_index_dir

    own = checkout_index_dir()
    assert own == ROOT / "index"
    elsewhere = Assistant(index_dir=tmp_path / "index")
    assert elsewhere.default_corpus() is None
    clone = Assistant(index_dir=tmp_path / "copy" / "index")
    assert clone.default_corpus() is None
    probe = Assistant(index_dir=own)
    expected = None if probe.store.exists() else SEEDS
    assert probe.default_corpus() == expected
