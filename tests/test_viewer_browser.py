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
    from ui.app import launch

    index = tmp_path_factory.mktemp("viewer-browser") / "index"
    shutil.copytree(viewer_index, index)
    app, url = launch(Assistant(index_dir=index), "127.0.0.1", free_port(), block=False)
    yield url, index
    app.close()


@pytest.fixture()
def page(browser, viewer_app, request: pytest.FixtureRequest):  # noqa: F811
    watch = Watch()
    yield from open_page(browser, viewer_app[0], watch, request)


def _open_viewer(page) -> object:
    """Click the last answer's first "show in document" link; the viewer opens in a new tab."""
    link = page.locator("#rag-chat .rag-sources").last.locator("a.rag-view").first
    with page.context.expect_page(timeout=WAIT_MS) as opened:
        link.click()
    viewer = opened.value
    viewer.wait_for_load_state()
    return viewer


def test_show_in_document_highlights_the_quoted_sentence_in_view(page, viewer_app) -> None:
    ask(page, SEED_QUESTION)
    viewer = _open_viewer(page)
    mark = viewer.locator("mark.quote").first
    mark.wait_for(state="visible")
    assistant = Assistant(index_dir=viewer_app[1])
    cited = assistant.ask(SEED_QUESTION).citations[0]
    a, b = cited.highlights[0]
    assert mark.inner_text() == assistant.document_text(cited.source)[a:b]
    box = mark.bounding_box()
    height = viewer.evaluate("window.innerHeight")
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, (box, height)
    assert viewer.locator(".passage").count() >= 1
    viewer.screenshot(path=str(ARTIFACTS / "viewer-text.png"))


def test_a_pdf_citation_opens_its_page_with_the_quoted_lines_boxed(page, viewer_app) -> None:
    ask(page, PDF_QUESTION)
    viewer = _open_viewer(page)
    viewer.wait_for_function("() => document.querySelector('#page img')?.naturalWidth > 0", timeout=WAIT_MS)
    assistant = Assistant(index_dir=viewer_app[1])
    cited = assistant.ask(PDF_QUESTION).citations[0]
    expected = [b for a, z in cited.highlights for b in assistant.locate(cited.source, a, z)[1]]
    drawn = viewer.evaluate(
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
    viewer.screenshot(path=str(ARTIFACTS / "viewer-pdf.png"))


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
