"""Handlers that raise, sending and stopping from handlers, many clients,
garbage collection under load, interpreter exit."""

from __future__ import annotations

import gc
import threading
import unittest
import weakref

from _support import (LOOPBACK, TIMEOUT, Collector, TestCase, echo_server, run_python,
                      tls_client, tls_echo_server)

import tcpgo


class RaisingHandlerTest(TestCase):
    def test_exception_is_logged_reported_and_serving_goes_on(self) -> None:
        reported = Collector()
        srv = tcpgo.TcpServer("\n", host=LOOPBACK, on_error=lambda cid, e: reported.add((cid, e)))

        @srv.on_message
        def handler(cid: int, data: bytes) -> None:
            if data == b"boom":
                raise RuntimeError("handler failed on purpose")
            srv.send(cid, data)

        with srv:
            port = srv.start(0)
            with self.assertLogs("tcpgo", level="ERROR") as logs:
                with tcpgo.TcpClient("\n") as c:
                    c.connect(LOOPBACK, port)
                    c.send("boom")
                    c.send("after")
                    self.assertEqual(c.recv(TIMEOUT), b"after")  # still served
                    cid, err = reported.wait_count(1)[0]
            self.assertIsInstance(err, RuntimeError)
            self.assertEqual(str(err), "handler failed on purpose")
            self.assertTrue(any("on_message" in line for line in logs.output))
            self.assertTrue(any("handler failed on purpose" in line for line in logs.output))
            self.assertTrue(srv.running)

    def test_every_handler_may_raise(self) -> None:
        reported = Collector()

        def boom(*args: object) -> None:
            raise ValueError("x")

        srv = tcpgo.TcpServer("\n", host=LOOPBACK, on_established=boom, on_message=boom,
                              on_closed=boom, on_error=lambda cid, e: reported.add(e))
        with srv, self.assertLogs("tcpgo", level="ERROR"):
            port = srv.start(0)
            c = tcpgo.TcpClient("\n", on_message=boom, on_closed=boom)
            c.connect(LOOPBACK, port)
            c.send("m")
            reported.wait_count(2)  # established + message
            srv.stop()
            reported.wait_count(3)  # + closed
            self.assertTrue(c.wait_closed(TIMEOUT))
            c.close()

    def test_raising_error_handler_is_only_logged(self) -> None:
        def bad_error_handler(cid: int, e: BaseException) -> None:
            raise RuntimeError("error handler failed too")

        got = threading.Event()
        srv = tcpgo.TcpServer("\n", host=LOOPBACK, on_error=bad_error_handler)

        @srv.on_message
        def handler(cid: int, data: bytes) -> None:
            if data == b"ok":
                srv.send(cid, b"ok")
                return
            raise KeyError(data)

        with srv, self.assertLogs("tcpgo", level="ERROR") as logs:
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                c.send("fail")
                self.assertEqual(c.request("ok", TIMEOUT), b"ok")
                got.set()
        self.assertTrue(any("on_error" in line for line in logs.output))

    def test_system_exit_in_handler_does_not_kill_the_dispatcher(self) -> None:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK)

        @srv.on_message
        def handler(cid: int, data: bytes) -> None:
            if data == b"exit":
                raise SystemExit(3)
            srv.send(cid, data)

        with srv, self.assertLogs("tcpgo", level="ERROR"):
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                c.send("exit")
                self.assertEqual(c.request("alive", TIMEOUT), b"alive")


class HandlerCallsTest(TestCase):
    def test_send_from_inside_handlers(self) -> None:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK)

        @srv.on_established
        def greet(cid: int) -> None:
            srv.send(cid, f"welcome {cid}")

        @srv.on_message
        def reply_three_times(cid: int, data: bytes) -> None:
            for i in range(3):
                srv.send(cid, data + str(i).encode())

        with srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                self.assertTrue(c.recv(TIMEOUT).startswith(b"welcome "))
                c.send("x")
                self.assertEqual([c.recv(TIMEOUT) for _ in range(3)], [b"x0", b"x1", b"x2"])

    def test_client_sends_from_its_handler(self) -> None:
        done = threading.Event()
        count = [0]
        with echo_server("\n") as srv:
            port = srv.start(0)
            c = tcpgo.TcpClient("\n")

            @c.on_message
            def ping_pong(data: bytes) -> None:
                count[0] += 1
                if count[0] < 1000:
                    c.send(data)
                else:
                    done.set()

            c.connect(LOOPBACK, port)
            c.send("ball")
            self.wait_event(done, "1000 round trips")
            c.close()

    def test_stop_and_close_from_inside_a_handler(self) -> None:
        closed = Collector()
        srv = tcpgo.TcpServer("\n", host=LOOPBACK, on_closed=closed)

        @srv.on_message
        def handler(cid: int, data: bytes) -> None:
            if data == b"stop":
                srv.stop()  # must not deadlock
            elif data == b"kick":
                srv.close_client(cid)

        port = srv.start(0)
        a = tcpgo.TcpClient("\n").connect(LOOPBACK, port)
        b = tcpgo.TcpClient("\n").connect(LOOPBACK, port)
        a.send("kick")
        self.assertTrue(a.wait_closed(TIMEOUT))
        closed.wait_count(1)
        b.send("stop")
        self.assertTrue(srv.wait(TIMEOUT))
        self.assertEqual(len(closed.wait_count(2)), 2)
        self.assertFalse(srv.running)
        self.assertTrue(b.wait_closed(TIMEOUT))
        for x in (a, b):
            x.close()
        srv.close()

    def test_client_stops_itself_from_handler(self) -> None:
        closed = threading.Event()
        with echo_server("\n") as srv:
            port = srv.start(0)
            c = tcpgo.TcpClient("\n", on_closed=closed.set)
            c.on_message(lambda data: c.stop())
            c.connect(LOOPBACK, port)
            c.send("bye")
            self.wait_event(closed, "on_closed")
            self.assertFalse(c.connected)
            c.close()


class BatchedSendTest(TestCase):
    def test_reply_then_close_from_a_handler_delivers_the_reply(self) -> None:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK)

        @srv.on_message
        def reply_and_hang_up(cid: int, data: bytes) -> None:
            srv.send(cid, b"goodbye " + data)
            srv.close_client(cid)  # the batched reply is queued first

        with srv:
            port = srv.start(0)
            for i in range(20):
                with tcpgo.TcpClient("\n") as c:
                    c.connect(LOOPBACK, port)
                    c.send(f"c{i}")
                    self.assertEqual(list(c), [f"goodbye c{i}".encode()])

    def test_refused_batched_send_goes_to_on_error(self) -> None:
        reported = Collector()
        srv = tcpgo.TcpServer("\n", host=LOOPBACK, on_error=lambda cid, e: reported.add((cid, e)))

        @srv.on_message
        def handler(cid: int, data: bytes) -> None:
            srv.send(987654, b"to nobody")  # no exception inside handlers
            srv.send(cid, data)

        with srv:
            port = srv.start(0)
            self.assertEqual(tcpgo.request(LOOPBACK, port, "x", timeout=TIMEOUT), b"x")
            cid, err = reported.wait_count(1)[0]
            self.assertEqual(cid, 0)
            self.assertIsInstance(err, tcpgo.SendError)
            self.assertIn("1 of 2", str(err))

    def test_unbatched_sends_raise_inside_handlers(self) -> None:
        reported = Collector()
        srv = tcpgo.TcpServer("\n", host=LOOPBACK, batch_sends=False,
                              on_error=lambda cid, e: reported.add((cid, e)))

        @srv.on_message
        def handler(cid: int, data: bytes) -> None:
            srv.send(cid, data)
            srv.send(987654, b"to nobody")  # raises: logged, reported

        with srv, self.assertLogs("tcpgo", level="ERROR"):
            port = srv.start(0)
            self.assertEqual(tcpgo.request(LOOPBACK, port, "y", timeout=TIMEOUT), b"y")
            cid, err = reported.wait_count(1)[0]
            self.assertIsInstance(err, tcpgo.SendError)
            self.assertNotEqual(cid, 0)

    def test_value_errors_are_still_raised_inside_handlers(self) -> None:
        reported = Collector()
        srv = tcpgo.TcpServer("\n", max_len=8, host=LOOPBACK,
                              on_error=lambda cid, e: reported.add(e))

        @srv.on_message
        def handler(cid: int, data: bytes) -> None:
            srv.send(cid, b"has\nnewline")

        with srv, self.assertLogs("tcpgo", level="ERROR"):
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                c.send("z")
                self.assertIsInstance(reported.wait_count(1)[0], ValueError)

    def test_large_batched_replies(self) -> None:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK)
        srv.on_message(lambda cid, d: [srv.send(cid, d * 1000 + str(i).encode()) for i in range(40)])
        with srv:  # 40 x ~64 KB per message: crosses the 1 MiB batch bound
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, port)
                c.send(b"y" * 64)
                for i in range(40):
                    self.assertEqual(c.recv(TIMEOUT), b"y" * 64000 + str(i).encode())

    def test_flush_and_linger(self) -> None:
        est, got, closed = Collector(), Collector(), Collector()
        with tcpgo.TcpServer("\n", host=LOOPBACK, linger=0.5, on_established=est,
                             on_closed=closed, on_message=lambda cid, d: got.add(d)) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n", linger=2) as c:
                c.connect(LOOPBACK, port)
                cid = est.wait_count(1)[0]
                srv.send(cid, "from server")
                self.assertTrue(srv.flush(cid, timeout=TIMEOUT))
                self.assertTrue(srv.flush(timeout=TIMEOUT))  # every client
                self.assertEqual(c.recv(TIMEOUT), b"from server")
                c.send("from client")
                self.assertTrue(c.flush(TIMEOUT))
                got.wait_count(1)
            closed.wait_count(1)
            self.assertFalse(srv.flush(cid, timeout=0.1))  # gone
        with self.assertRaises(ValueError):
            tcpgo.TcpClient(linger=-1)

    def test_send_then_close_delivers(self) -> None:
        got = Collector()
        with tcpgo.TcpServer("\n", host=LOOPBACK, on_message=lambda cid, d: got.add(d)) as srv:
            port = srv.start(0)
            for i in range(10):
                with tcpgo.TcpClient("\n") as c:
                    c.connect(LOOPBACK, port)
                    c.send(f"last words {i}")
                # close() lingers until the message was written
            self.assertEqual(sorted(got.wait_count(10)), sorted(f"last words {i}".encode()
                                                                  for i in range(10)))


class ManyClientsTest(TestCase):
    def run_clients(self, srv: tcpgo.TcpServer, make_client, n: int, msgs: int) -> None:
        est = Collector()
        srv.on_established(est)
        port = srv.start(0)
        clients = []
        try:
            for _ in range(n):
                clients.append(make_client().connect(LOOPBACK, port))
            est.wait_count(n)
            self.assertEqual(len(srv.clients), n)
            for i, c in enumerate(clients):
                for j in range(msgs):
                    c.send(f"{i}:{j}")
            for i, c in enumerate(clients):
                got = [c.recv(TIMEOUT) for _ in range(msgs)]
                self.assertEqual(got, [f"{i}:{j}".encode() for j in range(msgs)])
        finally:
            for c in clients:
                c.close()

    def test_100_tcp_clients(self) -> None:
        with echo_server("\n") as srv:
            self.run_clients(srv, lambda: tcpgo.TcpClient("\n"), 100, 20)

    def test_100_mutual_tls_clients(self) -> None:
        with tls_echo_server("\n") as srv:
            self.run_clients(srv, lambda: tls_client("\n"), 100, 5)

    def test_100_clients_connecting_concurrently(self) -> None:
        errors = Collector()
        with echo_server("\n") as srv:
            port = srv.start(0)

            def one(i: int) -> None:
                try:
                    self.assertEqual(tcpgo.request(LOOPBACK, port, f"c{i}", timeout=TIMEOUT),
                                     f"c{i}".encode())
                except BaseException as e:  # reported below
                    errors.add(e)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(TIMEOUT * 3)
            self.assertEqual(errors.snapshot(), [])


class GarbageCollectionTest(TestCase):
    def test_handlers_survive_gc_under_load(self) -> None:
        """Handlers referenced only by the server; gc runs all the time."""
        stop_gc = threading.Event()

        def collect() -> None:
            while not stop_gc.is_set():
                gc.collect()

        gc_thread = threading.Thread(target=collect)
        gc_thread.start()
        try:
            srv = tcpgo.TcpServer("\n", host=LOOPBACK)
            srv.on_message((lambda s: lambda cid, data: s.send(cid, data[::-1]))(srv))
            srv.on_established(lambda cid: None)
            srv.on_closed(lambda cid: None)
            port = srv.start(0)
            clients = [tcpgo.TcpClient("\n").connect(LOOPBACK, port) for _ in range(20)]
            for round_ in range(20):
                for i, c in enumerate(clients):
                    for j in range(10):
                        c.send(f"{round_}-{i}-{j}")
                for i, c in enumerate(clients):
                    for j in range(10):
                        self.assertEqual(c.recv(TIMEOUT), f"{round_}-{i}-{j}".encode()[::-1])
            for c in clients:
                c.close()
            srv.close()
        finally:
            stop_gc.set()
            gc_thread.join()

    def test_dropping_a_running_server_keeps_it_serving(self) -> None:
        srv = echo_server("\n")
        port = srv.start(0)
        ref = weakref.ref(srv)
        del srv
        gc.collect()
        self.assertIsNotNone(ref())  # a running server keeps itself alive
        self.assertEqual(tcpgo.request(LOOPBACK, port, "still here", timeout=TIMEOUT), b"still here")
        tcpgo.stop_all()
        gc.collect()
        self.assertIsNone(ref())  # stopped and unreferenced: collected and freed
        with self.assertRaises(tcpgo.ConnectError):
            tcpgo.request(LOOPBACK, port, "gone", timeout=TIMEOUT)

    def test_dropping_stopped_objects_frees_them(self) -> None:
        for _ in range(200):
            s = tcpgo.TcpServer("\n")
            c = tcpgo.TcpClient("\n")
            del s, c
        gc.collect()

    def test_interpreter_exit_with_running_servers_and_busy_handlers(self) -> None:
        code = r"""
import sys, threading, tcpgo
srv = tcpgo.TcpServer("\n", host="127.0.0.1")
srv.on_message(lambda cid, data: srv.send(cid, data))
port = srv.start(0)
clients = []
for i in range(10):
    c = tcpgo.TcpClient("\n")
    c.on_message(lambda data, c=c: c.send(data))   # endless ping-pong
    c.connect("127.0.0.1", port)
    c.send("ping")
    clients.append(c)
print("busy", flush=True)
# leave without stopping anything: atexit must stop it all
"""
        r = run_python(code, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("busy", r.stdout)
        self.assertNotIn("Traceback", r.stderr)

    def test_exit_from_inside_a_handler_thread_program(self) -> None:
        code = r"""
import os, threading, tcpgo
srv = tcpgo.TcpServer("\n", host="127.0.0.1")
done = threading.Event()
@srv.on_message
def handler(cid, data):
    srv.send(cid, data)
    done.set()
port = srv.start(0)
c = tcpgo.TcpClient("\n").connect("127.0.0.1", port)
c.send("x")
done.wait(10)
raise SystemExit(7)
"""
        r = run_python(code, timeout=60)
        self.assertEqual(r.returncode, 7, r.stderr)


if __name__ == "__main__":
    unittest.main()
