"""Connection control, flow control and lifecycle in tcpgo.aio (issue 9).

Waits are asyncio events and futures with timeouts; no sleeping to synchronise.
"""

from __future__ import annotations

import asyncio
import socket
import unittest
from typing import Any, List

from _support import LOOPBACK, TIMEOUT, TestCase

import tcpgo
import tcpgo.aio
from tcpgo.server import CloseReason

REFUSED = -17


def raw_connect(port: int, rcvbuf: int = 4096) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(TIMEOUT)
    s.connect((LOOPBACK, port))
    return s


def read_until_eof(s: socket.socket, out: bytearray) -> None:
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                return
            out += chunk
    except OSError:
        return


def read_exactly(s: socket.socket, n: int, out: bytearray) -> None:
    while len(out) < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            return
        out += chunk


async def wait_for(fut: Any) -> Any:
    return await asyncio.wait_for(fut, TIMEOUT)


class AioControlTest(TestCase):
    def run_async(self, coro: Any) -> Any:
        return asyncio.run(asyncio.wait_for(coro, 30))

    def test_drain_wakes_when_the_peer_reads(self) -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            conn_fut: "asyncio.Future[tcpgo.aio.Connection]" = loop.create_future()
            ready = asyncio.Event()
            async with tcpgo.aio.TcpServer(host=LOOPBACK, send_queue_limit=128 * 1024,
                                           send_low_water=16 * 1024) as srv:
                srv.on_established(lambda conn: conn_fut.set_result(conn))
                srv.on_ready(lambda conn: ready.set())
                port = await srv.start(0)
                s = raw_connect(port)
                conn = await wait_for(conn_fut)
                self.assertIsInstance(conn, tcpgo.aio.Connection)
                await conn.drain()  # nothing refused: returns at once
                sent = 0
                chunk = b"d" * 16384
                with self.assertRaises(tcpgo.SendError) as cm:
                    for _ in range(100_000):
                        conn.send_nowait(chunk)
                        sent += len(chunk)
                self.assertEqual(cm.exception.code, tcpgo.ErrorCode.QUEUE_FULL)
                self.assertFalse(conn.writable)
                drained = asyncio.ensure_future(conn.drain())
                await asyncio.sleep(0)  # let it start waiting (not a synchronisation)
                self.assertFalse(drained.done())
                got = bytearray()
                reader = loop.run_in_executor(None, read_exactly, s, sent, got)
                await wait_for(drained)
                await wait_for(ready.wait())
                self.assertTrue(conn.writable)
                await wait_for(reader)
                self.assertEqual(len(got), sent)
                s.close()

        self.run_async(main())

    def test_send_waits_for_back_pressure_and_loses_nothing(self) -> None:
        total = 4 << 20

        async def main() -> None:
            loop = asyncio.get_running_loop()
            done = loop.create_future()
            readies: List[int] = []
            async with tcpgo.aio.TcpServer(host=LOOPBACK, send_queue_limit=64 * 1024,
                                           send_low_water=8 * 1024) as srv:
                @srv.on_established
                async def stream(conn: tcpgo.aio.Connection) -> None:
                    chunk = b"s" * 32768
                    for _ in range(total // len(chunk)):
                        await conn.send(chunk)  # waits whenever the queue is full
                    done.set_result(None)

                srv.on_ready(lambda conn: readies.append(int(conn)))
                port = await srv.start(0)
                s = raw_connect(port)
                got = bytearray()
                reader = loop.run_in_executor(None, read_exactly, s, total, got)
                await wait_for(done)
                await wait_for(reader)
                self.assertEqual(len(got), total)
                self.assertGreater(len(readies), 0)  # it did have to wait
                s.close()

        self.run_async(main())

    def test_client_send_waits_while_the_server_pauses_it(self) -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            conn_fut: "asyncio.Future[tcpgo.aio.Connection]" = loop.create_future()
            received: List[int] = []
            expected = [-1]
            all_in = asyncio.Event()

            def count(conn: tcpgo.aio.Connection, data: bytes) -> None:
                received.append(len(data))
                if sum(received) == expected[0]:
                    all_in.set()

            async with tcpgo.aio.TcpServer(host=LOOPBACK) as srv:
                srv.on_established(lambda conn: conn_fut.set_result(conn))
                srv.on_message(count)
                port = await srv.start(0)
                client_ready = asyncio.Event()
                c = await tcpgo.aio.connect(LOOPBACK, port, send_queue_limit=64 * 1024,
                                            send_low_water=8 * 1024,
                                            on_ready=client_ready.set)
                conn = await wait_for(conn_fut)
                conn.pause()
                chunk = b"p" * 16384

                async def produce() -> int:
                    n = 0
                    while c.try_send(chunk):
                        n += len(chunk)
                    await c.send(chunk)  # waits: the server does not read
                    return n + len(chunk)

                producer = asyncio.ensure_future(produce())
                await asyncio.sleep(0.05)  # only to show it stays blocked
                self.assertFalse(producer.done())
                self.assertFalse(c.writable)
                self.assertGreater(c.queued, 0)
                conn.resume()
                sent = await wait_for(producer)
                await wait_for(client_ready.wait())
                expected[0] = sent
                if sum(received) != sent:
                    await wait_for(all_in.wait())
                self.assertEqual(sum(received), sent)
                await c.close()

        self.run_async(main())

    def test_closed_reason_idle_timeout_and_connection_objects(self) -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            closed = loop.create_future()
            async with tcpgo.aio.TcpServer("\n", host=LOOPBACK, idle_timeout=0.2) as srv:
                @srv.on_established
                async def hello(conn: tcpgo.aio.Connection) -> None:
                    conn.data = "state"

                @srv.on_closed
                async def gone(conn: tcpgo.aio.Connection, reason: CloseReason) -> None:
                    closed.set_result((conn, reason, conn.data))

                port = await srv.start(0)
                s = raw_connect(port)
                conn, reason, data = await wait_for(closed)
                self.assertEqual(reason, CloseReason.IDLE_TIMEOUT)
                self.assertEqual(conn.close_reason, CloseReason.IDLE_TIMEOUT)
                self.assertEqual(data, "state")
                with self.assertRaises(tcpgo.ConnectionClosedError):
                    await conn.drain()
                self.assertGreaterEqual(srv.stats().timed_out, 1)
                s.close()

        self.run_async(main())

    def test_on_accept_and_lists(self) -> None:
        async def main() -> None:
            refused = asyncio.Event()
            admitted = asyncio.Event()
            est: List[int] = []

            def established(conn: tcpgo.aio.Connection) -> None:
                est.append(conn)
                admitted.set()

            async with tcpgo.aio.TcpServer("\n", host=LOOPBACK) as srv:
                srv.on_accept(lambda ip, port, local_port: False)
                srv.on_established(established)

                @srv.on_error
                def err(cid: int, e: BaseException) -> None:
                    if cid == 0 and getattr(e, "code", None) == REFUSED:
                        refused.set()

                port = await srv.start(0)
                c = tcpgo.aio.Client("\n")
                try:
                    await c.connect(LOOPBACK, port)
                except tcpgo.Error:
                    pass  # refused before or after connect() returned
                await wait_for(refused.wait())
                self.assertEqual(est, [])
                await c.close()
                srv.on_accept(None)
                srv.blocked = [LOOPBACK]
                self.assertEqual(srv.blocked, (LOOPBACK,))
                srv.blocked = ()
                c2 = await tcpgo.aio.connect(LOOPBACK, port, "\n")
                await wait_for(admitted.wait())
                await c2.close()
                self.assertEqual(srv.stats().refused, 1)

        self.run_async(main())

    def test_graceful_shutdown_delivers_what_was_queued(self) -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            conn_fut: "asyncio.Future[tcpgo.aio.Connection]" = loop.create_future()
            closed = loop.create_future()
            srv = tcpgo.aio.TcpServer(host=LOOPBACK, linger=0, send_queue_limit=0)
            srv.on_established(lambda conn: conn_fut.set_result(conn))
            srv.on_closed(lambda conn, reason: closed.set_result(reason))
            port = await srv.start(0)
            s = raw_connect(port)
            conn = await wait_for(conn_fut)
            total = 0
            for _ in range(48):
                conn.send_nowait(b"q" * 65536)
                total += 65536
            got = bytearray()
            reader = loop.run_in_executor(None, read_until_eof, s, got)
            self.assertTrue(await srv.shutdown(TIMEOUT))
            await wait_for(reader)
            self.assertEqual(len(got), total)
            self.assertEqual(await wait_for(closed), CloseReason.STOPPED)
            await srv.close()
            s.close()

        self.run_async(main())

    def test_reconnecting_client_survives_a_server_restart(self) -> None:
        async def main() -> None:
            attempts: List[Any] = []
            reconnected = asyncio.Event()
            lost = asyncio.Event()
            srv = tcpgo.aio.TcpServer("\n", host=LOOPBACK)
            srv.on_message(lambda conn, data: srv.send(conn, data))
            port = await srv.start(0)

            def attempt(n: int, result: tcpgo.StartCode) -> None:
                attempts.append((n, result))
                if result == tcpgo.StartCode.OK:
                    reconnected.set()

            c = await tcpgo.aio.connect(LOOPBACK, port, "\n", reconnect=True,
                                        reconnect_min=0.05, reconnect_max=0.2,
                                        on_connect=attempt, on_closed=lambda r: lost.set())
            self.assertEqual(await c.request("one", TIMEOUT), b"one")
            await srv.stop()
            await wait_for(lost.wait())
            port2 = await srv.start(port)
            self.assertEqual(port2, port)
            await wait_for(reconnected.wait())
            self.assertEqual(attempts[-1][1], tcpgo.StartCode.OK)
            self.assertEqual([n for n, _ in attempts], list(range(1, len(attempts) + 1)))
            self.assertEqual(await c.request("two", TIMEOUT), b"two")
            await c.close()
            with self.assertRaises(tcpgo.ConnectionClosedError):
                await c.recv(TIMEOUT)
            await srv.close()

        self.run_async(main())

    def test_the_loop_polls_the_event_fd_stop_from_a_handler_restart_and_close(self) -> None:
        async def main() -> None:
            import threading
            loop_thread = threading.get_ident()
            threads: List[int] = []
            reasons: List[Any] = []
            stopped = asyncio.Event()
            srv = tcpgo.aio.TcpServer("\n", host=LOOPBACK)

            @srv.on_message
            async def on_message(conn: Any, data: bytes) -> None:
                threads.append(threading.get_ident())
                if data == b"stop":
                    await srv.stop()  # awaited in a handler: returns, no deadlock
                    stopped.set()
                else:
                    await conn.send(data)

            srv.on_closed(lambda conn, reason: reasons.append(reason))
            port = await srv.start(0)
            if tcpgo.aio._LoopPoller.usable(srv.sync):  # Linux, a library with tcp_*_event_fd
                names = {t.name for t in threading.enumerate()}
                self.assertFalse([n for n in names if n.startswith("tcpgo-")], names)
            c = await tcpgo.aio.connect(LOOPBACK, port, "\n")
            self.assertEqual(await c.request("one", TIMEOUT), b"one")
            await c.send("stop")
            await wait_for(stopped.wait())
            self.assertFalse(srv.running)
            self.assertEqual(reasons, [CloseReason.STOPPED])
            self.assertTrue(all(t == loop_thread for t in threads))
            if srv._poller is not None:
                self.assertEqual(srv._poller.fd, -1)  # not watched once stopped
                self.assertFalse(srv._poller.active)
            port = await srv.start(0)  # a new event fd, watched again
            if srv._poller is not None:
                self.assertGreaterEqual(srv._poller.fd, 0)
                self.assertTrue(srv._poller.active)
            c2 = await tcpgo.aio.connect(LOOPBACK, port, "\n")
            self.assertEqual(await c2.request("two", TIMEOUT), b"two")
            # close() of the synchronous object from a plain handler, on the loop
            srv.on_message(lambda conn, data: srv.sync.close())
            await c2.send("close")
            await wait_for(srv.stop())
            self.assertEqual(reasons, [CloseReason.STOPPED] * 2)
            self.assertIsNone(srv.sync._h)
            with self.assertRaises(tcpgo.ConnectionClosedError):
                await c2.recv(TIMEOUT)
            await c.close()
            await c2.close()
            await srv.close()

        self.run_async(main())


if __name__ == "__main__":
    unittest.main()
