"""The ``rag`` command: a thin layer over the public API in :mod:`rag`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import rag

from .cli_commands import COMMANDS, EXIT_SOME_FAILED


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Exit with status 2 and a one-line message that points to ``--help``."""
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
        action="store_true",
        help="read and embed on Ray (pip install 'rag-assistant[ray]'): the cluster of --ray-address or "
        "RAG_RAY_ADDRESS, else a local instance",
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="the Ray cluster to use (auto, HOST:6379, ray://HOST:10001; implies --ray; default RAG_RAY_ADDRESS)",
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

    p = sub.add_parser("eval", help="measure retrieval and answers on a question set")
    p.add_argument(
        "--index",
        metavar="DIR",
        help="index the set into DIR (default: a cached index of EVAL_DIR in the system's temporary folder, "
        "rebuilt when the settings change; RAG_INDEX_DIR is not used)",
    )
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
        return int(COMMANDS[args.command](args) or 0)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
