"""Batch handlers: on_messages(conn, messages) / on_messages(messages) and
send_many, sync and tcpgo.aio, servers and clients."""

from __future__ import annotations

import asyncio
import socket
import threading
import unittest
from typing import Any, List

from _support import LOOPBACK, TIMEOUT, Collector, TestCase

import tcpgo
import tcpgo.aio

N = 3000  # messages per test: many batches, most with several messages


def payloads(n: int = N, tag: str = "") -> List[bytes]:
    # varied lengths (0..199 bytes) so that the length fields differ
    return [(f"{tag}{i}:" + "x" * (i % 190)).encode() for i in range(n)]


def read_lines(sock: socket.socket, n: int) -> List[bytes]:
    buf = b""
    sock.settimeout(TIMEOUT)
    while buf.count(b"\n") < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n")[:n]


class SyncServerBatchTest(TestCase):
    def start(self, **kw: Any) -> tcpgo.TcpServer:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK, **kw)
        self.addCleanup(srv.close)
        return srv

    def test_echo_exact_bytes_and_order(self) -> None:
        srv = self.start()
        sizes = Collector()

        @srv.on_messages
        def echo(conn: tcpgo.Connection, messages: List[bytes]) -> None:
            self.assertIsInstance(conn, tcpgo.Connection)
            self.assertIsInstance(messages, list)
            sizes.add(len(messages))
            conn.send_many(messages)

        port = srv.start(0)
        sent = payloads()
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as s:
            s.sendall(b"".join(m + b"\n" for m in sent))
            self.assertEqual(read_lines(s, N), sent)
        got = sizes.snapshot()
        self.assertEqual(sum(got), N)
        self.assertGreater(max(got), 1)  # batches did hold several messages
        self.assertNotIn(0, got)

    def test_many_connections_keep_their_order(self) -> None:
        srv = self.start()
        seen = Collector()

        @srv.on_messages
        def echo(conn: tcpgo.Connection, messages: List[bytes]) -> None:
            seen.add(int(conn))
            srv.send_many(conn, messages)  # the server's form, with the id

        port = srv.start(0)
        socks = [socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) for _ in range(5)]
        try:
            data = [payloads(500, tag=f"c{k}-") for k in range(5)]
            for s, d in zip(socks, data):
                s.sendall(b"".join(m + b"\n" for m in d))
            for s, d in zip(socks, data):
                self.assertEqual(read_lines(s, len(d)), d)
            self.assertEqual(len(set(seen.snapshot())), 5)  # every connection had its own batches
        finally:
            for s in socks:
                s.close()

    def test_messages_are_bytes_and_may_be_kept(self) -> None:
        srv = self.start()
        kept: List[bytes] = []
        done = threading.Event()

        @srv.on_messages
        def keep(conn: tcpgo.Connection, messages: List[bytes]) -> None:
            for m in messages:
                self.assertIs(type(m), bytes)
            kept.extend(messages)  # no copy needed: they stay valid
            if len(kept) >= N:
                done.set()

        port = srv.start(0)
        sent = payloads()
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as s:
            s.sendall(b"".join(m + b"\n" for m in sent))
            self.wait_event(done, "all messages")
        self.assertEqual(kept, sent)

    def test_send_many_mixed_types_and_checks(self) -> None:
        srv = self.start()
        ready = threading.Event()
        srv.on_established(lambda conn: ready.set())
        port = srv.start(0)
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as s:
            self.wait_event(ready, "connection")
            cid = srv.clients[0]
            srv.send_many(cid, ["text é", b"bytes", bytearray(b"ba"), memoryview(b"view"), b""])
            srv.send_many(cid, iter([b"gen1", b"gen2"]))
            srv.send_many(cid, [])
            with self.assertRaises(ValueError):
                srv.send_many(cid, [b"ok", b"bad\nline"])  # nothing of it queued
            with self.assertRaises(TypeError):
                srv.send_many(cid, [b"ok", 42])  # type: ignore[list-item]
            srv.connection(cid).send_many([b"last"])
            self.assertEqual(read_lines(s, 8), ["text é".encode(), b"bytes", b"ba", b"view", b"",
                                                b"gen1", b"gen2", b"last"])
        with self.assertRaises(tcpgo.SendError):
            srv.send_many(99999, [b"nobody"])

    def test_max_len_checked(self) -> None:
        srv = tcpgo.TcpServer("\n", 8, host=LOOPBACK)
        self.addCleanup(srv.close)
        srv.start(0)
        with self.assertRaises(ValueError):
            srv.send_many(1, [b"short", b"much too long"])

    def test_closed_comes_after_the_messages(self) -> None:
        srv = self.start()
        events = Collector()
        srv.on_messages(lambda conn, msgs: events.add(("msgs", list(msgs))))
        srv.on_closed(lambda conn: events.add(("closed", int(conn))))
        port = srv.start(0)
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as s:
            s.sendall(b"a\nb\nc\n")
        got = events.wait_for(lambda items: any(e[0] == "closed" for e in items))
        self.assertEqual(got[-1][0], "closed")
        self.assertEqual([m for kind, ms in got[:-1] for m in ms], [b"a", b"b", b"c"])

    def test_overlong_parts_are_flagged(self) -> None:
        srv = tcpgo.TcpServer(framing=tcpgo.Delimiter(b"\n", max_len=4, overlong="split"),
                              host=LOOPBACK)
        self.addCleanup(srv.close)
        got = Collector()

        @srv.on_messages
        def parts(conn: tcpgo.Connection, messages: List[bytes]) -> None:
            for m in messages:
                got.add((type(m), bytes(m)))

        port = srv.start(0)
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as s:
            s.sendall(b"0123456789\nab\n")
            items = got.wait_count(4)
        self.assertEqual(items, [(tcpgo.MessagePart, b"0123"), (tcpgo.MessagePart, b"4567"),
                                 (bytes, b"89"), (bytes, b"ab")])

    def test_handler_exception_goes_to_on_error(self) -> None:
        srv = self.start()
        errors = Collector()
        srv.on_error(lambda conn, err: errors.add(type(err)))

        @srv.on_messages
        def boom(conn: tcpgo.Connection, messages: List[bytes]) -> None:
            raise RuntimeError("boom")

        port = srv.start(0)
        with self.assertLogs("tcpgo", "ERROR"):
            with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as s:
                s.sendall(b"x\n")
                self.assertEqual(errors.wait_count(1)[0], RuntimeError)

    def test_stop_from_inside_the_handler(self) -> None:
        srv = self.start()

        @srv.on_messages
        def stop(conn: tcpgo.Connection, messages: List[bytes]) -> None:
            conn.send_many(messages)
            srv.stop()

        port = srv.start(0)
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as s:
            s.sendall(b"bye\n")
            self.assertTrue(srv.wait(TIMEOUT))
        self.assertFalse(srv.running)

    def test_per_message_handler_unchanged_and_unregister(self) -> None:
        srv = self.start()
        got = Collector()
        srv.on_message(lambda conn, m: got.add(("one", m)))
        srv.on_messages(lambda conn, ms: got.add(("many", list(ms))))
        srv.on_messages(None)  # back to on_message
        port = srv.start(0)
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as s:
            s.sendall(b"a\nb\n")
            self.assertEqual(got.wait_count(2), [("one", b"a"), ("one", b"b")])


    def test_batch_handler_set_by_another_handler(self) -> None:
        # on_established switches to batches: the messages of the same poll
        # that come after it already go to on_messages, in order.
        srv = self.start()
        got = Collector()

        def batched(conn: tcpgo.Connection, messages: List[bytes]) -> None:
            for m in messages:
                got.add(m)

        srv.on_message(lambda conn, m: got.add(("one", m)))
        srv.on_established(lambda conn: srv.on_messages(batched))
        port = srv.start(0)
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as s:
            s.sendall(b"".join(m + b"\n" for m in payloads(200)))
            self.assertEqual(got.wait_count(200), payloads(200))


    def test_constructor_keywords(self) -> None:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK,
                              on_messages=lambda conn, msgs: conn.send_many(msgs))
        self.addCleanup(srv.close)
        port = srv.start(0)
        got = Collector()
        cli = tcpgo.TcpClient("\n", on_messages=lambda msgs: [got.add(m) for m in msgs])
        self.addCleanup(cli.close)
        cli.connect(LOOPBACK, port)
        cli.send_many([b"k1", b"k2"])
        self.assertEqual(got.wait_count(2), [b"k1", b"k2"])


class SyncClientBatchTest(TestCase):
    def test_client_on_messages_and_send_many(self) -> None:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK)
        self.addCleanup(srv.close)
        srv.on_messages(lambda conn, msgs: conn.send_many(msgs))
        port = srv.start(0)
        got: List[bytes] = []
        done = threading.Event()
        cli = tcpgo.TcpClient("\n")
        self.addCleanup(cli.close)

        @cli.on_messages
        def take(messages: List[bytes]) -> None:
            got.extend(messages)
            if len(got) >= N:
                done.set()

        cli.connect(LOOPBACK, port)
        sent = payloads()
        cli.send_many(sent)
        self.wait_event(done, "echoes")
        self.assertEqual(got, sent)
        with self.assertRaises(ValueError):
            cli.send_many([b"fine", b"not\nfine"])

    def test_client_send_many_refused(self) -> None:
        cli = tcpgo.TcpClient("\n")
        self.addCleanup(cli.close)
        with self.assertRaises(tcpgo.Error):
            cli.send_many([b"never connected"])
        cli.send_many([])  # nothing to do

    def test_client_send_many_large_batch(self) -> None:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK)
        self.addCleanup(srv.close)
        got = Collector()
        srv.on_messages(lambda conn, msgs: [got.add(m) for m in msgs])
        port = srv.start(0)
        cli = tcpgo.TcpClient("\n")
        self.addCleanup(cli.close)
        cli.connect(LOOPBACK, port)
        big = [b"y" * 70000, b"", "z" * 5] + payloads(2000)
        cli.send_many(big)
        self.assertEqual(got.wait_count(len(big)), [tcpgo._core.as_bytes(m) for m in big])

    def test_client_closed_after_messages_and_stop_in_handler(self) -> None:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK)
        self.addCleanup(srv.close)

        @srv.on_messages
        def reply_and_close(conn: tcpgo.Connection, msgs: List[bytes]) -> None:
            conn.send_many([b"r1", b"r2"])
            conn.close()

        port = srv.start(0)
        events = Collector()
        cli = tcpgo.TcpClient("\n")
        self.addCleanup(cli.close)
        cli.on_messages(lambda msgs: events.add(("msgs", list(msgs))))
        cli.on_closed(lambda: events.add(("closed",)))
        cli.connect(LOOPBACK, port)
        cli.send(b"go")
        got = events.wait_for(lambda items: ("closed",) in items)
        self.assertEqual(got[-1], ("closed",))
        self.assertEqual([m for e in got[:-1] for m in e[1]], [b"r1", b"r2"])

        # stop() from inside the client's batch handler
        srv2 = tcpgo.TcpServer("\n", host=LOOPBACK)
        self.addCleanup(srv2.close)
        srv2.on_messages(lambda conn, msgs: conn.send_many(msgs))
        port2 = srv2.start(0)
        cli2 = tcpgo.TcpClient("\n")
        self.addCleanup(cli2.close)
        stopped = threading.Event()

        @cli2.on_messages
        def stop(msgs: List[bytes]) -> None:
            cli2.stop()
            stopped.set()

        cli2.connect(LOOPBACK, port2)
        cli2.send(b"x")
        self.wait_event(stopped, "stop in handler")
        self.assertTrue(cli2.wait_closed(TIMEOUT))


class AioBatchTest(TestCase):
    def run_async(self, coro: Any) -> Any:
        return asyncio.run(asyncio.wait_for(coro, 60))

    def test_aio_server_and_client(self) -> None:
        async def main() -> None:
            loop_thread = threading.get_ident()
            async with tcpgo.aio.TcpServer("\n", host=LOOPBACK) as srv:
                calls: List[int] = []

                @srv.on_messages
                def echo(conn: tcpgo.aio.Connection, messages: List[bytes]) -> None:
                    self.assertEqual(threading.get_ident(), loop_thread)
                    calls.append(len(messages))
                    conn.send_many_nowait(messages)

                port = await srv.start(0)
                async with await tcpgo.aio.connect(LOOPBACK, port, "\n") as c:
                    got: List[bytes] = []
                    done = asyncio.Event()

                    @c.on_messages
                    async def take(messages: List[bytes]) -> None:
                        await asyncio.sleep(0)
                        got.extend(messages)
                        if len(got) >= N:
                            done.set()

                    sent = payloads()
                    c.send_many_nowait(sent[:N // 2])
                    await c.send_many(sent[N // 2:])
                    await asyncio.wait_for(done.wait(), TIMEOUT)
                    self.assertEqual(got, sent)
                self.assertEqual(sum(calls), N)

        self.run_async(main())

    def test_aio_constructor_keywords(self) -> None:
        async def main() -> None:
            async with tcpgo.aio.TcpServer(
                    "\n", host=LOOPBACK,
                    on_messages=lambda conn, msgs: conn.send_many_nowait(msgs)) as srv:
                port = await srv.start(0)
                got: List[bytes] = []
                done = asyncio.Event()

                def take(msgs: List[bytes]) -> None:
                    got.extend(msgs)
                    if len(got) >= 2:
                        done.set()

                async with await tcpgo.aio.connect(LOOPBACK, port, "\n", on_messages=take) as c:
                    await c.send_many([b"k1", b"k2"])
                    await asyncio.wait_for(done.wait(), TIMEOUT)
                    self.assertEqual(got, [b"k1", b"k2"])

        self.run_async(main())

    def test_aio_async_batch_handler_in_order_and_stop(self) -> None:
        async def main() -> None:
            async with tcpgo.aio.TcpServer("\n", host=LOOPBACK) as srv:
                closed = asyncio.Event()

                @srv.on_messages
                async def echo(conn: tcpgo.aio.Connection, messages: List[bytes]) -> None:
                    await asyncio.sleep(0)  # later batches wait for this one
                    await conn.send_many(messages)
                    if b"stop" in messages:
                        await srv.stop()

                srv.on_closed(lambda conn: closed.set())
                port = await srv.start(0)
                reader, writer = await asyncio.open_connection(LOOPBACK, port)
                sent = payloads(1000)
                writer.write(b"".join(m + b"\n" for m in sent))
                got = [(await reader.readline())[:-1] for _ in sent]
                self.assertEqual(got, sent)
                writer.write(b"stop\n")
                self.assertEqual(await reader.readline(), b"stop\n")
                await asyncio.wait_for(closed.wait(), TIMEOUT)
                self.assertFalse(srv.running)
                writer.close()

        self.run_async(main())

    def test_aio_server_send_many_and_overlong(self) -> None:
        async def main() -> None:
            framing = tcpgo.Lines(4, overlong="split")
            async with tcpgo.aio.TcpServer(framing=framing, host=LOOPBACK) as srv:
                got: List[Any] = []
                done = asyncio.Event()

                @srv.on_messages
                def parts(conn: tcpgo.aio.Connection, messages: List[bytes]) -> None:
                    got.extend((type(m), m) for m in messages)
                    srv.send_many(conn, [b"ok"])
                    if len(got) >= 3:
                        done.set()

                port = await srv.start(0)
                reader, writer = await asyncio.open_connection(LOOPBACK, port)
                writer.write(b"abcdefghij\n")
                await asyncio.wait_for(done.wait(), TIMEOUT)
                self.assertEqual(got, [(tcpgo.MessagePart, b"abcd"), (tcpgo.MessagePart, b"efgh"),
                                       (bytes, b"ij")])
                self.assertTrue((await reader.readline()).startswith(b"ok"))
                writer.close()

        self.run_async(main())


if __name__ == "__main__":
    unittest.main()
