"""TCP and TLS clients: :class:`TcpClient` and :class:`TlsClient`."""

from __future__ import annotations

import array
import ctypes
import itertools
import os
import queue
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from . import _core, _lib
from ._core import (BACKPRESSURE_CODES, COMMON_OPTIONS, EV_CLOSED, EV_CONNECT, EV_ERROR,
                    EV_MESSAGE, EV_READY, HEADER, HEADER_SIZE, ArityCache, CloseReason,
                    ConnStats, Data, Endpoint, F, OptionTable, Writable, as_bytes, bool_option,
                    check_port, close_reason, field_nid, need, seconds_option, seconds_to_ms,
                    send_error)
from .errors import (ConnectionClosedError, ErrorCode, NotRunningError, PeerError, SendError,
                     StartCode, StartError, start_error)
from .framing import Framing, MessagePart

_unpack_header = HEADER.unpack_from
from .sending import FileTransfer, ProgressHandler, iovec_array, line_bytes, refusal, start_file
from .server import Names, PathLike, TlsVersion
from .tls import (CertHandler, CertSource, TlsInfo, apply_tls_options, as_pem, check_source,
                  install_cert_handler, is_pem, read_tls_info, shown, triple_args)

__all__ = ["TcpClient", "TlsClient"]

_CLIENT_OPTIONS: OptionTable = dict(
    COMMON_OPTIONS,
    reconnect=(_core.OPT_RECONNECT, bool_option),
    reconnect_min=(_core.OPT_RECONNECT_MIN_MS, seconds_option),
    reconnect_max=(_core.OPT_RECONNECT_MAX_MS, seconds_option),
)

_CLOSED = object()  # end-of-stream marker in the receive queue


class TcpClient(Writable, Endpoint):
    """A plain TCP client.

    Received messages go to the ``on_message(data)`` handler if one is set
    (or ``on_messages(messages)``, one call per polled batch, which replaces it),
    else into a queue read by :meth:`recv` (blocking, with a timeout) or by
    iterating over the client. ``on_closed()`` runs once when the connection
    ends (server closed it, network error, or :meth:`stop`), ``on_error(error)``
    gets a :class:`tcpgo.PeerError` from the library or an exception raised by
    another handler. Handlers run on the client's dispatcher thread.

    ``delimiter``/``max_len`` select fragmented mode as for :class:`tcpgo.TcpServer`.
    ``connect_timeout`` (seconds, default 10) bounds connect (plus TLS handshake).
    ``on_closed`` may take one argument: it then gets the :class:`tcpgo.CloseReason`
    (also in :attr:`close_reason`).

    Options (None = the library's default; seconds, bytes):

    ======================  ==============  =========================================
    option                  default         meaning
    ======================  ==============  =========================================
    ``reconnect``           False           reconnect by itself after the connection
                                            was lost (not after :meth:`stop`), with
                                            exponential back-off and +-20 % jitter
                                            between
    ``reconnect_min``       0.1             the first delay and
    ``reconnect_max``       30              the longest; ``on_connect(attempt,
                                            result)`` hears of every attempt
    ``local_address``       "" (system)     the local address to connect from
    ``send_queue_limit``    4 MiB           bytes queued before a send is refused
    ``send_low_water``      64 KiB          ``on_ready`` fires when a refused
                                            queue drained to this
    ``idle_timeout``        0 (none)        close after receiving nothing this long
    ``message_timeout``     0 (none)        a started message must end within this
    ``write_timeout``       0 (none)        queued data must be taken within this
    ``keepalive``           True            TCP keep-alive probes, with
    ``keepalive_idle``      15              idle time before the first probe,
    ``keepalive_interval``  15              time between probes,
    ``keepalive_count``     9               unanswered probes before dropping
    ``close_on_eof``        False           the server's EOF closes at once,
                                            dropping what is queued
    ``callback_threads``    64              library callback threads, 1..4096
    ``event_queue_limit``   16 MiB          received bytes waiting before reading
                                            pauses
    ``linger``              1               how long :meth:`stop` waits for queued
                                            data
    ``nodelay``             True            TCP_NODELAY
    ``framing``             None            a :mod:`tcpgo.framing` object instead of
                                            ``delimiter``/``max_len``
    ``verify``              "full"          TLS (:class:`TlsClient`, :meth:`starttls`):
                                            "full" checks chain and name, "ca" only
                                            the chain
    ``server_name``         the host        the name to verify and send as SNI
    ``system_cas``          False           trust the system's CAs besides ``ca``
    ``min_tls_version``,    "1.3"           TLS versions ("1.2", "1.3")
    ``max_tls_version``
    ``cipher_suites``       Go's defaults   TLS 1.2 suites by IANA name
    ``alpn``                ()              ALPN protocols offered, preferred first
    ``resumption``          True            resume sessions on the next connect
    ``key_log_file``        None            NSS key log (debugging only)
    ``on_cert``             None            judges the server's certificate
                                            (see :meth:`on_cert`)
    ======================  ==============  =========================================

    With ``reconnect=True`` the client keeps its handlers and its receive
    queue across connections: :meth:`recv` waits through a reconnection and
    ends (:class:`tcpgo.ConnectionClosedError`) only after :meth:`stop`;
    :meth:`send` raises :class:`tcpgo.SendError` with code ``NOT_RUNNING``
    while it is disconnected.

    Flow control as on servers: :meth:`try_send` returns False while the
    send queue is full, ``on_ready()`` / :meth:`wait_writable` tell when to
    go on; :meth:`pause`/:meth:`resume` stop and restart reading.

    Example::

        with tcpgo.TcpClient(delimiter="\\n") as client:
            client.connect("127.0.0.1", port)
            client.send("ping")
            reply = client.recv(timeout=5)     # bytes

    :meth:`connect` returns the client, so ``with TcpClient("\\n").connect(host, port) as c:``
    works too.
    """

    _kind = "client"
    _new_name = "tcp_client_new"
    _free_name = "tcp_client_free"
    _set_option_name = "tcp_client_set_option"
    _is_running_name = "tcp_client_is_running"
    _flush_name = "tcp_client_flush"
    _poll_name = "tcp_client_poll"
    _last_error_name = "tcp_client_last_error"
    _stop_name = "tcp_client_stop"

    def __init__(self, delimiter: Union[bytes, str, int, None] = None, max_len: int = 0, *,
                 framing: Optional[Framing] = None,
                 on_message: Optional[Callable[[bytes], Any]] = None,
                 on_messages: Optional[Callable[[List[bytes]], Any]] = None,
                 on_closed: Optional[Callable[[], Any]] = None,
                 on_error: Optional[Callable[[BaseException], Any]] = None,
                 on_ready: Optional[Callable[[], Any]] = None,
                 on_connect: Optional[Callable[[int, int], Any]] = None,
                 connect_timeout: Optional[float] = None,
                 nodelay: bool = True,
                 send_queue_limit: Optional[int] = None,
                 event_queue_limit: Optional[int] = None,
                 linger: Optional[float] = None,
                 reconnect: bool = False,
                 reconnect_min: Optional[float] = None,
                 reconnect_max: Optional[float] = None,
                 local_address: Optional[str] = None,
                 idle_timeout: Optional[float] = None,
                 message_timeout: Optional[float] = None,
                 write_timeout: Optional[float] = None,
                 keepalive: Optional[bool] = None,
                 keepalive_idle: Optional[float] = None,
                 keepalive_interval: Optional[float] = None,
                 keepalive_count: Optional[int] = None,
                 close_on_eof: Optional[bool] = None,
                 send_low_water: Optional[int] = None,
                 callback_threads: Optional[int] = None,
                 verify: str = "full",
                 server_name: Optional[str] = None,
                 system_cas: Optional[bool] = None,
                 on_cert: Optional[CertHandler] = None,
                 min_tls_version: TlsVersion = None,
                 max_tls_version: TlsVersion = None,
                 cipher_suites: Names = None,
                 alpn: Names = None,
                 key_log_file: Optional[PathLike] = None,
                 resumption: Optional[bool] = None) -> None:
        super().__init__()
        self._choose_framing(delimiter, max_len, framing)
        self._on_message: Optional[Callable[[bytes], Any]] = on_message
        self._on_messages: Optional[Callable[[List[bytes]], Any]] = on_messages
        self._on_closed: Optional[Callable[..., Any]] = on_closed
        self._on_error = on_error
        self._on_ready: Optional[Callable[[], Any]] = on_ready
        self._on_connect: Optional[Callable[[int, int], Any]] = on_connect
        self._closed_arity = ArityCache(1)
        self._close_reason: Optional[CloseReason] = None
        self._reconnect = bool(reconnect)
        self._paused = False
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._connected_once = False
        self._closed_reason: Optional[PeerError] = None
        self._host = ""
        self._port = 0
        self._connect_timeout = 10.0 if connect_timeout is None else float(connect_timeout)
        self._create_handle(max_len, nodelay)
        if connect_timeout is not None:
            self._set_option(_core.OPT_CONNECT_TIMEOUT_MS, seconds_to_ms(connect_timeout))
        self._set_queue_options(send_queue_limit, event_queue_limit, linger)
        self._apply_options(_CLIENT_OPTIONS, dict(
            reconnect=True if reconnect else None, reconnect_min=reconnect_min,
            reconnect_max=reconnect_max, idle_timeout=idle_timeout,
            message_timeout=message_timeout, write_timeout=write_timeout, keepalive=keepalive,
            keepalive_idle=keepalive_idle, keepalive_interval=keepalive_interval,
            keepalive_count=keepalive_count, close_on_eof=close_on_eof,
            send_low_water=send_low_water, callback_threads=callback_threads))
        if local_address is not None:
            if not isinstance(local_address, str):
                raise TypeError("local_address must be a str")
            self._set_option_str(_core.OPT_BIND_ADDRESS, local_address)
        L = _lib.lib()
        self._send_fn = L.tcp_client_send
        self._send_ex_fn = getattr(L, "tcp_client_send_ex", None)
        # tcp_client_send_msgs takes tcp_msg {ptr, size_t, int} built as 3 x 8 bytes
        self._send_msgs_fn = (getattr(L, "tcp_client_send_msgs", None)
                              if ctypes.sizeof(ctypes.c_void_p) == 8
                              and array.array("Q").itemsize == 8 else None)
        # Runs a file's progress handler (tcpgo.aio: on the loop); None = on the library thread.
        self._progress_call: Optional[Callable[..., Any]] = None
        if verify not in ("full", "ca"):
            raise ValueError("verify must be 'full' or 'ca'")
        self._verify = verify
        if verify == "ca":
            self._set_option(_core.OPT_VERIFY_MODE, 1)
        self._on_cert: Optional[CertHandler] = None
        self._cert_call: Any = None
        if on_cert is not None:
            self.on_cert(on_cert)
        apply_tls_options(self, min_tls_version=min_tls_version, max_tls_version=max_tls_version,
                          cipher_suites=cipher_suites, alpn=alpn, key_log_file=key_log_file,
                          resumption=resumption, server_name=server_name, system_cas=system_cas)

    # -- handlers ------------------------------------------------------------
    def on_message(self, handler: F) -> F:
        """Register ``handler(data)`` for received messages (instead of :meth:`recv`);
        usable as a decorator."""
        self._on_message = handler
        return handler

    def on_messages(self, handler: Optional[F]) -> Optional[F]:
        """Register ``handler(messages)``, the batch form of :meth:`on_message`:
        called once per batch of events the library hands over, with the
        messages of that batch as a non-empty :class:`list` of :class:`bytes`
        (yours to keep) in the order they arrived; ``on_message`` is then not
        called and :meth:`recv` gets nothing. Other events keep their place:
        the messages before an ``on_closed`` are delivered before it. A part
        of an overlong message comes as a :class:`tcpgo.MessagePart`.
        Usable as a decorator; None unregisters it."""
        self._on_messages = handler
        return handler

    def on_closed(self, handler: F) -> F:
        """Register ``handler()`` -- or ``handler(reason)`` with the
        :class:`tcpgo.CloseReason` -- called once when a connection ends;
        usable as a decorator."""
        self._on_closed = handler
        return handler

    def on_ready(self, handler: F) -> F:
        """Register ``handler()``, called when the send queue drained to
        ``send_low_water`` after a send was refused for back-pressure;
        usable as a decorator."""
        self._on_ready = handler
        return handler

    def on_connect(self, handler: F) -> F:
        """Register ``handler(attempt, result)``, called for every
        reconnection attempt (``reconnect=True``): ``attempt`` counts from 1
        since the connection was lost, ``result`` is a :class:`tcpgo.StartCode`
        -- ``OK`` when connected again (messages follow), else why the attempt
        failed (the next one follows after the back-off). Usable as a decorator."""
        self._on_connect = handler
        return handler

    def on_error(self, handler: F) -> F:
        """Register ``handler(error)``; usable as a decorator."""
        self._on_error = handler
        return handler

    # -- life cycle ------------------------------------------------------------
    def _start_call(self, L: Any, h: ctypes.c_void_p, host: bytes, port: int) -> int:
        return L.tcp_client_start(h, host, port)

    def connect(self, host: str, port: int) -> "TcpClient":
        """Connect to ``host`` (a name, IPv4 or IPv6 address) and ``port``; returns self.

        Raises :class:`tcpgo.ConnectError` (:class:`tcpgo.ConnectTimeoutError`
        after ``connect_timeout``), :class:`tcpgo.HandshakeError` and
        :class:`tcpgo.CertificateError` (TLS), or :class:`ValueError` for a bad
        port. Ctrl-C interrupts a pending connect.
        """
        check_port(port, client=True)
        if not isinstance(host, str) or not host:
            raise ValueError("host must be a non-empty str")
        with self._lock:
            h = self._handle()
            L = _lib.lib()
            if L.tcp_client_is_running(h):
                raise StartError(ErrorCode.ALREADY_RUNNING,
                                 f"{self._what()} is already connected to {self._host}:{self._port}")
            t = self._thread
            if t is not None and t.is_alive() and t is not threading.current_thread():
                if self._reconnect:
                    self._stop_and_join()  # ends the reconnection loop of the last connect
                t.join()  # the previous connection's events are all delivered
            self._host, self._port = host, port
            self._closed_reason = None
            self._close_reason = None
            self._paused = False
            self._queue = queue.SimpleQueue()
            t0 = time.monotonic()
            rc = self._start_interruptible(L, h, host.encode("idna" if not host.isascii() else "ascii"),
                                           port)
            if rc != 0:
                raise self._start_failed(rc, time.monotonic() - t0)
            self._connected_once = True
            self._start_dispatcher(f"tcpgo-{self._kind}-{host}:{port}")
        return self

    start = connect

    def _start_interruptible(self, L: Any, h: ctypes.c_void_p, host: bytes, port: int) -> int:
        """Run the blocking start call on a helper thread so that Ctrl-C (which
        only reaches the main thread between Python bytecodes) is not delayed
        by up to connect_timeout."""
        if threading.current_thread() is not threading.main_thread():
            return self._start_call(L, h, host, port)
        result: list = []
        done = threading.Event()

        def run() -> None:
            try:
                result.append(self._start_call(L, h, host, port))
            except BaseException as e:  # pragma: no cover
                result.append(e)
            finally:
                done.set()

        threading.Thread(target=run, name="tcpgo-connect", daemon=True).start()
        try:
            while not done.wait(0.1):
                pass
        except BaseException:
            # Interrupted: abandon the attempt; if it still succeeds, close it.
            def cleanup() -> None:
                done.wait()
                if result and result[0] == 0:
                    L.tcp_client_stop(h)
            threading.Thread(target=cleanup, name="tcpgo-connect-cleanup", daemon=True).start()
            raise
        r = result[0]
        if isinstance(r, BaseException):  # pragma: no cover
            raise r
        return r

    def _start_failed(self, rc: int, elapsed: float) -> StartError:
        err = start_error(rc, self._last_error(), what=f"{self._what()}.connect", port=self._port,
                          host=self._host, ca=self._ca, cert=self._cert, key=self._key,
                          timeout=self._connect_timeout)
        return _maybe_timeout(err, elapsed, self._connect_timeout)

    def stop(self) -> None:
        """Close the connection, after up to ``linger`` seconds (default 1) for
        what was sent to be written; ``on_closed`` runs once (if it has not
        yet) and no handler of this client runs after stop returns (unless
        called from a handler). Messages already received stay available to
        :meth:`recv`. Ends reconnecting. Idempotent; the client can connect again."""
        self._stop_and_join()

    def _polls_while_down(self) -> bool:
        return self._reconnect

    def _dispatcher_done(self) -> None:
        if self._reconnect:
            self._queue.put(_CLOSED)  # the end of the stream is stop(), not a lost connection
        super()._dispatcher_done()

    def flush(self, timeout: Optional[float] = 2.0) -> bool:
        """Wait up to ``timeout`` seconds until everything sent so far was written
        to the network; True when it was, False on timeout or when the
        connection is gone (what was queued is then lost)."""
        return self._flush(timeout)

    def close(self) -> None:
        """Stop the client (see :meth:`stop`) and release its resources."""
        super().close()

    def __enter__(self) -> "TcpClient":
        return self

    def __repr__(self) -> str:
        state = "closed" if self._h is None else (
            f"connected to {self._host}:{self._port}" if self._is_running_safe() else "not connected")
        return f"<{type(self).__name__} {self._framing_name()} {state}>"

    @property
    def connected(self) -> bool:
        """True while the connection is up."""
        return self._is_running()

    running = connected

    @property
    def local_port(self) -> int:
        """The local port of the connection."""
        p = _lib.lib().tcp_client_local_port(self._handle())
        if p < 0:
            raise NotRunningError(f"{self._what()} is not connected")
        return p

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
        """The :mod:`tcpgo.framing` object given at creation, or None."""
        return self._framing

    @property
    def close_reason(self) -> Optional[CloseReason]:
        """Why the last connection ended (None while the first one is up, or
        with a library that does not report it)."""
        return self._close_reason

    @property
    def reconnecting(self) -> bool:
        """True while a ``reconnect=True`` client is between connections."""
        return (self._reconnect and not self._stopping and not self._done.is_set()
                and not self.connected)

    # -- flow control ---------------------------------------------------------------
    @property
    def queued(self) -> int:
        """Bytes queued for the server and not yet handed to the kernel."""
        n = need("tcp_client_queued")(self._handle())
        if n < 0:
            raise NotRunningError(f"{self._what()} is not connected")
        return int(n)

    def pause(self) -> None:
        """Stop reading from the server (the server is slowed by TCP flow
        control; nothing is lost) until :meth:`resume`. Idempotent."""
        if need("tcp_client_pause")(self._handle()) != 0:
            raise NotRunningError(f"{self._what()} is not connected")
        self._paused = True

    def resume(self) -> None:
        """Restart reading after :meth:`pause`. Idempotent."""
        if need("tcp_client_resume")(self._handle()) != 0:
            raise NotRunningError(f"{self._what()} is not connected")
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def stats(self) -> ConnStats:
        """Counters of the current (or last) connection."""
        c = _core._CConnStats()
        rc = need("tcp_client_conn_stats")(self._handle(), ctypes.addressof(c), ctypes.sizeof(c))
        if rc != 0:
            raise NotRunningError(f"{self._what()} was never connected")
        return _core.conn_stats_of(c)

    def wait_writable(self, timeout: Optional[float] = None) -> bool:
        """Block until a refused send may be retried (the ready event) or the
        connection ended; False on timeout. Not from a handler (use ``on_ready``)."""
        return self._wait_writable(self, lambda: self.connected, timeout)

    def wait_closed(self, timeout: Optional[float] = None) -> bool:
        """Block until the connection has ended and its events were handled;
        False on timeout."""
        return self._wait_stopped(timeout)

    # -- more ways to send -----------------------------------------------------------
    def send_file(self, path: PathLike, offset: int = 0, length: Optional[int] = None, *,
                  progress: Optional[ProgressHandler] = None) -> FileTransfer:
        """Queue ``length`` bytes (None: to the end) of a file from ``offset``
        as one message; see :meth:`tcpgo.TcpServer.send_file`. Returns a
        :class:`tcpgo.FileTransfer`."""
        fn = need("tcp_client_send_file")
        h = self._handle()

        def send(bpath: bytes, off: int, n: int, cb: Any, key: int) -> int:
            return fn(h, bpath, off, n, cb, key)

        def fail(rc: int, p: str) -> BaseException:
            return self._refusal(rc, f"cannot send {p}")

        return start_file(send, path, offset, length, progress, self._progress_call, fail)

    def sendv(self, buffers: Sequence[Data]) -> None:
        """Queue several buffers as ONE message, framed once; raises like :meth:`send`."""
        fn = need("tcp_client_sendv")
        arr, n, _keep = iovec_array(buffers)
        rc = fn(self._handle(), arr, n)
        if rc != 0:
            raise self._refusal(rc, "cannot send")

    def send_line(self, line: Data) -> None:
        """Queue one line; see :meth:`tcpgo.TcpServer.send_line`."""
        fn = need("tcp_client_send_line")
        b = line_bytes(line)
        rc = fn(self._handle(), b)
        if rc != 0:
            raise self._refusal(rc, "cannot send a line")

    def set_record_length(self, length: int) -> None:
        """Change the record length of a client with :class:`tcpgo.Records`
        framing; see :meth:`tcpgo.TcpServer.set_record_length`."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"record length must be a non-negative int, got {length!r}")
        rc = need("tcp_client_set_record_length")(self._handle(), length)
        if rc == ErrorCode.NOT_RUNNING:
            raise NotRunningError(f"{self._what()} is not connected")
        if rc != 0:
            raise ValueError(f"record length {length}: "
                             + (_core.thread_error_text() or _core.strerror(rc)))

    # -- TLS ---------------------------------------------------------------------------
    def on_cert(self, handler: Optional[F]) -> Optional[F]:
        """Register ``handler(info) -> bool`` (None removes it), which decides
        about the server's certificate after the built-in check of ``verify``:
        ``info`` is a :class:`tcpgo.CertInfo` whose ``result`` is the built-in
        verdict; True accepts the certificate -- also one the check rejected,
        e.g. a self-signed server you pinned by its ``pem`` --, False refuses
        it (connect raises :class:`tcpgo.HandshakeError`). Runs on a library
        thread during the handshake; an exception in it is logged and refuses
        the certificate. Usable as a decorator."""
        install_cert_handler(self, handler, "tcp_client_set_on_cert")
        return handler

    def tls_info(self) -> Optional[TlsInfo]:
        """The negotiated TLS parameters of the connection (:class:`tcpgo.TlsInfo`:
        version, cipher, ALPN, resumed, upgraded, the server's certificate...);
        None for a plain connection. Readable after the connection ended too,
        until the next connect. Raises :class:`tcpgo.NotRunningError` before
        the first connection."""
        L = _lib.lib()
        rc, info = read_tls_info(need("tcp_client_tls_info"), L.tcp_client_tls_str,
                                 (self._handle(),))
        if rc != 0:
            raise NotRunningError(f"{self._what()}.tls_info: {_core.strerror(rc)}")
        return info

    def starttls(self, ca: Optional[CertSource] = None, cert: Optional[CertSource] = None,
                 key: Optional[CertSource] = None) -> None:
        """Upgrade the plain connection to TLS (STARTTLS), verifying the server
        as :class:`TlsClient` does (``verify``, ``server_name``, the host
        connected to): ``ca`` the CA(s) to trust (None: the system's), ``cert``
        and ``key`` the client's own for mutual TLS -- paths or PEM text.
        Usually after the server's go-ahead (e.g. ``"220 Ready"``); the TLS
        options given at creation apply.

        It waits for the handshake (up to ``connect_timeout``; from a handler
        too, which holds up this client's events meanwhile) and raises
        :class:`tcpgo.HandshakeError` / :class:`tcpgo.CertificateError` when
        it fails (the connection then closes), :class:`ValueError` when the
        connection already uses TLS."""
        fn = need("tcp_client_starttls")
        if (cert is None) != (key is None):
            raise ValueError("give both cert and key for mutual TLS, or neither")
        a, c, k, pem = triple_args(ca, cert, key)
        rc = fn(self._handle(), a, c, k, pem)
        if rc == 0:
            return
        if rc == ErrorCode.NOT_RUNNING:
            raise NotRunningError(f"{self._what()} is not connected")
        if rc == ErrorCode.INVALID_ARG:
            raise ValueError(f"{self._what()}.starttls: "
                             + (_core.thread_error_text() or "the connection already uses TLS"))
        if rc == ErrorCode.TIMEOUT:
            raise TimeoutError(f"{self._what()}.starttls: the handshake did not finish in time")
        raise start_error(rc, _core.thread_error_text() or self._last_error(),
                          what=f"{self._what()}.starttls", port=self._port, host=self._host,
                          ca=shown(ca), cert=shown(cert), key=shown(key))

    def _before_exit_stop(self, h: ctypes.c_void_p) -> None:
        if self._cert_call is not None:
            _lib.lib().tcp_client_set_on_cert(h, _lib.CERT_FN(0), None)

    def _refusal(self, rc: int, what: str) -> BaseException:
        if rc == ErrorCode.NOT_RUNNING and self._connected_once and not self._reconnect:
            return ConnectionClosedError(f"{what}: connection closed")
        return refusal(rc, what, _core.thread_error_text() or self._last_error())

    # -- data --------------------------------------------------------------------
    def send(self, data: Data) -> None:
        """Queue ``data`` (bytes, or str as UTF-8) for the server; never blocks.

        Raises :class:`ValueError` when the message holds the delimiter or is
        longer than ``max_len``, :class:`tcpgo.ConnectionClosedError` when the
        connection has ended, :class:`tcpgo.SendError` when never connected or
        the send queue is full.
        """
        if type(data) is not bytes:
            data = as_bytes(data)
        if _lib._forked:
            _lib.check_fork()
        send_ex = self._send_ex_fn
        if send_ex is None:
            if not self._send_fn(self._h, data, len(data)):
                self._send_failed(data)
            return
        gen = self._ready_gen
        rc = send_ex(self._h, data, len(data))
        if rc:
            self._send_failed(data, rc, gen)

    def send_many(self, messages: Iterable[Data]) -> None:
        """Queue several messages for the server, in order, as as many
        :meth:`send` calls do, with one call into the library
        (``tcp_client_send_msgs``; one call per message with a library
        older than it). Every message is checked (:class:`ValueError` for
        the delimiter, ``max_len``) before the first is queued. Raises like
        :meth:`send` when one is refused: the ones before it are queued, the
        ones after it are not."""
        msgs = [m if type(m) is bytes else as_bytes(m) for m in messages]
        if not msgs:
            return
        if self._delimiter is not None or self._send_check is not None:
            for m in msgs:
                self._check_content(m)
        fn = self._send_msgs_fn
        if fn is None:
            send = self.send
            for m in msgs:
                send(m)
            return
        if _lib._forked:
            _lib.check_fork()
        blob = b"".join(msgs)  # one buffer: one address, offsets into it
        lens = list(map(len, msgs))
        base = ctypes.cast(ctypes.c_char_p(blob), ctypes.c_void_p).value or 0
        k = len(msgs)
        arr = array.array("Q", bytes(24 * k))  # tcp_msg {data, len, flags}: 3 x 8 bytes
        arr[0::3] = array.array("Q", map(base.__add__, itertools.accumulate(lens[:-1], initial=0)))
        arr[1::3] = array.array("Q", lens)
        gen = self._ready_gen
        n = fn(self._h, arr.buffer_info()[0], k)
        if n != k:
            rc = n if n < 0 else (_core.thread_error_code() or None)
            self._send_failed(msgs[max(n, 0)], rc, gen)

    def try_send(self, data: Data) -> bool:
        """Queue ``data`` unless the connection applies back-pressure: True when
        queued, False when the send queue is full (``on_ready`` /
        :meth:`wait_writable` tell when to retry). Raises like :meth:`send`
        for anything else."""
        if type(data) is not bytes:
            data = as_bytes(data)
        send_ex = self._send_ex_fn or need("tcp_client_send_ex")
        if _lib._forked:
            _lib.check_fork()
        gen = self._ready_gen
        rc = send_ex(self._h, data, len(data))
        if rc == 0:
            return True
        if rc in BACKPRESSURE_CODES:
            self._refused(gen)
            return False
        self._send_failed(data, rc, gen)
        return False  # not reached

    def _send_failed(self, data: bytes, rc: Optional[int] = None, gen: int = 0) -> None:
        if rc is not None and rc in BACKPRESSURE_CODES:
            self._refused(gen)
        reason = self._send_failure_reason(data)
        if self._reconnect and rc == ErrorCode.NOT_RUNNING and self._connected_once:
            raise send_error(rc, "cannot send: not connected (reconnecting)", reason)
        if self._connected_once and not self.connected:
            # The connection ended (the server closed it, or rejected our TLS
            # certificate): wait briefly for the dispatcher to learn why.
            if threading.current_thread() is not self._thread:
                self._done.wait(1.0)
            why = self._closed_reason
            raise ConnectionClosedError("cannot send: connection closed"
                                        + (f": {why.message}" if why else ""))
        if rc is None:
            raise SendError("cannot send" + (f": {reason}" if reason else ""), reason)
        reason = reason or _core.strerror(rc)
        raise send_error(rc, f"cannot send: {reason}", reason)

    def recv(self, timeout: Optional[float] = None) -> bytes:
        """The next received message (fragmented mode) or chunk (continuous mode).

        Blocks up to ``timeout`` seconds (None = until something arrives) and
        raises :class:`TimeoutError` when nothing did. After the connection
        ended and every message was taken, raises
        :class:`tcpgo.ConnectionClosedError`. Only messages not taken by an
        ``on_message`` handler arrive here.
        """
        if not self._connected_once:
            raise NotRunningError(f"{self._what()} was never connected")
        q = self._queue
        try:
            if self._on_message is None and self._on_messages is None:
                # this thread polls itself while no one else does (_core._PollToken)
                item = self._recv_direct(q, timeout)
            elif timeout is None:
                while True:  # slices keep Ctrl-C responsive
                    try:
                        item = q.get(timeout=0.25)
                        break
                    except queue.Empty:
                        continue
            else:
                item = q.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise TimeoutError(f"no message within {timeout:g} s") from None
        if item is _CLOSED:
            q.put(_CLOSED)  # later calls see the end too
            why = self._closed_reason
            raise ConnectionClosedError("connection closed" + (f": {why.message}" if why else ""))
        return item

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over received messages until the connection ends."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedError:
                return

    def request(self, data: Data, timeout: Optional[float] = None) -> bytes:
        """Send one message and return the next one received."""
        self.send(data)
        return self.recv(timeout)

    # -- events --------------------------------------------------------------------
    def _deliver(self, data: bytes, n: int) -> None:
        off = 0
        unpack = _unpack_header
        hm = self._on_messages
        group: List[bytes] = []
        for _ in range(n):
            kind, _cid, code, ln = unpack(data, off)
            off += HEADER_SIZE
            if kind == EV_MESSAGE:
                m = data[off:off + ln] if not code else MessagePart(data[off:off + ln])
                off += ln
                if hm is not None:
                    group.append(m)
                    continue
                h = self._on_message
                if h is not None:
                    try:
                        h(m)
                    except BaseException as e:
                        self._handler_failed("on_message", e)
                    hm = self._on_messages  # the handler may have switched to batches
                else:
                    self._queue.put(m)
                continue
            if group:  # the messages before this event first
                self._run_messages(hm, group)
                group = []
            if kind == EV_CLOSED:
                self._event_closed(code)
                if not self._reconnect:
                    self._queue.put(_CLOSED)
                self._run_closed()
            elif kind == EV_READY:
                self._event_ready()
                self._call_handler("on_ready", self._on_ready)
            elif kind == EV_CONNECT:
                self._run_connect(_cid, code)
            elif kind == EV_ERROR:
                text = data[off:off + ln].decode("utf-8", "replace")
                self._closed_reason = PeerError(code, text, 0)
                self._peer_error(code, text, 0)
            off += ln
            hm = self._on_messages
        if group:
            self._run_messages(hm, group)

    def _run_messages(self, hm: Any, messages: List[bytes]) -> None:
        try:
            hm(messages)
        except BaseException as e:
            self._handler_failed("on_messages", e)

    def _event_closed(self, code: int) -> None:
        """Bookkeeping of a closed event (before the handler runs)."""
        self._close_reason = close_reason(code)
        self._paused = False
        self._wake()
        self._notify_ready()

    def _event_ready(self) -> None:
        self._wake()
        self._notify_ready()

    def _run_closed(self) -> None:
        h = self._on_closed
        if h is None:
            return
        try:
            if self._closed_arity.wants_extra(h):
                h(self._close_reason)
            else:
                h()
        except BaseException as e:
            self._handler_failed("on_closed", e)

    def _run_connect(self, attempt: int, code: int) -> None:
        if code == 0:
            self._closed_reason = None
        h = self._on_connect
        if h is not None:
            try:
                h(attempt, connect_result(code))
            except BaseException as e:
                self._handler_failed("on_connect", e)


class TlsClient(TcpClient):
    """A TLS client.

    ``ca`` is the PEM file of the CA(s) the server's certificate must chain
    to (None = the system's CAs); ``cert``/``key`` the client's own
    certificate for mutual TLS. ``verify="full"`` (the default) also checks
    that the certificate matches the host name or IP; ``verify="ca"`` checks
    only the CA signature (like TCP_ServerClient v2) and sends no SNI.

    Example::

        certs = tcpgo.generate_certs("/tmp/pki")
        with tcpgo.TlsClient(ca=certs.ca, cert=certs.client_cert, key=certs.client_key,
                             delimiter="\\n") as client:
            client.connect("127.0.0.1", port)
            print(client.server_subject())      # {'CN': ..., ...}
            print(client.request("hello", timeout=5))
    """

    _kind = "tls-client"

    def __init__(self, ca: Optional[CertSource] = None, cert: Optional[CertSource] = None,
                 key: Optional[CertSource] = None,
                 delimiter: Union[bytes, str, int, None] = None, max_len: int = 0, *,
                 framing: Optional[Framing] = None,
                 verify: str = "full",
                 server_name: Optional[str] = None,
                 system_cas: Optional[bool] = None,
                 on_cert: Optional[CertHandler] = None,
                 min_tls_version: TlsVersion = None,
                 max_tls_version: TlsVersion = None,
                 cipher_suites: Names = None,
                 alpn: Names = None,
                 key_log_file: Optional[PathLike] = None,
                 resumption: Optional[bool] = None,
                 on_message: Optional[Callable[[bytes], Any]] = None,
                 on_messages: Optional[Callable[[List[bytes]], Any]] = None,
                 on_closed: Optional[Callable[[], Any]] = None,
                 on_error: Optional[Callable[[BaseException], Any]] = None,
                 on_ready: Optional[Callable[[], Any]] = None,
                 on_connect: Optional[Callable[[int, int], Any]] = None,
                 connect_timeout: Optional[float] = None,
                 nodelay: bool = True,
                 send_queue_limit: Optional[int] = None,
                 event_queue_limit: Optional[int] = None,
                 linger: Optional[float] = None,
                 reconnect: bool = False,
                 reconnect_min: Optional[float] = None,
                 reconnect_max: Optional[float] = None,
                 local_address: Optional[str] = None,
                 idle_timeout: Optional[float] = None,
                 message_timeout: Optional[float] = None,
                 write_timeout: Optional[float] = None,
                 keepalive: Optional[bool] = None,
                 keepalive_idle: Optional[float] = None,
                 keepalive_interval: Optional[float] = None,
                 keepalive_count: Optional[int] = None,
                 close_on_eof: Optional[bool] = None,
                 send_low_water: Optional[int] = None,
                 callback_threads: Optional[int] = None) -> None:
        for n, v in (("ca", ca), ("cert", cert), ("key", key)):
            check_source(n, v)
        if (cert is None) != (key is None):
            raise ValueError("give both cert and key for mutual TLS, or neither")
        super().__init__(
            delimiter, max_len, framing=framing, on_message=on_message, on_messages=on_messages,
            on_closed=on_closed,
            on_error=on_error, on_ready=on_ready, on_connect=on_connect,
            connect_timeout=connect_timeout, nodelay=nodelay, send_queue_limit=send_queue_limit,
            event_queue_limit=event_queue_limit, linger=linger, reconnect=reconnect,
            reconnect_min=reconnect_min, reconnect_max=reconnect_max,
            local_address=local_address, idle_timeout=idle_timeout,
            message_timeout=message_timeout, write_timeout=write_timeout, keepalive=keepalive,
            keepalive_idle=keepalive_idle, keepalive_interval=keepalive_interval,
            keepalive_count=keepalive_count, close_on_eof=close_on_eof,
            send_low_water=send_low_water, callback_threads=callback_threads, verify=verify,
            server_name=server_name, system_cas=system_cas, on_cert=on_cert,
            min_tls_version=min_tls_version, max_tls_version=max_tls_version,
            cipher_suites=cipher_suites, alpn=alpn, key_log_file=key_log_file,
            resumption=resumption)
        self._sources = (ca, cert, key)
        self._ca, self._cert, self._key = shown(ca), shown(cert), shown(key)

    def _start_call(self, L: Any, h: ctypes.c_void_p, host: bytes, port: int) -> int:
        ca, cert, key = self._sources
        if not any(is_pem(v) for v in self._sources):
            enc = os.fsencode
            return L.tls_client_start(h, host, port,
                                      None if ca is None else enc(os.fspath(ca)),
                                      None if cert is None else enc(os.fspath(cert)),
                                      None if key is None else enc(os.fspath(key)))
        what = f"{self._what()}.connect"
        return need("tls_client_start_pem")(h, host, port, as_pem("ca", ca, what),
                                            as_pem("cert", cert, what), as_pem("key", key, what))

    def server_subject_part(self, field: Union[str, int]) -> Optional[str]:
        """One subject field of the server's certificate, by name or NID; None if absent."""
        nid = field_nid(field)
        rc, text = _lib.read_string(_lib.lib().tcp_client_server_subj_part, self._handle(), nid)
        if rc == ErrorCode.NO_FIELD:
            return None
        if rc == ErrorCode.INVALID_ARG:
            raise ValueError(f"subject field NID {nid} is not known to tcpgo")
        if rc < 0:
            raise NotRunningError(f"{self._what()} is not connected")
        return text

    def server_subject(self) -> Dict[str, str]:
        """Every known subject field of the server's certificate, keyed by short name."""
        return _core.subject_dict(self.server_subject_part)


def connect_result(code: int) -> "StartCode | int":
    """The StartCode of a reconnection attempt's result (an int if unknown)."""
    try:
        return StartCode(code)
    except ValueError:
        return code


def _maybe_timeout(err: StartError, elapsed: float, timeout: float) -> StartError:
    from .errors import ConnectError, ConnectTimeoutError, StartCode

    if (type(err) is ConnectError and err.code == StartCode.CONNECT and timeout > 0
            and elapsed >= timeout * 0.95):
        return ConnectTimeoutError(err.code, err.message.replace("cannot connect to",
                                                                 "timed out connecting to")
                                   + f" after {timeout:g} s", err.reason)
    return err
