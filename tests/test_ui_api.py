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
from .fake_openai import FakeOpenAI, Reply, Request
from .fake_openai import free_port as closed_port

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
INVITE = "extended an invitation"  # in the seed passage that answers SEED_QUESTION
AGENDA = "multifaceted agenda"  # in the seed passage about what a visit would include


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """One app per module over a private copy of the seed index (uploads change it)."""
    from rag import Assistant
    from ui.server import launch

    index = tmp_path_factory.mktemp("ui-api") / "index"
    shutil.copytree(seed_index, index)
    assistant = Assistant(index_dir=index)
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, stream_delay=0, upload_max_mb=1)
    client = gradio_client.Client(url, verbose=False)
    yield SimpleNamespace(app=app, url=url, assistant=assistant, client=client, index=index)
    app.close()


def upload(served: SimpleNamespace, *paths: Path) -> dict[str, Any]:
    report = served.client.predict([gradio_client.handle_file(str(p)) for p in paths], api_name="/upload")
    keys = {"stored", "replaced", "unchanged", "rejected", "duplicates", "report"}
    assert isinstance(report, dict) and set(report) == keys
    return report


def sources(served: SimpleNamespace) -> dict[str, dict[str, Any]]:
    return {row["source"]: row for row in served.client.predict(api_name="/sources")}


# ---------------------------------------------------------------- the served app


def test_named_endpoints_are_stable(served: SimpleNamespace) -> None:
    """"Use via API" shows what a program should call, each with one named JSON result, and no page event."""
    info = served.client.view_api(print_info=False, return_format="dict")
    endpoints = info["named_endpoints"]
    assert set(endpoints) == {"/ask", "/upload", "/remove", "/sources"}
    assert info["unnamed_endpoints"] == {}
    assert [p["parameter_name"] for p in endpoints["/ask"]["parameters"]] == ["question"]
    assert [p["parameter_name"] for p in endpoints["/upload"]["parameters"]] == ["files"]
    assert [p["parameter_name"] for p in endpoints["/remove"]["parameters"]] == ["source"]
    for name in ("/upload", "/remove"):
        returns = endpoints[name]["returns"]
        assert len(returns) == 1 and returns[0]["component"] == "Json", (name, returns)
        assert returns[0]["label"] in ("upload report", "remove result")


def test_remove_without_a_name_says_what_to_give(served: SimpleNamespace) -> None:
    result = served.client.predict("  ", api_name="/remove")
    assert result["removed"] is False and "/sources" in result["message"]



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
    from ui.handlers import upload_folder as _upload_folder

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
    result = served.client.predict("kiln.md", api_name="/remove")
    assert result == {"source": "kiln.md", "removed": True, "message": "removed"}
    assert "kiln.md" not in sources(served)
    assert not (served.index / "documents" / "kiln.md").exists()
    result = served.client.predict("kiln.md", api_name="/remove")
    assert result == {"source": "kiln.md", "removed": False, "message": "not in the index"}


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
    from ui.server import launch

    port = int(served.url.rstrip("/").rsplit(":", 1)[1])
    with pytest.raises(InputError, match="in use"):
        launch(served.assistant, "127.0.0.1", port, block=False)


def test_without_an_index_the_first_upload_creates_it(served: SimpleNamespace, tmp_path: Path) -> None:
    from rag import Assistant
    from ui.server import launch

    assistant = Assistant(index_dir=tmp_path / "fresh")
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, stream_delay=0)
    try:
        client = gradio_client.Client(url, verbose=False)
        with pytest.raises(gradio_client.exceptions.AppError, match="No documents are indexed yet"):
            client.predict(SEED_QUESTION, api_name="/ask")
        assert client.predict(api_name="/sources") == []
        doc = tmp_path / "lighthouse.md"
        doc.write_text(LIGHTHOUSE, encoding="utf-8")
        report = client.predict([gradio_client.handle_file(str(doc))], api_name="/upload")
        assert report["stored"] == [{"name": "lighthouse.md", "stored_as": "lighthouse.md"}]
        data = client.predict(LIGHTHOUSE_QUESTION, api_name="/ask")
        assert data["answered"] is True and data["citations"][0]["source"] == "lighthouse.md"
    finally:
        app.close()


def test_login_is_required_when_configured(served: SimpleNamespace) -> None:
    from ui.server import auth_from_env, launch

    auth = auth_from_env({"RAG_UI_USER": "ann", "RAG_UI_PASSWORD": "s3cret"})
    app, url = launch(served.assistant, "127.0.0.1", free_port(), block=False, auth=auth, stream_delay=0)
    try:
        from gradio_client.exceptions import AuthenticationError

        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            gradio_client.Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            gradio_client.Client(url, auth=("ann", "wrong"), verbose=False)
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
    # A note (e.g. why a generated answer fell back) is shown, escaped; without one there is no note block.
    noted = render.answer_html(dataclasses.replace(answer, note="model <down>"))
    assert '<div class="rag-note">ℹ model &lt;down&gt;</div>' in noted
    assert 'class="rag-note"' not in render.answer_html(answer)
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
    from ui.server import auth_from_env

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


# ---------------------------------------------------------------- generated answers (scripted server)


def invite_answer(request: Request) -> Reply:
    n = request.passage_number(INVITE)
    assert n, "the answering passage was not in the prompt"
    return Reply(f"President Donald Trump invited Prime Minister Sanae Takaichi to visit the United States [{n}].")


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(models=("m", "other")) as fake:
        yield fake


@pytest.fixture()
def fake(llm_server: FakeOpenAI) -> FakeOpenAI:
    """The module's scripted server, with no script, no responder and no recorded requests."""
    llm_server.responder, llm_server.default = None, Reply("The documents say nothing more [1].")
    llm_server.requests.clear()
    llm_server.script()  # nothing queued
    return llm_server


@pytest.fixture(scope="module")
def served_llm(seed_index: Path, llm_server: FakeOpenAI) -> Iterator[SimpleNamespace]:
    """The app over the seed index with the scripted server as its language model (questions only)."""
    from rag import Assistant
    from ui.server import launch

    assistant = Assistant(index_dir=seed_index, llm_base_url=llm_server.url, llm_model="m", llm_timeout=5.0)
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, stream_delay=0)
    client = gradio_client.Client(url, verbose=False)
    yield SimpleNamespace(app=app, url=url, assistant=assistant, client=client)
    app.close()


def test_ask_returns_a_generated_answer_with_a_checked_citation(served_llm: SimpleNamespace, fake: FakeOpenAI) -> None:
    fake.responder = invite_answer
    data = served_llm.client.predict(SEED_QUESTION, api_name="/ask")
    assert data["generator"] == "llm" and data["model"] == "m" and data["answered"] is True
    assert data["answer"] == (
        "President Donald Trump invited Prime Minister Sanae Takaichi to visit the United States [1]."
    )
    (citation,) = data["citations"]
    assert citation["n"] == 1 and citation["supported"] is True and INVITE in citation["text"]
    document = SEED_FILE.read_text(encoding="utf-8")
    assert document[citation["start"] : citation["end"]] == citation["text"]
    assert data["note"] is None and data["prompt_version"] and data["claims"][0]["supported"] is True
    [request] = fake.chat_requests()
    assert request.body["model"] == "m" and request.body["stream"] is True


@pytest.mark.parametrize(
    ("broken", "expect"),
    [
        pytest.param("http-500", ["HTTP 500", "CUDA out of memory"], id="http-500"),
        pytest.param("unreachable", ["Cannot reach", "Connection refused"], id="unreachable"),
    ],
)
def test_ask_with_a_failing_server_gives_the_extractive_answer_and_a_note(
    served_llm: SimpleNamespace, fake: FakeOpenAI, broken: str, expect: list[str]
) -> None:
    settings = served_llm.assistant.settings
    if broken == "unreachable":
        served_llm.assistant.settings = settings.replace(llm_base_url=f"http://127.0.0.1:{closed_port()}/v1")
    else:
        fake.default = Reply(status=500, error="CUDA out of memory")
    try:
        data = served_llm.client.predict(SEED_QUESTION, api_name="/ask")
    finally:
        served_llm.assistant.settings = settings
    assert data["generator"] == "extractive" and data["answered"] is True
    assert "Trump" in data["answer"] and data["citations"]
    assert data["note"] and "extractive answer" in data["note"]
    for word in expect:
        assert word in data["note"]


def test_model_picker_lists_the_servers_models_and_switches_the_generator(seed_index: Path, fake: FakeOpenAI) -> None:
    from rag import Assistant
    from ui.llm import EXTRACTIVE, FIRST_MODEL, LLMSettings

    assistant = Assistant(index_dir=seed_index)
    llm = LLMSettings(assistant, allow_url_changes=True)
    view = llm.view()
    assert view.choice == EXTRACTIVE and view.url == "" and "extractive" in view.summary
    assert assistant.generator is None

    assert llm.models(fake.url) == ["m", "other"]
    assert llm.choices(["m", "other"]) == [EXTRACTIVE, FIRST_MODEL, "m", "other"]
    assert llm.view().choices == [EXTRACTIVE, FIRST_MODEL, "m", "other"]

    assert llm.apply(fake.url, "", "other") == (
        "ok",
        f"Applied: answers are generated by the model other at {fake.url}; the next question uses it.",
    )
    assert "generated by other" in llm.summary() and fake.url in llm.summary()
    assert assistant.generator is not None and assistant.generator.model == "other"
    assert assistant.settings.llm_base_url == fake.url and assistant.settings.llm_model == "other"
    fake.responder = invite_answer
    answer = assistant.ask(SEED_QUESTION)
    assert answer.generator == "llm" and answer.model == "other"

    kind, message = llm.apply(fake.url, "", FIRST_MODEL)
    assert kind == "ok" and assistant.settings.llm_model == "" and llm.view().choice == FIRST_MODEL

    kind, message = llm.apply(fake.url, "", EXTRACTIVE)
    assert kind == "ok" and "extractive" in llm.summary() and assistant.generator is None
    view = llm.view()
    assert view.choice == EXTRACTIVE and view.url == fake.url, "the last server stays in the URL field"
    assert assistant.ask(SEED_QUESTION).generator == "extractive"

    # A model the server does not list is applied with a warning; so is a server that does not answer.
    kind, message = llm.apply(fake.url, "", "llama-9000")
    assert kind == "warning" and message.startswith(
        f"Applied the model llama-9000 at {fake.url}, but: the server does not list the model 'llama-9000'"
    )
    down = f"http://127.0.0.1:{closed_port()}/v1"
    kind, message = llm.apply(down, "", "m")
    assert kind == "warning" and "Cannot reach" in message and "extractive answer" in message
    assert assistant.settings.llm_base_url == down
    # The message names the URL that was tried and the page's field, not an environment variable.
    assert down in message and "RAG_LLM_BASE_URL" not in message and "check the Server URL" in message


def test_extractive_apply_keeps_a_typed_url_and_says_what_was_applied(seed_index: Path) -> None:
    from rag import Assistant, RagError
    from ui.llm import EXTRACTIVE, LLMSettings

    assistant = Assistant(index_dir=seed_index)
    llm = LLMSettings(assistant, allow_url_changes=True)  # the operator lets the page change servers
    typed = f"http://127.0.0.1:{closed_port()}/v1"
    kind, message = llm.apply(typed, "", EXTRACTIVE)
    assert kind == "ok" and "extractive" in message and f"The server URL {typed} is kept for later" in message
    assert assistant.settings.llm_base_url == "" and llm.view().url == typed, "the URL field keeps it"
    kind, message = llm.apply("localhost:1234", "", EXTRACTIVE)
    assert kind == "warning" and "extractive" in message and "not kept" in message
    assert llm.view().url == typed
    with pytest.raises(RagError) as caught:
        llm.models(typed)
    assert typed in str(caught.value) and "RAG_LLM_BASE_URL" not in str(caught.value)


def test_model_picker_errors_are_one_clear_line(seed_index: Path) -> None:
    from rag import Assistant, ConfigError, InputError, RagError
    from ui.llm import LLMSettings

    assistant = Assistant(index_dir=seed_index)
    llm = LLMSettings(assistant, allow_url_changes=True)
    with pytest.raises(ConfigError, match=r"must be an http\(s\) address such as http://localhost:11434/v1"):
        llm.models("localhost:11434")
    with pytest.raises(InputError, match="enter the server's URL first"):
        llm.apply("  ", "", "m")
    with pytest.raises(RagError, match="cannot reach the language model server"):
        llm.models(f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(ConfigError):
        llm.apply("ftp://example.invalid/v1", "", "m")
    assert assistant.settings.llm_base_url == "", "nothing was applied"


def test_api_key_is_kept_for_its_own_server_only(seed_index: Path, fake: FakeOpenAI) -> None:
    from rag import Assistant
    from ui.llm import LLMSettings

    assistant = Assistant(index_dir=seed_index, llm_base_url=fake.url, llm_model="m", llm_api_key="s3cret")
    llm = LLMSettings(assistant, allow_url_changes=True)
    assert llm.view().key_saved is True
    llm.models(fake.url)  # empty key field: the saved key of this URL
    assert fake.requests[-1].headers.get("authorization") == "Bearer s3cret"
    llm.models(fake.url, "typed-key")
    assert fake.requests[-1].headers.get("authorization") == "Bearer typed-key"
    other = fake.url.replace("127.0.0.1", "localhost")
    llm.models(other)  # another URL never gets the saved key
    assert fake.requests[-1].headers.get("authorization") == "Bearer not-needed"
    llm.apply(other, "", "m")
    assert assistant.settings.llm_api_key == "" and llm.view().key_saved is False
    llm.apply(fake.url, "", "m")
    assert assistant.settings.llm_api_key == "s3cret"


def test_render_shows_generator_rewritten_question_and_unsupported_citations() -> None:
    from rag import Answer, Citation, Claim
    from ui import render

    evil = "<img src=x onerror=alert(1)>"
    text = f"Takaichi was invited [1]. She arrives {evil} by sea [2]."
    second = text.index("She")
    claims = [
        Claim(0, second - 1, "Takaichi was invited.", (1,), True, 1.0),
        Claim(second, len(text), "She arrives by sea.", (2,), False, 0.3, ("sea",)),
    ]
    citations = [
        Citation(1, "a.txt", 0, 10, "Takaichi was invited.", 0.9),
        Citation(2, "b.txt", 0, 10, "A <b>visit</b> is planned.", 0.5, supported=False),
    ]
    answer = Answer(
        "When will she visit?",
        text,
        True,
        citations,
        [],
        generator="llm",
        rewritten_question=f"When will Takaichi visit {evil}?",
        note=f"1 of 2 sentence(s) are not backed <script>{evil}</script>",
        model=f"m{evil}",
        prompt_version="grounded-v1",
        claims=claims,
    )
    html = render.answer_html(answer) + render.sources_html(answer)
    assert "<img" not in html and "<script" not in html and "<b>visit" not in html
    assert '<span class="rag-searched-q">When will Takaichi visit &lt;img src=x onerror=alert(1)&gt;?</span>' in html
    assert html.index("rag-searched") < html.index('class="rag-answer"'), "the searched question comes first"
    assert 'rag-generator-llm">Generated by <b>m&lt;img src=x onerror=alert(1)&gt;</b>' in html
    assert "&lt;script&gt;" in html
    # The unsupported sentence is marked in the text, its citation gets a badge, the title counts it.
    shown = render.answer_html(answer)
    assert shown.count('<span class="rag-unsupported-claim"') == 1
    before, after = shown.split('<span class="rag-unsupported-claim"')
    assert "Takaichi was invited" in before and after.split(">", 1)[1].startswith("She arrives")
    assert html.count('class="rag-badge rag-unsupported"') == 1
    head = html.split('data-n="2"', 1)[1].split("</div>", 1)[0]
    assert head.count(">unsupported</span>") == 1
    assert 'class="rag-source rag-source-unsupported" data-n="2"' in html
    assert render.sources_title(answer) == "Sources (2) · 1 unsupported"

    extractive = Answer("q", "Quoted [1].", True, citations[:1], [], model="m", note="server down")
    assert "not generated by m" in render.generator_html(extractive)
    assert "rag-generator-extractive" in render.generator_html(dataclasses.replace(extractive, model=None))
    assert render.generator_html(Answer("q", "Not found.", False)) == ""
    assert "rag-searched" not in render.answer_html(extractive)
    streaming = render.streaming_html("Partial <i>[1", "standalone <q>")
    assert "<i>" not in streaming and "standalone &lt;q&gt;" in streaming
    assert "<b>" not in render.settings_status_html("error", "<b>x</b>")
    assert "<b>x" not in render.llm_current_html("<b>x</b>")


# ---------------------------------------------------------------- past chats, formats, duplicates, scores


def test_conversation_store_round_trip_and_damaged_values() -> None:
    from ui import conversations as c

    store = c.empty()
    shown = [
        {"role": "user", "content": [{"type": "text", "text": '<div class="rag-question">Who &lt;b&gt;?</div>'}]},
        {"role": "assistant", "content": "<div>answer</div>", "metadata": {"title": "Sources (1)", "x": None}},
    ]
    turns = [{"question": "Who <b>?", "standalone": "Who <b>?", "answer": "A [1]", "answered": True}]
    store = c.save(store, "a1", c.first_question(c.plain_messages(shown)), shown, turns, now=100.0)
    store = c.save(store, "b2", "Second question", [{"role": "user", "content": "Second question"}], [], now=200.0)
    assert [label.split(" · ")[0] for label, _ in c.choices(store)] == ["Second question", "Who <b>?"]
    chat = c.find(store, "a1")
    assert chat is not None and chat["messages"][0]["content"] == '<div class="rag-question">Who &lt;b&gt;?</div>'
    assert chat["messages"][1]["metadata"] == {"title": "Sources (1)"} and chat["turns"] == turns
    assert c.latest(store)["id"] == "b2"
    assert [x["id"] for x in c.remove(store, "b2")["chats"]] == ["a1"]
    # Damaged, foreign or hostile values read back as an empty store or lose only the bad chats.
    for bad in (None, "x", [], {"version": 99, "chats": []}, {"version": 1, "chats": "no"}):
        assert c.clean(bad) == c.empty()
    mixed = {"version": 1, "chats": [{"id": "ok", "title": "t", "messages": []}, {"id": 5}, "junk"]}
    assert [x["id"] for x in c.clean(mixed)["chats"]] == ["ok"]
    many = c.empty()
    for i in range(c.MAX_CHATS + 5):
        many = c.save(many, f"id{i}", f"q{i}", [{"role": "user", "content": f"q{i}"}], [], now=float(i))
    assert len(many["chats"]) == c.MAX_CHATS and c.find(many, "id0") is None


def test_a_restored_chat_session_rewrites_follow_ups_like_the_original(seed_assistant: Any) -> None:
    first = seed_assistant.chat()
    first.ask(SEED_QUESTION)
    again = seed_assistant.chat()
    again.restore(first.history())
    assert again.standalone("When will she visit?") == first.standalone("When will she visit?")
    assert "Takaichi" in again.standalone("When will she visit?")[0]
    again.restore([{"question": 1}, "junk", {"question": "q", "standalone": "", "answer": "a"}])
    assert again.turns == []


def test_upload_accepts_every_format_rag_index_reads(served: SimpleNamespace, tmp_path: Path) -> None:
    from rag import SUPPORTED_SUFFIXES
    from ui.library import UPLOAD_SUFFIXES

    assert set(UPLOAD_SUFFIXES) == set(SUPPORTED_SUFFIXES) and {".rst", ".text", ".xhtml"} <= set(UPLOAD_SUFFIXES)
    rst = tmp_path / "tides.rst"
    rst.write_text("Tides\n=====\n\nThe Quorvel estuary floods twice a day at spring tide.\n", encoding="utf-8")
    text = tmp_path / "notes.text"
    text.write_text("The Brannock mill ground barley for the whole valley until 1902.\n", encoding="utf-8")
    xhtml = tmp_path / "page.xhtml"
    xhtml.write_text(
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>The Sellwyn bell was cast in 1788.</p></body></html>',
        encoding="utf-8",
    )
    report = upload(served, rst, text, xhtml)
    assert report["rejected"] == [] and sorted(s["stored_as"] for s in report["stored"]) == sorted(
        ["tides.rst", "notes.text", "page.xhtml"]
    )
    answer = served.client.predict("When was the Sellwyn bell cast?", api_name="/ask")
    assert answer["answered"] and answer["citations"][0]["source"] == "page.xhtml"


def test_an_identical_file_under_another_name_is_not_indexed_twice(served: SimpleNamespace, tmp_path: Path) -> None:
    guide = tmp_path / "varnholm-guide.md"
    guide.write_text("# Varnholm\n\nThe Varnholm ferry leaves the harbour at seven every morning.\n", encoding="utf-8")
    upload(served, guide)
    before = sources(served)
    copy = tmp_path / "copy of guide.md"
    copy.write_bytes(guide.read_bytes())
    report = upload(served, copy)
    assert report["duplicates"] == [{"name": "copy of guide.md", "same_as": "varnholm-guide.md"}]
    assert report["stored"] == [] and report["report"]["duplicates"][0]["same_as"] == "varnholm-guide.md"
    assert sources(served) == before
    assert not (served.index / "documents" / "copy_of_guide.md").exists(), "no second copy is kept"
    answer = served.client.predict("When does the Varnholm ferry leave the harbour?", api_name="/ask")
    assert [p["source"] for p in answer["passages"]].count("varnholm-guide.md") == 1


def test_sources_show_one_score_from_0_to_1_explained() -> None:
    from rag import Answer, Passage
    from ui import render

    passages = [Passage("a.txt", 0, 5, "alpha", 0.91), Passage("b.txt", 0, 4, "beta", 0.4)]
    refusal = Answer("q?", "The documents do not contain an answer to this question.", False, [], passages)
    html = render.sources_html(refusal)
    assert html.index("score 0.91") < html.index("score 0.40")
    assert "from 0 to 1" in html and "0.35 or more" in html
    assert "0.60 or more" in render.sources_html(refusal, 0.6)
