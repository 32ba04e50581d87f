"""tcpgo.aio: async handlers on the user's loop, awaitable clients."""

from __future__ import annotations

import asyncio
import threading
import unittest

from _support import LOOPBACK, TIMEOUT, TestCase, certs, echo_server, tls_echo_server

import tcpgo
import tcpgo.aio


class AioTest(TestCase):
    def run_async(self, coro) -> object:
        return asyncio.run(asyncio.wait_for(coro, 30))

    def test_async_handlers_run_on_the_loop_in_order(self) -> None:
        async def main() -> None:
            loop_thread = threading.get_ident()
            seen_threads = set()
            closed = asyncio.Event()
            async with tcpgo.aio.TcpServer("\n", host=LOOPBACK) as srv:
                @srv.on_message
                async def echo(cid: int, data: bytes) -> None:
                    seen_threads.add(threading.get_ident())
                    if data.startswith(b"slow"):
                        await asyncio.sleep(0.01)  # later messages must wait for this one
                    srv.send(cid, data)

                @srv.on_closed
                def gone(cid: int) -> None:  # plain functions work too
                    closed.set()

                port = await srv.start(0)
                self.assertEqual(srv.port, port)
                async with await tcpgo.aio.connect(LOOPBACK, port, "\n") as c:
                    for i in range(20):
                        await c.send(f"slow{i}" if i % 5 == 0 else f"fast{i}")
                    got = [await c.recv(TIMEOUT) for _ in range(20)]
                self.assertEqual(got, [(f"slow{i}" if i % 5 == 0 else f"fast{i}").encode()
                                       for i in range(20)])
                await asyncio.wait_for(closed.wait(), TIMEOUT)
            self.assertEqual(seen_threads, {loop_thread})

        self.run_async(main())

    def test_connections_run_concurrently(self) -> None:
        async def main() -> None:
            both = asyncio.Event()
            waiting = []
            async with tcpgo.aio.TcpServer("\n", host=LOOPBACK) as srv:
                @srv.on_message
                async def handler(cid: int, data: bytes) -> None:
                    waiting.append(cid)
                    if len(waiting) == 2:
                        both.set()
                    await asyncio.wait_for(both.wait(), TIMEOUT)  # needs the other client
                    srv.send(cid, data)

                port = await srv.start(0)
                a = await tcpgo.aio.connect(LOOPBACK, port, "\n")
                b = await tcpgo.aio.connect(LOOPBACK, port, "\n")
                await a.send("a")
                await b.send("b")
                self.assertEqual(await a.recv(TIMEOUT), b"a")
                self.assertEqual(await b.recv(TIMEOUT), b"b")
                await a.close()
                await b.close()

        self.run_async(main())

    def test_async_handler_exception_is_logged_and_reported(self) -> None:
        async def main() -> None:
            errors = []
            async with tcpgo.aio.TcpServer("\n", host=LOOPBACK) as srv:
                @srv.on_message
                async def handler(cid: int, data: bytes) -> None:
                    if data == b"bad":
                        raise ValueError("async failure")
                    srv.send(cid, data)

                @srv.on_error
                async def on_error(cid: int, exc: BaseException) -> None:
                    errors.append((cid, exc))

                port = await srv.start(0)
                with self.assertLogs("tcpgo", level="ERROR"):
                    async with await tcpgo.aio.connect(LOOPBACK, port, "\n") as c:
                        await c.send("bad")
                        self.assertEqual(await c.request("good", TIMEOUT), b"good")
            self.assertEqual(len(errors), 1)
            self.assertIsInstance(errors[0][1], ValueError)

        self.run_async(main())

    def test_client_recv_timeout_iteration_and_close(self) -> None:
        async def main() -> None:
            with echo_server("\n") as srv:  # a sync server serves async clients
                port = srv.start(0)
                c = await tcpgo.aio.connect(LOOPBACK, port, delimiter="\n")
                with self.assertRaises(TimeoutError):
                    await c.recv(timeout=0.05)
                for i in range(3):
                    c.send_nowait(f"n{i}")
                got = []
                async for m in c:
                    got.append(m)
                    if len(got) == 3:
                        srv.close_client(srv.clients[0])
                self.assertEqual(got, [b"n0", b"n1", b"n2"])
                with self.assertRaises(tcpgo.ConnectionClosedError):
                    await c.recv(TIMEOUT)
                self.assertFalse(c.connected)
                await c.close()

        self.run_async(main())

    def test_client_handlers(self) -> None:
        async def main() -> None:
            with echo_server("\n") as srv:
                port = srv.start(0)
                got: "asyncio.Queue[bytes]" = asyncio.Queue()
                closed = asyncio.Event()

                async def on_message(data: bytes) -> None:
                    await got.put(data)

                c = tcpgo.aio.Client("\n", on_message=on_message, on_closed=closed.set)
                await c.connect(LOOPBACK, port)
                await c.send("h")
                self.assertEqual(await asyncio.wait_for(got.get(), TIMEOUT), b"h")
                await c.stop()
                self.assertTrue(closed.is_set())
                await c.close()

        self.run_async(main())

    def test_mutual_tls(self) -> None:
        async def main() -> None:
            c = certs()
            async with tcpgo.aio.TlsServer(c.server_cert, c.server_key, c.ca, "\n",
                                           host=LOOPBACK) as srv:
                subjects = []

                @srv.on_established
                async def est(cid: int) -> None:
                    subjects.append(srv.peer_subject_part(cid, "CN"))

                srv.on_message(lambda cid, d: srv.send(cid, d))
                port = await srv.start(0)
                async with await tcpgo.aio.connect(LOOPBACK, port, "\n", tls=True, ca=c.ca,
                                                   cert=c.client_cert, key=c.client_key) as cl:
                    self.assertEqual(await cl.request("tls", TIMEOUT), b"tls")
                    self.assertEqual(cl.server_subject_part("CN"), "tcpgo server")
            self.assertEqual(subjects, ["tcpgo client"])

        self.run_async(main())

    def test_connect_errors(self) -> None:
        async def main() -> None:
            from _support import free_port
            with self.assertRaises(tcpgo.ConnectError):
                await tcpgo.aio.connect(LOOPBACK, free_port())
            with tls_echo_server("\n") as srv:
                port = srv.start(0)
                other = tcpgo.generate_certs(__import__("_support").tempdir())
                with self.assertRaises(tcpgo.HandshakeError):
                    await tcpgo.aio.connect(LOOPBACK, port, "\n", tls=True, ca=other.ca,
                                            cert=other.client_cert, key=other.client_key)

        self.run_async(main())

    def test_serve_forever_and_cancellation(self) -> None:
        async def main() -> None:
            srv = tcpgo.aio.TcpServer("\n", host=LOOPBACK)
            srv.on_message(lambda cid, d: srv.send(cid, d))
            port = await srv.start(0)
            task = asyncio.ensure_future(srv.serve_forever())
            c = await tcpgo.aio.connect(LOOPBACK, port, "\n")
            self.assertEqual(await c.request("x", TIMEOUT), b"x")
            task.cancel()  # what Ctrl-C does under asyncio.run
            with self.assertRaises(asyncio.CancelledError):
                await task
            self.assertFalse(srv.running)
            with self.assertRaises(tcpgo.ConnectionClosedError):
                await c.recv(TIMEOUT)
            await c.close()
            await srv.close()

        self.run_async(main())

    def test_many_async_clients(self) -> None:
        async def main() -> None:
            async with tcpgo.aio.TcpServer("\n", host=LOOPBACK) as srv:
                srv.on_message(lambda cid, d: srv.send(cid, d))
                port = await srv.start(0)

                async def one(i: int) -> bytes:
                    async with await tcpgo.aio.connect(LOOPBACK, port, "\n") as c:
                        return await c.request(f"c{i}", TIMEOUT)

                got = await asyncio.gather(*(one(i) for i in range(50)))
                self.assertEqual(got, [f"c{i}".encode() for i in range(50)])

        self.run_async(main())


if __name__ == "__main__":
    unittest.main()
