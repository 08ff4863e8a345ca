"""What one upload did, for the page, the API and the logs: files stored, replaced, left unchanged,
repeated or refused, and the index report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag import IndexReport


@dataclass
class UploadResult:
    """What one upload did: the files stored, the ones refused (with reasons) and the index report."""

    stored: list[tuple[str, str]] = field(default_factory=list)  # (original name, stored name)
    unchanged: list[tuple[str, str]] = field(default_factory=list)  # already present with the same bytes
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (original name, reason)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (original name, indexed source it repeats)
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (original name, the source it replaced)
    report: IndexReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (file names only: no server paths)."""
        report = None
        if self.report is not None:
            report = self.report.to_dict()
            for key, items in (("failed", self.report.failed), ("skipped", self.report.skipped)):
                report[key] = [{"name": Path(p).name, "reason": r} for p, r in items]
            report["duplicates"] = [{"name": Path(p).name, "same_as": s} for p, s in self.report.duplicates]
        return {
            "stored": [{"name": o, "stored_as": s} for o, s in self.stored],
            "unchanged": [{"name": o, "stored_as": s} for o, s in self.unchanged],
            "rejected": [{"name": o, "reason": r} for o, r in self.rejected],
            "duplicates": [{"name": o, "same_as": s} for o, s in self.duplicates],
            "replaced": [{"name": o, "stored_as": s} for o, s in self.replaced],
            "report": report,
        }

    def lines(self) -> list[tuple[str, str]]:
        """One ``(kind, text)`` per file for people: kind is ok, same or error."""
        out = []
        for original, stored in self.replaced:
            out.append(("ok", f"{original}: replaced {stored}; answers now come from the new text"))
        for original, stored in self.stored:
            renamed = f" (stored as {stored})" if stored != original else ""
            out.append(("ok", f"{original}: indexed{renamed}"))
        for original, stored in self.unchanged:
            out.append(("same", f"{original}: already indexed as {stored}, unchanged"))
        for original, same in self.duplicates:
            out.append(("same", f"{original}: same content as {same}, not indexed again"))
        for original, reason in self.rejected:
            out.append(("error", f"{original}: not added: {reason}"))
        return out

    def files(self) -> int:
        """How many of the files given were handled (stored, replaced, unchanged, repeated or refused)."""
        return sum(len(x) for x in (self.stored, self.replaced, self.unchanged, self.duplicates, self.rejected))
