"""The web UI's one HTML-escaping helper (the library has none: only the page puts text into markup)."""

from __future__ import annotations

import html


def escape_html(text: str) -> str:
    """``text`` safe to place in HTML, inside elements or attribute values (quotes escaped too)."""
    return html.escape(text, quote=True)


__all__ = ["escape_html"]
