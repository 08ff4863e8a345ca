"""The shape of reading and the command line: small modules, and names still found where they used to be.

``rag.documents``, ``rag.layout`` and ``rag.cli`` were split by concern (encodings, sections, HTML text;
page rows, PDF tables; the commands). Code written against the old modules keeps importing from them.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import rag

RAG = Path(rag.__file__).resolve().parent
#: The modules of reading (files -> text) and of the ``rag`` command.
MODULES = [
    "documents",
    "encodings",
    "sections",
    "html_text",
    "layout",
    "page_rows",
    "pdf_tables",
    "cli",
    "cli_commands",
]
#: Names that moved out of a module, still importable from it.
STILL_THERE = {
    "rag.documents": [
        "Document",
        "FoundFile",
        "Skipped",
        "Section",
        "SUPPORTED_SUFFIXES",
        "IMAGE_SUFFIXES",
        "decode_text",
        "discover",
        "file_digest",
        "html_to_text",
        "load",
        "load_within",
        "markdown_sections",
        "text_sections",
        "repair_markup",
        "escape_unclosed",
    ],
    "rag.layout": ["Word", "Row", "Fragment", "FRAGMENT_GAP", "Layout", "PageText", "lay_out", "title_of"],
    "rag.cli": ["main", "build_parser", "EXIT_SOME_FAILED"],
}


@pytest.mark.parametrize("name", MODULES)
def test_each_module_stays_under_400_lines(name: str) -> None:
    lines = len((RAG / f"{name}.py").read_text(encoding="utf-8").splitlines())
    assert lines <= 400, f"rag/{name}.py has {lines} lines: split it by concern"


@pytest.mark.parametrize("module", sorted(STILL_THERE))
def test_moved_names_still_import_from_their_old_module(module: str) -> None:
    loaded = importlib.import_module(module)
    missing = [name for name in STILL_THERE[module] if not hasattr(loaded, name)]
    assert not missing, f"{module} lost {missing}"


def test_the_moved_names_are_the_same_objects() -> None:
    from rag import documents, html_text, layout, page_rows

    assert documents.repair_markup is html_text.repair_markup
    assert documents.escape_unclosed is html_text.escape_unclosed
    assert layout.Fragment is page_rows.Fragment
    assert layout.FRAGMENT_GAP == page_rows.FRAGMENT_GAP
