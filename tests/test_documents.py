"""Loading documents: encodings, markdown/HTML/PDF/DOCX extraction, discovery, limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.documents import (
    Document,
    Section,
    decode_text,
    discover,
    html_to_text,
    load,
    markdown_sections,
)
from rag.errors import DocumentError
from rag.html_text import repair_markup

from .conftest import encrypted_pdf, write

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_22749be4b06f8346.txt"


def assert_sections_at_titles(doc: Document) -> None:
    for s in doc.sections:
        assert 0 <= s.start < len(doc.text)
        assert doc.text[s.start :].startswith(s.title), (s, doc.text[s.start : s.start + 60])


# ---------------------------------------------------------------- plain text and encodings


def test_txt_utf8_equals_open_read(tmp_path: Path) -> None:
    content = "Première ligne — ünïcode ✓ 日本語\n\nSecond paragraph.\n"
    path = write(tmp_path / "a.txt", content)
    doc = load(path)
    with open(path, encoding="utf-8") as f:
        expected = f.read()
    assert doc.text == expected == content
    assert doc.format == "text"
    assert doc.encoding == "utf-8"
    assert doc.source == "a.txt"


def test_txt_crlf_and_cr_newlines_are_universal(tmp_path: Path) -> None:
    path = write(tmp_path / "crlf.txt", b"line one\r\nline two\r\n\r\nold mac\rend\r\n")
    doc = load(path)
    with open(path, encoding="utf-8") as f:
        expected = f.read()
    assert doc.text == expected
    assert doc.text == "line one\nline two\n\nold mac\nend\n"
    assert "\r" not in doc.text


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"\xef\xbb\xbf" + "café naïve façade ✓".encode(), "utf-8-sig"),
        (b"\xff\xfe" + "café naïve façade ✓".encode("utf-16-le"), "utf-16-le"),
        (b"\xfe\xff" + "café naïve façade ✓".encode("utf-16-be"), "utf-16-be"),
        ("café naïve façade ✓".encode("utf-16"), None),
    ],
)
def test_bom_encodings_decoded(tmp_path: Path, data: bytes, encoding: str | None) -> None:
    doc = load(write(tmp_path / "bom.txt", data))
    assert doc.text == "café naïve façade ✓"
    assert "\ufeff" not in doc.text
    if encoding:
        assert doc.encoding == encoding


@pytest.mark.parametrize("codec", ["latin-1", "cp1252"])
def test_legacy_encoding_without_bom(tmp_path: Path, codec: str) -> None:
    content = "The café has a naïve façade. Crème brûlée costs 5 francs.\nÀ bientôt, señor Müller!\n"
    doc = load(write(tmp_path / "legacy.txt", content.encode(codec)))
    assert doc.text == content
    assert len(doc.text) == len(content)


def test_cp1252_specific_characters(tmp_path: Path) -> None:
    content = "He said “quotes” — and paid €20 for the café’s naïve façade.\n" * 3
    doc = load(write(tmp_path / "cp.txt", content.encode("cp1252")))
    assert doc.text == content


def test_utf16_without_bom_guessed() -> None:
    text, encoding = decode_text("plain ascii text here, long enough".encode("utf-16-le"))
    assert text == "plain ascii text here, long enough"
    assert encoding == "utf-16-le"
    text, encoding = decode_text("plain ascii text here, long enough".encode("utf-16-be"))
    assert text == "plain ascii text here, long enough"
    assert encoding == "utf-16-be"


def test_binary_named_txt_is_rejected(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    with pytest.raises(DocumentError, match="binary"):
        load(write(tmp_path / "blob.txt", data))


def test_binary_without_nul_bytes_is_rejected(tmp_path: Path) -> None:
    data = bytes([1, 2, 3, 4, 5, 6, 7, 8, 0x0E, 0x0F, 0x10, 0x11, 65]) * 200
    with pytest.raises(DocumentError, match="binary"):
        load(write(tmp_path / "ctrl.txt", data))


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="empty"):
        load(write(tmp_path / "empty.txt", b""))


def test_whitespace_only_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="white space"):
        load(write(tmp_path / "ws.txt", b"  \n\t\r\n   \n"))


def test_max_bytes_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "big.txt", "word " * 100)
    with pytest.raises(DocumentError, match="limit") as info:
        load(path, max_bytes=10)
    message = str(info.value)
    assert "RAG_MAX_FILE_MB" in message
    assert "500 bytes" in message
    with pytest.raises(DocumentError, match=r"over the 0\.0001 MB limit"):
        load(path, max_bytes=100)
    assert load(path, max_bytes=10_000).text == "word " * 100
    assert load(path, max_bytes=500).text == "word " * 100


def test_max_bytes_fractional_megabytes_shown(tmp_path: Path) -> None:
    path = write(tmp_path / "big.txt", "x" * 600_000)
    with pytest.raises(DocumentError, match=r"0\.6 MB\), over the 0\.5 MB limit"):
        load(path, max_bytes=500_000)


def test_missing_file_load_raises(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="cannot read"):
        load(tmp_path / "nope.txt")


def test_source_name_override(tmp_path: Path) -> None:
    doc = load(write(tmp_path / "x.txt", "hello"), source="sub/x.txt")
    assert doc.source == "sub/x.txt"
    assert doc.path == tmp_path / "x.txt"


def test_plain_text_heading_titles_keep_leading_letters(tmp_path: Path) -> None:
    body = "A paragraph that is clearly longer than the heading line above it, with many words.\n"
    content = f"High Stakes Ahead\n{body}Hopes for 2025\n{body}## Hash Heading\n{body}<h3>Tagged Heading\n{body}"
    doc = load(write(tmp_path / "h.txt", content))
    assert [s.title for s in doc.sections] == ["High Stakes Ahead", "Hopes for 2025", "Hash Heading", "Tagged Heading"]
    for s in doc.sections:
        assert s.title in doc.text[s.start : doc.text.index("\n", s.start)]


def test_plain_text_heading_lines(tmp_path: Path) -> None:
    content = (
        "Introduction and Scope\nThis first paragraph has many words so that the line above looks like a heading.\n"
        "not a heading.\nShort line.\nanother short\n"
    )
    doc = load(write(tmp_path / "t.txt", content))
    assert doc.sections == [Section(0, "Introduction and Scope")]
    assert doc.section_at(50) == "Introduction and Scope"


# ---------------------------------------------------------------- markdown


MARKDOWN = """\
# Title One

Intro paragraph.

## Second Level ##

Body text here.

```python
# not a heading
x = 1
```

Setext Heading
==============

More text.

Another Setext
--------------

~~~
## also not a heading
~~~

   ### Indented Three
Final words.
"""


def test_markdown_sections(tmp_path: Path) -> None:
    doc = load(write(tmp_path / "notes.md", MARKDOWN))
    assert doc.format == "markdown"
    assert doc.text == MARKDOWN
    titles = [s.title for s in doc.sections]
    assert titles == ["Title One", "Second Level", "Setext Heading", "Another Setext", "Indented Three"]
    assert "not a heading" not in " ".join(titles)
    for s in doc.sections:
        line_end = doc.text.find("\n", s.start)
        assert s.title in doc.text[s.start : line_end]
    starts = [s.start for s in doc.sections]
    assert starts == sorted(starts)
    assert doc.sections[0].start == 0


def test_markdown_section_at(tmp_path: Path) -> None:
    doc = load(write(tmp_path / "notes.markdown", MARKDOWN))
    assert doc.section_at(doc.text.index("Intro paragraph")) == "Title One"
    assert doc.section_at(doc.text.index("Body text")) == "Second Level"
    assert doc.section_at(doc.text.index("x = 1")) == "Second Level"
    assert doc.section_at(doc.text.index("More text")) == "Setext Heading"
    assert doc.section_at(doc.text.index("also not")) == "Another Setext"
    assert doc.section_at(doc.text.index("Final words")) == "Indented Three"
    assert doc.section_at(len(doc.text) - 1) == "Indented Three"


def test_section_at_before_first_section() -> None:
    doc = Document("s", Path("s.md"), "preamble\n# H\nbody", "markdown", [Section(9, "H")])
    assert doc.section_at(0) == ""
    assert doc.section_at(8) == ""
    assert doc.section_at(9) == "H"
    assert doc.section_at(100) == "H"


def test_markdown_unclosed_fence_hides_rest() -> None:
    text = "# A\n\n```\n# inside\n\nstill inside\n"
    assert markdown_sections(text) == [Section(0, "A")]


def test_markdown_hash_without_space_is_not_heading() -> None:
    assert markdown_sections("#hashtag text\n\n####### seven\n") == []


# ---------------------------------------------------------------- HTML


HTML = """<!DOCTYPE html>
<html><head><title>Ignored Head Title</title>
<style>body { color: red; } .secretstyle {}</style>
<script>var secretScript = "do not index";</script>
</head>
<body>
<h1>Main &amp; Title</h1>
<p>First paragraph with &lt;entities&gt; &eacute;t&eacute; &#8364;5 &nbsp;here.</p>
<p>Second   paragraph
   spans lines.</p>
<noscript>enable javascript please</noscript>
<h2>Sub <em>heading</em></h2>
<div>Div text <b>bold</b> end.</div>
<pre>  keep
    spacing</pre>
<img src="x.png" alt="A picture of a cat">
</body></html>
"""


def test_html_text_and_sections(tmp_path: Path) -> None:
    doc = load(write(tmp_path / "page.html", HTML))
    text = doc.text
    assert doc.format == "html"
    for absent in ("secretScript", "do not index", "color: red", "secretstyle", "enable javascript", "Ignored Head"):
        assert absent not in text
    assert "<" + "p>" not in text and "<h1" not in text
    assert "Main & Title" in text
    assert "First paragraph with <entities> été €5" in text
    assert "Second paragraph spans lines." in text
    assert "Div text bold end." in text
    assert "A picture of a cat" in text
    assert "  keep\n    spacing" in text
    # paragraphs are separated by blank lines
    assert "here.\n\nSecond paragraph" in text.replace("\xa0", " ").replace("  ", " ")
    assert [s.title for s in doc.sections] == ["Main & Title", "Sub heading"]
    assert_sections_at_titles(doc)
    assert doc.section_at(text.index("Div text")) == "Sub heading"
    assert doc.section_at(text.index("First paragraph")) == "Main & Title"


def test_html_to_text_section_offsets_with_trailing_spaces() -> None:
    html = "<p>alpha   </p>\n<h2>Beta </h2> <p>gamma delta </p><h3>Gamma</h3><p>end</p>"
    text, sections = html_to_text(html)
    assert " \n" not in text
    assert [s.title for s in sections] == ["Beta", "Gamma"]
    for s in sections:
        assert text[s.start :].startswith(s.title)
    assert text == "alpha\n\nBeta\n\ngamma delta\n\nGamma\n\nend"


def test_html_broken_glued_tag_keeps_text(tmp_path: Path) -> None:
    html = (
        "<html><body><h1>Report</h1><p>Intro paragraph.</p>\n"
        "<h2Implications for Regional Stability\n"
        "<p>With tensions rising, analysts watch closely.</p>\n"
        "</body></html>"
    )
    doc = load(write(tmp_path / "broken.html", html))
    assert "Implications for Regional Stability" in doc.text
    assert "With tensions rising, analysts watch closely." in doc.text
    assert "Implications for Regional Stability" in [s.title for s in doc.sections]
    assert_sections_at_titles(doc)
    assert doc.section_at(doc.text.index("With tensions")) == "Implications for Regional Stability"


def test_repair_markup() -> None:
    assert repair_markup("<h2Implications for X\n<p>a</p>") == "<h2>Implications for X</h2>\n<p>a</p>"
    assert repair_markup("<notatag some text") == "&lt;notatag some text"
    assert repair_markup("<p>fine</p>") == "<p>fine</p>"


def test_html_unknown_tag_keeps_words(tmp_path: Path) -> None:
    doc = load(write(tmp_path / "u.html", "<p>before <notatag some text and more</p><p>after</p>"))
    assert "notatag some text and more" in doc.text
    assert "before" in doc.text and "after" in doc.text


def test_html_less_than_in_text(tmp_path: Path) -> None:
    doc = load(write(tmp_path / "lt.html", "<p>if a <b and c > d then x</p>"))
    assert "if a" in doc.text and "then x" in doc.text


def test_html_deeply_nested(tmp_path: Path) -> None:
    html = "<div>" * 5000 + "deep inside text" + "</div>" * 5000
    doc = load(write(tmp_path / "deep.html", html))
    assert doc.text == "deep inside text"


def test_html_without_visible_text(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="no visible text"):
        load(write(tmp_path / "blank.html", "<html><script>var x = 1;</script><style>p{}</style></html>"))


# ---------------------------------------------------------------- the seed document


def test_seed_document_loads() -> None:
    doc = load(SEED)
    assert doc.format == "text"
    assert "Implications for Regional Stability" in doc.text
    assert doc.text.startswith("Strengthening Japan-US Ties Amid a Shifting Indo-Pacific\n")
    with open(SEED, encoding="utf-8") as f:
        assert doc.text == f.read()
    titles = [s.title for s in doc.sections]
    assert "Implications for Regional Stability" in titles
    assert "High-Level Dialogue on Indo-Pacific Security" in titles
    for s in doc.sections:
        assert s.title in doc.text[s.start : doc.text.index("\n", s.start)]


# ---------------------------------------------------------------- PDF


def make_pdf(path: Path, pages: list[list[str]]) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    for lines in pages:
        y = 800
        for line in lines:
            c.drawString(72, y, line)
            y -= 20
        c.showPage()
    c.save()
    return path


def test_pdf_two_pages(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "two.pdf",
        [["Alpha bravo charlie on page one.", "Second line delta."], ["Echo foxtrot golf on page two."]],
    )
    doc = load(path)
    assert doc.format == "pdf"
    for words in ("Alpha bravo charlie", "Second line delta", "Echo foxtrot golf"):
        assert words in doc.text
    assert doc.text.index("Alpha") < doc.text.index("Echo")
    assert [s.title for s in doc.sections] == ["page 1", "page 2"]
    assert doc.sections[0].start == 0
    assert doc.text[doc.sections[1].start :].startswith("Echo foxtrot golf")
    assert doc.text[: doc.sections[1].start].endswith("\n\n")
    assert doc.section_at(doc.text.index("delta")) == "page 1"
    assert doc.section_at(doc.text.index("golf")) == "page 2"


def test_pdf_blank_page_skipped_but_numbering_kept(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "gap.pdf", [["First page words."], [], ["Third page words."]])
    doc = load(path)
    assert [s.title for s in doc.sections] == ["page 1", "page 3"]
    assert doc.text[doc.sections[1].start :].startswith("Third page words.")


def test_pdf_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="empty PDF"):
        load(write(tmp_path / "zero.pdf", b""))


def test_pdf_truncated(tmp_path: Path) -> None:
    full = make_pdf(tmp_path / "full.pdf", [["Some words on a page."], ["More words here."]]).read_bytes()
    path = write(tmp_path / "half.pdf", full[: len(full) // 2])
    with pytest.raises(DocumentError) as info:
        load(path)
    assert "PDF" in str(info.value)
    assert len(str(info.value)) > len("PDF ")


def test_pdf_garbage(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="PDF"):
        load(write(tmp_path / "junk.pdf", b"this is not a pdf at all" * 10))


def test_pdf_encrypted(tmp_path: Path) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", [["Secret words inside."]])
    path = write(tmp_path / "locked.pdf", encrypted_pdf(plain))
    with pytest.raises(DocumentError, match="encrypted"):
        load(path)


def test_pdf_encrypted_with_empty_user_password_is_read(tmp_path: Path) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", [["Readable despite encryption."]])
    doc = load(write(tmp_path / "open.pdf", encrypted_pdf(plain, user_password="")))
    assert "Readable despite encryption." in doc.text


def test_pdf_without_text(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "blank.pdf", [[], []])
    with pytest.raises(DocumentError, match="no extractable text"):
        load(path)


# ---------------------------------------------------------------- DOCX


def test_docx_text_and_sections(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Quarterly Summary", level=1)
    d.add_paragraph("Revenue grew in every region.")
    d.add_paragraph("")
    d.add_paragraph("Costs stayed flat.")
    d.add_heading("Outlook", level=2)
    d.add_paragraph("Next year looks stable.")
    path = tmp_path / "report.docx"
    d.save(str(path))
    doc = load(path)
    assert doc.format == "docx"
    assert doc.text == (
        "Quarterly Summary\n\nRevenue grew in every region.\n\nCosts stayed flat.\n\nOutlook\n\nNext year looks stable."
    )
    assert doc.sections == [Section(0, "Quarterly Summary"), Section(doc.text.index("Outlook"), "Outlook")]
    assert_sections_at_titles(doc)
    assert doc.section_at(doc.text.index("Costs")) == "Quarterly Summary"
    assert doc.section_at(doc.text.index("Next year")) == "Outlook"


def test_docx_damaged_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="empty DOCX"):
        load(write(tmp_path / "zero.docx", b""))
    with pytest.raises(DocumentError, match="damaged DOCX"):
        load(write(tmp_path / "bad.docx", b"PK\x03\x04 not really a zip"))


# ---------------------------------------------------------------- discover


def test_discover_folder(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write(root / "a.txt", "a")
    write(root / "sub" / "deeper" / "b.md", "# b")
    write(root / "sub" / "c.html", "<p>c</p>")
    write(root / "with space é.txt", "spaces and unicode")
    write(root / "日本語 ファイル.md", "unicode name")
    write(root / ".hidden.txt", "hidden")
    write(root / ".git" / "config.txt", "hidden dir")
    write(root / "image.bin", b"\x89PNG")
    write(root / "noext", "no suffix")
    write(root / "UPPER.TXT", "upper-case suffix")
    outside = write(tmp_path / "outside" / "secret.txt", "outside the root")
    os.symlink(outside, root / "link.txt")
    write(root / "real.txt", "real")
    os.symlink(root / "real.txt", root / "inner_link.txt")

    found, skipped = discover([root])
    sources = [f.source for f in found]
    assert sorted(sources) == sorted(
        [
            "a.txt",
            "sub/deeper/b.md",
            "sub/c.html",
            "with space é.txt",
            "日本語 ファイル.md",
            "UPPER.TXT",
            "real.txt",
            "inner_link.txt",
        ]
    )
    assert all(f.root == str(root.resolve()) for f in found)
    assert all(f.path.is_file() for f in found)
    assert not any("hidden" in s or s.startswith(".") for s in sources)
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {"image.bin", "noext", "link.txt"}
    assert "unsupported" in reasons["image.bin"] and "'.bin'" in reasons["image.bin"]
    assert "(none)" in reasons["noext"]
    assert "outside" in reasons["link.txt"] and "not followed" in reasons["link.txt"]
    assert all(f.path != outside.resolve() for f in found)
    by_source = {f.source: f for f in found}
    assert load(by_source["with space é.txt"].path).text == "spaces and unicode"
    assert load(by_source["日本語 ファイル.md"].path).text == "unicode name"


def test_discover_symlinked_dir_outside_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "in.txt", "in")
    write(tmp_path / "elsewhere" / "out.txt", "out")
    os.symlink(tmp_path / "elsewhere", root / "linkdir")
    found, _ = discover([root])
    assert [f.source for f in found] == ["in.txt"]


def test_discover_broken_symlink(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "ok.txt", "ok")
    os.symlink(root / "missing.txt", root / "broken.txt")
    found, skipped = discover([root])
    assert [f.source for f in found] == ["ok.txt"]
    assert [(Path(s.path).name, s.reason) for s in skipped] == [("broken.txt", "broken symlink")]


def test_discover_single_files(tmp_path: Path) -> None:
    txt = write(tmp_path / "one file.txt", "x")
    bad = write(tmp_path / "data.csv", "a,b")
    found, skipped = discover([txt, bad])
    assert [(f.source, f.path) for f in found] == [("one file.txt", txt.resolve())]
    assert [Path(s.path).name for s in skipped] == ["data.csv"]
    assert "'.csv'" in skipped[0].reason


def test_discover_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="no such file or folder"):
        discover([tmp_path / "does-not-exist"])
