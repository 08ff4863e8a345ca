"""The ``rag`` command: a thin layer over the public API in :mod:`rag`."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
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
    common.add_argument(
        "--store",
        metavar="URI",
        help="where the vectors live (RAG_VECTOR_STORE): empty for FAISS in the index directory, "
        "milvus://HOST:19530/COLLECTION or milvus-lite:///PATH/FILE.db",
    )
    llm = _Parser(add_help=False)
    llm.add_argument(
        "--llm-url", metavar="URL", help="OpenAI-compatible server for generated answers (RAG_LLM_BASE_URL)"
    )
    llm.add_argument("--llm-model", metavar="NAME", help="model on that server (RAG_LLM_MODEL; default: its first)")
    llm.add_argument("--llm-key", metavar="KEY", help="API key for that server, if needed (RAG_LLM_API_KEY)")

    parser = _Parser(prog="rag", description="Answer questions from your documents, with citations.")
    parser.add_argument("--version", action="version", version=f"rag {rag.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("index", parents=[common], help="add or update files and folders in the index")
    kinds = " ".join(sorted(rag.SUPPORTED_SUFFIXES))
    p.add_argument("paths", nargs="+", metavar="PATH", help=f"files or folders ({kinds})")
    p.add_argument("--rebuild", action="store_true", help="build the index anew (the old one stays until it is done)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="read and embed on Ray (pip install 'rag-assistant[ray]'): a local instance, or the cluster at "
        "ADDRESS (auto, HOST:6379, ray://HOST:10001; default RAG_RAY_ADDRESS)",
    )
    p.add_argument("--ray-workers", type=int, metavar="N", help="embedding workers on Ray (default: its CPUs)")
    p.epilog = f"exit status: 0 done, 1 error, 2 bad usage, {EXIT_SOME_FAILED} some files failed (the rest indexed)"

    p = sub.add_parser("ask", parents=[common, llm], help="answer one question")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve (default 5)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")

    p = sub.add_parser("chat", parents=[common, llm], help="ask questions in a terminal loop")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve (default 5)")

    p = sub.add_parser("sources", parents=[common], help="list indexed files with their chunk counts")
    p.add_argument("--json", action="store_true", help="print as JSON")

    p = sub.add_parser("show", parents=[common], help="print an indexed document's text, a cited span marked")
    p.add_argument("spec", metavar="SOURCE[:START-END]", help="a source name as 'rag sources' lists it, and a span")
    p.add_argument("--context", type=int, default=400, metavar="N", help="characters shown around the span")

    p = sub.add_parser("remove", parents=[common], help="remove a file from the index by its source name")
    p.add_argument("source")

    p = sub.add_parser("eval", parents=[common], help="measure retrieval and answers on a question set")
    p.add_argument("eval_dir", metavar="EVAL_DIR", help="squad-dev layout (docs/, questions.jsonl) or BEIR layout")
    p.add_argument("--sample", type=int, default=None, metavar="N", help="ask N questions spread over the set")
    p.add_argument("-k", "--k", type=int, default=5, help="passages retrieved per question (default 5)")
    p.add_argument("--refusal", action="store_true", help="also index half the documents and check refusals")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")

    p = sub.add_parser("migrate", help="copy a FAISS index into Milvus, vectors included (nothing is embedded)")
    p.add_argument(
        "--from",
        dest="sources",
        action="append",
        required=True,
        metavar="DIR",
        help="a FAISS index (left as it is); repeat to merge shards indexed in parallel",
    )
    p.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="URI",
        help="milvus://HOST:19530/COLLECTION or milvus-lite:///PATH/FILE.db",
    )
    p.add_argument("--index", metavar="DIR", help="new folder for the migrated index's documents, text and BM25")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("serve", parents=[common], help="start the web chat in the browser")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    p.add_argument("--no-api", action="store_true", help="do not serve the OpenAI-compatible API under /v1")
    p.add_argument(
        "--sources-footer",
        action="store_true",
        default=None,
        help="API answers end with a text list of their sources (RAG_API_SOURCES_FOOTER=1)",
    )

    p = sub.add_parser("mcp", parents=[common, llm], help="serve the index to MCP clients (stdio, or HTTP with --http)")
    p.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on PORT (at /mcp), not stdio")
    p.add_argument("--host", default="127.0.0.1", help="address for --http (default 127.0.0.1: this machine only)")
    p.add_argument("--allow-write", action="store_true", help="also offer the index and remove tools")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    _show_notices()
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
    except OSError as exc:  # a disk or file-system problem (full disk, a file where a folder should be...)
        print(f"rag: error: {exc}", file=sys.stderr)
        return 1


def _show_notices() -> None:
    """Print the library's notices (e.g. "waiting for another writer") as ``rag: ...`` lines on stderr."""
    import logging

    logger = logging.getLogger("rag")
    if not any(getattr(h, "rag_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rag: %(message)s"))
        handler.rag_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _assistant(args: argparse.Namespace, build_default: bool = True) -> rag.Assistant:
    from .config import default_corpus_dir

    llm = {
        "llm_base_url": getattr(args, "llm_url", None),
        "llm_model": getattr(args, "llm_model", None),
        "llm_api_key": getattr(args, "llm_key", None),
        "vector_store": getattr(args, "store", None),
    }
    assistant = rag.Assistant(index_dir=args.index, **llm) if args.index else rag.Assistant(**llm)
    corpus = default_corpus_dir()
    if build_default and not args.index and not assistant.store.exists() and corpus is not None:
        print(f"rag: building the default index from {corpus} ...", file=sys.stderr)
        assistant.index([corpus], progress=sys.stderr.isatty())
    return assistant


#: Exit status of ``rag index`` when some files could not be indexed (the others were).
EXIT_SOME_FAILED = 3


def _index(args: argparse.Namespace) -> int:
    missing = [path for path in args.paths if not Path(path).expanduser().exists()]
    if len(missing) == len(args.paths):
        raise rag.InputError(f"no such file or folder: {missing[0]}")
    if args.ray is not None or os.environ.get("RAG_RAY_ADDRESS") or args.ray_workers is not None:
        store = {"vector_store": args.store} if args.store is not None else {}
        assistant: rag.Assistant = rag.RayIndexer(args.index, args.ray or None, args.ray_workers, **store)
    else:
        assistant = _assistant(args, build_default=False)
    report = assistant.index(args.paths, progress=not args.quiet and not args.json, rebuild=args.rebuild)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for path, reason in report.failed:
            print(f"failed: {path}: {reason}", file=sys.stderr)
        for path, reason in report.skipped:
            print(f"skipped: {path}: {reason}", file=sys.stderr)
        if not args.quiet:
            for source, found in sorted(report.extraction.items()):
                print(f"{source}: {rag.describe_extraction(found)}")
        for line in report.problems():
            print(f"warning: {line}", file=sys.stderr)
        for path, same in report.duplicates:
            print(f"duplicate: {path}: same content as {same}, not indexed again", file=sys.stderr)
        for path, note in report.notes:
            print(f"note: {path}: {note}", file=sys.stderr)
        print(report.summary())
    if not report.failed:
        return 0
    nothing_done = not (report.added or report.updated or report.unchanged or report.removed)
    return 1 if nothing_done else EXIT_SOME_FAILED


def _ask(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    if args.json:
        print(json.dumps(assistant.ask(args.question, k=args.k).to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_stream(assistant.stream(args.question, k=args.k))
    return 0


def _print_stream(items: Iterator[str | rag.Answer]) -> rag.Answer:
    """Print text deltas as they arrive, then the note and the sources of the final answer."""
    shown: list[str] = []
    answer: rag.Answer | None = None
    for item in items:
        if isinstance(item, str):
            sys.stdout.write(item)
            sys.stdout.flush()
            shown.append(item)
        else:
            answer = item
    assert answer is not None
    if "".join(shown) != answer.text:  # a generated answer fell back: the note says why
        if shown:
            sys.stdout.write("\n\n(The text above is not used: see the note below.)\n\n")
        sys.stdout.write(answer.text)
    footer = answer.footer_lines()
    print("\n" + "\n".join(footer) if footer else "")
    sys.stdout.flush()
    return answer


def _chat(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    session = assistant.chat(k=args.k)
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
            _print_stream(session.stream(question, on_rewrite=_show_rewrite))
        except rag.InputError as exc:
            print(f"rag: {exc}", file=sys.stderr)


def _show_rewrite(standalone: str) -> None:
    print(f"(searching for: {standalone})")


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
        found = json.loads(r.report or "{}")
        extra = f"  {rag.describe_extraction(found)}" if found else ""
        print(f"{r.source:<{width}}  {_count(r.chunks, 'chunk'):>12}  {r.size:>10,} bytes  {r.format}{extra}")
    print(f"{_count(len(records), 'file')}, {_count(sum(r.chunks for r in records), 'chunk')}")
    return 0


def _count(n: int, noun: str) -> str:
    """``1 chunk``, ``2 chunks``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _record_dict(record: Any) -> dict[str, Any]:
    data = {
        key: getattr(record, key) for key in ("source", "path", "chunks", "size", "format", "added_at", "updated_at")
    }
    data["extraction"] = json.loads(record.report or "{}")
    return data


def _remove(args: argparse.Namespace) -> int:
    if not _assistant(args, build_default=False).remove(args.source):
        raise rag.InputError(f"'{args.source}' is not in the index: 'rag sources' lists what is")
    print(f"removed {args.source}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import tempfile

    from tqdm import tqdm

    from .evaluation import evaluate, load_eval_set, refusal_check, sample

    eval_dir = Path(args.eval_dir).expanduser()
    if not eval_dir.is_dir():
        raise rag.InputError(f"no such folder: {args.eval_dir}")
    if args.sample is not None and args.sample < 1:
        raise rag.InputError(f"--sample must be a positive number of questions, got {args.sample}")
    if not 1 <= args.k <= 100:
        raise rag.InputError(f"-k must be from 1 to 100, got {args.k}")
    settings = rag.Settings.from_env()
    workdir = Path(tempfile.gettempdir()) / f"rag-eval-{eval_dir.resolve().name}-{settings.chunk_tokens}"
    eval_set = load_eval_set(eval_dir, cache=workdir)
    index_dir = Path(args.index) if args.index else workdir / "index"
    assistant = rag.Assistant(settings=settings, index_dir=index_dir)
    quiet = args.json or not sys.stderr.isatty()
    report = assistant.index([eval_set.docs], progress=not quiet)
    if report.failed:
        print(f"rag: {len(report.failed)} document(s) could not be indexed", file=sys.stderr)
    questions = sample(eval_set.questions, args.sample)
    with tqdm(total=len(questions), desc="Asking", unit="q", disable=quiet, file=sys.stderr) as bar:
        result = evaluate(assistant, eval_set, questions, k=args.k, progress=bar.update)
    output = result.to_dict()
    if args.refusal:
        with tqdm(total=len(questions), desc="Refusal check", unit="q", disable=quiet, file=sys.stderr) as bar:
            output["refusal"] = refusal_check(settings, eval_set, questions, workdir, progress=bar.update)
    if args.json:
        print(json.dumps(output, indent=2))
        return 0
    print(result.table())
    if args.refusal:
        refusal = output["refusal"]
        print(f"  answered_when_indexed     {refusal['answered_when_indexed']:.3f}")
        print(f"  refused_when_not_indexed  {refusal['refused_when_not_indexed']:.3f}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .stores.migration import migrate
    from .stores.uri import parse_store_uri

    target = parse_store_uri(args.target)
    if target is None:
        raise rag.InputError(
            f"--to must name a Milvus store (milvus://HOST:19530/COLLECTION or milvus-lite:///PATH/FILE.db), "
            f"got {args.target!r}"
        )
    settings = rag.Settings.from_env(index_dir=args.index)
    quiet = args.json or not sys.stderr.isatty()
    with tqdm(desc="Copying", unit="chunk", disable=quiet, file=sys.stderr) as bar:
        sources = [Path(source) for source in args.sources]
        report = migrate(sources, target, settings.index_dir, settings.lock_timeout, progress=bar.update)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"copied {report['documents']} document(s), {report['chunks']} chunks from {', '.join(report['from'])} to "
            f"{report['to']} in {report['seconds']:.1f} s; use it with --index {report['index']} "
            f"--store {args.target} (or RAG_VECTOR_STORE)"
        )
    return 0


def _serve(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise rag.InputError(f"--port must be from 1 to 65535, got {args.port}")
    try:
        from ui.app import serve  # Gradio loads only for this command
    except ImportError as exc:
        raise rag.ConfigError(f"the web chat cannot start ({exc}): run 'make install' or 'pip install -e .'") from exc
    serve(_assistant(args), host=args.host, port=args.port, api=not args.no_api, sources_footer=args.sources_footer)
    return 0


def _mcp(args: argparse.Namespace) -> int:
    import os

    if args.http is not None and not 1 <= args.http <= 65535:
        raise rag.InputError(f"--http must be a port from 1 to 65535, got {args.http}")
    try:
        from . import mcp_server  # the MCP SDK loads only for this command
    except ImportError as exc:
        raise rag.ConfigError(f"the MCP server cannot start ({exc}): run 'make install' or 'pip install mcp'") from exc
    assistant = _assistant(args)
    assistant.warm()  # load the model and the index now, not on the first call
    if args.http is None:
        mcp_server.run_stdio(assistant, allow_write=args.allow_write)
        return 0
    announce = lambda line: print(line, file=sys.stderr)  # noqa: E731
    key = os.environ.get("RAG_API_KEY", "").strip()
    mcp_server.run_http(assistant, args.http, args.host, args.allow_write, key, announce=announce)
    return 0


_SPAN = re.compile(r"^(?P<source>.+):(?P<start>\d+)-(?P<end>\d+)$")


def _show(args: argparse.Namespace) -> int:
    """``rag show SOURCE[:START-END]``: the span in its context, marked (the whole text without a span)."""
    found = _SPAN.match(args.spec)
    source = found["source"] if found else args.spec
    text = _assistant(args, build_default=False).document_text(source)
    if found is None:
        print(text)
        return 0
    start, end = int(found["start"]), int(found["end"])
    if not 0 <= start < end <= len(text):
        raise rag.InputError(f"the span {start}-{end} is not inside {source} (0-{len(text)}): take it from a citation")
    if args.context < 0:
        raise rag.InputError(f"--context must be 0 or more characters, got {args.context}")
    lo, hi = max(0, start - args.context), min(len(text), end + args.context)
    mark, unmark = ("\x1b[7m", "\x1b[0m") if sys.stdout.isatty() else (">>>", "<<<")
    print(f"{source}, characters {start}-{end} of {len(text)}:\n")
    print(
        ("..." if lo else "")
        + text[lo:start]
        + mark
        + text[start:end]
        + unmark
        + text[end:hi]
        + ("..." if hi < len(text) else "")
    )
    return 0


_COMMANDS = {
    "index": _index,
    "show": _show,
    "ask": _ask,
    "chat": _chat,
    "sources": _sources,
    "remove": _remove,
    "eval": _eval,
    "migrate": _migrate,
    "serve": _serve,
    "mcp": _mcp,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
