"""Connections to Milvus: a server (or cluster), or Milvus Lite in this process (one process per data file)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, IndexCorruptError, IndexLockedError
from .uri import StoreURI

#: The in-process Milvus Lite server refuses pymilvus's default keepalive pings (every 10 s, even when
#: idle) with GOAWAY "too_many_pings" after a minute of embedding; on a loopback channel they are useless.
_LITE_GRPC = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": False}
_lite_lock = threading.Lock()
_lite_users: dict[str, int] = {}


def write_timestamp(client: Any, target: StoreURI) -> int:
    """The Milvus timestamp of this process's last write to the collection (0 if unknown, or Milvus Lite).

    pymilvus keeps it for its Session consistency level; it is read from there.
    """
    if target.lite:
        return 0
    try:
        from pymilvus.client import ts_utils

        address = client._get_connection().server_address
        return int(ts_utils.get_collection_ts(target.collection, address, "") or 0)
    except Exception:  # noqa: BLE001 - another pymilvus: reads fall back to Strong consistency
        return 0


def loads(value: Any) -> dict[str, Any]:
    try:
        data = json.loads(value) if value else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def open_client(target: StoreURI) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise ConfigError(
            f"RAG_VECTOR_STORE={target.display()} needs the Milvus client: pip install 'rag-assistant[milvus]' "
            "(or pip install 'pymilvus[milvus-lite]')"
        ) from None
    if not target.lite:
        try:
            return MilvusClient(uri=target.uri, token=target.token, timeout=30)
        except Exception as exc:  # noqa: BLE001 - any connection failure becomes one actionable line
            raise ConfigError(
                f"cannot reach Milvus at {target.display()} ({type(exc).__name__}: {exc}): start it, or fix "
                "RAG_VECTOR_STORE"
            ) from None
    path = target.uri
    import importlib.util

    if importlib.util.find_spec("milvus_lite") is None:
        raise ConfigError(
            f"RAG_VECTOR_STORE={target.display()} needs Milvus Lite: pip install 'rag-assistant[milvus]' "
            "(or pip install 'pymilvus[milvus-lite]')"
        )
    with _lite_lock:
        if _lite_users.get(path, 0) == 0:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            if _locked_elsewhere(Path(path)):
                raise IndexLockedError(
                    f"the Milvus Lite data at {path} is open in another process (Milvus Lite allows one process per "
                    f"file): stop it, or serve the file with 'milvus-lite server --data-dir {path}' and set "
                    f"RAG_VECTOR_STORE=milvus://127.0.0.1:19530/{target.collection}"
                )
        with _quiet("milvus_lite"):
            try:
                client = MilvusClient(uri=path, grpc_options=_LITE_GRPC)
            except Exception as exc:  # noqa: BLE001
                raise IndexCorruptError(
                    f"Milvus Lite cannot open {path} ({type(exc).__name__}: {exc}): check the folder, or move it "
                    "aside and rebuild the index"
                ) from None
        _lite_users[path] = _lite_users.get(path, 0) + 1
    return client


def close_client(client: Any, target: StoreURI) -> None:
    with contextlib.suppress(Exception):
        client.close()
    if not target.lite:
        return
    with _lite_lock:
        users = _lite_users.get(target.uri, 0) - 1
        if users > 0:
            _lite_users[target.uri] = users
            return
        _lite_users.pop(target.uri, None)
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(target.uri)


def _locked_elsewhere(path: Path) -> bool:
    """Whether another process holds Milvus Lite's lock on the data folder ``path``."""
    lock = path / "LOCK"
    if not lock.is_file():
        return False
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: Milvus Lite reports it itself
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
