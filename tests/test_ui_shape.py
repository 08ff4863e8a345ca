"""The web UI's shape: behaviour without Gradio, small modules, settings changed only through
``Assistant.configure``, conversations trimmed only by the library, one HTML-escaping helper."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parent.parent / "ui"
SOURCES = sorted(UI.glob("*.py"))
HEAVY = ("gradio", "fastapi", "starlette", "torch")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a chain of attributes (subscripts shown as ``[]``), else ``""``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    if isinstance(node, ast.Subscript):
        inner = _dotted(node.value)
        return f"{inner}[]" if inner else ""
    return ""


def test_the_handlers_import_no_gradio() -> None:
    code = f"import sys, ui.handlers; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=UI.parent)
    assert out.stdout.strip() == "[]", f"ui.handlers pulls in {out.stdout.strip()}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_every_ui_module_is_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 400, f"ui/{path.name} has {lines} lines: split it by concern"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_settings_and_turns_are_left_to_the_library(path: Path) -> None:
    for node in ast.walk(_tree(path)):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = list(node.targets)
        for target in targets:
            name = _dotted(target)
            where = f"ui/{path.name}:{node.lineno}"
            assert ".settings." not in f"{name}." or name.startswith("self.settings"), (
                f"{where} assigns {name}: change settings with Assistant.configure(...)"
            )
            assert not name.endswith(".turns[]") and not name.endswith(".turns"), (
                f"{where} trims {name}: rag.ChatSession keeps its own turns"
            )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_the_ui_escapes_with_its_own_helper_only(path: Path) -> None:
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module == "rag":
            assert "escape_html" not in {a.name for a in node.names}, f"ui/{path.name}: use ui.escaping"
        if isinstance(node, ast.Call) and _dotted(node.func) == "html.escape":
            assert path.name == "escaping.py", f"ui/{path.name}:{node.lineno}: use ui.escaping.escape_html"


def test_the_checks_above_see_what_they_look_for() -> None:
    bad = ast.parse("assistant.settings.llm_model = 'x'\ndel session.turns[:-4]\nhtml.escape(s)")
    names = [_dotted(t) for n in ast.walk(bad) if isinstance(n, (ast.Assign, ast.Delete)) for t in n.targets]
    assert names == ["assistant.settings.llm_model", "session.turns[]"]
    assert any(isinstance(n, ast.Call) and _dotted(n.func) == "html.escape" for n in ast.walk(bad))
