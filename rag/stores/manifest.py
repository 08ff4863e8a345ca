"""``manifest.json``: what an index is (model, dimension, chunking, versions, counts), for people and tools.

Derived from the catalog after every change and written atomically; a deleted or damaged manifest is
written again by the next change (or empty change).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import fs

MANIFEST = "manifest.json"


def write_manifest(directory: Path, meta: dict[str, Any], documents: int, chunks: int, fields: dict[str, Any]) -> None:
    """Write the manifest of the index whose catalog metadata is ``meta``, with the vector engine's ``fields``."""
    manifest = {
        "format": "rag-index",
        "schema": meta.get("schema"),
        **meta.get("config", {}),
        **fields,
        "generation": meta.get("generation", 0),
        "documents": documents,
        "chunks": chunks,
        "created_at": meta.get("created_at"),
        "updated_at": meta.get("updated_at"),
    }
    fs.atomic_write(Path(directory) / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of an index directory, or ``None`` when there is none."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
