"""One SQLite file in an index directory: WAL, full sync, read-only fallback, replacement detected.

A connection is shared by the threads of a process (one at a time, through :meth:`SQLiteFile.db`).
When another process replaces or deletes the file (a damaged index rebuilt from nothing), the next
use reconnects, so a long-running reader never answers from a deleted file; ``epoch`` counts those
reconnections for caches of derived data. A folder that cannot be written is opened read-only.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import IndexNotFoundError
from . import fs

DATABASE = "store.sqlite"
#: The connection's page cache, KiB (SQLite's default is 2,000): keyword search on a large index reads
#: each matching chunk's length from FTS5's size table, and at 1M chunks a 16 MiB cache took the
#: budgeted search from 6.5 to 5.0 ms at p50 (bench/hybrid_scale.py's questions, docs/scaling.md).
CACHE_KIB = 16_384


class SQLiteFile:
    """The database file ``store.sqlite`` of an index directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.read_only = False
        #: Counts reconnections after the database file was replaced: caches of derived data compare it.
        self.epoch = 0
        self._conn: sqlite3.Connection | None = None
        self._conn_lock = threading.RLock()
        self._inode: tuple[int, int] | None = None

    @property
    def database(self) -> Path:
        return self.directory / DATABASE

    def exists(self) -> bool:
        """Whether a catalog is stored in the directory (:class:`IndexWriteError` when the folder may not be read)."""
        try:
            return self.database.is_file()
        except PermissionError:
            raise fs.no_access(self.directory) from None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.exists():
                raise IndexNotFoundError(
                    f"no index at {self.directory}: build one with 'rag index PATH --index {self.directory}'"
                )
            inode = fs.inode(self.database)
            try:
                conn = sqlite3.connect(self.database, check_same_thread=False, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                conn.execute("SELECT count(*) FROM meta").fetchone()
                self.read_only = False
            except sqlite3.DatabaseError as exc:
                fallback = self._open_read_only()  # a read-only mount or folder still answers questions
                if fallback is None:
                    raise fs.problem(exc, self.directory) from None
                conn = fallback
            self._conn, self._inode = conn, inode
        return self._conn

    def _open_read_only(self) -> sqlite3.Connection | None:
        """A read-only connection when the index folder cannot be written (None if it is writable or unreadable)."""
        if fs.writable(self.directory):
            return None
        from urllib.parse import quote

        for mode in ("mode=ro", "immutable=1"):
            try:
                conn = sqlite3.connect(
                    f"file:{quote(str(self.database.resolve()))}?{mode}",
                    uri=True,
                    check_same_thread=False,
                    timeout=30,
                    isolation_level=None,
                )
                conn.execute("SELECT count(*) FROM meta").fetchone()
                conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            except sqlite3.DatabaseError:
                continue
            self.read_only = True
            return conn
        return None

    def _check_replaced(self) -> None:
        """Reconnect when the database file was replaced or deleted by another process (e.g. a damaged
        index rebuilt from nothing), so a long-running reader never answers from a deleted file."""
        if self._conn is not None and fs.inode(self.database) != self._inode:
            self._conn.close()
            self._conn = None
            self.epoch += 1

    @contextlib.contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        """The connection, held by this thread; database errors become one clear line."""
        with self._conn_lock:
            self._check_replaced()
            try:
                yield self._connect()
            except sqlite3.DatabaseError as exc:
                raise fs.problem(exc, self.directory) from None

    def close(self) -> None:
        """Close the database connection."""
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def create_file(self, initialise: Callable[[sqlite3.Connection], None]) -> None:
        """Make the database anew, atomically: ``initialise`` fills a temporary file, which then replaces it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{DATABASE}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                initialise(conn)
            finally:
                conn.close()
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        except (sqlite3.DatabaseError, OSError) as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise fs.problem(exc, self.directory) from None
        for suffix in ("-wal", "-shm", "-journal"):  # left by a deleted database: SQLite would replay them
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{DATABASE}{suffix}").unlink()
        os.replace(tmp, self.database)
        fs.fsync_dir(self.directory)

    def drop_file(self, *also: str) -> None:
        """Delete the database, then the files named in ``also`` (the database first: a crash then leaves
        no index, never one missing its WAL; a WAL left behind is deleted by the next create_file() rather
        than replayed into the new database)."""
        self.close()
        for name in (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", *also):
            (self.directory / name).unlink(missing_ok=True)
