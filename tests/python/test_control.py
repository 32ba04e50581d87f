"""Connection control, flow control and lifecycle (issues 8 and 9), synchronous API.

Every test waits for events with timeouts (Collector, threading.Event);
nothing sleeps to synchronise. Loopback, port 0.
"""

from __future__ import annotations

import socket
import threading
import time
import unittest
from typing import List, Optional, Tuple

from _support import LOOPBACK, TIMEOUT, Collector, TestCase, echo_server, run_python

import tcpgo
from tcpgo.server import CloseReason, Connection, ConnStats, ServerStats

REFUSED = -17  # TCP_ERR_REFUSED
MEMORY_BUDGET = -16


def raw_connect(port: int, rcvbuf: Optional[int] = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(TIMEOUT)
    s.connect((LOOPBACK, port))
    return s


def connect_maybe_refused(port: int) -> Optional[socket.socket]:
    """A socket, or None when the server refused it so fast that connect()
    itself saw the reset."""
    try:
        return raw_connect(port)
    except ConnectionResetError:
        return None


def closed_by_peer(s: Optional[socket.socket]) -> bool:
    """True once the server closed (EOF or reset); waits up to TIMEOUT."""
    if s is None:
        return True
    try:
        while True:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def read_until_eof(s: socket.socket, out: bytearray) -> None:
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                return
            out += chunk
    except OSError:
        return


def refusals(errors: Collector) -> List[Tuple[int, BaseException]]:
    return [(cid, e) for cid, e in errors.snapshot()
            if cid == 0 and getattr(e, "code", None) == REFUSED]


class AdmissionTest(TestCase):
    def test_refused_connections_never_appear_as_established(self) -> None:
        asked = Collector()
        decisions = iter([False, True, False, True])

        def admit(ip: str, port: int, local_port: int) -> bool:
            asked.add((ip, port, local_port))
            return next(decisions)

        established, errors = Collector(), Collector()
        with echo_server("\n", on_accept=admit, on_established=established,
                         on_error=errors) as srv:
            port = srv.start(0)
            socks = []
            for _ in range(4):  # one at a time: the decisions go in this order
                socks.append(connect_maybe_refused(port))
                asked.wait_count(len(socks))
            established.wait_count(2)
            errors.wait_for(lambda _: len(refusals(errors)) == 2)
            self.assertTrue(closed_by_peer(socks[0]))
            self.assertTrue(closed_by_peer(socks[2]))
            # the admitted ones are served
            for s in (socks[1], socks[3]):
                assert s is not None
                s.sendall(b"ok\n")
                self.assertEqual(s.recv(10), b"ok\n")
            self.assertEqual(len(established.snapshot()), 2)
            self.assertEqual(sorted(srv.clients), sorted(established.snapshot()))
            self.assertEqual({c.port for c in srv.connections},
                             {socks[1].getsockname()[1], socks[3].getsockname()[1]})
            self.assertEqual({a[0] for a in asked.snapshot()}, {LOOPBACK})
            self.assertEqual({a[2] for a in asked.snapshot()}, {port})
            stats = srv.stats()
            self.assertEqual(stats.refused, 2)
            self.assertEqual(stats.established, 2)
            for s in socks:
                if s is not None:
                    s.close()

    def test_exception_in_on_accept_refuses_and_is_logged(self) -> None:
        established, errors = Collector(), Collector()

        def admit(ip: str, port: int, local_port: int) -> bool:
            raise RuntimeError("admission bug")

        with echo_server("\n", on_established=established, on_error=errors) as srv:
            srv.on_accept(admit)
            port = srv.start(0)
            with self.assertLogs("tcpgo", "ERROR") as logs:
                s = connect_maybe_refused(port)
                self.assertTrue(closed_by_peer(s))
                errors.wait_for(lambda _: len(refusals(errors)) == 1)
            self.assertIn("admission bug", "\n".join(logs.output))
            self.assertEqual(established.snapshot(), [])
            # removing the hook admits again
            srv.on_accept(None)
            s = raw_connect(port)
            established.wait_count(1)
            s.close()

    def test_on_accept_must_be_a_plain_function(self) -> None:
        async def admit(ip: str, port: int, local_port: int) -> bool:
            return True

        with tcpgo.TcpServer(host=LOOPBACK) as srv:
            with self.assertRaises(TypeError):
                srv.on_accept(admit)  # type: ignore[arg-type]

    def test_allowed_and_blocked_lists_change_while_running(self) -> None:
        established, errors = Collector(), Collector()
        with echo_server("\n", on_established=established, on_error=errors,
                         allowed=["10.0.0.0/8", "fd00::/8"]) as srv:
            self.assertEqual(srv.allowed, ("10.0.0.0/8", "fd00::/8"))
            port = srv.start(0)
            self.assertTrue(closed_by_peer(connect_maybe_refused(port)))  # not allowed
            srv.allowed = "10.0.0.0/8, 127.0.0.0/8"
            s = raw_connect(port)
            established.wait_count(1)
            s.close()
            srv.blocked = [LOOPBACK]  # blocked wins over allowed
            self.assertTrue(closed_by_peer(connect_maybe_refused(port)))
            with self.assertRaises(ValueError) as cm:
                srv.blocked = ["127.0.0.1", "not-an-address"]
            self.assertIn("not-an-address", str(cm.exception))
            self.assertEqual(srv.blocked, (LOOPBACK,))  # unchanged
            srv.blocked = None
            srv.allowed = ()
            s = raw_connect(port)
            established.wait_count(2)
            s.close()
            errors.wait_for(lambda _: len(refusals(errors)) == 2)
            self.assertEqual(srv.stats().refused, 2)
            self.assertEqual(len(established.snapshot()), 2)

    def test_connection_after_the_limit_is_refused(self) -> None:
        established, closed, errors = Collector(), Collector(), Collector()
        with echo_server("\n", max_connections=2, on_established=established,
                         on_closed=closed, on_error=errors) as srv:
            port = srv.start(0)
            a, b = raw_connect(port), raw_connect(port)
            established.wait_count(2)
            self.assertTrue(closed_by_peer(connect_maybe_refused(port)))
            errors.wait_for(lambda _: len(refusals(errors)) == 1)
            self.assertEqual(srv.stats().refused_limit, 1)
            self.assertEqual(len(established.snapshot()), 2)
            a.sendall(b"still served\n")
            self.assertEqual(a.recv(100), b"still served\n")
            # a place frees up: the next one is admitted
            b.close()
            closed.wait_count(1)
            d = raw_connect(port)
            established.wait_count(3)
            for s in (a, d):
                s.close()


class ConnectionObjectTest(TestCase):
    def test_handlers_get_connection_objects_that_are_ids(self) -> None:
        got = Collector()
        srv = tcpgo.TcpServer("\n", host=LOOPBACK)

        @srv.on_established
        def hello(conn: Connection) -> None:
            conn.data = {"count": 0}

        @srv.on_message
        def count(conn: Connection, data: bytes) -> None:
            conn.data["count"] += 1
            conn.send(b"%d" % conn.data["count"])
            srv.send(conn, data)  # the object is the id
            got.add(conn)

        with srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                c.send("x")
                self.assertEqual(c.recv(TIMEOUT), b"1")
                self.assertEqual(c.recv(TIMEOUT), b"x")
                conn = got.wait_count(1)[0]
                self.assertIsInstance(conn, Connection)
                self.assertIsInstance(conn, int)
                self.assertEqual(conn, conn.id)
                self.assertEqual(srv.clients, [conn])
                self.assertIs(srv.connection(int(conn)), conn)
                self.assertEqual(srv.connections, [conn])
                self.assertEqual(conn.address, (LOOPBACK, c.local_port))
                self.assertEqual(str(conn), str(int(conn)))
                self.assertEqual(f"{conn:d}", str(int(conn)))
                self.assertIn(f"{LOOPBACK}:{c.local_port}", repr(conn))
                st = conn.stats()
                self.assertIsInstance(st, ConnStats)
                self.assertEqual(st.msgs_in, 1)
                self.assertEqual(st.bytes_in, 1)
                self.assertEqual(st.msgs_out, 2)
                self.assertLessEqual(abs(st.connected_at - time.time()), 60)
                self.assertEqual(conn.queued, 0)
                self.assertTrue(conn.writable)
        with self.assertRaises(tcpgo.NoClientError):
            srv.connection(12345)

    def test_closed_reason_and_close_one_client(self) -> None:
        closed_old, closed_new = Collector(), Collector()
        with echo_server("\n") as srv:
            srv.on_closed(closed_old)  # old one-argument handlers keep working
            port = srv.start(0)
            c = tcpgo.TcpClient("\n").connect(LOOPBACK, port)
            self.assertEqual(c.request("hi", TIMEOUT), b"hi")
            conn = srv.connection(srv.clients[0])
            conn.data = "mine"
            srv.on_closed(lambda cn, reason: closed_new.add((cn, reason)))
            conn.close()
            cn, reason = closed_new.wait_count(1)[0]
            self.assertIs(cn, conn)
            self.assertEqual(reason, CloseReason.LOCAL)
            self.assertEqual(conn.close_reason, CloseReason.LOCAL)
            self.assertFalse(conn.connected)
            self.assertEqual(cn.data, "mine")
            self.assertTrue(reason.description)  # the library's text
            conn.close()  # idempotent
            self.assertTrue(c.wait_closed(TIMEOUT))
            self.assertEqual(c.close_reason, CloseReason.PEER)
            self.assertEqual(closed_old.snapshot(), [])
            c.close()

    def test_stats_dataclass(self) -> None:
        with echo_server("\n") as srv:
            port = srv.start(0)
            for i in range(3):
                self.assertEqual(tcpgo.request(LOOPBACK, port, f"m{i}", timeout=TIMEOUT),
                                 f"m{i}".encode())
            st = srv.stats()
            self.assertIsInstance(st, ServerStats)
            self.assertGreaterEqual(st.accepted, 3)
            self.assertGreaterEqual(st.established, 3)
            self.assertGreaterEqual(st.msgs_in, 3)
            self.assertGreaterEqual(st.bytes_out, 6)
            self.assertEqual(st.refused, 0)


class TimeoutTest(TestCase):
    def test_idle_peer_closed_after_its_timeout(self) -> None:
        closed = Collector()
        with echo_server("\n", idle_timeout=0.2,
                         on_closed=lambda conn, reason: closed.add((conn, reason))) as srv:
            port = srv.start(0)
            t0 = time.monotonic()
            s = raw_connect(port)  # sends nothing
            conn, reason = closed.wait_count(1)[0]
            self.assertEqual(reason, CloseReason.IDLE_TIMEOUT)
            self.assertGreaterEqual(time.monotonic() - t0, 0.19)
            self.assertTrue(closed_by_peer(s))
            self.assertGreaterEqual(srv.stats().timed_out, 1)
            s.close()

    def test_idle_timeout_per_connection(self) -> None:
        closed, established = Collector(), Collector()
        with echo_server("\n", on_established=established,
                         on_closed=lambda conn, reason: closed.add((conn, reason))) as srv:
            port = srv.start(0)
            quiet, chosen = raw_connect(port), raw_connect(port)
            established.wait_count(2)
            chosen_id = [c for c in srv.connections if c.port == chosen.getsockname()[1]][0]
            chosen_id.idle_timeout = 0.2
            self.assertEqual(chosen_id.idle_timeout, 0.2)
            conn, reason = closed.wait_count(1)[0]
            self.assertIs(conn, chosen_id)
            self.assertEqual(reason, CloseReason.IDLE_TIMEOUT)
            quiet.sendall(b"alive\n")  # the server's default (no timeout) still holds
            self.assertEqual(quiet.recv(10), b"alive\n")
            with self.assertRaises(ValueError):
                srv.set_idle_timeout(srv.clients[0], -1)
            quiet.close()
            chosen.close()

    def test_slow_drip_peer_closed_by_message_timeout(self) -> None:
        closed = Collector()
        with echo_server("\n", message_timeout=0.2,
                         on_closed=lambda conn, reason: closed.add(reason)) as srv:
            port = srv.start(0)
            s = raw_connect(port)
            s.sendall(b"a message that never ends")
            self.assertEqual(closed.wait_count(1)[0], CloseReason.MESSAGE_TIMEOUT)
            s.close()


class FlowControlTest(TestCase):
    def fill(self, srv: tcpgo.TcpServer, conn: Connection, chunk: bytes) -> int:
        """try_send until back-pressure; returns the bytes queued."""
        sent = 0
        for _ in range(100_000):
            if not srv.try_send(conn, chunk):
                return sent
            sent += len(chunk)
        self.fail("the send queue never filled")

    def test_non_reading_peer_queue_full_then_ready(self) -> None:
        established, ready = Collector(), threading.Event()
        with tcpgo.TcpServer(host=LOOPBACK, send_queue_limit=256 * 1024,
                             send_low_water=32 * 1024, on_established=established,
                             on_ready=lambda conn: ready.set()) as srv:
            port = srv.start(0)
            s = raw_connect(port, rcvbuf=4096)  # and does not read yet
            conn = established.wait_count(1)[0]
            chunk = b"z" * 16384
            sent = self.fill(srv, conn, chunk)
            self.assertFalse(conn.writable)
            self.assertGreater(conn.queued, 0)
            with self.assertRaises(tcpgo.SendError) as cm:
                conn.send(chunk)
            self.assertEqual(cm.exception.code, tcpgo.ErrorCode.QUEUE_FULL)
            self.assertFalse(ready.is_set())
            got = bytearray()
            reader = threading.Thread(target=read_until_eof, args=(s, got))
            reader.start()
            self.wait_event(ready, "the ready event")
            self.assertTrue(conn.wait_writable(TIMEOUT))
            self.assertTrue(conn.writable)
            self.assertTrue(conn.try_send(b"end"))
            self.assertTrue(conn.flush(TIMEOUT))
            conn.close()
            reader.join(TIMEOUT)
            self.assertEqual(len(got), sent + 3)  # nothing lost, nothing doubled
            s.close()

    def test_memory_budget_refuses_with_its_code(self) -> None:
        established = Collector()
        with tcpgo.TcpServer(host=LOOPBACK, send_queue_limit=0, memory_budget=1 << 20,
                             on_established=established) as srv:
            port = srv.start(0)
            s = raw_connect(port, rcvbuf=4096)
            conn = established.wait_count(1)[0]
            with self.assertRaises(tcpgo.SendError) as cm:
                for _ in range(100_000):
                    conn.send(b"m" * 65536)
            self.assertEqual(cm.exception.code, MEMORY_BUDGET)
            self.assertFalse(conn.writable)
            s.close()

    def test_send_error_codes(self) -> None:
        with echo_server("\n") as srv:
            with self.assertRaises(tcpgo.SendError) as cm:
                srv.send(1, b"stopped")
            self.assertEqual(cm.exception.code, tcpgo.ErrorCode.NOT_RUNNING)
            srv.start(0)
            with self.assertRaises(tcpgo.SendError) as cm:
                srv.send(999, b"nobody")
            self.assertEqual(cm.exception.code, tcpgo.ErrorCode.NO_CLIENT)
            with self.assertRaises(tcpgo.SendError) as cm:
                srv.try_send(999, b"nobody")
            self.assertEqual(cm.exception.code, tcpgo.ErrorCode.NO_CLIENT)
        c = tcpgo.TcpClient("\n")
        with self.assertRaises(tcpgo.SendError) as cm:
            c.send("never connected")
        self.assertEqual(cm.exception.code, tcpgo.ErrorCode.NOT_RUNNING)
        c.close()

    def test_pause_stops_delivery_and_resume_restarts_with_nothing_lost(self) -> None:
        msgs: Collector = Collector()
        marker = threading.Event()
        established = Collector()
        srv = tcpgo.TcpServer("\n", host=LOOPBACK, on_established=established)

        @srv.on_message
        def got(conn: Connection, data: bytes) -> None:
            if data == b"marker":
                marker.set()
            else:
                msgs.add(data)

        with srv:
            port = srv.start(0)
            paused = raw_connect(port)
            conn = established.wait_count(1)[0]
            conn.pause()
            self.assertTrue(conn.paused)
            payload = b"".join(b"%d\n" % i for i in range(500))
            paused.sendall(payload)
            # another client's later message arrives; the paused one's do not
            other = raw_connect(port)
            other.sendall(b"marker\n")
            self.wait_event(marker, "the other client's message")
            self.assertEqual(msgs.snapshot(), [])
            conn.resume()
            self.assertFalse(conn.paused)
            items = msgs.wait_count(500)
            self.assertEqual(items, [b"%d" % i for i in range(500)])
            paused.close()
            other.close()

    def test_client_flow_control_against_a_paused_server(self) -> None:
        established, ready, msgs = Collector(), threading.Event(), Collector()
        with tcpgo.TcpServer(host=LOOPBACK, on_established=established,
                             on_message=lambda conn, d: msgs.add(len(d))) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient(send_queue_limit=128 * 1024, send_low_water=16 * 1024,
                                 on_ready=ready.set) as c:
                c.connect(LOOPBACK, port)
                established.wait_count(1)[0].pause()
                chunk = b"c" * 16384
                sent = 0
                for _ in range(100_000):
                    if not c.try_send(chunk):
                        break
                    sent += len(chunk)
                self.assertFalse(c.writable)
                self.assertGreater(c.queued, 0)
                with self.assertRaises(tcpgo.SendError) as cm:
                    c.send(chunk)
                self.assertEqual(cm.exception.code, tcpgo.ErrorCode.QUEUE_FULL)
                srv.connections[0].resume()
                self.wait_event(ready, "the client's ready event")
                self.assertTrue(c.writable)
                msgs.wait_for(lambda items: sum(items) == sent)
                self.assertEqual(c.stats().bytes_out, sent)


class LifecycleTest(TestCase):
    def test_half_close_gets_every_reply(self) -> None:
        """Issue 8 item 1: a peer that sends 500 requests, then shutdown(SHUT_WR),
        receives all 500 replies before the server closes."""
        closed = Collector()
        with echo_server("\n", on_closed=lambda conn, reason: closed.add(reason)) as srv:
            port = srv.start(0)
            s = raw_connect(port)
            s.sendall(b"".join(b"request %d\n" % i for i in range(500)))
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            read_until_eof(s, got)
            s.close()
            self.assertEqual(got.split(b"\n")[:-1], [b"request %d" % i for i in range(500)])
            self.assertEqual(closed.wait_count(1), [CloseReason.PEER])

    def test_graceful_shutdown_delivers_what_was_queued(self) -> None:
        established, closed = Collector(), Collector()
        # linger=0: a plain stop() would drop the queue; shutdown() must not
        srv = tcpgo.TcpServer(host=LOOPBACK, linger=0, send_queue_limit=0,
                              on_established=established,
                              on_closed=lambda conn, reason: closed.add(reason))
        port = srv.start(0)
        s = raw_connect(port, rcvbuf=4096)
        conn = established.wait_count(1)[0]
        total = 0
        for _ in range(64):
            conn.send(b"g" * 65536)
            total += 65536
        self.assertGreater(conn.queued, 0)
        result: List[bool] = []
        stopper = threading.Thread(target=lambda: result.append(srv.shutdown(TIMEOUT)))
        stopper.start()
        got = bytearray()
        read_until_eof(s, got)
        stopper.join(TIMEOUT)
        s.close()
        self.assertEqual(result, [True])
        self.assertEqual(len(got), total)
        self.assertEqual(closed.snapshot(), [CloseReason.STOPPED])
        self.assertFalse(srv.running)
        srv.close()

    def test_shutdown_reports_dropped_data(self) -> None:
        established = Collector()
        srv = tcpgo.TcpServer(host=LOOPBACK, send_queue_limit=0, on_established=established)
        port = srv.start(0)
        s = raw_connect(port, rcvbuf=4096)  # never reads
        conn = established.wait_count(1)[0]
        for _ in range(64):
            conn.send(b"d" * 65536)
        self.assertFalse(srv.shutdown(0.1))
        self.assertTrue(srv.shutdown(0.1))  # not running: nothing to drop
        s.close()
        srv.close()

    def test_stop_listening_keeps_the_connected_clients(self) -> None:
        with echo_server("\n") as srv:
            port = srv.start(0)
            c = tcpgo.TcpClient("\n").connect(LOOPBACK, port)
            self.assertEqual(c.request("before", TIMEOUT), b"before")
            srv.stop_listening()
            self.assertTrue(srv.running)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection((LOOPBACK, port), timeout=TIMEOUT).close()
            self.assertEqual(c.request("after", TIMEOUT), b"after")
            c.close()
            srv.stop()
            with self.assertRaises(tcpgo.NotRunningError):
                srv.stop_listening()

    def test_reconnecting_client_survives_a_server_restart(self) -> None:
        attempts, reasons = Collector(), Collector()
        srv = echo_server("\n")
        port = srv.start(0)
        c = tcpgo.TcpClient("\n", reconnect=True, reconnect_min=0.05, reconnect_max=0.2,
                            on_connect=lambda attempt, result: attempts.add((attempt, result)),
                            on_closed=lambda reason: reasons.add(reason))
        try:
            c.connect(LOOPBACK, port)
            self.assertEqual(c.request("one", TIMEOUT), b"one")
            srv.stop()
            reasons.wait_count(1)
            # at least one attempt fails while nothing listens
            attempts.wait_for(lambda items: any(r != tcpgo.StartCode.OK for _, r in items))
            self.assertFalse(c.connected)
            with self.assertRaises(tcpgo.SendError) as cm:
                c.send("while down")
            self.assertEqual(cm.exception.code, tcpgo.ErrorCode.NOT_RUNNING)
            srv.start(port)
            got = attempts.wait_for(lambda items: items[-1][1] == tcpgo.StartCode.OK)
            self.assertEqual([a for a, _ in got], list(range(1, len(got) + 1)))
            self.assertEqual(c.request("two", TIMEOUT), b"two")  # recv waited through it
            c.stop()
            with self.assertRaises(tcpgo.ConnectionClosedError):
                c.recv(TIMEOUT)
        finally:
            c.close()
            srv.close()


class OptionTest(TestCase):
    def test_options_are_checked(self) -> None:
        for kwargs, exc in (({"idle_timeout": -1}, ValueError),
                            ({"idle_timeout": "1"}, TypeError),
                            ({"max_connections": -1}, ValueError),
                            ({"keepalive_count": 1.5}, TypeError),
                            ({"proxy_protocol": "sometimes"}, ValueError),
                            ({"allowed": ["bogus"]}, ValueError)):
            with self.subTest(**kwargs):
                with self.assertRaises(exc):
                    tcpgo.TcpServer(host=LOOPBACK, **kwargs)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            tcpgo.TcpClient(reconnect_min=-1)

    def test_every_option_is_accepted(self) -> None:
        srv = tcpgo.TcpServer(
            "\n", host=LOOPBACK, memory_budget=32 << 20, max_connections=100,
            idle_timeout=30, message_timeout=10, write_timeout=10, handshake_timeout=5,
            keepalive=True, keepalive_idle=20, keepalive_interval=5, keepalive_count=3,
            backlog=64, ipv6_only=False, close_on_eof=False, send_low_water=4096,
            callback_threads=8, proxy_protocol="trusted", proxy_trusted=["10.0.0.1"],
            allowed="127.0.0.1", blocked=["192.0.2.0/24"])
        srv.on_message(lambda conn, data: conn.send(data))
        with srv:
            port = srv.start(0)
            self.assertEqual(tcpgo.request(LOOPBACK, port, "x", timeout=TIMEOUT), b"x")
        cli = tcpgo.TcpClient("\n", local_address=LOOPBACK, keepalive=False, idle_timeout=30,
                              write_timeout=5, reconnect=False)
        with cli, echo_server("\n") as srv2:
            port = srv2.start(0)
            cli.connect(LOOPBACK, port)
            self.assertEqual(cli.request("y", TIMEOUT), b"y")


EXIT_SCRIPT = r"""
import socket, threading, tcpgo
def admit(ip, port, local_port):
    return True
srv = tcpgo.TcpServer("\n", host="127.0.0.1", on_accept=admit)
port = srv.start(0)
def hammer():
    while True:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
        except OSError:
            pass
for _ in range(4):
    threading.Thread(target=hammer, daemon=True).start()
s = socket.create_connection(("127.0.0.1", port))
print("exiting", flush=True)
"""


FD_LIMIT_SCRIPT = r"""
import resource, tcpgo, tcpgo.util
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
tcpgo.TcpServer().close()  # loading the library leaves the limit alone
assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 256
assert tcpgo.util.raise_fd_limit() == hard
assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
print("ok")
"""


class ExitTest(TestCase):
    def test_raise_fd_limit(self) -> None:
        r = run_python(FD_LIMIT_SCRIPT, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "ok")

    def test_interpreter_exit_while_on_accept_is_called(self) -> None:
        for _ in range(3):
            r = run_python(EXIT_SCRIPT, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("exiting", r.stdout)
            self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main()
