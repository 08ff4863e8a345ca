"""The ``rag`` command's commands, one function each (``COMMANDS``); parsing and errors are in :mod:`rag.cli`."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import rag

#: Exit status of ``rag index`` when some files could not be indexed (the others were).
EXIT_SOME_FAILED = 3


def _where(index_dir: Path) -> str:
    """The index folder as the first line of a command's output names it: absolute."""
    return str(Path(index_dir).expanduser().resolve())


def _say_index(index_dir: Path) -> None:
    """The first line of a command's plain output: which index it works on."""
    print(f"index: {_where(index_dir)}", flush=True)


def _assistant(args: argparse.Namespace, build_default: bool = True) -> rag.Assistant:
    llm = {
        "llm_base_url": getattr(args, "llm_url", None),
        "llm_model": getattr(args, "llm_model", None),
        "llm_api_key": getattr(args, "llm_key", None),
        "vector_store": getattr(args, "store", None),
    }
    assistant = rag.Assistant(index_dir=args.index, **llm) if args.index else rag.Assistant(**llm)
    corpus = assistant.default_corpus() if build_default else None
    if corpus is not None:
        print(f"rag: building the default index from {corpus} ...", file=sys.stderr)
        assistant.index([corpus], progress=sys.stderr.isatty())
    return assistant


def _index(args: argparse.Namespace) -> int:
    missing = [path for path in args.paths if not Path(path).expanduser().exists()]
    if len(missing) == len(args.paths):
        raise rag.InputError(f"no such file or folder: {missing[0]}")
    on_ray = args.ray or args.ray_address or os.environ.get("RAG_RAY_ADDRESS") or args.ray_workers is not None
    if on_ray:
        store = {"vector_store": args.store} if args.store is not None else {}
        assistant: rag.Assistant = rag.RayIndexer(args.index, args.ray_address or None, args.ray_workers, **store)
    else:
        assistant = _assistant(args, build_default=False)
    if not args.json:
        _say_index(assistant.index_dir)
    report = assistant.index(args.paths, progress=not args.quiet and not args.json, rebuild=args.rebuild)
    if args.json:
        print(json.dumps({"index": _where(assistant.index_dir), **report.to_dict()}, indent=2))
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
        answer = assistant.ask(args.question, k=args.k).to_dict()
        print(json.dumps({"index": _where(assistant.index_dir), **answer}, indent=2, ensure_ascii=False))
    else:
        _say_index(assistant.index_dir)
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
    print(f"Asking {stats['documents']} document(s) in {_where(assistant.index_dir)}. Empty line or Ctrl-D to quit.")
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
    assistant = _assistant(args, build_default=False)
    records = assistant.sources()
    if args.json:
        print(json.dumps([{**r.summary(), "path": r.path} for r in records], indent=2))
        return 0
    _say_index(assistant.index_dir)
    if not records:
        print("The index is empty.")
        return 0
    width = max(len(r.source) for r in records)
    for r in records:
        found = json.loads(r.report or "{}")
        extra = f"  {rag.describe_extraction(found)}" if found else ""
        print(f"{r.source:<{width}}  {_count(r.chunks, 'chunk'):>12}  {r.size:>10,} bytes  {r.format}{extra}")
        about = "; ".join(x for x in [found.get("title") or "", *(found.get("identity") or [])] if x)
        if about:  # what the assistant takes this document to be (searched with each of its passages)
            print(f"{'':<{width}}  is: {about}")
    print(f"{_count(len(records), 'file')}, {_count(sum(r.chunks for r in records), 'chunk')}")
    return 0


def _count(n: int, noun: str) -> str:
    """``1 chunk``, ``2 chunks``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _remove(args: argparse.Namespace) -> int:
    assistant = _assistant(args, build_default=False)
    if not assistant.remove(args.source):
        raise rag.InputError(
            f"'{args.source}' is not in the index at {_where(assistant.index_dir)}: 'rag sources' lists what is"
        )
    print(f"removed {args.source} from the index at {_where(assistant.index_dir)}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import tempfile

    from tqdm import tqdm

    from .evaluation import evaluate, index_cache, load_eval_set, refusal_check, sample

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
    if not args.json:
        _say_index(index_dir)
    quiet = args.json or not sys.stderr.isatty()
    if args.index:
        report = assistant.index([eval_set.docs], progress=not quiet)
    else:  # the evaluation's own cached index: rebuilt when the settings or the version changed
        report = index_cache(assistant, eval_set.docs, progress=not quiet)
    if report.failed:
        print(f"rag: {len(report.failed)} document(s) could not be indexed", file=sys.stderr)
    questions = sample(eval_set.questions, args.sample)
    with tqdm(total=len(questions), desc="Asking", unit="q", disable=quiet, file=sys.stderr) as bar:
        result = evaluate(assistant, eval_set, questions, k=args.k, progress=bar.update)
    output = {"index": _where(index_dir), **result.to_dict()}
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
        from ui.server import serve  # Gradio loads only for this command
    except ImportError as exc:
        raise rag.ConfigError(f"the web chat cannot start ({exc}): run 'make install' or 'pip install -e .'") from exc
    assistant = _assistant(args)
    _say_index(assistant.index_dir)
    serve(assistant, host=args.host, port=args.port, api=not args.no_api, sources_footer=args.sources_footer)
    return 0


def _mcp(args: argparse.Namespace) -> int:
    if args.http is not None and not 1 <= args.http <= 65535:
        raise rag.InputError(f"--http must be a port from 1 to 65535, got {args.http}")
    try:
        from . import mcp_server  # the MCP SDK loads only for this command
    except ImportError as exc:
        raise rag.ConfigError(f"the MCP server cannot start ({exc}): run 'make install' or 'pip install mcp'") from exc
    assistant = _assistant(args)
    where = _where(assistant.index_dir)
    if not args.allow_write and not assistant.store.exists():
        raise rag.InputError(
            f"no index at {where}: build one with 'rag index PATH --index {where}' "
            "(or start with --allow-write to add documents through MCP)"
        )
    print(f"rag: index: {where}", file=sys.stderr, flush=True)  # stdout is the protocol
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
    assistant = _assistant(args, build_default=False)
    text = assistant.document_text(source)
    _say_index(assistant.index_dir)
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


#: Command name -> function taking the parsed arguments and returning the exit status.
COMMANDS = {
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
