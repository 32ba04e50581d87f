"""One-call helpers: :func:`request`, :func:`generate_certs`, versions."""

from __future__ import annotations

import os
from typing import NamedTuple, Optional, Union

from . import _lib
from ._core import Data
from .client import TcpClient, TlsClient
from .errors import Error, ErrorCode

__all__ = ["request", "generate_certs", "CertPaths", "library_version", "library_path",
           "raise_fd_limit"]

PathLike = Union[str, "os.PathLike[str]"]


class CertPaths(NamedTuple):
    """Paths of the files written by :func:`generate_certs`."""

    ca: str
    ca_key: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def generate_certs(directory: PathLike, hosts: Optional[str] = None) -> CertPaths:
    """Write a fresh test PKI into ``directory`` (created if missing) and return its paths.

    Files: ``ca.pem``, ``ca.key``, ``server.pem``, ``server.key``, ``client.pem``,
    ``client.key`` (ECDSA P-256, one year). The server certificate is valid for
    the comma-separated ``hosts`` (default ``"localhost,127.0.0.1,::1"``); the
    client certificate has CN "tcpgo client", O "tcpgo", OU "test". For tests and
    demos only.

    >>> import tempfile, tcpgo
    >>> paths = tcpgo.generate_certs(tempfile.mkdtemp())
    >>> os.path.basename(paths.server_cert)
    'server.pem'
    """
    d = os.path.abspath(os.fspath(directory))
    os.makedirs(d, exist_ok=True)
    rc = _lib.lib().tcp_generate_certs(os.fsencode(d), None if hosts is None else hosts.encode())
    if rc != 0:
        what = {ErrorCode.FILE: "the directory is not writable",
                ErrorCode.INVALID_ARG: "invalid argument (hosts?)"}.get(rc, f"code {rc}")
        raise Error(f"generate_certs({d!r}, {hosts!r}) failed: {what}")
    j = lambda n: os.path.join(d, n)  # noqa: E731
    return CertPaths(j("ca.pem"), j("ca.key"), j("server.pem"), j("server.key"),
                     j("client.pem"), j("client.key"))


def request(host: str, port: int, data: Data, *, tls: bool = False,
            ca: Optional[PathLike] = None, cert: Optional[PathLike] = None,
            key: Optional[PathLike] = None, verify: str = "full",
            delimiter: Union[bytes, str, int, None] = b"\n", max_len: int = 0,
            timeout: Optional[float] = 10.0) -> bytes:
    """Connect, send one message, return the first message received, disconnect.

    With the default ``delimiter=b"\\n"`` the message is sent with a newline
    appended and the reply is one newline-terminated message (without it);
    with ``delimiter=None`` the first chunk of bytes received is returned.
    ``tls=True`` uses TLS with ``ca`` (None = system CAs), optional client
    ``cert``/``key`` and ``verify`` ("full" or "ca"). ``timeout`` (seconds)
    bounds the connect and the wait for the reply: :class:`tcpgo.ConnectTimeoutError`
    or :class:`TimeoutError`.

    Example::

        reply = tcpgo.request("127.0.0.1", 9000, "hello", timeout=5)
        reply = tcpgo.request("localhost", 9443, b"hi", tls=True, ca="pki/ca.pem",
                              cert="pki/client.pem", key="pki/client.key")
    """
    client: TcpClient
    if tls:
        client = TlsClient(ca, cert, key, delimiter, max_len, verify=verify,
                           connect_timeout=timeout)
    else:
        if ca is not None or cert is not None or key is not None:
            raise ValueError("ca/cert/key given without tls=True")
        client = TcpClient(delimiter, max_len, connect_timeout=timeout)
    with client:
        client.connect(host, port)
        client.send(data)
        return client.recv(timeout)


def library_version() -> str:
    """The version of the loaded libtcpserver ("MAJOR.MINOR.PATCH")."""
    v = _lib.lib().tcp_version()
    return v.decode() if v else ""


def raise_fd_limit() -> int:
    """Raise this process's soft limit of open descriptors (``RLIMIT_NOFILE``)
    to its hard limit and return the new soft limit -- for a server with more
    than about 1000 connections (each one is a descriptor). Loading tcpgo does
    not change the limit; this is an explicit choice, inherited by child
    processes started afterwards. Raises :class:`OSError` when it fails."""
    from ._core import need, thread_error_text

    n = need("tcp_raise_fd_limit")()
    if n < 0:
        err = getattr(_lib.lib(), "tcp_errno", lambda: 0)()
        raise OSError(err, thread_error_text() or os.strerror(err) or "tcp_raise_fd_limit failed")
    return int(n)


def library_path() -> str:
    """The path of the libtcpserver that tcpgo loads (or has loaded)."""
    return _lib.locate()
