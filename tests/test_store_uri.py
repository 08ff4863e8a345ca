"""Parsing the ``vector_store`` setting (rag/stores/uri.py): no Milvus client, no files, no server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag import ConfigError
from rag.stores.uri import DEFAULT_COLLECTION, DEFAULT_PORT, StoreURI, parse_store_uri


@pytest.mark.parametrize("value", ["", "faiss", "  faiss "])
def test_faiss_is_the_default(value: str) -> None:
    assert parse_store_uri(value) is None


def test_a_milvus_server_is_host_port_and_collection() -> None:
    assert parse_store_uri("milvus://db.example/docs") == StoreURI(
        "milvus", f"http://db.example:{DEFAULT_PORT}", "docs", "HNSW"
    )
    tuned = parse_store_uri("milvus://db.example:19531/docs?index=ivf_flat&nlist=64&nprobe=8")
    assert tuned == StoreURI("milvus", "http://db.example:19531", "docs", "IVF_FLAT", nlist=64, nprobe=8)
    assert tuned.display() == "milvus://db.example:19531/docs" and not tuned.lite
    ipv6 = parse_store_uri("milvus://[::1]:19530/docs")
    assert ipv6 is not None and ipv6.uri == "http://[::1]:19530"


def test_credentials_go_to_the_token_and_nowhere_else() -> None:
    secure = parse_store_uri("milvus+https://alice:s%40cret@db.example/docs")
    assert secure is not None
    assert (secure.uri, secure.token) == ("https://db.example:19530", "alice:s@cret")
    assert secure.display() == "milvus+https://db.example:19530/docs"
    assert "cret" not in repr(secure) and "alice" not in secure.display()


def test_milvus_lite_is_a_db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lite = parse_store_uri(f"milvus-lite://{tmp_path}/v.db")
    assert lite == StoreURI("milvus-lite", str(tmp_path / "v.db"), DEFAULT_COLLECTION, "FLAT")
    assert lite.lite and lite.display() == f"milvus-lite://{tmp_path}/v.db?collection={DEFAULT_COLLECTION}"
    # A plain path, as pymilvus names a Lite file, is the same store; options ride in the query string.
    assert parse_store_uri(f"{tmp_path}/v.db") == lite
    tuned = parse_store_uri(f"{tmp_path}/v.db?collection=c1&index=hnsw&ef=64")
    assert tuned == StoreURI("milvus-lite", str(tmp_path / "v.db"), "c1", "HNSW", ef=64)
    monkeypatch.chdir(tmp_path)
    relative = parse_store_uri("milvus-lite:sub/v.db")
    assert relative is not None and relative.uri == str(tmp_path / "sub" / "v.db")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("milvus://host:99999/c", "bad port"),
        ("milvus://:19530/c", "names no Milvus host"),
        ("milvus://host:19530", "names no collection"),
        ("milvus://host/c?collection=x", "collection is the URI path"),
        ("milvus://host/9c", "letters, digits and _"),
        ("milvus://host/c?index=FOO", "index must be one of"),
        ("milvus://host/c?colour=red", "unknown option(s) colour"),
        ("milvus://host/c?a=b&&", "malformed query string"),
        ("milvus://host/c d", "must not contain spaces"),
        ("milvus-lite:///tmp/x.db?ef=0", "ef must be a whole number from 1 to 32768, got '0'"),
        ("milvus-lite:///tmp/x.db?nlist=abc", "nlist must be a whole number from 1 to 65536, got 'abc'"),
        ("milvus-lite:///tmp/x.db?index=DISKANN", "Milvus Lite index must be one of"),
        ("milvus-lite:///tmp/.db", "must name a file ending in .db"),
        ("/tmp/vectors.sqlite", "must name a file ending in .db"),
        ("vectors.db", "write ./vectors.db"),
        ("redis://host/x", "not a store this version knows"),
    ],
)
def test_bad_values_are_refused_in_one_line_that_quotes_them(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_store_uri(value)
    message = str(caught.value)
    assert says in message and "\n" not in message, message
    assert re.search(re.escape(repr(value)) + "|" + re.escape(value), message), message
