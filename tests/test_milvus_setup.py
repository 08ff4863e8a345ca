"""Setting Milvus up: a missing extra is one line naming it; pymilvus-style local paths are Milvus Lite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rag import ConfigError, Settings
from rag.stores import Changes, MilvusStore, open_store, parse_store_uri

from .conftest import ROOT, SEEDS
from .test_store_contract import CONFIG, check_consistent, corpus, document

#: Runs the CLI with some modules made unimportable (as when the extra is not installed).
BLOCKED_CLI = (
    "import sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "from rag.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def cli_without(modules: str, *args: str, store: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_VECTOR_STORE=store, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_CLI, modules, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("store", ["milvus://127.0.0.1:9/docs", "milvus-lite:///{tmp}/v.db", "{tmp}/v.db"])
def test_index_without_pymilvus_names_the_extra(tmp_path: Path, store: str) -> None:
    store = store.format(tmp=tmp_path)
    result = cli_without("pymilvus", "index", str(SEEDS), "--index", str(tmp_path / "index"), store=store)
    assert_one_line(result, "pip install 'rag-assistant[milvus]'", "RAG_VECTOR_STORE=")
    assert not (tmp_path / "index" / "store.sqlite").exists(), "nothing is left behind"


def test_ask_and_migrate_without_pymilvus_name_the_extra(tmp_path: Path) -> None:
    uri = f"milvus-lite://{tmp_path}/v.db"
    store = open_store(Settings(index_dir=tmp_path / "index", vector_store=uri))
    store.create(dict(CONFIG))
    store.close()
    asked = cli_without("pymilvus", "ask", "what is in it?", "--index", str(tmp_path / "index"), store=uri)
    assert_one_line(asked, "pip install 'rag-assistant[milvus]'")
    migrated = cli_without(
        "pymilvus", "migrate", "--from", str(tmp_path / "index"), "--to", uri, "--index", str(tmp_path / "x"), store=""
    )
    assert migrated.returncode == 1 and "Traceback" not in migrated.stderr, migrated.stderr


def test_lite_without_milvus_lite_names_the_extra(tmp_path: Path) -> None:
    result = cli_without(
        "milvus_lite", "index", str(SEEDS), "--index", str(tmp_path / "index"), store=f"{tmp_path}/v.db"
    )
    assert_one_line(result, "needs Milvus Lite", "pip install 'rag-assistant[milvus]'")


def test_pymilvus_style_paths_are_milvus_lite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = parse_store_uri(f"{tmp_path}/sub/vectors.db")
    assert absolute is not None and absolute.lite and absolute.uri == str(tmp_path / "sub" / "vectors.db")
    assert absolute.collection == "rag_chunks" and absolute.index == "FLAT"
    assert absolute == parse_store_uri(f"milvus-lite://{tmp_path}/sub/vectors.db")
    monkeypatch.chdir(tmp_path)
    relative = parse_store_uri("./sub/vectors.db?collection=docs")
    assert relative is not None and relative.uri == str(tmp_path / "sub" / "vectors.db")
    assert relative.collection == "docs"
    parent = parse_store_uri("../vectors.db")
    assert parent is not None and parent.uri == str(tmp_path.parent / "vectors.db")
    home = parse_store_uri("~/vectors.db")
    assert home is not None and home.uri == str(Path.home() / "vectors.db")
    assert Settings.from_env({"RAG_VECTOR_STORE": "./v.db"}).vector_store == "./v.db"
    with pytest.raises(ConfigError, match=r"write \./vectors\.db"):
        Settings(vector_store="vectors.db")
    for bad in ("/tmp/vectors.sqlite", "./", "/tmp/x.db?colour=red", "./x.db?index=DISKANN"):
        with pytest.raises(ConfigError, match=re.escape(repr(bad))):
            Settings(vector_store=bad)


def test_a_relative_lite_path_holds_the_same_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store(Settings(index_dir=tmp_path / "index", vector_store="./vectors.db"))
    assert isinstance(store, MilvusStore)
    try:
        store.create(dict(CONFIG))
        with store.writer():
            store.apply(Changes(upserts=[document("a.txt", corpus("alpha", 3))]))
        here = check_consistent(store)
    finally:
        store.close()
    assert (tmp_path / "vectors.db").is_dir()
    same = open_store(Settings(index_dir=tmp_path / "index", vector_store=f"milvus-lite://{tmp_path}/vectors.db"))
    try:
        assert check_consistent(same) == here == {"a.txt": corpus("alpha", 3)}
    finally:
        same.close()


def test_milvus_vectors_live_in_milvus_only_and_survive_a_rebuild(tmp_path: Path) -> None:
    """The catalog keeps no vectors (Milvus has them: reuse reads them back), and a rebuild (reset) keeps
    the record of which collection the index owns and records its settings in the collection, so the
    rebuilt index opens again in a new process."""
    import sqlite3

    settings = Settings(index_dir=tmp_path / "index", vector_store=f"milvus-lite://{tmp_path}/vectors.db")
    store = open_store(settings)
    a = document("a.txt", corpus("alpha", 3))
    try:
        store.create(dict(CONFIG))
        with store.writer():
            store.apply(Changes(upserts=[a]))
        cached = store.cached_vectors([c.hash for c in a[1]])
        assert set(cached) == {c.hash for c in a[1]}
        assert all(abs(float(cached[c.hash] @ c.vector) - 1.0) < 1e-5 for c in a[1])
        with store.writer():
            store.apply(Changes(upserts=[document("b.txt", corpus("beta", 2))], reset={**CONFIG, "chunk_tokens": 120}))
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "index" / "store.sqlite") as conn:
        assert conn.execute("SELECT count(*), max(length(vector)) FROM chunks").fetchone() == (2, 0)
    reopened = open_store(settings)
    try:
        assert reopened.config()["chunk_tokens"] == 120
        assert check_consistent(reopened) == {"b.txt": corpus("beta", 2)}
    finally:
        reopened.close()
