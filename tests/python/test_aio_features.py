"""tcpgo.aio with the framings, sending and TLS features of issue 11, where
asyncio differs: parts of overlong lines reach async handlers and recv(),
a file transfer is awaitable and reports its progress on the loop, STARTTLS
is awaited, certificate callbacks must be plain functions."""

from __future__ import annotations

import asyncio
import os
import threading
import unittest
from typing import Any, List, Tuple

from _support import LOOPBACK, TIMEOUT, TestCase, tempdir

import tcpgo
import tcpgo.aio


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT * 3))


class AioFramingTest(TestCase):
    def test_parts_reach_async_handlers_and_recv(self) -> None:
        async def main() -> Tuple[List[Any], List[Any]]:
            got: List[Any] = []
            framing = tcpgo.Lines(4, overlong="split")
            async with tcpgo.aio.TcpServer(framing=framing, host=LOOPBACK) as srv:
                @srv.on_message
                async def echo(conn: tcpgo.aio.Connection, data: bytes) -> None:
                    got.append((type(data), bytes(data)))
                    await asyncio.sleep(0)
                    await conn.send(bytes(data))

                port = await srv.start(0)
                self.assertEqual(srv.framing, framing)
                async with await tcpgo.aio.connect(LOOPBACK, port, framing=framing) as cl:
                    cl.send_line("abcdefghij")
                    back = [await cl.recv(TIMEOUT) for _ in range(3)]
            return got, [(type(b), bytes(b)) for b in back]

        got, back = run(main())
        expect = [(tcpgo.MessagePart, b"abcd"), (tcpgo.MessagePart, b"efgh"), (bytes, b"ij")]
        self.assertEqual(got, expect)
        self.assertEqual(back, [(bytes, b"abcd"), (bytes, b"efgh"), (bytes, b"ij")])

    def test_client_recv_gets_parts(self) -> None:
        async def main() -> List[Any]:
            async with tcpgo.aio.TcpServer(host=LOOPBACK) as srv:
                srv.on_established(lambda conn: conn.send_nowait(b"0123456789\n"))
                port = await srv.start(0)
                async with await tcpgo.aio.connect(
                        LOOPBACK, port, framing=tcpgo.Delimiter(b"\n", 6, overlong="split")) as cl:
                    return [await cl.recv(TIMEOUT) for _ in range(2)]

        parts = run(main())
        self.assertEqual([(type(p), bytes(p)) for p in parts],
                         [(tcpgo.MessagePart, b"012345"), (bytes, b"6789")])

    def test_records_and_sendv(self) -> None:
        async def main() -> List[bytes]:
            async with tcpgo.aio.TcpServer(framing=tcpgo.Records(2), host=LOOPBACK) as srv:
                got: List[bytes] = []
                done = asyncio.Event()

                @srv.on_message
                def rec(conn: tcpgo.aio.Connection, data: bytes) -> None:
                    got.append(data)
                    if len(got) == 1:
                        conn.set_record_length(3)
                        conn.send_nowait(b"K")
                    elif len(got) == 3:
                        done.set()

                port = await srv.start(0)
                async with await tcpgo.aio.connect(LOOPBACK, port) as cl:
                    cl.sendv([b"a", b"b"])
                    self.assertEqual(await cl.recv(TIMEOUT), b"K")
                    cl.sendv([b"cde", b"fgh"])
                    await done.wait()
                return got

        self.assertEqual(run(main()), [b"ab", b"cde", b"fgh"])


class AioSendFileTest(TestCase):
    def test_await_transfer_progress_on_the_loop(self) -> None:
        path = os.path.join(tempdir(), "aio-file")
        content = os.urandom(2 * 1024 * 1024 + 3)
        with open(path, "wb") as f:
            f.write(content)

        async def main() -> Tuple[int, List[Tuple[int, int, bool]], bytes]:
            loop_thread = threading.get_ident()
            steps: List[Tuple[int, int, bool]] = []
            async with tcpgo.aio.TcpServer(framing=tcpgo.LengthPrefixed(4), host=LOOPBACK) as srv:
                srv.on_message(lambda conn, data: conn.send_nowait(b"%d" % len(data)))
                port = await srv.start(0)
                async with await tcpgo.aio.connect(LOOPBACK, port,
                                                   framing=tcpgo.LengthPrefixed(4)) as cl:
                    t = cl.send_file(path, progress=lambda s, n: steps.append(
                        (s, n, threading.get_ident() == loop_thread)))
                    sent = await t
                    reply = await cl.recv(TIMEOUT)
                    await asyncio.sleep(0)  # the last progress call is scheduled on the loop
            return sent, steps, reply

        sent, steps, reply = run(main())
        self.assertEqual(sent, len(content))
        self.assertEqual(reply, str(len(content)).encode())
        self.assertEqual(steps[-1], (len(content), len(content), True))
        self.assertTrue(all(on_loop for _, _, on_loop in steps))


class AioTlsTest(TestCase):
    def test_self_signed_cert_callback_and_info(self) -> None:
        async def main() -> Tuple[Any, Any, List[Any]]:
            seen: List[Any] = []
            async with tcpgo.aio.TlsServer(framing=tcpgo.Lines(), host=LOOPBACK,
                                           alpn=["x-aio"]) as srv:
                srv.on_message(lambda conn, data: conn.send_nowait(data))
                infos: List[Any] = []
                srv.on_established(lambda conn: infos.append(conn.tls_info()))
                port = await srv.start(0)
                pem = srv.certificate_pem

                def pin(info: tcpgo.CertInfo) -> bool:
                    seen.append(info)
                    return info.pem == pem

                async with await tcpgo.aio.connect(LOOPBACK, port, framing=tcpgo.Lines(),
                                                   tls=True, on_cert=pin, alpn="x-aio") as cl:
                    self.assertEqual(await cl.request("tls", TIMEOUT), b"tls")
                    info = cl.tls_info()
                with self.assertRaises(TypeError):
                    async def coro(info: tcpgo.CertInfo) -> bool:
                        return True
                    srv.on_cert(coro)
            return info, infos[0], seen

        info, server_info, seen = run(main())
        self.assertEqual(info.alpn, "x-aio")
        self.assertEqual(server_info.alpn, "x-aio")
        self.assertEqual(seen[0].result, tcpgo.CertResult.UNKNOWN_CA)  # system CAs do not know it

    def test_starttls_awaited(self) -> None:
        async def main() -> Tuple[bytes, Any]:
            async with tcpgo.aio.TcpServer(framing=tcpgo.Lines(), host=LOOPBACK) as srv:
                srv.set_starttls()

                @srv.on_message
                async def dialogue(conn: tcpgo.aio.Connection, data: bytes) -> None:
                    if data == b"STARTTLS":
                        conn.starttls("OK")
                    else:
                        await conn.send(b"echo " + data)

                port = await srv.start(0)
                async with await tcpgo.aio.connect(LOOPBACK, port, framing=tcpgo.Lines()) as cl:
                    self.assertEqual(await cl.request("STARTTLS", TIMEOUT), b"OK")
                    await cl.starttls(ca=srv.certificate_pem)
                    reply = await cl.request("hi", TIMEOUT)
                    return reply, cl.tls_info()

        reply, info = run(main())
        self.assertEqual(reply, b"echo hi")
        self.assertTrue(info.upgraded)


if __name__ == "__main__":
    unittest.main()
