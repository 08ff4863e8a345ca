"""The web server under abuse (issue 18, findings 7, 8, 10 and 11): no server-side requests to URLs
typed on the page unless the operator allows them, no server text echoed with keys in it, a login
that cannot be guessed at speed, no orphans from killed uploads, no tracebacks for refused questions.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SEED_QUESTION, write
from .fake_openai import FakeOpenAI, Reply, Request

pytest.importorskip("gradio")
httpx = pytest.importorskip("httpx")
gradio_client = pytest.importorskip("gradio_client")

KEY = "sk-test-supersecret-4242"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_settings_tab_cannot_send_the_server_to_another_url_by_default(seed_index: Path) -> None:
    from rag import Assistant, InputError
    from ui.llm import EXTRACTIVE, LLMSettings

    with FakeOpenAI(models=("m",)) as elsewhere:
        assistant = Assistant(index_dir=seed_index)
        llm = LLMSettings(assistant)  # RAG_UI_ALLOW_LLM_SETTINGS is not set
        with pytest.raises(InputError, match="RAG_UI_ALLOW_LLM_SETTINGS=1"):
            llm.models(elsewhere.url)
        with pytest.raises(InputError, match="RAG_UI_ALLOW_LLM_SETTINGS=1"):
            llm.apply(elsewhere.url, "", "m")
        assert elsewhere.requests == [], "the server never fetched the typed URL"
        assert assistant.settings.llm_base_url == ""
        assert llm.apply("", "", EXTRACTIVE)[0] == "ok"  # turning the model off stays possible

        # The operator's own server (set at start-up) can still be listed and its model picked.
        configured = Assistant(index_dir=seed_index, llm_base_url=elsewhere.url)
        operator = LLMSettings(configured)
        assert operator.models(elsewhere.url) == ["m"]
        with pytest.raises(InputError):
            operator.models(elsewhere.url.replace("127.0.0.1", "localhost"))
        assert LLMSettings(assistant, allow_url_changes=True).models(elsewhere.url) == ["m"]


def echo_headers(request: Request) -> Reply:
    return Reply(status=401, error=f"invalid key; your request had Authorization: {request.headers['authorization']}")


#: Server error texts with a secret in them (each secret contains "hunter2"); the words around it survive.
SECRETS = {
    "echo": "",  # the server echoes the request's own Authorization header (the configured key)
    "trace": "Internal error: db password=hunter2 at line 3\nTraceback (most recent call last):\n  File x",
    "bearer": "rejected Authorization: Bearer hunter2.eyJhbGciOi-xyz for this model",
    "bare bearer": "upstream said Bearer hunter2-abc is expired",
    "token=": "invalid token=hunter2abc supplied",
    "access_token=": "upstream refused access_token=hunter2abc today",
    "sk-": "unknown key sk-hunter2-ABCDEF123456 for project",
    "url query": "GET https://api.example/v1/chat?api_key=hunter2xyz&model=m failed",
    "url key": "GET https://api.example/v1/chat?key=hunter2xyz failed",
    "url user": "proxy https://bob:hunter2@proxy.example:8080 refused the connection",
    "long": "x" * 5000,
}
#: Where the note quotes the server's own text (the rest is ours: the server's URL, what to do).
SAID = re.compile(r"HTTP \d{3}: (.*?)(?:\): set RAG_LLM_API_KEY)?\. Showing the extractive answer instead\.$")


@pytest.mark.parametrize("case", list(SECRETS))
def test_language_model_errors_are_one_short_line_without_secrets(seed_index: Path, case: str) -> None:
    """The README: the server's text is one line of at most 120 characters, with keys, tokens, passwords,
    ``Bearer ...``, ``sk-...`` and keys in URLs replaced by [redacted]."""
    from rag import Assistant
    from rag.generation.client import SUMMARY_CHARS

    error = SECRETS[case]
    with FakeOpenAI(models=("m",)) as server:
        server.responder = echo_headers if case == "echo" else (lambda request: Reply(status=500, error=error))
        assistant = Assistant(index_dir=seed_index, llm_base_url=server.url, llm_model="m", llm_api_key=KEY)
        answer = assistant.ask(SEED_QUESTION)
    note = answer.note or ""
    assert note, "the failure is explained"
    assert KEY not in note and "supersecret" not in note and "hunter2" not in note, note
    assert "\n" not in note and "Traceback" not in note
    quoted = SAID.search(note)
    assert quoted, note
    theirs = quoted.group(1)
    assert len(theirs) <= SUMMARY_CHARS == 120, (len(theirs), theirs)
    assert len(note) - len(theirs) - len(server.url) <= 130, note  # the rest is a short frame of our own
    if case not in ("echo", "long"):
        assert "[redacted]" in theirs, theirs
        first, last = error.split()[0], error.splitlines()[0].split()[-1]
        assert first in theirs and (last in theirs or case == "trace"), theirs  # only the secret goes


def test_login_has_a_rate_limit() -> None:
    from ui.guard import LoginLimiter

    now = [0.0]
    login = LoginLimiter("ann", "s3cret", failures=10, window=60, clock=lambda: now[0])
    assert login("ann", "s3cret")
    for i in range(300):
        assert not login("ann", f"guess-{i}")
    assert not login("ann", "s3cret"), "right after a burst of wrong passwords, the right one is refused too"
    now[0] += 61
    assert login("ann", "s3cret")
    assert not login("bob", "s3cret") and not login("ann", "S3cret")


def test_login_protects_the_server(seed_index: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from rag import Assistant
    from ui.server import launch

    ample = (6000.0, 1000.0)  # the request limit is tested on its own below; this is about the login's
    app, url = launch(
        Assistant(index_dir=seed_index), "127.0.0.1", free_port(), block=False, auth=("ann", "s3cret"), requests=ample
    )
    try:
        base = url.rstrip("/")
        assert httpx.get(f"{base}/openapi.json").status_code in (401, 404)
        assert httpx.get(f"{base}/docs").status_code in (401, 404)
        wrong = [
            httpx.post(f"{base}/login", data={"username": "ann", "password": f"x{i}"}).status_code for i in range(30)
        ]
        assert set(wrong) == {400}
        right = httpx.post(f"{base}/login", data={"username": "ann", "password": "s3cret"})
        assert right.status_code == 400, "locked for a while after 30 wrong passwords"
    finally:
        app.close()

    app, url = launch(Assistant(index_dir=seed_index), "127.0.0.1", free_port(), block=False, auth=("ann", "s3cret"))
    try:
        base = url.rstrip("/")
        assert httpx.get(f"{base}/").status_code == 200, "the login page itself is open"
        closed = [
            httpx.get(f"{base}/gradio_api/heartbeat/abc", timeout=5),
            httpx.post(f"{base}/gradio_api/reset", json={"event_id": "x"}),
            httpx.post(f"{base}/gradio_api/cancel", json={"session_hash": "x", "fn_index": 0, "event_id": "x"}),
            httpx.get(f"{base}/gradio_api/info"),
            httpx.post(f"{base}/gradio_api/queue/join", json={}),
            httpx.post(f"{base}/gradio_api/upload"),
        ]
        assert [r.status_code for r in closed] == [401] * len(closed)
        with httpx.Client() as browser:
            assert browser.post(f"{base}/login", data={"username": "ann", "password": "s3cret"}).status_code == 200
            assert browser.get(f"{base}/gradio_api/info").status_code == 200
        client = gradio_client.Client(url, auth=("ann", "s3cret"), verbose=False)
        assert client.predict(SEED_QUESTION, api_name="/ask")["answered"] is True
    finally:
        app.close()

    app, url = launch(Assistant(index_dir=seed_index), "127.0.0.1", free_port(), block=False, stream_delay=0)
    try:
        client = gradio_client.Client(url, verbose=False)
        capfd.readouterr()
        for question in ("", "x" * 5000):
            with pytest.raises(gradio_client.exceptions.AppError):
                client.predict(question, api_name="/ask")
        _, err = capfd.readouterr()
        assert "Traceback" not in err, err
    finally:
        app.close()


#: Upload one file through DocumentLibrary in a child that dies inside the indexing (after the copy).
KILLED_UPLOAD = r"""
import os, signal, sys
from pathlib import Path
from rag import Assistant
from ui.library import DocumentLibrary

assistant = Assistant(index_dir=sys.argv[1])
library = DocumentLibrary(assistant, max_bytes=10**7)
assistant.index = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
library.add([Path(sys.argv[2])])
"""


def test_killed_upload_leaves_no_orphan(tmp_path: Path) -> None:
    from rag import Assistant
    from ui.guard import ORPHANS
    from ui.library import DocumentLibrary

    index = tmp_path / "index"
    first = write(tmp_path / "up" / "otters.txt", "Sea otters use rocks as tools to crack open shellfish.")
    library = DocumentLibrary(Assistant(index_dir=index), max_bytes=10**7)
    assert library.add([first]).stored == [("otters.txt", "otters.txt")]
    library.assistant.store.close()

    killed = write(tmp_path / "up" / "secret plans.txt", "The vault under Harlow Bridge opens with the code 7741.")
    died = subprocess.run(
        [sys.executable, "-c", KILLED_UPLOAD, str(index), str(killed)], capture_output=True, text=True
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert (index / "documents" / "secret_plans.txt").is_file(), "the scenario: a copy that was never indexed"

    # The next start sets it aside; the next upload does not index it.
    restarted = DocumentLibrary(Assistant(index_dir=index), max_bytes=10**7)
    on_disk = sorted(p.name for p in (index / "documents").iterdir() if not p.name.startswith("."))
    assert on_disk == sorted(restarted.uploaded()) == ["otters.txt"]
    assert (index / "documents" / ORPHANS / "secret_plans.txt").is_file()
    other = write(tmp_path / "up" / "volcano.md", "# Pelmora\n\nMount Pelmora last erupted in 1873.")
    result = restarted.add([other])
    assert result.report is not None and result.report.added == ["volcano.md"]
    assert sorted(restarted.uploaded()) == ["otters.txt", "volcano.md"]
    assert os.listdir(index / "documents" / ORPHANS) == ["secret_plans.txt"]


def test_requests_per_client_have_a_rate_limit() -> None:
    from ui.guard import RateLimit

    now = [0.0]
    limit = RateLimit(None, per_minute=60, burst=3, clock=lambda: now[0])
    assert [limit._wait("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit._wait("10.0.0.1") == pytest.approx(1.0), "the 4th request of a burst waits for a token"
    assert limit._wait("10.0.0.2") == 0.0, "another address has its own bucket"
    now[0] += 1.0
    assert limit._wait("10.0.0.1") == 0.0 and limit._wait("10.0.0.1") > 0


@pytest.mark.parametrize(("name", "value"), [("RAG_UI_REQUESTS_PER_MINUTE", "0"), ("RAG_UI_REQUEST_BURST", "lots")])
def test_request_limits_are_checked_settings(name: str, value: str) -> None:
    from rag import ConfigError
    from ui.guard import request_limits

    assert request_limits({}) == (120.0, 40.0)
    with pytest.raises(ConfigError, match=name):
        request_limits({name: value})


def test_a_client_over_the_request_limit_gets_429_with_retry_after(seed_index: Path) -> None:
    from rag import Assistant
    from ui.openai_api import ApiSettings, OpenAIApi
    from ui.server import launch

    assistant = Assistant(index_dir=seed_index)
    api = OpenAIApi(assistant, ApiSettings.from_env(host="127.0.0.1"))
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, api=api, requests=(30, 4))
    try:
        base = url.rstrip("/")
        first = [httpx.post(f"{base}/gradio_api/queue/join", json={}).status_code for _ in range(4)]
        assert 429 not in first
        over = httpx.post(f"{base}/v1/chat/completions", json={"model": "rag", "messages": []})
        assert over.status_code == 429
        assert int(over.headers["retry-after"]) >= 1 and "Too many requests" in over.json()["detail"]
        assert httpx.post(f"{base}/gradio_api/queue/join", json={}).status_code == 429
        assert httpx.get(f"{base}/").status_code == 200, "reading the page is not limited"
    finally:
        app.close()
        api.close()
