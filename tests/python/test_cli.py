"""python -m tcpgo serve | send | certs | bench, and tcpgo.request()."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import unittest

from _support import (LOOPBACK, ROOT, TIMEOUT, Collector, TestCase, echo_server, free_port,
                      subprocess_env, tempdir, tls_echo_server, certs)

import tcpgo


def cli(*args: str, input: str = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tcpgo", *args], capture_output=True, text=True,
                          input=input, timeout=timeout, env=subprocess_env())


class Serve:
    """`python -m tcpgo serve ...` in a child process, stopped with SIGINT."""

    def __init__(self, *args: str) -> None:
        self.p = subprocess.Popen([sys.executable, "-m", "tcpgo", "serve", "--host", LOOPBACK,
                                   *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=subprocess_env())
        assert self.p.stdout is not None
        self.ready = self.p.stdout.readline()
        if "listening on" not in self.ready:
            self.p.kill()
            raise AssertionError(f"serve did not start: {self.ready!r} {self.p.stderr.read()}")
        self.port = int(self.ready.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])

    def readline(self) -> str:
        assert self.p.stdout is not None
        return self.p.stdout.readline()

    def stop(self, sig: int = signal.SIGINT) -> "tuple[str, str]":
        self.p.send_signal(sig)
        out, err = self.p.communicate(timeout=10)
        return out, err

    def __enter__(self) -> "Serve":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.p.poll() is None:
            self.stop()


class CliTest(TestCase):
    def test_certs_serve_send_over_mutual_tls(self) -> None:
        d = tempdir()
        r = cli("certs", d)
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key"):
            self.assertTrue(os.path.isfile(os.path.join(d, name)))
            self.assertIn(os.path.join(d, name), r.stdout)
        with Serve("--certs", d) as srv:
            self.assertIn("tls", srv.ready)
            r = cli("send", LOOPBACK, str(srv.port), "hello", "over", "tls", "--certs", d)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "hello over tls\n")
            # explicit files, host name verification against 'localhost'
            r = cli("send", "localhost", str(srv.port), "named", "--ca", f"{d}/ca.pem",
                    "--cert", f"{d}/client.pem", "--key", f"{d}/client.key")
            self.assertEqual(r.stdout, "named\n", r.stderr)
            # without a client certificate the server refuses
            r = cli("send", LOOPBACK, str(srv.port), "x", "--ca", f"{d}/ca.pem", "--timeout", "5")
            self.assertEqual(r.returncode, 1)
            self.assertIn("tcpgo send:", r.stderr)

    def test_plain_serve_and_send_lines_from_stdin(self) -> None:
        with Serve() as srv:
            self.assertIn("tcp", srv.ready)
            r = cli("send", LOOPBACK, str(srv.port), input="one\ntwo\nthree\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.splitlines(), ["one", "two", "three"])

    def test_print_mode(self) -> None:
        with Serve("--mode", "print") as srv:
            with tcpgo.TcpClient("\n") as c:
                c.connect(LOOPBACK, srv.port)
                c.send("printed")
                self.assertEqual(srv.readline().strip().split(" ", 1)[1], "printed")

    def test_continuous_mode_serve(self) -> None:
        with Serve("--delimiter", "none") as srv:
            self.assertIn("continuous", srv.ready)
            self.assertEqual(tcpgo.request(LOOPBACK, srv.port, b"raw", delimiter=None,
                                           timeout=TIMEOUT), b"raw")

    def test_serve_errors(self) -> None:
        with echo_server() as busy:
            port = busy.start(0)
            r = subprocess.run([sys.executable, "-m", "tcpgo", "serve", "--host", LOOPBACK,
                                "--port", str(port)], capture_output=True, text=True, timeout=30,
                               env=subprocess_env())
            self.assertEqual(r.returncode, 1)
            self.assertIn("port in use", r.stderr)
        r = cli("serve", "--cert", "/nonexistent.pem", "--key", "/nonexistent.key")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent.pem", r.stderr)

    def test_send_errors(self) -> None:
        r = cli("send", LOOPBACK, str(free_port()), "x", "--timeout", "5")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect", r.stderr)
        with tcpgo.TcpServer("\n", host=LOOPBACK) as silent:
            port = silent.start(0)
            r = cli("send", LOOPBACK, str(port), "x", "--timeout", "0.2")
            self.assertEqual(r.returncode, 1)
            self.assertIn("no reply", r.stderr)

    def test_send_no_reply(self) -> None:
        got = Collector()
        with tcpgo.TcpServer("\n", host=LOOPBACK, on_message=lambda cid, d: got.add(d)) as srv:
            port = srv.start(0)
            r = cli("send", LOOPBACK, str(port), "fire", "and", "forget", "--no-reply")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(got.wait_count(1), [b"fire and forget"])

    def test_bench(self) -> None:
        r = cli("bench", "--duration", "1", "--conns", "4", "--inflight", "4", "--python-load",
                timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertGreater(res["msgs_per_s"], 0)
        self.assertEqual(res["errors"], 0)
        self.assertEqual(res["load"], "python")
        loadgen = ROOT / "build" / "bench" / "loadgen"
        if loadgen.is_file():
            r = cli("bench", "--duration", "1", "--conns", "4", "--inflight", "4", "--tls",
                    "--loadgen", str(loadgen), timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            self.assertGreater(res["msgs_per_s"], 0)
            self.assertEqual(res["errors"], 0)

    def test_help(self) -> None:
        r = cli("--help")
        self.assertEqual(r.returncode, 0)
        for word in ("serve", "send", "certs", "bench", "--version", "examples:"):
            self.assertIn(word, r.stdout)
        for command in ("serve", "send", "certs", "bench"):
            with self.subTest(command=command):
                r = cli(command, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(f"usage: {os.path.basename(sys.executable)} -m tcpgo {command}",
                              r.stdout)
                examples = r.stdout.split("examples:\n", 1)[1].splitlines()
                self.assertTrue(any(f"-m tcpgo {command}" in line for line in examples),
                                r.stdout)

    def test_help_names_the_console_script(self) -> None:
        from tcpgo import cli as tcpgo_cli

        text = tcpgo_cli.build_parser("tcpgo").format_help()
        self.assertIn("usage: tcpgo ", text)
        self.assertIn("  tcpgo serve --port 9443 --certs pki", text)

    def test_version(self) -> None:
        r = cli("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"tcpgo {tcpgo.__version__}", r.stdout)
        self.assertIn(f"library {tcpgo.library_version()}", r.stdout)

    def test_serve_exit_status_after_a_signal(self) -> None:
        for sig, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            with self.subTest(signal=sig.name):
                srv = Serve()
                _, err = srv.stop(sig)
                self.assertEqual(srv.p.returncode, status, err)
                self.assertIn("stopped", err)


class RequestTest(TestCase):
    def test_tcp(self) -> None:
        with echo_server("\n") as srv:
            port = srv.start(0)
            self.assertEqual(tcpgo.request(LOOPBACK, port, "hello"), b"hello")
            self.assertEqual(tcpgo.request(LOOPBACK, port, b"\x00\xff"), b"\x00\xff")

    def test_continuous_and_custom_delimiter(self) -> None:
        with echo_server(None) as srv:
            port = srv.start(0)
            self.assertEqual(tcpgo.request(LOOPBACK, port, b"chunk", delimiter=None), b"chunk")
        with echo_server(";") as srv:
            port = srv.start(0)
            self.assertEqual(tcpgo.request(LOOPBACK, port, "semi", delimiter=";"), b"semi")

    def test_mutual_tls(self) -> None:
        c = certs()
        with tls_echo_server("\n") as srv:
            port = srv.start(0)
            self.assertEqual(tcpgo.request(LOOPBACK, port, "tls", tls=True, ca=c.ca,
                                           cert=c.client_cert, key=c.client_key, timeout=TIMEOUT),
                             b"tls")
            self.assertEqual(tcpgo.request("localhost", port, "tls", tls=True, ca=c.ca,
                                           cert=c.client_cert, key=c.client_key, verify="ca"),
                             b"tls")
        with self.assertRaises(ValueError):
            tcpgo.request(LOOPBACK, 1, "x", ca=c.ca)  # TLS files without tls=True

    def test_timeout_and_refused(self) -> None:
        with tcpgo.TcpServer("\n", host=LOOPBACK) as silent:
            port = silent.start(0)
            with self.assertRaises(TimeoutError):
                tcpgo.request(LOOPBACK, port, "anyone?", timeout=0.1)
        with self.assertRaises(tcpgo.ConnectError):
            tcpgo.request(LOOPBACK, free_port(), "x", timeout=2)

    def test_server_that_closes_without_reply(self) -> None:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK)
        srv.on_message(lambda cid, d: srv.close_client(cid))
        with srv:
            port = srv.start(0)
            with self.assertRaises(tcpgo.ConnectionClosedError):
                tcpgo.request(LOOPBACK, port, "bye", timeout=TIMEOUT)


if __name__ == "__main__":
    unittest.main()
