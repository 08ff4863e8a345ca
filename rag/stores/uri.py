"""Where the vectors live: the ``vector_store`` setting (``RAG_VECTOR_STORE``, ``--store``).

==========================================================  =========================================
value                                                       store
==========================================================  =========================================
empty (or ``faiss``)                                        FAISS files in the index directory (default)
``milvus://HOST[:PORT]/COLLECTION``                         a Milvus server or cluster (port 19530)
``milvus+https://[USER:PASSWORD@]HOST[:PORT]/COLLECTION``   the same over TLS, with credentials
``milvus-lite:///ABS/PATH/NAME.db``                         Milvus Lite in this process, data in NAME.db
``milvus-lite:REL/PATH/NAME.db``                            the same, relative to the working directory
``/ABS/PATH/NAME.db``, ``./REL/NAME.db``, ``~/NAME.db``        the same, named as pymilvus names a Lite file
==========================================================  =========================================

Options go in the query string: ``collection=NAME`` (Milvus Lite; default ``rag_chunks``),
``index=FLAT|HNSW|IVF_FLAT|IVF_SQ8|IVF_PQ|DISKANN|AUTOINDEX`` (default FLAT, exact like FAISS, on
Milvus Lite; HNSW on a server; Milvus Lite has no IVF_PQ or DISKANN), ``nlist=N`` (IVF lists,
default 1024), ``nprobe=N`` (IVF lists searched, default 32), ``ef=N`` (HNSW search depth, default
128; never below the number of candidates asked for), ``pq_m=N`` (IVF_PQ sub-vectors, default
dimension / 8). Parsing needs no Milvus client: ``import rag`` stays light.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

from ..errors import ConfigError

DEFAULT_PORT = 19530
DEFAULT_COLLECTION = "rag_chunks"
SERVER_INDEXES = ("FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "DISKANN", "AUTOINDEX")
LITE_INDEXES = ("FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8")
_COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_OPTIONS = {"collection", "index", "nlist", "nprobe", "ef", "pq_m"}
_HELP = (
    "use milvus://HOST:19530/COLLECTION for a Milvus server, milvus-lite:///ABS/PATH/FILE.db (or /ABS/PATH/FILE.db, "
    "./FILE.db) for Milvus Lite, or leave it empty for FAISS: set RAG_VECTOR_STORE or --store"
)
#: How a local path (pymilvus's way to name a Milvus Lite file) starts.
_LOCAL = ("/", "./", "../", "~/")


@dataclass(frozen=True)
class StoreURI:
    """A parsed Milvus ``vector_store`` value."""

    #: ``milvus`` (a server or cluster) or ``milvus-lite`` (in-process, a local folder).
    kind: str
    #: What ``pymilvus.MilvusClient`` is given: ``http(s)://host:port`` or the absolute ``.db`` path.
    uri: str
    collection: str
    index: str
    nlist: int = 1024
    nprobe: int = 32
    ef: int = 128
    pq_m: int = 0
    token: str = field(default="", repr=False)

    @property
    def lite(self) -> bool:
        """Whether this is Milvus Lite."""
        return self.kind == "milvus-lite"

    def display(self) -> str:
        """The location without credentials, for messages and the manifest."""
        if self.lite:
            return f"milvus-lite://{self.uri}?collection={self.collection}"
        scheme = "milvus+https" if self.uri.startswith("https:") else "milvus"
        return f"{scheme}://{self.uri.split('://', 1)[1]}/{self.collection}"


def parse_store_uri(value: str) -> StoreURI | None:
    """``None`` for the FAISS default (empty or ``faiss``), else the Milvus location; ConfigError if bad."""
    if not isinstance(value, str):
        raise ConfigError(f"vector_store must be text, got {value!r}: {_HELP}")
    text = value.strip()
    if text in ("", "faiss"):
        return None
    if any(ch.isspace() for ch in text):
        raise ConfigError(f"vector_store must not contain spaces, got {value!r}: {_HELP}")
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    local = not scheme and text.startswith(_LOCAL)  # /abs/x.db, ./x.db: Milvus Lite, as pymilvus takes them
    try:
        options = dict(parse_qsl(parsed.query, keep_blank_values=True, strict_parsing=bool(parsed.query)))
    except ValueError:
        raise ConfigError(f"vector_store has a malformed query string: {value!r}: {_HELP}") from None
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigError(
            f"vector_store has unknown option(s) {', '.join(sorted(unknown))} in {value!r}: "
            f"the options are {', '.join(sorted(_OPTIONS))}"
        )
    numbers: dict[str, int] = {name: _number(value, name, options.get(name), low, high) for name, low, high in _LIMITS}
    if scheme == "milvus-lite" or local:
        if local:
            path = text.split("?", 1)[0]
        else:
            path = unquote(parsed.netloc + parsed.path) if parsed.netloc else unquote(parsed.path)
        if not path.endswith(".db") or path == ".db" or path.endswith("/.db"):
            raise ConfigError(f"a Milvus Lite vector_store must name a file ending in .db, got {value!r}: {_HELP}")
        collection = _collection(value, options.get("collection", DEFAULT_COLLECTION))
        index = _index(value, options.get("index", "FLAT"), LITE_INDEXES, "Milvus Lite")
        lite = str(Path(path).expanduser().resolve())
        return StoreURI("milvus-lite", lite, collection, index, token="", **numbers)
    if scheme in ("milvus", "milvus+http", "milvus+https"):
        if "collection" in options:
            raise ConfigError(f"a Milvus server's collection is the URI path (milvus://HOST:PORT/NAME), got {value!r}")
        try:
            port = parsed.port or DEFAULT_PORT
        except ValueError:
            raise ConfigError(f"vector_store has a bad port: {value!r}: {_HELP}") from None
        host = parsed.hostname
        if not host:
            raise ConfigError(f"vector_store names no Milvus host: {value!r}: {_HELP}")
        name = parsed.path.strip("/")
        if not name:
            raise ConfigError(f"vector_store names no collection (milvus://HOST:PORT/COLLECTION): {value!r}")
        collection = _collection(value, name)
        index = _index(value, options.get("index", "HNSW"), SERVER_INDEXES, "Milvus")
        token = ""
        if parsed.username:
            token = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
        http = "https" if scheme == "milvus+https" else "http"
        host = f"[{host}]" if ":" in host else host
        return StoreURI("milvus", f"{http}://{host}:{port}", collection, index, token=token, **numbers)
    if not scheme and text.endswith(".db"):
        raise ConfigError(f"vector_store {value!r} looks like a Milvus Lite file: write ./{text} (or its full path)")
    raise ConfigError(f"vector_store {value!r} is not a store this version knows: {_HELP}")


_LIMITS = (("nlist", 1, 65536), ("nprobe", 1, 65536), ("ef", 1, 32768), ("pq_m", 0, 4096))
_DEFAULTS = {"nlist": 1024, "nprobe": 32, "ef": 128, "pq_m": 0}


def _number(value: str, name: str, raw: str | None, low: int, high: int) -> int:
    if raw is None:
        return _DEFAULTS[name]
    try:
        number = int(raw)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise ConfigError(
            f"vector_store option {name} must be a whole number from {low} to {high}, got {raw!r} in {value!r}"
        )
    return number


def _collection(value: str, name: str) -> str:
    if not _COLLECTION.fullmatch(name):
        raise ConfigError(
            f"Milvus collection names are letters, digits and _, not starting with a digit; got {name!r} in {value!r}"
        )
    return name


def _index(value: str, index: str, allowed: tuple[str, ...], engine: str) -> str:
    index = index.upper()
    if index not in allowed:
        raise ConfigError(f"{engine} index must be one of {', '.join(allowed)}, got {index!r} in {value!r}")
    return index
