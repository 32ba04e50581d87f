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
batches: the loop watches the library's event descriptor
(``tcp_*_event_fd``, with ``loop.add_reader``) and polls the handle itself
when it is readable -- no thread in between (on Linux; where the library has
no event descriptor, a dispatcher thread wakes the loop). Received messages that are not
taken by a handler wait in an unbounded queue for :meth:`Client.recv`.

Back-pressure works as with asyncio streams: ``await conn.send(data)`` (a
server's :class:`Connection`) and ``await client.send(data)`` queue the data,
waiting while the connection's send queue is full; ``send_nowait()`` raises
:class:`tcpgo.SendError` (``.code`` ``QUEUE_FULL``) instead, and
``await conn.drain()`` waits until a refused send may be retried::

    @server.on_message
    async def stream(conn: tcpgo.aio.Connection, data: bytes) -> None:
        for chunk in produce(data):
            await conn.send(chunk)      # waits while the peer does not keep up
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import inspect
import logging
import os
import sys
import threading
import weakref
from typing import (Any, AsyncIterator, Awaitable, Callable, Deque, Dict, Iterable, List,
                    Optional, Sequence, Set, Tuple, Union)

from . import _core
from . import _lib
from ._core import (EV_CLOSED, EV_CONNECT, EV_ERROR, EV_ESTABLISHED, EV_MESSAGE, EV_READY,
                    ArityCache, CloseReason, ConnStats, Data, F, ServerStats, as_bytes,
                    parse_events)
from . import client as _client
from . import framing as _framing
from . import server as _server
from . import tls as _tls
from .framing import MessagePart
from .sending import FileTransfer, ProgressHandler
from .errors import ConnectionClosedError, NotRunningError, PeerError, StartError

__all__ = ["TcpServer", "TlsServer", "Client", "Connection", "connect"]

logger = logging.getLogger("tcpgo")

_MAX_BATCHES_IN_FLIGHT = 8
_CLOSED = object()


def _wakeup_fds() -> Tuple[int, int]:
    """(read end, write end) of the loop's wake-up: one eventfd, else a pipe."""
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return fd, fd
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


def _close_fds(fds: List[int]) -> None:
    for fd in set(fds):
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()


_DONE = object()


class _Bridge:
    """Moves event batches from a dispatcher thread to the loop (bounded).

    The dispatcher appends each batch to a deque and writes the loop's
    eventfd (``loop.add_reader``) only when the loop has not been woken yet;
    the loop then takes every batch queued so far in one go. So a burst
    costs one wake-up, and no handle per batch (``call_soon_threadsafe``
    would allocate one per batch and write its self-pipe every time).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, on_loop: Callable[[list], None],
                 on_done: Callable[[], None]) -> None:
        self.loop = loop
        self.on_loop = on_loop
        self.on_done = on_done
        self.sem = threading.BoundedSemaphore(_MAX_BATCHES_IN_FLIGHT)
        self.abandon = False
        self.batches: Deque[Any] = collections.deque()
        self.signalled = False
        rfd, wfd = _wakeup_fds()
        self.rfd, self.wfd = rfd, wfd
        self.fds = [rfd, wfd]
        self.wlock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_fds, self.fds)
        loop.add_reader(rfd, self._on_readable)

    # -- dispatcher thread --------------------------------------------------
    def from_thread(self, data: bytes, n: int) -> None:
        # As little as possible here: the loop, woken, waits for the GIL
        # this thread holds until it is back in the library's poll.
        if not self.sem.acquire(False):
            while not self.sem.acquire(timeout=0.1):
                if self.abandon or self.loop.is_closed():
                    return  # nobody will run them any more
        self._push((data, n))

    def done_from_thread(self) -> None:
        self._push(_DONE)

    def _push(self, item: Any) -> None:
        self.batches.append(item)
        if not self.signalled:
            self.signalled = True
            with self.wlock:  # not into a descriptor close() closed (its number may be reused)
                if self.fds:
                    try:
                        os.write(self.wfd, b"\x01\0\0\0\0\0\0\0")
                    except OSError:  # a full pipe: already signalled
                        pass

    # -- loop ---------------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            os.read(self.rfd, 4096)
        except OSError:
            pass
        # After the read (a wake-up written after it stays pending), before
        # taking the batches: a batch appended from now on signals again.
        self.signalled = False
        batches = self.batches
        while batches:
            item = batches.popleft()
            if item is _DONE:
                self.close()
                self._call(self.on_done, None)
                continue
            self.sem.release()
            self._call(self.on_loop, parse_events(*item))

    def _call(self, fn: Callable[..., Any], arg: Any) -> None:
        try:
            fn() if arg is None else fn(arg)
        except Exception as e:  # as call_soon would: report, go on with the next batch
            self.loop.call_exception_handler({"message": "tcpgo: exception delivering events",
                                              "exception": e})

    def close(self) -> None:
        """Stop watching the wake-up descriptor and close it (on the loop)."""
        if not self.fds:
            return
        try:
            if not self.loop.is_closed():
                self.loop.remove_reader(self.rfd)
        except Exception:  # pragma: no cover - loop shutting down
            pass
        with self.wlock:
            self._finalizer()


#: Batches one wake-up of the loop handles before it lets other callbacks run
#: (it goes on with call_soon: the descriptor is re-armed only by a poll
#: that finds nothing).
_BATCHES_PER_TURN = 16


class _LoopDone(threading.Event):
    """The endpoint's ``_done`` while the loop polls: on the loop thread,
    wait() cannot block (the loop itself would set it): it answers at once."""

    def __init__(self, loop_thread: int, is_set: bool) -> None:
        super().__init__()
        self.loop_thread = loop_thread
        if is_set:
            self.set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        if threading.get_ident() == self.loop_thread:
            return self.is_set()
        return super().wait(timeout)


class _LoopPoller:
    """Polls an endpoint's handle on the event loop (tcpgo.h,
    ``tcp_*_event_fd``): the loop watches the library's eventfd with
    ``add_reader``; when it is readable, reads it and polls with timeout 0,
    handing each batch to ``on_loop``, until a poll returns 0 events (which
    re-arms the descriptor). Polling again right after a batch is what tells
    the engine it was handled (and sends the replies it held). At the end
    (TCP_ERR_NOT_RUNNING) it stops watching and calls ``on_done``. The
    descriptor changes at each start: watched again from ``started``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, inner: _core.Endpoint,
                 on_loop: Callable[[list], None], on_done: Callable[[], None]) -> None:
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.inner = inner
        self.on_loop = on_loop
        self.on_done = on_done
        L = _lib.lib()
        self.poll = getattr(L, inner._poll_name)
        self.event_fd = getattr(L, inner._poll_name[:-len("poll")] + "event_fd")
        self.size = _core.INITIAL_POLL_BUFFER
        self.buf = ctypes.create_string_buffer(self.size)
        self.used = ctypes.c_size_t(0)
        self.pused = ctypes.byref(self.used)
        self.h: Any = None  # the handle while active
        self.fd = -1  # the descriptor watched
        self.active = False  # started, its end not yet seen
        self.scheduled: Any = None  # a call_soon/call_later going on polling
        self.free_after = False  # close() from a handler: free the handle at the end

    @staticmethod
    def usable(inner: _core.Endpoint) -> bool:
        return (sys.platform.startswith("linux")
                and _lib.has(inner._poll_name[:-len("poll")] + "event_fd"))

    # -- start (endpoint's _start_dispatcher, maybe on a worker thread) ------
    def started(self, h: Any) -> None:
        if threading.get_ident() == self.loop_thread:
            self._watch(h)
        else:
            self.loop.call_soon_threadsafe(self._watch, h)

    def _watch(self, h: Any) -> None:
        self._unwatch()
        self.h = h
        self.active = True
        self.free_after = False
        fd = self.event_fd(h)
        if fd < 0:
            # No descriptor (tcp_*_event_fd failed): poll on a short timer instead.
            logger.warning("%s failed (%d); %r polls every 5 ms", self.inner._poll_name[:-4]
                           + "event_fd", fd, self.inner)
            self.fd = -1
            self._later(0.005)
            return
        self.fd = fd
        self.loop.add_reader(fd, self._on_readable)

    def _unwatch(self) -> None:
        if self.scheduled is not None:
            self.scheduled.cancel()
            self.scheduled = None
        fd, self.fd = self.fd, -1
        if fd >= 0:
            try:
                if not self.loop.is_closed():
                    self.loop.remove_reader(fd)
            except Exception:  # pragma: no cover - loop shutting down
                pass

    def _later(self, delay: float) -> None:
        if self.scheduled is None:
            self.scheduled = (self.loop.call_soon(self._turn) if delay <= 0
                              else self.loop.call_later(delay, self._turn))

    # -- loop ---------------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            os.read(self.fd, 8)
        except OSError:  # not readable after all (EAGAIN)
            pass
        if self.scheduled is not None:  # this poll does what it was due to do
            self.scheduled.cancel()
            self.scheduled = None
        if self._run():
            self._later(0)  # more to take: after the other callbacks

    def _turn(self) -> None:
        self.scheduled = None
        if self._run():
            self._later(0)

    def _run(self) -> bool:
        """Poll and deliver up to _BATCHES_PER_TURN batches; True when more
        may be waiting (the descriptor is not re-armed: poll again soon)."""
        h = self.h
        if h is None or not self.active:
            return False
        inner = self.inner
        poll, pused = self.poll, self.pused
        for _ in range(_BATCHES_PER_TURN):
            n = poll(h, self.buf, self.size, pused, 0)
            if n > 0:
                if _core.is_exiting():
                    continue
                try:
                    self.on_loop(parse_events(ctypes.string_at(self.buf, self.used.value), n))
                except Exception as e:  # as call_soon would: report, go on
                    self.loop.call_exception_handler(
                        {"message": "tcpgo: exception delivering events", "exception": e})
                if self.h is not h or not self.active:
                    return False  # restarted or finished from a handler
                continue
            if n == 0:
                if self.fd < 0:
                    self._later(0.005)
                return False  # the descriptor is armed again
            if n == _core.ErrorCode.BUFFER_TOO_SMALL:
                self.size = max(self.used.value, self.size * 2)
                self.buf = ctypes.create_string_buffer(self.size)
                continue
            if n == _core.ErrorCode.NOT_RUNNING:
                if inner._stopping or not inner._polls_while_down() or _core.is_exiting():
                    self._finish()
                    return False
                self._later(_core.POLL_TIMEOUT_MS / 1000)  # between connections
                return False
            if inner._h is not None:
                logger.error("%s returned %d (%s); polling of %r stops", inner._poll_name, n,
                             _core._strerror(n), inner)
            self._finish()
            return False
        return True

    def _finish(self) -> None:
        self._unwatch()
        self.active = False
        self.h = None
        inner = self.inner
        try:
            inner._dispatcher_done()
        finally:
            if self.free_after:
                self.free_after = False
                inner._finalizer()
            self.on_done()

    def defer_free(self, inner: _core.Endpoint) -> bool:
        """Endpoint.close(): True when the handle is to be freed at the end of
        the polling (close() from a handler, on the loop, while it goes on)."""
        if self.active and threading.get_ident() == self.loop_thread:
            self.free_after = True
            return True
        if not self.active:
            self._unwatch()
        return False

    def drain_now(self) -> None:
        """On the loop, before a new start replaces the handle's event queue:
        deliver what the last run left, up to its end if it stopped."""
        if self.scheduled is not None:
            self.scheduled.cancel()
            self.scheduled = None
        while self.active and self._run():
            pass
        if self.active and self.fd < 0:
            self._later(0.005)


def _expire(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_exception(asyncio.TimeoutError())


class _RecvQueue:
    """A client's received messages, for :meth:`Client.recv`: what
    ``asyncio.Queue`` + ``asyncio.wait_for`` do, without a task and a queue
    future per call (a request/response loop makes one call per message)."""

    __slots__ = ("items", "getters")

    def __init__(self) -> None:
        self.items: Deque[Any] = collections.deque()
        self.getters: Deque["asyncio.Future[None]"] = collections.deque()

    def put_nowait(self, item: Any) -> None:
        self.items.append(item)
        self._wake_next()

    def _wake_next(self) -> None:
        getters = self.getters
        while getters:
            g = getters.popleft()
            if not g.done():
                g.set_result(None)
                return

    async def get(self, timeout: Optional[float] = None) -> Any:
        """The next item; asyncio.TimeoutError after ``timeout`` seconds."""
        items = self.items
        if items:
            return items.popleft()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        while not items:
            g = loop.create_future()
            self.getters.append(g)
            timer = None if deadline is None else loop.call_at(deadline, _expire, g)
            try:
                await g
            except BaseException:
                g.cancel()
                try:
                    self.getters.remove(g)
                except ValueError:
                    pass
                if items and not g.cancelled():
                    self._wake_next()  # the wake-up meant for us goes to the next getter
                raise
            finally:
                if timer is not None:
                    timer.cancel()
        return items.popleft()


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


class _Waiters:
    """Futures of the coroutines waiting in drain(), woken on the loop."""

    __slots__ = ("futures",)

    def __init__(self) -> None:
        self.futures: List["asyncio.Future[None]"] = []

    async def wait(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self.futures.append(fut)
        try:
            await fut
        finally:
            if fut in self.futures:
                self.futures.remove(fut)

    def wake(self) -> None:
        futures, self.futures = self.futures, []
        for f in futures:
            if not f.done():
                f.set_result(None)


class Connection(_server.BaseConnection):
    """A client of a :class:`tcpgo.aio.TcpServer`: the client id (an ``int``)
    with its state and controls (see :class:`tcpgo.BaseConnection`: ``data``,
    ``address``, ``try_send``, ``queued``, ``pause``/``resume``,
    ``idle_timeout``, ``stats``, ``close``, ``close_reason``) and asyncio
    sending: ``await send()`` waits for back-pressure, ``send_nowait()``
    raises instead, ``await drain()`` waits until sending may go on."""

    def __init__(self, client_id: int, server: _server.TcpServer) -> None:
        super().__init__(client_id, server)
        self._waiters = _Waiters()

    async def send(self, data: Data) -> None:
        """Queue ``data`` for this client, first waiting (as :meth:`drain`) while
        its send queue is full or the memory budget is used up. Raises
        :class:`tcpgo.SendError` when the client is gone."""
        if type(data) is not bytes:
            data = as_bytes(data)
        while not self._server.try_send(self, data):
            await self.drain()

    def send_nowait(self, data: Data) -> None:
        """Queue ``data`` now or raise :class:`tcpgo.SendError` (``.code``
        ``QUEUE_FULL`` under back-pressure); see :meth:`tcpgo.TcpServer.send`."""
        self._server.send(self, data)

    async def send_many(self, messages: Iterable[Data]) -> None:  # type: ignore[override]
        """Queue several messages for this client in order, each as
        ``await send(m)`` does: waiting while the send queue is full. For
        one library call for all of them, use :meth:`send_many_nowait`."""
        for m in messages:
            await self.send(m)

    def send_many_nowait(self, messages: Iterable[Data]) -> None:
        """Queue several messages for this client with one library call (in a
        handler: batched with the other replies); see
        :meth:`tcpgo.TcpServer.send_many`."""
        self._server.send_many(self, messages)

    async def drain(self) -> None:
        """Return at once unless a send to this client was refused for
        back-pressure; then wait until its queue drained to ``send_low_water``
        (the ready event). Raises :class:`tcpgo.ConnectionClosedError` when
        the connection has closed."""
        while self.connected and not self.writable:
            await self._waiters.wait()
        if not self.connected:
            raise ConnectionClosedError(f"connection {int(self)} closed"
                                        + (f" ({self.close_reason.description})"
                                           if self.close_reason else ""))

    def _wake(self) -> None:
        super()._wake()
        self._waiters.wake()  # on the loop: events are handled there


class _AioBase:
    _on_error: Optional[Callable[..., Any]] = None

    def __init__(self) -> None:
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self._bridge: Optional[_Bridge] = None  # without tcp_*_event_fd: a dispatcher thread
        self._poller: Optional[_LoopPoller] = None
        self._drained: Optional[asyncio.Event] = None

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop (from a library thread: file progress)."""
        loop = self._loop
        if loop is None:
            fn(*args)
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed
            pass

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
        if r is None:
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
        logger.error("exception in %s handler of %r", name, self, exc_info=exc)
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
        logger.info("%r: %s", self, err)
        return err

    def _detach(self) -> None:
        """After a failed start: no dispatcher will end the bridge, close it."""
        b = self._bridge
        if b is not None:
            b.abandon = True
            b.close()

    def _attach(self, inner: _core.Endpoint) -> None:
        self._detach_stale()
        loop = asyncio.get_running_loop()
        p = self._poller
        if p is not None and p.active and p.loop is loop:
            if inner._is_running():
                raise StartError(_core.ErrorCode.ALREADY_RUNNING,
                                 f"{type(inner).__name__} is already running")
            p.drain_now()  # the last run's events, before a start replaces its queue
        self._loop = loop
        self._drained = asyncio.Event()
        if _LoopPoller.usable(inner):
            if p is None or p.loop is not loop or p.active:
                if p is not None:
                    p._unwatch()
                p = self._poller = _LoopPoller(loop, inner, self._on_events,
                                               self._dispatcher_finished)
            inner._loop_poller = p
            inner._done = _LoopDone(p.loop_thread, inner._done.is_set())
            return
        inner._loop_poller = None
        bridge = _Bridge(loop, self._on_events, self._dispatcher_finished)
        self._bridge = bridge
        orig_done = inner._dispatcher_done

        def done() -> None:
            orig_done()
            bridge.done_from_thread()

        inner._deliver = bridge.from_thread  # type: ignore[method-assign,assignment]
        inner._dispatcher_done = done  # type: ignore[method-assign,assignment]

    def _detach_stale(self) -> None:
        """A bridge whose dispatcher never started or has finished: close it."""
        b = self._bridge
        if b is not None and b.fds:
            t = getattr(self.sync, "_thread", None)
            if t is None or not t.is_alive():
                self._detach()

    def _on_events(self, events: list) -> None:  # overridden
        raise NotImplementedError

    def _dispatcher_finished(self) -> None:
        """On the loop, once the dispatcher thread ended."""
        if self._drained is not None:
            self._drained.set()

    async def _settle(self) -> None:
        """Wait until the dispatcher finished and every handler task is done."""
        if self._drained is not None:
            await self._drained.wait()
        me = asyncio.current_task()  # stop() awaited in a handler: not waiting for itself
        while True:
            others = [t for t in self._tasks if t is not me]
            if not others:
                return
            await asyncio.gather(*others, return_exceptions=True)

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
    ``on_message(client_id, data)`` (or ``on_messages(client_id, messages)``,
    one call per client and batch), ``on_closed(client_id)`` (or
    ``on_closed(client_id, reason)``), ``on_ready(client_id)``,
    ``on_error(client_id, error)``; the ``client_id`` they get is a
    :class:`tcpgo.aio.Connection`. :meth:`send` never blocks and may be
    called from any handler; ``await conn.send(data)`` waits for back-pressure.
    ``on_accept(ip, port, local_port) -> bool`` must be a plain function: it
    runs on a library thread (see :class:`tcpgo.TcpServer`).
    """

    _sync_class = _server.TcpServer

    def __init__(self, delimiter: Union[bytes, str, int, None] = None,
                 max_len: int = 0,
                 *,
                 framing: Optional[_framing.Framing] = None,
                 host: str = '',
                 on_message: Optional[Callable[..., Any]] = None,
                 on_messages: Optional[Callable[..., Any]] = None,
                 on_established: Optional[Callable[..., Any]] = None,
                 on_closed: Optional[Callable[..., Any]] = None,
                 on_error: Optional[Callable[..., Any]] = None,
                 on_ready: Optional[Callable[..., Any]] = None,
                 on_accept: Optional[_server.AcceptHandler] = None,
                 nodelay: bool = True,
                 reuse_port: bool = False,
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
                 proxy_protocol: Union[_core.ProxyMode, str, int, None] = None,
                 proxy_trusted: _server.AddressList = None,
                 allowed: _server.AddressList = None,
                 blocked: _server.AddressList = None,
                 on_cert: Optional[_tls.CertHandler] = None,
                 min_tls_version: _server.TlsVersion = None,
                 max_tls_version: _server.TlsVersion = None,
                 cipher_suites: _server.Names = None,
                 alpn: _server.Names = None,
                 key_log_file: Optional[_server.PathLike] = None,
                 resumption: Optional[bool] = None) -> None:
        options = _keywords(locals(), "delimiter", "max_len", *_SERVER_HANDLERS)
        self._setup(_server.TcpServer(delimiter, max_len, **options), on_message, on_established,
                    on_closed, on_error, on_ready, on_messages)

    def _setup(self, srv: _server.TcpServer, on_message: Optional[Callable[..., Any]],
               on_established: Optional[Callable[..., Any]],
               on_closed: Optional[Callable[..., Any]], on_error: Optional[Callable[..., Any]],
               on_ready: Optional[Callable[..., Any]],
               on_messages: Optional[Callable[..., Any]] = None) -> None:
        _AioBase.__init__(self)
        self._srv = srv
        self._srv._connection_class = Connection
        self._srv._progress_call = self._call_soon
        self._on_message_h = on_message
        self._on_messages_h: Optional[Callable[..., Any]] = on_messages
        self._on_established_h = on_established
        self._on_closed_h = on_closed
        self._on_ready_h = on_ready
        self._closed_arity = ArityCache(2)
        self._on_error = on_error
        self._conns: Dict[int, _Seq] = {}
        # Sends the library refused after a batch (see _on_events) go to our on_error.
        self._srv._on_error = self._batched_send_failed

    def _batched_send_failed(self, client_id: int, err: BaseException) -> None:
        self._report_error((client_id,), err)

    def on_message(self, handler: F) -> F:
        """Register ``handler(client_id, data)`` (may be ``async``); usable as a decorator."""
        self._on_message_h = handler
        return handler

    def on_messages(self, handler: Optional[F]) -> Optional[F]:
        """Register ``handler(conn, messages)`` (may be ``async``), the batch form
        of :meth:`on_message`: once per connection and batch of events, with
        the connection's messages of that batch as a list of :class:`bytes`
        (see :meth:`tcpgo.TcpServer.on_messages`); ``on_message`` is then not
        called. Reply with ``conn.send_many_nowait(messages)`` (one library
        call) or ``await conn.send_many(messages)``. Usable as a decorator;
        None unregisters it."""
        self._on_messages_h = handler
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

    def on_ready(self, handler: F) -> F:
        """Register ``handler(client_id)`` (may be ``async``), run when a client's
        send queue drained after a refused send; usable as a decorator."""
        self._on_ready_h = handler
        return handler

    def on_accept(self, handler: Optional[F]) -> Optional[F]:
        """Register ``handler(ip, port, local_port) -> bool`` (a plain function,
        run on a library thread); see :meth:`tcpgo.TcpServer.on_accept`."""
        return self._srv.on_accept(handler)

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
            self._detach()
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

    async def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop gracefully (see :meth:`tcpgo.TcpServer.shutdown`): handlers keep
        running while queued data is written, up to ``timeout`` seconds. True
        when everything queued was written; returns after every handler finished."""
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, self._srv.shutdown, timeout)
        await self._settle()
        return ok

    def stop_listening(self) -> None:
        """Close the listening socket, keep serving the connected clients."""
        self._srv.stop_listening()

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

    def send_many(self, client_id: int, messages: Iterable[Data]) -> None:
        """Queue several messages for a client with one library call (never
        blocks); see :meth:`tcpgo.TcpServer.send_many`."""
        self._srv.send_many(client_id, messages)

    def broadcast(self, data: Data) -> int:
        return self._srv.broadcast(data)

    def close_client(self, client_id: int) -> None:
        self._srv.close_client(client_id)

    def try_send(self, client_id: int, data: Data) -> bool:
        """Queue now, or return False under back-pressure; see
        :meth:`tcpgo.TcpServer.try_send`."""
        return self._srv.try_send(client_id, data)

    async def drain(self, client_id: int) -> None:
        """Wait until a client refused for back-pressure may be sent to again
        (see :meth:`Connection.drain`)."""
        conn = self._srv.connection(client_id)
        await conn.drain()  # type: ignore[attr-defined]

    def connection(self, client_id: int) -> Connection:
        """The :class:`Connection` of a connected client."""
        return self._srv.connection(client_id)  # type: ignore[return-value]

    @property
    def connections(self) -> List[Connection]:
        return self._srv.connections  # type: ignore[return-value]

    def queued(self, client_id: int) -> int:
        return self._srv.queued(client_id)

    def pause(self, client_id: int) -> None:
        self._srv.pause(client_id)

    def resume(self, client_id: int) -> None:
        self._srv.resume(client_id)

    def set_idle_timeout(self, client_id: int, seconds: float) -> None:
        self._srv.set_idle_timeout(client_id, seconds)

    def connection_stats(self, client_id: int) -> ConnStats:
        return self._srv.connection_stats(client_id)

    def stats(self) -> ServerStats:
        return self._srv.stats()

    @property
    def allowed(self) -> Tuple[str, ...]:
        """See :attr:`tcpgo.TcpServer.allowed` (assignable while running)."""
        return self._srv.allowed

    @allowed.setter
    def allowed(self, entries: Any) -> None:
        self._srv.allowed = entries

    @property
    def blocked(self) -> Tuple[str, ...]:
        """See :attr:`tcpgo.TcpServer.blocked` (assignable while running)."""
        return self._srv.blocked

    @blocked.setter
    def blocked(self, entries: Any) -> None:
        self._srv.blocked = entries

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

    @property
    def framing(self) -> Optional[_framing.Framing]:
        """The framing given at creation (see :attr:`tcpgo.TcpServer.framing`)."""
        return self._srv.framing

    def send_file(self, client_id: int, path: _server.PathLike, offset: int = 0,
                  length: Optional[int] = None, *,
                  progress: Optional[ProgressHandler] = None) -> FileTransfer:
        """Queue a file for a client (see :meth:`tcpgo.TcpServer.send_file`);
        ``await`` the returned :class:`tcpgo.FileTransfer` to wait until it was
        written. ``progress(sent, total)`` runs on the loop."""
        return self._srv.send_file(client_id, path, offset, length, progress=progress)

    def sendv(self, client_id: int, buffers: Sequence[Data]) -> None:
        """Queue several buffers as one message; see :meth:`tcpgo.TcpServer.sendv`."""
        self._srv.sendv(client_id, buffers)

    def send_line(self, client_id: int, line: Data) -> None:
        """Queue one line; see :meth:`tcpgo.TcpServer.send_line`."""
        self._srv.send_line(client_id, line)

    def set_record_length(self, client_id: int, length: int) -> None:
        """See :meth:`tcpgo.TcpServer.set_record_length`."""
        self._srv.set_record_length(client_id, length)

    def on_cert(self, handler: Optional[F]) -> Optional[F]:
        """Register ``handler(info) -> bool`` (a plain function, run on a library
        thread during the handshake); see :meth:`tcpgo.TcpServer.on_cert`."""
        return self._srv.on_cert(handler)

    def tls_info(self, client_id: int) -> Optional[_tls.TlsInfo]:
        """See :meth:`tcpgo.TcpServer.tls_info`."""
        return self._srv.tls_info(client_id)

    def set_starttls(self, cert: Optional[_tls.CertSource] = None,
                     key: Optional[_tls.CertSource] = None,
                     ca: Optional[_tls.CertSource] = None) -> None:
        """The certificate for STARTTLS upgrades; see :meth:`tcpgo.TcpServer.set_starttls`."""
        self._srv.set_starttls(cert, key, ca)

    def starttls(self, client_id: int, reply: Optional[Data] = None) -> None:
        """Upgrade a plain connection to TLS; see :meth:`tcpgo.TcpServer.starttls`."""
        self._srv.starttls(client_id, reply)

    @property
    def certificate_pem(self) -> Optional[str]:
        """See :attr:`tcpgo.TcpServer.certificate_pem`."""
        return self._srv.certificate_pem

    def _on_events(self, events: list) -> None:
        # Sends made by plain handlers while this batch is handled are queued
        # with one library call at its end (as the synchronous server does);
        # coroutine handlers run later, in tasks, and send at once.
        self._srv._with_batched_sends(self._handle_events, events)

    def _handle_events(self, events: list) -> None:
        conns = self._conns
        srv = self._srv
        objects = srv._conns
        hm = self._on_messages_h
        groups: Dict[int, List[bytes]] = {}
        for kind, cid, code, payload in events:
            if kind == EV_MESSAGE and hm is not None:
                g = groups.get(cid)
                if g is None:
                    g = groups[cid] = []
                g.append(MessagePart(payload) if code else payload)
                continue
            if kind == EV_ERROR and cid == 0:
                self._report_error((0,), self._peer_error(code, payload, 0))
                continue
            seq = conns.get(cid)
            if seq is None:
                seq = conns[cid] = _Seq(self)
            if groups:
                g = groups.pop(cid, None)
                if g:  # this connection's messages come before its other event
                    self._push_messages(seq, cid, g)
            if kind == EV_MESSAGE:
                h = self._on_message_h
                if h is not None:
                    conn = objects.get(cid)
                    if conn is None:
                        conn = srv._conn_open(cid)
                    seq.push(h, (conn, MessagePart(payload) if code else payload), "on_message")
            elif kind == EV_ESTABLISHED:
                conn = srv._conn_open(cid)
                h = self._on_established_h
                if h is not None:
                    seq.push(h, (conn,), "on_established")
            elif kind == EV_CLOSED:
                conn = srv._conn_closed(cid, code)
                h = self._on_closed_h
                if h is not None:
                    args = ((conn, conn.close_reason) if self._closed_arity.wants_extra(h)
                            else (conn,))
                    seq.push(h, args, "on_closed")
                del conns[cid]  # the sequencer lives on in its task if busy
            elif kind == EV_READY:
                conn = srv._conn_ready(cid)
                h = self._on_ready_h
                if h is not None:
                    seq.push(h, (conn,), "on_ready")
            elif kind == EV_ERROR:
                err = self._peer_error(code, payload, cid)
                h = self._on_error
                if h is not None:
                    seq.push(h, (objects.get(cid, cid), err), "on_error")
        for cid, g in groups.items():
            seq = conns.get(cid)
            if seq is None:
                seq = conns[cid] = _Seq(self)
            self._push_messages(seq, cid, g)

    def _push_messages(self, seq: _Seq, cid: int, messages: List[bytes]) -> None:
        conn = self._srv._conn_open(cid)
        h = self._on_messages_h
        if h is not None:
            seq.push(h, (conn, messages), "on_messages")
            return
        h1 = self._on_message_h  # unregistered meanwhile: one call per message
        if h1 is not None:
            for m in messages:
                seq.push(h1, (conn, m), "on_message")


class TlsServer(TcpServer):
    """An asyncio TLS server; see :class:`tcpgo.TlsServer` and
    :class:`tcpgo.TcpServer` for the arguments (every one is spelled out here
    for type checkers)."""

    def __init__(self, cert: Optional[_tls.CertSource] = None,
                 key: Optional[_tls.CertSource] = None,
                 ca: Optional[_tls.CertSource] = None,
                 delimiter: Union[bytes, str, int, None] = None,
                 max_len: int = 0,
                 *,
                 framing: Optional[_framing.Framing] = None,
                 require_client_cert: bool = True,
                 on_cert: Optional[_tls.CertHandler] = None,
                 min_tls_version: _server.TlsVersion = None,
                 max_tls_version: _server.TlsVersion = None,
                 cipher_suites: _server.Names = None,
                 alpn: _server.Names = None,
                 key_log_file: Optional[_server.PathLike] = None,
                 resumption: Optional[bool] = None,
                 handshake_timeout: Optional[float] = None,
                 host: str = '',
                 on_message: Optional[Callable[..., Any]] = None,
                 on_messages: Optional[Callable[..., Any]] = None,
                 on_established: Optional[Callable[..., Any]] = None,
                 on_closed: Optional[Callable[..., Any]] = None,
                 on_error: Optional[Callable[..., Any]] = None,
                 on_ready: Optional[Callable[..., Any]] = None,
                 on_accept: Optional[_server.AcceptHandler] = None,
                 nodelay: bool = True,
                 reuse_port: bool = False,
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
                 proxy_protocol: Union[_core.ProxyMode, str, int, None] = None,
                 proxy_trusted: _server.AddressList = None,
                 allowed: _server.AddressList = None,
                 blocked: _server.AddressList = None) -> None:
        options = _keywords(locals(), "cert", "key", "ca", "delimiter", "max_len",
                            *_SERVER_HANDLERS)
        self._setup(_server.TlsServer(cert, key, ca, delimiter, max_len, **options), on_message,
                    on_established, on_closed, on_error, on_ready, on_messages)

    def add_cert(self, host: str, cert: _tls.CertSource, key: _tls.CertSource) -> None:
        """Serve another certificate by SNI; see :meth:`tcpgo.TlsServer.add_cert`."""
        self._srv.add_cert(host, cert, key)  # type: ignore[attr-defined]

    def reload_cert(self, cert: Optional[_tls.CertSource] = None,
                    key: Optional[_tls.CertSource] = None) -> None:
        """Replace the certificate without a restart; see :meth:`tcpgo.TlsServer.reload_cert`."""
        self._srv.reload_cert(cert, key)  # type: ignore[attr-defined]

    def peer_subject(self, client_id: int) -> Dict[str, str]:
        return self._srv.peer_subject(client_id)  # type: ignore[attr-defined]

    def peer_subject_part(self, client_id: int, field: Union[str, int]) -> Optional[str]:
        return self._srv.peer_subject_part(client_id, field)  # type: ignore[attr-defined]


class Client(_AioBase):
    """An asyncio client (TCP, or TLS with ``tls=True``).

    Create it with :func:`connect`, or construct and ``await client.connect(host, port)``.
    Messages go to ``on_message(data)`` (plain or ``async``; or
    ``on_messages(messages)``, one call per batch) if given, else to
    :meth:`recv` / ``async for``. Other handlers: ``on_closed()`` (or
    ``on_closed(reason)``), ``on_ready()``, ``on_connect(attempt, result)``
    (with ``reconnect=True``), ``on_error(error)``. The options are those of
    :class:`tcpgo.TcpClient` (``reconnect``, ``local_address``, timeouts,
    keep-alive...).

    :meth:`send` waits while the send queue is full (back-pressure),
    :meth:`send_nowait` raises instead, :meth:`drain` waits until a refused
    send may be retried -- the same as a server's :class:`Connection`.
    """

    def __init__(self, delimiter: Union[bytes, str, int, None] = None,
                 max_len: int = 0,
                 *,
                 framing: Optional[_framing.Framing] = None,
                 tls: bool = False,
                 ca: Optional[_tls.CertSource] = None,
                 cert: Optional[_tls.CertSource] = None,
                 key: Optional[_tls.CertSource] = None,
                 verify: str = 'full',
                 server_name: Optional[str] = None,
                 system_cas: Optional[bool] = None,
                 on_cert: Optional[_tls.CertHandler] = None,
                 min_tls_version: _server.TlsVersion = None,
                 max_tls_version: _server.TlsVersion = None,
                 cipher_suites: _server.Names = None,
                 alpn: _server.Names = None,
                 key_log_file: Optional[_server.PathLike] = None,
                 resumption: Optional[bool] = None,
                 on_message: Optional[Callable[..., Any]] = None,
                 on_messages: Optional[Callable[..., Any]] = None,
                 on_closed: Optional[Callable[..., Any]] = None,
                 on_error: Optional[Callable[..., Any]] = None,
                 on_ready: Optional[Callable[..., Any]] = None,
                 on_connect: Optional[Callable[..., Any]] = None,
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
        options = _keywords(locals(), "delimiter", "max_len", "tls", "ca", "cert", "key",
                            *_CLIENT_HANDLERS)
        super().__init__()
        if tls:
            self._cli: _client.TcpClient = _client.TlsClient(ca, cert, key, delimiter, max_len,
                                                             **options)
        else:
            if ca is not None or cert is not None or key is not None:
                raise ValueError("ca/cert/key given without tls=True (for STARTTLS, give them "
                                 "to starttls())")
            self._cli = _client.TcpClient(delimiter, max_len, **options)
        self._cli._progress_call = self._call_soon
        self._on_message_h = on_message
        self._on_messages_h: Optional[Callable[..., Any]] = on_messages
        self._on_closed_h = on_closed
        self._on_ready_h = on_ready
        self._on_connect_h = on_connect
        self._closed_arity = ArityCache(1)
        self._on_error = on_error
        self._queue = _RecvQueue()
        self._seq: Optional[_Seq] = None
        self._closed_reason: Optional[PeerError] = None
        self._waiters = _Waiters()

    def on_message(self, handler: F) -> F:
        """Register ``handler(data)`` (may be ``async``) for messages from the server;
        without one, messages wait for :meth:`recv`. Usable as a decorator."""
        self._on_message_h = handler
        return handler

    def on_messages(self, handler: Optional[F]) -> Optional[F]:
        """Register ``handler(messages)`` (may be ``async``), the batch form of
        :meth:`on_message`: once per batch of events, with the messages of
        that batch as a list of :class:`bytes` (see
        :meth:`tcpgo.TcpClient.on_messages`); ``on_message`` is then not
        called. Usable as a decorator; None unregisters it."""
        self._on_messages_h = handler
        return handler

    def on_closed(self, handler: F) -> F:
        """Register ``handler()`` (may be ``async``), run once when the connection ends."""
        self._on_closed_h = handler
        return handler

    def on_error(self, handler: F) -> F:
        """Register ``handler(error)`` (may be ``async``) for errors the library reports."""
        self._on_error = handler
        return handler

    def on_ready(self, handler: F) -> F:
        """Register ``handler()`` (may be ``async``), run when the send queue
        drained after a refused send."""
        self._on_ready_h = handler
        return handler

    def on_connect(self, handler: F) -> F:
        """Register ``handler(attempt, result)`` (may be ``async``), run for every
        reconnection attempt; see :meth:`tcpgo.TcpClient.on_connect`."""
        self._on_connect_h = handler
        return handler

    async def connect(self, host: str, port: int) -> "Client":
        """Connect (in a worker thread, so the loop keeps running); returns self."""
        p = self._poller
        if p is not None and p.active and self._cli._reconnect and not self._cli.connected:
            # end the last connect's reconnection loop (the sync client does so itself
            # when a dispatcher thread polls)
            await asyncio.get_running_loop().run_in_executor(None, self._cli.stop)
        self._attach(self._cli)
        self._queue = _RecvQueue()
        self._seq = _Seq(self)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._cli.connect, host, port)
        except BaseException:
            self._drained = None
            self._detach()
            raise
        return self

    async def send(self, data: Data) -> None:
        """Queue a message for the server, first waiting (as :meth:`drain`)
        while the send queue is full. Raises like :meth:`tcpgo.TcpClient.send`
        when the connection is gone."""
        if type(data) is not bytes:
            data = as_bytes(data)
        cli = self._cli
        while not cli.try_send(data):
            await self.drain()

    def send_nowait(self, data: Data) -> None:
        """Queue a message now or raise :class:`tcpgo.SendError` (``.code``
        ``QUEUE_FULL`` under back-pressure)."""
        self._cli.send(data)

    async def send_many(self, messages: Iterable[Data]) -> None:
        """Queue several messages in order, each as ``await send(m)`` does
        (waiting while the send queue is full)."""
        for m in messages:
            await self.send(m)

    def send_many_nowait(self, messages: Iterable[Data]) -> None:
        """Queue several messages now; see :meth:`tcpgo.TcpClient.send_many`."""
        self._cli.send_many(messages)

    def try_send(self, data: Data) -> bool:
        """Queue now, or return False under back-pressure."""
        return self._cli.try_send(data)

    async def drain(self) -> None:
        """Return at once unless a send was refused for back-pressure; then
        wait until the send queue drained to ``send_low_water``. Raises
        :class:`tcpgo.ConnectionClosedError` when the connection is down."""
        cli = self._cli
        while cli.connected and not cli.writable:
            await self._waiters.wait()
        if not cli.connected:
            raise ConnectionClosedError("connection closed")

    @property
    def queued(self) -> int:
        """Bytes queued for the server and not yet written."""
        return self._cli.queued

    def pause(self) -> None:
        """Stop reading from the server until :meth:`resume`."""
        self._cli.pause()

    def resume(self) -> None:
        self._cli.resume()

    def stats(self) -> ConnStats:
        return self._cli.stats()

    @property
    def close_reason(self) -> Optional[CloseReason]:
        """Why the last connection ended (see :attr:`tcpgo.TcpClient.close_reason`)."""
        return self._cli.close_reason

    @property
    def writable(self) -> bool:
        return self._cli.writable

    async def recv(self, timeout: Optional[float] = None) -> bytes:
        """The next message; :class:`TimeoutError` after ``timeout`` seconds,
        :class:`tcpgo.ConnectionClosedError` once the connection ended and all
        messages were taken."""
        if self._seq is None:
            raise NotRunningError("call connect() first")
        item = await self._queue.get(timeout)
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

    @property
    def framing(self) -> Optional[_framing.Framing]:
        """The framing given at creation."""
        return self._cli.framing

    def send_file(self, path: _server.PathLike, offset: int = 0, length: Optional[int] = None,
                  *, progress: Optional[ProgressHandler] = None) -> FileTransfer:
        """Queue a file as one message (see :meth:`tcpgo.TcpClient.send_file`);
        ``await`` the returned :class:`tcpgo.FileTransfer` to wait until it was
        written. ``progress(sent, total)`` runs on the loop."""
        return self._cli.send_file(path, offset, length, progress=progress)

    def sendv(self, buffers: Sequence[Data]) -> None:
        """Queue several buffers as one message (never waits for back-pressure)."""
        self._cli.sendv(buffers)

    def send_line(self, line: Data) -> None:
        """Queue one line; see :meth:`tcpgo.TcpServer.send_line`."""
        self._cli.send_line(line)

    def set_record_length(self, length: int) -> None:
        """See :meth:`tcpgo.TcpClient.set_record_length`."""
        self._cli.set_record_length(length)

    def on_cert(self, handler: Optional[F]) -> Optional[F]:
        """Register ``handler(info) -> bool`` (a plain function, run on a library
        thread during the handshake); see :meth:`tcpgo.TcpClient.on_cert`."""
        return self._cli.on_cert(handler)

    def tls_info(self) -> Optional[_tls.TlsInfo]:
        """See :meth:`tcpgo.TcpClient.tls_info`."""
        return self._cli.tls_info()

    async def starttls(self, ca: Optional[_tls.CertSource] = None,
                       cert: Optional[_tls.CertSource] = None,
                       key: Optional[_tls.CertSource] = None) -> None:
        """Upgrade the plain connection to TLS (in a worker thread); see
        :meth:`tcpgo.TcpClient.starttls`."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._cli.starttls, ca, cert, key)

    def __repr__(self) -> str:
        return f"<tcpgo.aio.Client wrapping {self._cli!r}>"

    def _dispatcher_finished(self) -> None:
        if self._cli._reconnect:
            self._queue.put_nowait(_CLOSED)  # the stream ends with stop(), not a lost connection
        self._waiters.wake()
        super()._dispatcher_finished()

    def _on_events(self, events: list) -> None:
        seq = self._seq
        assert seq is not None
        cli = self._cli
        hm = self._on_messages_h
        group: List[bytes] = []
        for kind, cid, code, payload in events:
            if kind == EV_MESSAGE:
                if code:
                    payload = MessagePart(payload)
                if hm is not None:
                    group.append(payload)
                    continue
                h = self._on_message_h
                if h is not None:
                    seq.push(h, (payload,), "on_message")
                else:
                    self._queue.put_nowait(payload)
                continue
            if group:  # the messages before this event first
                seq.push(hm, (group,), "on_messages")
                group = []
            if kind == EV_CLOSED:
                cli._event_closed(code)
                self._waiters.wake()
                if not cli._reconnect:
                    self._queue.put_nowait(_CLOSED)
                h = self._on_closed_h
                if h is not None:
                    args = (cli.close_reason,) if self._closed_arity.wants_extra(h) else ()
                    seq.push(h, args, "on_closed")
            elif kind == EV_READY:
                cli._event_ready()
                self._waiters.wake()
                h = self._on_ready_h
                if h is not None:
                    seq.push(h, (), "on_ready")
            elif kind == EV_CONNECT:
                if code == 0:
                    self._closed_reason = None
                h = self._on_connect_h
                if h is not None:
                    seq.push(h, (cid, _client.connect_result(code)), "on_connect")
            elif kind == EV_ERROR:
                err = self._peer_error(code, payload, 0)
                self._closed_reason = err
                h = self._on_error
                if h is not None:
                    seq.push(h, (err,), "on_error")
        if group:
            seq.push(hm, (group,), "on_messages")


_SERVER_HANDLERS = ("on_message", "on_messages", "on_established", "on_closed", "on_error", "on_ready")
_CLIENT_HANDLERS = ("on_message", "on_messages", "on_closed", "on_error", "on_ready", "on_connect")


def _keywords(scope: Dict[str, Any], *leave_out: str) -> Dict[str, Any]:
    """The arguments of the calling function, from its ``locals()`` taken first thing."""
    return {k: v for k, v in scope.items() if k not in leave_out and k not in ("self", "__class__")}


async def connect(host: str, port: int, delimiter: Union[bytes, str, int, None] = None,
                  max_len: int = 0,
                  *,
                  framing: Optional[_framing.Framing] = None,
                  tls: bool = False,
                  ca: Optional[_tls.CertSource] = None,
                  cert: Optional[_tls.CertSource] = None,
                  key: Optional[_tls.CertSource] = None,
                  verify: str = 'full',
                  server_name: Optional[str] = None,
                  system_cas: Optional[bool] = None,
                  on_cert: Optional[_tls.CertHandler] = None,
                  min_tls_version: _server.TlsVersion = None,
                  max_tls_version: _server.TlsVersion = None,
                  cipher_suites: _server.Names = None,
                  alpn: _server.Names = None,
                  key_log_file: Optional[_server.PathLike] = None,
                  resumption: Optional[bool] = None,
                  on_message: Optional[Callable[..., Any]] = None,
                  on_messages: Optional[Callable[..., Any]] = None,
                  on_closed: Optional[Callable[..., Any]] = None,
                  on_error: Optional[Callable[..., Any]] = None,
                  on_ready: Optional[Callable[..., Any]] = None,
                  on_connect: Optional[Callable[..., Any]] = None,
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
                  callback_threads: Optional[int] = None) -> Client:
    """Create a :class:`Client` and connect it.

    The keyword arguments are those of :class:`Client`, :class:`tcpgo.TcpClient`
    and :class:`tcpgo.TlsClient`::

        client = await tcpgo.aio.connect("127.0.0.1", port, delimiter="\\n")
        await client.send(b"ping")
        reply = await client.recv(timeout=5)
        await client.close()
    """
    options = _keywords(locals(), "host", "port")
    client = Client(**options)
    try:
        return await client.connect(host, port)
    except BaseException:
        client._cli.close()
        raise
