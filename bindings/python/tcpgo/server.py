"""TCP and TLS servers: :class:`TcpServer` and :class:`TlsServer`, and the
per-client :class:`Connection` objects their handlers receive."""

from __future__ import annotations

import ctypes
import inspect
import os
import struct
import sys
import weakref
from threading import get_ident
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _core, _lib
from ._core import (BACKPRESSURE_CODES, COMMON_OPTIONS, EV_CLOSED, EV_ERROR, EV_ESTABLISHED,
                    EV_MESSAGE, EV_READY, HEADER, HEADER_SIZE, ArityCache, CloseReason,
                    ConnStats, Data, Endpoint, F, OptionTable, ProxyMode, ServerStats, Writable,
                    address_list, as_bytes, bool_option, check_port, close_reason, count_option,
                    field_nid, need, proxy_mode_option, seconds_option, send_error,
                    thread_error_code, thread_error_text)
from .errors import (ErrorCode, NoClientError, NotRunningError, SendError, StartError,
                     start_error)
from .framing import Framing, MessagePart
from .sending import FileTransfer, ProgressHandler, iovec_array, line_bytes, refusal, start_file
from .tls import (CertHandler, CertSource, TlsInfo, apply_tls_options, as_pem, check_source,
                  install_cert_handler, is_pem, pair_args, read_tls_info, shown, triple_args)

__all__ = ["TcpServer", "TlsServer", "Connection", "BaseConnection", "CloseReason",
           "ServerStats", "ConnStats", "ProxyMode"]

_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from
_pack_prefix = struct.Struct(HEADER.format[:-1]).pack  # kind, client_id, code


class _LengthFields(Dict[int, bytes]):
    """The 4-byte len field of a record header, by length (a cache: lengths repeat)."""

    def __missing__(self, n: int) -> bytes:
        if len(self) >= 4096:
            self.clear()
        b = self[n] = n.to_bytes(4, sys.byteorder)
        return b


_length_field = _LengthFields().__getitem__


def _join_records(cid: int, msgs: List[Any], lens: List[int]) -> bytes:
    """The tcp_server_send_batch records for ``msgs`` to ``cid`` (C loops only)."""
    out = [_pack_prefix(0, cid, 0), b"", b""] * len(lens)
    out[1::3] = map(_length_field, lens)
    out[2::3] = msgs
    return b"".join(out)
_MAX_PENDING_BYTES = 1 << 20  # queue a handler's batched sends at least every MiB

PathLike = Union[str, "os.PathLike[str]"]

MessageHandler = Callable[[int, bytes], Any]
#: ``on_messages(conn, messages)``: the messages of one connection from one
#: batch of events, as a list of bytes (see :meth:`TcpServer.on_messages`).
MessagesHandler = Callable[[Any, List[Any]], Any]
ClientHandler = Callable[[int], Any]
#: ``on_closed(conn)`` or ``on_closed(conn, reason)``
ClosedHandler = Callable[..., Any]
ErrorHandler = Callable[[int, BaseException], Any]
#: ``on_accept(ip, port, local_port) -> bool``: True admits the connection.
AcceptHandler = Callable[[str, int, int], Any]
AddressList = Union[str, Iterable[str], None]
#: TLS versions: "1.2", "1.3" (or 0x0303, 0x0304).
TlsVersion = Union[str, int, None]
#: A list of names (ALPN protocols, cipher suites): a list, or one comma-separated str.
Names = Union[str, Iterable[str], None]

_SERVER_OPTIONS: OptionTable = dict(
    COMMON_OPTIONS,
    max_connections=(_core.OPT_MAX_CONNECTIONS, count_option),
    handshake_timeout=(_core.OPT_CONNECT_TIMEOUT_MS, seconds_option),
    backlog=(_core.OPT_BACKLOG, count_option),
    ipv6_only=(_core.OPT_IPV6_ONLY, bool_option),
    memory_budget=(_core.OPT_MEMORY_BUDGET, count_option),
    proxy_protocol=(_core.OPT_PROXY_PROTOCOL, proxy_mode_option),
)


class BaseConnection(Writable, int):
    """One client of a server, as handlers receive it. It *is* the client id
    (an :class:`int` subclass: ``server.send(conn, data)``, ``conn == 3``, dict
    keys and ``%d`` work as with the plain id), and it carries the
    connection's state and controls.

    ``data`` (and any other attribute you set) belongs to you: keep your
    per-client state there instead of in a dict keyed by id. The object stays
    the same from ``on_established`` to ``on_closed``; after the close,
    ``connected`` is False and ``close_reason`` says why.
    """

    data: Any
    connected: bool
    close_reason: Optional[CloseReason]

    def __new__(cls, client_id: int, server: "TcpServer") -> "BaseConnection":
        return int.__new__(cls, client_id)

    def __init__(self, client_id: int, server: "TcpServer") -> None:
        self._server = server
        self.data = None
        self.connected = True
        self.close_reason = None
        self._paused = False
        self._idle_timeout: Optional[float] = None
        self._address = server._address_of(client_id)

    # An int to everyone who treats it as one (str(), f"{conn}", json, pickle).
    __str__ = int.__repr__

    def __repr__(self) -> str:
        ip, port = self._address
        state = "" if self.connected else (
            f" closed ({self.close_reason.name})" if self.close_reason else " closed")
        return f"<{type(self).__name__} {int(self)} {ip}:{port}{state}>"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (int, (int(self),))

    @property
    def id(self) -> int:
        """The client id (also the value of this int)."""
        return int(self)

    @property
    def server(self) -> "TcpServer":
        """The (synchronous) server this client is connected to."""
        return self._server

    @property
    def address(self) -> Tuple[str, int]:
        """``(ip, port)`` of the peer, kept after the close (``("", 0)`` if the
        connection ended before it could be read)."""
        return self._address

    @property
    def ip(self) -> str:
        return self._address[0]

    @property
    def port(self) -> int:
        return self._address[1]

    # -- flow control ------------------------------------------------------------
    def try_send(self, data: Data) -> bool:
        """Queue ``data`` unless the connection is applying back-pressure: True
        when queued, False when its send queue is full or the server's memory
        budget is used up (``on_ready`` / ``drain()`` tell when to retry).
        Raises :class:`tcpgo.SendError` (with ``.code``) for anything else."""
        return self._server.try_send(self, data)

    @property
    def queued(self) -> int:
        """Bytes queued for this client and not yet handed to the kernel."""
        return self._server.queued(self)

    def pause(self) -> None:
        """Stop reading from this client (no ``on_message`` until :meth:`resume`;
        the peer is slowed by TCP flow control; nothing is lost). Idempotent."""
        self._server.pause(self)

    def resume(self) -> None:
        """Restart reading after :meth:`pause`. Idempotent."""
        self._server.resume(self)

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._paused

    @property
    def idle_timeout(self) -> Optional[float]:
        """The idle timeout set on this connection in seconds (0 = none), or
        None when it uses the server's ``idle_timeout``. Assign to change it."""
        return self._idle_timeout

    @idle_timeout.setter
    def idle_timeout(self, seconds: float) -> None:
        self._server.set_idle_timeout(self, seconds)

    def stats(self) -> ConnStats:
        """This connection's counters (bytes and messages in/out, connect time)."""
        return self._server.connection_stats(self)

    def close(self) -> None:
        """Close this connection (after up to ``linger`` for what is queued);
        ``on_closed`` follows. Idempotent."""
        try:
            self._server.close_client(self)
        except NoClientError:
            pass  # already closed (its on_closed may still be on its way)

    # -- more ways to send -------------------------------------------------------
    def send_file(self, path: PathLike, offset: int = 0, length: Optional[int] = None, *,
                  progress: Optional[ProgressHandler] = None) -> FileTransfer:
        """Queue a file for this client; see :meth:`TcpServer.send_file`."""
        return self._server.send_file(self, path, offset, length, progress=progress)

    def sendv(self, buffers: Sequence[Data]) -> None:
        """Queue several buffers as one message; see :meth:`TcpServer.sendv`."""
        self._server.sendv(self, buffers)

    def send_many(self, messages: Iterable[Data]) -> None:
        """Queue several messages for this client with one library call; see
        :meth:`TcpServer.send_many`."""
        self._server.send_many(self, messages)

    def send_line(self, line: Data) -> None:
        """Queue one line; see :meth:`TcpServer.send_line`."""
        self._server.send_line(self, line)

    def set_record_length(self, length: int) -> None:
        """Change this connection's record length (:class:`tcpgo.Records`
        framing); see :meth:`TcpServer.set_record_length`."""
        self._server.set_record_length(self, length)

    # -- TLS ---------------------------------------------------------------------
    def tls_info(self) -> Optional[TlsInfo]:
        """The negotiated TLS parameters (:class:`tcpgo.TlsInfo`), or None for a
        plain connection; see :meth:`TcpServer.tls_info`."""
        return self._server.tls_info(self)

    def starttls(self, reply: Optional[Data] = None) -> None:
        """Upgrade this plain connection to TLS (STARTTLS); see :meth:`TcpServer.starttls`."""
        self._server.starttls(self, reply)


class Connection(BaseConnection):
    """A client of a :class:`TcpServer` (see :class:`BaseConnection`) with
    the synchronous send API."""

    def send(self, data: Data) -> None:
        """Queue ``data`` for this client; see :meth:`TcpServer.send`."""
        self._server.send(self, data)

    def flush(self, timeout: Optional[float] = 2.0) -> bool:
        """Wait until what was queued for this client was written; see
        :meth:`TcpServer.flush`."""
        return self._server.flush(self, timeout)

    def wait_writable(self, timeout: Optional[float] = None) -> bool:
        """Block until a refused send may be retried (the ready event) or the
        connection closed; False on timeout. For threads other than the
        handlers' (a handler uses ``on_ready``)."""
        return self._server._wait_writable(self, lambda: self.connected, timeout)


class _AcceptCall:
    """The ctypes callback behind ``on_accept``: called on library threads,
    before any TLS handshake. It holds the server weakly (the callback object
    lives as long as the library handle), refuses once the interpreter is
    exiting, and turns every exception into a logged refusal."""

    def __init__(self, server: "TcpServer") -> None:
        self._server = weakref.ref(server)

    def __call__(self, _user: Any, ip: Optional[bytes], port: int, local_port: int) -> int:
        try:
            if _core.is_exiting():
                return 0
            srv = self._server()
            h = None if srv is None else srv._on_accept
            if h is None:
                return 1
            return 1 if h(ip.decode("ascii", "replace") if ip else "", port, local_port) else 0
        except BaseException:  # never unwind into the library
            try:
                _core.logger.exception("exception in on_accept handler; connection refused")
            except BaseException:
                pass
            return 0


class TcpServer(Endpoint):
    """A plain TCP server.

    Messages arrive as :class:`bytes`. With ``delimiter=None`` (the default,
    *continuous* mode) every event carries the next bytes of the stream, cut
    wherever the network cut them; with a delimiter (*fragmented* mode) every
    event is one whole message without its delimiter, and :meth:`send`
    appends the delimiter. ``max_len`` bounds a message in fragmented mode
    (0 = 16 MiB); a client sending a longer one is disconnected.

    Handlers run one at a time, in order, on the server's dispatcher thread
    (never on the thread that called :meth:`start`): ``on_established(client_id)``,
    ``on_message(client_id, data)`` -- or ``on_messages(client_id, messages)``,
    one call per client and polled batch, which replaces it --,
    ``on_closed(client_id)`` -- or
    ``on_closed(client_id, reason)`` if the handler takes two arguments, with
    a :class:`tcpgo.CloseReason` --, ``on_ready(client_id)`` when a client's
    send queue drained after a refused send (see :meth:`try_send`), and
    ``on_error(client_id, error)`` which receives a :class:`tcpgo.PeerError` for
    problems the library reports (a too-long message, a failed TLS handshake
    or a refused connection with ``client_id`` 0...) and any exception raised
    by another handler (which is also logged to the ``tcpgo`` logger; it never
    stops the server). A handler must not block for long: while it runs, no
    event is handled.

    The ``client_id`` handlers receive is a :class:`tcpgo.Connection`: an
    ``int`` (the id, usable everywhere an id is) with the connection's own
    state and controls -- ``conn.data`` for your per-client state,
    ``conn.address``, ``conn.send()``, ``conn.try_send()``, ``conn.queued``,
    ``conn.pause()``/``conn.resume()``, ``conn.idle_timeout``, ``conn.stats()``,
    ``conn.close()``, and after the close ``conn.close_reason``.
    :meth:`connection` finds it by id from anywhere.

    ``on_accept(ip, port, local_port) -> bool`` decides about each connection
    before its TLS handshake (and after the ``allowed``/``blocked`` lists and
    ``max_connections``): a false result refuses it. Unlike the other
    handlers it runs on a library thread, one connection at a time: keep it
    short. An exception in it is logged and refuses the connection.
    Refused connections never reach ``on_established``; they are counted in
    :meth:`stats` and reported to ``on_error`` with client id 0 and
    ``ErrorCode`` -17 (refused).

    Example -- an echo server on a port chosen by the system::

        import tcpgo

        with tcpgo.TcpServer(delimiter="\\n", host="127.0.0.1") as server:
            @server.on_message
            def echo(client_id: int, data: bytes) -> None:
                server.send(client_id, data)

            port = server.start(0)
            print(tcpgo.request("127.0.0.1", port, "hello"))   # b'hello'

    ``host`` is the address to listen on: ``""`` (the default) means every
    interface, IPv4 and IPv6; tests and local tools should pass ``"127.0.0.1"``.

    Options (keyword arguments; None = the library's default, which is safe
    for untrusted peers). Durations are in seconds, sizes in bytes, 0 means
    "no limit" unless said otherwise:

    ======================  ==============  =========================================
    option                  default         meaning
    ======================  ==============  =========================================
    ``max_len``             16 MiB          longest message (fragmented mode), both
                                            ways; a longer one closes the connection
    ``send_queue_limit``    4 MiB           bytes queued per connection before a
                                            send is refused (``QUEUE_FULL``)
    ``memory_budget``       64 MiB          bytes for all connections together
                                            (partial messages, send queues, event
                                            queue); over it sends are refused
                                            (``MEMORY_BUDGET``) and the connection
                                            holding most is closed
    ``max_connections``     10000           connections at once (incl. handshakes);
                                            more are refused
    ``idle_timeout``        0 (none)        close a connection that received nothing
                                            for this long (``IDLE_TIMEOUT``);
                                            per connection: ``conn.idle_timeout``
    ``message_timeout``     0 (none)        a started message must end within this
                                            (slow-drip peers; ``MESSAGE_TIMEOUT``)
    ``write_timeout``       0 (none)        queued data must be taken by the peer
                                            within this (``WRITE_TIMEOUT``)
    ``handshake_timeout``   10              TLS handshake (and PROXY header) time
    ``keepalive``           True            TCP keep-alive probes, with
    ``keepalive_idle``      15              idle time before the first probe,
    ``keepalive_interval``  15              time between probes,
    ``keepalive_count``     9               unanswered probes before dropping
    ``backlog``             0 (system max)  listen backlog (net.core.somaxconn)
    ``ipv6_only``           False           with an IPv6 ``host``: IPv6 only instead
                                            of dual stack
    ``close_on_eof``        False           a peer's EOF closes at once, dropping
                                            what is queued (default: queued replies
                                            are written first)
    ``send_low_water``      64 KiB          ``on_ready`` fires when a refused
                                            connection's queue drained to this
    ``callback_threads``    64              library threads running callbacks (here:
                                            ``on_accept``) at once, 1..4096
    ``event_queue_limit``   16 MiB          received bytes waiting for the
                                            dispatcher before reading pauses
    ``linger``              1               how long :meth:`stop` and
                                            :meth:`close_client` wait for queued data
    ``nodelay``             True            TCP_NODELAY
    ``reuse_port``          False           SO_REUSEPORT (rolling restarts)
    ``proxy_protocol``      ``"off"``       PROXY protocol v1/v2: ``"trusted"``
                                            (required from ``proxy_trusted``
                                            addresses only) or ``"required"``
    ``proxy_trusted``       ()              addresses/CIDR ranges of trusted proxies
    ``allowed``             () (all)        only these addresses/CIDR ranges may
                                            connect (see :attr:`allowed`)
    ``blocked``             ()              these may not (see :attr:`blocked`)
    ``framing``             None            a :mod:`tcpgo.framing` object instead of
                                            ``delimiter``/``max_len``:
                                            :class:`tcpgo.LengthPrefixed`,
                                            :class:`tcpgo.Delimiter`,
                                            :class:`tcpgo.Lines`, :class:`tcpgo.Records`
    ``min_tls_version``,    "1.3"           TLS versions ("1.2", "1.3"), for a
    ``max_tls_version``                     :class:`TlsServer` and STARTTLS upgrades
                                            (:meth:`starttls`), as the options below
    ``cipher_suites``       Go's defaults   TLS 1.2 suites by IANA name
    ``alpn``                ()              ALPN protocols accepted, preferred first
    ``resumption``          True            issue session tickets
    ``key_log_file``        None            NSS key log (debugging only)
    ``on_cert``             None            judges client certificates
                                            (see :meth:`on_cert`)
    ======================  ==============  =========================================

    Options are fixed while the server runs (stop it to change them), except
    ``allowed``/``blocked``, the handlers and per-connection settings.

    Sends made by handlers are batched: a :meth:`send` called from a handler
    (on the dispatcher thread) is queued in the library, together with the
    other sends of the same batch of events, when the batch has been handled
    (or earlier, before a :meth:`close_client`, :meth:`flush`, :meth:`stop`...
    of the same handler), with one library call; that is what makes a tcpgo
    echo server fast. A message that the library then refuses (the client has
    gone, its send queue is full) is logged and reported to ``on_error`` as a
    :class:`tcpgo.SendError` with client id 0, instead of being raised by
    :meth:`send`. ``batch_sends=False`` queues every message at once (and
    raises). Sends from other threads are always immediate, and so is
    :meth:`try_send`, which reports back-pressure by returning False.

    Lifecycle: :meth:`stop_listening` closes the listening socket and keeps
    serving the connected clients (rolling restarts with ``reuse_port``);
    :meth:`shutdown` stops gracefully, giving queued data up to a deadline;
    :meth:`stop` closes everything after ``linger``.

    A running server keeps itself alive (like a running thread) until
    :meth:`stop`, :meth:`close`, the end of a ``with`` block, or interpreter
    exit, when every server is stopped and queued events are dropped.
    """

    _kind = "server"
    _new_name = "tcp_server_new"
    _free_name = "tcp_server_free"
    _set_option_name = "tcp_server_set_option"
    _is_running_name = "tcp_server_is_running"
    _flush_name = "tcp_server_flush"
    _poll_name = "tcp_server_poll"
    _last_error_name = "tcp_server_last_error"
    _stop_name = "tcp_server_stop"

    def __init__(self, delimiter: Union[bytes, str, int, None] = None, max_len: int = 0, *,
                 framing: Optional[Framing] = None,
                 host: str = "",
                 on_message: Optional[MessageHandler] = None,
                 on_messages: Optional[MessagesHandler] = None,
                 on_established: Optional[ClientHandler] = None,
                 on_closed: Optional[ClosedHandler] = None,
                 on_error: Optional[ErrorHandler] = None,
                 on_ready: Optional[ClientHandler] = None,
                 on_accept: Optional[AcceptHandler] = None,
                 nodelay: bool = True, reuse_port: bool = False,
                 send_queue_limit: Optional[int] = None,
                 event_queue_limit: Optional[int] = None,
                 linger: Optional[float] = None,
                 batch_sends: bool = True,
                 memory_budget: Optional[int] = None,
                 max_connections: Optional[int] = None,
                 idle_timeout: Optional[float] = None,
                 message_timeout: Optional[float] = None,
                 write_timeout: Optional[float] = None,
                 handshake_timeout: Optional[float] = None,
                 keepalive: Optional[bool] = None,
                 keepalive_idle: Optional[float] = None,
                 keepalive_interval: Optional[float] = None,
                 keepalive_count: Optional[int] = None,
                 backlog: Optional[int] = None,
                 ipv6_only: Optional[bool] = None,
                 close_on_eof: Optional[bool] = None,
                 send_low_water: Optional[int] = None,
                 callback_threads: Optional[int] = None,
                 proxy_protocol: Union[ProxyMode, str, int, None] = None,
                 proxy_trusted: AddressList = None,
                 allowed: AddressList = None,
                 blocked: AddressList = None,
                 on_cert: Optional[CertHandler] = None,
                 min_tls_version: TlsVersion = None,
                 max_tls_version: TlsVersion = None,
                 cipher_suites: Names = None,
                 alpn: Names = None,
                 key_log_file: Optional[PathLike] = None,
                 resumption: Optional[bool] = None) -> None:
        super().__init__()
        self._choose_framing(delimiter, max_len, framing)
        if not isinstance(host, str):
            raise TypeError("host must be a str")
        self._host = host
        self._on_message: Optional[MessageHandler] = on_message
        self._on_messages: Optional[MessagesHandler] = on_messages
        self._on_established: Optional[ClientHandler] = on_established
        self._on_closed: Optional[ClosedHandler] = on_closed
        self._on_error = on_error
        self._on_ready: Optional[ClientHandler] = on_ready
        self._on_accept: Optional[AcceptHandler] = None
        self._accept_call: Any = None  # the ctypes callback, once installed
        self._closed_arity = ArityCache(2)
        self._port = 0
        # Connection objects of the established clients, by id.
        self._conns: Dict[int, BaseConnection] = {}
        self._connection_class: Callable[[int, "TcpServer"], BaseConnection] = Connection
        self._allowed: Tuple[str, ...] = ()
        self._blocked: Tuple[str, ...] = ()
        self._create_handle(max_len, nodelay)
        if reuse_port:
            self._set_option(_core.OPT_REUSEPORT, 1)
        self._set_queue_options(send_queue_limit, event_queue_limit, linger)
        self._apply_options(_SERVER_OPTIONS, dict(
            memory_budget=memory_budget, max_connections=max_connections,
            idle_timeout=idle_timeout, message_timeout=message_timeout,
            write_timeout=write_timeout, handshake_timeout=handshake_timeout,
            keepalive=keepalive, keepalive_idle=keepalive_idle,
            keepalive_interval=keepalive_interval, keepalive_count=keepalive_count,
            backlog=backlog, ipv6_only=ipv6_only, close_on_eof=close_on_eof,
            send_low_water=send_low_water, callback_threads=callback_threads,
            proxy_protocol=proxy_protocol))
        if proxy_trusted is not None:
            self._set_option_str(_core.OPT_PROXY_TRUSTED,
                                 ", ".join(address_list("proxy_trusted", proxy_trusted)))
        if allowed is not None:
            self.allowed = allowed  # type: ignore[assignment]
        if blocked is not None:
            self.blocked = blocked  # type: ignore[assignment]
        if on_accept is not None:
            self.on_accept(on_accept)
        self._on_cert: Optional[CertHandler] = None
        self._cert_call: Any = None
        if on_cert is not None:
            self.on_cert(on_cert)
        apply_tls_options(self, min_tls_version=min_tls_version, max_tls_version=max_tls_version,
                          cipher_suites=cipher_suites, alpn=alpn, key_log_file=key_log_file,
                          resumption=resumption)
        L = _lib.lib()
        self._send_fn = L.tcp_send_msg
        # send_ex returns why a send was refused; tcp_send_msg (older libraries) only 1/0.
        self._send_ex_fn = getattr(L, "tcp_server_send_ex", None)
        # Sends made by handlers on the dispatcher thread are collected and
        # queued with one tcp_server_send_batch call per event batch.
        self._batch_fn = getattr(L, "tcp_server_send_batch", None) if batch_sends else None
        self._batch_tid = 0  # the dispatcher's thread id while it runs handlers
        self._pending: List[bytes] = []
        self._pending_count = 0
        self._pending_bytes = 0
        # Runs a file's progress handler (tcpgo.aio: on the loop); None = on the library thread.
        self._progress_call: Optional[Callable[..., Any]] = None

    # -- handler registration (decorators or plain calls) -------------------
    def on_message(self, handler: F) -> F:
        """Register ``handler(client_id, data)``; usable as a decorator."""
        self._on_message = handler
        return handler

    def on_messages(self, handler: Optional[F]) -> Optional[F]:
        """Register ``handler(conn, messages)``, the batch form of
        :meth:`on_message`; usable as a decorator (None unregisters it).

        Events come from the library in batches (one poll takes what arrived
        from many reads). With a batch handler, the messages of one batch are
        grouped by connection and the handler runs once per connection and
        batch, with ``messages`` a non-empty :class:`list` of the messages in
        the order they arrived -- instead of one :meth:`on_message` call per
        message (``on_message`` is then not called). Per connection the order
        of everything is kept (an ``on_closed`` comes after the messages
        before it); across connections the messages of one batch are grouped.

        The messages are :class:`bytes` (yours to keep), sliced from the
        batch's one buffer: at 64 bytes a slice costs less than a
        :class:`memoryview` of it would (measured: 28 against 44 ns), so no
        view with a lifetime to mind is handed out. A part of an overlong
        message (``overlong="split"``, see :class:`tcpgo.MessagePart`) comes
        as a :class:`tcpgo.MessagePart` in the list, so
        ``isinstance(m, tcpgo.MessagePart)`` still tells parts from whole
        messages.

        Reply with :meth:`send_many` (one library call for all the replies of
        a batch) or :meth:`send`::

            @server.on_messages
            def echo(conn, messages):
                conn.send_many(messages)
        """
        self._on_messages = handler
        return handler

    def on_established(self, handler: F) -> F:
        """Register ``handler(client_id)``, called when a client connected
        (for TLS: after its handshake succeeded); usable as a decorator."""
        self._on_established = handler
        return handler

    def on_closed(self, handler: F) -> F:
        """Register ``handler(client_id)``, called once per established client
        when its connection ended, after its last message; usable as a decorator."""
        self._on_closed = handler
        return handler

    def on_error(self, handler: F) -> F:
        """Register ``handler(client_id, error)``: a :class:`tcpgo.PeerError`
        reported by the library, or an exception raised by another handler;
        usable as a decorator."""
        self._on_error = handler
        return handler

    def on_ready(self, handler: F) -> F:
        """Register ``handler(client_id)``, called when a client's send queue
        drained to ``send_low_water`` after a send to it was refused for
        back-pressure (queue full, memory budget): sending may go on. Once per
        refusal, in the connection's event order; usable as a decorator."""
        self._on_ready = handler
        return handler

    def on_accept(self, handler: Optional[F]) -> Optional[F]:
        """Register ``handler(ip, port, local_port) -> bool`` (None removes it),
        asked about every connection before its TLS handshake: a false result
        refuses it (closed at once, never established, counted as refused).

        It runs on a library thread, not the dispatcher, one connection at a
        time, also while the server runs: keep it short and thread-safe. An
        exception is logged and refuses the connection; once the interpreter
        is exiting every connection is refused. Usable as a decorator."""
        if handler is not None and (not callable(handler)
                                    or inspect.iscoroutinefunction(handler)):
            raise TypeError("on_accept needs a plain function (it runs on a library thread)")
        set_fn = need("tcp_server_set_on_accept")
        self._on_accept = handler
        h = self._handle()
        if handler is None:
            set_fn(h, _lib.ACCEPT_FN(0), None)  # a NULL function pointer
            return handler
        if self._accept_call is None:
            self._accept_call = _lib.ACCEPT_FN(_AcceptCall(self))
            self._keep.append(self._accept_call)  # alive until the handle is freed
        set_fn(h, self._accept_call, None)
        return handler

    def on_cert(self, handler: Optional[F]) -> Optional[F]:
        """Register ``handler(info) -> bool`` (None removes it), which decides
        about each client certificate during the TLS handshake (the
        reference component's SSLClientAuthentication): ``info`` is a
        :class:`tcpgo.CertInfo` (``pem``, ``chain``, ``subject``, ``issuer``,
        ``result`` -- the built-in verdict --, ``error``, ``server_name``);
        True accepts the client, False refuses it (the handshake fails,
        ``on_error`` hears of it with client id 0). Without a CA, set it
        before :meth:`start`: clients are then asked for a certificate
        (optional) so that the handler can judge it.

        It runs on a library thread, not the dispatcher, before
        ``on_established``: keep it short, do not block. An exception in it
        is logged and refuses the client. Usable as a decorator."""
        install_cert_handler(self, handler, "tcp_server_set_on_cert")
        return handler

    def _before_exit_stop(self, h: ctypes.c_void_p) -> None:
        if self._accept_call is not None:
            _lib.lib().tcp_server_set_on_accept(h, _lib.ACCEPT_FN(0), None)
        if self._cert_call is not None:
            _lib.lib().tcp_server_set_on_cert(h, _lib.CERT_FN(0), None)

    # -- admission -----------------------------------------------------------
    @property
    def allowed(self) -> Tuple[str, ...]:
        """Addresses and CIDR ranges (IPv4, IPv6) allowed to connect; empty =
        everyone not blocked. Assign a list or a comma-separated str to
        replace it, also while running (for connections accepted afterwards);
        an entry that does not parse raises :class:`ValueError` and leaves the
        list unchanged."""
        return self._allowed

    @allowed.setter
    def allowed(self, entries: AddressList) -> None:
        self._allowed = self._set_address_list("tcp_server_set_allowed", "allowed", entries)

    @property
    def blocked(self) -> Tuple[str, ...]:
        """Addresses and CIDR ranges refused before any handshake (checked
        before ``allowed``); assignable like :attr:`allowed`."""
        return self._blocked

    @blocked.setter
    def blocked(self, entries: AddressList) -> None:
        self._blocked = self._set_address_list("tcp_server_set_blocked", "blocked", entries)

    def _set_address_list(self, fn_name: str, name: str, entries: AddressList) -> Tuple[str, ...]:
        items = address_list(name, entries)
        rc = need(fn_name)(self._handle(), ", ".join(items).encode("utf-8"))
        if rc != 0:
            reason = thread_error_text() or self._last_error() or _core.strerror(rc)
            raise ValueError(f"{name} list {list(items)!r} not accepted: {reason}")
        return items

    # -- life cycle ----------------------------------------------------------
    def _start_call(self, L: Any, h: ctypes.c_void_p, port: int) -> int:
        return L.tcp_server_start(h, port)

    def start(self, port: int = 0, host: Optional[str] = None) -> int:
        """Start listening on ``port`` (0 = a free port chosen by the system)
        and return the port actually bound.

        ``host`` overrides the constructor's listen address for this and later
        starts. Raises :class:`tcpgo.PortInUseError`, :class:`tcpgo.CertificateError`
        (TLS), another :class:`tcpgo.StartError`, or :class:`ValueError`
        (:class:`tcpgo.InvalidPortError`) for a port outside 0..65535.
        """
        check_port(port, client=False)
        with self._lock:
            h = self._handle()
            L = _lib.lib()
            if L.tcp_server_is_running(h):
                raise StartError(ErrorCode.ALREADY_RUNNING, f"{self._what()} is already running "
                                 f"on port {self._port}")
            if host is not None:
                if not isinstance(host, str):
                    raise TypeError("host must be a str")
                self._host = host
            self._set_option_str(_core.OPT_BIND_ADDRESS, self._host)
            rc = self._start_call(L, h, port)
            if rc != 0:
                raise self._start_failed(rc, port)
            self._port = L.tcp_server_port(h)
            self._start_dispatcher(f"tcpgo-{self._kind}-{self._port}")
            return self._port

    def _start_failed(self, rc: int, port: int) -> StartError:
        return start_error(rc, self._last_error(), what=f"{self._what()}.start", port=port,
                           host=self._host or None, ca=self._ca, cert=self._cert, key=self._key)

    def serve_forever(self, port: Optional[int] = None, host: Optional[str] = None) -> None:
        """Start the server if it is not running (on ``port``, default 0) and
        block until it is stopped (by :meth:`stop` from a handler or another
        thread). Ctrl-C stops the server and raises :class:`KeyboardInterrupt`
        in the caller promptly.

        Example::

            server = tcpgo.TcpServer("\\n", host="127.0.0.1",
                                     on_message=lambda cid, data: print(cid, data))
            try:
                server.serve_forever(9000)
            except KeyboardInterrupt:
                print("bye")
        """
        if not self.running:
            self.start(0 if port is None else port, host)
        elif port is not None and port != 0 and port != self._port:
            raise StartError(ErrorCode.ALREADY_RUNNING,
                             f"{self._what()} is already running on port {self._port}")
        try:
            self._wait_stopped(None)
        except BaseException:
            self.stop()
            raise

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the server has stopped; return False on timeout."""
        return self._wait_stopped(timeout)

    def stop(self) -> None:
        """Stop listening and close every connection; ``on_closed`` runs for each
        connected client. Returns when no handler of this server runs any more
        (unless called from a handler, when the remaining ``on_closed`` events
        follow right after it returns). Idempotent; the server can be started again.
        """
        if self._h is None:
            return
        self._send_pending_here()
        self._stop_and_join()

    def stop_listening(self) -> None:
        """Close the listening socket but keep serving the connected clients
        (for a rolling restart: another server can take the port with
        ``reuse_port=True``). :attr:`running` stays True until :meth:`stop`.
        Raises :class:`tcpgo.NotRunningError` when not running."""
        rc = need("tcp_server_stop_listening")(self._handle())
        if rc == ErrorCode.NOT_RUNNING:
            raise NotRunningError(f"{self._what()} is not running")
        if rc != 0:
            raise StartError(rc, f"{self._what()}.stop_listening failed: "
                                 f"{thread_error_text() or _core.strerror(rc)}")

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop gracefully: stop listening, give every connection up to
        ``timeout`` seconds in all to write what is queued (handlers still run
        and may still send meanwhile), then stop as :meth:`stop` does
        (``on_closed`` with :attr:`CloseReason.STOPPED`). Returns True when
        every queue was written in time, False when some data was dropped.
        A server that is not running returns True."""
        ms = seconds_option("timeout", timeout)
        h = self._h
        if h is None:
            return True
        fn = need("tcp_server_shutdown")
        self._send_pending_here()
        self._stopping = True
        rc = fn(h, ms)
        self._join_dispatcher()
        return rc != ErrorCode.TIMEOUT

    def close(self) -> None:
        """Stop the server and release its resources; it cannot be used afterwards."""
        super().close()

    def __enter__(self) -> "TcpServer":
        return self

    def __repr__(self) -> str:
        state = ("closed" if self._h is None
                 else f"port {self._port}" if self._is_running_safe() else "stopped")
        return f"<{type(self).__name__} {self._framing_name()} {state}>"

    # -- state ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the server is listening."""
        return self._is_running()

    @property
    def port(self) -> int:
        """The port the server listens on (after :meth:`start`)."""
        h = self._handle()
        p = _lib.lib().tcp_server_port(h)
        if p < 0:
            raise NotRunningError(f"{self._what()} is not running")
        return p

    @property
    def host(self) -> str:
        """The listen address ("" = every interface)."""
        return self._host

    @property
    def delimiter(self) -> Optional[bytes]:
        """The message delimiter (of ``delimiter=`` or a :class:`tcpgo.Delimiter`
        framing), or None."""
        f = self._framing
        if f is not None:
            return getattr(f, "sequence", None)
        return self._delimiter

    @property
    def framing(self) -> Optional[Framing]:
        """The :mod:`tcpgo.framing` object given at creation, or None (then
        :attr:`delimiter` says the framing: a byte, or None for a stream)."""
        return self._framing

    @property
    def clients(self) -> List[int]:
        """Ids of the connected (established) clients."""
        h = self._handle()
        L = _lib.lib()
        n = 64
        while True:
            arr = (ctypes.c_int * n)()
            total = L.tcp_server_client_ids(h, arr, n)
            if total < 0:
                return []
            if total <= n:
                return list(arr[:total])
            n = total + 16

    def client_ip(self, client_id: int) -> str:
        """The client's IP address as text ("127.0.0.1", "::1")."""
        rc, text = _lib.read_string(_lib.lib().tcp_server_client_ip, self._handle(), client_id)
        if rc < 0:
            raise NoClientError(f"no connected client with id {client_id}")
        return text

    def client_port(self, client_id: int) -> int:
        """The client's TCP port."""
        rc = _lib.lib().tcp_server_client_port(self._handle(), client_id)
        if rc < 0:
            raise NoClientError(f"no connected client with id {client_id}")
        return rc

    def client_address(self, client_id: int) -> "tuple[str, int]":
        """``(ip, port)`` of a connected client."""
        return self.client_ip(client_id), self.client_port(client_id)

    def proxy_tlv(self, client_id: int, tlv_type: int) -> Optional[bytes]:
        """The raw value of a TLV of the client's PROXY protocol v2 header
        (``tlv_type`` as in the specification: 0x01 ALPN, 0x02 AUTHORITY,
        0x20 SSL, 0x30 NETNS...), or None when the header had no such TLV
        (or the connection came without a header)."""
        fn = need("tcp_server_proxy_tlv")
        size = 256
        while True:
            buf = ctypes.create_string_buffer(size)
            n = fn(self._handle(), client_id, tlv_type, buf, size)
            if n == ErrorCode.NO_FIELD:
                return None
            if n == ErrorCode.NO_CLIENT:
                raise NoClientError(f"no connected client with id {client_id}")
            if n < 0:
                raise NotRunningError(f"cannot read the PROXY header of client {client_id}: "
                                      f"{_core.strerror(n)}")
            if n < size:
                return buf.raw[:n]
            size = n + 1

    def proxy_cn(self, client_id: int) -> Optional[str]:
        """The CN of the client certificate that the proxy in front verified,
        when it terminated TLS and sent it in the PROXY v2 SSL TLVs (HAProxy:
        ``send-proxy-v2-ssl-cn``); None otherwise. For a plain :class:`TcpServer`
        behind such a proxy (a :class:`TlsServer` answers with the CN of the
        certificate it verified itself, as ``peer_subject_part`` does)."""
        rc, text = _lib.read_string(_lib.lib().get_subj_part, self._handle(), client_id,
                                    field_nid("CN"))
        if rc == ErrorCode.NO_CLIENT:
            raise NoClientError(f"no connected client with id {client_id}")
        return text if rc >= 0 else None

    def _address_of(self, client_id: int) -> Tuple[str, int]:
        """``(ip, port)``, or ``("", 0)`` once the library forgot the client."""
        h = self._h
        if h is None:
            return "", 0
        L = _lib.lib()
        rc, ip = _lib.read_string(L.tcp_server_client_ip, h, client_id)
        port = L.tcp_server_client_port(h, client_id)
        return (ip, port) if rc >= 0 and port >= 0 else ("", 0)

    # -- connections ------------------------------------------------------------
    def connection(self, client_id: int) -> BaseConnection:
        """The :class:`Connection` object of a connected client (the same one
        the handlers get). Raises :class:`tcpgo.NoClientError` for an id that
        is not connected."""
        conn = self._conns.get(client_id)
        if conn is not None:
            return conn
        if self._h is None or _lib.lib().tcp_server_client_port(self._h, client_id) < 0:
            raise NoClientError(f"no connected client with id {client_id}")
        return self._conn_open(client_id)

    @property
    def connections(self) -> List[BaseConnection]:
        """The :class:`Connection` objects of the clients whose
        ``on_established`` has been handled and ``on_closed`` not yet."""
        return list(self._conns.values())

    def _conn_open(self, client_id: int) -> BaseConnection:
        conn = self._conns.get(client_id)
        if conn is None:
            conn = self._connection_class(client_id, self)
            conn = self._conns.setdefault(client_id, conn)
        return conn

    def _conn_closed(self, client_id: int, code: int) -> BaseConnection:
        """The closed event of a client: its object, now closed, with the reason."""
        conn = self._conns.pop(client_id, None)
        if conn is None:
            conn = self._connection_class(client_id, self)
        conn.connected = False
        conn.close_reason = close_reason(code)
        conn._wake()
        self._notify_ready()
        return conn

    def _conn_ready(self, client_id: int) -> BaseConnection:
        conn = self._conn_open(client_id)
        conn._wake()
        self._notify_ready()
        return conn

    def _conn_call(self, name: str, client_id: int) -> int:
        """Call ``tcp_server_<name>(h, client_id)``; NoClientError for an unknown id."""
        rc = need("tcp_server_" + name)(self._handle(), client_id)
        if rc == ErrorCode.NO_CLIENT:
            raise NoClientError(f"no connected client with id {client_id}")
        if rc == ErrorCode.NOT_RUNNING:
            raise NotRunningError(f"{self._what()} is not running")
        return rc

    def pause(self, client_id: int) -> None:
        """Stop reading from a client (see :meth:`Connection.pause`)."""
        self._conn_call("pause", client_id)
        conn = self._conns.get(client_id)
        if conn is not None:
            conn._paused = True

    def resume(self, client_id: int) -> None:
        """Restart reading from a paused client."""
        self._conn_call("resume", client_id)
        conn = self._conns.get(client_id)
        if conn is not None:
            conn._paused = False

    def queued(self, client_id: int) -> int:
        """Bytes queued for a client and not yet handed to the kernel."""
        n = self._conn_call("queued", client_id)
        if n < 0:
            raise SendError(f"queued({client_id}): {_core.strerror(n)}", code=n)
        return n

    def set_idle_timeout(self, client_id: int, seconds: float) -> None:
        """Idle timeout of one connection (0 = none), replacing the server's
        ``idle_timeout`` for it."""
        ms = seconds_option("idle_timeout", seconds)
        rc = need("tcp_server_set_idle_timeout")(self._handle(), client_id, ms)
        if rc == ErrorCode.NO_CLIENT:
            raise NoClientError(f"no connected client with id {client_id}")
        if rc == ErrorCode.INVALID_ARG:
            raise ValueError(f"idle timeout {seconds!r} s out of range")
        if rc != 0:
            raise NotRunningError(f"set_idle_timeout: {_core.strerror(rc)}")
        conn = self._conns.get(client_id)
        if conn is not None:
            conn._idle_timeout = float(seconds)

    def connection_stats(self, client_id: int) -> ConnStats:
        """Counters of one connected client."""
        c = _core._CConnStats()
        rc = need("tcp_server_conn_stats")(self._handle(), client_id, ctypes.addressof(c),
                                           ctypes.sizeof(c))
        if rc == ErrorCode.NO_CLIENT:
            raise NoClientError(f"no connected client with id {client_id}")
        if rc != 0:
            raise NotRunningError(f"connection_stats: {_core.strerror(rc)}")
        return _core.conn_stats_of(c)

    def stats(self) -> ServerStats:
        """The server's counters since it was created (across restarts)."""
        c = _core._CServerStats()
        rc = need("tcp_server_get_stats")(self._handle(), ctypes.addressof(c), ctypes.sizeof(c))
        if rc != 0:
            raise NotRunningError(f"stats: {_core.strerror(rc)}")
        return _core.server_stats_of(c)

    # -- sending ---------------------------------------------------------------
    def send(self, client_id: int, data: Data) -> None:
        """Queue ``data`` (bytes, or str sent as UTF-8) for a client; never blocks.

        Fragmented mode appends the delimiter. Raises :class:`ValueError` when
        the message holds the delimiter or exceeds ``max_len``, and
        :class:`tcpgo.SendError` when the client is unknown (it may just have
        disconnected; ``.code`` ``NO_CLIENT``), the server is not running
        (``NOT_RUNNING``), or the send queue is full (``QUEUE_FULL``, or -16
        for the memory budget: ``on_ready`` follows once it drained) --
        except inside handlers, where sends are batched (see the class
        documentation) and such failures go to ``on_error``.
        Messages to one client are sent in the order of the calls.
        """
        if type(data) is not bytes:
            data = as_bytes(data)
        if self._batch_tid == get_ident():
            d = self._delimiter
            if d is not None:
                if d in data or len(data) > self._max_len:
                    self._check_content(data)
            elif self._send_check is not None:
                self._send_check(data)
            n = len(data)
            self._pending += (_pack_header(0, client_id, 0, n), data)
            self._pending_count += 1
            self._pending_bytes += n
            if self._pending_bytes > _MAX_PENDING_BYTES:
                self._send_pending()
            return
        if _lib._forked:
            _lib.check_fork()
        send_ex = self._send_ex_fn
        if send_ex is None:
            if not self._send_fn(self._h, client_id, data, len(data)):
                self._send_failed(client_id, data)
            return
        conn = self._conns.get(client_id)
        gen = 0 if conn is None else conn._ready_gen
        rc = send_ex(self._h, client_id, data, len(data))
        if rc:
            self._send_refused(client_id, data, rc, conn, gen)

    def send_many(self, client_id: int, messages: Iterable[Data]) -> None:
        """Queue several messages for one client, in order: what as many
        :meth:`send` calls do, with one call into the library (the reply
        path of :meth:`on_messages`). ``messages`` is any iterable of bytes,
        bytearray, memoryview or str (sent as UTF-8). Never blocks.

        In a handler, sends are batched as :meth:`send`'s are (refusals go to
        ``on_error``); from another thread the messages are queued at once
        and :class:`tcpgo.SendError` (``.code``) says how many were not (a
        refused message is skipped, the ones after it are still queued: use
        :meth:`try_send` per message where back-pressure matters). Raises
        :class:`ValueError`, before queueing any, when a message holds the
        delimiter or exceeds ``max_len``."""
        records, count = self._records(client_id, messages)
        if not count:
            return
        if self._batch_tid == get_ident():
            self._pending.append(records)
            self._pending_count += count
            self._pending_bytes += len(records)
            if self._pending_bytes > _MAX_PENDING_BYTES:
                self._send_pending()
            return
        if _lib._forked:
            _lib.check_fork()
        fn = self._batch_fn or need("tcp_server_send_batch")
        queued = fn(self._handle(), records, len(records), count)
        if queued != count:
            code = thread_error_code() or None
            reason = thread_error_text() or self._last_error()
            raise send_error(code,  # type: ignore[arg-type]
                             f"cannot send to client {client_id}: {count - max(queued, 0)} of "
                             f"{count} messages not queued" + (f": {reason}" if reason else ""),
                             reason)

    def _records(self, client_id: int, messages: Iterable[Data]) -> Tuple[bytes, int]:
        """(the records of tcp_server_send_batch for ``messages``, their count),
        after the checks send() makes; C loops only, as far as it can."""
        msgs = messages if type(messages) is list else list(messages)
        if not msgs:
            return b"", 0
        try:
            lens = list(map(len, msgs))
            records = _join_records(int(client_id), msgs, lens)
            if len(records) != HEADER_SIZE * len(msgs) + sum(lens):
                raise TypeError  # a buffer whose len() is not its size in bytes
        except TypeError:  # str, or an odd buffer: convert (as send() does), or raise
            msgs = [m if type(m) is bytes else as_bytes(m) for m in msgs]
            lens = list(map(len, msgs))
            records = _join_records(int(client_id), msgs, lens)
        d = self._delimiter
        if d is not None:
            if max(lens) > self._max_len or d in b"".join(msgs):
                for m in msgs:
                    self._check_content(bytes(m))
        elif self._send_check is not None:
            for m in msgs:
                self._send_check(bytes(m))
        return records, len(msgs)

    def try_send(self, client_id: int, data: Data) -> bool:
        """Queue ``data`` for a client at once (never batched, never blocks).

        Returns True when queued and False when the client applies
        back-pressure -- its send queue is full (``send_queue_limit``) or the
        server's ``memory_budget`` is used up; ``on_ready(client_id)`` runs
        once it drained to ``send_low_water`` (and ``conn.writable`` turns
        True again). Raises :class:`tcpgo.SendError` (with ``.code``) when the
        client is gone or the server is not running, :class:`ValueError` for
        a message the framing cannot carry."""
        if type(data) is not bytes:
            data = as_bytes(data)
        self._send_pending_here()
        send_ex = self._send_ex_fn or need("tcp_server_send_ex")
        if _lib._forked:
            _lib.check_fork()
        conn = self._conns.get(client_id)
        gen = 0 if conn is None else conn._ready_gen
        rc = send_ex(self._h, client_id, data, len(data))
        if rc == 0:
            return True
        if rc in BACKPRESSURE_CODES:
            if conn is not None:
                conn._refused(gen)
            return False
        self._send_refused(client_id, data, rc, conn, gen)
        return False  # not reached

    def _send_refused(self, client_id: int, data: bytes, rc: int,
                      conn: Optional[BaseConnection], gen: int) -> None:
        """Raise for a send the library refused with code ``rc``."""
        if rc in BACKPRESSURE_CODES and conn is not None:
            conn._refused(gen)
        reason = self._send_failure_reason(data)
        reason = reason or _core.strerror(rc)
        raise send_error(rc, f"cannot send to client {client_id}: {reason}", reason)

    def _send_pending_here(self) -> None:
        """Queue the batched sends first when called from a handler."""
        if self._pending_count and self._batch_tid == get_ident():
            self._send_pending()

    def _send_pending(self) -> None:
        count = self._pending_count
        buf = b"".join(self._pending)
        self._pending = []
        self._pending_count = 0
        self._pending_bytes = 0
        h = self._h
        if h is None or self._batch_fn is None:
            return
        queued = self._batch_fn(h, buf, len(buf), count)
        if queued != count:
            code = thread_error_code() or None
            reason = thread_error_text() or self._last_error()
            err = send_error(code,  # type: ignore[arg-type]
                             f"{count - max(queued, 0)} of {count} messages sent by handlers "
                             f"were not queued" + (f": {reason}" if reason else ""), reason)
            _core.logger.info("%r: %s", self, err)
            h2 = self._on_error
            if h2 is not None:
                try:
                    h2(0, err)
                except BaseException as e:
                    self._handler_failed("on_error", e)

    def flush(self, client_id: int = 0, timeout: Optional[float] = 2.0) -> bool:
        """Wait up to ``timeout`` seconds until everything queued for ``client_id``
        (0: for every client) was written; True when it was, False on timeout
        or when the client is gone."""
        self._send_pending_here()
        return self._flush(timeout, client_id)

    def broadcast(self, data: Data) -> int:
        """Queue the message for every connected client; returns how many."""
        data = as_bytes(data)
        self._check_content(data)
        self._send_pending_here()
        return max(0, _lib.lib().tcp_server_broadcast(self._handle(), data, len(data)))

    def send_file(self, client_id: int, path: PathLike, offset: int = 0,
                  length: Optional[int] = None, *,
                  progress: Optional[ProgressHandler] = None) -> FileTransfer:
        """Queue ``length`` bytes (None: to the end) of the file at ``path``
        from ``offset`` for a client, as one message after what is queued
        already. With plain TCP the kernel copies the file to the socket
        (``sendfile(2)``); with TLS it is read and encrypted in chunks. The
        file is opened now and read when its turn comes: it must not change
        meanwhile. Stream and :class:`tcpgo.Records` framings send it as it
        is, :class:`tcpgo.LengthPrefixed` puts the prefix in front; the
        delimiter framings refuse files (a file may hold the delimiter).

        Returns a :class:`tcpgo.FileTransfer` (``.result(timeout)`` waits for
        the end); ``progress(sent, total)`` hears of the progress (on a library
        thread). Raises :class:`FileNotFoundError` (and other :class:`OSError`)
        for the path, :class:`ValueError` for offset/length outside the file,
        a delimiter framing or a file over ``max_len``, and
        :class:`tcpgo.SendError` (``.code`` ``NO_CLIENT``, ``NOT_RUNNING``)."""
        fn = need("tcp_server_send_file")
        self._send_pending_here()
        h = self._handle()

        def send(bpath: bytes, off: int, n: int, cb: Any, key: int) -> int:
            return fn(h, client_id, bpath, off, n, cb, key)

        def fail(rc: int, p: str) -> BaseException:
            return self._refusal(rc, client_id, f"cannot send {p} to client {client_id}")

        return start_file(send, path, offset, length, progress, self._progress_call, fail)

    def sendv(self, client_id: int, buffers: Sequence[Data]) -> None:
        """Queue several buffers (bytes, or str as UTF-8) as ONE message,
        framed once -- a header and a body without joining them yourself.
        Raises like :meth:`send`: :class:`ValueError` for a message the
        framing cannot carry, :class:`tcpgo.SendError` (``.code``) else
        (never batched: sends the same handler made before are queued first)."""
        fn = need("tcp_server_sendv")
        arr, n, _keep = iovec_array(buffers)
        self._send_pending_here()
        rc = fn(self._handle(), client_id, arr, n)
        if rc != 0:
            raise self._refusal(rc, client_id, f"cannot send to client {client_id}")

    def send_line(self, client_id: int, line: Data) -> None:
        """Queue one line: framings that end messages themselves (delimiter,
        :class:`tcpgo.Delimiter`, :class:`tcpgo.Lines`,
        :class:`tcpgo.LengthPrefixed`) send it as one message; a stream or
        :class:`tcpgo.Records` appends CRLF. A str is sent as UTF-8; NUL bytes
        cannot be sent this way. Raises like :meth:`send`."""
        fn = need("tcp_server_send_line")
        b = line_bytes(line)
        self._send_pending_here()
        rc = fn(self._handle(), client_id, b)
        if rc != 0:
            raise self._refusal(rc, client_id, f"cannot send a line to client {client_id}")

    def set_record_length(self, client_id: int, length: int) -> None:
        """Change the record length of one connection of a server with
        :class:`tcpgo.Records` framing (0: bytes as they arrive). It applies
        to the bytes the library cuts after the call: records it had already
        received keep the old length (see :class:`tcpgo.Records`). Raises
        :class:`tcpgo.NoClientError`, or :class:`ValueError` (not a records
        framing, or over its ``max_len``)."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"record length must be a non-negative int, got {length!r}")
        rc = need("tcp_server_set_record_length")(self._handle(), client_id, length)
        if rc == ErrorCode.NO_CLIENT:
            raise NoClientError(f"no connected client with id {client_id}")
        if rc != 0:
            raise ValueError(f"record length {length} for client {client_id}: "
                             + (thread_error_text() or _core.strerror(rc)))

    # -- TLS -------------------------------------------------------------------
    def tls_info(self, client_id: int) -> Optional[TlsInfo]:
        """The negotiated TLS parameters of a client's connection -- version,
        cipher, ALPN protocol, server name (SNI), resumed, upgraded (STARTTLS),
        the peer's certificate (PEM, chain, subject, issuer) -- as a
        :class:`tcpgo.TlsInfo`; None for a plain connection (or one whose
        handshake is not done). Raises :class:`tcpgo.NoClientError`."""
        L = _lib.lib()
        rc, info = read_tls_info(need("tcp_server_tls_info"), L.tcp_server_tls_str,
                                 (self._handle(), client_id))
        if rc == ErrorCode.NO_CLIENT:
            raise NoClientError(f"no connected client with id {client_id}")
        if rc != 0:
            raise NotRunningError(f"tls_info({client_id}): {_core.strerror(rc)}")
        return info

    def set_starttls(self, cert: Optional[CertSource] = None, key: Optional[CertSource] = None,
                     ca: Optional[CertSource] = None) -> None:
        """Give a plain server the certificate for STARTTLS upgrades
        (:meth:`starttls`): paths or PEM text; no cert and key = a self-signed
        certificate (read it with :attr:`certificate_pem`); ``ca`` asks
        upgraded clients for a certificate signed by it. Before or after
        :meth:`start`. Raises :class:`tcpgo.CertificateError`."""
        fn = need("tcp_server_set_starttls")
        if (cert is None) != (key is None):
            raise ValueError("give both cert and key, or neither (self-signed)")
        a, c, k, pem = triple_args(ca, cert, key)
        rc = fn(self._handle(), a, c, k, pem)
        if rc != 0:
            raise start_error(rc, thread_error_text() or self._last_error(),
                              what=f"{self._what()}.set_starttls", ca=shown(ca),
                              cert=shown(cert), key=shown(key))

    def starttls(self, client_id: int, reply: Optional[Data] = None) -> None:
        """Upgrade a client's plain connection to TLS (STARTTLS / StartSSL),
        with the material of :meth:`set_starttls`. ``reply`` -- the protocol's
        go-ahead, e.g. ``"220 Ready to start TLS"`` -- is sent in plain text
        first (framed like any message); then the server waits for the
        client's handshake. Called from ``on_message``, the messages already
        received are delivered first and the bytes after them go to the
        handshake. When the handshake is done ``on_established`` runs again
        for the same connection (its :meth:`tls_info` then says
        ``upgraded``); when it fails, ``on_error`` and ``on_closed`` follow.
        Raises :class:`tcpgo.NoClientError`, or :class:`ValueError` when the
        connection already uses TLS or no material was set."""
        fn = need("tcp_server_starttls")
        b = None if reply is None else as_bytes(reply)
        self._send_pending_here()
        rc = fn(self._handle(), client_id, b, 0 if b is None else len(b))
        if rc == ErrorCode.NO_CLIENT:
            raise NoClientError(f"no connected client with id {client_id}")
        if rc != 0:
            raise ValueError(f"starttls({client_id}): "
                             + (thread_error_text() or self._last_error() or _core.strerror(rc)))

    @property
    def certificate_pem(self) -> Optional[str]:
        """The server's default certificate (with its chain) in PEM -- e.g. the
        self-signed one a :class:`TlsServer` made without ``cert``/``key``, for
        clients to trust (``TlsClient(ca=server.certificate_pem)``) --; None
        before the server has one."""
        rc, text = _lib.read_string(need("tcp_server_tls_certificate"), self._handle())
        return text if rc >= 0 else None

    def _refusal(self, rc: int, client_id: int, what: str) -> BaseException:
        """The exception for a refused send_file/sendv/send_line."""
        if rc == ErrorCode.NO_CLIENT:
            reason = thread_error_text()
            return send_error(rc, f"{what}: no connected client with id {client_id}", reason)
        return refusal(rc, what, thread_error_text() or self._last_error())

    def _send_failed(self, client_id: int, data: bytes) -> None:
        """tcp_send_msg (a library without send_ex) returned 0."""
        reason = self._send_failure_reason(data)
        raise SendError(f"cannot send to client {client_id}" + (f": {reason}" if reason else ""),
                        reason)

    def close_client(self, client_id: int) -> None:
        """Close one client's connection (its ``on_closed`` follows, with
        :attr:`CloseReason.LOCAL`), after up to ``linger`` seconds for what
        was sent to it to be written."""
        self._send_pending_here()
        rc = _lib.lib().tcp_server_close_client(self._handle(), client_id)
        if rc < 0:
            raise NoClientError(f"no connected client with id {client_id}")

    # -- events ------------------------------------------------------------------
    def _deliver(self, data: bytes, n: int) -> None:
        """Run the handlers for n packed event records (dispatcher thread)."""
        self._with_batched_sends(self._run_handlers, data, n)

    def _with_batched_sends(self, run: Callable[..., None], *args: Any) -> None:
        """Call ``run(*args)``, which runs handlers on this thread, collecting
        their sends and queueing them at the end with one library call (unless
        ``batch_sends=False`` or the library cannot batch)."""
        if self._batch_fn is None:
            run(*args)
            return
        self._batch_tid = get_ident()
        try:
            run(*args)
        finally:
            self._batch_tid = 0
            if self._pending_count:
                self._send_pending()

    def _run_handlers(self, data: bytes, n: int) -> None:
        if self._on_messages is not None:
            self._run_batched(data, n)
            return
        off = 0
        unpack = _unpack_header
        conns = self._conns
        last = 0  # the id of ``conn``, while no other event came between
        conn: Any = None
        for i in range(n):
            kind, cid, code, ln = unpack(data, off)
            off += HEADER_SIZE
            if kind == EV_MESSAGE:
                h = self._on_message  # a handler may change it for the next message
                if h is not None:
                    if cid != last:
                        conn = conns.get(cid)
                        if conn is None:
                            conn = self._conn_open(cid)
                        last = cid
                    try:
                        h(conn, data[off:off + ln] if not code else MessagePart(data[off:off + ln]))
                    except BaseException as e:
                        self._handler_failed("on_message", e, conn)
                off += ln
            else:
                self._run_other(kind, cid, code, data, off, ln)
                off += ln
                last = 0  # a handler may have closed or replaced anything
            if self._on_messages is not None:  # switched to batches in a handler
                self._run_batched(data, n, off, i + 1)
                return

    def _run_other(self, kind: int, cid: int, code: int, data: bytes, off: int, ln: int) -> None:
        """An event other than a message."""
        if kind == EV_ESTABLISHED:
            self._call_handler("on_established", self._on_established, self._conn_open(cid))
        elif kind == EV_CLOSED:
            self._run_closed(self._conn_closed(cid, code))
        elif kind == EV_READY:
            self._call_handler("on_ready", self._on_ready, self._conn_ready(cid))
        elif kind == EV_ERROR:
            who: int = self._conns.get(cid, cid) if cid else 0
            self._peer_error(code, data[off:off + ln].decode("utf-8", "replace"), cid, who)

    def _run_batched(self, data: bytes, n: int, off: int = 0, first: int = 0) -> None:
        """Records ``first``.. of a batch (at ``off``) with an on_messages handler:
        messages grouped per connection, delivered before that connection's
        next other event and at the end of the batch."""
        unpack = _unpack_header
        groups: Dict[int, List[bytes]] = {}
        last = 0  # cid of the group ``add`` appends to
        add: Any = None
        for i in range(first, n):
            kind, cid, code, ln = unpack(data, off)
            off += HEADER_SIZE
            if kind == EV_MESSAGE:
                end = off + ln
                if cid != last:
                    g = groups.get(cid)
                    if g is None:
                        g = groups[cid] = []
                    add, last = g.append, cid
                add(data[off:end] if not code else MessagePart(data[off:end]))
                off = end
                continue
            g = groups.pop(cid, None)
            if g:
                self._call_messages(cid, g)
            last = 0
            self._run_other(kind, cid, code, data, off, ln)
            off += ln
        for cid, g in groups.items():
            self._call_messages(cid, g)

    def _call_messages(self, cid: int, messages: List[bytes]) -> None:
        conn = self._conn_open(cid)
        h = self._on_messages
        if h is None:  # unregistered meanwhile: one call per message
            h1 = self._on_message
            if h1 is not None:
                for m in messages:
                    try:
                        h1(conn, m)
                    except BaseException as e:
                        self._handler_failed("on_message", e, conn)
            return
        try:
            h(conn, messages)
        except BaseException as e:
            self._handler_failed("on_messages", e, conn)

    def _run_closed(self, conn: BaseConnection) -> None:
        """on_closed(conn), or on_closed(conn, reason) for a handler taking two arguments."""
        h = self._on_closed
        if h is None:
            return
        try:
            if self._closed_arity.wants_extra(h):
                h(conn, conn.close_reason)
            else:
                h(conn)
        except BaseException as e:
            self._handler_failed("on_closed", e, conn)


class TlsServer(TcpServer):
    """A TLS server (TLS 1.3 by default; Go's crypto/tls, no OpenSSL needed).

    ``cert`` and ``key`` are the server's certificate (optionally followed by
    its chain) and private key: paths of PEM files, or PEM text in memory
    (bytes, or a str holding ``-----BEGIN``). Without them the server makes a
    self-signed certificate at start, valid for "localhost", 127.0.0.1 and
    ::1 -- read it with :attr:`certificate_pem` so that clients can trust it.
    With ``ca`` (CA certificates, path or PEM) the server requires and
    verifies a client certificate (mutual TLS); ``require_client_cert=False``
    makes it optional, and ``on_cert`` decides about each one itself. A
    problem with the files raises :class:`tcpgo.CertificateError` naming it.

    TLS options (None = the library's default): ``min_tls_version`` /
    ``max_tls_version`` ("1.2" or "1.3"; default 1.3 only), ``cipher_suites``
    (TLS 1.2 suites by IANA name, in order of preference), ``alpn``
    (protocols accepted, preferred first; a client offering none of them is
    refused), ``resumption`` (session tickets, default True), ``key_log_file``
    (NSS key log for Wireshark; debugging only). :meth:`add_cert` serves
    other certificates by SNI, :meth:`reload_cert` replaces the certificate
    without a restart, :meth:`tls_info` tells what a connection negotiated.

    The peer's certificate subject is available by name or NID::

        certs = tcpgo.generate_certs("/tmp/pki")
        with tcpgo.TlsServer(certs.server_cert, certs.server_key, ca=certs.ca,
                             delimiter="\\n", host="127.0.0.1") as server:
            @server.on_established
            def hello(client_id: int) -> None:
                print(server.peer_subject_part(client_id, "CN"))   # 'tcpgo client'
                print(server.peer_subject(client_id))  # {'CN': 'tcpgo client', 'O': 'tcpgo', ...}
            server.start(0)
    """

    _kind = "tls-server"

    def __init__(self, cert: Optional[CertSource] = None, key: Optional[CertSource] = None,
                 ca: Optional[CertSource] = None,
                 delimiter: Union[bytes, str, int, None] = None, max_len: int = 0, *,
                 framing: Optional[Framing] = None,
                 require_client_cert: bool = True,
                 on_cert: Optional[CertHandler] = None,
                 min_tls_version: TlsVersion = None,
                 max_tls_version: TlsVersion = None,
                 cipher_suites: Names = None,
                 alpn: Names = None,
                 key_log_file: Optional[PathLike] = None,
                 resumption: Optional[bool] = None,
                 handshake_timeout: Optional[float] = None,
                 host: str = "",
                 on_message: Optional[MessageHandler] = None,
                 on_messages: Optional[MessagesHandler] = None,
                 on_established: Optional[ClientHandler] = None,
                 on_closed: Optional[ClosedHandler] = None,
                 on_error: Optional[ErrorHandler] = None,
                 on_ready: Optional[ClientHandler] = None,
                 on_accept: Optional[AcceptHandler] = None,
                 nodelay: bool = True, reuse_port: bool = False,
                 send_queue_limit: Optional[int] = None,
                 event_queue_limit: Optional[int] = None,
                 linger: Optional[float] = None,
                 batch_sends: bool = True,
                 memory_budget: Optional[int] = None,
                 max_connections: Optional[int] = None,
                 idle_timeout: Optional[float] = None,
                 message_timeout: Optional[float] = None,
                 write_timeout: Optional[float] = None,
                 keepalive: Optional[bool] = None,
                 keepalive_idle: Optional[float] = None,
                 keepalive_interval: Optional[float] = None,
                 keepalive_count: Optional[int] = None,
                 backlog: Optional[int] = None,
                 ipv6_only: Optional[bool] = None,
                 close_on_eof: Optional[bool] = None,
                 send_low_water: Optional[int] = None,
                 callback_threads: Optional[int] = None,
                 proxy_protocol: Union[ProxyMode, str, int, None] = None,
                 proxy_trusted: AddressList = None,
                 allowed: AddressList = None,
                 blocked: AddressList = None) -> None:
        for n, v in (("cert", cert), ("key", key), ("ca", ca)):
            check_source(n, v)
        if (cert is None) != (key is None):
            raise TypeError("TlsServer needs both cert and key, or neither (a self-signed "
                            "certificate)")
        super().__init__(
            delimiter, max_len, framing=framing, host=host, on_message=on_message, on_messages=on_messages,
            on_established=on_established, on_closed=on_closed, on_error=on_error,
            on_ready=on_ready, on_accept=on_accept, nodelay=nodelay, reuse_port=reuse_port,
            send_queue_limit=send_queue_limit, event_queue_limit=event_queue_limit,
            linger=linger, batch_sends=batch_sends, memory_budget=memory_budget,
            max_connections=max_connections, idle_timeout=idle_timeout,
            message_timeout=message_timeout, write_timeout=write_timeout,
            handshake_timeout=handshake_timeout, keepalive=keepalive,
            keepalive_idle=keepalive_idle, keepalive_interval=keepalive_interval,
            keepalive_count=keepalive_count, backlog=backlog, ipv6_only=ipv6_only,
            close_on_eof=close_on_eof, send_low_water=send_low_water,
            callback_threads=callback_threads, proxy_protocol=proxy_protocol,
            proxy_trusted=proxy_trusted, allowed=allowed, blocked=blocked, on_cert=on_cert,
            min_tls_version=min_tls_version, max_tls_version=max_tls_version,
            cipher_suites=cipher_suites, alpn=alpn, key_log_file=key_log_file,
            resumption=resumption)
        self._sources = (cert, key, ca)
        self._cert, self._key, self._ca = shown(cert), shown(key), shown(ca)
        if not require_client_cert:
            self._set_option(_core.OPT_REQUIRE_CLIENT_CERT, 0)

    def _start_call(self, L: Any, h: ctypes.c_void_p, port: int) -> int:
        cert, key, ca = self._sources
        if cert is not None and not any(is_pem(v) for v in self._sources):
            enc = os.fsencode
            return L.tls_server_start(h, port, None if ca is None else enc(os.fspath(ca)),
                                      enc(os.fspath(cert)), enc(os.fspath(key)))  # type: ignore[arg-type]
        fn = need("tls_server_start_pem")
        what = f"{self._what()}.start"
        return fn(h, port, as_pem("ca", ca, what), as_pem("cert", cert, what),
                  as_pem("key", key, what))

    def add_cert(self, host: str, cert: CertSource, key: CertSource) -> None:
        """Serve ``cert``/``key`` (paths or PEM) to clients asking for ``host``
        by SNI -- a name, or ``"*.example.com"`` for the names one label below
        example.com; the certificate of the start serves every other name.
        Replaces an earlier one for the same host; any time, also while
        running; kept across restarts. Raises :class:`tcpgo.CertificateError`,
        or :class:`ValueError` for a bad host."""
        fn = need("tcp_server_add_cert")
        if not isinstance(host, str) or not host:
            raise ValueError("host must be a non-empty str")
        c, k, pem = pair_args(cert, key)
        rc = fn(self._handle(), host.encode("idna" if not host.isascii() else "ascii"), c, k, pem)
        if rc == ErrorCode.INVALID_ARG:
            raise ValueError(f"add_cert({host!r}): " + (thread_error_text() or "invalid host"))
        if rc != 0:
            raise start_error(rc, thread_error_text() or self._last_error(),
                              what=f"{self._what()}.add_cert", cert=shown(cert), key=shown(key))

    def reload_cert(self, cert: Optional[CertSource] = None,
                    key: Optional[CertSource] = None) -> None:
        """Replace the certificate of the running server without a restart:
        new handshakes use the new pair, connections already up keep theirs.
        Paths or PEM; neither = a new self-signed certificate. Nothing changes
        on failure (:class:`tcpgo.CertificateError`; :class:`tcpgo.NotRunningError`
        when not running)."""
        fn = need("tcp_server_reload_cert")
        c, k, pem = pair_args(cert, key)
        rc = fn(self._handle(), c, k, pem)
        if rc == ErrorCode.NOT_RUNNING:
            raise NotRunningError(f"{self._what()} is not running")
        if rc != 0:
            raise start_error(rc, thread_error_text() or self._last_error(),
                              what=f"{self._what()}.reload_cert", cert=shown(cert), key=shown(key))

    def peer_subject_part(self, client_id: int, field: Union[str, int]) -> Optional[str]:
        """One subject field of the client's verified certificate, by name
        ("CN", "O", "OU", "commonName"...) or NID (:class:`tcpgo.Nid`, e.g. 13);
        None when the certificate has no such field or the client sent none."""
        nid = field_nid(field)
        rc, text = _lib.read_string(_lib.lib().get_subj_part, self._handle(), client_id, nid)
        if rc == ErrorCode.NO_FIELD:
            return None
        if rc == ErrorCode.NO_CLIENT:
            raise NoClientError(f"no connected client with id {client_id}")
        if rc == ErrorCode.INVALID_ARG:
            raise ValueError(f"subject field NID {nid} is not known to tcpgo")
        if rc < 0:
            raise NotRunningError(f"cannot read the certificate of client {client_id}: "
                                  f"{_core.strerror(rc)}")
        return text

    get_subj_part = peer_subject_part

    def peer_subject(self, client_id: int) -> Dict[str, str]:
        """Every known subject field of the client's certificate, keyed by short
        name ({'CN': 'tcpgo client', 'O': 'tcpgo', 'OU': 'test'}); {} without one."""
        return _core.subject_dict(lambda nid: self.peer_subject_part(client_id, nid))


def tls_version_value(v: Union[str, int, float]) -> int:
    if isinstance(v, str):
        table = {"1.2": 0x0303, "tls1.2": 0x0303, "tlsv1.2": 0x0303,
                 "1.3": 0x0304, "tls1.3": 0x0304, "tlsv1.3": 0x0304}
        try:
            return table[v.lower().replace(" ", "").replace("_", ".")]
        except KeyError:
            raise ValueError(f"unknown TLS version {v!r}: use '1.2' or '1.3'") from None
    if isinstance(v, float):
        return {1.2: 0x0303, 1.3: 0x0304}[v]
    if v in (0x0303, 0x0304):
        return int(v)
    raise ValueError(f"unknown TLS version {v!r}: use '1.2' or '1.3'")
