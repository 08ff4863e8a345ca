"""Where the time of indexing PDFs goes: a per-stage profile of ``Assistant.index`` on real filings.

Run: .venv/bin/python bench/pdf_stages.py [DOCS] [--files N] [--out FILE]

The whole build runs once, in this process, as ``rag index`` runs it (same settings, a fresh index in a
temporary folder); each stage is timed by wrapping the function that does it, without changing it:

- open: PDFium opening the file (``pypdfium2.PdfDocument``);
- text: reading every page's words and their boxes from PDFium (``read_pdf`` less open and OCR);
- OCR: Tesseract on pages without a text layer (``rag.ocr.ocr_pdf_pages``);
- layout: rows, columns, running heads and prose (``lay_out`` less tables);
- tables: finding and writing tables (``find_tables``, ``write_table``);
- chunk: the chunker, word-piece counting included (``Chunker.chunk``);
- embed: the encoder (``Embedder.encode``), the model's load included;
- store: the rest (hashing, the SQLite and FTS5 rows, the vector index, the commit).

Wall seconds and CPU seconds of this process are both reported: on a machine shared with other jobs
the wall time is an upper bound, and the shares are what to compare. The files are read in this process
(``Indexer.read_process = False``), so that every stage is timed here: ``rag index`` reads a run this large
in a second process while it embeds (:mod:`rag.read_worker`), which this profile does not show. Not
part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SEC_DOCS = ROOT.parent / "shared" / "eval" / "sec-10q" / "docs"

STAGES = ("open", "text", "OCR", "layout", "tables", "chunk", "embed", "store")


class Clock:
    """Wall and CPU seconds spent inside wrapped functions, by stage (nested calls counted once)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.wall[stage] = self.wall.get(stage, 0.0) + time.perf_counter() - wall
                self.cpu[stage] = self.cpu.get(stage, 0.0) + time.process_time() - cpu

        setattr(owner, name, timed)


def profile(docs: Path, files: int) -> dict[str, Any]:
    """Index the first ``files`` PDFs of ``docs`` (all when 0) into a fresh index, timing each stage."""
    import pypdfium2

    from rag import Assistant, chunking, embedding, layout, ocr, pdf

    work = Path(tempfile.mkdtemp(prefix="rag-pdf-stages-"))
    corpus = work / "docs"
    corpus.mkdir()
    chosen = sorted(docs.glob("*.pdf"))[: files or None]
    for path in chosen:
        shutil.copy(path, corpus / path.name)
    clock = Clock()
    clock.wrap(pypdfium2, "PdfDocument", "open")
    clock.wrap(pdf, "read_pdf", "read")  # open + text + OCR
    clock.wrap(ocr, "ocr_pdf_pages", "OCR")
    clock.wrap(pdf, "lay_out", "lay_out")  # layout + tables
    clock.wrap(layout, "find_tables", "tables")
    clock.wrap(layout, "write_table", "tables")
    clock.wrap(chunking.Chunker, "chunk", "chunk")
    clock.wrap(embedding.Embedder, "encode", "embed")
    assistant = Assistant(index_dir=work / "index")
    make = assistant._indexer

    def in_process() -> Any:  # every stage in this process, where it is timed
        indexer = make()
        indexer.read_process = False
        return indexer

    assistant._indexer = in_process  # type: ignore[method-assign]
    wall, cpu = time.perf_counter(), time.process_time()
    report = assistant.index([corpus])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    shutil.rmtree(work, ignore_errors=True)
    pages = sum(int(r.get("pages", 0)) for r in report.extraction.values())
    result: dict[str, Any] = {
        "files": len(chosen),
        "pages": pages,
        "ocr_pages": sum(int(r.get("ocr_pages", 0)) for r in report.extraction.values()),
        "chunks": report.chunks_embedded + report.chunks_reused,
        "failed": len(report.failed),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "pages_per_s": round(pages / wall, 2),
        "pages_per_cpu_s": round(pages / cpu, 2),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    for name, seconds in (("wall", clock.wall), ("cpu", clock.cpu)):
        s = dict(seconds)
        total = wall if name == "wall" else cpu
        stages = {
            "open": s.get("open", 0.0),
            "text": s.get("read", 0.0) - s.get("open", 0.0) - s.get("OCR", 0.0),
            "OCR": s.get("OCR", 0.0),
            "layout": s.get("lay_out", 0.0) - s.get("tables", 0.0),
            "tables": s.get("tables", 0.0),
            "chunk": s.get("chunk", 0.0),
            "embed": s.get("embed", 0.0),
        }
        stages["store"] = total - sum(stages.values())
        result[f"stages_{name}_s"] = {k: round(v, 2) for k, v in stages.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", nargs="?", default=str(SEC_DOCS))
    parser.add_argument("--files", type=int, default=0, help="only the first N PDFs (0: all)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures here (JSON)")
    args = parser.parse_args()
    result = profile(Path(args.docs), args.files)
    print(
        f"{result['files']} PDFs, {result['pages']:,} pages ({result['ocr_pages']} by OCR), {result['chunks']:,} "
        f"chunks: {result['wall_s']:.1f} s wall, {result['pages_per_s']:.2f} pages/s; {result['cpu_s']:.1f} CPU-s, "
        f"{result['pages_per_cpu_s']:.2f} pages per CPU-s; load average {result['load_average']}"
    )
    wall, cpu = result["stages_wall_s"], result["stages_cpu_s"]
    print(f"\n{'stage':<8} {'wall s':>8} {'share':>6} {'CPU s':>8} {'share':>6}")
    for stage in STAGES:
        print(
            f"{stage:<8} {wall[stage]:8.2f} {100 * wall[stage] / result['wall_s']:5.1f}% "
            f"{cpu[stage]:8.2f} {100 * cpu[stage] / max(result['cpu_s'], 1e-9):5.1f}%"
        )
    if args.out is not None:
        part = args.out.with_name(args.out.name + ".part")
        part.write_text(json.dumps(result, indent=1) + "\n")
        os.replace(part, args.out)


if __name__ == "__main__":
    main()
