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
