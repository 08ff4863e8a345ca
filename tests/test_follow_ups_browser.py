"""The web chat in a real browser (Debian's Chromium driven by Playwright) over two quarterly filings: a
follow-up keeps the period of the question before it (also after a reload, from the chat kept in the
browser), and the Documents tab shows what each document is taken to be, escaped. The app is started and
driven as in tests/test_ui_browser.py, whose helpers this uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import test_ui_browser as ui_browser
from .statements import TURNS, write_statements
from .test_ui_browser import Page, Watch, ask, free_port, last_answer_text, shot

# The browser, each test's page and its watch, as in tests/test_ui_browser.py (the page opens this module's app_url).
browser, page, watch = ui_browser.browser, ui_browser.page, ui_browser.watch

#: A report whose first page names it, in part with markup: shown as text in the Documents tab.
REPORT_TITLE = "Aviation Accident Final Report"
REPORT_LOCATION = "Quillmere <b>harbour</b> <img src=x onerror=\"window.__xss='identity';alert(1)\">"


def report_pdf(path: Path) -> None:
    """A two-page accident report: page 1 names it (title, place, number), page 2 holds its fields."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    pages = [
        (REPORT_TITLE, [("Location:", REPORT_LOCATION), ("Accident Number:", "QLM24LA101")]),
        ("Meteorological Information", [("Wind Speed/Gusts:", "12 knots"), ("Altimeter Setting:", "30.02 inches Hg")]),
    ]
    for heading, rows in pages:
        c.setFont("Helvetica-Bold", 16)
        c.drawString(54, 780, heading)
        c.setFont("Helvetica", 10)
        for i, (label, value) in enumerate(rows):
            c.drawString(54, 740 - 18 * i, label)
            c.drawString(180, 740 - 18 * i, value)
        c.showPage()
    c.save()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rag import Assistant
    from ui.server import launch

    root = tmp_path_factory.mktemp("follow-ups-browser")
    docs = write_statements(root / "docs")
    report_pdf(docs / "report-qlm.pdf")
    assistant = Assistant(index_dir=root / "index")
    assert not assistant.index([docs]).failed
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False)
    yield url
    app.close()


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


def test_the_documents_tab_shows_what_each_document_is_taken_to_be(page: Page, watch: Watch) -> None:
    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#rag-documents table")
    row = page.locator("#rag-documents tr", has_text="report-qlm.pdf")
    identity = row.locator(".rag-doc-identity")
    shown = identity.inner_text()
    # What `rag sources` prints after "is:", as text: the markup is shown, not run or drawn.
    assert shown.startswith(f"is: {REPORT_TITLE}; Location: {REPORT_LOCATION}"), shown
    assert "Accident Number: QLM24LA101" in shown
    assert page.locator("#rag-documents img, #rag-documents b").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    # A document that says nothing about itself beyond its name gets no such line.
    assert page.locator("#rag-documents tr", has_text="apple-10q-2023-q3.md").locator(".rag-doc-identity").count() == 0
    identity.scroll_into_view_if_needed()
    shot(page, "documents-identity")
    watch.assert_clean()
