"""Chunking with the real all-MiniLM-L6-v2 tokenizer: exact offsets, token limit, coverage, sections."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import Chunk, Chunker
from rag.documents import Document, decode_text, load, markdown_sections

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_22749be4b06f8346.txt"


@pytest.fixture(scope="module")
def embedder():
    from rag.config import packaged_model_path
    from rag.embedding import Embedder

    return Embedder(packaged_model_path())


@pytest.fixture(scope="module")
def tok(embedder):
    return embedder.tokenizer


@pytest.fixture(scope="module")
def chunker(embedder, tok) -> Chunker:
    return Chunker(tok, chunk_tokens=200, overlap=40, max_tokens=embedder.max_tokens)


def doc_of(text: str, sections=None, fmt: str = "text") -> Document:
    return Document("mem.txt", Path("mem.txt"), text, fmt, sections or [])


def check_chunks(document: Document, chunks: list[Chunk], tok, max_tokens: int = 256) -> None:
    """The invariants every chunking must hold."""
    text = document.text
    if text.strip():
        assert chunks, "non-blank text must give at least one chunk"
    covered = bytearray(len(text))
    for c in chunks:
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start : c.end] == c.text
        assert c.text.strip(), "no blank chunks"
        assert tok.count(c.text) + 2 <= max_tokens, (tok.count(c.text), c.text[:80])
        assert c.section == document.section_at(c.start)
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert missing == [], f"uncovered characters at {missing[:10]}: {[text[i] for i in missing[:10]]}"
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts), "chunk starts are strictly increasing"


def test_model_limits(embedder, tok, chunker) -> None:
    assert embedder.max_tokens == 256
    assert tok.count("hello world") == 2
    assert tok.spans("hello world") == [(0, 5), (6, 11)]
    assert chunker.budget == 200
    assert chunker.overlap == 40


def test_seed_document_chunks(chunker, tok) -> None:
    document = load(SEED)
    chunks = chunker.chunk(document)
    check_chunks(document, chunks, tok)
    assert len(chunks) >= 3  # ~3.6 kB of prose at <= 200 word pieces a chunk
    joined = " ".join(c.text for c in chunks)
    assert "Implications for Regional Stability" in joined
    assert any(c.section == "Implications for Regional Stability" for c in chunks)
    for c in chunks:
        assert tok.count(c.text) <= 200


def make_long_text(seed: int = 7, paragraphs: int = 60) -> str:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda"]
    out = []
    for p in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(1, 8)):
            sentence = " ".join(rng.choice(words) for _ in range(rng.randint(3, 25)))
            sentences.append(sentence.capitalize() + rng.choice([".", "!", "?", ";"]))
        out.append(f"Paragraph {p}: " + " ".join(sentences))
    return "\n\n".join(out) + "\n"


def test_long_synthetic_text(chunker, tok) -> None:
    text = make_long_text()
    document = doc_of(text)
    chunks = chunker.chunk(document)
    check_chunks(document, chunks, tok)
    assert len(chunks) > 10
    # neighbouring chunks overlap a little (the splitter's overlap) but never by a whole chunk
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.start
        assert b.end > a.end


def test_chunks_start_at_paragraph_starts(chunker, tok) -> None:
    paragraphs = [
        f"Paragraph number {i} talks about topic {i}. It has a second sentence with a few more words in it."
        for i in range(80)
    ]
    text = "\n\n".join(paragraphs)
    document = doc_of(text)
    chunks = chunker.chunk(document)
    check_chunks(document, chunks, tok)
    para_starts = {0} | {i + 2 for i in range(len(text)) if text.startswith("\n\n", i)}
    assert len(chunks) > 3
    for c in chunks:
        assert c.start in para_starts, repr(c.text[:40])
        assert c.text.startswith("Paragraph number ")
        assert c.text.endswith("in it.")


def test_chunks_break_at_sentences_within_a_long_paragraph(chunker, tok) -> None:
    sentence = "The committee reviewed the annual budget and approved the plan"
    text = " ".join(f"{sentence} number {i}." for i in range(120))  # one paragraph, no newlines
    document = doc_of(text)
    chunks = chunker.chunk(document)
    check_chunks(document, chunks, tok)
    assert len(chunks) > 3
    for c in chunks:
        assert c.text.startswith("The committee"), repr(c.text[:40])
        assert c.text.endswith("."), repr(c.text[-40:])


@pytest.mark.parametrize(
    "text",
    [
        "x" * 20000,
        "word" + "-" * 5000 + "end",
        "a/b_c" * 3000 + " tail words here",
        "head words\n\n" + "".join(chr(0x4E00 + i % 2000) for i in range(3000)) + "\n\nafter",
    ],
    ids=["x20000", "dashes", "mixed-no-spaces", "cjk"],
)
def test_huge_word_is_cut_within_limit(chunker, tok, text: str) -> None:
    document = doc_of(text)
    chunks = chunker.chunk(document)
    check_chunks(document, chunks, tok)
    assert len(chunks) >= 2


def test_huge_word_chunks_reach_both_ends(chunker, tok) -> None:
    text = "x" * 20000
    chunks = chunker.chunk(doc_of(text))
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text)
    assert all(set(c.text) == {"x"} for c in chunks)
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start <= a.end  # contiguous or overlapping, no gaps


@pytest.mark.parametrize(
    ("text", "max_tokens"),
    [
        ("a.a a." * 28, 24),
        ("-" * 3000 + "\n\nThe end of the table.", 256),
        ("Footer: all rights reserved.\n" * 300, 256),
        ("ab " * 4000, 40),
    ],
    ids=["periodic-small-limit", "rule-line", "repeated-lines", "repeated-words"],
)
def test_repetitive_text_fully_covered(tok, text: str, max_tokens: int) -> None:
    chunker = Chunker(tok, chunk_tokens=200, overlap=40, max_tokens=max_tokens)
    document = doc_of(text)
    chunks = chunker.chunk(document)
    check_chunks(document, chunks, tok, max_tokens=max_tokens)
    assert chunks[-1].end == len(text.rstrip())


def test_markdown_sections_propagate(chunker, tok) -> None:
    body = " ".join(["This sentence describes the content of the section in some detail."] * 30)
    text = f"# Overview\n\n{body}\n\n## Installation\n\n{body}\n\nUsage Notes\n-----------\n\n{body}\n"
    document = Document("guide.md", Path("guide.md"), text, "markdown", markdown_sections(text))
    chunks = chunker.chunk(document)
    check_chunks(document, chunks, tok)
    seen = [c.section for c in chunks]
    assert seen[0] == "Overview"
    assert set(seen) == {"Overview", "Installation", "Usage Notes"}
    assert seen.index("Installation") < seen.index("Usage Notes")
    heading_chunks = [c for c in chunks if c.text.startswith("## Installation")]
    assert heading_chunks and heading_chunks[0].section == "Installation"


def test_small_document_is_one_chunk(chunker, tok) -> None:
    text = "\n\n  Just a short note.  \n"
    chunks = chunker.chunk(doc_of(text))
    assert chunks == [Chunk("Just a short note.", 4, 22, "", title="mem")]  # the title line: the file name


def test_blank_document_gives_no_chunks(chunker) -> None:
    assert chunker.chunk(doc_of("   \n\n\t ")) == []


def test_repeated_paragraphs_get_distinct_offsets(chunker, tok) -> None:
    para = "Same paragraph text repeated many times to test offsets of identical pieces."
    text = "\n\n".join([para] * 60)
    document = doc_of(text)
    chunks = chunker.chunk(document)
    check_chunks(document, chunks, tok)
    assert chunks[-1].end == len(text)


def test_small_model_limit_is_enforced(tok) -> None:
    small = Chunker(tok, chunk_tokens=200, overlap=40, max_tokens=32)
    assert small.budget == 30
    text = make_long_text(seed=3, paragraphs=10) + "y" * 3000
    document = doc_of(text)
    chunks = small.chunk(document)
    check_chunks(document, chunks, tok, max_tokens=32)


# ---------------------------------------------------------------- properties

_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("abc xyz.,!?;:\n\n\t  -_/'\"")),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=3000,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT)
def test_property_offsets_exact_and_limit_held(chunker, tok, text: str) -> None:
    document = doc_of(text)
    chunks = chunker.chunk(document)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert tok.count(c.text) + 2 <= 256
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    words=st.lists(
        st.one_of(
            st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Z", "Cc")), min_size=1),
            st.sampled_from(["\n\n", "\n", ". ", " "]),
        ),
        max_size=400,
    )
)
def test_property_coverage(chunker, tok, words: list[str]) -> None:
    text = " ".join(words)
    document = doc_of(text)
    check_chunks(document, chunker.chunk(document), tok)


_NO_CONTROLS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from(["\n", "\t"]),
)


@settings(max_examples=50, deadline=None)
@given(text=_NO_CONTROLS)
def test_property_decode_utf8_round_trip(text: str) -> None:
    decoded, encoding = decode_text(text.encode("utf-8"))
    if text.startswith("\ufeff"):  # a leading U+FEFF is a BOM by definition
        assert decoded == text[1:]
        assert encoding == "utf-8-sig"
    else:
        assert decoded == text
        assert encoding == "utf-8"


@settings(max_examples=50, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="latin-1", exclude_categories=("Cc",)) | st.sampled_from(["\n"])))
def test_property_decode_utf16_with_bom_round_trip(text: str) -> None:
    data = text.encode("utf-16")
    assert data[:2] in (b"\xff\xfe", b"\xfe\xff")
    decoded, encoding = decode_text(data)
    assert decoded == text
    assert encoding.startswith("utf-16")


def test_page_text_chunks_carry_the_caption_above_them_and_no_caption_stands_alone(
    tmp_path: Path, chunker, tok
) -> None:
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table

    styles = getSampleStyleSheet()
    rows = [["", "2023", "2022"]] + [[f"Line item {n}", f"{n},120", f"{n},004"] for n in range(1, 41)]
    path = tmp_path / "2023 Q3 ACME.pdf"
    SimpleDocTemplate(str(path), pagesize=letter).build(
        [
            Paragraph("The company had a quiet quarter, as the notes below explain in some detail.", styles["Normal"]),
            Paragraph("CONDENSED STATEMENTS OF CASH FLOWS (In millions)", styles["Heading3"]),
            Table(rows, colWidths=[150, 90, 90]),
        ]
    )
    document = load(path)
    chunks = chunker.chunk(document)
    check_chunks(document, chunks, tok)
    table_chunks = [c for c in chunks if "Line item 2" in c.text or "Line item 39" in c.text]
    assert len(table_chunks) >= 2
    caption = "CONDENSED STATEMENTS OF CASH FLOWS (In millions)"
    for c in table_chunks:  # the table runs on to page 2: the caption still names it there
        assert caption in c.text or c.title.count(caption) == 1
    assert any(c.section == "page 2" and caption not in c.text for c in table_chunks)
    # The embedded text leads with that title; the chunk's own text (and offsets) are untouched.
    assert chunker.embedding_input(document.source, table_chunks[-1]).startswith(table_chunks[-1].title)
    # The sentence above the caption is no caption: it ends like a sentence.
    assert not any(c.title.endswith("some detail.") for c in chunks)
    # The sentence and the caption, too small for chunks of their own, start the first table chunk.
    assert chunks[0].text.startswith("The company had a quiet quarter") and "Line item 1 |" in chunks[0].text
    assert all(tok.count(c.text) >= chunker.budget // 4 for c in chunks[:-1])
