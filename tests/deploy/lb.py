"""Processes of the load-balancer tests and bench: real HAProxy and nginx
started from the templates in examples/deploy/, the tcpgo backend and load
client of tests/deploy/ -- each in its own process group, on loopback, with
its files in a temporary directory, and killed (the whole group) by
:meth:`Procs.close` whatever happened.

Standard library only. Used by tests/deploy/test_deploy.py,
tests/python/test_proxy.py and bench/deploy/run.py.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, TypeVar

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "deploy"
NGINX_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
WAIT = 10.0  # upper bound of every wait; a passing run waits far less
# Children die with the test process even when it is killed (setpriv runs
# the command with PR_SET_PDEATHSIG; it is in util-linux, Essential in Debian).
PDEATHSIG = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []


def tool(name: str) -> Optional[str]:
    """The path of a program, also in /usr/sbin and /sbin (where Debian puts
    haproxy and nginx, and which a normal user's PATH lacks)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def missing_tools() -> List[str]:
    """What of HAProxy / nginx with its stream module this machine lacks
    (Debian packages: haproxy, nginx-light, libnginx-mod-stream)."""
    out = []
    if not tool("haproxy"):
        out.append("haproxy (Debian package haproxy)")
    if not tool("nginx"):
        out.append("nginx (Debian package nginx-light)")
    if not NGINX_STREAM_MODULE.exists():
        out.append(f"{NGINX_STREAM_MODULE} (Debian package libnginx-mod-stream)")
    return out


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for a proxy, which needs its port
    in its configuration; tcpgo servers take port 0 instead)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def render(template: Path, values: Dict[str, str]) -> str:
    """The template with every ${NAME} of values replaced (nginx's own
    $variables are left alone). An unknown ${NAME} is an error."""
    def sub(m: "re.Match[str]") -> str:
        if m.group(1) not in values:
            raise KeyError(f"{template}: no value for ${{{m.group(1)}}}")
        return values[m.group(1)]
    return re.sub(r"\$\{([A-Z0-9_]+)\}", sub, template.read_text())


def wait_until(cond, what: str, timeout: float = WAIT, step: float = 0.01):
    """Polls cond() until it returns something true; raises after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def wait_listening(port: int, host: str = "127.0.0.1", proc: "Optional[Proc]" = None) -> None:
    def up() -> bool:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.output()}")
        with socket.socket() as s:
            return s.connect_ex((host, port)) == 0
    wait_until(up, f"port {port} to listen")


_live: "set[Proc]" = set()


@atexit.register
def _kill_leftovers() -> None:
    for p in list(_live):
        p.kill_group()


class Proc:
    """A child in its own process group; its stdout lines are collected by a
    thread (and stderr goes to the same pipe)."""

    def __init__(self, name: str, argv: Sequence[str], cwd: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None, stdin: bool = True) -> None:
        self.name = name
        self.argv = list(argv)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.all: List[str] = []
        self.popen = subprocess.Popen(
            PDEATHSIG + self.argv, cwd=cwd, env=env, start_new_session=True, text=True, bufsize=1,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _live.add(self)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            line = line.rstrip("\n")
            self.all.append(line)
            self.lines.put(line)

    def _ready(self, wait: Callable[[], None]) -> None:
        """Runs wait(); if it fails, the process group is killed first."""
        try:
            wait()
        except BaseException:
            self.kill_group()
            raise

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self, last: int = 40) -> str:
        return "\n".join(self.all[-last:])

    def expect(self, prefix: str, timeout: float = WAIT) -> str:
        """The rest of the next line starting with prefix (other lines are
        skipped; they stay in .all)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(0.0, min(left, 0.2)))
            except queue.Empty:
                if self.popen.poll() is not None and self.lines.empty():
                    self._reader.join(1)
                    if self.lines.empty():
                        raise RuntimeError(f"{self.name} exited ({self.popen.returncode}) before "
                                           f"printing {prefix!r}:\n{self.output()}") from None
                if left <= 0:
                    raise TimeoutError(f"{self.name}: no {prefix!r} line within {timeout} s:\n"
                                       f"{self.output()}") from None
                continue
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def send(self, text: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(text)
        self.popen.stdin.flush()

    def close_stdin(self) -> None:
        try:
            if self.popen.stdin is not None:
                self.popen.stdin.close()
        except OSError:
            pass

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL to the whole process group (nginx's workers too)."""
        _live.discard(self)
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(2)
        if self.popen.stdout is not None and not self._reader.is_alive():
            self.popen.stdout.close()

    def wait(self, timeout: float = WAIT) -> int:
        rc = self.popen.wait(timeout)
        self._reader.join(2)
        return rc


class Backend(Proc):
    """tests/deploy/backend.c: "PORT n" on start, "stats" on stdin."""

    def __init__(self, binary: str, name: str, args: Sequence[str] = ()) -> None:
        super().__init__(name, [binary, "--name", name, *args])
        self.port = 0

        def started() -> None:
            self.port = int(self.expect("PORT "))
        self._ready(started)
        self.address = f"127.0.0.1:{self.port}"

    def stats(self) -> dict:
        self.send("stats\n")
        return json.loads(self.expect("STATS "))

    def stop(self) -> dict:
        """End of stdin: the server stops; returns its last stats."""
        self.close_stdin()
        stats = json.loads(self.expect("STATS "))
        while not stats.get("final"):
            stats = json.loads(self.expect("STATS "))
        self.wait()
        return stats


class Load(Proc):
    """tests/deploy/client.c: PROGRESS lines, RESULT at the end."""

    def __init__(self, binary: str, port: int, args: Sequence[str] = (), name: str = "client") -> None:
        self.progress = 0
        self.progress_lines = 0
        self.result: Optional[dict] = None
        super().__init__(name, [binary, "--port", str(port), *args])

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            line = line.rstrip("\n")
            if line.startswith("PROGRESS "):
                self.progress = int(line.split()[1])
                self.progress_lines += 1
                continue
            self.all.append(line)
            if line.startswith("RESULT "):
                self.result = json.loads(line[len("RESULT "):])
            self.lines.put(line)

    def fresh_progress(self, timeout: float = WAIT) -> int:
        """The count of the next PROGRESS line (they come every 100 ms), so
        it is not older than this call."""
        seen = self.progress_lines
        wait_until(lambda: self.progress_lines > seen, f"{self.name}'s next PROGRESS line", timeout)
        return self.progress

    def wait_progress(self, at_least: int, timeout: float = WAIT) -> None:
        def ok() -> bool:
            if self.popen.poll() is not None:
                self._reader.join(1)
                raise RuntimeError(f"{self.name} ended early:\n{self.output()}")
            return self.progress >= at_least
        wait_until(ok, f"{self.name} to have {at_least} messages acknowledged", timeout)

    def finish(self, timeout: float = WAIT) -> dict:
        """Ends the run (stop on stdin) and returns the RESULT."""
        try:
            self.send("stop\n")
        except (BrokenPipeError, OSError):
            pass
        self.close_stdin()
        self.wait(timeout)
        if self.result is None:
            raise RuntimeError(f"{self.name} printed no RESULT:\n{self.output()}")
        return self.result


class HAProxy(Proc):
    """haproxy -db (foreground) from a template of examples/deploy/: the
    template's ${NAME}s come from the environment (HAProxy expands them
    itself), the admin socket answers show stat."""

    def __init__(self, run_dir: str, template: str, values: Dict[str, str], port: int) -> None:
        self.run_dir = run_dir
        self.socket_path = os.path.join(run_dir, "haproxy.sock")
        env = dict(os.environ, RUN_DIR=run_dir, **values)
        cfg = EXAMPLES / template if "/" not in template else Path(template)
        super().__init__("haproxy", [tool("haproxy") or "haproxy", "-f", str(cfg), "-db"],
                         cwd=run_dir, env=env,
                         stdin=False)
        self.port = port

        def started() -> None:
            wait_listening(port, proc=self)
            wait_until(lambda: os.path.exists(self.socket_path), "the HAProxy admin socket")
        self._ready(started)

    def command(self, cmd: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(WAIT)
            s.connect(self.socket_path)
            s.sendall(cmd.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data.decode()
                data += chunk

    def server_status(self) -> Dict[str, str]:
        """Server name -> status ("UP", "DOWN", "UP 1/2"...)."""
        lines = self.command("show stat").splitlines()
        head = lines[0].lstrip("# ").split(",")
        name, status, kind = head.index("svname"), head.index("status"), head.index("type")
        out = {}
        for line in lines[1:]:
            f = line.split(",")
            if len(f) > kind and f[kind] == "2":  # 2 = server
                out[f[name]] = f[status]
        return out

    def wait_status(self, server: str, status: str, timeout: float = WAIT) -> None:
        wait_until(lambda: self.server_status().get(server) == status,
                   f"HAProxy to see {server} {status}", timeout)


class Nginx(Proc):
    """nginx (master and one worker, daemon off) from examples/deploy/nginx.conf
    rendered into run_dir."""

    def __init__(self, run_dir: str, values: Dict[str, str], port: int,
                 template: str = "nginx.conf") -> None:
        conf = os.path.join(run_dir, "nginx.conf")
        Path(conf).write_text(render(EXAMPLES / template, dict(values, RUN_DIR=run_dir)))
        self.error_log = os.path.join(run_dir, "error.log")
        # master_process off: one process, so that PDEATHSIG reaches all of
        # nginx (a worker outlives a killed master); the proxying is the same.
        super().__init__("nginx", [tool("nginx") or "nginx", "-p", run_dir, "-c", conf,
                                   "-e", self.error_log,
                                   "-g", "master_process off;"],
                         cwd=run_dir, stdin=False)
        self.port = port

        def started() -> None:
            try:
                wait_listening(port, proc=self)
            except RuntimeError as e:
                raise RuntimeError(f"{e}\n{self.log()}") from None
        self._ready(started)

    def log(self) -> str:
        try:
            return Path(self.error_log).read_text()
        except OSError:
            return ""


P = TypeVar("P", bound=Proc)


class Procs:
    """Everything a test started; close() kills every process group (in the
    reverse order), also after a failure."""

    def __init__(self) -> None:
        self.procs: List[Proc] = []

    def add(self, p: P) -> P:
        self.procs.append(p)
        return p

    def close(self) -> None:
        for p in reversed(self.procs):
            p.close_stdin()
            p.kill_group()
        self.procs.clear()
