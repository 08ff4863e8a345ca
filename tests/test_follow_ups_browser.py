"""The web chat in a real browser (Debian's Chromium driven by Playwright) over two quarterly filings: a
follow-up keeps the period of the question before it (also after a reload, from the chat kept in the
browser), and the Documents tab shows what each document is taken to be, escaped. The app is started and
driven as in tests/test_ui_browser.py, whose helpers this uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .statements import TURNS, write_statements
from .test_ui_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    Browser,
    Page,
    Watch,
    ask,
    free_port,
    last_answer_text,
    missing,
    open_page,
    shot,
    sync_playwright,
)

#: A document whose title is markup: shown as text in the Documents tab.
MARKUP_TITLE = "Harbour <b>notice</b> <img src=x onerror=\"window.__xss='title'\">"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rag import Assistant
    from ui.server import launch

    root = tmp_path_factory.mktemp("follow-ups-browser")
    docs = write_statements(root / "docs")
    (docs / "harbour.md").write_text(
        f"# {MARKUP_TITLE}\n\nThe harbour of Quillmere closes at dusk from November to March.\n", encoding="utf-8"
    )
    assistant = Assistant(index_dir=root / "index")
    assert not assistant.index([docs]).failed
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False)
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
    yield from open_page(browser, app_url, watch, request)


def check_turn(text: str, wanted: str, others: tuple[str, ...], question: str) -> None:
    assert wanted in text, (question, text)
    for other in others:
        assert other not in text, (question, other, text)


def test_follow_ups_keep_the_date_in_the_web_chat_and_after_a_reload(page: Page, watch: Watch) -> None:
    (first, wanted, others), *rest = TURNS
    ask(page, first)
    check_turn(last_answer_text(page), wanted, others, first)
    question, wanted, others = rest[0]
    ask(page, question)
    check_turn(last_answer_text(page), wanted, others, question)
    searched = page.locator("#rag-chat .rag-searched").last.inner_text()
    assert "July 1, 2023" in searched
    shot(page, "follow-up-period")
    # Reloaded, the chat comes back from the browser's store and its next follow-up still knows the date.
    page.reload()
    page.wait_for_selector("#rag-chat .rag-sources")
    for question, wanted, others in rest[1:]:
        ask(page, question)
        check_turn(last_answer_text(page), wanted, others, question)
    watch.assert_clean()
