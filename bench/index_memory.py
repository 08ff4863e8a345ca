"""Peak memory of `rag index` as the corpus grows: 1x, 4x and 8x squad-dev (copies under other names).

Run: .venv/bin/python bench/index_memory.py [DOCS] [--sizes 1,4,8]
Each copy gets its own file name and its own words at the start of every line (a title line with
the file's name is not enough: chunks of the same text are embedded once and reused), so every chunk
of every copy is embedded. Indexing reads and embeds a group of files at a time inside one transaction,
so the peak resident memory should stay nearly flat while the corpus doubles: what grows is the
vector index itself (384 float32 per chunk).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from claims import claim, record
from proc import measured

ROOT = Path(__file__).resolve().parent.parent
SQUAD_DOCS = ROOT.parent / "shared" / "eval" / "squad-dev" / "docs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", nargs="?", default=str(SQUAD_DOCS))
    parser.add_argument("--sizes", default="1,4,8", help="corpus sizes, as multiples of DOCS")
    args = parser.parse_args()
    files = sorted(Path(args.docs).glob("*.txt"))
    work = Path(tempfile.mkdtemp(prefix="rag-mem-"))
    print(f"corpus: {args.docs} ({len(files)} files), {os.cpu_count()} cores; peak RSS of 'rag index' per size")
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            corpus = work / f"x{size}"
            corpus.mkdir()
            for copy in range(size):
                for file in files:
                    lines = file.read_text(encoding="utf-8").splitlines()
                    marked = "\n".join(f"Copy {copy}. {line}" if line.strip() else line for line in lines)
                    (corpus / f"{file.stem}-copy{copy}{file.suffix}").write_text(marked + "\n", encoding="utf-8")
            index = work / f"index-x{size}"
            cmd = [sys.executable, "-m", "rag.cli", "index", str(corpus), "--index", str(index), "--json"]
            seconds, out, peak = measured(cmd)
            report = json.loads(out)
            rows.append((size, report["chunks_embedded"], seconds, peak))
            print(
                f"{size}x: {report['chunks_embedded']:,} chunks embedded in {seconds:.1f} s, peak RSS {peak:,.0f} MiB",
                flush=True,
            )
            shutil.rmtree(corpus)
            shutil.rmtree(index)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(rows) > 1:
        (s0, c0, _, p0), (s1, c1, _, p1) = rows[0], rows[-1]
        print(
            f"\ncorpus {s1 // s0}x larger ({c1 / c0:.1f}x the chunks): peak RSS {p1 / p0:.2f}x "
            f"(+{p1 - p0:,.0f} MiB, {1024 * (p1 - p0) / max(1, c1 - c0):.1f} KiB per added chunk)"
        )
        checks = [
            claim(f"peak memory, {s}x the corpus ({c:,} chunks)", round(p), unit="MiB", digits=0) for s, c, _, p in rows
        ]
        checks.append(
            claim(f"peak memory at {s1}x over {s0}x (flat)", round(p1 / p0, 2), "<=", 1.15, unit="x", digits=2)
        )
        parts = [] if (s0, s1) == (1, 8) else [f"sizes {args.sizes}, not 1,4,8"]
        if Path(args.docs).resolve() != SQUAD_DOCS.resolve():
            parts.append(f"a corpus of {len(files)} files, not squad-dev's 24")
        reduced = "; ".join(parts)
        record("index-memory", "Peak memory of `rag index` as the corpus grows", checks, reduced=reduced)


if __name__ == "__main__":
    main()
