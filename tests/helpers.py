"""Helpers shared by several test modules."""

from __future__ import annotations

from pathlib import Path


def resident_peak(pid: int) -> int:
    """The peak resident memory of running process ``pid`` so far, in bytes (``VmHWM``; 0 once it is gone).

    Read while the process runs: ``ru_maxrss`` from ``wait4`` is no use for a child started by
    ``subprocess`` (vfork), because Linux carries the parent's peak over into it at ``exec``, so a big
    test process makes every child look big.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


#: The heading and the first words of the sentence under it in :func:`sectioned_pdf`.
SECTION_HEADING = "Share Repurchases"
SECTION_SENTENCE = "For the three months ended September 30, 2023"


def sectioned_pdf(path: Path) -> None:
    """A one-page PDF of two sections, each a bold heading on its own short line above a paragraph of body
    text (the layout that glued "Share Repurchases" onto the first quoted sentence, issue #27 item 17)."""
    from reportlab.pdfgen import canvas

    sections = [
        (
            SECTION_HEADING,
            [
                f"{SECTION_SENTENCE}, the company repurchased 11 million shares of its common",
                "stock for $3.6 billion under its share repurchase program, against $4.6 billion a year",
                "before, and it paid dividends of $5.1 billion over the same three months.",
            ],
        ),
        (
            "Research and Development",
            [
                "Research and development expenses rose 8% in the quarter, driven by investment in cloud",
                "engineering and by higher headcount in the company's devices and gaming teams this year.",
            ],
        ),
    ]
    c = canvas.Canvas(str(path))
    y = 760
    for heading, lines in sections:
        c.setFont("Helvetica-Bold", 11)
        c.drawString(54, y, heading)
        y -= 18
        c.setFont("Helvetica", 10)
        for line in lines:
            c.drawString(54, y, line)
            y -= 13
        y -= 20
    c.save()
