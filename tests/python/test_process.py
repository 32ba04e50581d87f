"""Ctrl-C during serve_forever, the fork guard, lazy loading, library lookup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import unittest

from _support import (LOOPBACK, TIMEOUT, TestCase, echo_server, run_python, subprocess_env)

import tcpgo

SERVE_SCRIPT = r"""
import sys, tcpgo
srv = tcpgo.TcpServer("\n", host="127.0.0.1")
srv.on_message(lambda cid, data: srv.send(cid, data))
port = srv.start(0)
try:
    print("ready", port, flush=True)
    srv.serve_forever()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    srv.close()
    sys.exit(0)
print("serve_forever returned without KeyboardInterrupt", flush=True)
sys.exit(1)
"""


def wait_child(pid: int, timeout: float) -> int:
    """waitpid with a deadline (a broken child must not hang the test)."""
    end = time.monotonic() + timeout
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -999
        time.sleep(0.01)  # polling a child's exit, not synchronising threads


class SigintTest(TestCase):
    def run_and_interrupt(self, argv: list, ready_word: str) -> subprocess.CompletedProcess:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=subprocess_env())
        try:
            assert p.stdout is not None
            line = p.stdout.readline()  # the child prints its ready line first
            self.assertIn(ready_word, line, p.stderr.read() if p.poll() is not None else "")
            port = int(line.rsplit(":", 1)[-1].split()[0]) if ":" in line else int(line.split()[1])
            # the server really serves
            self.assertEqual(tcpgo.request(LOOPBACK, port, "hi", timeout=TIMEOUT), b"hi")
            # a client stays connected while we interrupt
            c = tcpgo.TcpClient("\n").connect(LOOPBACK, port)
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=5)
            elapsed = time.monotonic() - t0
            self.assertLess(elapsed, 5)
            self.assertTrue(c.wait_closed(TIMEOUT))
            c.close()
            return subprocess.CompletedProcess(argv, p.returncode, line + out, err)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def test_sigint_stops_serve_forever(self) -> None:
        r = self.run_and_interrupt([sys.executable, "-c", SERVE_SCRIPT], "ready")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("interrupted", r.stdout)
        self.assertNotIn("Traceback", r.stderr)

    def test_sigint_stops_cli_serve(self) -> None:
        r = self.run_and_interrupt([sys.executable, "-m", "tcpgo", "serve", "--host", LOOPBACK],
                                   "listening on")
        self.assertEqual(r.returncode, 130, r.stderr)  # 128 + SIGINT, as shells report it
        self.assertIn("stopped", r.stderr)

    def test_uncaught_keyboard_interrupt_still_exits_promptly(self) -> None:
        code = ("import tcpgo\nsrv = tcpgo.TcpServer(host='127.0.0.1')\n"
                "print('ready', srv.start(0), flush=True)\nsrv.serve_forever()\n")
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=subprocess_env())
        try:
            assert p.stdout is not None
            self.assertIn("ready", p.stdout.readline())
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=5)
            self.assertIn("KeyboardInterrupt", err)
            self.assertNotEqual(p.returncode, 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


@unittest.skipUnless(hasattr(os, "fork"), "needs fork")
class ForkGuardTest(TestCase):
    def test_forked_child_gets_fork_error(self) -> None:
        with echo_server("\n") as srv:  # the library is loaded and in use
            port = srv.start(0)
            pid = os.fork()
            if pid == 0:  # child: every call must raise ForkError, not hang
                code = 1
                try:
                    try:
                        tcpgo.TcpServer()
                    except tcpgo.ForkError as e:
                        code = 10 if "fork" in str(e) else 2
                    try:
                        srv.send(1, b"x")
                    except tcpgo.ForkError:
                        code += 1
                    try:
                        srv.stop()
                    except tcpgo.ForkError:
                        code += 1
                finally:
                    os._exit(code)
            self.assertEqual(wait_child(pid, 20), 12)
            # the parent is unaffected
            self.assertEqual(tcpgo.request(LOOPBACK, port, "parent", timeout=TIMEOUT), b"parent")

    def test_forked_child_exits_cleanly_through_atexit(self) -> None:
        code = r"""
import os, sys, tcpgo
srv = tcpgo.TcpServer("\n", host="127.0.0.1"); srv.start(0)
pid = os.fork()
if pid == 0:
    sys.exit(5)          # runs atexit in the child: must not touch the library
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status), flush=True)
"""
        r = run_python(code, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("child 5", r.stdout)

    def test_fork_before_first_use_is_fine(self) -> None:
        # import tcpgo does not load the library: a child forked before any use
        # may use tcpgo itself (and so may the parent).
        code = r"""
import os, tcpgo
from tcpgo import _lib
assert not _lib.is_loaded(), "import must not load the library"
pid = os.fork()
if pid == 0:
    srv = tcpgo.TcpServer("\n", host="127.0.0.1")
    srv.on_message(lambda c, d: srv.send(c, d))
    port = srv.start(0)
    ok = tcpgo.request("127.0.0.1", port, "child", timeout=10) == b"child"
    srv.close()
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
srv = tcpgo.TcpServer(host="127.0.0.1"); srv.start(0); srv.close()
print("child", os.waitstatus_to_exitcode(status), flush=True)
"""
        r = run_python(code, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("child 0", r.stdout)


class LibraryLookupTest(TestCase):
    def test_missing_library_is_an_import_error_saying_what_to_do(self) -> None:
        r = run_python("import tcpgo", env=subprocess_env(TCPGO_LIBRARY="/nonexistent/libtcpserver.so"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("TCPGO_LIBRARY", r.stderr)
        self.assertIn("make", r.stderr)

    def test_tcpgo_library_is_used(self) -> None:
        lib = os.environ.get("TCPGO_LIBRARY")
        if not lib:
            self.skipTest("TCPGO_LIBRARY not set (using an installed library)")
        r = run_python("import tcpgo; print(tcpgo.library_path()); print(tcpgo.library_version())")
        self.assertEqual(r.returncode, 0, r.stderr)
        path, version = r.stdout.split()
        self.assertEqual(path, lib)
        self.assertEqual(version, "0.1.0")

    def test_versions(self) -> None:
        self.assertEqual(tcpgo.library_version().split(".")[0], tcpgo.__version__.split(".")[0])


if __name__ == "__main__":
    unittest.main()
