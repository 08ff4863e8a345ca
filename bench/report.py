"""Render the benchmarks' figures into the docs: every ``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->`` block
of docs/*.md is replaced by the table of ``bench/results/claims/NAME.json`` (written by ``bench/claims.py``).

Run: .venv/bin/python bench/report.py          # rewrite the blocks (``make bench`` does this last)
     .venv/bin/python bench/report.py --check  # exit 1 when a block differs from its results file
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from claims import CLAIMS_DIR, ROOT, header, table, write_atomic

DOCS = ROOT / "docs"
BLOCK = re.compile(r"(<!-- bench:([\w.-]+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)


def render(name: str, claims_dir: Path = CLAIMS_DIR) -> str:
    """The Markdown of one block: the line naming date, machine and command, then the table."""
    path = claims_dir / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"error: a docs block names bench:{name} but {path} does not exist: run its benchmark")
    result = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join([header(result), "", *table(result["claims"]), ""]) + "\n"


def rendered(text: str, claims_dir: Path = CLAIMS_DIR) -> str:
    """``text`` with every bench block filled from its results file."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group(2), claims_dir) + m.group(4), text)


def blocks(text: str) -> list[str]:
    """The names of the bench blocks in ``text``."""
    return [m.group(2) for m in BLOCK.finditer(text)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the docs match the results")
    args = parser.parse_args()
    stale = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        new = rendered(text)
        if new != text:
            stale.append(page.name)
            if not args.check:
                write_atomic(page, new)
    if not stale:
        print("every bench table in docs/ matches bench/results/claims")
    else:
        print(f"{', '.join(stale)}: {'differ from bench/results/claims' if args.check else 'rewritten'}")
    if args.check and stale:
        sys.exit(1)


if __name__ == "__main__":
    main()
