"""Framings chosen at creation (tcpgo.LengthPrefixed, Delimiter, Lines, Records):
the bytes on the wire, parts of overlong lines, per-connection record length.
Peers are raw sockets, so each test checks the wire format, not only that
tcpgo agrees with itself."""

from __future__ import annotations

import socket
import struct
import threading
import unittest
from typing import Any, List

from _support import LOOPBACK, TIMEOUT, Collector, TestCase

import tcpgo


def recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise AssertionError(f"EOF after {buf!r}")
        buf += chunk
    return buf


def recv_until_eof(s: socket.socket) -> bytes:
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return buf
        buf += chunk


class Peer:
    """A raw socket connected to a server (closed on exit)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)

    def __enter__(self) -> socket.socket:
        return self.sock

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()


def echo(framing: tcpgo.Framing, got: Collector) -> tcpgo.TcpServer:
    srv = tcpgo.TcpServer(framing=framing, host=LOOPBACK)

    @srv.on_message
    def on_message(conn: tcpgo.Connection, data: bytes) -> None:
        got.add(data)
        conn.send(bytes(data))

    return srv


class FramingObjectsTest(unittest.TestCase):
    def test_arguments_checked(self) -> None:
        with self.assertRaises(ValueError):
            tcpgo.LengthPrefixed(size=3)
        with self.assertRaises(ValueError):
            tcpgo.LengthPrefixed(size=1, max_len=256)  # a 1-byte prefix counts to 255
        with self.assertRaises(ValueError):
            tcpgo.LengthPrefixed(byteorder="middle")
        with self.assertRaises(ValueError):
            tcpgo.Delimiter(b"")
        with self.assertRaises(ValueError):
            tcpgo.Delimiter(b"x" * 257)
        with self.assertRaises(ValueError):
            tcpgo.Lines(overlong="truncate")
        with self.assertRaises(ValueError):
            tcpgo.Lines(send_eol=b"\r\r")
        with self.assertRaises(ValueError):
            tcpgo.Records(10, max_len=5)
        with self.assertRaises(TypeError):
            tcpgo.TcpServer(framing=b"\n")  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            tcpgo.TcpServer("\n", framing=tcpgo.Lines())

    def test_values_and_tutorial_preset(self) -> None:
        t = tcpgo.LengthPrefixed.tutorial()
        self.assertEqual((t.size, t.byteorder), (4, "little"))
        self.assertEqual(t, tcpgo.LengthPrefixed(4, "little"))
        self.assertNotEqual(t, tcpgo.LengthPrefixed(4, "big"))
        self.assertEqual(t.encode(b"hi"), b"\x02\0\0\0hi")
        self.assertEqual(tcpgo.LengthPrefixed(1).effective_max_len, 255)
        self.assertEqual(tcpgo.Delimiter("\r\n").sequence, b"\r\n")
        self.assertIn("Lines", repr(tcpgo.Lines(10)))

    def test_framing_property(self) -> None:
        f = tcpgo.Delimiter(b"\r\n")
        with tcpgo.TcpServer(framing=f, host=LOOPBACK) as srv:
            self.assertIs(srv.framing, f)
            self.assertEqual(srv.delimiter, b"\r\n")
        with tcpgo.TcpClient(framing=tcpgo.Records(4)) as c:
            self.assertEqual(c.framing, tcpgo.Records(4))
            self.assertIsNone(c.delimiter)
        with tcpgo.TcpServer("\n") as srv:
            self.assertIsNone(srv.framing)


class LengthPrefixedTest(TestCase):
    def check_wire(self, framing: tcpgo.LengthPrefixed, fmt: str) -> None:
        got = Collector()
        with echo(framing, got) as srv:
            port = srv.start(0)
            with Peer(port) as s:
                # two messages in one write, the second split inside its prefix
                m1, m2 = b"hello", b"\0\r\n" * 80
                wire = struct.pack(fmt, len(m1)) + m1 + struct.pack(fmt, len(m2)) + m2
                size = struct.calcsize(fmt)
                cut = size + len(m1) + size // 2
                s.sendall(wire[:cut])
                got.wait_count(1)
                s.sendall(wire[cut:])
                self.assertEqual(got.wait_count(2), [m1, m2])
                # the replies carry the same prefix
                self.assertEqual(recv_exactly(s, len(wire)), wire)

    def test_big_endian_2(self) -> None:
        self.check_wire(tcpgo.LengthPrefixed(size=2, byteorder="big"), ">H")

    def test_little_endian_8(self) -> None:
        self.check_wire(tcpgo.LengthPrefixed(size=8, byteorder="little"), "<Q")

    def test_tutorial_is_4_bytes_little_endian(self) -> None:
        self.check_wire(tcpgo.LengthPrefixed.tutorial(), "<I")

    def test_one_byte(self) -> None:
        self.check_wire(tcpgo.LengthPrefixed(size=1), "B")

    def test_announced_length_over_max_closes_before_the_body(self) -> None:
        closed = Collector()
        srv = tcpgo.TcpServer(framing=tcpgo.LengthPrefixed(4, "big", max_len=100),
                              host=LOOPBACK, on_closed=lambda c, r: closed.add(r))
        with srv:
            port = srv.start(0)
            with Peer(port) as s:
                s.sendall(struct.pack(">I", 1 << 30))  # 1 GiB announced, nothing sent
                self.assertEqual(closed.wait_count(1), [tcpgo.CloseReason.MESSAGE_TOO_LONG])
                self.assertEqual(recv_until_eof(s), b"")

    def test_send_over_max_len_refused(self) -> None:
        with tcpgo.TcpServer(framing=tcpgo.LengthPrefixed(1), host=LOOPBACK) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient(framing=tcpgo.LengthPrefixed(1)) as c:
                c.connect(LOOPBACK, port)
                with self.assertRaises(ValueError):  # as for a one-byte delimiter
                    c.send(b"x" * 256)
                c.send(b"x" * 255)

    def test_client_and_server_agree(self) -> None:
        got = Collector()
        f = tcpgo.LengthPrefixed(4, "big")
        with echo(f, got) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient(framing=f) as c:
                c.connect(LOOPBACK, port)
                msgs = [b"", b"\n", bytes(range(256)) * 40]
                for m in msgs:
                    c.send(m)
                self.assertEqual([c.recv(TIMEOUT) for _ in msgs], msgs)


class DelimiterTest(TestCase):
    def test_multi_byte_delimiter_with_nul(self) -> None:
        got = Collector()
        with echo(tcpgo.Delimiter(b"\r\n\0"), got) as srv:
            port = srv.start(0)
            with Peer(port) as s:
                # a lone \r\n is no end; the end split across writes
                s.sendall(b"a\r\nb\r\n")
                s.sendall(b"\0c\r")
                s.sendall(b"\n\0")
                self.assertEqual(got.wait_count(2), [b"a\r\nb", b"c"])
                self.assertEqual(recv_exactly(s, 11), b"a\r\nb\r\n\0c\r\n\0")

    def test_message_holding_the_delimiter_refused(self) -> None:
        with tcpgo.TcpServer(framing=tcpgo.Delimiter("||"), host=LOOPBACK) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient(framing=tcpgo.Delimiter("||")) as c:
                c.connect(LOOPBACK, port)
                with self.assertRaises(ValueError):
                    c.send(b"a||b")
                with self.assertRaises(ValueError):
                    c.send(b"ab|")  # "ab|" + "||" reads as "ab" then "|"

    def test_handler_send_checked_at_once(self) -> None:
        """A send from a handler is batched; a message the framing cannot
        carry still raises there (ValueError), instead of failing later."""
        errors = Collector()
        srv = tcpgo.TcpServer(framing=tcpgo.Delimiter(b"\r\n"), host=LOOPBACK)

        @srv.on_message
        def bad(conn: tcpgo.Connection, data: bytes) -> None:
            try:
                conn.send(b"x\r\ny")
            except ValueError as e:
                errors.add(e)
            conn.send(b"ok")

        with srv:
            port = srv.start(0)
            with Peer(port) as s:
                s.sendall(b"go\r\n")
                self.assertEqual(recv_exactly(s, 4), b"ok\r\n")
        self.assertEqual(len(errors.wait_count(1)), 1)

    def test_overlong_split_into_parts(self) -> None:
        got = Collector()
        srv = tcpgo.TcpServer(framing=tcpgo.Delimiter(b"\n", max_len=4, overlong="split"),
                              host=LOOPBACK)
        srv.on_message(lambda conn, data: got.add((type(data), bytes(data))))
        with srv:
            port = srv.start(0)
            with Peer(port) as s:
                s.sendall(b"0123456789\nab\n")
                items = got.wait_count(4)
        self.assertEqual(items, [(tcpgo.MessagePart, b"0123"), (tcpgo.MessagePart, b"4567"),
                                 (bytes, b"89"), (bytes, b"ab")])
        self.assertTrue(tcpgo.MessagePart(b"x").partial)

    def test_overlong_close(self) -> None:
        closed = Collector()
        srv = tcpgo.TcpServer(framing=tcpgo.Delimiter(b"\n", max_len=4), host=LOOPBACK,
                              on_closed=lambda c, r: closed.add(r))
        with srv:
            port = srv.start(0)
            with Peer(port) as s:
                s.sendall(b"0123456789\n")
                self.assertEqual(closed.wait_count(1), [tcpgo.CloseReason.MESSAGE_TOO_LONG])


class LinesTest(TestCase):
    def test_cr_lf_and_crlf_end_lines(self) -> None:
        got = Collector()
        with echo(tcpgo.Lines(), got) as srv:
            port = srv.start(0)
            with Peer(port) as s:
                s.sendall(b"a\rb\nc\r")
                s.sendall(b"\nd\r\n")  # a CRLF split between reads is one end
                self.assertEqual(got.wait_count(4), [b"a", b"b", b"c", b"d"])
                self.assertEqual(recv_exactly(s, 12), b"a\r\nb\r\nc\r\nd\r\n")

    def test_send_eol_lf(self) -> None:
        with tcpgo.TcpServer(framing=tcpgo.Lines(send_eol="\n"), host=LOOPBACK) as srv:
            srv.on_established(lambda conn: conn.send("hello"))
            port = srv.start(0)
            with Peer(port) as s:
                self.assertEqual(recv_exactly(s, 6), b"hello\n")

    def test_client_overlong_parts_reach_recv(self) -> None:
        """recv() returns the parts too, marked as MessagePart."""
        with tcpgo.TcpServer(host=LOOPBACK) as srv:  # a raw stream server
            srv.on_established(lambda conn: conn.send(b"abcdefgh\r\nxy\n"))
            port = srv.start(0)
            with tcpgo.TcpClient(framing=tcpgo.Lines(3, overlong="split")) as c:
                got: List[bytes] = []
                c.connect(LOOPBACK, port)
                while len(got) < 4:
                    got.append(c.recv(TIMEOUT))
        self.assertEqual([bytes(g) for g in got], [b"abc", b"def", b"gh", b"xy"])
        self.assertEqual([isinstance(g, tcpgo.MessagePart) for g in got],
                         [True, True, False, False])

    def test_client_overlong_parts_reach_a_waiting_recv(self) -> None:
        """The parts keep their mark when they arrive while recv() waits
        (recv then polls on the caller's thread)."""
        with tcpgo.TcpServer(framing=tcpgo.Lines(), host=LOOPBACK) as srv:
            srv.on_message(lambda conn, line: conn.send(line.upper()))
            port = srv.start(0)
            with tcpgo.TcpClient(framing=tcpgo.Lines(4, overlong="split")) as c:
                c.connect(LOOPBACK, port)
                for _ in range(10):
                    c.send_line("abcdefgh!")
                    got = [c.recv(TIMEOUT) for _ in range(3)]
                    self.assertEqual([(bytes(g), isinstance(g, tcpgo.MessagePart)) for g in got],
                                     [(b"ABCD", True), (b"EFGH", True), (b"!", False)])

    def test_line_with_cr_refused(self) -> None:
        with tcpgo.TcpServer(framing=tcpgo.Lines(), host=LOOPBACK) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient(framing=tcpgo.Lines()) as c:
                c.connect(LOOPBACK, port)
                with self.assertRaises(ValueError):
                    c.send(b"a\rb")
                with self.assertRaises(ValueError):
                    c.send_line("a\nb")


class RecordsTest(TestCase):
    def test_fixed_records_and_unframed_sends(self) -> None:
        got = Collector()
        with echo(tcpgo.Records(3), got) as srv:
            port = srv.start(0)
            with Peer(port) as s:
                s.sendall(b"abcd")
                s.sendall(b"ef")
                self.assertEqual(got.wait_count(2), [b"abc", b"def"])
                self.assertEqual(recv_exactly(s, 6), b"abcdef")  # sent as given

    def test_record_length_changed_per_connection(self) -> None:
        """The first record (4 bytes) says how long the next ones are; the
        handler changes the length before answering, so the peer's next
        bytes are cut with it. A second connection keeps the default."""
        got = Collector()
        srv = tcpgo.TcpServer(framing=tcpgo.Records(4), host=LOOPBACK)

        @srv.on_message
        def on_message(conn: tcpgo.Connection, data: bytes) -> None:
            got.add((int(conn), data))
            if conn.data is None:
                conn.data = True
                conn.set_record_length(int(data))
                conn.send(b"K")

        with srv:
            port = srv.start(0)
            with Peer(port) as s1, Peer(port) as s2:
                s1.sendall(b"0002")
                self.assertEqual(recv_exactly(s1, 1), b"K")
                s1.sendall(b"abcdef")
                s2.sendall(b"0003")
                self.assertEqual(recv_exactly(s2, 1), b"K")
                s2.sendall(b"xyzxyz")
                items = got.wait_count(7)
        by: dict = {}
        for cid, data in items:
            by.setdefault(cid, []).append(data)
        self.assertEqual(sorted(by.values()), [[b"0002", b"ab", b"cd", b"ef"],
                                               [b"0003", b"xyz", b"xyz"]])

    def test_set_record_length_errors(self) -> None:
        with tcpgo.TcpServer("\n", host=LOOPBACK) as srv:
            ready = threading.Event()
            srv.on_established(lambda conn: ready.set())
            port = srv.start(0)
            with Peer(port):
                self.assertTrue(ready.wait(TIMEOUT))
                cid = srv.clients[0]
                with self.assertRaises(ValueError):  # not a records framing
                    srv.set_record_length(cid, 4)
                with self.assertRaises(tcpgo.NoClientError):
                    srv.set_record_length(cid + 1000, 4)

    def test_client_record_length(self) -> None:
        with tcpgo.TcpServer(host=LOOPBACK) as srv:
            srv.on_message(lambda conn, data: conn.send(b"12" if data == b"1" else b"123456789"))
            port = srv.start(0)
            with tcpgo.TcpClient(framing=tcpgo.Records(2)) as c:
                c.connect(LOOPBACK, port)
                c.send(b"1")
                self.assertEqual(c.recv(TIMEOUT), b"12")
                c.set_record_length(3)
                c.send(b"2")
                self.assertEqual([c.recv(TIMEOUT) for _ in range(3)], [b"123", b"456", b"789"])
                with self.assertRaises(ValueError):
                    c.set_record_length(-1)


if __name__ == "__main__":
    unittest.main()
