"""Every error class, the code enums, and argument checking."""

from __future__ import annotations

import errno
import os
import pickle
import socket
import unittest

from _support import LOOPBACK, TIMEOUT, Collector, TestCase, echo_server, free_port

import tcpgo
from tcpgo import _lib
from tcpgo.errors import start_error




# A documentation address (RFC 5737) that is never one of this host's.
NOT_LOCAL = "192.0.2.1"


class CodesTest(TestCase):
    def test_start_codes_are_those_of_tcp_serverclient_v2(self) -> None:
        expected = {"OK": 0, "WRONG_PORT": 10, "SET_CONTEXT": 20, "WRONG_CA_PATH": 30,
                    "WRONG_CERT_PATH": 31, "WRONG_KEY_PATH": 32, "WRONG_CA": 33,
                    "WRONG_CERT": 34, "WRONG_KEY": 35, "CREATE_SOCKET": 40,
                    "SET_SOCKET_OPT": 41, "BIND_PORT": 42, "LISTEN": 43, "CONNECT": 50,
                    "CONNECT_INIT": 60}
        self.assertEqual({c.name: int(c) for c in tcpgo.StartCode}, expected)
        self.assertEqual(tcpgo.ErrorCode.MESSAGE_TOO_LONG, -7)
        self.assertEqual(tcpgo.ErrorCode.FILE, -15)
        self.assertEqual({c.name: int(c) for c in tcpgo.ErrorCode if c <= -16},
                         {"MEMORY_BUDGET": -16, "REFUSED": -17, "PROXY": -18, "ACCEPT": -19})

    def test_strerror(self) -> None:
        self.assertTrue(tcpgo.strerror(tcpgo.StartCode.BIND_PORT))
        self.assertTrue(tcpgo.strerror(-7))
        self.assertEqual(tcpgo.strerror(12345), "unknown error code")

    def test_hierarchy(self) -> None:
        for cls in (tcpgo.StartError, tcpgo.SendError, tcpgo.NotRunningError,
                    tcpgo.NoClientError, tcpgo.ConnectionClosedError, tcpgo.PeerError,
                    tcpgo.ForkError):
            self.assertTrue(issubclass(cls, tcpgo.Error), cls)
        for cls in (tcpgo.InvalidPortError, tcpgo.TlsConfigError, tcpgo.CertificateError,
                    tcpgo.SocketError, tcpgo.PortInUseError, tcpgo.ConnectError,
                    tcpgo.ConnectTimeoutError, tcpgo.HandshakeError):
            self.assertTrue(issubclass(cls, tcpgo.StartError), cls)
        self.assertTrue(issubclass(tcpgo.InvalidPortError, ValueError))
        self.assertTrue(issubclass(tcpgo.PortInUseError, OSError))
        self.assertTrue(issubclass(tcpgo.ConnectError, ConnectionError))
        self.assertTrue(issubclass(tcpgo.ConnectTimeoutError, TimeoutError))
        self.assertTrue(issubclass(tcpgo.ConnectTimeoutError, tcpgo.ConnectError))
        self.assertTrue(issubclass(tcpgo.NoClientError, KeyError))
        # OS failures follow OSError's conventions
        self.assertTrue(issubclass(tcpgo.AddressNotAvailableError, OSError))
        self.assertFalse(issubclass(tcpgo.AddressNotAvailableError, tcpgo.PortInUseError))
        self.assertTrue(issubclass(tcpgo.ConnectRefusedError, ConnectionRefusedError))
        self.assertTrue(issubclass(tcpgo.ConnectRefusedError, tcpgo.ConnectError))
        self.assertEqual(tcpgo.PortInUseError(42, "m").errno, errno.EADDRINUSE)
        self.assertEqual(tcpgo.ConnectTimeoutError(50, "m").errno, errno.ETIMEDOUT)

    def test_errors_pickle(self) -> None:
        errs = [tcpgo.StartError(42, "m", "r"), tcpgo.PortInUseError(42, "m", "r"),
                tcpgo.CertificateError(31, "m", "r", "/p", "cert"), tcpgo.PeerError(-7, "long", 3),
                tcpgo.ConnectTimeoutError(50, "t", "r"),
                tcpgo.ConnectRefusedError(50, "c", "r", errno.ECONNREFUSED),
                tcpgo.SocketError(42, "s", "r", errno.EACCES),
                tcpgo.SendError("full", "r", tcpgo.ErrorCode.QUEUE_FULL)]
        for e in errs:
            e2 = pickle.loads(pickle.dumps(e))
            self.assertIs(type(e2), type(e))
            self.assertEqual(str(e2), str(e))
            self.assertEqual(e2.code, e.code)
            self.assertEqual(getattr(e2, "errno", None), getattr(e, "errno", None))

    def test_errno_decides_the_class(self) -> None:
        # What the library reports per thread (tcp_errno) reaches start_error
        # as a Failure: the errno wins over the reason text.
        def failed(code: int, err: int) -> int:
            f = _lib.Failure(code)
            f.errno = err
            return f

        cases = [
            (failed(42, errno.EADDRINUSE), tcpgo.PortInUseError),
            (failed(42, errno.EADDRNOTAVAIL), tcpgo.AddressNotAvailableError),
            (failed(42, errno.EACCES), tcpgo.SocketError),
            (failed(50, errno.ECONNREFUSED), tcpgo.ConnectRefusedError),
            (failed(50, errno.ETIMEDOUT), tcpgo.ConnectTimeoutError),
            (failed(50, errno.ENETUNREACH), tcpgo.ConnectError),
            (failed(50, 0), tcpgo.ConnectError),
        ]
        for code, cls in cases:
            with self.subTest(errno=code.errno):
                e = start_error(code, "bind: address already in use", what="t", port=1)
                self.assertIs(type(e), cls)
                self.assertEqual(e.errno, code.errno or None)
                self.assertEqual(e.code, int(code))
                if code.errno:
                    self.assertEqual(e.strerror, os.strerror(code.errno))
        # a library without tcp_errno: recovered from Go's error text
        e = start_error(42, "listen tcp 127.0.0.1:1: bind: address already in use",
                        what="t", port=1)
        self.assertIs(type(e), tcpgo.PortInUseError)
        e = start_error(50, "dial tcp 127.0.0.1:1: i/o timeout", what="t", port=1)
        self.assertIs(type(e), tcpgo.ConnectTimeoutError)
        self.assertEqual(e.errno, errno.ETIMEDOUT)


class StartErrorTest(TestCase):
    def test_bad_ports_are_value_errors(self) -> None:
        srv = tcpgo.TcpServer(host=LOOPBACK)
        for port in (-1, 65536, 100000):
            with self.subTest(port=port):
                with self.assertRaises(ValueError) as cm:
                    srv.start(port)
                self.assertIsInstance(cm.exception, tcpgo.InvalidPortError)
                self.assertEqual(cm.exception.code, tcpgo.StartCode.WRONG_PORT)
        for port in (0, -5, 70000):
            with self.subTest(client_port=port):
                with self.assertRaises(tcpgo.InvalidPortError):
                    tcpgo.TcpClient().connect(LOOPBACK, port)
        with self.assertRaises(TypeError):
            srv.start("80")  # type: ignore[arg-type]
        srv.close()

    def test_port_in_use(self) -> None:
        with tcpgo.TcpServer(host=LOOPBACK) as a:
            port = a.start(0)
            with tcpgo.TcpServer(host=LOOPBACK) as b:
                with self.assertRaises(OSError) as cm:
                    b.start(port)
                e = cm.exception
                self.assertIsInstance(e, tcpgo.PortInUseError)
                self.assertEqual(e.errno, errno.EADDRINUSE)
                self.assertEqual(e.code, tcpgo.StartCode.BIND_PORT)
                self.assertIn(str(port), str(e))
                self.assertTrue(e.reason)
                self.assertFalse(b.running)

    def test_address_not_local(self) -> None:
        with tcpgo.TcpServer(host=NOT_LOCAL) as srv:
            with self.assertRaises(OSError) as cm:
                srv.start(0)
            e = cm.exception
            self.assertIsInstance(e, tcpgo.AddressNotAvailableError)
            self.assertNotIsInstance(e, tcpgo.PortInUseError)
            self.assertEqual(e.errno, errno.EADDRNOTAVAIL)
            self.assertEqual(e.code, tcpgo.StartCode.BIND_PORT)
            self.assertIn(NOT_LOCAL, str(e))

    def test_reuse_port(self) -> None:
        with tcpgo.TcpServer(host=LOOPBACK, reuse_port=True) as a:
            port = a.start(0)
            with tcpgo.TcpServer(host=LOOPBACK, reuse_port=True) as b:
                self.assertEqual(b.start(port), port)

    def test_bad_bind_address(self) -> None:
        with tcpgo.TcpServer(host="256.256.256.256") as srv:
            with self.assertRaises(tcpgo.SocketError) as cm:
                srv.start(0)
            self.assertIn(cm.exception.code, (tcpgo.StartCode.LISTEN, tcpgo.StartCode.BIND_PORT))

    def test_connect_refused(self) -> None:
        port = free_port()
        with self.assertRaises(ConnectionRefusedError) as cm:
            tcpgo.TcpClient().connect(LOOPBACK, port)
        e = cm.exception
        self.assertIsInstance(e, tcpgo.ConnectRefusedError)
        self.assertNotIsInstance(e, tcpgo.ConnectTimeoutError)
        self.assertEqual(e.errno, errno.ECONNREFUSED)
        self.assertEqual(e.code, tcpgo.StartCode.CONNECT)
        self.assertIn(f"{LOOPBACK}:{port}", str(e))

    def test_unresolvable_name(self) -> None:
        with self.assertRaises(tcpgo.ConnectError):
            tcpgo.TcpClient(connect_timeout=5).connect("no-such-host.invalid", 80)

    def test_connect_timeout(self) -> None:
        # A listener whose accept queue is full and that never accepts: further
        # SYNs are dropped, so connecting to it times out (loopback only).
        lst = socket.socket()
        lst.bind((LOOPBACK, 0))
        lst.listen(0)
        port = lst.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):  # fill the accept queue
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex((LOOPBACK, port))
                fillers.append(s)
            with self.assertRaises(tcpgo.ConnectTimeoutError) as cm:
                tcpgo.TcpClient(connect_timeout=0.3).connect(LOOPBACK, port)
            self.assertEqual(cm.exception.code, tcpgo.StartCode.CONNECT)
            self.assertIsInstance(cm.exception, TimeoutError)
            self.assertEqual(cm.exception.errno, errno.ETIMEDOUT)
        finally:
            for s in fillers:
                s.close()
            lst.close()

    def test_tls_handshake_timeout_from_silent_server(self) -> None:
        # A TCP listener that accepts but never speaks TLS.
        lst = socket.socket()
        lst.bind((LOOPBACK, 0))
        lst.listen(8)
        port = lst.getsockname()[1]
        try:
            with self.assertRaises((tcpgo.ConnectTimeoutError, tcpgo.HandshakeError)):
                tcpgo.TlsClient(connect_timeout=0.3).connect(LOOPBACK, port)
        finally:
            lst.close()

    def test_already_running(self) -> None:
        with echo_server() as srv:
            port = srv.start(0)
            with self.assertRaises(tcpgo.StartError) as cm:
                srv.start(0)
            self.assertEqual(cm.exception.code, tcpgo.ErrorCode.ALREADY_RUNNING)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                with self.assertRaises(tcpgo.StartError):
                    c.connect(LOOPBACK, port)


class ThreadErrorTest(TestCase):
    """The C API's per-thread detail (tcp_errcode, tcp_errno, tcp_errmsg)."""

    def test_the_library_reports_errors_per_thread(self) -> None:
        for name in ("tcp_errcode", "tcp_errno", "tcp_errmsg"):
            self.assertTrue(_lib.has(name), name)

    def test_start_failure_carries_errno_from_the_library(self) -> None:
        with tcpgo.TcpServer(host=LOOPBACK) as a:
            port = a.start(0)
            L = _lib.lib()
            h = L.tcp_server_new()
            try:
                rc = L.tcp_server_start(h, port)
                self.assertIsInstance(rc, _lib.Failure)
                self.assertEqual(int(rc), tcpgo.StartCode.BIND_PORT)
                self.assertEqual(rc.errno, errno.EADDRINUSE)
                code, err, text = _lib.thread_error()
                self.assertEqual((code, err), (tcpgo.StartCode.BIND_PORT, errno.EADDRINUSE))
                self.assertIn(str(port), text)
                self.assertEqual(L.tcp_server_start(h, 0), 0)   # success clears it
                self.assertEqual(_lib.thread_error(), (0, 0, ""))
            finally:
                L.tcp_server_stop(h)
                L.tcp_server_free(h)

    def test_connect_errno_read_on_the_connecting_thread(self) -> None:
        # TcpClient.connect runs the connect on a worker thread: the errno
        # must still reach the exception raised on this one.
        with self.assertRaises(tcpgo.ConnectRefusedError) as cm:
            tcpgo.TcpClient(connect_timeout=5).connect(LOOPBACK, free_port())
        self.assertEqual(cm.exception.errno, errno.ECONNREFUSED)

    def test_send_error_code(self) -> None:
        with echo_server("\n") as srv:
            with self.assertRaises(tcpgo.SendError) as cm:
                srv.send(1, b"stopped")
            self.assertEqual(cm.exception.code, tcpgo.ErrorCode.NOT_RUNNING)
            srv.start(0)
            with self.assertRaises(tcpgo.SendError) as cm:
                srv.send(999, b"nobody")
            self.assertEqual(cm.exception.code, tcpgo.ErrorCode.NO_CLIENT)
        c = tcpgo.TcpClient("\n")
        with self.assertRaises(tcpgo.SendError) as cm:
            c.send("never connected")
        self.assertEqual(cm.exception.code, tcpgo.ErrorCode.NOT_RUNNING)
        c.close()


class RuntimeErrorTest(TestCase):
    def test_send_errors(self) -> None:
        with echo_server("\n", max_len=10) as srv:
            with self.assertRaises(tcpgo.SendError):
                srv.send(1, b"stopped")
            port = srv.start(0)
            with self.assertRaises(tcpgo.SendError) as cm:
                srv.send(999, b"nobody")
            self.assertTrue(cm.exception.reason)
            with self.assertRaises(ValueError):
                srv.send(999, b"a\nb")  # delimiter
            with self.assertRaises(ValueError):
                srv.broadcast(b"x" * 11)  # longer than max_len
            with self.assertRaises(TypeError):
                srv.send(1, 12345)  # type: ignore[arg-type]
            self.assertGreater(port, 0)

    def test_send_queue_full(self) -> None:
        est = Collector()
        with tcpgo.TcpServer(host=LOOPBACK, send_queue_limit=64 * 1024, on_established=est) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient(event_queue_limit=1024) as c:
                c.on_message(lambda d: None)
                c.connect(LOOPBACK, port)
                cid = est.wait_count(1)[0]
                chunk = b"q" * 32 * 1024
                with self.assertRaises(tcpgo.SendError) as cm:
                    for _ in range(100_000):  # the reader is slower than this loop
                        srv.send(cid, chunk)
                self.assertIn("queue", str(cm.exception).lower())
                self.assertIn(cm.exception.code, (tcpgo.ErrorCode.QUEUE_FULL,
                                                  tcpgo.ErrorCode.MEMORY_BUDGET))

    def test_client_errors(self) -> None:
        c = tcpgo.TcpClient("\n")
        with self.assertRaises(tcpgo.NotRunningError):
            c.recv(0.01)
        with self.assertRaises(tcpgo.SendError):
            c.send("never connected")
        with self.assertRaises(tcpgo.NotRunningError):
            _ = c.local_port
        c.close()
        with self.assertRaises(tcpgo.Error):
            c.connect(LOOPBACK, 1)

    def test_connection_closed_error(self) -> None:
        est = Collector()
        with tcpgo.TcpServer("\n", host=LOOPBACK, on_established=est) as srv:
            port = srv.start(0)
            c = tcpgo.TcpClient("\n").connect(LOOPBACK, port)
            srv.close_client(est.wait_count(1)[0])
            self.assertTrue(c.wait_closed(TIMEOUT))
            with self.assertRaises(tcpgo.ConnectionClosedError):
                c.recv(TIMEOUT)
            with self.assertRaises(tcpgo.ConnectionClosedError):
                c.recv(TIMEOUT)  # stays closed
            with self.assertRaises(tcpgo.ConnectionClosedError):
                c.send("too late")
            c.close()

    def test_no_client_and_not_running(self) -> None:
        srv = tcpgo.TcpServer(host=LOOPBACK)
        with self.assertRaises(tcpgo.NotRunningError):
            _ = srv.port
        with self.assertRaises(tcpgo.NoClientError) as cm:
            srv.client_ip(7)
        self.assertIn("7", str(cm.exception))
        self.assertEqual(srv.clients, [])
        srv.close()

    def test_argument_checks(self) -> None:
        for bad in ("ab", b"", 256, -1, "\u00e9"):
            with self.subTest(delimiter=bad):
                with self.assertRaises(ValueError):
                    tcpgo.TcpServer(bad)
        with self.assertRaises(TypeError):
            tcpgo.TcpServer(1.5)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            tcpgo.TcpServer("\n", max_len=-1)
        with self.assertRaises(ValueError):
            tcpgo.TcpServer(send_queue_limit=-5)


if __name__ == "__main__":
    unittest.main()
