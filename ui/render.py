"""HTML for the web chat: answers, their sources, refusals, the documents table and index statistics.

Every piece of document text and every file name goes through :func:`rag.escape_html` before it is
put into markup, so a document containing ``<script>`` or ``<img onerror=...>`` is shown as text.
The chat renders these strings as HTML (Markdown off), so nothing else in them is interpreted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rag import escape_html

if TYPE_CHECKING:
    from rag import Answer, Citation, DocumentRecord, Passage

_MARKER = re.compile(r"\[(\d{1,3})\]")

#: How many passages a refusal shows.
CLOSEST_PASSAGES = 3


def question_html(question: str) -> str:
    """The user's question as it appears in the chat."""
    return f'<div class="rag-question">{escape_html(question)}</div>'


def pending_html() -> str:
    """Shown while the answer is being looked up."""
    return '<div class="rag-pending">Searching the documents…</div>'


def answer_text_html(text: str) -> str:
    """Answer text (complete or streamed so far) with its ``[n]`` markers emphasised."""
    escaped = escape_html(text)
    return _MARKER.sub(r'<span class="rag-cite">[\1]</span>', escaped)


def answer_html(answer: Answer) -> str:
    """The final answer: quoted sentences with markers, or a refusal that looks like one; then its note."""
    note = getattr(answer, "note", None)  # e.g. why a generated answer fell back to quoted sentences
    tail = f'<div class="rag-note">ℹ {escape_html(str(note))}</div>' if note else ""
    if not answer.answered:
        return (
            '<div class="rag-refusal"><span class="rag-refusal-label">⚠ Not in the documents</span>'
            f'<div class="rag-refusal-text">{escape_html(answer.text)}</div></div>{tail}'
        )
    return f'<div class="rag-answer">{answer_text_html(answer.text)}</div>{tail}'


def error_html(message: str) -> str:
    """A problem the user can act on (empty question, no index...)."""
    return f'<div class="rag-error"><span class="rag-error-label">⛔ Cannot answer</span> {escape_html(message)}</div>'


def sources_title(answer: Answer) -> str:
    """Title of the collapsible block under an answer."""
    if answer.answered:
        count = len(answer.citations)
        return f"Sources ({count})"
    count = min(len(answer.passages), CLOSEST_PASSAGES)
    return f"Closest passages ({count})" if count else "No passages found"


def sources_html(answer: Answer) -> str:
    """The cited passages of an answer, or the closest passages of a refusal."""
    if answer.answered:
        items = [_citation_html(c) for c in answer.citations]
        css = "rag-sources"
    else:
        items = [_passage_html(p) for p in answer.passages[:CLOSEST_PASSAGES]]
        css = "rag-sources rag-closest"
    if not items:
        return '<div class="rag-sources"><div class="rag-empty">The index returned no passages.</div></div>'
    return f'<div class="{css}">{"".join(items)}</div>'


def _citation_html(c: Citation) -> str:
    head = _head_html(c.source, c.section, c.score, f"[{c.n}]")
    body = highlighted_html(c.text, c.start, c.highlights)
    return f'<div class="rag-source" data-n="{int(c.n)}">{head}<div class="rag-passage">{body}</div></div>'


def _passage_html(p: Passage) -> str:
    head = _head_html(p.source, p.section, p.score, "•")
    return f'<div class="rag-source">{head}<div class="rag-passage">{escape_html(p.text)}</div></div>'


def _head_html(source: str, section: str, score: float, label: str) -> str:
    where = f'<span class="rag-section">{escape_html(section)}</span>' if section else ""
    return (
        f'<div class="rag-source-head"><span class="rag-n">{escape_html(label)}</span>'
        f'<span class="rag-file">{escape_html(source)}</span>{where}'
        f'<span class="rag-score">score {float(score):.2f}</span></div>'
    )


def highlighted_html(text: str, start: int, highlights: Iterable[Sequence[int]]) -> str:
    """``text`` (which begins at offset ``start`` of its document) escaped, with the highlight spans in <mark>.

    Highlights are absolute document offsets; spans outside the text are clipped, overlapping ones merged.
    """
    spans: list[list[int]] = []
    for span in sorted((int(a) - start, int(b) - start) for a, b in highlights):
        a, b = max(span[0], 0), min(span[1], len(text))
        if a >= b:
            continue
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    out: list[str] = []
    pos = 0
    for a, b in spans:
        out.append(escape_html(text[pos:a]))
        out.append(f"<mark>{escape_html(text[a:b])}</mark>")
        pos = b
    out.append(escape_html(text[pos:]))
    return "".join(out)


# ------------------------------------------------------------------ documents tab


def size_text(size: int) -> str:
    """A byte count for people: 512 B, 3.4 KB, 12.0 MB."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - loop always returns


def time_text(timestamp: float) -> str:
    """A UNIX time as local 'YYYY-MM-DD HH:MM' (empty when unknown)."""
    if not timestamp:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def documents_table_html(records: Sequence[DocumentRecord], uploaded: Iterable[str] = ()) -> str:
    """The indexed files: name, type, chunks, size, when added; uploaded ones are marked."""
    if not records:
        return '<div class="rag-docs-empty">No documents are indexed yet: add some above.</div>'
    mine = set(uploaded)
    rows = []
    for r in sorted(records, key=lambda r: r.source.casefold()):
        origin = "uploaded" if r.source in mine else "folder"
        rows.append(
            "<tr>"
            f'<td class="rag-doc-name">{escape_html(r.source)}</td>'
            f"<td>{escape_html(r.format)}</td>"
            f'<td class="rag-num">{int(r.chunks)}</td>'
            f'<td class="rag-num">{escape_html(size_text(r.size))}</td>'
            f"<td>{escape_html(time_text(r.added_at))}</td>"
            f"<td>{origin}</td>"
            "</tr>"
        )
    head = (
        '<tr><th>Name</th><th>Type</th><th class="rag-num">Chunks</th><th class="rag-num">Size</th>'
        "<th>Added</th><th>From</th></tr>"
    )
    return f'<table class="rag-docs"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def stats_html(stats: Mapping[str, Any] | None, index_dir: str) -> str:
    """Files, chunks and model of the index (or a note that there is none yet)."""
    where = f'<span class="rag-stat-path">{escape_html(index_dir)}</span>'
    if stats is None:
        return f'<div class="rag-stats">No index yet at {where}: the first upload creates it.</div>'
    model = str(stats.get("embedding_model") or "unknown model")
    return (
        '<div class="rag-stats">'
        f'<span class="rag-stat"><b>{int(stats.get("documents", 0))}</b> files</span>'
        f'<span class="rag-stat"><b>{int(stats.get("chunks", 0))}</b> chunks</span>'
        f'<span class="rag-stat">model <b>{escape_html(model)}</b></span>'
        f'<span class="rag-stat">index {where}</span>'
        "</div>"
    )


def upload_status_html(lines: Sequence[tuple[str, str]]) -> str:
    """The outcome of an upload, one line per file: ``(kind, text)`` with kind ok / same / error / info."""
    if not lines:
        return ""
    items = "".join(f'<li class="rag-status-{escape_html(kind)}">{escape_html(text)}</li>' for kind, text in lines)
    return f'<ul class="rag-status">{items}</ul>'
