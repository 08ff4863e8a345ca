"""Example questions offered on an empty chat: for the seed corpus (``seeds/``) when it is indexed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag import DocumentRecord

#: Questions the seed documents answer, by the seed document's source name.
SEED_EXAMPLES: dict[str, tuple[str, ...]] = {
    "000_22749be4b06f8346.txt": (
        "Who invited Prime Minister Takaichi to visit the United States?",
        "What could the visit pave the way for in trade and research?",
        "Which regions are watching Tokyo's diplomatic posture?",
        "What would a visit by Prime Minister Takaichi likely feature?",
    ),
}


def examples_for(records: Sequence[DocumentRecord]) -> list[str]:
    """Example questions for the indexed documents (none when no seed document is indexed)."""
    indexed = {r.source for r in records}
    return [q for source, questions in SEED_EXAMPLES.items() if source in indexed for q in questions]
