"""asyncio flavour of tcpgo: handlers on your event loop, awaitable clients.

Handlers may be plain functions or ``async def`` coroutines; they run on the
event loop that started the server or connected the client. For one
connection they run strictly in order (a coroutine handler is awaited before
the next event of that connection is handled), while different connections
proceed concurrently.

Server::

    import asyncio, tcpgo.aio

    async def main() -> None:
        async with tcpgo.aio.TcpServer(delimiter="\\n", host="127.0.0.1") as server:
            @server.on_message
            async def echo(client_id: int, data: bytes) -> None:
                await asyncio.sleep(0)          # any awaitable work
                server.send(client_id, data)

            port = await server.start(0)
            async with await tcpgo.aio.connect("127.0.0.1", port, delimiter="\\n") as client:
                await client.send("hello")
                print(await client.recv(timeout=5))     # b'hello'

    asyncio.run(main())

The library does the network I/O on its own threads; events reach the loop in
batches through ``loop.call_soon_threadsafe``. Received messages that are not
taken by a handler wait in an unbounded queue for :meth:`Client.recv`.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import threading
from typing import (Any, AsyncIterator, Awaitable, Callable, Deque, Dict, List, Optional, Set,
                    Tuple, Union)

from . import _core
from ._core import EV_CLOSED, EV_ERROR, EV_ESTABLISHED, EV_MESSAGE, Data, F, parse_events
from . import client as _client
from . import server as _server
from .errors import ConnectionClosedError, NotRunningError, PeerError, StartError

__all__ = ["TcpServer", "TlsServer", "Client", "connect"]

logger = logging.getLogger("tcpgo")

_MAX_BATCHES_IN_FLIGHT = 8
_CLOSED = object()


class _Bridge:
    """Moves event batches from a dispatcher thread to the loop (bounded)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_loop: Callable[[list], None],
                 on_done: Callable[[], None]) -> None:
        self.loop = loop
        self.on_loop = on_loop
        self.on_done = on_done
        self.sem = threading.BoundedSemaphore(_MAX_BATCHES_IN_FLIGHT)
        self.abandon = False

    def from_thread(self, data: bytes, n: int) -> None:
        events = parse_events(data, n)
        while not self.sem.acquire(timeout=0.1):
            if self.abandon or self.loop.is_closed():
                return  # nobody will run them any more
        try:
            self.loop.call_soon_threadsafe(self._run, events)
        except RuntimeError:  # loop closed
            self.sem.release()

    def _run(self, events: list) -> None:
        self.sem.release()
        self.on_loop(events)

    def done_from_thread(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.on_done)
        except RuntimeError:
            pass


class _Seq:
    """Runs one connection's handlers in order, awaiting coroutine results."""

    __slots__ = ("owner", "pending", "busy")

    def __init__(self, owner: "_AioBase") -> None:
        self.owner = owner
        self.pending: Deque[Tuple[Callable[..., Any], tuple, str]] = collections.deque()
        self.busy = False

    def push(self, fn: Callable[..., Any], args: tuple, name: str) -> None:
        if self.busy:
            self.pending.append((fn, args, name))
            return
        r = self.owner._call(fn, args, name)
        if r is not None:
            self.busy = True
            self.owner._spawn(self._drain(r, args, name))

    async def _drain(self, aw: Awaitable[Any], args: tuple, name: str) -> None:
        try:
            await self.owner._await(aw, args, name)
            while self.pending:
                fn, args, name = self.pending.popleft()
                r = self.owner._call(fn, args, name)
                if r is not None:
                    await self.owner._await(r, args, name)
        finally:
            self.busy = False


class _AioBase:
    _on_error: Optional[Callable[..., Any]] = None

    def __init__(self) -> None:
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self._bridge: Optional[_Bridge] = None
        self._drained: Optional[asyncio.Event] = None

    def _spawn(self, coro: Any) -> None:
        assert self._loop is not None
        t = self._loop.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _call(self, fn: Callable[..., Any], args: tuple, name: str) -> Optional[Awaitable[Any]]:
        try:
            r = fn(*args)
        except Exception as e:
            self._failed(name, e, args)
            return None
        if inspect.isawaitable(r):
            return r
        return None

    async def _await(self, aw: Awaitable[Any], args: tuple, name: str) -> None:
        try:
            await aw
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._failed(name, e, args)

    def _error_args(self, args: tuple) -> tuple:
        return ()

    def _failed(self, name: str, exc: BaseException, args: tuple) -> None:
        logger.error("tcpgo: exception in %s handler of %r", name, self, exc_info=exc)
        if name != "on_error":
            self._report_error(self._error_args(args), exc)

    def _report_error(self, args: tuple, err: BaseException) -> None:
        """Run ``on_error(*args, err)`` now, outside any connection's sequence;
        a coroutine result is awaited in a task."""
        h = self._on_error
        if h is None:
            return
        r = self._call(h, args + (err,), "on_error")
        if r is not None:
            self._spawn(self._await(r, args, "on_error"))

    def _peer_error(self, code: int, payload: bytes, client_id: int) -> PeerError:
        """The PeerError of an EV_ERROR event, logged."""
        err = PeerError(code, payload.decode("utf-8", "replace"), client_id)
        logger.info("tcpgo: %r: %s", self, err)
        return err

    def _attach(self, inner: _core.Endpoint) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._drained = asyncio.Event()
        bridge = _Bridge(loop, self._on_events, self._drained.set)
        self._bridge = bridge
        orig_done = inner._dispatcher_done

        def done() -> None:
            orig_done()
            bridge.done_from_thread()

        inner._deliver = bridge.from_thread  # type: ignore[method-assign]
        inner._dispatcher_done = done  # type: ignore[method-assign]

    def _on_events(self, events: list) -> None:  # overridden
        raise NotImplementedError

    async def _settle(self) -> None:
        """Wait until the dispatcher finished and every handler task is done."""
        if self._drained is not None:
            await self._drained.wait()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def sync(self) -> _core.Endpoint:  # overridden
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop (in a worker thread); returns when every handler (``on_closed``
        included) has finished."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.sync.stop)
        await self._settle()

    async def close(self) -> None:
        """Stop (see :meth:`stop`) and release the synchronous object."""
        await self.stop()
        self.sync.close()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class TcpServer(_AioBase):
    """An asyncio TCP server; see :class:`tcpgo.TcpServer` for the options.

    Handlers (plain or ``async def``): ``on_established(client_id)``,
    ``on_message(client_id, data)``, ``on_closed(client_id)``,
    ``on_error(client_id, error)``. :meth:`send` never blocks and may be
    called from any handler.
    """

    _sync_class = _server.TcpServer

    def __init__(self, delimiter: Union[bytes, str, int, None] = None, max_len: int = 0, *,
                 on_message: Optional[Callable[..., Any]] = None,
                 on_established: Optional[Callable[..., Any]] = None,
                 on_closed: Optional[Callable[..., Any]] = None,
                 on_error: Optional[Callable[..., Any]] = None,
                 **options: Any) -> None:
        super().__init__()
        self._srv = self._make(delimiter, max_len, options)
        self._on_message_h = on_message
        self._on_established_h = on_established
        self._on_closed_h = on_closed
        self._on_error = on_error
        self._conns: Dict[int, _Seq] = {}
        # Sends the library refused after a batch (see _on_events) go to our on_error.
        self._srv._on_error = self._batched_send_failed

    def _batched_send_failed(self, client_id: int, err: BaseException) -> None:
        self._report_error((client_id,), err)

    def _make(self, delimiter: Any, max_len: int, options: Dict[str, Any]) -> _server.TcpServer:
        return _server.TcpServer(delimiter, max_len, **options)

    def on_message(self, handler: F) -> F:
        """Register ``handler(client_id, data)`` (may be ``async``); usable as a decorator."""
        self._on_message_h = handler
        return handler

    def on_established(self, handler: F) -> F:
        """Register ``handler(client_id)`` (may be ``async``); usable as a decorator."""
        self._on_established_h = handler
        return handler

    def on_closed(self, handler: F) -> F:
        """Register ``handler(client_id)`` (may be ``async``); usable as a decorator."""
        self._on_closed_h = handler
        return handler

    def on_error(self, handler: F) -> F:
        """Register ``handler(client_id, error)`` (may be ``async``); usable as a decorator."""
        self._on_error = handler
        return handler

    def _error_args(self, args: tuple) -> tuple:
        return (args[0] if args else 0,)

    async def start(self, port: int = 0, host: Optional[str] = None) -> int:
        """Start listening; returns the bound port. Handlers run on the current loop."""
        if self._srv.running:
            raise StartError(-1, f"{type(self).__name__} is already running")
        self._attach(self._srv)
        try:
            return self._srv.start(port, host)
        except BaseException:
            self._drained = None
            raise

    async def serve_forever(self) -> None:
        """Serve until :meth:`stop` (or until cancelled, which stops the server)."""
        if not self._srv.running and self._drained is None:
            raise NotRunningError("call start() first")
        try:
            assert self._drained is not None
            await self._drained.wait()
        except asyncio.CancelledError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the server; returns when every handler (``on_closed`` included) has finished."""
        await super().stop()

    async def close(self) -> None:
        """Stop the server and release it."""
        await super().close()

    async def __aenter__(self) -> "TcpServer":
        return self

    def __repr__(self) -> str:
        return f"<tcpgo.aio.{type(self).__name__} wrapping {self._srv!r}>"

    # delegated synchronous API
    def send(self, client_id: int, data: Data) -> None:
        """Queue a message for a client (never blocks); see :meth:`tcpgo.TcpServer.send`."""
        self._srv.send(client_id, data)

    def broadcast(self, data: Data) -> int:
        return self._srv.broadcast(data)

    def close_client(self, client_id: int) -> None:
        self._srv.close_client(client_id)

    def client_ip(self, client_id: int) -> str:
        return self._srv.client_ip(client_id)

    def client_port(self, client_id: int) -> int:
        return self._srv.client_port(client_id)

    @property
    def clients(self) -> List[int]:
        return self._srv.clients

    @property
    def port(self) -> int:
        return self._srv.port

    @property
    def running(self) -> bool:
        return self._srv.running

    @property
    def sync(self) -> _server.TcpServer:
        """The underlying synchronous server object."""
        return self._srv

    def _on_events(self, events: list) -> None:
        # Sends made by plain handlers while this batch is handled are queued
        # with one library call at its end (as the synchronous server does);
        # coroutine handlers run later, in tasks, and send at once.
        self._srv._with_batched_sends(self._handle_events, events)

    def _handle_events(self, events: list) -> None:
        conns = self._conns
        for kind, cid, code, payload in events:
            if kind == EV_ERROR and cid == 0:
                self._report_error((0,), self._peer_error(code, payload, 0))
                continue
            seq = conns.get(cid)
            if seq is None:
                seq = conns[cid] = _Seq(self)
            if kind == EV_MESSAGE:
                h = self._on_message_h
                if h is not None:
                    seq.push(h, (cid, payload), "on_message")
            elif kind == EV_ESTABLISHED:
                h = self._on_established_h
                if h is not None:
                    seq.push(h, (cid,), "on_established")
            elif kind == EV_CLOSED:
                h = self._on_closed_h
                if h is not None:
                    seq.push(h, (cid,), "on_closed")
                del conns[cid]  # the sequencer lives on in its task if busy
            elif kind == EV_ERROR:
                err = self._peer_error(code, payload, cid)
                h = self._on_error
                if h is not None:
                    seq.push(h, (cid, err), "on_error")


class TlsServer(TcpServer):
    """An asyncio TLS server; see :class:`tcpgo.TlsServer` for the arguments."""

    def __init__(self, cert: _server.PathLike, key: _server.PathLike,
                 ca: Optional[_server.PathLike] = None,
                 delimiter: Union[bytes, str, int, None] = None, max_len: int = 0,
                 **kwargs: Any) -> None:
        self._tls_args = (cert, key, ca)
        super().__init__(delimiter, max_len, **kwargs)

    def _make(self, delimiter: Any, max_len: int, options: Dict[str, Any]) -> _server.TcpServer:
        cert, key, ca = self._tls_args
        return _server.TlsServer(cert, key, ca, delimiter, max_len, **options)

    def peer_subject(self, client_id: int) -> Dict[str, str]:
        return self._srv.peer_subject(client_id)  # type: ignore[attr-defined]

    def peer_subject_part(self, client_id: int, field: Union[str, int]) -> Optional[str]:
        return self._srv.peer_subject_part(client_id, field)  # type: ignore[attr-defined]


class Client(_AioBase):
    """An asyncio client (TCP, or TLS with ``tls=True``).

    Create it with :func:`connect`, or construct and ``await client.connect(host, port)``.
    Messages go to ``on_message(data)`` (plain or ``async``) if given, else to
    :meth:`recv` / ``async for``.
    """

    def __init__(self, delimiter: Union[bytes, str, int, None] = None, max_len: int = 0, *,
                 tls: bool = False, ca: Optional[_server.PathLike] = None,
                 cert: Optional[_server.PathLike] = None,
                 key: Optional[_server.PathLike] = None, verify: str = "full",
                 on_message: Optional[Callable[..., Any]] = None,
                 on_closed: Optional[Callable[..., Any]] = None,
                 on_error: Optional[Callable[..., Any]] = None,
                 **options: Any) -> None:
        super().__init__()
        if tls:
            self._cli: _client.TcpClient = _client.TlsClient(ca, cert, key, delimiter, max_len,
                                                             verify=verify, **options)
        else:
            if ca is not None or cert is not None or key is not None:
                raise ValueError("ca/cert/key given without tls=True")
            self._cli = _client.TcpClient(delimiter, max_len, **options)
        self._on_message_h = on_message
        self._on_closed_h = on_closed
        self._on_error = on_error
        self._queue: "asyncio.Queue[Any]" = asyncio.Queue()
        self._seq: Optional[_Seq] = None
        self._closed_reason: Optional[PeerError] = None

    def on_message(self, handler: F) -> F:
        """Register ``handler(data)`` (may be ``async``) for messages from the server;
        without one, messages wait for :meth:`recv`. Usable as a decorator."""
        self._on_message_h = handler
        return handler

    def on_closed(self, handler: F) -> F:
        """Register ``handler()`` (may be ``async``), run once when the connection ends."""
        self._on_closed_h = handler
        return handler

    def on_error(self, handler: F) -> F:
        """Register ``handler(error)`` (may be ``async``) for errors the library reports."""
        self._on_error = handler
        return handler

    async def connect(self, host: str, port: int) -> "Client":
        """Connect (in a worker thread, so the loop keeps running); returns self."""
        self._attach(self._cli)
        self._queue = asyncio.Queue()
        self._seq = _Seq(self)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._cli.connect, host, port)
        except BaseException:
            self._drained = None
            raise
        return self

    async def send(self, data: Data) -> None:
        """Queue a message for the server (the library sends it; this never blocks)."""
        self._cli.send(data)

    def send_nowait(self, data: Data) -> None:
        self._cli.send(data)

    async def recv(self, timeout: Optional[float] = None) -> bytes:
        """The next message; :class:`TimeoutError` after ``timeout`` seconds,
        :class:`tcpgo.ConnectionClosedError` once the connection ended and all
        messages were taken."""
        if self._seq is None:
            raise NotRunningError("call connect() first")
        if timeout is None:
            item = await self._queue.get()
        else:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)
            why = self._closed_reason
            raise ConnectionClosedError("connection closed" + (f": {why.message}" if why else ""))
        return item

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[bytes]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosedError:
                return

    async def request(self, data: Data, timeout: Optional[float] = None) -> bytes:
        """Send one message and return the next one received."""
        await self.send(data)
        return await self.recv(timeout)

    async def stop(self) -> None:
        """Close the connection; returns when ``on_closed`` (and every handler) finished."""
        await super().stop()

    async def __aenter__(self) -> "Client":
        return self

    @property
    def connected(self) -> bool:
        return self._cli.connected

    @property
    def local_port(self) -> int:
        return self._cli.local_port

    @property
    def sync(self) -> _client.TcpClient:
        """The underlying synchronous client object."""
        return self._cli

    def server_subject(self) -> Dict[str, str]:
        return self._cli.server_subject()  # type: ignore[attr-defined]

    def server_subject_part(self, field: Union[str, int]) -> Optional[str]:
        return self._cli.server_subject_part(field)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<tcpgo.aio.Client wrapping {self._cli!r}>"

    def _on_events(self, events: list) -> None:
        seq = self._seq
        assert seq is not None
        for kind, _cid, code, payload in events:
            if kind == EV_MESSAGE:
                h = self._on_message_h
                if h is not None:
                    seq.push(h, (payload,), "on_message")
                else:
                    self._queue.put_nowait(payload)
            elif kind == EV_CLOSED:
                self._queue.put_nowait(_CLOSED)
                h = self._on_closed_h
                if h is not None:
                    seq.push(h, (), "on_closed")
            elif kind == EV_ERROR:
                err = self._peer_error(code, payload, 0)
                self._closed_reason = err
                h = self._on_error
                if h is not None:
                    seq.push(h, (err,), "on_error")


async def connect(host: str, port: int, delimiter: Union[bytes, str, int, None] = None,
                  max_len: int = 0, **kwargs: Any) -> Client:
    """Create a :class:`Client` and connect it.

    Keyword arguments are those of :class:`Client` (``tls``, ``ca``, ``cert``,
    ``key``, ``verify``, handlers, ``connect_timeout``...)::

        client = await tcpgo.aio.connect("127.0.0.1", port, delimiter="\\n")
        await client.send(b"ping")
        reply = await client.recv(timeout=5)
        await client.close()
    """
    client = Client(delimiter, max_len, **kwargs)
    try:
        return await client.connect(host, port)
    except BaseException:
        client._cli.close()
        raise
