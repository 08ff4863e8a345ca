"""The web chat's programmatic side: the app served for real (127.0.0.1, a free port) and called with
gradio_client, plus the plain-Python parts (names, escaping, the documents store, settings)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from .conftest import SEED_QUESTION, SEEDS

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

SEED_FILE = next(SEEDS.glob("*.txt"))
UNANSWERABLE = "What is the capital of Peru?"
LIGHTHOUSE = (
    "# Hexaplume lighthouse\n\n"
    "The Hexaplume lighthouse stands on the northern cliff of Varnholt island. "
    "The keeper Oskar Lund painted the Hexaplume lighthouse green in 1987. "
    "Its lamp can be seen from forty kilometres away on a clear night.\n"
)
LIGHTHOUSE_QUESTION = "Who painted the Hexaplume lighthouse green?"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """One app per module over a private copy of the seed index (uploads change it)."""
    from rag import Assistant
    from ui.app import launch

    index = tmp_path_factory.mktemp("ui-api") / "index"
    shutil.copytree(seed_index, index)
    assistant = Assistant(index_dir=index)
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, stream_delay=0, upload_max_mb=1)
    client = gradio_client.Client(url, verbose=False)
    yield SimpleNamespace(app=app, url=url, assistant=assistant, client=client, index=index)
    app.close()


def upload(served: SimpleNamespace, *paths: Path) -> dict[str, Any]:
    result = served.client.predict([gradio_client.handle_file(str(p)) for p in paths], api_name="/upload")
    assert isinstance(result, (list, tuple)) and len(result) == 6
    report = result[0]
    assert isinstance(report, dict)
    return report


def sources(served: SimpleNamespace) -> dict[str, dict[str, Any]]:
    return {row["source"]: row for row in served.client.predict(api_name="/sources")}


# ---------------------------------------------------------------- the served app


def test_named_endpoints_are_stable(served: SimpleNamespace) -> None:
    endpoints = served.client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/ask", "/upload", "/remove", "/sources"} <= set(endpoints)
    assert [p["parameter_name"] for p in endpoints["/ask"]["parameters"]] == ["question"]


def test_ask_returns_the_rag_ask_json(served: SimpleNamespace) -> None:
    data = served.client.predict(SEED_QUESTION, api_name="/ask")
    assert data == served.assistant.ask(SEED_QUESTION).to_dict()
    assert data["answered"] is True
    assert "Trump" in data["answer"] and "[1]" in data["answer"]
    citation = data["citations"][0]
    assert citation["n"] == 1 and citation["source"] == SEED_FILE.name
    document = SEED_FILE.read_text(encoding="utf-8")
    assert document[citation["start"] : citation["end"]] == citation["text"]
    assert citation["highlights"]
    for start, end in citation["highlights"]:
        assert citation["start"] <= start < end <= citation["end"]
        assert document[start:end] in data["answer"]


def test_ask_refusal_has_no_citations_but_closest_passages(served: SimpleNamespace) -> None:
    data = served.client.predict(UNANSWERABLE, api_name="/ask")
    assert data["answered"] is False
    assert data["citations"] == []
    assert data["passages"] and data["passages"][0]["source"] == SEED_FILE.name


def test_ask_reports_a_bad_question(served: SimpleNamespace) -> None:
    with pytest.raises(gradio_client.exceptions.AppError, match="empty"):
        served.client.predict("   ", api_name="/ask")


def test_upload_then_ask_about_the_new_file(served: SimpleNamespace, tmp_path: Path) -> None:
    original = tmp_path / "Lighthouse notes.md"
    original.write_text(LIGHTHOUSE, encoding="utf-8")
    report = upload(served, original)
    assert report["stored"] == [{"name": "Lighthouse notes.md", "stored_as": "Lighthouse_notes.md"}]
    assert report["rejected"] == [] and report["report"]["added"] == ["Lighthouse_notes.md"]
    stored = served.index / "documents" / "Lighthouse_notes.md"
    assert stored.read_text(encoding="utf-8") == LIGHTHOUSE
    assert original.exists(), "the caller's own file is never touched"

    data = served.client.predict(LIGHTHOUSE_QUESTION, api_name="/ask")
    assert data["answered"] is True and "Oskar Lund" in data["answer"]
    assert data["citations"][0]["source"] == "Lighthouse_notes.md"
    assert sources(served)["Lighthouse_notes.md"]["uploaded"] is True

    # Gradio's temporary copy of the upload is gone.
    from ui.app import _upload_folder

    assert not list(_upload_folder().rglob("Lighthouse notes.md"))


def test_bad_files_report_their_reason_and_the_rest_is_indexed(served: SimpleNamespace, tmp_path: Path) -> None:
    before = sources(served)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    program = tmp_path / "tool.exe"
    program.write_bytes(b"MZ\x90\x00")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf")
    good = tmp_path / "orchard.txt"
    good.write_text("The Pellworth orchard grows the Brindlecot apple, first bred in 1874.\n", encoding="utf-8")

    report = upload(served, empty, program, broken, good)
    reasons = {r["name"]: r["reason"] for r in report["rejected"]}
    assert set(reasons) == {"empty.txt", "tool.exe", "broken.pdf"}
    assert "unsupported file type '.exe'" in reasons["tool.exe"]
    assert all(reason for reason in reasons.values())
    assert report["stored"] == [{"name": "orchard.txt", "stored_as": "orchard.txt"}]
    folder = served.index / "documents"
    assert not (folder / "empty.txt").exists() and not (folder / "broken.pdf").exists()

    after = sources(served)
    assert set(after) == set(before) | {"orchard.txt"}
    assert served.client.predict(SEED_QUESTION, api_name="/ask")["answered"] is True


def test_same_file_again_is_unchanged_and_a_new_version_gets_its_own_name(
    served: SimpleNamespace, tmp_path: Path
) -> None:
    first = tmp_path / "a" / "ferry.txt"
    first.parent.mkdir()
    first.write_text("The Quarrow ferry leaves the harbour at seven every morning.\n", encoding="utf-8")
    assert upload(served, first)["stored"] == [{"name": "ferry.txt", "stored_as": "ferry.txt"}]
    again = upload(served, first)
    assert again["stored"] == [] and again["unchanged"] == [{"name": "ferry.txt", "stored_as": "ferry.txt"}]

    second = tmp_path / "b" / "ferry.txt"
    second.parent.mkdir()
    second.write_text("The Quarrow ferry was replaced by a bridge in 2004.\n", encoding="utf-8")
    assert upload(served, second)["stored"] == [{"name": "ferry.txt", "stored_as": "ferry-2.txt"}]
    assert {"ferry.txt", "ferry-2.txt"} <= set(sources(served))

    # A name already used by a document indexed from elsewhere is not taken over either.
    clash = tmp_path / SEED_FILE.name
    clash.write_text("A different text under the seed document's name.\n", encoding="utf-8")
    stored_as = upload(served, clash)["stored"][0]["stored_as"]
    assert stored_as != SEED_FILE.name and stored_as.endswith("-2.txt")
    assert sources(served)[SEED_FILE.name]["uploaded"] is False


def test_remove_drops_the_file_and_its_copy(served: SimpleNamespace, tmp_path: Path) -> None:
    doc = tmp_path / "kiln.md"
    doc.write_text("The Ostrava kiln fires porcelain at 1400 degrees.\n", encoding="utf-8")
    assert upload(served, doc)["stored"]
    assert (served.index / "documents" / "kiln.md").exists()
    status = served.client.predict("kiln.md", api_name="/remove")[0]
    assert "kiln.md: removed" in status
    assert "kiln.md" not in sources(served)
    assert not (served.index / "documents" / "kiln.md").exists()
    status = served.client.predict("kiln.md", api_name="/remove")[0]
    assert "not in the index" in status


def test_upload_over_the_size_limit_is_refused(served: SimpleNamespace, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * 250_000, encoding="utf-8")  # 1.25 MB; the module's app allows 1 MB
    with pytest.raises(Exception, match="maximum file size"):
        upload(served, big)
    # The server refuses it too, whatever the client checks.
    import httpx

    response = httpx.post(
        served.url.rstrip("/") + "/gradio_api/upload", files={"files": ("big.txt", big.read_bytes())}, timeout=60
    )
    assert response.status_code == 413
    assert "big.txt" not in sources(served)


def test_port_in_use_is_a_clear_error(served: SimpleNamespace) -> None:
    from rag import InputError
    from ui.app import launch

    port = int(served.url.rstrip("/").rsplit(":", 1)[1])
    with pytest.raises(InputError, match="in use"):
        launch(served.assistant, "127.0.0.1", port, block=False)


def test_without_an_index_the_first_upload_creates_it(served: SimpleNamespace, tmp_path: Path) -> None:
    from rag import Assistant
    from ui.app import launch

    assistant = Assistant(index_dir=tmp_path / "fresh")
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, stream_delay=0)
    try:
        client = gradio_client.Client(url, verbose=False)
        with pytest.raises(gradio_client.exceptions.AppError, match="No documents are indexed yet"):
            client.predict(SEED_QUESTION, api_name="/ask")
        assert client.predict(api_name="/sources") == []
        doc = tmp_path / "lighthouse.md"
        doc.write_text(LIGHTHOUSE, encoding="utf-8")
        report = client.predict([gradio_client.handle_file(str(doc))], api_name="/upload")[0]
        assert report["stored"] == [{"name": "lighthouse.md", "stored_as": "lighthouse.md"}]
        data = client.predict(LIGHTHOUSE_QUESTION, api_name="/ask")
        assert data["answered"] is True and data["citations"][0]["source"] == "lighthouse.md"
    finally:
        app.close()


def test_login_is_required_when_configured(served: SimpleNamespace) -> None:
    from ui.app import auth_from_env, launch

    auth = auth_from_env({"RAG_UI_USER": "ann", "RAG_UI_PASSWORD": "s3cret"})
    app, url = launch(served.assistant, "127.0.0.1", free_port(), block=False, auth=auth, stream_delay=0)
    try:
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises a plain ValueError here
            gradio_client.Client(url, verbose=False)
        client = gradio_client.Client(url, auth=("ann", "s3cret"), verbose=False)
        assert client.predict(SEED_QUESTION, api_name="/ask")["answered"] is True
    finally:
        app.close()


# ---------------------------------------------------------------- plain Python parts


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("notes.md", "notes.md"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\Windows\\win.INI.TXT", "win.INI.txt"),
        (".bashrc.md", "bashrc.md"),
        ("-rf.txt", "rf.txt"),
        ("My notes (final) <b>.md", "My_notes_final_b.md"),
        ("a\x00b\u202e.txt", "ab.txt"),
        ("日本語のメモ.txt", "日本語のメモ.txt"),
        ("....", "document"),
        ("", "document"),
        ("x" * 300 + ".pdf", "x" * 100 + ".pdf"),
    ],
)
def test_safe_name(given: str, expected: str) -> None:
    from ui.library import safe_name

    assert safe_name(given) == expected


def test_library_stores_inside_its_folder_only(tmp_path: Path) -> None:
    """Hostile names end up as plain files in <index>/documents/; nothing is written anywhere else."""
    from rag import Assistant
    from ui.library import DocumentLibrary

    assistant = Assistant(index_dir=tmp_path / "index")
    library = DocumentLibrary(assistant, max_bytes=1000)
    source = tmp_path / "upload.txt"
    source.write_text("The Veldmoor bell was cast in 1622 by the founder Ilse Brand.\n", encoding="utf-8")
    big = tmp_path / "big.txt"
    big.write_text("x" * 2000, encoding="utf-8")
    dropped: list[Path] = []
    result = library.add(
        [source, source, big], names=["../../../escape.txt", "sub/escape.txt", "big.txt"], on_copied=dropped.append
    )
    assert result.stored == [("../../../escape.txt", "escape.txt")]
    assert result.unchanged == [("sub/escape.txt", "escape.txt")]
    [(name, reason)] = result.rejected
    assert name == "big.txt" and "the upload limit is 0.001 MB" in reason
    assert dropped == [source, source, big]
    assert sorted(p.name for p in library.folder.iterdir()) == ["escape.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "index", "upload.txt"]
    assert [r.source for r in library.records()] == ["escape.txt"]
    assert library.uploaded() == ["escape.txt"]
    assert assistant.ask("Who cast the Veldmoor bell?").citations[0].source == "escape.txt"
    assert library.remove("escape.txt") and library.records() == [] and not any(library.folder.iterdir())
    assert not library.remove("escape.txt")


def test_library_without_an_index_yet(tmp_path: Path) -> None:
    from rag import Assistant
    from ui.library import DocumentLibrary

    library = DocumentLibrary(Assistant(index_dir=tmp_path / "none"), max_bytes=10**6)
    assert library.records() == [] and library.stats() is None and library.uploaded() == []
    assert library.add([]).report is None


def test_render_escapes_document_text_and_names() -> None:
    from rag import Answer, Citation, Passage
    from ui import render

    payload = "<img src=x onerror=alert(1)> & <script>alert(2)</script>"
    text = f"Intro. {payload} The end."
    start = 100
    sentence = (start + 7, start + 7 + len(payload))
    citation = Citation(1, 'evil"<b>.txt', start, start + len(text), text, 0.8, "<h1>sec</h1>", (sentence,))
    answer = Answer("q", f"{payload} [1]", True, [citation], [])
    html = render.answer_html(answer) + render.sources_html(answer)
    assert "<img" not in html and "<script" not in html and "<b>" not in html and "<h1>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;script&gt;" in html
    assert '<span class="rag-cite">[1]</span>' in html
    assert f"<mark>{render.escape_html(payload)}</mark>" in html
    assert "evil&quot;&lt;b&gt;.txt" in html

    refusal = Answer("q", "The documents do not contain an answer to this question.", False, [], [])
    refusal = Answer(refusal.question, refusal.text, False, [], [Passage("<x>.md", 0, 3, "<p>", 0.1)] * 5)
    assert 'class="rag-refusal"' in render.answer_html(refusal)
    closest = render.sources_html(refusal)
    assert closest.count('class="rag-source"') == 3 and "<p>" not in closest and "&lt;x&gt;.md" in closest
    assert render.sources_title(refusal) == "Closest passages (3)"
    assert render.sources_title(answer) == "Sources (1)"
    if "note" in Answer.__dataclass_fields__:  # a note (e.g. why a generated answer fell back) is shown, escaped
        noted = render.answer_html(dataclasses.replace(answer, note="model <down>"))
        assert '<div class="rag-note">ℹ model &lt;down&gt;</div>' in noted
    assert "<script" not in render.question_html("<script>x</script>")
    assert "<b>" not in render.error_html("<b>no</b>")


def test_highlights_are_clipped_and_merged() -> None:
    from ui.render import highlighted_html

    text = "abcdefghij"  # document offsets 10..20
    assert highlighted_html(text, 10, [(12, 14), (13, 16), (5, 11), (19, 40), (30, 35)]) == (
        "<mark>a</mark>b<mark>cdef</mark>ghi<mark>j</mark>"
    )
    assert highlighted_html("<>", 0, []) == "&lt;&gt;"


def test_documents_table_and_stats_escape_names() -> None:
    from rag import DocumentRecord
    from ui import render

    record = DocumentRecord("<img src=x>.md", "/p", "/r", "d", 2048, 0, "markdown", "utf-8", 3, 1.7e9, 1.7e9)
    table = render.documents_table_html([record], uploaded=["<img src=x>.md"])
    assert "<img" not in table and "&lt;img src=x&gt;.md" in table
    assert "2.0 KB" in table and "uploaded" in table and ">3<" in table
    stats = render.stats_html({"documents": 1, "chunks": 3, "embedding_model": "<m>"}, "/idx/<x>")
    assert "<m>" not in stats and "&lt;m&gt;" in stats and "&lt;x&gt;" in stats
    assert "No index yet" in render.stats_html(None, "/idx")
    assert render.documents_table_html([]).startswith('<div class="rag-docs-empty">')


def test_examples_are_offered_for_the_seed_corpus_only(seed_assistant: Any) -> None:
    from ui.examples import examples_for

    examples = examples_for(seed_assistant.sources())
    assert SEED_QUESTION in examples
    assert examples_for([]) == []


def test_auth_from_env() -> None:
    from rag import ConfigError
    from ui.app import auth_from_env

    assert auth_from_env({}) is None
    assert auth_from_env({"RAG_UI_USER": "a", "RAG_UI_PASSWORD": "b"}) == ("a", "b")
    with pytest.raises(ConfigError, match="both"):
        auth_from_env({"RAG_UI_USER": "a"})


def test_upload_limit_setting() -> None:
    from rag import ConfigError, Settings

    assert Settings().upload_max_mb == 50.0
    assert Settings.from_env({"RAG_UPLOAD_MAX_MB": "2.5"}).upload_max_mb == 2.5
    with pytest.raises(ConfigError, match="upload_max_mb"):
        Settings(upload_max_mb=0)


def test_import_rag_does_not_load_gradio() -> None:
    code = "import sys, rag, rag.cli; rag.Assistant; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_rag_serve_rejects_a_bad_port() -> None:
    env = {**os.environ, "RAG_INDEX_DIR": "/nonexistent"}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "serve", "--port", "70000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == "rag: error: --port must be from 1 to 65535, got 70000"
    help_text = subprocess.run(
        [sys.executable, "-m", "rag.cli", "serve", "--help"], capture_output=True, text=True, timeout=120
    ).stdout
    assert "--host" in help_text and "--port" in help_text and "--index" in help_text
