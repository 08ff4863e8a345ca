"""The document viewer: a cited spot shown in its document, highlighted.

Routes (added to the web chat's FastAPI app, behind its login like every other route):

- ``/rag/view/{id}?start=S&end=E&hl=A-B,C-D``: the document at the cited spot. Text documents (txt, md,
  HTML, DOCX) show their extracted text, escaped, with the passage ``[S, E)`` shaded and the quoted
  sentences (``hl``) marked more strongly, scrolled into view; PDFs and images show the page of the
  passage as an image with the quoted lines' boxes drawn over it, and page back/forward.
- ``/rag/page/{id}/{n}.png``: a page rendered on demand (cached in the index directory).
- ``/rag/file/{id}``: the original file, as a download.
- ``/rag/viewer.js``: the viewer's one script (the pages' Content-Security-Policy header allows no inline script).

Documents are named by ``id``, a hash of their source name computed from the index's own list: a
request can only reach files the index holds, never a path it supplies. Anything else is 404.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from rag import Assistant, RagError

from .escaping import escape_html

#: Most characters of a text document shown at once (around the cited spot).
TEXT_WINDOW = 200_000
#: Most quoted spans marked in one view, and most characters of the ``hl`` parameter read (an answer
#: quotes a few sentences; more is a hand-made address, and its extra spans are left out).
MAX_HIGHLIGHTS = 64
MAX_HL_CHARS = 2_000
_SPANS = re.compile(r"^\d{1,12}-\d{1,12}(,\d{1,12}-\d{1,12})*$")
#: The viewer's pages load nothing from elsewhere and run only the viewer's own script (sent as a header).
CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
#: Scrolls the quoted sentence (or the passage, or the first box) into view.
SCRIPT = """const spot = document.querySelector('mark.quote') || document.querySelector('.passage')
  || document.querySelector('.box');
if (spot) spot.scrollIntoView({block: 'center'});
"""


def doc_id(source: str) -> str:
    """The viewer's name for an indexed document (a hash of its source name)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:20]


def view_url(source: str, start: int, end: int, highlights: Any = ()) -> str:
    """The viewer's address for a cited span of ``source``."""
    spans = ",".join(f"{int(a)}-{int(b)}" for a, b in highlights)
    url = f"/rag/view/{doc_id(source)}?start={int(start)}&end={int(end)}"
    return url + (f"&hl={quote(spans)}" if spans else "")


def routes(assistant: Assistant) -> list[Any]:
    """The viewer's routes over ``assistant``'s index (Starlette routes). Their work (reading the index,
    extracting text, rendering pages) runs in worker threads, never on the server's event loop."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import HTMLResponse, Response, StreamingResponse
    from starlette.routing import Route

    def source_of(request: Any) -> str | None:
        wanted = str(request.path_params.get("doc", ""))
        try:
            records = assistant.sources()
        except RagError:
            return None
        return next((r.source for r in records if doc_id(r.source) == wanted), None)

    def not_found() -> Response:
        return Response("Not found: this document is not in the index.", status_code=404, media_type="text/plain")

    def html(text: str, status: int = 200) -> Response:
        return HTMLResponse(text, status_code=status, headers={"Content-Security-Policy": CSP})

    def view_sync(request: Any) -> Response:
        source = source_of(request)
        if source is None:
            return not_found()
        try:
            start, end = int(request.query_params.get("start", 0)), int(request.query_params.get("end", 0))
            spans = request.query_params.get("hl", "")
            highlights = parse_highlights(spans)
            page, boxes = assistant.locate(source, start, end)
            if page is not None:
                quoted = [b for a, z in highlights for b in assistant.locate(source, a, z)[1]] or boxes
                asked = int(request.query_params.get("page", page))
                pages = assistant.originals.page_count(source)
                kept = ",".join(f"{a}-{b}" for a, b in highlights)
                spot = f"start={start}&end={end}" + (f"&hl={quote(kept)}" if highlights else "")
                return html(page_html(source, asked, pages, quoted, page, spot))
            text = assistant.document_text(source)
        except (RagError, ValueError) as exc:
            return html(_shell(source, f'<p class="problem">{escape_html(str(exc))}</p>'), 422)
        return html(text_html(source, text, start, end, highlights))

    def page_sync(request: Any) -> Response:
        source = source_of(request)
        if source is None:
            return not_found()
        try:
            data = assistant.render_page(source, int(request.path_params["page"]))
        except (RagError, ValueError) as exc:
            return Response(str(exc), status_code=422, media_type="text/plain")
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    def original_sync(request: Any) -> Response:
        source = source_of(request)
        if source is None:
            return not_found()
        try:
            handle = assistant.originals.open(source)  # checked and sent through this one handle
        except RagError as exc:
            return Response(str(exc), status_code=410, media_type="text/plain")
        size = os.fstat(handle.fileno()).st_size
        name = source.rsplit("/", 1)[-1]
        headers = {
            "Content-Disposition": f"attachment; filename*=utf-8''{quote(name)}",
            "Content-Length": str(size),
        }
        return StreamingResponse(_blocks(handle), media_type=_media_type(name), headers=headers)

    async def view(request: Any) -> Response:
        return await run_in_threadpool(view_sync, request)

    async def page_png(request: Any) -> Response:
        return await run_in_threadpool(page_sync, request)

    async def original(request: Any) -> Response:
        return await run_in_threadpool(original_sync, request)

    async def script(request: Any) -> Response:
        return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "private, max-age=3600"})

    return [
        Route("/rag/view/{doc}", view),
        Route("/rag/page/{doc}/{page:int}.png", page_png),
        Route("/rag/file/{doc}", original),
        Route("/rag/viewer.js", script),
    ]


def _blocks(handle: BinaryIO) -> Iterator[bytes]:
    """The bytes of ``handle`` in blocks; closes it at the end (or when the download is abandoned)."""
    with handle:
        while block := handle.read(1 << 16):
            yield block


def _media_type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def parse_highlights(spans: str) -> list[tuple[int, int]]:
    """The quoted spans of an ``hl`` parameter (``A-B,C-D``): at most :data:`MAX_HIGHLIGHTS`, each
    number of at most 12 digits; anything malformed gives none."""
    if len(spans) > MAX_HL_CHARS:
        spans = spans[:MAX_HL_CHARS].rsplit(",", 1)[0]
    if not _SPANS.match(spans):
        return []
    out: list[tuple[int, int]] = []
    for piece in spans.split(",")[:MAX_HIGHLIGHTS]:
        a, b = piece.split("-")
        out.append((int(a), int(b)))
    return out


def text_html(source: str, text: str, start: int, end: int, highlights: list[Any]) -> str:
    """The text with the passage shaded and the quoted sentences marked (everything escaped).

    Linear in the pieces: each highlight adds one to a running count where it starts and takes one off
    where it ends, so a piece is quoted when the count over it is positive.
    """
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    lo = max(0, start - TEXT_WINDOW // 2)
    hi = min(len(text), lo + TEXT_WINDOW)
    clipped = [(max(lo, min(hi, int(x))), max(lo, min(hi, int(y)))) for x, y in highlights[:MAX_HIGHLIGHTS]]
    clipped = [(x, y) for x, y in clipped if x < y]
    cuts = sorted({lo, hi, start, end, *(x for span in clipped for x in span)})
    index = {cut: i for i, cut in enumerate(cuts)}
    depth = [0] * (len(cuts) + 1)
    for x, y in clipped:
        depth[index[x]] += 1
        depth[index[y]] -= 1
    parts = []
    covered = 0
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        covered += depth[i]
        piece = escape_html(text[a:b])
        if covered > 0:
            piece = f'<mark class="quote">{piece}</mark>'
        if start <= a and b <= end:
            piece = f'<span class="passage">{piece}</span>'
        parts.append(piece)
    before = "<p class='cut'>...</p>" if lo else ""
    after = "<p class='cut'>...</p>" if hi < len(text) else ""
    body = f'{before}<pre id="text">{"".join(parts)}</pre>{after}'
    return _shell(source, body)


def page_html(source: str, page: int, pages: int, boxes: list[Any], cited: int, spot: str = "") -> str:
    """A page image with the cited boxes over it (only on the cited page), and page back/forward
    (``spot``: the query of the cited span, kept in those links)."""
    page = max(1, min(page, max(pages, 1)))
    ident = doc_id(source)
    marks = "".join(
        f'<div class="box" style="left:{100 * x0:.2f}%;top:{100 * y0:.2f}%;'
        f'width:{100 * (x1 - x0):.2f}%;height:{100 * (y1 - y0):.2f}%"></div>'
        for x0, y0, x1, y1 in (boxes if page == cited else [])
    )
    nav = []
    for label, target in (("previous page", page - 1), ("next page", page + 1)):
        if 1 <= target <= pages:
            nav.append(f'<a class="nav" href="?{escape_html(spot)}&page={target}">{label}</a>')
    body = (
        f'<div class="bar">page {page} of {pages} {" ".join(nav)}</div>'
        f'<div id="page"><img src="/rag/page/{ident}/{page}.png" alt="page {page} of {escape_html(source)}">'
        f"{marks}</div>"
    )
    return _shell(source, body)


def _shell(source: str, body: str) -> str:
    name = escape_html(source)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name}</title><style>
body {{ font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1f2328; background: #fff; }}
header {{ position: sticky; top: 0; background: #f6f8fa; border-bottom: 1px solid #d0d7de; padding: 8px 14px; }}
header a {{ margin-left: 12px; }}
pre {{ white-space: pre-wrap; word-wrap: break-word; font: inherit; margin: 14px; }}
.passage {{ background: #fff3bf; }}
mark.quote {{ background: #ffd43b; color: inherit; outline: 2px solid #f08c00; }}
#page {{ position: relative; margin: 10px; }}
#page img {{ width: 100%; height: auto; display: block; border: 1px solid #d0d7de; }}
.box {{ position: absolute; background: rgba(255, 212, 59, 0.35); outline: 2px solid #f08c00; }}
.bar {{ margin: 10px 14px 0; }} .problem {{ margin: 14px; color: #b42318; }} .cut {{ margin: 0 14px; color: #57606a; }}
</style></head><body><header><strong>{name}</strong>
<a href="/rag/file/{doc_id(source)}">download the original</a></header>{body}
<script src="/rag/viewer.js"></script></body></html>"""
