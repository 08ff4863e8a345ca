"""Show me where (issue 13): a document's text and pages from code, `rag show`, and the viewer's routes.

The browser half (click a source, see the spot highlighted) is in tests/test_viewer_browser.py.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rag import Assistant, InputError

from .conftest import SEED_QUESTION, write
from .test_pdf import _paragraph_pdf

PDF_SENTENCE = (
    "The lighthouse keeper of Vardholm logs the passing ships in a green ledger every evening at dusk. "
) * 2
PDF_QUESTION = "Where does the lighthouse keeper of Vardholm log the passing ships?"
PAYLOAD = '<script>window.__pwned=1</script><img src="http://127.0.0.2:9/leak.png" onerror="window.__pwned=2">'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def viewer_index(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed index plus a PDF and an HTML file full of payloads."""
    root = tmp_path_factory.mktemp("viewer")
    index = root / "index"
    shutil.copytree(seed_index, index)
    docs = root / "docs"
    _paragraph_pdf(docs / "lighthouse.pdf", ["Harbour notes.", PDF_SENTENCE])
    shown = PAYLOAD.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # text that reads as markup
    body = f"<h1>Kiln notes</h1><p>The Ostrava kiln fires at 1400 degrees. {shown}</p>{PAYLOAD}"
    write(docs / "evil.html", f"<html><body>{body}</body></html>")
    report = Assistant(index_dir=index).index([docs])
    assert not report.failed, report.failed
    return index


def test_citation_offsets_point_into_document_text(viewer_index: Path) -> None:
    assistant = Assistant(index_dir=viewer_index)
    for question in (SEED_QUESTION, PDF_QUESTION):
        answer = assistant.ask(question)
        assert answer.answered
        for c in answer.citations:
            text = assistant.document_text(c.source)
            assert text[c.start : c.end] == c.text
            assert all(text[a:b] in c.text for a, b in c.highlights)


def test_pages_render_as_png_cached_in_the_index(viewer_index: Path) -> None:
    assistant = Assistant(index_dir=viewer_index)
    answer = assistant.ask(PDF_QUESTION)
    cited = answer.citations[0]
    assert cited.source == "lighthouse.pdf" and cited.page == 1
    page, boxes = assistant.locate(cited.source, *cited.highlights[0])
    assert page == 1 and boxes, "the quoted sentence has boxes on its page"
    png = assistant.render_page("lighthouse.pdf", 1)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    cache = list((viewer_index / "pages").glob("*.png"))
    assert len(cache) == 1 and cache[0].read_bytes() == png
    assert assistant.render_page("lighthouse.pdf", 1) == png
    with pytest.raises(InputError, match="has 1 page"):
        assistant.render_page("lighthouse.pdf", 2)
    with pytest.raises(InputError, match="not in the index"):
        assistant.render_page("../../etc/passwd", 1)
    with pytest.raises(InputError, match="no pages"):
        assistant.render_page("evil.html", 1)


def test_rag_show_prints_the_span_in_context(viewer_index: Path) -> None:
    assistant = Assistant(index_dir=viewer_index)
    c = Assistant(index_dir=viewer_index).ask(SEED_QUESTION).citations[0]
    rag = [sys.executable, "-m", "rag.cli"]
    shown = subprocess.run(
        [*rag, "show", f"{c.source}:{c.start}-{c.end}", "--index", str(viewer_index), "--context", "50"],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert f">>>{c.text}<<<" in shown.stdout
    text = assistant.document_text(c.source)
    assert text[max(0, c.start - 50) : c.start] in shown.stdout
    missing = subprocess.run(
        [*rag, "show", "nope.txt:1-5", "--index", str(viewer_index)], capture_output=True, text=True
    )
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "not in the index" in missing.stderr
    outside = subprocess.run(
        [*rag, "show", f"{c.source}:5-99999999", "--index", str(viewer_index)], capture_output=True, text=True
    )
    assert outside.returncode == 1 and "not inside" in outside.stderr and "Traceback" not in outside.stderr


def test_viewer_routes_serve_only_indexed_documents_and_escape_them(viewer_index: Path) -> None:
    from ui.server import launch
    from ui.viewer import doc_id, view_url

    assistant = Assistant(index_dir=viewer_index)
    app, url = launch(assistant, "127.0.0.1", free_port(), block=False)
    try:
        base = url.rstrip("/")
        answer = assistant.ask("At what temperature does the Ostrava kiln fire?")
        c = answer.citations[0]
        assert c.source == "evil.html"
        page = httpx.get(base + view_url(c.source, c.start, c.end, c.highlights))
        assert page.status_code == 200
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.text and "<script>window" not in page.text
        assert 'src="http' not in page.text and "<img" not in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]  # loads nothing from elsewhere
        quoted = re.findall(r'<mark class="quote">(.*?)</mark>', page.text, re.S)
        assert quoted and "1400 degrees" in "".join(quoted)
        for bad in ("/rag/view/0123456789abcdef0123", "/rag/view/..%2F..%2Fetc%2Fpasswd", "/rag/file/evil.html"):
            assert httpx.get(base + bad).status_code == 404, bad
        assert httpx.get(f"{base}/rag/page/{doc_id('lighthouse.pdf')}/1.png").headers["content-type"] == "image/png"
        download = httpx.get(f"{base}/rag/file/{doc_id('evil.html')}")
        assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    finally:
        app.close()


def test_viewer_needs_the_login(viewer_index: Path) -> None:
    from ui.server import launch
    from ui.viewer import doc_id

    app, url = launch(Assistant(index_dir=viewer_index), "127.0.0.1", free_port(), block=False, auth=("ann", "pw"))
    try:
        base = url.rstrip("/")
        ident = doc_id("lighthouse.pdf")
        for path in (f"/rag/view/{ident}?start=0&end=5", f"/rag/page/{ident}/1.png", f"/rag/file/{ident}"):
            assert httpx.get(base + path).status_code == 401, path
        with httpx.Client() as client:
            assert client.post(f"{base}/login", data={"username": "ann", "password": "pw"}).status_code == 200
            assert client.get(f"{base}/rag/page/{ident}/1.png").status_code == 200
    finally:
        app.close()


def test_page_cache_drops_the_least_recently_used_page_first(
    viewer_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README: pages are cached as PNG in <index>/pages/ up to a limit, least recently used dropped first.
    Three renderings (three widths) under a limit that holds any two: the one not used since goes."""
    import rag.originals

    index = tmp_path / "index"
    shutil.copytree(viewer_index, index, ignore=shutil.ignore_patterns("pages"))
    assistant = Assistant(index_dir=index)
    pages = index / "pages"
    widths = (300, 400, 500)
    sizes = {w: len(assistant.render_page("lighthouse.pdf", 1, width=w)) for w in widths}
    shutil.rmtree(pages)
    monkeypatch.setattr(rag.originals, "PAGE_CACHE_BYTES", sum(sizes.values()) - 1)

    def cached() -> set[int]:
        return {w for w in widths if any(p.stat().st_size == sizes[w] for p in pages.glob("*.png"))}

    assert len(set(sizes.values())) == 3, sizes  # told apart by size below
    first = assistant.render_page("lighthouse.pdf", 1, width=300)
    assistant.render_page("lighthouse.pdf", 1, width=400)
    assert cached() == {300, 400}
    assert assistant.render_page("lighthouse.pdf", 1, width=300) == first  # from the cache: now the recent one
    assistant.render_page("lighthouse.pdf", 1, width=500)  # over the limit: 400 was used least recently
    assert cached() == {300, 500}
    assert sum(p.stat().st_size for p in pages.glob("*.png")) <= rag.originals.PAGE_CACHE_BYTES


def test_pages_larger_than_200_inches_are_not_rendered(tmp_path: Path) -> None:
    """The README: pages up to 200 x 200 inches are shown; a larger one is refused in one line, not rendered."""
    from reportlab.pdfgen import canvas

    from rag.originals import MAX_PAGE_POINTS

    assert MAX_PAGE_POINTS == 200 * 72
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, inches in (("poster.pdf", 200), ("banner.pdf", 201)):
        pdf = canvas.Canvas(str(docs / name), pagesize=(inches * 72, 10 * 72))
        pdf.setFont("Helvetica", 40)
        pdf.drawString(72, 360, f"The Vardholm harbour banner is {inches} inches wide and shows the tide times.")
        pdf.save()
    assistant = Assistant(index_dir=tmp_path / "index")
    assert not assistant.index([docs]).failed
    assert assistant.render_page("poster.pdf", 1, width=200).startswith(b"\x89PNG")
    with pytest.raises(InputError, match=r"page 1 of banner\.pdf is 14472 x 720 points: too large to show"):
        assistant.render_page("banner.pdf", 1, width=200)
