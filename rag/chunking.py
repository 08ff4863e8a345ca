"""Chunking: token-aware splitting on paragraph and sentence boundaries, with exact offsets."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

from .boxes import span_layout
from .documents import Document
from .sections import caption_paragraphs
from .text import file_stem

#: Paragraphs first, then lines, sentences, clauses, words; never mid-word unless a word is huge.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ": ", ", ", " ", ""]
_NON_BLANK = re.compile(r"\S")
#: Sections longer than this are cut into blocks (at a paragraph, line, sentence or word break) before
#: splitting, so that a huge one-line file costs time and memory in proportion to its size.
BLOCK_CHARS = 100_000
#: Runs of this many characters without white space (base64, minified data) are cut by the tokenizer
#: directly: the splitter would fall back to single characters and measure each one.
LONG_RUN_CHARS = 1000
_LONG_RUN = re.compile(rf"\S{{{LONG_RUN_CHARS},}}")


def chunk_title(source: str, section: str, document_title: str = "", identity: str = "") -> str:
    """A chunk's context: the words of its file name (and the document's own title and identifying lines,
    such as a report's place, date and number), then its section heading."""
    words = " ".join(re.sub(r"[_\-]+", " ", file_stem(source)).split())
    if document_title and document_title.lower() not in words.lower():
        words = f"{words} - {document_title}"
    if identity:
        words = f"{words} ({identity})"
    return f"{words}: {section}" if section and section != words else words


class Tokenizer(Protocol):
    """What the chunker needs of a tokenizer: counts and character spans of word pieces."""

    def count(self, text: str) -> int:
        """Number of word pieces in ``text``, without special tokens."""

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each word piece of ``text``, without special tokens."""


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``document.text[start:end] == text``."""

    text: str
    start: int
    end: int
    section: str
    #: PDFs and images: the page and boxes behind the chunk (see :func:`rag.boxes.span_layout`).
    layout: str = ""
    #: The context line embedded and keyword-indexed with the chunk (file name, document title, section).
    title: str = ""


class Chunker:
    """Splits documents into chunks of at most ``max_tokens`` word pieces (special tokens included)."""

    def __init__(
        self, tokenizer: Tokenizer, chunk_tokens: int, overlap: int, max_tokens: int, titles: bool = True
    ) -> None:
        self.tokenizer = tokenizer
        self.titles = titles
        self.budget = max(8, min(chunk_tokens, max_tokens - 2))  # [CLS] and [SEP] take two places
        self.overlap = min(overlap, self.budget // 2)
        self.max_tokens = max_tokens
        #: Longest chunk cut from a run without white space (a run of 1000 letters is one [UNK] piece).
        self.max_run_chars = 8 * self.budget
        self._splitter: Callable[[str], list[str]] | None = None

    def _split(self, text: str) -> list[str]:
        if self._splitter is None:
            from langchain_text_splitters import RecursiveCharacterTextSplitter

            splitter = RecursiveCharacterTextSplitter(
                separators=SEPARATORS,
                keep_separator="end",
                chunk_size=self.budget,
                chunk_overlap=self.overlap,
                length_function=self.tokenizer.count,
                strip_whitespace=True,
            )
            self._splitter = splitter.split_text
        return self._splitter(text)

    def embedding_input(self, source: str, chunk: Chunk) -> str:
        """The text embedded for a chunk: its title line (file name, section) when it fits, then the chunk."""
        if not self.titles:
            return chunk.text
        title = chunk.title or chunk_title(source, chunk.section)
        room = self.max_tokens - 2 - self.tokenizer.count(chunk.text) - 1
        if not title or room < 4:
            return chunk.text
        if self.tokenizer.count(title) > room:
            spans = self.tokenizer.spans(title)[:room]
            title = title[: spans[-1][1]]
        return f"{title}\n{chunk.text}"

    def chunk(self, document: Document) -> list[Chunk]:
        """Chunks of ``document`` in order, each with its offsets and section title.

        Sections are chunked one by one, so that no chunk straddles a heading.
        """
        text = document.text
        chunks: list[Chunk] = []
        # Page text (PDFs, images) has no headings to cut at: each chunk's title names the caption above
        # it, and a caption or closing line on its own joins its neighbour. (Other formats are cut at
        # their headings, which stay with the text under them.)
        paged = bool(document.runs)
        captions = caption_paragraphs(text) if paged else []
        caption_starts = [c.start for c in captions]
        bounds = sorted({0, len(text), *(s.start for s in document.sections if 0 < s.start < len(text))})
        for lo, hi in pairwise(bounds):
            pieces = self._section_spans(text[lo:hi])
            spans = [span for a, b in pieces for span in self._enforce_limit(text, lo + a, lo + b)]
            for x, y in self._merge_small(text, spans) if paged else spans:
                layout = span_layout(document.runs, document.page_at(x), x, y) if paged else ""
                section = document.section_at(x)
                title = chunk_title(document.source, section, document.title, document.identity)
                i = bisect.bisect_right(caption_starts, x) - 1
                if i >= 0 and captions[i].title not in title:
                    title = f"{title} - {captions[i].title}"
                chunks.append(Chunk(text[x:y], x, y, section, layout, title))
        return chunks

    def _merge_small(self, text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Spans of one section with each small one (a heading, a caption, a closing line) joined to its
        next neighbour, or else its previous one, when the two fit the model together."""
        small = max(8, self.budget // 4)

        def fits(a: int, b: int) -> bool:
            return b - a <= self.max_run_chars and self.tokenizer.count(text[a:b]) + 2 <= self.max_tokens

        out: list[tuple[int, int]] = []
        pending: tuple[int, int] | None = None
        for x, y in spans:
            if pending is not None:
                if fits(pending[0], y):
                    x = pending[0]
                else:
                    out.append(pending)
                pending = None
            # Every word is at least one word piece: only a span of few words needs counting.
            if len(text[x:y].split()) < small and self.tokenizer.count(text[x:y]) < small:
                pending = (x, y)
            else:
                out.append((x, y))
        if pending is not None:
            if out and fits(out[-1][0], pending[1]):
                out[-1] = (out[-1][0], pending[1])
            else:
                out.append(pending)
        return out

    def _section_spans(self, text: str) -> list[tuple[int, int]]:
        """Spans of one section: block by block, long runs without white space cut by the tokenizer."""
        spans: list[tuple[int, int]] = []
        for lo, hi in _blocks(text, BLOCK_CHARS):
            pos = lo
            for run in _LONG_RUN.finditer(text, lo, hi):
                spans += [(pos + a, pos + b) for a, b in self._segment_spans(text[pos : run.start()])]
                spans += self._run_spans(text, run.start(), run.end())
                pos = run.end()
            spans += [(pos + a, pos + b) for a, b in self._segment_spans(text[pos:hi])]
        return spans

    def _run_spans(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """Consecutive spans over ``text[start:end]`` (no white space in it) of at most ``budget`` word pieces
        and ``max_run_chars`` characters, cut at word-piece ends; the text is tokenized window by window."""
        spans: list[tuple[int, int]] = []
        limit = self.max_run_chars
        pos = start
        while pos < end:
            stop = min(end, pos + 4 * limit)
            usable = stop if stop == end else stop - limit // 2  # the window may cut the last word short
            first, last, pieces = pos, pos, 0
            for _, piece_end in self.tokenizer.spans(text[pos:stop]):
                piece_end += pos
                if piece_end > usable:
                    break
                if pieces == self.budget or piece_end - first > limit:
                    if last > first:
                        spans.append((first, last))
                        first, pieces = last, 0
                    while piece_end - first > limit:  # one piece longer than a chunk (an [UNK] run)
                        spans.append((first, first + limit))
                        first += limit
                last, pieces = piece_end, pieces + 1
            if stop == end:
                last = end  # characters after the last piece (dropped by the tokenizer's normaliser)
                while last - first > limit:
                    spans.append((first, first + limit))
                    first += limit
                spans.append((first, last))
                break
            if first == pos:  # nothing cut in this window (no pieces): cut by characters
                first = min(usable, pos + limit)
                spans.append((pos, first))
            pos = first  # the chunk in progress starts the next window
        return [(a, b) for a, b in spans if a < b]

    def _segment_spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each splitter piece of ``text``, located exactly and in order."""
        spans: list[tuple[int, int]] = []
        if not text.strip():
            return spans
        prev_start, covered = -1, 0
        for piece in self._split(text):
            if not piece.strip():
                continue
            # Pieces come in order: each starts after the previous one's start and no later than the
            # first non-blank character after the text covered so far. Repetitive text holds the piece
            # several times there; take the last, so that no text is left out between chunks.
            blank = _NON_BLANK.search(text, covered)
            latest = blank.start() if blank else len(text)
            start = text.rfind(piece, prev_start + 1, latest + len(piece))
            end = start + len(piece)
            if start < 0:
                # Taking the last occurrence ran ahead of the splitter: the piece repeats text at or
                # before the previous chunk. Keep only what it adds, so that chunks stay in order.
                start = text.rfind(piece, 0, latest + len(piece))
                if start < 0:  # not expected: the splitter keeps all text; take the next occurrence
                    start = text.find(piece, prev_start + 1)
                end = start + len(piece)
                if start < 0 or end <= covered:
                    continue
                blank = _NON_BLANK.search(text, prev_start + 1, end)
                if blank is None:
                    continue
                start = max(start, blank.start())
            prev_start, covered = start, max(covered, end)
            spans.append((start, end))
        return spans

    def _enforce_limit(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """Cut a span whose word pieces exceed the model limit at token boundaries."""
        piece = text[start:end]
        if self.tokenizer.count(piece) + 2 <= self.max_tokens:
            return [(start, end)]
        spans = self.tokenizer.spans(piece)
        out: list[tuple[int, int]] = []
        limit = self.max_tokens - 2
        for i in range(0, len(spans), limit):
            group = spans[i : i + limit]
            a = start + group[0][0]
            b = start + group[-1][1]
            while a < b and text[a].isspace():
                a += 1
            if a < b:
                out.append((a, b))
        return out


def _blocks(text: str, size: int) -> list[tuple[int, int]]:
    """``text`` cut into pieces of at most ``size`` characters, at the strongest break in each piece's second half."""
    blocks: list[tuple[int, int]] = []
    pos = 0
    while len(text) - pos > size:
        limit = pos + size
        cut = limit  # no break at all: a run without white space, cut anywhere
        for separator in ("\n\n", "\n", ". ", " "):
            found = text.rfind(separator, pos + size // 2, limit)
            if found >= 0:
                cut = found + len(separator)
                break
        blocks.append((pos, cut))
        pos = cut
    blocks.append((pos, len(text)))
    return blocks
