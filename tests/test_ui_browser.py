"""The web chat in a real browser: Debian's Chromium driven by Playwright for Python.

A question streams in with its ``[1]`` marker and a Sources block, a refusal looks different, a file
uploaded in the Documents tab is answerable at once, and a document full of HTML/JS payloads renders
as inert text. With a scripted OpenAI-compatible server (tests/fake_openai.py on 127.0.0.1): the
Settings tab lists its models and switches to it, a generated answer streams in with its model named,
an unsupported citation gets its badge, a follow-up shows the question it was rewritten into, and a
failing server shows the note and the extractive answer. Screenshots go to ``test-artifacts/``.
``make test`` installs Chromium when it is missing and sets REQUIRE_PREREQS=1 (as CI=true does), so there
the tests fail instead of skipping (tests/conftest.py).
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from .conftest import ROOT, SEED_QUESTION, SEEDS, missing
from .fake_openai import FakeOpenAI, Reply, Request

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 90_000  # an upper bound for slow machines, not a timing assertion
SEED_FILE = next(SEEDS.glob("*.txt"))
# Standalone on purpose: in a chat, a short question ("What is the capital of Peru?") counts as a
# follow-up and gets the previous question's terms.
UNANSWERABLE = "What is the boiling point of liquid nitrogen in kelvin?"
INVITE = "extended an invitation"  # in the seed passage that answers SEED_QUESTION
AGENDA = "multifaceted agenda"  # in the seed passage about what a visit would include
FOLLOW_UP = "When will she visit?"
STANDALONE = "When will Prime Minister Takaichi visit the United States?"


try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - the test extras install it
    missing("the playwright package is not installed (pip install -e '.[test]')")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Watch:
    """What the page did that it must not: dialogs, uncaught errors, console errors, requests leaving this
    machine. Every page that ``open_page`` opens is checked when its test ends; tests also check it midway."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.dialogs == [], f"a dialog fired: {self.dialogs}"
        assert self.errors == [], f"uncaught errors in the page: {self.errors}"
        assert self.console == [], f"errors in the page's console: {self.console}"
        assert self.external == [], f"the page contacted other hosts: {self.external}"


@pytest.fixture(scope="module")
def app_url(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rag import Assistant
    from ui.server import launch

    index = tmp_path_factory.mktemp("ui-browser") / "index"
    shutil.copytree(seed_index, index)
    app, url = launch(Assistant(index_dir=index), "127.0.0.1", free_port(), block=False)
    yield url
    app.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def watch() -> Watch:
    return Watch()


@pytest.fixture()
def page(browser: Browser, app_url: str, watch: Watch, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page on the app; its last state is saved as test-artifacts/final-<test>.png."""
    yield from open_page(browser, app_url, watch, request)


def open_page(browser: Browser, app_url: str, watch: Watch, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("dialog", lambda dialog: (watch.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: watch.errors.append(f"{error.name}: {error.message}"))
    page.on(
        "console",
        lambda msg: watch.console.append(f"{msg.text} ({msg.location.get('url')})") if msg.type == "error" else None,
    )

    def on_request(req: Any) -> None:
        watch.requests.append(req.url)
        host = urlsplit(req.url).hostname
        if req.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in {"127.0.0.1", "localhost"}:
            watch.external.append(req.url)

    page.on("request", on_request)
    page.goto(app_url)
    page.wait_for_selector("#rag-question textarea")
    yield page
    try:
        page.screenshot(path=str(ARTIFACTS / f"final-{request.node.name}.png"), full_page=True, animations="disabled")
    finally:
        context.close()
    watch.assert_clean()  # every browser test, whatever it checked itself


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True, animations="disabled")


def record_streaming(page: Page) -> None:
    """Remember every text the latest answer bubble shows while it streams."""
    page.evaluate(
        """() => {
        window.__seen = [];
        const chat = document.querySelector('#rag-chat');
        const grab = () => {
            const answers = chat.querySelectorAll('.bot .message:not(.thought) .message-content .rag-answer');
            if (answers.length) window.__seen.push(answers[answers.length - 1].innerText);
        };
        new MutationObserver(grab).observe(chat, {subtree: true, childList: true, characterData: true});
    }"""
    )


def ask(page: Page, question: str) -> None:
    """Type ``question``, press Ask, wait until its answer has a sources block."""
    before = page.locator("#rag-chat .rag-sources").count()
    page.fill("#rag-question textarea", question)
    page.click("#rag-ask")
    page.wait_for_function(
        "n => document.querySelectorAll('#rag-chat .rag-sources').length > n", arg=before, timeout=WAIT_MS
    )
    page.locator("#rag-chat .rag-sources").last.locator(".rag-source").first.wait_for(state="visible")


def last_answer_text(page: Page) -> str:
    """The text of the latest answer (without the searched question, generator line or note)."""
    return page.locator("#rag-chat .bot .message:not(.thought) .message-content .rag-answer").last.inner_text().strip()


def upload_in_browser(page: Page, *files: Path) -> str:
    """Upload ``files`` in the Documents tab and return the status text once indexing is done."""
    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#rag-documents table")
    # Mark the lines of an earlier status: the new status is the first unmarked line.
    page.evaluate("() => document.querySelectorAll('#rag-upload-status li').forEach(li => li.dataset.old = '1')")
    page.set_input_files("#rag-upload input[type=file]", [str(f) for f in files])
    page.wait_for_selector("#rag-upload-status li:not([data-old])")
    return page.locator("#rag-upload-status ul").inner_text()


# ---------------------------------------------------------------- tests


def test_empty_chat_offers_example_questions(page: Page, watch: Watch) -> None:
    examples = page.locator("#rag-chat button.example")
    page.wait_for_selector("#rag-chat button.example")
    texts = [t.strip() for t in examples.all_inner_texts()]
    assert SEED_QUESTION in texts
    shot(page, "empty-chat")

    examples.filter(has_text=SEED_QUESTION).click()
    page.wait_for_selector("#rag-chat .rag-sources")
    assert "Trump" in last_answer_text(page)
    watch.assert_clean()


def test_answer_streams_in_with_marker_and_sources_then_a_refusal(page: Page, watch: Watch) -> None:
    record_streaming(page)
    ask(page, SEED_QUESTION)
    answer = last_answer_text(page)
    assert "Donald Trump" in answer and answer.endswith("[1]")
    assert page.locator("#rag-chat .rag-answer .rag-cite").first.inner_text() == "[1]"

    # The answer arrived in pieces: some earlier text of the bubble is a proper prefix of the final one.
    seen = [s.strip() for s in page.evaluate("window.__seen")]
    partial = [s for s in seen if s and s != answer and answer.startswith(s)]
    assert partial, f"no partial answer was shown before the final one: {seen[:5]}"

    # The Sources block under the answer: number, file, section, score, passage with the quote marked.
    title = page.locator("#rag-chat .thought-group .title").last
    assert "Sources (1)" in title.inner_text()
    source = page.locator("#rag-chat .rag-source").last
    head = source.locator(".rag-source-head").inner_text()
    assert "[1]" in head and SEED_FILE.name in head and "score " in head
    assert 0.35 <= float(head.split("score ")[1].split()[0]) <= 1.0  # the 0-1 scale of the refusal threshold
    assert "Strengthening Japan-US Ties" in source.locator(".rag-section").inner_text()
    marked = source.locator("mark").first.inner_text()
    assert "Donald Trump extended an invitation" in marked and marked in answer
    shot(page, "answer")

    # Collapsible: the title folds the passages away and back.
    title.click()
    page.wait_for_function("() => !document.querySelector('#rag-chat .rag-source mark')?.checkVisibility()")
    title.click()
    page.wait_for_selector("#rag-chat .rag-source mark", state="visible")

    # A refusal looks different and shows the closest passages; the first answer keeps its sources.
    ask(page, UNANSWERABLE)
    refusal = page.locator("#rag-chat .rag-refusal")
    assert "Not in the documents" in refusal.inner_text()
    style = refusal.evaluate("e => { const s = getComputedStyle(e); return [s.borderLeftWidth, s.backgroundColor]; }")
    answer_style = page.locator("#rag-chat .rag-answer").first.evaluate(
        "e => { const s = getComputedStyle(e); return [s.borderLeftWidth, s.backgroundColor]; }"
    )
    assert style[0] == "4px" and style != answer_style
    titles = page.locator("#rag-chat .thought-group .title").all_inner_texts()
    assert [t.strip() for t in titles] == ["Sources (1)", "Closest passages (3)"]
    blocks = page.locator("#rag-chat .rag-sources")
    assert SEED_FILE.name in blocks.nth(0).inner_text() and blocks.nth(0).locator("mark").count() == 1
    assert blocks.nth(1).locator(".rag-source").count() == 3
    page.locator("#rag-chat .rag-refusal").scroll_into_view_if_needed()
    shot(page, "refusal")
    watch.assert_clean()


def test_uploaded_file_is_listed_and_answerable(page: Page, watch: Watch, tmp_path: Path) -> None:
    notes = tmp_path / "Lighthouse notes.md"
    notes.write_text(
        "# Hexaplume lighthouse\n\nThe Hexaplume lighthouse stands on the northern cliff of Varnholt island. "
        "The keeper Oskar Lund painted the Hexaplume lighthouse green in 1987.\n",
        encoding="utf-8",
    )
    page_html = tmp_path / "orchard.html"
    page_html.write_text(
        "<html><body><h1>Pellworth orchard</h1><p>The Pellworth orchard grows the Brindlecot apple, "
        "first bred in 1874 by Agnes Tull.</p></body></html>",
        encoding="utf-8",
    )
    status = upload_in_browser(page, notes, page_html)
    assert "Lighthouse_notes.md" in status and "orchard.html: indexed" in status
    table = page.locator("#rag-documents table").inner_text()
    assert "Lighthouse_notes.md" in table and "orchard.html" in table and SEED_FILE.name in table
    assert "files" in page.locator("#rag-stats").inner_text()
    shot(page, "documents")

    page.get_by_role("tab", name="Chat").click()
    ask(page, "Who painted the Hexaplume lighthouse green?")
    assert "Oskar Lund" in last_answer_text(page)
    assert "Lighthouse_notes.md" in page.locator("#rag-chat .rag-source").last.inner_text()
    ask(page, "Who bred the Brindlecot apple?")
    assert "Agnes Tull" in last_answer_text(page)
    assert "orchard.html" in page.locator("#rag-chat .rag-source").last.inner_text()
    shot(page, "upload-answer")
    watch.assert_clean()


def test_a_document_with_html_and_script_payloads_renders_as_inert_text(
    page: Page, watch: Watch, app_url: str, tmp_path: Path
) -> None:
    leak = app_url.rstrip("/") + "/leak"
    payloads = (
        "**bold** $$x^2$$ "
        "<img src=x onerror=\"window.__xss='img';alert('img')\"> "
        "<script>window.__xss='script';alert('script')</script> "
        "<svg onload=\"window.__xss='svg'\"></svg> "
        f'![leak]({leak}-markdown.png) <img src="{leak}-img.png"> '
        "<iframe src=\"javascript:parent.__xss='iframe'\"></iframe> [click](javascript:alert(1))"
    )
    evil = tmp_path / "zorblat <img src=x onerror=alert(1)>.md"
    # The payloads sit inside the sentence that answers, so they reach the answer and its passage.
    evil.write_text(
        f"# Zorblat festival\n\nThe Zorblat festival was founded by Marta Vendel {payloads} in 1911 in Quillmere.\n",
        encoding="utf-8",
    )
    status = upload_in_browser(page, evil)
    assert "indexed" in status
    assert page.locator("#rag-documents img, #rag-upload-status img").count() == 0

    page.get_by_role("tab", name="Chat").click()
    ask(page, "Who founded the Zorblat festival?")
    assert "Marta Vendel" in last_answer_text(page)
    page.locator("#rag-chat .rag-source").last.scroll_into_view_if_needed()
    shot(page, "xss-inert")

    # Nothing ran and nothing was injected or fetched ...
    assert watch.dialogs == [], f"a dialog fired: {watch.dialogs}"
    assert page.evaluate("typeof window.__xss") == "undefined", "an injected handler ran"
    injected = "#rag-chat .message-content :is(img, script, svg, iframe, a:not(.rag-view), strong, b, .katex)"
    assert page.locator(injected).count() == 0
    ours = page.locator("#rag-chat .message-content a.rag-view")  # the viewer links the page itself writes
    assert all(h.startswith("/rag/view/") for h in ours.evaluate_all("els => els.map(e => e.getAttribute('href'))"))
    assert not [url for url in watch.requests if "/leak" in url]
    # ... and the payloads are there, as text.
    passage = page.locator("#rag-chat .rag-source").last
    text = passage.inner_text()
    for shown in ("**bold** $$x^2$$ <img src=x onerror=", "<script>window.__xss='script'", "<svg onload=", "![leak]("):
        assert shown in text
    assert "<img src=x onerror=" in last_answer_text(page)
    assert "zorblat" in passage.locator(".rag-file").inner_text()
    watch.assert_clean()


def test_a_file_can_be_removed_in_the_documents_tab(page: Page, watch: Watch, tmp_path: Path) -> None:
    doc = tmp_path / "kiln.txt"
    doc.write_text("The Ostrava kiln fires porcelain at 1400 degrees.\n", encoding="utf-8")
    upload_in_browser(page, doc)
    assert "kiln.txt" in page.locator("#rag-documents table").inner_text()

    box = page.locator("#rag-remove input")
    box.click()
    page.get_by_role("option", name="kiln.txt", exact=True).click()
    page.click("#rag-remove-button")
    page.locator("#rag-upload-status li", has_text="kiln.txt: removed").wait_for()
    page.wait_for_function("() => !document.querySelector('#rag-documents').innerText.includes('kiln.txt')")
    assert SEED_FILE.name in page.locator("#rag-documents table").inner_text()
    watch.assert_clean()


# ---------------------------------------------------------------- generated answers (scripted server)


def _invite_text(request: Request, unsupported: bool = False) -> str:
    n = request.passage_number(INVITE)
    assert n, "the answering passage was not in the prompt"
    text = f"President Donald Trump invited Prime Minister Sanae Takaichi to visit the United States [{n}]."
    agenda = request.passage_number(AGENDA)
    if unsupported and agenda:
        text += f" She will arrive on 4 July 2026 by sea [{agenda}]."
    return text


def _chat_route(request: Request) -> Reply:
    """Rewrites follow-ups; answers the seed question with one supported and one unsupported sentence."""
    system = request.messages[0]["content"] if request.messages else ""
    if "standalone question" in system:
        return Reply(STANDALONE)
    if STANDALONE in request.prompt:
        n = request.passage_number(AGENDA)
        return Reply(f"A visit would likely feature high-level meetings and the signing of agreements [{n}].")
    # Paced so that the page shows the answer growing; nothing measures the time.
    return Reply(_invite_text(request, unsupported=True), chunk_delay=0.03)


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(models=("m", "other")) as fake:
        yield fake


@pytest.fixture(scope="module")
def llm_app(seed_index: Path, llm_server: FakeOpenAI) -> Iterator[SimpleNamespace]:
    """The app over the seed index, extractive at first (questions only: the index is not changed)."""
    from rag import Assistant
    from ui.server import launch

    assistant = Assistant(index_dir=seed_index, llm_timeout=10.0)
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False, allow_llm_settings=True)
    yield SimpleNamespace(url=url, assistant=assistant, base=assistant.settings)
    app.close()


@pytest.fixture()
def llm_page(
    browser: Browser, llm_app: SimpleNamespace, llm_server: FakeOpenAI, watch: Watch, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh page on the LLM app, which starts extractive, with the scripted server reset."""
    llm_app.assistant.settings = llm_app.base
    llm_server.responder, llm_server.default = _chat_route, Reply("The documents say nothing more [1].")
    llm_server.requests.clear()
    yield from open_page(browser, llm_app.url, watch, request)


def settings_tab(page: Page) -> None:
    page.get_by_role("tab", name="Settings").click()
    page.locator("#rag-llm-current .rag-llm-summary").wait_for()


def test_settings_pick_a_model_then_answers_stream_with_badges_and_rewritten_follow_ups(
    llm_page: Page, llm_server: FakeOpenAI, watch: Watch
) -> None:
    page = llm_page
    settings_tab(page)
    assert "extractive" in page.locator("#rag-llm-current").inner_text()
    assert page.locator("#rag-llm-key input").get_attribute("type") == "password"

    # A bad URL is one clear line, not a traceback.
    page.fill("#rag-llm-url input", "localhost:11434")
    page.click("#rag-llm-refresh")
    status = page.locator("#rag-llm-status .rag-status-error")
    status.wait_for()
    assert "Could not list the models: the server URL must be an http(s) address" in status.inner_text()
    assert "Traceback" not in page.content()

    # The model picker lists the server's models.
    page.fill("#rag-llm-url input", llm_server.url)
    page.click("#rag-llm-refresh")
    page.locator("#rag-llm-status .rag-status-ok", has_text="2 model(s)").wait_for()
    page.locator("#rag-llm-model input").click()
    options = [t.replace("✓", "").strip() for t in page.get_by_role("option").all_inner_texts()]
    assert options == ["Extractive (no LLM)", "The server's first model", "m", "other"]
    shot(page, "settings-models")
    page.get_by_role("option", name="m", exact=True).click()
    page.click("#rag-llm-apply")
    page.locator("#rag-llm-current", has_text="generated by m").wait_for()
    assert "generated by m at " + llm_server.url in page.locator("#rag-llm-current").inner_text()
    assert "Applied" in page.locator("#rag-llm-status").inner_text()
    shot(page, "settings-applied")

    # A generated answer streams in, names its model, and flags the sentence its passage does not back.
    page.get_by_role("tab", name="Chat").click()
    record_streaming(page)
    ask(page, SEED_QUESTION)
    answer = last_answer_text(page)
    assert answer.startswith("President Donald Trump invited Prime Minister Sanae Takaichi") and "[1]" in answer
    assert "She will arrive on 4 July 2026 by sea [2]." in answer
    seen = [s.strip() for s in page.evaluate("window.__seen")]
    assert [s for s in seen if s and s != answer and answer.startswith(s)], f"no partial answer: {seen[:5]}"
    assert "Generated by m" in page.locator("#rag-chat .rag-generator").last.inner_text()
    claim = page.locator("#rag-chat .rag-unsupported-claim")
    assert claim.count() == 1 and claim.inner_text().startswith("She will arrive")
    assert "1 unsupported" in page.locator("#rag-chat .thought-group .title").last.inner_text()
    # (The chat's sanitiser drops data-* attributes: sources are told apart by their number.)
    cited = page.locator("#rag-chat .rag-sources").last.locator(".rag-source")
    assert cited.count() == 2 and cited.nth(0).locator(".rag-badge").count() == 0
    assert cited.nth(1).locator(".rag-n").inner_text() == "[2]"
    badge = cited.nth(1).locator(".rag-badge.rag-unsupported")
    assert badge.is_visible() and badge.inner_text().strip() == "unsupported"
    assert "not backed" in page.locator("#rag-chat .rag-note").last.inner_text()
    shot(page, "llm-unsupported")

    # The follow-up is rewritten by the model; the page shows what was searched for.
    ask(page, FOLLOW_UP)
    searched = page.locator("#rag-chat .rag-searched").last
    assert searched.inner_text().strip() == f"searched for: {STANDALONE}"
    assert "high-level meetings" in last_answer_text(page)
    assert "unsupported" not in page.locator("#rag-chat .thought-group .title").last.inner_text()
    rewrite = [r for r in llm_server.chat_requests() if "stream" not in r.body]
    assert len(rewrite) == 1 and SEED_QUESTION in rewrite[0].prompt and FOLLOW_UP in rewrite[0].prompt
    page.locator("#rag-chat .rag-searched").last.scroll_into_view_if_needed()
    shot(page, "llm-follow-up")

    # A new chat is a new conversation: nothing to rewrite.
    page.click("#rag-clear")
    page.wait_for_function("() => !document.querySelector('#rag-chat .rag-sources')")
    ask(page, FOLLOW_UP)
    assert page.locator("#rag-chat .rag-searched").count() == 0
    assert len([r for r in llm_server.chat_requests() if "stream" not in r.body]) == 1
    watch.assert_clean()


def test_a_failing_server_shows_the_note_and_the_extractive_answer(
    llm_page: Page, llm_app: SimpleNamespace, llm_server: FakeOpenAI, watch: Watch
) -> None:
    page = llm_page
    llm_app.assistant.settings = llm_app.base.replace(llm_base_url=llm_server.url, llm_model="m")
    llm_server.responder = lambda request: Reply(status=500, error="GPU <b>melted</b> <img src=x onerror=alert(1)>")
    ask(page, SEED_QUESTION)
    assert "Donald Trump extended an invitation" in last_answer_text(page)
    note = page.locator("#rag-chat .rag-note").last
    text = note.inner_text()
    assert "HTTP 500" in text and "GPU <b>melted</b> <img src=x onerror=alert(1)>" in text
    assert "Showing the extractive answer instead" in text
    assert note.locator("b, img").count() == 0
    assert "not generated by m" in page.locator("#rag-chat .rag-generator").last.inner_text()
    shot(page, "llm-failed")

    # A stream cut off after some tokens: the page ends with the extractive answer, not the partial text.
    page.click("#rag-clear")
    page.wait_for_function("() => !document.querySelector('#rag-chat .rag-sources')")
    llm_server.responder = lambda request: Reply(_invite_text(request), cut_after=4)
    ask(page, SEED_QUESTION)
    final = last_answer_text(page)
    assert "Donald Trump extended an invitation" in final and "President Donald Trump invited" not in final
    assert "cut off" in page.locator("#rag-chat .rag-note").last.inner_text()
    watch.assert_clean()


# ---------------------------------------------------------------- a new user's session (issue 14)

AXE = sorted(ROOT.glob(".cache/axe-core-*/axe.min.js"))


def test_the_trash_icon_starts_a_new_conversation(page: Page, watch: Watch) -> None:
    ask(page, SEED_QUESTION)
    page.locator("#rag-chat button[aria-label='Clear']").click()
    page.wait_for_function("() => !document.querySelector('#rag-chat .rag-sources')")
    # A fresh conversation: nothing is carried over, and with nothing that says when, it is refused.
    ask(page, FOLLOW_UP)
    assert page.locator("#rag-chat .rag-searched").count() == 0
    refusal = page.locator("#rag-chat .rag-refusal")
    assert refusal.count() == 1 and "Not in the documents" in refusal.inner_text()
    assert "Looking Ahead" not in page.locator("#rag-chat .bot .message:not(.thought)").first.inner_text()
    watch.assert_clean()


def test_upload_shows_one_progress_display(page: Page, watch: Watch, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#rag-documents table")
    # The tab's own refresh of the listing must be over before watching (on a loaded machine it is not yet).
    page.wait_for_function(
        """() => ![...document.querySelectorAll('[data-testid=status-tracker]')].some(
            (e) => !e.classList.contains('hide') && e.querySelector('.progress-text, .eta-bar, .meta-text, .loader'))"""
    )
    page.evaluate(
        """() => {
        window.__progress = [];
        const look = () => {
            const busy = '.progress-text, .eta-bar, .meta-text, .loader';
            const shown = [...document.querySelectorAll('[data-testid=status-tracker]')].filter(
                (e) => !e.classList.contains('hide') && e.querySelector(busy));
            if (shown.length) window.__progress.push(shown.map((e) => e.parentElement.id || '?'));
        };
        new MutationObserver(look).observe(document.body, {subtree: true, childList: true, attributes: true});
    }"""
    )
    files = []
    for i in range(3):
        files.append(tmp_path / f"kiln-{i}.md")
        files[-1].write_text(f"# Kiln {i}\n\nKiln number {i} of Ostrava fires porcelain at 14{i}0 degrees.\n")
    status = upload_in_browser(page, *files)
    assert "kiln-0.md: indexed" in status
    seen = page.evaluate("window.__progress")
    assert seen, "no progress was shown at all"
    assert all(ids == ["rag-upload-status"] for ids in seen), f"progress drawn elsewhere too: {seen[:5]}"
    watch.assert_clean()


def test_settings_keep_a_typed_url_and_name_it_when_unreachable(llm_page: Page, watch: Watch) -> None:
    from .fake_openai import free_port as closed_port

    page = llm_page
    settings_tab(page)
    typed = f"http://127.0.0.1:{closed_port()}/v1"
    page.fill("#rag-llm-url input", typed)
    page.click("#rag-llm-apply")
    status = page.locator("#rag-llm-status")
    status.locator(".rag-status-ok", has_text="extractive").wait_for()
    assert f"The server URL {typed} is kept for later" in status.inner_text()
    assert page.locator("#rag-llm-url input").input_value() == typed
    page.click("#rag-llm-refresh")
    error = page.locator("#rag-llm-status .rag-status-error")
    error.wait_for()
    assert typed in error.inner_text() and "RAG_LLM_BASE_URL" not in error.inner_text()
    watch.assert_clean()


def test_past_chats_survive_a_reload_and_can_be_reopened_or_deleted(
    browser: Browser, app_url: str, page: Page, watch: Watch, request: pytest.FixtureRequest
) -> None:
    ask(page, SEED_QUESTION)
    page.reload()
    page.wait_for_selector("#rag-chat .rag-sources")  # the conversation is back after a reload
    assert "Donald Trump" in last_answer_text(page)

    page.click("#rag-clear")
    page.wait_for_function("() => !document.querySelector('#rag-chat .rag-sources')")
    ask(page, "Which regions are watching Tokyo's diplomatic posture?")
    page.locator("#rag-history input").click()
    options = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]
    assert len(options) == 2 and options[0].startswith("Which regions") and options[1].startswith("Who invited")
    page.get_by_role("option").nth(1).click()
    page.wait_for_function("() => !document.querySelector('#rag-chat').innerText.includes('Southeast Asia')")
    assert "Donald Trump" in last_answer_text(page)
    # The reopened chat goes on where it was: its follow-up is rewritten with its own earlier question.
    ask(page, FOLLOW_UP)
    assert "Takaichi" in page.locator("#rag-chat .rag-searched").last.inner_text()

    # Another browser (a new context: its own storage) sees none of this: once its own first question is
    # answered (after the page's load events), its list holds that chat only and its chat that answer only.
    opened = open_page(browser, app_url, Watch(), request)
    other = next(opened)
    ask(other, UNANSWERABLE)
    other.locator("#rag-history input").click()
    theirs = [o.replace("✓", "").strip() for o in other.get_by_role("option").all_inner_texts()]
    assert len(theirs) == 1 and theirs[0].startswith("What is the boiling point"), theirs
    assert other.locator("#rag-chat .rag-sources").count() == 1
    assert "Donald Trump" not in other.locator("#rag-chat").inner_text()
    assert next(opened, None) is None  # closes it, and checks its page stayed clean

    # Delete: the open chat is emptied and leaves the list.
    page.click("#rag-history-delete")
    page.wait_for_function("() => !document.querySelector('#rag-chat .rag-sources')")
    page.locator("#rag-history input").click()
    left = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]
    assert len(left) == 1 and left[0].startswith("Which regions")
    watch.assert_clean()


def test_answers_can_be_copied_and_markers_lead_to_their_source(page: Page, watch: Watch) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    ask(page, SEED_QUESTION)
    copy = page.locator("#rag-chat button[aria-label='Copy message']")
    assert copy.count() == 2  # the question's and the answer's
    copy.last.click()
    page.wait_for_function("async () => (await navigator.clipboard.readText()).includes('Sources:')")
    copied = page.evaluate("navigator.clipboard.readText()")
    # The text as read, with its sources and their quoted sentences; no markup.
    assert "Donald Trump extended an invitation" in copied and copied.index("[1]") < copied.index("Sources:")
    assert f"[1] {SEED_FILE.name}, Strengthening Japan-US Ties" in copied and "<" not in copied

    cite = page.locator("#rag-chat .rag-answer .rag-cite").first
    assert cite.get_attribute("role") == "link" and cite.get_attribute("tabindex") == "0"
    # Fold the Sources block away, then follow [1] with the keyboard: it opens and shows source [1].
    page.locator("#rag-chat .thought-group .title").last.click()
    page.wait_for_function("() => !document.querySelector('#rag-chat .rag-source mark')?.checkVisibility()")
    cite.focus()
    page.keyboard.press("Enter")
    target = page.locator("#rag-chat .rag-source.rag-target")
    target.wait_for(state="visible")
    assert target.locator(".rag-n").inner_text() == "[1]" and target.is_visible()
    assert target.evaluate("e => { const r = e.getBoundingClientRect(); return r.top < innerHeight && r.bottom > 0; }")
    watch.assert_clean()


def test_picker_offers_every_format_of_rag_index(page: Page, watch: Watch, tmp_path: Path) -> None:
    from rag import SUPPORTED_SUFFIXES

    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#rag-documents table")
    accept = page.locator("#rag-upload input[type=file]").get_attribute("accept") or ""
    assert {a.strip() for a in accept.split(",")} == set(SUPPORTED_SUFFIXES)
    assert all(s in page.locator("#rag-upload-hint").inner_text() for s in SUPPORTED_SUFFIXES)
    rst = tmp_path / "harbour.rst"
    rst.write_text("Harbour\n=======\n\nThe Quorvel harbour light was lit in 1851.\n", encoding="utf-8")
    status = upload_in_browser(page, rst)
    assert "harbour.rst: indexed" in status

    # The same bytes under another name: reported, not indexed twice.
    copy = tmp_path / "copy of harbour.rst"
    copy.write_bytes(rst.read_bytes())
    status = upload_in_browser(page, copy)
    assert "copy of harbour.rst: same content as harbour.rst, not indexed again" in status
    assert "copy_of_harbour" not in page.locator("#rag-documents table").inner_text()
    watch.assert_clean()


def test_scores_are_0_to_1_best_first_and_explained(page: Page, watch: Watch) -> None:
    ask(page, UNANSWERABLE)
    block = page.locator("#rag-chat .rag-sources").last
    scores = [float(t.split()[-1]) for t in block.locator(".rag-score").all_inner_texts()]
    assert len(scores) == 3 and all(0 <= s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    assert "from 0 to 1" in block.locator(".rag-score-note").inner_text()
    assert "0.35 or more" in block.locator(".rag-score-note").inner_text()
    ask(page, SEED_QUESTION)
    cited = float(page.locator("#rag-chat .rag-sources").last.locator(".rag-score").first.inner_text().split()[-1])
    assert 0.35 <= cited <= 1.0, "an answered question's source clears the refusal threshold"
    watch.assert_clean()


def _audit(page: Page) -> list[str]:
    """Serious and critical axe-core violations of the page once no progress display is shown."""
    page.wait_for_function(
        "() => ![...document.querySelectorAll('[data-testid=status-tracker]')].some("
        "(e) => !e.classList.contains('hide') && e.querySelector('.progress-text, .eta-bar, .meta-text, .loader'))"
    )
    page.wait_for_timeout(300)  # let fades end: colours are measured as drawn (not a timing assertion)
    page.add_script_tag(path=str(AXE[-1]))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(' | ')}`)"""
    )
    return [str(v) for v in found]


def test_accessibility_audit_finds_nothing_serious(page: Page, watch: Watch, tmp_path: Path) -> None:
    if not AXE:
        missing("axe-core is not fetched (make browser puts it in .cache/)")
    page.evaluate(
        """() => { window.__live = [];
        new MutationObserver(() => document.querySelectorAll('[aria-live]').forEach((e) => {
            if (e.textContent.trim()) window.__live.push(e.textContent.trim()); }))
        .observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
    )
    assert _audit(page) == [], "empty chat"
    ask(page, SEED_QUESTION)
    labels = page.evaluate("() => [...document.querySelectorAll('#rag-chat [aria-label]')].map(e => e.ariaLabel)")
    messages = [label for label in labels if "message:" in label]
    assert messages and not [label for label in messages if "<" in label], messages
    assert any("Donald Trump extended an invitation" in label for label in messages)
    assert _audit(page) == [], "chat with an answer"

    doc = tmp_path / "audit.md"
    doc.write_text("# Audit\n\nThe Ferrow tower clock was wound every Sunday.\n", encoding="utf-8")
    upload_in_browser(page, doc)
    assert _audit(page) == [], "documents tab"
    settings_tab(page)
    assert _audit(page) == [], "settings tab"
    assert not [t for t in page.evaluate("window.__live") if "common." in t], "an untranslated key was announced"
    watch.assert_clean()


def test_documents_tab_fits_a_390_px_screen(browser: Browser, app_url: str, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(app_url)
        page.wait_for_selector("#rag-question textarea")
        page.get_by_role("tab", name="Documents").click()
        page.wait_for_selector("#rag-documents table")
        shot(page, "documents-390")
        box = page.evaluate(
            """() => {
            const wrap = document.querySelector('#rag-documents .rag-docs-wrap');
            const cells = [...wrap.querySelectorAll('td, th')].filter((c) => c.checkVisibility());
            const rect = (sel) => { const r = document.querySelector(sel).getBoundingClientRect();
                                    return [r.left, r.top, r.right, r.bottom]; };
            const right = Math.max(...cells.map((c) => c.getBoundingClientRect().right));
            const names = [...wrap.querySelectorAll('td.rag-doc-name')].map((c) => c.getBoundingClientRect().width);
            return {clip: wrap.scrollWidth - wrap.clientWidth, right, names,
                    label: rect('#rag-upload [data-testid=block-label]'),
                    icon: rect('#rag-upload [data-testid=upload-icon]')};
        }"""
        )
        assert box["clip"] <= 1 and box["right"] <= 390, f"the table is cut off: {box}"
        assert min(box["names"]) >= 80, f"file names squeezed to a few characters a line: {box['names']}"
        label, icon = box["label"], box["icon"]
        overlap = label[0] < icon[2] and icon[0] < label[2] and label[1] < icon[3] and icon[1] < label[3]
        assert not overlap, f"the upload label covers its icon: {label} {icon}"
    finally:
        context.close()


def test_chats_survive_a_server_restart_only_with_rag_ui_secret(
    browser: Browser, seed_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The README: the chats' encryption key is made at each start unless RAG_UI_SECRET is set. The same
    browser, the same address, the server restarted: with the same secret the chat is back after a reload;
    with none (a new key) the stored chats cannot be read, and the next question starts the only chat."""
    from rag import Assistant
    from ui.server import launch

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    port = free_port()

    def serve(secret: str | None) -> tuple[Any, str]:
        if secret:
            monkeypatch.setenv("RAG_UI_SECRET", secret)
        else:
            monkeypatch.delenv("RAG_UI_SECRET", raising=False)
        return launch(Assistant(index_dir=index), "127.0.0.1", port, block=False)

    app, url = serve("correct horse battery staple")
    watch = Watch()
    opened = open_page(browser, url, watch, request)
    page = next(opened)
    try:
        ask(page, SEED_QUESTION)
        app.close()
        app, again = serve("correct horse battery staple")
        assert again == url
        page.reload()
        page.wait_for_selector("#rag-chat .rag-sources")  # restored from the browser's storage
        assert "Donald Trump" in last_answer_text(page)
        app.close()
        app, _ = serve(None)
        page.reload()
        page.wait_for_selector("#rag-question textarea")
        ask(page, UNANSWERABLE)  # answered after the page's load events, which restore what they can
        page.locator("#rag-history input").click()
        options = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]
        assert len(options) == 1 and options[0].startswith("What is the boiling point"), options
        assert "Donald Trump" not in page.locator("#rag-chat").inner_text()
        # Gradio logs that it could not read the stored chats with the new key; that and nothing else.
        unreadable = [c for c in watch.console if c.startswith("Error reading from localStorage")]
        assert unreadable and len(unreadable) == len(watch.console), watch.console
        watch.console.clear()
    finally:
        app.close()
    assert next(opened, None) is None  # closes the page and checks it stayed clean
