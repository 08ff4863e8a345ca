"""Attacked from outside (issue 28): hostile files, requests and timing against the web chat, its viewer
and the API, each from loopback as someone who can reach the port and upload would.

Every test here failed before its fix: the figure it failed with is in its docstring.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import random
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from rag import Assistant

from .conftest import write


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tall_pdf(path: Path, width: float, height: float = 14_400) -> Path:
    """A one-page PDF ``width`` x ``height`` points with a sentence at its top (reportlab)."""
    from reportlab.pdfgen import canvas

    path.parent.mkdir(parents=True, exist_ok=True)
    pdf = canvas.Canvas(str(path), pagesize=(width, height))
    pdf.setFont("Helvetica", 6)
    for i, words in enumerate(("The Quarnby ribbon", "is very tall", "and very narrow.")):
        pdf.drawString(4, height - 12 - 8 * i, words)
    pdf.showPage()
    pdf.save()
    return path


class RssPeak:
    """Samples this process's resident memory in a thread; :attr:`growth` is the peak over the start, in bytes."""

    def __init__(self) -> None:
        self.start = self._rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


@pytest.fixture(scope="module")
def attack_index(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed index plus a page 300 x 14,400 points (a ribbon) and a plain text file."""
    root = tmp_path_factory.mktemp("attack")
    index = root / "index"
    shutil.copytree(seed_index, index)
    docs = root / "docs"
    tall_pdf(docs / "ribbon.pdf", 300)
    write(docs / "notes.txt", "The Brennick ferry leaves the harbour at seven every morning. " * 40)
    report = Assistant(index_dir=index).index([docs])
    assert not report.failed, report.failed
    return index


@pytest.fixture(scope="module")
def served(attack_index: Path) -> Iterator[tuple[str, Assistant]]:
    from ui.server import launch

    assistant = Assistant(index_dir=attack_index)
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, requests=(6000, 6000))
    try:
        yield url.rstrip("/"), assistant
    finally:
        app.close()


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _record_event_loop(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[bool]:
    """Wrap ``module.name`` (still called) to record, per call, whether it ran on an event loop's thread."""
    threads: list[bool] = []
    real = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(_on_event_loop())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return threads


# ---------------------------------------------------------------- 1. a page far taller than wide


def test_a_tall_narrow_page_renders_within_the_pixel_budget_off_the_event_loop(
    served: tuple[str, Assistant], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a 300 x 14,400 pt page rendered 1,200 x 57,600 px (69 million pixels), in the event loop's
    thread (the issue's 40 pt-wide page: 518 million pixels, the server past 6 GB)."""
    from PIL import Image

    import rag.originals as originals
    from ui.viewer import doc_id

    base, _ = served
    threads = _record_event_loop(monkeypatch, originals, "_render")
    with RssPeak() as memory:
        reply = httpx.get(f"{base}/rag/page/{doc_id('ribbon.pdf')}/1.png", timeout=120)
    assert reply.status_code == 200, reply.text
    with Image.open(io.BytesIO(reply.content)) as image:
        width, height = image.size
    assert threads == [False], "the page is rendered in a worker thread, not on the event loop"
    assert width * height <= originals.MAX_PAGE_PIXELS, (width, height)
    assert abs(height / width - 14_400 / 300) < 1, "the page keeps its shape, only narrower"
    assert memory.growth < 600e6, f"the render grew the server by {memory.growth / 1e6:.0f} MB"


def test_a_huge_image_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    """The same class for images: a 9,000 x 9,000 PNG (81 million pixels) was decoded whole (243 MB)
    and only then measured."""
    from PIL import Image

    import rag.originals as originals

    path = tmp_path / "huge.png"
    Image.new("L", (9_000, 9_000), 255).save(path)
    with open(path, "rb") as handle, RssPeak() as memory, pytest.raises(Exception, match="over the limit"):
        originals._render(handle, path, 1, 1200)
    assert memory.growth < 100e6


# ---------------------------------------------------------------- 2. one limit for every credential


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_wrong_passwords_through_v1_count_with_the_login_form(seed_index: Path) -> None:
    """Before: 2,001 Basic guesses at /v1/models in 1.7 s, then the right password worked there, while the
    login form refused it after 11 wrong ones."""
    from ui.openai_api import ApiSettings, OpenAIApi
    from ui.server import launch

    assistant = Assistant(index_dir=seed_index)
    api = OpenAIApi(assistant, ApiSettings(login=("ann", "s3cret")))
    app, url = launch(
        assistant, "127.0.0.1", free_port(), block=False, api=api, auth=("ann", "s3cret"), requests=(6000, 6000)
    )
    try:
        base = url.rstrip("/")
        assert httpx.get(f"{base}/v1/models", headers=_basic("ann", "s3cret")).status_code == 200
        with httpx.Client() as client:
            answers = [
                client.get(f"{base}/v1/models", headers=_basic("ann", f"guess-{i}")).status_code for i in range(30)
            ]
            answers += [
                client.get(f"{base}/v1/models", headers={"Authorization": f"Bearer ann:guess-{i}"}).status_code
                for i in range(10)
            ]
        assert set(answers) <= {401, 429} and answers.count(429) >= 25, answers
        refused = httpx.get(f"{base}/v1/models", headers=_basic("ann", "s3cret"))
        assert refused.status_code == 429 and "too many wrong" in refused.json()["error"]["message"]
        with httpx.Client() as client:
            login = client.post(f"{base}/login", data={"username": "ann", "password": "s3cret"})
            assert login.status_code != 200, "the login form counts the API's wrong guesses too"
    finally:
        app.close()
        api.close()


def test_wrong_api_keys_are_limited_and_models_gets_are_rate_limited(seed_index: Path) -> None:
    """Before: RAG_API_KEY could be guessed without limit, and GET /v1/models was never rate-limited."""
    from ui.openai_api import ApiSettings, OpenAIApi
    from ui.server import launch

    assistant = Assistant(index_dir=seed_index)
    api = OpenAIApi(assistant, ApiSettings(api_key="k3y-right"))
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, api=api, requests=(6000, 6000))
    try:
        base = url.rstrip("/")
        for i in range(12):
            httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer k3y-{i}"})
        assert httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer k3y-right"}).status_code == 429
    finally:
        app.close()
        api.close()
    api = OpenAIApi(assistant, ApiSettings())
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, api=api, requests=(30, 4))
    try:
        statuses = [httpx.get(f"{url.rstrip('/')}/v1/models").status_code for _ in range(10)]
        assert statuses[:4] == [200] * 4 and statuses.count(429) >= 5, statuses
    finally:
        app.close()
        api.close()


def test_the_login_check_takes_the_same_time_whatever_the_guess() -> None:
    """Secrets are compared as digests: no early exit on a wrong first character or a wrong length."""
    from ui.guard import same_secret

    assert same_secret("s3cret", "s3cret") and not same_secret("s3cre", "s3cret") and not same_secret("", "s3cret")
    assert not same_secret("s3cret\u00e9", "s3cret")


# ---------------------------------------------------------------- 7. the download is the file that was checked


def test_a_download_swapped_for_a_symlink_never_serves_the_link_target(tmp_path: Path, seed_index: Path) -> None:
    """Before: the hash was checked, then the path reopened: 98 of 600 downloads served the file outside."""
    from ui.server import launch
    from ui.viewer import doc_id

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    docs = tmp_path / "docs"
    original = write(docs / "ledger.txt", "The Osterby ledger lists every cargo of the spring fleet. " * 50)
    body = original.read_bytes()
    secret = write(tmp_path / "outside" / "secret.txt", "TOP-SECRET outside the documents folder\n")
    assistant = Assistant(index_dir=index)
    assert not assistant.index([docs]).failed
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, requests=(60000, 60000))
    stop = threading.Event()

    def swap() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            link = docs / f".link-{n}"
            os.symlink(secret, link)
            os.replace(link, original)
            time.sleep(0.0005)
            copy = docs / f".copy-{n}"
            copy.write_bytes(body)
            os.replace(copy, original)
            time.sleep(0.0005)

    swapper = threading.Thread(target=swap, daemon=True)
    leaked, served_ok = 0, 0
    try:
        swapper.start()
        with httpx.Client() as client:
            for _ in range(400):
                status, data = _download(client, f"{url.rstrip('/')}/rag/file/{doc_id('ledger.txt')}")
                leaked += b"TOP-SECRET" in data
                served_ok += status == 200 and data == body
    finally:
        stop.set()
        swapper.join()
        app.close()
    assert leaked == 0, f"{leaked} of 400 downloads served the file outside the folder"
    assert served_ok > 0


def _download(client: httpx.Client, url: str) -> tuple[int, bytes]:
    """Status and bytes of a download; status 0 with the bytes received when it broke off."""
    data = b""
    try:
        with client.stream("GET", url) as reply:
            for part in reply.iter_raw():
                data += part
            return reply.status_code, data
    except httpx.HTTPError:
        return 0, data


# ---------------------------------------------------------------- 8. the language-model client


class _Redirect(BaseHTTPRequestHandler):
    target = ""

    def _send(self) -> None:
        self.send_response(307)
        self.send_header("Location", self.target + self.path.removeprefix("/v1"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _send

    def log_message(self, *args: Any) -> None:
        pass


def test_the_language_model_client_follows_no_redirect() -> None:
    """Before: a 307 from the configured server sent the whole prompt to the address it named."""
    from rag import GenerationError, LLMClient

    from .fake_openai import FakeOpenAI

    with FakeOpenAI(models=("m",)) as elsewhere:
        handler = type("Handler", (_Redirect,), {"target": elsewhere.url})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            client = LLMClient(f"http://127.0.0.1:{server.server_address[1]}/v1", model="m", timeout=10)
            with pytest.raises(GenerationError, match="redirects"):
                client.complete([{"role": "user", "content": "passage: the secret plans"}])
            with pytest.raises(GenerationError, match="redirects"):
                client.list_models()
        finally:
            server.shutdown()
            server.server_close()
        assert elsewhere.requests == [], "nothing reached the address of the redirect"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1:11434/v1",
        "http://[fd00::1]:8000/v1",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://[::ffff:169.254.169.254]/v1",
        "http://0.0.0.0:8000/v1",
    ],
)
def test_the_settings_page_refuses_private_and_metadata_addresses(
    seed_index: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: with RAG_UI_ALLOW_LLM_SETTINGS=1 the page could point the server at any of these."""
    from rag import InputError
    from ui.llm import LLMSettings

    monkeypatch.delenv("RAG_UI_LLM_HOSTS", raising=False)
    settings = LLMSettings(Assistant(index_dir=seed_index), allow_url_changes=True)
    with pytest.raises(InputError, match="RAG_UI_LLM_HOSTS"):
        settings._check_url(url)
    assert settings._check_url("http://127.0.0.1:11434/v1"), "a model server on this machine is the usual case"
    monkeypatch.setenv("RAG_UI_LLM_HOSTS", f"{urlsplit(url).hostname}, example.invalid")  # the operator lists it
    assert LLMSettings(Assistant(index_dir=seed_index), allow_url_changes=True)._check_url(url) == url


# ---------------------------------------------------------------- 9. X-Forwarded-For


def test_forwarded_for_from_an_untrusted_client_does_not_defeat_the_rate_limit(
    seed_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: 200 of 200 POSTs with random X-Forwarded-For values got through a limit of 4 in a burst."""
    from ui.server import launch

    def flood(url: str) -> list[int]:
        with httpx.Client() as client:
            return [
                client.post(
                    f"{url.rstrip('/')}/gradio_api/queue/join",
                    json={},
                    headers={"X-Forwarded-For": f"10.{random.randrange(256)}.{random.randrange(256)}.{i % 250 + 1}"},
                ).status_code
                for i in range(20)
            ]

    monkeypatch.delenv("RAG_UI_TRUSTED_PROXIES", raising=False)
    app, url = launch(Assistant(index_dir=seed_index), "127.0.0.1", free_port(), block=False, requests=(30, 4))
    try:
        statuses = flood(url)
    finally:
        app.close()
    assert statuses.count(429) >= 15, statuses
    monkeypatch.setenv("RAG_UI_TRUSTED_PROXIES", "127.0.0.1")  # behind a proxy the operator names
    app, url = launch(Assistant(index_dir=seed_index), "127.0.0.1", free_port(), block=False, requests=(30, 4))
    try:
        statuses = flood(url)
    finally:
        app.close()
    assert 429 not in statuses, statuses


def test_trusted_proxies_are_a_checked_setting() -> None:
    from rag import ConfigError
    from ui.guard import trusted_proxies

    assert (
        trusted_proxies({}) == ""
        and trusted_proxies({"RAG_UI_TRUSTED_PROXIES": " 10.0.0.0/8, ::1"}) == "10.0.0.0/8,::1"
    )
    with pytest.raises(ConfigError, match=r"RAG_UI_TRUSTED_PROXIES.*'nginx'"):
        trusted_proxies({"RAG_UI_TRUSTED_PROXIES": "nginx"})


# ---------------------------------------------------------------- 10. nesting


def test_deeply_nested_json_is_400_invalid_json(seed_index: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Before: 400,000 nested brackets gave a 500 and a RecursionError traceback in the log."""
    from ui.openai_api import ApiSettings, OpenAIApi
    from ui.server import launch

    assistant = Assistant(index_dir=seed_index)
    api = OpenAIApi(assistant, ApiSettings())
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, api=api, requests=(6000, 6000))
    try:
        for body in (b"[" * 400_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
            reply = httpx.post(f"{url.rstrip('/')}/v1/chat/completions", content=body, timeout=60)
            assert reply.status_code == 400, reply.text[:200]
            assert reply.json()["error"]["code"] == "invalid_json"
        brackets_in_text = {"model": "rag", "messages": [{"role": "user", "content": "[" * 3000 + "otters?"}]}
        assert (
            httpx.post(f"{url.rstrip('/')}/v1/chat/completions", json=brackets_in_text, timeout=60).status_code == 200
        )
    finally:
        app.close()
        api.close()
    assert "RecursionError" not in caplog.text


# ---------------------------------------------------------------- 5. the viewer's highlights; the CSP


def test_a_long_highlight_list_is_bounded_and_built_off_the_event_loop(
    served: tuple[str, Assistant], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a 61 KB hl parameter (6,000 spans) made a quadratic loop on the event loop (5.9 s, every
    request blocked); every span was marked."""
    import re

    import ui.viewer as viewer

    base, _ = served
    threads = _record_event_loop(monkeypatch, viewer, "text_html")
    spans = ",".join(f"{i}-{i + 1}" for i in range(0, 10_000, 2))
    assert len(spans) > 45_000
    reply = httpx.get(f"{base}/rag/view/{viewer.doc_id('notes.txt')}", params={"start": 0, "end": 40, "hl": spans})
    assert reply.status_code == 200
    assert threads == [False], "the page is built in a worker thread, not on the event loop"
    assert 0 < reply.text.count('<mark class="quote">') <= viewer.MAX_HIGHLIGHTS
    # the same marks as the straightforward way, on a case small enough for it
    text = "abcdefghij" * 10
    page = viewer.text_html("t.txt", text, 10, 60, [(0, 5), (3, 12), (50, 70), (90, 200)])
    quoted = "".join(re.findall(r'<mark class="quote">(.*?)</mark>', page))
    expected = "".join(ch for i, ch in enumerate(text) if 0 <= i < 12 or 50 <= i < 70 or i >= 90)
    assert quoted == expected


def test_the_viewer_sends_its_policy_as_a_header_and_runs_no_inline_script(served: tuple[str, Assistant]) -> None:
    """Before: the policy was a <meta> tag allowing 'unsafe-inline' scripts."""
    import re

    from ui.viewer import doc_id

    base, _ = served
    for ident in (doc_id("notes.txt"), doc_id("ribbon.pdf")):
        reply = httpx.get(f"{base}/rag/view/{ident}?start=0&end=20")
        assert reply.status_code == 200
        policy = reply.headers.get("content-security-policy", "")
        script_src = re.search(r"script-src ([^;]*)", policy)
        assert script_src and "'self'" in script_src.group(1) and "unsafe" not in script_src.group(1), policy
        assert "default-src 'none'" in policy
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", reply.text), "no inline script"
        assert "http-equiv" not in reply.text
    script = httpx.get(f"{base}/rag/viewer.js")
    assert script.status_code == 200 and "scrollIntoView" in script.text


# ---------------------------------------------------------------- 6. long chat histories


class _NoModel:
    """An assistant without a language model: follow-ups carry terms (rag/conversation.py)."""

    generator = None


def test_follow_up_terms_last_a_few_turns_and_cost_the_same_per_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: terms were carried without limit: a 949 KB history took 75 s and got "the question is 46,432
    characters long"; a 16-turn chat kept places named long before in the search."""
    from typing import cast

    import rag.conversation as conversation
    from rag.text import MAX_QUESTION_CHARS

    chat = conversation.ChatSession(cast(Any, _NoModel()))
    places = ["Peru", "Chile", "Bolivia", "Ecuador", "Colombia", "Venezuela", "Guyana", "Suriname"]
    places += ["Brazil", "Uruguay", "Paraguay", "Argentina", "Panama", "Cuba", "Haiti", "Jamaica"]
    chat.remember(f"What is the capital of {places[0]}?", "Its capital is a city on the coast [1].")
    for place in places[1:]:
        chat.remember(f"And {place}?", "The documents name a capital [1].")
    standalone, _ = chat.standalone("And the largest city?")
    kept = [p for p in places if p in standalone]
    assert kept and set(kept) <= set(places[-3:]), standalone  # the last 3 turns (conversation.CARRY_TURNS)

    scanned = [0]
    real = conversation._key_terms

    def counting(text: str) -> list[str]:
        scanned[0] += len(text)
        return real(text)

    monkeypatch.setattr(conversation, "_key_terms", counting)
    chat = conversation.ChatSession(cast(Any, _NoModel()))
    turns = 60
    name_run = " ".join(f"Name{i}" for i in range(600))  # one 'name' of 600 capitalised words
    for i in range(turns):
        chat.remember(f"And what about them {i}?" if i else name_run[:3_900], name_run * 8)
    standalone, _ = chat.standalone("And then?")
    assert len(standalone) <= MAX_QUESTION_CHARS
    limit = 4_000 + 2 * MAX_QUESTION_CHARS  # an answer's first 4,000 characters (conversation.MAX_ANSWER_SCAN)
    assert scanned[0] <= (turns + 1) * limit, f"{scanned[0]:,} characters read for {turns} turns"


# ---------------------------------------------------------------- 4. the worker's cap counts its helpers

_PARENT = """
import subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "b = bytearray(400 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
                           "import time; time.sleep(60)"])
time.sleep(60)
"""


def test_the_worker_memory_cap_counts_its_helper_processes(tmp_path: Path) -> None:
    """Before: only the worker's own memory was read, so its Tesseract children were not counted (a
    631 KB scan peaked at 2,004 MB under a 1,200 MB cap). Here a small process whose child holds 400 MB."""
    import subprocess
    import sys

    from rag import Settings
    from rag.index_worker import IndexWorker

    worker = IndexWorker(Settings(index_dir=tmp_path / "index"))
    child = subprocess.Popen([sys.executable, "-c", _PARENT], start_new_session=True)
    try:
        stopped = worker._watch(child, 200.0, 20.0, [], None)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, 9)
            child.wait()
    assert "more than 200 MB" in stopped, stopped
    assert worker.peak_mb > 200


def test_an_image_far_over_the_size_limit_names_the_limit(tmp_path: Path) -> None:
    """Before: a 30,000 x 30,000 PNG was "damaged or unsupported image (DecompressionBombError)"."""
    import struct
    import zlib

    from rag import DocumentError
    from rag.ocr import read_image

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 0, 0, 0, 0)  # declared size; no pixel data needed
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    with pytest.raises(DocumentError) as raised:
        read_image(png)
    message = str(raised.value)
    assert "900,000,000 pixels" in message and "limit of 60,000,000" in message, message
    assert "damaged" not in message


def test_a_huge_scanned_page_reaches_tesseract_at_a_bounded_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a page 2,000 x 2,000 points went to Tesseract at 200 dpi whole: 5,556 x 5,556 px (31 million)."""
    import pypdfium2 as pdfium
    from reportlab.pdfgen import canvas

    import rag.ocr as ocr

    if not ocr.available():
        pytest.skip("tesseract is not installed")
    path = tmp_path / "poster.pdf"
    pdf = canvas.Canvas(str(path), pagesize=(2000, 2000))
    pdf.setFont("Helvetica", 120)
    pdf.drawString(100, 1000, "Harbour")
    pdf.showPage()
    pdf.save()
    sizes: list[int] = []
    real = ocr.image_words

    def spy(image: Any, scale: float = 1.0) -> Any:
        sizes.append(image.width * image.height)
        return real(image, scale)

    monkeypatch.setattr(ocr, "image_words", spy)
    document = pdfium.PdfDocument(str(path))
    try:
        words = ocr.ocr_pdf_pages([(1, document[0])])
    finally:
        document.close()
    assert sizes and max(sizes) <= 16_000_000, sizes  # ocr.OCR_MAX_PIXELS
    found = [w for w in words[1] if "Harbour" in w.text]
    assert found and 90 < found[0].x0 < 140, "boxes are in PDF points whatever the resolution read"


# ---------------------------------------------------------------- 3. two servers on one index

_UPLOADER = """
import json, sys
from rag import Assistant
from ui.library import DocumentLibrary
library = DocumentLibrary(Assistant(index_dir=sys.argv[1]), max_bytes=10_000_000)
result = library.add([sys.argv[2]])
print(json.dumps({"stored": [name for _, name in result.stored], "rejected": result.rejected}))
"""


def test_two_servers_on_one_index_lose_no_upload(tmp_path: Path) -> None:
    """Before: each upload first set aside "orphans", taking the other server's copy in flight (not yet
    indexed) into documents/.orphans: one file ended there in 2 of 2 runs, after its server said "stored"."""
    import json
    import subprocess
    import sys

    from ui.library import FOLDER_NAME

    root = Path(__file__).resolve().parent.parent
    for run in range(2):
        index = tmp_path / f"index{run}"
        uploads = [
            write(tmp_path / f"up{run}" / f"{name}.txt", f"The {name} depot opens at {hour} every weekday. " * 30)
            for name, hour in (("Alder", "six"), ("Birch", "nine"))
        ]
        children = [
            subprocess.Popen(
                [sys.executable, "-c", _UPLOADER, str(index), str(path)],
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for path in uploads
        ]
        stored: list[str] = []
        for child in children:
            out, err = child.communicate(timeout=300)
            assert child.returncode == 0, err[-2000:]
            stored += json.loads(out.strip().splitlines()[-1])["stored"]
        indexed = {r.source for r in Assistant(index_dir=index).sources()}
        orphans = sorted(p.name for p in (index / FOLDER_NAME / ".orphans").glob("*"))
        assert sorted(stored) == ["Alder.txt", "Birch.txt"], (run, stored)
        assert set(stored) <= indexed and orphans == [], (run, indexed, orphans)


# ---------------------------------------------------------------- 12. DOCX amplification


def test_a_docx_of_highly_compressed_xml_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    """Before: a 184 KB DOCX holding 63 MB of XML (under the 64 MB limit) was parsed: 121 s, 1,193 MB.
    Here 40 MB of XML in a file of about 60 KB."""
    from rag import DocumentError
    from rag.budgets import Budget
    from rag.documents import load_within

    from .test_bombs import PARAGRAPH, rewrite_docx

    path = rewrite_docx(tmp_path / "amplified.docx", body=(PARAGRAPH, 40_000_000 // len(PARAGRAPH)))
    assert path.stat().st_size < 200_000
    with RssPeak() as memory, pytest.raises(DocumentError, match="expands") as raised:
        load_within(path, None, None, Budget())
    assert "zip bomb" in str(raised.value)
    assert memory.growth < 200e6, f"{memory.growth / 1e6:.0f} MB"


# ---------------------------------------------------------------- 13. errors that say what is wrong


def test_an_index_folder_without_permissions_is_named_as_such(seed_index: Path) -> None:
    """Before: `rag index` said "read-only: it can answer questions" and `rag ask` failed with a raw
    "[Errno 13] Permission denied: '.../store.sqlite'"; a missing index under an unwritable folder was
    "cannot be written (permission denied): it can answer questions"."""
    import subprocess
    import sys
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="rag-perm-", dir="/tmp"))
    try:
        root.chmod(0o755)
        shutil.copytree(seed_index, root / "noperm" / "idx")
        docs = write(root / "docs" / "a.txt", "The Quarnby mill grinds oats every Tuesday.").parent
        (root / "ro").mkdir()
        for path in (root, root / "noperm", docs, docs / "a.txt"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (root / "noperm" / "idx").chmod(0)
        (root / "ro").chmod(0o555)
        rag = [sys.executable, "-m", "rag.cli"]
        if os.geteuid() == 0:  # root reads everything: run as nobody
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv to drop privileges")
            rag = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *rag]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

        def run(*args: str) -> str:
            done = subprocess.run([*rag, *args], capture_output=True, text=True, cwd=root, timeout=300, env=env)
            assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
            return done.stderr.strip().splitlines()[-1]

        for command in (["index", "docs"], ["ask", "When does the mill grind?"]):
            message = run(*command, "--index", "noperm/idx")
            assert "cannot be read or written (permission denied)" in message and "Errno" not in message, message
            assert "can answer" not in message
        message = run("index", "docs", "--index", "ro/missing")
        assert "cannot create the index at ro/missing: permission denied in ro" in message, message
    finally:
        (root / "noperm" / "idx").chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
