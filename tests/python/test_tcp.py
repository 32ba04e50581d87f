"""Plain TCP in both modes: servers, clients, handlers, options."""

from __future__ import annotations

import threading
import unittest

from _support import LOOPBACK, TIMEOUT, Collector, TestCase, echo_server, free_port

import tcpgo


class FragmentedModeTest(TestCase):
    def test_echo_bytes_and_str(self) -> None:
        with echo_server("\n") as srv:
            port = srv.start(0)
            self.assertGreater(port, 0)
            self.assertEqual(srv.port, port)
            self.assertTrue(srv.running)
            with tcpgo.TcpClient("\n") as c:
                self.assertIs(c.connect(LOOPBACK, port), c)
                c.send(b"bytes")
                c.send("str \u00e9")  # UTF-8
                c.send(bytearray(b"ba"))
                c.send(memoryview(b"mv"))
                c.send(b"")  # an empty message is a message
                got = [c.recv(TIMEOUT) for _ in range(5)]
        self.assertEqual(got, [b"bytes", "str \u00e9".encode(), b"ba", b"mv", b""])

    def test_order_and_many_messages(self) -> None:
        with echo_server("\n") as srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                msgs = [f"message {i}".encode() for i in range(5000)]
                for m in msgs:
                    c.send(m)
                got = [c.recv(TIMEOUT) for _ in msgs]
        self.assertEqual(got, msgs)

    def test_nul_delimiter_and_binary_payload(self) -> None:
        with echo_server(b"\0") as srv:
            port = srv.start(0)
            with tcpgo.TcpClient(0) as c:
                c.connect(LOOPBACK, port)
                payload = bytes(range(1, 256))
                c.send(payload)
                self.assertEqual(c.recv(TIMEOUT), payload)
                with self.assertRaises(ValueError):
                    c.send(b"a\0b")  # holds the delimiter

    def test_large_message(self) -> None:
        with echo_server("\n", max_len=4 << 20) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n", max_len=4 << 20) as c:
                c.connect(LOOPBACK, port)
                big = b"x" * (3 << 20)
                c.send(big)
                self.assertEqual(c.recv(TIMEOUT), big)

    def test_message_too_long_disconnects_that_client_only(self) -> None:
        errors, closed = Collector(), Collector()
        srv = echo_server("\n", max_len=16, on_error=lambda cid, e: errors.add((cid, e)),
                          on_closed=closed)
        with srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as bad, tcpgo.TcpClient("\n") as good:
                bad.connect(LOOPBACK, port)
                good.connect(LOOPBACK, port)
                bad.send(b"y" * 100)
                items = errors.wait_count(1)
                cid, err = items[0]
                self.assertIsInstance(err, tcpgo.PeerError)
                self.assertEqual(err.code, tcpgo.ErrorCode.MESSAGE_TOO_LONG)
                self.assertEqual(err.client_id, cid)
                closed.wait_for(lambda x: cid in x)
                self.assertTrue(bad.wait_closed(TIMEOUT))
                with self.assertRaises(tcpgo.ConnectionClosedError):
                    bad.recv(TIMEOUT)
                good.send(b"short")
                self.assertEqual(good.recv(TIMEOUT), b"short")
                with self.assertRaises(ValueError):  # longer than the server's max_len
                    srv.send(srv.clients[0], b"z" * 17)

    def test_recv_timeout(self) -> None:
        with tcpgo.TcpServer("\n", host=LOOPBACK) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                with self.assertRaises(TimeoutError):
                    c.recv(timeout=0.05)

    def test_iterate_client_until_closed(self) -> None:
        est = threading.Event()
        ids = []

        def on_est(cid: int) -> None:
            ids.append(cid)
            est.set()

        srv = tcpgo.TcpServer("\n", host=LOOPBACK, on_established=on_est)
        srv.on_message(lambda cid, data: srv.close_client(cid) if data == b"ack" else None)
        with srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                self.wait_event(est, "established")
                for i in range(3):
                    srv.send(ids[0], f"m{i}")
                it = iter(c)
                self.assertEqual([next(it) for _ in range(3)], [b"m0", b"m1", b"m2"])
                c.send("ack")  # the server closes the connection: the iteration ends
                self.assertEqual(list(it), [])
                self.assertFalse(c.connected)


class ContinuousModeTest(TestCase):
    def test_stream_echo(self) -> None:
        with echo_server(None) as srv:
            self.assertIsNone(srv.delimiter)
            port = srv.start(0)
            with tcpgo.TcpClient() as c:
                c.connect(LOOPBACK, port)
                sent = b"".join(f"chunk {i};".encode() for i in range(2000))
                for i in range(0, len(sent), 1000):
                    c.send(sent[i:i + 1000])
                got = b""
                while len(got) < len(sent):
                    got += c.recv(TIMEOUT)
        self.assertEqual(got, sent)

    def test_newline_is_just_a_byte(self) -> None:
        with echo_server(None) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient(None) as c:
                c.connect(LOOPBACK, port)
                c.send(b"a\nb\n")
                got = b""
                while len(got) < 4:
                    got += c.recv(TIMEOUT)
                self.assertEqual(got, b"a\nb\n")


class ServerApiTest(TestCase):
    def test_handlers_as_arguments_and_decorators(self) -> None:
        est, closed = Collector(), Collector()
        srv = tcpgo.TcpServer("\n", host=LOOPBACK, on_established=est)

        @srv.on_closed
        def gone(cid: int) -> None:
            closed.add(cid)

        @srv.on_message
        def upper(cid: int, data: bytes) -> None:
            srv.send(cid, data.upper())

        self.assertTrue(callable(gone) and callable(upper))  # decorators return the function
        with srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                self.assertEqual(c.request("abc", TIMEOUT), b"ABC")
                cid = est.wait_count(1)[0]
                self.assertEqual(srv.clients, [cid])
                self.assertEqual(srv.client_ip(cid), LOOPBACK)
                self.assertEqual(srv.client_port(cid), c.local_port)
                self.assertEqual(srv.client_address(cid), (LOOPBACK, c.local_port))
            self.assertEqual(closed.wait_count(1), [cid])
            self.assertEqual(srv.clients, [])
            with self.assertRaises(tcpgo.NoClientError):
                srv.client_ip(cid)
            with self.assertRaises(tcpgo.NoClientError):
                srv.close_client(cid)

    def test_event_order_per_client(self) -> None:
        events = Collector()
        srv = tcpgo.TcpServer("\n", host=LOOPBACK,
                              on_established=lambda cid: events.add(("est", cid)),
                              on_closed=lambda cid: events.add(("closed", cid)))

        @srv.on_message
        def on_msg(cid: int, data: bytes) -> None:
            events.add(("msg", cid, data))
            srv.send(cid, data)

        with srv:
            port = srv.start(0)
            for _ in range(3):
                with tcpgo.TcpClient("\n") as c:
                    c.connect(LOOPBACK, port)
                    for i in range(50):
                        c.send(str(i))
                    for i in range(50):  # all arrived before the client closes
                        self.assertEqual(c.recv(TIMEOUT), str(i).encode())
            items = events.wait_for(lambda x: sum(1 for e in x if e[0] == "closed") == 3)
        per: dict = {}
        for e in items:
            per.setdefault(e[1], []).append(e)
        self.assertEqual(len(per), 3)
        for cid, evs in per.items():
            self.assertEqual(evs[0], ("est", cid))
            self.assertEqual(evs[-1], ("closed", cid))
            self.assertEqual([e[2] for e in evs[1:-1]], [str(i).encode() for i in range(50)])

    def test_broadcast(self) -> None:
        est = Collector()
        with tcpgo.TcpServer("\n", host=LOOPBACK, on_established=est) as srv:
            port = srv.start(0)
            clients = [tcpgo.TcpClient("\n").connect(LOOPBACK, port) for _ in range(3)]
            try:
                est.wait_count(3)
                self.assertEqual(srv.broadcast("all"), 3)
                for c in clients:
                    self.assertEqual(c.recv(TIMEOUT), b"all")
            finally:
                for c in clients:
                    c.close()

    def test_stop_and_restart(self) -> None:
        closed = Collector()
        srv = echo_server("\n", on_closed=closed)
        with srv:
            port = srv.start(0)
            c = tcpgo.TcpClient("\n").connect(LOOPBACK, port)
            self.assertEqual(c.request("1", TIMEOUT), b"1")
            srv.stop()  # on_closed has run when stop returns
            self.assertEqual(len(closed.snapshot()), 1)
            self.assertFalse(srv.running)
            srv.stop()  # idempotent
            self.assertTrue(c.wait_closed(TIMEOUT))
            c.close()
            port2 = srv.start(0)
            with tcpgo.TcpClient("\n") as c2:
                c2.connect(LOOPBACK, port2)
                self.assertEqual(c2.request("2", TIMEOUT), b"2")
            with self.assertRaises(tcpgo.StartError) as cm:
                srv.start(0)
            self.assertEqual(cm.exception.code, tcpgo.ErrorCode.ALREADY_RUNNING)
        self.assertIn("closed", repr(srv))
        with self.assertRaises(tcpgo.Error):
            srv.start(0)

    def test_serve_forever_returns_when_stopped_from_handler(self) -> None:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK)

        @srv.on_message
        def on_msg(cid: int, data: bytes) -> None:
            if data == b"quit":
                srv.stop()

        port = srv.start(0)
        client = tcpgo.TcpClient("\n")
        t = threading.Thread(target=lambda: client.connect(LOOPBACK, port).send("quit"))
        t.start()
        srv.serve_forever()  # returns once the handler stopped the server
        t.join(TIMEOUT)
        self.assertFalse(srv.running)
        srv.close()
        client.close()

    def test_bind_address_option(self) -> None:
        with echo_server("\n", host="") as srv:  # every interface
            port = srv.start(0)
            self.assertEqual(tcpgo.request(LOOPBACK, port, "any", timeout=TIMEOUT), b"any")
        with echo_server("\n") as srv:
            port = srv.start(0, host="::1") if _has_ipv6() else srv.start(0)
            host = "::1" if _has_ipv6() else LOOPBACK
            self.assertEqual(tcpgo.request(host, port, "v6", timeout=TIMEOUT), b"v6")

    def test_client_reconnect(self) -> None:
        with echo_server("\n") as srv:
            port = srv.start(0)
            c = tcpgo.TcpClient("\n")
            for i in range(3):
                c.connect(LOOPBACK, port)
                self.assertEqual(c.request(f"r{i}", TIMEOUT), f"r{i}".encode())
                c.stop()
                self.assertFalse(c.connected)
            c.close()

    def test_client_handlers(self) -> None:
        msgs, closed = Collector(), threading.Event()
        with echo_server("\n") as srv:
            port = srv.start(0)
            c = tcpgo.TcpClient("\n", on_message=msgs, on_closed=closed.set)
            c.connect(LOOPBACK, port)
            c.send("via handler")
            self.assertEqual(msgs.wait_count(1), [b"via handler"])
            c.stop()
            self.assertTrue(closed.is_set())  # on_closed ran before stop returned
            c.close()

    def test_connect_refused(self) -> None:
        with self.assertRaises(tcpgo.ConnectError) as cm:
            tcpgo.TcpClient().connect(LOOPBACK, free_port())
        self.assertEqual(cm.exception.code, tcpgo.StartCode.CONNECT)
        self.assertIsInstance(cm.exception, ConnectionError)


def _has_ipv6() -> bool:
    import socket
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
