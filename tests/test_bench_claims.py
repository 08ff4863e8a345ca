"""Measured claims come from `make bench`: each benchmark prints its figures beside their targets and says met or
not met (bench/claims.py), and the docs' tables of those figures are rendered from the results files
(bench/report.py), never typed by hand."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ROOT

BENCH = ROOT / "bench"
CLAIMS = BENCH / "results" / "claims"


def _module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # the bench scripts import each other by name, as when run
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def claims() -> ModuleType:
    return _module("claims")


@pytest.fixture(scope="module")
def report() -> ModuleType:
    return _module("report")


#: The measured claims of the docs whose tables are generated, and the page each is on.
GENERATED = {
    "squad-dev": "quality.md",
    "refusal": "quality.md",
    "sec-10q": "quality.md",
    "ntsb-forms": "quality.md",
    "store-overlap": "quality.md",
    "ray-index": "quality.md",
    "index-speed": "performance.md",
    "index-memory": "performance.md",
    "vector-scale": "performance.md",
}


def test_every_docs_table_of_measured_figures_is_the_benchmarks_output(report: ModuleType) -> None:
    found: dict[str, str] = {}
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for name in report.blocks(text):
            found[name] = page.name
        assert report.rendered(text) == text, f"docs/{page.name}: a bench table differs from bench/results/claims"
    for name, page in GENERATED.items():
        assert found.get(name) == page, f"docs/{page} has no <!-- bench:{name} --> block"


def test_every_results_file_names_its_date_machine_and_command(claims: ModuleType) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    bench_recipe = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    files = sorted(CLAIMS.glob("*.json"))
    assert {f.stem for f in files} >= set(GENERATED)
    for path in files:
        result = json.loads(path.read_text(encoding="utf-8"))
        assert result["name"] == path.stem
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", result["date"]), path.name
        assert result["machine"]["cpu"] and result["machine"]["cores"] >= 1, path.name
        script = result["command"].split()[1]
        assert script.startswith("bench/") and script in bench_recipe, f"{path.name}: {script} is not in make bench"
        assert result["claims"], path.name
        for row in result["claims"]:
            # met is what the measured figure and the target say, not a value typed into the file
            assert row["met"] == claims.is_met(row), (path.name, row["figure"])


def test_a_figure_edited_by_hand_in_the_docs_is_caught(report: ModuleType, claims: ModuleType, tmp_path) -> None:
    rows = [claims.claim("hit@5", 0.94, ">=", 0.94), claims.claim("value@1", 0.7, ">=", 0.8)]
    claims.record("probe", "a probe", rows, reduced="1 of 10 documents", out_dir=tmp_path)
    page = "# Page\n\n<!-- bench:probe -->\n<!-- /bench:probe -->\n\nAfter.\n"
    text = report.rendered(page, tmp_path)
    assert report.rendered(text, tmp_path) == text
    assert "| hit@5 | 0.940 | ≥ 0.940 | met |" in text
    assert "| value@1 | 0.700 | ≥ 0.800 | **not met** |" in text
    assert "**Reduced run**: 1 of 10 documents" in text and text.endswith("<!-- /bench:probe -->\n\nAfter.\n")
    typed = text.replace("| 0.700 |", "| 0.810 |")
    assert report.rendered(typed, tmp_path) != typed
    with pytest.raises(SystemExit, match="bench:missing"):
        report.rendered("<!-- bench:missing -->\n<!-- /bench:missing -->\n", tmp_path)


def test_claims_say_met_not_met_or_not_measured_and_are_written_atomically(claims: ModuleType, tmp_path) -> None:
    assert claims.claim("p50", 25.0, "<=", 25, unit="ms")["met"] is True
    assert claims.claim("p50", 25.1, "<=", 25, unit="ms")["met"] is False
    missing = claims.claim("recall", None, ">=", 0.95)
    assert missing["met"] is False and missing["shown"] == "not measured"
    assert claims.claim("peak memory", 580, unit="MiB")["met"] is None
    with pytest.raises(ValueError, match="operator"):
        claims.claim("x", 1.0, "=>", 1.0)
    path = claims.record("probe", "a probe", [claims.claim("x", 1.0, ">=", 1.0)], out_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    machine = json.loads(path.read_text(encoding="utf-8"))["machine"]
    if Path("/proc/cpuinfo").is_file():
        cpu = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
        assert machine["cpu"] == cpu.split(":", 1)[1].strip()
