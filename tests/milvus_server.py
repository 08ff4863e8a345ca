"""A real Milvus standalone server for the tests: the ``milvus-server`` command of the PyPI ``milvus`` package.

One server per test session (about 10 to 60 s to start, 250 MB resident), in a temporary folder, on
free ports picked here and checked free on 127.0.0.1. It is stopped (its whole process group) at the end.

Milvus 2.3's gRPC listeners bind every interface whatever its ``ip`` settings say (they only choose the
address it advertises, set here to 127.0.0.1), so the server runs with authentication on and its root
password replaced by a random one before any test uses it: nothing else on the network can use it. Its
embedded etcd listens on 127.0.0.1:2379 and 2380 (fixed by Milvus).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

#: The environment variable through which the server's address reaches subprocesses of the tests.
ENV = "MILVUS_TEST_URI"
START_TIMEOUT = 240.0
_PORTS = (
    "proxy-port",
    "etcd-port",
    "root-coord-port",
    "proxy-internal-port",
    "query-coord-port",
    "query-node-port",
    "index-coord-port",
    "index-node-port",
    "data-coord-port",
    "data-node-port",
)
_COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord", "dataNode")


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that are free on 127.0.0.1 now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _executable() -> str:
    here = Path(sys.executable).parent / "milvus-server"
    found = str(here) if here.exists() else shutil.which("milvus-server")
    if not found:
        raise RuntimeError("milvus-server is missing: pip install -e '.[test]' (it comes with the PyPI package milvus)")
    return found


class MilvusServer:
    """``milvus-server`` started in ``folder``; ``uri`` is the ``RAG_VECTOR_STORE`` prefix that reaches it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.password = secrets.token_hex(12)

    def start(self) -> None:
        """Start the server and wait until it answers, with authentication on and a random root password."""
        ports = dict(zip(_PORTS, free_ports(len(_PORTS)), strict=True))
        self.port = ports["proxy-port"]
        command = [_executable(), "--data", str(self.folder), "--authorization-enabled", "true"]
        for name, port in ports.items():
            command += [f"--{name}", str(port)]
        for component in _COMPONENTS:
            command += ["--extra-config", f"{component}.ip=127.0.0.1"]
        log = (self.folder.parent / "milvus-server.out").open("wb")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self._wait()
        from pymilvus import MilvusClient

        client = MilvusClient(uri=f"http://127.0.0.1:{self.port}", token="root:Milvus", timeout=60)
        try:
            client.update_password("root", "Milvus", self.password)
        finally:
            client.close()

    def _wait(self) -> None:
        from pymilvus import MilvusClient

        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"milvus-server exited with {self.process.returncode}: {self._tail()}")
            try:
                client = MilvusClient(uri=f"http://127.0.0.1:{self.port}", token="root:Milvus", timeout=5)
                client.list_collections()
                client.close()
                return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
                time.sleep(1)
        self.stop()
        raise RuntimeError(f"milvus-server did not answer in {START_TIMEOUT:.0f} s ({last}): {self._tail()}")

    def _tail(self) -> str:
        path = self.folder.parent / "milvus-server.out"
        text = path.read_text(errors="replace") if path.exists() else ""
        logs = self.folder / "logs" / "milvus-stderr.log"
        if logs.exists():
            text += logs.read_text(errors="replace")
        return text[-2000:]

    @property
    def uri(self) -> str:
        """``milvus://root:PASSWORD@127.0.0.1:PORT`` (add ``/COLLECTION``)."""
        return f"milvus://root:{self.password}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server and the Milvus process it started (one process group)."""
        if self.process is None:
            return
        process, self.process = self.process, None
        for sig, wait in ((signal.SIGINT, 15), (signal.SIGKILL, 15)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
                # milvus-server returns when its child is gone; the group may still hold the child briefly
                os.killpg(process.pid, signal.SIGKILL)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                pass
            break


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    """One Milvus standalone server for the session; its URI is also in ``MILVUS_TEST_URI`` for subprocesses."""
    folder = tmp_path_factory.mktemp("milvus-server") / "data"
    server = MilvusServer(folder)
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    os.environ[ENV] = server.uri
    try:
        yield server
    finally:
        os.environ.pop(ENV, None)
        server.stop()
