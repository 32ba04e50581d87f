"""TCP and TLS servers: :class:`TcpServer` and :class:`TlsServer`."""

from __future__ import annotations

import ctypes
import os
from threading import get_ident
from typing import Any, Callable, Dict, List, Optional, Union

from . import _core, _lib
from ._core import (EV_CLOSED, EV_ERROR, EV_ESTABLISHED, EV_MESSAGE, HEADER, HEADER_SIZE,
                    Data, Endpoint, F, as_bytes, check_port, field_nid, option_error,
                    seconds_to_ms)
from .errors import (ErrorCode, NoClientError, NotRunningError, SendError, StartError,
                     start_error)

__all__ = ["TcpServer", "TlsServer"]

_pack_header = HEADER.pack
_MAX_PENDING_BYTES = 1 << 20  # queue a handler's batched sends at least every MiB

PathLike = Union[str, "os.PathLike[str]"]

MessageHandler = Callable[[int, bytes], Any]
ClientHandler = Callable[[int], Any]
ErrorHandler = Callable[[int, BaseException], Any]


def _path(p: Optional[PathLike]) -> Optional[str]:
    return None if p is None else os.fspath(p)


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
    ``on_message(client_id, data)``, ``on_closed(client_id)``, and
    ``on_error(client_id, error)`` which receives a :class:`tcpgo.PeerError` for
    problems the library reports (a too-long message, a failed TLS handshake
    with ``client_id`` 0...) and any exception raised by another handler (which
    is also logged to the ``tcpgo`` logger; it never stops the server).
    A handler must not block for long: while it runs, no event is handled.

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
    Other options: ``nodelay`` (TCP_NODELAY, default on), ``reuse_port``
    (SO_REUSEPORT), ``send_queue_limit`` (bytes queued per connection before
    :meth:`send` fails, default 64 MiB, 0 = no limit) and ``event_queue_limit``
    (bytes of received data waiting for the dispatcher before the library stops
    reading, default 16 MiB).

    ``linger`` (seconds, default 1) is how long :meth:`stop` and
    :meth:`close_client` first wait for queued data to be written.

    Sends made by handlers are batched: a :meth:`send` called from a handler
    (on the dispatcher thread) is queued in the library, together with the
    other sends of the same batch of events, when the batch has been handled
    (or earlier, before a :meth:`close_client`, :meth:`flush`, :meth:`stop`...
    of the same handler), with one library call; that is what makes a tcpgo
    echo server fast. A message that the library then refuses (the client has
    gone, its send queue is full) is logged and reported to ``on_error`` as a
    :class:`tcpgo.SendError` with client id 0, instead of being raised by
    :meth:`send`. ``batch_sends=False`` queues every message at once (and
    raises). Sends from other threads are always immediate.

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
                 host: str = "",
                 on_message: Optional[MessageHandler] = None,
                 on_established: Optional[ClientHandler] = None,
                 on_closed: Optional[ClientHandler] = None,
                 on_error: Optional[ErrorHandler] = None,
                 nodelay: bool = True, reuse_port: bool = False,
                 send_queue_limit: Optional[int] = None,
                 event_queue_limit: Optional[int] = None,
                 linger: Optional[float] = None,
                 batch_sends: bool = True) -> None:
        super().__init__()
        self._set_framing(delimiter, max_len)
        if not isinstance(host, str):
            raise TypeError("host must be a str")
        self._host = host
        self._on_message: Optional[MessageHandler] = on_message
        self._on_established: Optional[ClientHandler] = on_established
        self._on_closed: Optional[ClientHandler] = on_closed
        self._on_error = on_error
        self._port = 0
        self._create_handle(max_len, nodelay)
        if reuse_port:
            self._set_option(_core.OPT_REUSEPORT, 1)
        self._set_queue_options(send_queue_limit, event_queue_limit, linger)
        L = _lib.lib()
        self._send_fn = L.tcp_send_msg
        # Sends made by handlers on the dispatcher thread are collected and
        # queued with one tcp_server_send_batch call per event batch.
        self._batch_fn = getattr(L, "tcp_server_send_batch", None) if batch_sends else None
        self._batch_tid = 0  # the dispatcher's thread id while it runs handlers
        self._pending: List[bytes] = []
        self._pending_count = 0
        self._pending_bytes = 0

    # -- options -----------------------------------------------------------
    def _set_option_str(self, option: int, value: str) -> None:
        rc = _lib.lib().tcp_server_set_option_str(self._handle(), option, value.encode("utf-8"))
        if rc != 0:
            raise option_error(rc, option, value, self._last_error())

    # -- handler registration (decorators or plain calls) -------------------
    def on_message(self, handler: F) -> F:
        """Register ``handler(client_id, data)``; usable as a decorator."""
        self._on_message = handler
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

    def close(self) -> None:
        """Stop the server and release its resources; it cannot be used afterwards."""
        super().close()

    def __enter__(self) -> "TcpServer":
        return self

    def __repr__(self) -> str:
        state = ("closed" if self._h is None
                 else f"port {self._port}" if self._is_running_safe() else "stopped")
        mode = "continuous" if self._delimiter is None else f"delimiter={self._delimiter!r}"
        return f"<{type(self).__name__} {mode} {state}>"

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
        """The message delimiter, or None in continuous mode."""
        return self._delimiter

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

    # -- sending ---------------------------------------------------------------
    def send(self, client_id: int, data: Data) -> None:
        """Queue ``data`` (bytes, or str sent as UTF-8) for a client; never blocks.

        Fragmented mode appends the delimiter. Raises :class:`ValueError` when
        the message holds the delimiter or exceeds ``max_len``, and
        :class:`tcpgo.SendError` when the client is unknown (it may just have
        disconnected), the server is not running, or the send queue is full --
        except inside handlers, where sends are batched (see the class
        documentation) and such failures go to ``on_error``.
        Messages to one client are sent in the order of the calls.
        """
        if type(data) is not bytes:
            data = as_bytes(data)
        if self._batch_tid == get_ident():
            d = self._delimiter
            if d is not None and (d in data or len(data) > self._max_len):
                self._check_content(data)
            n = len(data)
            self._pending += (_pack_header(0, client_id, 0, n), data)
            self._pending_count += 1
            self._pending_bytes += n
            if self._pending_bytes > _MAX_PENDING_BYTES:
                self._send_pending()
            return
        if _lib._forked:
            _lib.check_fork()
        if not self._send_fn(self._h, client_id, data, len(data)):
            self._send_failed(client_id, data)

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
            reason = self._last_error()
            err = SendError(f"{count - max(queued, 0)} of {count} messages sent by handlers "
                            f"were not queued" + (f": {reason}" if reason else ""), reason)
            _core.logger.info("tcpgo: %r: %s", self, err)
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

    def _send_failed(self, client_id: int, data: bytes) -> None:
        reason = self._send_failure_reason(data)
        raise SendError(f"cannot send to client {client_id}" + (f": {reason}" if reason else ""),
                        reason)

    def close_client(self, client_id: int) -> None:
        """Close one client's connection (its ``on_closed`` follows), after up to
        ``linger`` seconds for what was sent to it to be written."""
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
        off = 0
        unpack = HEADER.unpack_from
        for _ in range(n):
            kind, cid, code, ln = unpack(data, off)
            off += HEADER_SIZE
            if kind == EV_MESSAGE:
                h = self._on_message
                if h is not None:
                    try:
                        h(cid, data[off:off + ln])
                    except BaseException as e:
                        self._handler_failed("on_message", e, cid)
            elif kind == EV_ESTABLISHED:
                self._call_handler("on_established", self._on_established, cid)
            elif kind == EV_CLOSED:
                self._call_handler("on_closed", self._on_closed, cid)
            elif kind == EV_ERROR:
                self._peer_error(code, data[off:off + ln].decode("utf-8", "replace"), cid, cid)
            off += ln


class TlsServer(TcpServer):
    """A TLS server (TLS 1.3 by default; Go's crypto/tls, no OpenSSL needed).

    ``cert`` and ``key`` are PEM files of the server's certificate (optionally
    followed by its chain) and private key. With ``ca`` (a PEM file of CA
    certificates) the server requires and verifies a client certificate
    (mutual TLS); ``require_client_cert=False`` makes it optional. The files
    are read by :meth:`start`; a problem raises :class:`tcpgo.CertificateError`
    naming the file. ``min_tls_version="1.2"`` also accepts TLS 1.2.
    ``handshake_timeout`` (seconds, default 10) bounds a client's handshake.

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

    def __init__(self, cert: PathLike, key: PathLike, ca: Optional[PathLike] = None,
                 delimiter: Union[bytes, str, int, None] = None, max_len: int = 0, *,
                 require_client_cert: bool = True,
                 min_tls_version: Union[str, int, None] = None,
                 handshake_timeout: Optional[float] = None,
                 **kwargs: Any) -> None:
        super().__init__(delimiter, max_len, **kwargs)
        self._cert = _path(cert)
        self._key = _path(key)
        self._ca = _path(ca)
        if self._cert is None or self._key is None:
            raise TypeError("TlsServer needs cert and key paths")
        if not require_client_cert:
            self._set_option(_core.OPT_REQUIRE_CLIENT_CERT, 0)
        if min_tls_version is not None:
            self._set_option(_core.OPT_TLS_MIN_VERSION, tls_version_value(min_tls_version))
        if handshake_timeout is not None:
            self._set_option(_core.OPT_CONNECT_TIMEOUT_MS, seconds_to_ms(handshake_timeout))

    def _start_call(self, L: Any, h: ctypes.c_void_p, port: int) -> int:
        enc = os.fsencode
        return L.tls_server_start(h, port, None if self._ca is None else enc(self._ca),
                                  enc(self._cert), enc(self._key))  # type: ignore[arg-type]

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
