"""The one switch of tests/conftest.py: with REQUIRE_PREREQS=1 (``make test``) or CI=true a test that would skip
fails, whatever made it skip (a skipif mark, ``missing()``, ``pytest.importorskip`` at a module's top); without
it, the same tests skip. Checked on a small suite run by a real pytest in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, write

PROBE = '''
import pytest

from tests.conftest import missing


@pytest.mark.skipif(True, reason="marked: no frobnicator")
def test_marked() -> None:
    pass


def test_missing() -> None:
    missing("the blue manual is not installed")


def test_runs() -> None:
    assert 1 + 1 == 2


@pytest.mark.xfail(reason="an expected failure is not a skip", strict=True)
def test_expected_failure() -> None:
    raise AssertionError
'''


def run_probe(tmp_path: Path, module_skip: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "probe"
    write(suite / "conftest.py", "from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport\n")
    if module_skip:
        write(suite / "test_needs_module.py", 'import pytest\n\npytest.importorskip("no_such_module_xyz")\n')
    else:
        write(suite / "test_probe.py", PROBE)
    clean = {k: v for k, v in os.environ.items() if k not in {"CI", "REQUIRE_PREREQS"}}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider", "-o", "addopts=", str(suite)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        timeout=300,
    )


def test_without_the_switch_missing_prerequisites_skip(tmp_path: Path) -> None:
    done = run_probe(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 2 skipped, 1 xfailed" in done.stdout, done.stdout
    module = run_probe(tmp_path / "m", module_skip=True)
    assert module.returncode == 5 and "1 skipped" in module.stdout, module.stdout  # 5: nothing ran


@pytest.mark.parametrize("switch", [{"REQUIRE_PREREQS": "1"}, {"CI": "true"}])
def test_with_the_switch_every_skip_fails_and_says_why(tmp_path: Path, switch: dict[str, str]) -> None:
    done = run_probe(tmp_path, **switch)
    assert done.returncode == 1, done.stdout + done.stderr
    # A skipif mark acts at setup (an error), a missing() call in the test body (a failure).
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in done.stdout.splitlines()[-1], done.stdout
    said = "may not skip here ('make test' installs what it needs), but"
    assert f"{said} it skipped: marked: no frobnicator" in done.stdout, done.stdout
    assert f"{said} the blue manual is not installed" in done.stdout, done.stdout
    # A module skipped while collected is a collection error: the run stops with it and names the module.
    module = run_probe(tmp_path / "m", module_skip=True, **switch)
    assert module.returncode == 2, module.stdout + module.stderr
    assert "test_needs_module.py skipped" in module.stdout and "no_such_module_xyz" in module.stdout, module.stdout
