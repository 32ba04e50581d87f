"""send_file (with progress), sendv (one message of several buffers) and
send_line, on server connections and clients, plain and TLS."""

from __future__ import annotations

import os
import socket
import struct
import threading
import unittest
from typing import Any, List, Tuple

from _support import LOOPBACK, TIMEOUT, Collector, TestCase, certs, tempdir

import tcpgo

from test_framing import Peer, recv_exactly


def data_file(size: int) -> Tuple[str, bytes]:
    content = (bytes(range(256)) * (size // 256 + 1))[:size]
    path = os.path.join(tempdir(), f"data-{size}")
    with open(path, "wb") as f:
        f.write(content)
    return path, content


def serve_one(framing: Any = None, **kw: Any) -> Tuple[tcpgo.TcpServer, int, Any]:
    """A server and the connection object of its first client (via a raw socket)."""
    srv = tcpgo.TcpServer(framing=framing, host=LOOPBACK, **kw)
    conns = Collector()
    srv.on_established(conns.add)
    port = srv.start(0)
    return srv, port, conns


class SendFileTest(TestCase):
    def test_whole_file_with_progress(self) -> None:
        path, content = data_file(3 * 1024 * 1024 + 17)
        srv, port, conns = serve_one()
        progress = Collector()
        with srv, Peer(port) as s:
            conn = conns.wait_count(1)[0]
            t = conn.send_file(path, progress=lambda sent, total: progress.add((sent, total)))
            self.assertIsInstance(t, tcpgo.FileTransfer)
            self.assertEqual(t.total, len(content))
            self.assertEqual(recv_exactly(s, len(content)), content)
            self.assertEqual(t.result(TIMEOUT), len(content))
            self.assertTrue(t.done())
            self.assertIsNone(t.exception())
        steps = progress.wait_for(lambda items: items and items[-1][0] == len(content))
        self.assertGreaterEqual(len(steps), 2, steps)  # about every MiB, then the end
        self.assertEqual([b for _, b in steps], [len(content)] * len(steps))
        self.assertEqual(steps, sorted(steps))

    def test_offset_and_length_after_queued_messages(self) -> None:
        path, content = data_file(1000)
        srv, port, conns = serve_one()
        with srv, Peer(port) as s:
            conn = conns.wait_count(1)[0]
            conn.send(b"<")
            t = srv.send_file(conn, path, 10, 20)
            conn.send(b">")
            self.assertEqual(recv_exactly(s, 22), b"<" + content[10:30] + b">")
            self.assertEqual(t.result(TIMEOUT), 20)

    def test_length_prefix_in_front(self) -> None:
        path, content = data_file(300)
        srv, port, conns = serve_one(tcpgo.LengthPrefixed(2, "big"))
        with srv, Peer(port) as s:
            conn = conns.wait_count(1)[0]
            conn.send_file(path).result(TIMEOUT)
            self.assertEqual(recv_exactly(s, 302), struct.pack(">H", 300) + content)

    def test_refusals(self) -> None:
        path, _ = data_file(10)
        srv, port, conns = serve_one(tcpgo.Delimiter(b"\n"))
        with srv, Peer(port):
            conn = conns.wait_count(1)[0]
            with self.assertRaises(FileNotFoundError):
                conn.send_file(path + ".missing")
            with self.assertRaises(ValueError):  # past the end
                conn.send_file(path, 5, 6)
            with self.assertRaises(ValueError):  # a file may hold the delimiter
                conn.send_file(path)
            with self.assertRaises(tcpgo.SendError) as cm:
                srv.send_file(int(conn) + 1000, path)
            self.assertEqual(cm.exception.code, tcpgo.ErrorCode.NO_CLIENT)

    def test_progress_exception_is_logged(self) -> None:
        path, content = data_file(100)
        srv, port, conns = serve_one()

        def bad(sent: int, total: int) -> None:
            raise RuntimeError("progress failed")

        with srv, Peer(port) as s, self.assertLogs("tcpgo", "ERROR") as logs:
            conns.wait_count(1)[0].send_file(path, progress=bad).result(TIMEOUT)
            self.assertEqual(recv_exactly(s, 100), content)
        self.assertIn("progress", "\n".join(logs.output))

    def test_transfer_fails_when_the_connection_closes(self) -> None:
        path, _ = data_file(32 * 1024 * 1024)  # more than loopback buffers hold
        srv, port, conns = serve_one(linger=0)
        with srv, Peer(port) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            conn = conns.wait_count(1)[0]
            t = conn.send_file(path)
            conn.close()  # linger 0: what is queued is dropped
            err = t.exception(TIMEOUT)
            self.assertIsInstance(err, tcpgo.SendError)
            with self.assertRaises(tcpgo.SendError):
                t.result(0)

    def test_client_file_over_tls(self) -> None:
        path, content = data_file(2 * 1024 * 1024 + 5)
        c = certs()
        got = bytearray()
        done = threading.Event()

        srv = tcpgo.TlsServer(c.server_cert, c.server_key, host=LOOPBACK)

        @srv.on_message
        def take(conn: tcpgo.Connection, data: bytes) -> None:
            got.extend(data)
            if len(got) >= len(content):
                done.set()

        with srv:
            port = srv.start(0)
            with tcpgo.TlsClient(ca=c.ca) as cl:
                cl.connect(LOOPBACK, port)
                t = cl.send_file(path, progress=None)
                self.assertEqual(t.result(TIMEOUT), len(content))
                self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(bytes(got), content)


class SendvTest(TestCase):
    def test_server_sendv_is_one_framed_message(self) -> None:
        srv, port, conns = serve_one(tcpgo.LengthPrefixed(4, "big"))
        with srv, Peer(port) as s:
            conn = conns.wait_count(1)[0]
            conn.sendv([b"head:", bytearray(b"body"), memoryview(b"!"), "\u00e9"])
            self.assertEqual(recv_exactly(s, 16), b"\0\0\0\x0chead:body!\xc3\xa9")

    def test_client_sendv_and_delimiter_check(self) -> None:
        got = Collector()
        with tcpgo.TcpServer("\n", host=LOOPBACK, on_message=lambda c, d: got.add(d)) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as cl:
                cl.connect(LOOPBACK, port)
                cl.sendv([b"a", b"b", b"c"])
                cl.sendv([])
                with self.assertRaises(ValueError):
                    cl.sendv([b"a\n", b"b"])
                with self.assertRaises(TypeError):
                    cl.sendv(b"abc")  # type: ignore[arg-type]
                self.assertEqual(got.wait_count(2), [b"abc", b""])

    def test_order_with_batched_handler_sends(self) -> None:
        """Sends of a handler are batched; a sendv after them still comes after."""
        srv = tcpgo.TcpServer(framing=tcpgo.Lines(), host=LOOPBACK)

        @srv.on_message
        def reply(conn: tcpgo.Connection, data: bytes) -> None:
            conn.send(b"1")
            conn.sendv([b"2", b"2"])
            conn.send_line("3")
            conn.send(b"4")

        with srv:
            port = srv.start(0)
            with Peer(port) as s:
                s.sendall(b"go\n")
                self.assertEqual(recv_exactly(s, 13), b"1\r\n22\r\n3\r\n4\r\n")


class SendLineTest(TestCase):
    def test_stream_appends_crlf(self) -> None:
        srv, port, conns = serve_one()
        with srv, Peer(port) as s:
            conns.wait_count(1)[0].send_line("hello")
            self.assertEqual(recv_exactly(s, 7), b"hello\r\n")

    def test_framed_line_is_one_message(self) -> None:
        srv, port, conns = serve_one(tcpgo.Delimiter(b"\0"))
        with srv, Peer(port) as s:
            conn = conns.wait_count(1)[0]
            conn.send_line(b"a line")
            with self.assertRaises(ValueError):
                conn.send_line("nul\0")
            self.assertEqual(recv_exactly(s, 7), b"a line\0")

    def test_client_send_line(self) -> None:
        got = Collector()
        with tcpgo.TcpServer(framing=tcpgo.Lines(), host=LOOPBACK,
                             on_message=lambda c, d: got.add(d)) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient() as cl:  # a stream client: the line gets CRLF
                cl.connect(LOOPBACK, port)
                cl.send_line("one")
                cl.send_line(b"two")
                self.assertEqual(got.wait_count(2), [b"one", b"two"])


if __name__ == "__main__":
    unittest.main()
