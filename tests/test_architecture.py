"""The shape of the code: no import circles in `rag/`, the shared layers at the bottom, one export table."""

from __future__ import annotations

import ast
from pathlib import Path

import rag

RAG = Path(rag.__file__).resolve().parent
#: Modules every stage may use; they import nothing of the package above them.
BOTTOM = {
    "errors",
    "types",
    "text",
    "boxes",
    "budgets",
    "config",
    "stores.uri",
    "encodings",
    "sections",
    "encoders.base",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(RAG).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Package modules imported when ``path`` is imported (module level, outside TYPE_CHECKING)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(target)
            for alias in node.names:  # "from . import x" imports the module x
                if (RAG / Path(*[*target.split("."), alias.name]).with_suffix(".py")).is_file() or not node.module:
                    found.add(f"{target}.{alias.name}".strip("."))
    return {m for m in found if m}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in RAG.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_circles() -> None:
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                raise AssertionError("import circle: " + " -> ".join([*trail[trail.index(child) :], child]))
            if child not in state:
                visit(child, [*trail, child])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_shared_layers_import_nothing_above_them() -> None:
    graph = _graph()
    for module in BOTTOM:
        above = {m for m in graph[module] if m not in BOTTOM and not m.startswith("stores.uri")}
        assert not above, f"rag.{module} imports {sorted(above)}"


def test_exports_come_from_one_table() -> None:
    table = rag._EXPORTS  # type: ignore[attr-defined]
    assert sorted(rag.__all__) == sorted(table)
    source = (RAG / "__init__.py").read_text(encoding="utf-8")
    checked: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for item in node.body:
                if isinstance(item, ast.ImportFrom):
                    for alias in item.names:
                        checked[alias.name] = (item.module or "").lstrip(".")
    assert checked == table, "the TYPE_CHECKING imports and the lazy table disagree"
    import importlib

    for name in rag.__all__:  # each name is the very object its module defines
        assert getattr(rag, name) is getattr(importlib.import_module(f"rag.{table[name]}"), name), name
    assert "escape_html" not in rag.__all__, "only the UI escapes HTML: it has its own (ui/render.py)"


def test_the_whole_public_api_resolves_without_heavy_libraries() -> None:
    """``import rag`` and every exported name load no model, index, web or cluster library (they load on use)."""
    import subprocess
    import sys

    heavy = ("torch", "transformers", "sentence_transformers", "faiss", "gradio", "fastapi", "ray", "pymilvus")
    code = (
        "import sys, rag\n"
        "bare = sorted(m for m in sys.modules if m.startswith('rag.'))\n"
        "for name in rag.__all__: getattr(rag, name)\n"
        f"print(bare, sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[] []", out.stdout
