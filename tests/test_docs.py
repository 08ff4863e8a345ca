"""The README and the documentation site: a short README that leads on, a site that builds strictly (a
broken link, a missing page or a broken API reference fails), loads nothing from other hosts, and says
what the code does where a reader looks for it."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"


def _markdown_links(text: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_readme_is_short_and_leads_to_the_docs() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    assert "make run" in text and "make test" in text
    for heading in ("## Web chat", "## From Python", "## Command line", "## OpenAI-compatible API", "## MCP server"):
        assert heading in text, heading
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        assert "```" in section or heading == "## Web chat", f"{heading}: one example"
    assert "## Where to read more" in text and "make docs" in text
    links = [link for link in _markdown_links(text) if not link.startswith("http")]
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link.split("#", 1)[0]).is_file(), f"README links to a missing file: {link}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The site built as `make docs` builds it: `mkdocs build --strict` (warnings fail)."""
    mkdocs = Path(sys.executable).parent / "mkdocs"
    assert mkdocs.is_file(), "the docs tools are missing: run 'make install-test' (it installs the docs extras)"
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    yield out


def test_every_page_in_docs_is_built(site: Path) -> None:
    pages = sorted(p.stem for p in DOCS.glob("*.md") if not p.name.startswith("incoming-"))
    assert {"index", "web-chat", "python", "cli", "openai-api", "mcp", "settings", "reference"} <= set(pages)
    for page in pages:
        assert (site / f"{page}.html").is_file(), page


def test_api_reference_documents_every_public_name(site: Path) -> None:
    import rag

    reference = (DOCS / "reference.md").read_text(encoding="utf-8")
    built = (site / "reference.html").read_text(encoding="utf-8")
    for name in rag.__all__:
        module = rag._EXPORTS[name]
        assert f"::: rag.{module}.{name}\n" in reference, f"{name} is exported but not in docs/reference.md"
        assert f'id="rag.{module}.{name}"' in built, f"{name}: no entry in the built reference"
    # generated from the docstrings, not written by hand
    assert "the model, tokenizer and index load on first use" in built
    assert "rag.assistant.Assistant.ask" in built


def test_the_site_loads_nothing_from_other_hosts(site: Path) -> None:
    """Opened from disk in Chromium: every request stays on file:// (no web fonts, no CDN scripts)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("chromium is missing: run 'make browser'")
        pytest.skip("chromium is not installed")
    requests: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            for name in ("index.html", "reference.html", "web-chat.html"):
                page.goto((site / name).as_uri(), wait_until="load")
                assert page.title(), name
            assert page.locator("h1").first.inner_text().strip().rstrip("¶") == "Web chat"
        finally:
            browser.close()
    outside = [url for url in requests if not url.startswith(("file://", "data:", "blob:"))]
    assert requests and outside == [], outside
    for html in site.rglob("*.html"):  # pages not opened above: nothing they would load from elsewhere
        text = html.read_text(encoding="utf-8")
        assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(https?:)?//", text), html.name
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^  font: false$", config, re.M), "Material must not ask for Google Fonts"


def test_uploads_list_every_format_they_accept() -> None:
    """Where uploads are explained, every suffix the upload takes is named (images included)."""
    from ui.library import UPLOAD_SUFFIXES

    text = (DOCS / "web-chat.md").read_text(encoding="utf-8")
    uploads = text.split("- **Documents**", 1)[1].split("\n- **", 1)[0]
    words = set(re.findall(r"\.[a-z]+", uploads))
    missing = [suffix for suffix in UPLOAD_SUFFIXES if suffix not in words]
    assert missing == [], f"upload formats not listed in docs/web-chat.md: {missing}"
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff"} <= set(UPLOAD_SUFFIXES)


def test_every_setting_is_documented() -> None:
    """Each RAG_* variable the code reads has a row in docs/settings.md."""
    from rag import Settings

    text = (DOCS / "settings.md").read_text(encoding="utf-8")
    names = {f"RAG_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    for source in [*ROOT.glob("rag/**/*.py"), *ROOT.glob("ui/*.py")]:
        names |= set(re.findall(r"\bRAG_[A-Z][A-Z0-9_]*[A-Z0-9]\b", source.read_text(encoding="utf-8")))
    missing = sorted(name for name in names if name not in text)
    assert missing == [], f"not in docs/settings.md: {missing}"


def test_docs_say_where_the_api_puts_usage_and_the_rag_field() -> None:
    text = " ".join((DOCS / "openai-api.md").read_text(encoding="utf-8").split())
    assert "last chunk of a stream" not in text
    assert "the chunk whose `finish_reason` is set" in text
    assert "word counts" not in text and "embedding model's tokenizer" in text
