"""Show me where (issue 13), in Chromium: a source's "show in document" opens the document at the cited
spot, the quoted sentence highlighted and in view; a PDF opens at its page with the quoted lines boxed;
a document full of payloads shows them as text and loads nothing. Screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import Assistant

from .conftest import SEED_QUESTION
from .test_ui_browser import ARTIFACTS, WAIT_MS, Watch, ask, browser, open_page  # noqa: F401 - fixtures
from .test_viewer import PDF_QUESTION, viewer_index  # noqa: F401 - fixture

pytest.importorskip("playwright")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def viewer_app(viewer_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:  # noqa: F811
    from ui.server import launch

    index = tmp_path_factory.mktemp("viewer-browser") / "index"
    shutil.copytree(viewer_index, index)
    app, url = launch(Assistant(index_dir=index), "127.0.0.1", free_port(), block=False)
    yield url, index
    app.close()


@pytest.fixture()
def page(browser, viewer_app, request: pytest.FixtureRequest):  # noqa: F811
    watch = Watch()
    yield from open_page(browser, viewer_app[0], watch, request)


def _open_viewer(page, marker: bool = True):
    """Open the viewer panel beside the chat from the last answer's ``[1]`` (or its source's link)."""
    if marker:
        page.locator("#rag-chat .rag-answer .rag-cite").last.click()
    else:
        page.locator("#rag-chat .rag-sources").last.locator("a.rag-view").first.click()
    page.locator("#rag-viewer:not([hidden]) iframe").wait_for(state="visible")
    frame = page.frame_locator("#rag-viewer iframe")
    frame.locator("body header").wait_for()
    return frame


def test_marker_opens_the_viewer_beside_the_chat_with_the_sentence_highlighted_in_view(page, viewer_app) -> None:
    ask(page, SEED_QUESTION)
    viewer = _open_viewer(page)
    mark = viewer.locator("mark.quote").first
    mark.wait_for(state="visible")
    assistant = Assistant(index_dir=viewer_app[1])
    cited = assistant.ask(SEED_QUESTION).citations[0]
    a, b = cited.highlights[0]
    assert mark.inner_text() == assistant.document_text(cited.source)[a:b]
    seen = mark.evaluate("e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom, innerHeight]; }")
    assert seen[0] >= 0 and seen[1] <= seen[2], f"the quoted sentence is not in view: {seen}"
    assert viewer.locator(".passage").count() >= 1
    panel = page.locator("#rag-viewer").bounding_box()
    chat = page.locator("#rag-chat").bounding_box()
    assert panel is not None and chat is not None and panel["x"] > chat["x"], "the panel sits beside the chat"
    page.screenshot(path=str(ARTIFACTS / "viewer-text.png"))
    page.keyboard.press("Escape")
    page.locator("#rag-viewer").wait_for(state="hidden")


def test_on_a_phone_the_viewer_takes_the_whole_screen(browser, viewer_app) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844})
    phone = context.new_page()
    phone.set_default_timeout(WAIT_MS)
    try:
        phone.goto(viewer_app[0])
        phone.wait_for_selector("#rag-question textarea")
        ask(phone, SEED_QUESTION)
        _open_viewer(phone, marker=False).locator("mark.quote").first.wait_for()
        box = phone.locator("#rag-viewer").bounding_box()
        assert box is not None and box["x"] <= 0 and box["x"] + box["width"] >= 390, box  # its border may stick out
        phone.screenshot(path=str(ARTIFACTS / "viewer-phone.png"))
    finally:
        context.close()


def test_a_pdf_citation_opens_its_page_with_the_quoted_lines_boxed(page, viewer_app) -> None:
    ask(page, PDF_QUESTION)
    viewer = _open_viewer(page)
    viewer.locator("#page img").wait_for()
    viewer.locator("#page img").evaluate(
        "img => img.complete && img.naturalWidth > 0 ? 1 : new Promise(ok => img.addEventListener('load', ok))"
    )
    assistant = Assistant(index_dir=viewer_app[1])
    cited = assistant.ask(PDF_QUESTION).citations[0]
    expected = [b for a, z in cited.highlights for b in assistant.locate(cited.source, a, z)[1]]
    drawn = viewer.locator("#page").evaluate(
        """() => [...document.querySelectorAll('#page .box')].map(b => {
            const page = document.querySelector('#page img').getBoundingClientRect(), r = b.getBoundingClientRect();
            return [(r.left - page.left) / page.width, (r.top - page.top) / page.height,
                    (r.right - page.left) / page.width, (r.bottom - page.top) / page.height];
        })"""
    )
    assert expected and len(drawn) == len(expected)
    for got, want in zip(drawn, expected, strict=True):
        assert all(abs(g - w) < 0.01 for g, w in zip(got, want, strict=True)), (got, want)
    assert "page 1 of 1" in viewer.locator(".bar").inner_text()
    page.screenshot(path=str(ARTIFACTS / "viewer-pdf.png"))


def test_payloads_in_a_document_are_text_and_load_nothing(page, viewer_app) -> None:
    from ui.viewer import view_url

    assistant = Assistant(index_dir=viewer_app[1])
    cited = assistant.ask("At what temperature does the Ostrava kiln fire?").citations[0]
    requests: list[str] = []
    viewer = page.context.new_page()
    viewer.on("request", lambda r: requests.append(r.url))
    dialogs: list[str] = []
    viewer.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    viewer.goto(viewer_app[0].rstrip("/") + view_url(cited.source, cited.start, cited.end, cited.highlights))
    viewer.locator("mark.quote").first.wait_for()
    assert "<script>window.__pwned=1</script>" in viewer.locator("#text").inner_text()
    assert viewer.evaluate("window.__pwned") is None and dialogs == []
    assert viewer.locator("#text img, #text script").count() == 0
    assert not [u for u in requests if "127.0.0.2" in u or "leak" in u], requests
    viewer.screenshot(path=str(ARTIFACTS / "viewer-html.png"))
