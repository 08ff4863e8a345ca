"""Where text sits on its page: runs of output text with their boxes, and the boxes of any span.

A PDF's or image's text is written with a record of the box each piece came from (:class:`Run`); a
stored chunk keeps the runs inside it as JSON, so a passage, and the sentences a citation quotes, map
back to boxes on the page.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    """``text[start:end]`` of the output comes from this box on ``page`` (1-based; box in 0-1 of the page)."""

    start: int
    end: int
    page: int
    x0: float
    y0: float
    x1: float
    y1: float


def boxes_for(runs: Sequence[Run], start: int, end: int) -> list[tuple[float, float, float, float]]:
    """Boxes of the text ``[start, end)`` on the page where it starts, merged per line.

    A run only partly inside the span is cut in proportion to its characters.
    """
    i = bisect.bisect_right(runs, start, key=lambda r: r.end)
    page = None
    lines: list[list[float]] = []
    for run in runs[i:]:
        if run.start >= end:
            break
        if run.end <= start:
            continue
        if page is None:
            page = run.page
        if run.page != page:
            break
        width = (run.x1 - run.x0) / max(1, run.end - run.start)
        x0 = run.x0 + width * max(0, start - run.start)
        x1 = run.x1 - width * max(0, run.end - end)
        for line in lines:
            if abs(line[1] - run.y0) < 0.004 and abs(line[3] - run.y1) < 0.004:
                line[0], line[2] = min(line[0], x0), max(line[2], x1)
                break
        else:
            lines.append([x0, run.y0, x1, run.y1])
    return [(round(a, 4), round(b, 4), round(c, 4), round(d, 4)) for a, b, c, d in lines]


def span_layout(runs: Sequence[Run], page: int | None, start: int, end: int) -> str:
    """JSON of the page and the runs inside ``[start, end)``: what a stored chunk keeps of the layout."""
    if page is None or not runs:
        return ""
    i = bisect.bisect_right(runs, start, key=lambda r: r.end)
    inside = []
    for run in runs[i:]:
        if run.start >= end:
            break
        if run.page == page:
            inside.append([run.start, run.end, run.x0, run.y0, run.x1, run.y1])
    return json.dumps({"page": page, "runs": inside}, separators=(",", ":"))


def parse_layout(layout: str) -> tuple[int | None, tuple[Run, ...]]:
    """The page and runs of a stored chunk's layout JSON (``(None, ())`` when it has none)."""
    if not layout:
        return None, ()
    data = json.loads(layout)
    page = int(data["page"])
    return page, tuple(Run(int(a), int(b), page, x0, y0, x1, y1) for a, b, x0, y0, x1, y1 in data["runs"])
