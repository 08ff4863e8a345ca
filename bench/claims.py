"""Figures beside their targets: how every benchmark of ``make bench`` reports what the docs claim.

A benchmark builds a list of :func:`claim` rows (the figure, what was measured, the target, met or not) and
hands it to :func:`record`, which prints the table with the date and the machine and writes it atomically to
``bench/results/claims/NAME.json``. ``bench/report.py`` renders those files into the docs pages between
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``, so the tables there are generated, never typed.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLAIMS_DIR = ROOT / "bench" / "results" / "claims"

_OPS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    ">=": ("≥", operator.ge),
    "<=": ("≤", operator.le),
    ">": (">", operator.gt),
    "<": ("<", operator.lt),
}


def machine() -> dict[str, Any]:
    """The CPU model and flags that matter here (from /proc/cpuinfo), cores, Python and the load average."""
    model: str = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "cpu_flags": [f for f in wanted if f in flags],
        "python": sys.version.split()[0],
        "load_average": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None,
    }


def _show(value: float | int | str, digits: int | None) -> str:
    if isinstance(value, str):
        return value
    if digits is None:
        return f"{value:,}" if isinstance(value, int) else f"{value:,.3f}"
    return f"{value:,.{digits}f}"


def claim(
    figure: str,
    measured: float | int | None,
    op: str | None = None,
    target: float | int | None = None,
    *,
    unit: str = "",
    digits: int | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One row: ``figure`` measured at ``measured`` against ``op target`` (``>=``, ``<=``, ``>``, ``<``).

    ``measured`` None means the figure was not measured in this run: the row says so and counts as not met.
    Without ``op`` the figure is only reported (``met`` is None).
    """
    if (op is None) != (target is None) or (op is not None and op not in _OPS):
        raise ValueError(f"a target needs both an operator ({', '.join(_OPS)}) and a value: got {op!r} {target!r}")
    suffix = f" {unit}" if unit else ""
    row: dict[str, Any] = {
        "figure": figure,
        "measured": measured,
        "shown": "not measured" if measured is None else _show(measured, digits) + suffix,
        "op": op,
        "target_value": target,
        "target": "reported" if op is None else f"{_OPS[op][0]} {_show(target, digits)}{suffix}",  # type: ignore[arg-type]
        "note": note,
    }
    row["met"] = is_met(row)
    return row


def is_met(row: dict[str, Any]) -> bool | None:
    """Whether a row's measured figure meets its target, worked out again from the row (None: reported only)."""
    if row["op"] is None:
        return None
    return row["measured"] is not None and bool(_OPS[row["op"]][1](row["measured"], row["target_value"]))


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The rows as a Markdown table: figure | measured | target | met."""
    lines = ["| figure | measured | target | met |", "|---|---|---|---|"]
    for row in rows:
        met = "–" if row["met"] is None else "met" if row["met"] else "**not met**"
        note = f" ({row['note']})" if row.get("note") else ""
        lines.append(f"| {row['figure']}{note} | {row['shown']} | {row['target']} | {met} |")
    return lines


def header(result: dict[str, Any]) -> str:
    """One line: when, on what, by which command, and whether the run was reduced."""
    m = result["machine"]
    flags = f", {' '.join(m['cpu_flags'])}" if m.get("cpu_flags") else ""
    load = f", load average {m['load_average']}" if m.get("load_average") is not None else ""
    line = (
        f"Measured {result['date']} on {m['cpu']} ({m['cores']} cores{flags}{load}), Python {m['python']}: "
        f"`{result['command']}`."
    )
    if result.get("reduced"):
        line += f" **Reduced run**: {result['reduced']}; the full run is `make bench`."
    return line


def _portable(arg: str) -> str:
    """A path argument as it reads from the checkout (``bench/x.py``, ``../shared/eval/...``), else as given."""
    try:
        path = Path(arg).resolve()
    except (OSError, ValueError):
        return arg
    if not Path(arg).exists():
        return arg
    if path.is_relative_to(ROOT):
        return str(path.relative_to(ROOT))
    if path.is_relative_to(ROOT.parent):
        return "../" + str(path.relative_to(ROOT.parent))
    return arg


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record(
    name: str,
    title: str,
    rows: list[dict[str, Any]],
    *,
    reduced: str = "",
    details: dict[str, Any] | None = None,
    out_dir: Path | None = None,
) -> Path:
    """Print ``rows`` beside their targets (with date and machine) and write them to ``out_dir/NAME.json``.

    ``reduced`` says how the run was smaller than ``make bench``'s (fewer questions, files or vectors), so
    a figure from a reduced run is never read as the full one. ``details`` are kept in the file as they are.
    """
    result = {
        "name": name,
        "title": title,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": " ".join(["python", *(_portable(a) for a in sys.argv)]),
        "reduced": reduced,
        "claims": rows,
        "details": details or {},
    }
    path = (out_dir or CLAIMS_DIR) / f"{name}.json"
    write_atomic(path, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    targets = [row for row in rows if row["met"] is not None]
    met = sum(bool(row["met"]) for row in targets)
    print(f"\n{title}\n{header(result)}", flush=True)
    print("\n".join(table(rows)))
    print(f"{met} of {len(targets)} targets met; written to {path}", flush=True)
    return path
