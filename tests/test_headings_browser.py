"""The web chat in a real browser over a PDF whose sections open with a bold heading on its own short line:
the answer and the highlighted quote in its Sources block start at the sentence, without the heading
(issue #27, item 17). The app is started and driven as in tests/test_ui_browser.py, whose helpers this uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import test_ui_browser as ui_browser
from .helpers import SECTION_HEADING, SECTION_SENTENCE, sectioned_pdf
from .test_ui_browser import Page, Watch, ask, free_port, last_answer_text, shot

# The browser, each test's page and its watch, as in tests/test_ui_browser.py (the page opens this module's app_url).
browser, page, watch = ui_browser.browser, ui_browser.page, ui_browser.watch

HEADING = SECTION_HEADING
SENTENCE_START = SECTION_SENTENCE
QUESTION = "How many shares did the company repurchase, and for how much?"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rag import Assistant
    from ui.server import launch

    root = tmp_path_factory.mktemp("headings-browser")
    docs = root / "docs"
    docs.mkdir()
    sectioned_pdf(docs / "quarterly-report.pdf")
    assistant = Assistant(index_dir=root / "index")
    assert not assistant.index([docs]).failed
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False)
    yield url
    app.close()


def test_a_pdf_heading_is_not_glued_to_the_answer_or_its_highlight(page: Page, watch: Watch) -> None:
    ask(page, QUESTION)
    answer = last_answer_text(page)
    assert answer.startswith(SENTENCE_START), answer
    assert HEADING not in answer, answer
    source = page.locator("#rag-chat .rag-sources").last.locator(".rag-source").first
    assert "quarterly-report.pdf" in source.locator(".rag-source-head").inner_text()
    marked = source.locator("mark").first
    marked.wait_for(state="visible")
    quoted = marked.inner_text().strip()
    assert quoted.startswith(SENTENCE_START), quoted
    assert HEADING not in quoted, quoted
    shot(page, "pdf-heading")
    watch.assert_clean()
