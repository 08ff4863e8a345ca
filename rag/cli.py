"""The ``rag`` command: a thin layer over the public API in :mod:`rag`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import rag


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rag`` command."""
    common = _Parser(add_help=False)
    common.add_argument("--index", metavar="DIR", help="index directory (default: RAG_INDEX_DIR or ./index)")

    parser = _Parser(prog="rag", description="Answer questions from your documents, with citations.")
    parser.add_argument("--version", action="version", version=f"rag {rag.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("index", parents=[common], help="add or update files and folders in the index")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (.txt .md .html .pdf .docx)")
    p.add_argument("--rebuild", action="store_true", help="drop the index first and build it anew")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("ask", parents=[common], help="answer one question")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve (default 5)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")

    p = sub.add_parser("chat", parents=[common], help="ask questions in a terminal loop")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve (default 5)")

    p = sub.add_parser("sources", parents=[common], help="list indexed files with their chunk counts")
    p.add_argument("--json", action="store_true", help="print as JSON")

    p = sub.add_parser("remove", parents=[common], help="remove a file from the index by its source name")
    p.add_argument("source")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(_COMMANDS[args.command](args) or 0)
    except rag.RagError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _assistant(args: argparse.Namespace, build_default: bool = True) -> rag.Assistant:
    from .config import default_corpus_dir

    assistant = rag.Assistant(index_dir=args.index) if args.index else rag.Assistant()
    corpus = default_corpus_dir()
    if build_default and not args.index and not assistant.store.exists() and corpus is not None:
        print(f"rag: building the default index from {corpus} ...", file=sys.stderr)
        assistant.index([corpus], progress=sys.stderr.isatty())
    return assistant


def _index(args: argparse.Namespace) -> int:
    assistant = _assistant(args, build_default=False)
    for path in args.paths:
        if not Path(path).expanduser().exists():
            raise rag.InputError(f"no such file or folder: {path}")
    report = assistant.index(args.paths, progress=not args.quiet and not args.json, rebuild=args.rebuild)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for path, reason in report.failed:
            print(f"failed: {path}: {reason}", file=sys.stderr)
        for path, reason in report.skipped:
            print(f"skipped: {path}: {reason}", file=sys.stderr)
        print(report.summary())
    nothing_done = not (report.added or report.updated or report.unchanged or report.removed)
    return 1 if report.failed and nothing_done else 0


def _ask(args: argparse.Namespace) -> int:
    answer = _assistant(args).ask(args.question, k=args.k)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(answer)
    return 0


def _chat(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    stats = assistant.stats()
    print(f"Asking {stats['documents']} document(s) in {assistant.index_dir}. Empty line or Ctrl-D to quit.")
    while True:
        try:
            question = input("\nquestion> ").strip()
        except EOFError:
            print()
            return 0
        if not question or question.lower() in {"exit", "quit", ":q"}:
            return 0
        try:
            print(assistant.ask(question, k=args.k))
        except rag.InputError as exc:
            print(f"rag: {exc}", file=sys.stderr)


def _sources(args: argparse.Namespace) -> int:
    records = _assistant(args, build_default=False).sources()
    if args.json:
        print(json.dumps([_record_dict(r) for r in records], indent=2))
        return 0
    if not records:
        print("The index is empty.")
        return 0
    width = max(len(r.source) for r in records)
    for r in records:
        print(f"{r.source:<{width}}  {r.chunks:>5} chunks  {r.size:>10,} bytes  {r.format}")
    print(f"{len(records)} file(s), {sum(r.chunks for r in records)} chunks")
    return 0


def _record_dict(record: Any) -> dict[str, Any]:
    return {
        key: getattr(record, key) for key in ("source", "path", "chunks", "size", "format", "added_at", "updated_at")
    }


def _remove(args: argparse.Namespace) -> int:
    if not _assistant(args, build_default=False).remove(args.source):
        raise rag.InputError(f"'{args.source}' is not in the index: 'rag sources' lists what is")
    print(f"removed {args.source}")
    return 0


_COMMANDS = {"index": _index, "ask": _ask, "chat": _chat, "sources": _sources, "remove": _remove}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
