"""Shared fixtures: the real packaged model, real FAISS indexes in temporary folders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
for _name in [n for n in os.environ if n.startswith("RAG_")]:
    del os.environ[_name]

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED_EVAL = ROOT.parent / "shared" / "eval"
SQUAD = SHARED_EVAL / "squad-dev"
SEC = SHARED_EVAL / "sec-10q"
SEED_QUESTION = "Who invited Prime Minister Takaichi to visit the United States?"

# ---------------------------------------------------------------------------------------------- prerequisites
# Some tests need what only the Makefile installs (Chromium, Tesseract, Debian's PDF manuals, a tmpfs mount as
# root) or the shared evaluation data beside the checkout. Run by hand without them, they skip. With one switch,
# REQUIRE_PREREQS=1 (set by `make test`) or CI=true, every skip is a failure instead: there nothing may be
# left unchecked because a prerequisite is missing.

#: Whether a skipped test fails (``make test`` and CI) rather than skips.
PREREQS_REQUIRED = os.environ.get("REQUIRE_PREREQS", "") == "1" or os.environ.get("CI", "").lower() in {"true", "1"}
_REQUIRED_SAYS = "REQUIRE_PREREQS=1 or CI=true: a test may not skip here ('make test' installs what it needs)"


def missing(reason: str) -> NoReturn:
    """Skip for ``reason`` (a prerequisite is missing); under REQUIRE_PREREQS=1 or CI=true, fail."""
    if PREREQS_REQUIRED:
        pytest.fail(f"{_REQUIRED_SAYS}, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _skip_reason(longrepr: Any) -> str:
    said = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return said.removeprefix("Skipped: ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Under the switch, a skip from any cause (a skipif mark, pytest.skip, importorskip) fails the test."""
    report = yield
    if PREREQS_REQUIRED and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{_REQUIRED_SAYS}, but it skipped: {_skip_reason(report.longrepr)}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[Any]:
    """The same for a whole module skipped while it is collected (``pytest.importorskip`` at its top)."""
    report = yield
    if PREREQS_REQUIRED and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{_REQUIRED_SAYS}, but {collector.nodeid} skipped: {_skip_reason(report.longrepr)}"
    return report


needs_squad = pytest.mark.skipif(not (SQUAD / "docs").is_dir(), reason=f"the squad-dev set is not at {SQUAD}")
needs_sec = pytest.mark.skipif(not (SEC / "docs").is_dir(), reason=f"the sec-10q set is not at {SEC}")
needs_ocr = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed (make ocr installs it)"
)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index built once per session from a copy of seeds/ (tests must not modify it)."""
    from rag import Assistant

    base = tmp_path_factory.mktemp("seed")
    corpus = base / "corpus"
    shutil.copytree(SEEDS, corpus)
    index = base / "index"
    report = Assistant(index_dir=index).index([corpus])
    assert report.failed == [] and len(report.added) == 1
    return index


@pytest.fixture(scope="session")
def seed_assistant(seed_index: Path):
    from rag import Assistant

    return Assistant(index_dir=seed_index)


@pytest.fixture()
def assistant_factory(tmp_path: Path):
    """Make assistants over fresh index folders under tmp_path."""
    from rag import Assistant

    def make(name: str = "index", **overrides):
        return Assistant(index_dir=tmp_path / name, **overrides)

    return make


def encrypted_pdf(plain: Path, user_password: str = "s3cret") -> bytes:
    """The bytes of ``plain`` (a PDF file) encrypted with ``user_password`` (owner password "owner")."""
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(plain).pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password="owner")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path``, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


#: Three small documents, one per format (a subfolder for the HTML one), each holding facts to ask about.
FACTS = {
    "otters.txt": "Sea otters use rocks as tools to crack open shellfish. A sea otter can hold its breath for five "
    "minutes while diving for food. Otters have the densest fur of any animal.",
    "volcano.md": "# Mount Pelmora\n\nMount Pelmora is a volcano that last erupted in 1873. Its crater lake is "
    "called Lake Vindry.\n\n## Monitoring\n\nThe observatory at Tarsk measures the gas output every week.",
    "guide/bridges.html": "<html><head><title>Bridges</title><script>var secret = 'zebra';</script></head><body>"
    "<h1>The Harlow Bridge</h1><p>The Harlow Bridge was designed by engineer Mirela Quist and opened in 1931."
    "</p><style>p { color: red }</style><p>It spans the river Odde with a main span of 412 metres.</p></body></html>",
}
