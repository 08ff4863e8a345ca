"""Run a command in a fresh process and measure it: wall seconds, stdout and its own peak RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import time

#: Runs the command as its child and prints that child's peak RSS first: RUSAGE_CHILDREN of the
#: benchmark itself would be the largest of *all* its children so far, not this command's.
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "out = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stderr.write(out.stderr)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.stdout.write(out.stdout)\n"
    "sys.exit(out.returncode)\n"
)


def measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str, float]:
    """Wall seconds, stdout and peak resident memory (MiB) of ``cmd`` run in a fresh process."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    first, _, rest = done.stdout.partition("\n")
    return seconds, rest, int(first) / 1024


#: Questions about seeds/ that the load and latency benchmarks ask in turn.
SEED_QUESTIONS = [
    "Who invited Prime Minister Takaichi to visit the United States?",
    "What did Japan's Foreign Ministry confirm?",
    "What economic cooperation is expected from the visit?",
    "What are the implications for regional stability?",
]
