"""Exceptions and result codes of :mod:`tcpgo`.

Every exception tcpgo raises on purpose derives from :class:`tcpgo.Error`
(except :class:`ValueError`/:class:`TypeError` for bad arguments, and
:class:`TimeoutError` when :meth:`TcpClient.recv` times out).

Start failures raise a :class:`StartError` subclass whose ``.code`` is the
start code of nilshenrich/TCP_ServerClient v2 (a :class:`StartCode`). Those
caused by the operating system follow the conventions of :class:`OSError`:
they derive from the matching built-in exception and carry ``.errno``::

    >>> import errno, tcpgo
    >>> try:
    ...     tcpgo.TcpClient().connect("127.0.0.1", 1)      # nothing listens there
    ... except ConnectionRefusedError as e:
    ...     print(e.code.name, e.errno == errno.ECONNREFUSED)
    CONNECT True

- port in use: :class:`PortInUseError`, an :class:`OSError` with EADDRINUSE;
- address not local: :class:`AddressNotAvailableError`, an :class:`OSError`
  with EADDRNOTAVAIL;
- connection refused: :class:`ConnectRefusedError`, a
  :class:`ConnectionRefusedError` with ECONNREFUSED;
- connect timed out: :class:`ConnectTimeoutError`, a :class:`TimeoutError`
  with ETIMEDOUT.
"""

from __future__ import annotations

import builtins
import enum
import errno as _errno
import os
from typing import Any, Dict, Optional, Tuple

__all__ = [
    "StartCode", "ErrorCode", "Error", "ForkError", "StartError", "InvalidPortError",
    "TlsConfigError", "CertificateError", "SocketError", "PortInUseError",
    "AddressNotAvailableError", "ConnectError", "ConnectRefusedError",
    "ConnectTimeoutError", "HandshakeError", "SendError", "NotRunningError",
    "NoClientError", "ConnectionClosedError", "PeerError",
]


class StartCode(enum.IntEnum):
    """Results of the start functions (``SERVER_/CLIENT_ERROR_START_*`` of TCP_ServerClient v2)."""

    OK = 0
    WRONG_PORT = 10
    SET_CONTEXT = 20
    WRONG_CA_PATH = 30
    WRONG_CERT_PATH = 31
    WRONG_KEY_PATH = 32
    WRONG_CA = 33
    WRONG_CERT = 34
    WRONG_KEY = 35
    CREATE_SOCKET = 40
    SET_SOCKET_OPT = 41
    BIND_PORT = 42
    LISTEN = 43
    CONNECT = 50
    CONNECT_INIT = 60


class ErrorCode(enum.IntEnum):
    """The library's negative ``TCP_ERR_*`` codes (as carried by :class:`PeerError`)."""

    OK = 0
    ALREADY_RUNNING = -1
    INVALID_ARG = -2
    NO_CLIENT = -3
    NO_FIELD = -4
    NOT_RUNNING = -5
    INTERNAL = -6
    MESSAGE_TOO_LONG = -7
    IO = -8
    HANDSHAKE = -9
    BUFFER_TOO_SMALL = -10
    UNKNOWN_OPTION = -11
    TIMEOUT = -12
    CONTAINS_DELIMITER = -13
    QUEUE_FULL = -14
    FILE = -15
    MEMORY_BUDGET = -16
    REFUSED = -17
    PROXY = -18
    ACCEPT = -19


def _code(value: int) -> "int | StartCode | ErrorCode":
    try:
        return StartCode(value) if value >= 0 else ErrorCode(value)
    except ValueError:
        return value


class Error(Exception):
    """Base class of every tcpgo error."""


class ForkError(Error):
    """tcpgo was used in a child process forked after the library was loaded.

    The Go runtime inside ``libtcpserver.so`` does not survive ``fork()``; use
    the ``spawn`` start method of :mod:`multiprocessing`, or ``exec`` first.
    """


class StartError(Error):
    """A server or client could not start.

    ``.code`` is the :class:`StartCode` (or a negative :class:`ErrorCode` for
    misuse), ``.reason`` the library's detailed reason (a path, an OS error...)
    and ``.errno`` the OS error number behind the failure (``None`` when there
    was none, such as a certificate that does not parse).
    """

    #: errno of an instance made without one (by a subclass that implies it)
    default_errno: Optional[int] = None

    def __init__(self, code: int, message: str, reason: str = "",
                 errno: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = _code(code)
        self.message = message
        self.reason = reason
        self.errno = errno or self.default_errno
        # OSError's conventional fields (harmless on the other subclasses)
        self.strerror = os.strerror(self.errno) if self.errno else None

    def __str__(self) -> str:  # not OSError's "[Errno N] ..." form: the message says more
        return self.message

    def __reduce__(self) -> Tuple[Any, ...]:  # keep pickling working with the extra arguments
        return (type(self), (int(self.code), self.message, self.reason, self.errno))


class InvalidPortError(StartError, ValueError):
    """The port is outside 0..65535 (servers) or 1..65535 (clients). Code 10."""


class TlsConfigError(StartError):
    """The TLS configuration could not be built (code 20)."""


class CertificateError(StartError):
    """A CA, certificate or key file is missing, unreadable or invalid (codes 30-35).

    ``.path`` is the file concerned and ``.kind`` one of ``"ca"``, ``"cert"``, ``"key"``.
    """

    def __init__(self, code: int, message: str, reason: str = "",
                 path: Optional[str] = None, kind: str = "",
                 errno: Optional[int] = None) -> None:
        super().__init__(code, message, reason, errno)
        self.path = path
        self.kind = kind

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (int(self.code), self.message, self.reason, self.path, self.kind,
                             self.errno))


class SocketError(StartError, OSError):
    """The listening socket could not be created, configured or bound (codes 40-43);
    an :class:`OSError` whose ``.errno`` says why (EACCES, EMFILE...)."""


class PortInUseError(SocketError):
    """``bind()`` failed because the port is in use: code 42, ``.errno`` EADDRINUSE."""

    default_errno = _errno.EADDRINUSE


class AddressNotAvailableError(SocketError):
    """``bind()`` failed because the listen address is not one of this host's:
    code 42, ``.errno`` EADDRNOTAVAIL."""

    default_errno = _errno.EADDRNOTAVAIL


class ConnectError(StartError, builtins.ConnectionError):
    """The client could not connect: refused, unreachable, name not resolved (code 50).

    ``.errno`` is the OS error (ENETUNREACH, EHOSTUNREACH...), ``None`` when the
    name could not be resolved."""


class ConnectRefusedError(ConnectError, builtins.ConnectionRefusedError):
    """Nothing listens on the server's port: code 50, ``.errno`` ECONNREFUSED."""

    default_errno = _errno.ECONNREFUSED


class ConnectTimeoutError(ConnectError, builtins.TimeoutError):
    """The connect (plus TLS handshake) did not finish within ``connect_timeout``:
    code 50 (60 when the library reports the TLS handshake itself timed out),
    ``.errno`` ETIMEDOUT."""

    default_errno = _errno.ETIMEDOUT


class HandshakeError(StartError):
    """The TLS handshake failed: the server's certificate was rejected, or the
    server refused the client (code 60)."""


class SendError(Error):
    """A message could not be queued for sending (unknown client, not running,
    send queue full...). ``.code`` is the library's :class:`ErrorCode`
    (``NO_CLIENT``, ``NOT_RUNNING``, ``QUEUE_FULL``, ``MEMORY_BUDGET``...), or
    ``None`` when the library did not say; ``.reason`` its explanation."""

    def __init__(self, message: str, reason: str = "",
                 code: "int | ErrorCode | None" = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.code: "int | ErrorCode | None" = None if code is None else _code(code)

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (str(self.args[0]) if self.args else "", self.reason,
                             None if self.code is None else int(self.code)))


class NotRunningError(Error):
    """The server or client is not running."""


class NoClientError(Error, KeyError):
    """No connected client has this id."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ConnectionClosedError(Error, builtins.ConnectionError):
    """:meth:`TcpClient.recv` was called on a connection that has ended and
    whose messages were all received."""


class PeerError(Error):
    """An error the library reported about a connection (passed to ``on_error``, not raised).

    ``.code`` is an :class:`ErrorCode` such as ``MESSAGE_TOO_LONG``, ``HANDSHAKE``,
    ``IO`` or ``TIMEOUT``; ``.client_id`` is 0 for a connection that never
    became established (a failed TLS handshake) and for client handles.
    """

    def __init__(self, code: int, message: str, client_id: int = 0) -> None:
        super().__init__(message)
        self.code = _code(code)
        self.message = message
        self.client_id = client_id

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (int(self.code), self.message, self.client_id))


_CERT_KIND = {30: "ca", 31: "cert", 32: "key", 33: "ca", 34: "cert", 35: "key"}
_CERT_WHAT = {
    30: "CA file {path!r} is missing or unreadable",
    31: "certificate file {path!r} is missing or unreadable",
    32: "key file {path!r} is missing or unreadable",
    33: "CA file {path!r} holds no valid PEM certificate",
    34: "certificate file {path!r} holds no valid PEM certificate",
    35: "key file {path!r} holds no valid private key, or the key does not match "
        "the certificate {cert!r}",
}


# Go reports OS errors with the C library's strerror() text in lower case
# ("bind: address already in use"); for a library without tcp_errno() the
# errno is recovered from that text.
_ERRNO_BY_TEXT: Dict[str, int] = {}
for _n in sorted(_errno.errorcode):
    _ERRNO_BY_TEXT.setdefault(os.strerror(_n).lower(), _n)
_ERRNO_BY_TEXT["i/o timeout"] = _errno.ETIMEDOUT  # Go's dial deadline


def _errno_from_text(reason: str) -> Optional[int]:
    low = reason.lower()
    best: Optional[Tuple[str, int]] = None
    for text, n in _ERRNO_BY_TEXT.items():
        if text in low and (best is None or len(text) > len(best[0])):
            best = (text, n)
    return best[1] if best else None


def _is_timeout(reason: str) -> bool:
    low = reason.lower()
    return "timeout" in low or "timed out" in low or "deadline" in low


def start_error(code: int, reason: str, *, what: str, port: Optional[int] = None,
                host: Optional[str] = None, ca: Optional[str] = None,
                cert: Optional[str] = None, key: Optional[str] = None,
                timeout: Optional[float] = None) -> StartError:
    """Build the exception for a failed start (internal).

    ``code`` is the start function's result; when the library has
    tcp_errno() it is a :class:`tcpgo._lib.Failure` that also carries the
    calling thread's ``errno`` (read right after the call, on its thread).
    """
    err_no: Optional[int] = getattr(code, "errno", None)
    if err_no is None:
        err_no = _errno_from_text(reason)
    err_no = err_no or None
    code = int(code)
    tail = f" ({reason})" if reason else ""
    where = f"{host}:{port}" if host else f"port {port}"
    if code == StartCode.WRONG_PORT:
        return InvalidPortError(code, f"{what}: invalid port {port}{tail}", reason, err_no)
    if code == StartCode.SET_CONTEXT:
        return TlsConfigError(code, f"{what}: TLS configuration could not be built{tail}",
                              reason, err_no)
    if code in _CERT_KIND:
        kind = _CERT_KIND[code]
        path = {"ca": ca, "cert": cert, "key": key}[kind]
        msg = _CERT_WHAT[code].format(path=path, cert=cert)
        return CertificateError(code, f"{what}: {msg}{tail}", reason, path=path, kind=kind,
                                errno=err_no)
    if code == StartCode.BIND_PORT:
        if err_no == _errno.EADDRINUSE:
            return PortInUseError(code, f"{what}: cannot bind {where}: port in use{tail}",
                                  reason, err_no)
        if err_no == _errno.EADDRNOTAVAIL:
            return AddressNotAvailableError(code, f"{what}: cannot bind {where}: the address "
                                                  f"is not one of this host's{tail}", reason,
                                            err_no)
        why = os.strerror(err_no).lower() if err_no else "bind failed"
        return SocketError(code, f"{what}: cannot bind {where}: {why}{tail}", reason, err_no)
    if code in (StartCode.CREATE_SOCKET, StartCode.SET_SOCKET_OPT, StartCode.LISTEN):
        return SocketError(code, f"{what}: cannot listen on {where}: "
                                 f"{StartCode(code).name.lower().replace('_', ' ')} failed{tail}",
                           reason, err_no)
    if code == StartCode.CONNECT:
        if err_no == _errno.ETIMEDOUT or (err_no is None and _is_timeout(reason)):
            return ConnectTimeoutError(code, f"{what}: connecting to {where} timed out"
                                             f"{'' if timeout is None else f' after {timeout:g} s'}"
                                             f"{tail}", reason, err_no)
        if err_no == _errno.ECONNREFUSED:
            return ConnectRefusedError(code, f"{what}: cannot connect to {where}: connection "
                                             f"refused{tail}", reason, err_no)
        return ConnectError(code, f"{what}: cannot connect to {where}{tail}", reason, err_no)
    if code == StartCode.CONNECT_INIT:
        if err_no == _errno.ETIMEDOUT:
            return ConnectTimeoutError(code, f"{what}: TLS handshake with {where} timed out"
                                             f"{tail}", reason, err_no)
        return HandshakeError(code, f"{what}: TLS handshake with {where} failed{tail}", reason,
                              err_no)
    name = _code(code)
    label = name.name if isinstance(name, enum.IntEnum) else str(code)
    return StartError(code, f"{what}: start failed with {label}{tail}", reason, err_no)
