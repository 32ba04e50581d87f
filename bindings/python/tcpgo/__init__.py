"""tcpgo -- fast TCP and TLS servers and clients for Python.

A typed ctypes binding of ``libtcpserver.so`` (the tcpgo engine, written in
Go). Events are handed to Python in batches, so a tcpgo echo server serves
more messages per second than the same server written with asyncio.

Quick start::

    import tcpgo

    server = tcpgo.TcpServer(delimiter="\\n", host="127.0.0.1")

    @server.on_message
    def echo(client_id: int, data: bytes) -> None:
        server.send(client_id, data)

    port = server.start(0)                          # a free port
    print(tcpgo.request("127.0.0.1", port, "hi"))   # b'hi'
    server.stop()

Classes: :class:`TcpServer`, :class:`TlsServer`, :class:`TcpClient`,
:class:`TlsClient`; asyncio flavours in :mod:`tcpgo.aio`; framings for the
``framing=`` argument (:class:`LengthPrefixed`, :class:`Delimiter`,
:class:`Lines`, :class:`Records`; see :mod:`tcpgo.framing`); TLS details
(:class:`CertInfo`, :class:`TlsInfo`); helpers :func:`request` and
:func:`generate_certs`; a CLI: ``python -m tcpgo --help``. The library's own
log lines go to the ``tcpgo`` logger.

The library is found through ``TCPGO_LIBRARY``, a copy beside this package,
the path recorded by ``make install``, or the system library path.
"""

from __future__ import annotations

from . import _lib

_lib.locate()  # ImportError now (not at first use) when the library is missing

from ._core import (CloseReason, ConnStats, Nid, ProxyMode, ServerStats, stop_all,  # noqa: E402
                    strerror)
from .client import TcpClient, TlsClient  # noqa: E402
from .errors import (AddressNotAvailableError, CertificateError, ConnectError,  # noqa: E402
                     ConnectionClosedError, ConnectRefusedError, ConnectTimeoutError, Error,
                     ErrorCode, ForkError, HandshakeError, InvalidPortError, NoClientError,
                     NotRunningError, PeerError, PortInUseError, SendError, SocketError,
                     StartCode, StartError, TlsConfigError)
from .framing import Delimiter, Framing, LengthPrefixed, Lines, MessagePart, Records  # noqa: E402
from .sending import FileTransfer  # noqa: E402
from .tls import CertInfo, CertResult, TlsInfo  # noqa: E402
from .server import BaseConnection, Connection, TcpServer, TlsServer  # noqa: E402
from .util import (CertPaths, generate_certs, library_path, library_version,  # noqa: E402
                   raise_fd_limit, request)

__version__ = "0.1.0"

__all__ = [
    "TcpServer", "TlsServer", "TcpClient", "TlsClient", "request", "generate_certs",
    "CertPaths", "Nid", "StartCode", "ErrorCode", "Error", "StartError", "InvalidPortError",
    "TlsConfigError", "CertificateError", "SocketError", "PortInUseError",
    "AddressNotAvailableError", "ConnectError", "ConnectRefusedError",
    "ConnectTimeoutError", "HandshakeError", "SendError", "NotRunningError", "NoClientError",
    "ConnectionClosedError", "PeerError", "ForkError", "stop_all", "strerror",
    "library_version", "library_path", "__version__",
    "Connection", "BaseConnection", "CloseReason", "ServerStats", "ConnStats", "ProxyMode",
    "raise_fd_limit",
    "Framing", "LengthPrefixed", "Delimiter", "Lines", "Records", "MessagePart", "FileTransfer",
    "CertInfo", "CertResult", "TlsInfo",
]
