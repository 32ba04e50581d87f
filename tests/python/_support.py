"""Shared helpers of the tcpgo Python tests (unittest, standard library only).

Importing this module puts the checkout's ``bindings/python`` first on
``sys.path`` (so the tests exercise the package of this checkout, not an
installed one) and, when ``TCPGO_LIBRARY`` is not set and the library was
built, points it at ``build/lib/libtcpserver.so``.

Synchronisation is by events with timeouts, never by sleeping.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PKG_DIR = ROOT / "bindings" / "python"

if str(PKG_DIR) not in sys.path:
    sys.path.insert(0, str(PKG_DIR))
if not os.environ.get("TCPGO_LIBRARY"):
    _built = ROOT / "build" / "lib" / "libtcpserver.so"
    if _built.exists():
        os.environ["TCPGO_LIBRARY"] = str(_built)

import tcpgo  # noqa: E402

LOOPBACK = "127.0.0.1"
TIMEOUT = 10.0  # upper bound of every wait; a passing test waits far less


def subprocess_env(**extra: str) -> Dict[str, str]:
    """Environment for child Pythons: this checkout's package and library."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PKG_DIR)] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


_certs: Optional[tcpgo.CertPaths] = None
_cert_lock = threading.Lock()
_tmpdirs: List[str] = []


def tempdir() -> str:
    d = tempfile.mkdtemp(prefix="tcpgo-pytest-")
    _tmpdirs.append(d)
    return d


@atexit.register
def _cleanup_tmp() -> None:
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


def certs() -> tcpgo.CertPaths:
    """A test PKI made once per test process with tcp_generate_certs."""
    global _certs
    with _cert_lock:
        if _certs is None:
            _certs = tcpgo.generate_certs(tempdir())
        return _certs


class Collector:
    """Thread-safe list whose contents can be waited for."""

    def __init__(self) -> None:
        self.items: List[Any] = []
        self.cond = threading.Condition()

    def __call__(self, *args: Any) -> None:
        self.add(args[0] if len(args) == 1 else args)

    def add(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, pred: Callable[[List[Any]], bool], timeout: float = TIMEOUT) -> List[Any]:
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.items), timeout):
                raise AssertionError(f"timed out after {timeout} s; have {self.items[:20]!r}"
                                     f"{'...' if len(self.items) > 20 else ''}")
            return list(self.items)

    def wait_count(self, n: int, timeout: float = TIMEOUT) -> List[Any]:
        return self.wait_for(lambda items: len(items) >= n, timeout)

    def snapshot(self) -> List[Any]:
        with self.cond:
            return list(self.items)


def echo_server(delimiter: Any = "\n", **kwargs: Any) -> tcpgo.TcpServer:
    kwargs.setdefault("host", LOOPBACK)
    srv = tcpgo.TcpServer(delimiter, **kwargs)
    srv.on_message(lambda cid, data: srv.send(cid, data))
    return srv


def tls_echo_server(delimiter: Any = "\n", **kwargs: Any) -> tcpgo.TlsServer:
    c = certs()
    kwargs.setdefault("host", LOOPBACK)
    kwargs.setdefault("ca", c.ca)
    srv = tcpgo.TlsServer(c.server_cert, c.server_key, delimiter=delimiter, **kwargs)
    srv.on_message(lambda cid, data: srv.send(cid, data))
    return srv


def tls_client(delimiter: Any = "\n", **kwargs: Any) -> tcpgo.TlsClient:
    c = certs()
    kwargs.setdefault("ca", c.ca)
    kwargs.setdefault("cert", c.client_cert)
    kwargs.setdefault("key", c.client_key)
    return tcpgo.TlsClient(delimiter=delimiter, **kwargs)


def free_port() -> int:
    """A port nothing listens on right now (for 'connection refused' tests)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def run_python(code: str, *args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, env=kw.pop("env", subprocess_env()), **kw)


class TestCase(unittest.TestCase):
    """Stops whatever a test left running."""

    def tearDown(self) -> None:
        tcpgo.stop_all()

    def wait_event(self, ev: threading.Event, what: str, timeout: float = TIMEOUT) -> None:
        if not ev.wait(timeout):
            self.fail(f"timed out waiting for {what}")


def deadline(seconds: float) -> Callable[[], bool]:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() < end
