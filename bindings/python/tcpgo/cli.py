"""Command line: ``tcpgo serve | send | certs | bench`` (or ``python -m tcpgo ...``).

Examples (a mutual-TLS echo on loopback)::

    tcpgo certs pki
    tcpgo serve --host 127.0.0.1 --port 9443 --certs pki      # Ctrl-C stops it
    tcpgo send 127.0.0.1 9443 "hello" --certs pki             # prints: hello

``serve`` prints one line ``tcpgo: listening on HOST:PORT ...`` when it is ready.
``--certs DIR`` is a shortcut for the files written by ``certs``: the server
uses ``server.pem``/``server.key`` and requires client certificates signed by
``ca.pem``; the client uses ``ca.pem``, ``client.pem`` and ``client.key``.
``tcpgo --version`` prints the package's and the library's versions;
``tcpgo COMMAND --help`` the options and examples of a command.

Exit status: 0 on success, 1 when the command failed, 2 for bad arguments,
128 + the signal number when a signal stopped it (130 for Ctrl-C / SIGINT,
143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Deque, List, Optional, Sequence

from . import __version__, errors
from .client import TcpClient, TlsClient
from .server import TcpServer, TlsServer
from .util import generate_certs, library_path, library_version

EXIT_SIGINT = 128 + signal.SIGINT


class _Stopped(KeyboardInterrupt):
    """Raised by the SIGTERM handler: stop like Ctrl-C, exit 128 + SIGTERM."""

    signum = signal.SIGTERM


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Stopped()


def _delimiter(text: str) -> Optional[bytes]:
    """'\\n' (default), '\\0', 'none' (continuous mode), a single character, or 0xNN."""
    if text.lower() in ("none", "", "continuous"):
        return None
    if text.lower().startswith("0x"):
        return bytes([int(text, 16)])
    b = text.encode("utf-8").decode("unicode_escape").encode("latin-1")
    if len(b) != 1:
        raise argparse.ArgumentTypeError(f"delimiter must be one byte, got {text!r}")
    return b


def _tls_files(args: argparse.Namespace, side: str) -> tuple:
    ca, cert, key = args.ca, args.cert, args.key
    if args.certs:
        d = Path(args.certs)
        ca = ca or str(d / "ca.pem")
        cert = cert or str(d / f"{side}.pem")
        key = key or str(d / f"{side}.key")
    return ca, cert, key


def _use_tls(args: argparse.Namespace) -> bool:
    return bool(args.tls or args.certs or args.cert or args.key or args.ca)


def _show(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# -- serve ---------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    delim = args.delimiter
    server: TcpServer
    if _use_tls(args):
        ca, cert, key = _tls_files(args, "server")
        if not cert or not key:
            print("tcpgo serve: TLS needs --cert and --key (or --certs DIR)", file=sys.stderr)
            return 2
        if args.no_client_cert:
            ca = None if not args.ca else ca
        server = TlsServer(cert, key, ca, delim, args.max_len, host=args.host)
        proto = "tls" + (" (client certificates required)" if ca else "")
    else:
        server = TcpServer(delim, args.max_len, host=args.host)
        proto = "tcp"
    out = sys.stdout
    lock = threading.Lock()

    if args.mode == "echo":
        @server.on_message
        def echo(cid: int, data: bytes) -> None:
            server.send(cid, data)
    else:
        @server.on_message
        def show(cid: int, data: bytes) -> None:
            with lock:
                out.write(f"[{cid}] {_show(data)}\n")
                out.flush()

    if args.verbose:
        @server.on_established
        def est(cid: int) -> None:
            who = server.client_ip(cid)
            if isinstance(server, TlsServer):
                cn = server.peer_subject_part(cid, "CN")
                if cn:
                    who += f" (CN={cn})"
            print(f"tcpgo: client {cid} connected from {who}", file=sys.stderr, flush=True)

        @server.on_closed
        def closed(cid: int) -> None:
            print(f"tcpgo: client {cid} disconnected", file=sys.stderr, flush=True)

        @server.on_error
        def err(cid: int, e: BaseException) -> None:
            print(f"tcpgo: error (client {cid}): {e}", file=sys.stderr, flush=True)

    # SIGTERM stops the server like Ctrl-C (the library installs no signal handler).
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        port = server.start(args.port)
    except errors.StartError as e:
        print(f"tcpgo serve: {e}", file=sys.stderr)
        return 1
    mode = "continuous" if delim is None else f"delimiter {delim!r}"
    try:  # the ready line inside the try: a Ctrl-C right after it is handled too
        print(f"tcpgo: listening on {args.host or '*'}:{port} ({proto}, {args.mode}, {mode}); "
              "Ctrl-C stops", flush=True)
        server.serve_forever()
    except KeyboardInterrupt as e:
        print("tcpgo: stopped", file=sys.stderr, flush=True)
        return 128 + getattr(e, "signum", signal.SIGINT)
    finally:
        server.close()
    return 0


# -- send ----------------------------------------------------------------------------
def cmd_send(args: argparse.Namespace) -> int:
    if args.message == ["-"] or not args.message:
        payloads: List[bytes] = [line.rstrip(b"\r\n") for line in sys.stdin.buffer]
    else:
        payloads = [" ".join(args.message).encode("utf-8")]
    client: TcpClient
    if _use_tls(args):
        ca, cert, key = _tls_files(args, "client")
        if args.certs and not (Path(args.certs) / "client.pem").exists():
            cert = key = None
        client = TlsClient(ca, cert, key, args.delimiter, verify=args.verify,
                           connect_timeout=args.timeout)
    else:
        client = TcpClient(args.delimiter, connect_timeout=args.timeout)
    try:
        with client:
            client.connect(args.host, args.port)
            for p in payloads:
                client.send(p)
                if not args.no_reply:
                    reply = client.recv(args.timeout)
                    sys.stdout.write(_show(reply) + "\n")
                    sys.stdout.flush()
    except TimeoutError:
        print(f"tcpgo send: no reply within {args.timeout:g} s", file=sys.stderr)
        return 1
    except (errors.Error, ValueError) as e:
        print(f"tcpgo send: {e}", file=sys.stderr)
        return 1
    return 0


# -- certs ---------------------------------------------------------------------------
def cmd_certs(args: argparse.Namespace) -> int:
    try:
        paths = generate_certs(args.directory, args.hosts)
    except (errors.Error, OSError) as e:
        print(f"tcpgo certs: {e}", file=sys.stderr)
        return 1
    for name, path in paths._asdict().items():
        print(f"{name:12} {path}")
    return 0


# -- bench ---------------------------------------------------------------------------
def _find_loadgen(explicit: Optional[str]) -> Optional[str]:
    if explicit:
        return explicit
    env = os.environ.get("TCPGO_LOADGEN")
    if env:
        return env
    here = Path(__file__).resolve().parent.parent.parent.parent / "build" / "bench" / "loadgen"
    if here.is_file():
        return str(here)
    return shutil.which("tcpgo-loadgen")


def _python_load(host: str, port: int, conns: int, inflight: int, size: int,
                 duration: float, tls: Optional[tuple], verify: str) -> dict:
    """A pipelined load generator made of tcpgo clients (one thread each)."""
    payload = (b"x" * max(0, size - 1))
    lat: List[float] = []
    lock = threading.Lock()
    counts = [0]
    errs = [0]
    stop_at = [0.0]
    clients: List[TcpClient] = []
    for _ in range(conns):
        if tls:
            c: TcpClient = TlsClient(tls[0], tls[1], tls[2], b"\n", verify=verify)
        else:
            c = TcpClient(b"\n")
        sent: Deque[float] = deque()
        local: List[float] = []

        def on_message(data: bytes, c: TcpClient = c, sent: Deque[float] = sent,
                       local: List[float] = local) -> None:
            now = time.perf_counter()
            if data != payload:
                errs[0] += 1
            local.append(now - sent.popleft())
            if now < stop_at[0]:
                sent.append(time.perf_counter())
                c.send(payload)

        c.on_message(on_message)
        clients.append(c)
        c._bench = (sent, local)  # type: ignore[attr-defined]
    try:
        for c in clients:
            c.connect(host, port)
        t0 = time.perf_counter()
        stop_at[0] = t0 + duration
        for c in clients:
            sent, _ = c._bench  # type: ignore[attr-defined]
            for _ in range(inflight):
                sent.append(time.perf_counter())
                c.send(payload)
        time.sleep(duration)
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline and any(c._bench[0] for c in clients):  # type: ignore
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
    finally:
        for c in clients:
            c.close()
    with lock:
        for c in clients:
            lat.extend(c._bench[1])  # type: ignore[attr-defined]
            counts[0] += len(c._bench[1])  # type: ignore[attr-defined]
            errs[0] += len(c._bench[0])  # type: ignore[attr-defined]
    lat.sort()

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(len(lat) * p))] * 1e6, 1) if lat else 0.0

    return {"msgs_per_s": round(counts[0] / elapsed, 1), "p50_us": pct(0.50),
            "p99_us": pct(0.99), "errors": errs[0]}


def cmd_bench(args: argparse.Namespace) -> int:
    tls = _use_tls(args)
    proc: Optional[subprocess.Popen] = None
    host, port = args.host, args.port
    certdir = args.certs
    if tls and not certdir and not (args.ca and args.cert and args.key):
        import tempfile
        certdir = tempfile.mkdtemp(prefix="tcpgo-bench-")
        generate_certs(certdir)
        args.certs = certdir
    if port == 0:
        # Our own echo server, in a child process so that it has its own GIL.
        cmd = [sys.executable, "-m", "tcpgo", "serve", "--host", host, "--port", "0"]
        if tls:
            cmd += ["--certs", args.certs]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            print(f"tcpgo bench: server did not start: {line!r}", file=sys.stderr)
            proc.kill()
            return 1
        port = int(line.split("listening on ", 1)[1].split(" ", 1)[0].rsplit(":", 1)[1])
    try:
        loadgen = None if args.python_load else _find_loadgen(args.loadgen)
        if loadgen:
            cmd = [loadgen, "-addr", f"{host}:{port}", "-conns", str(args.conns), "-inflight",
                   str(args.inflight), "-size", str(args.size), "-duration", f"{args.duration:g}s"]
            if tls:
                ca, cert, key = _tls_files(args, "client")
                cmd += ["-tls", "-ca", ca, "-cert", cert, "-key", key]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
            if r.returncode != 0:
                print(f"tcpgo bench: loadgen failed: {r.stderr.strip()}", file=sys.stderr)
                return 1
            result = json.loads(r.stdout.strip().splitlines()[-1])
            result["load"] = os.path.basename(loadgen)
        else:
            files = _tls_files(args, "client") if tls else None
            result = _python_load(host, port, args.conns, args.inflight, args.size,
                                  args.duration, files, args.verify)
            result["load"] = "python"
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(result))
    return 0


# -- parser ----------------------------------------------------------------------------
def _add_tls(p: argparse.ArgumentParser, side: str) -> None:
    g = p.add_argument_group("TLS")
    g.add_argument("--tls", action="store_true", help="use TLS (implied by the options below)")
    g.add_argument("--certs", metavar="DIR",
                   help=f"use the files of `tcpgo certs DIR` (ca.pem, {side}.pem, {side}.key)")
    g.add_argument("--ca", help="PEM file of the CA that the peer's certificate must chain to")
    g.add_argument("--cert", help="own certificate (PEM)")
    g.add_argument("--key", help="own private key (PEM)")


class _Version(argparse.Action):
    """--version: the package's version and the library's (loaded only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: Optional[str] = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: Optional[str] = None) -> None:
        print(f"tcpgo {__version__} (Python package {os.path.dirname(os.path.abspath(__file__))}"
              f"; library {library_version()} {library_path()})")
        parser.exit()


def _examples(prog: str, *lines: "tuple[str, str]") -> str:
    """An "examples:" epilog: (command, comment) pairs, comments aligned."""
    cmds = [cmd.format(prog=prog) for cmd, _ in lines]
    width = max(len(c) for c in cmds)
    return "examples:\n" + "\n".join(
        f"  {c.ljust(width)}  # {comment}" if comment else f"  {c}"
        for c, (_, comment) in zip(cmds, lines))


def _prog() -> str:
    """How the user called us: `tcpgo` (the console script) or `python3 -m tcpgo`."""
    arg0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not arg0 or arg0 in ("__main__.py", "-c", "-m"):
        return f"{os.path.basename(sys.executable) or 'python3'} -m tcpgo"
    return arg0


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    prog = prog or _prog()
    raw = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog=prog, formatter_class=raw,
        description="tcpgo: TCP/TLS servers and clients from the shell.",
        epilog=_examples(
            prog,
            ("{prog} certs pki", "a test CA, server and client certificate"),
            ("{prog} serve --port 9443 --certs pki", "Ctrl-C stops it"),
            ("{prog} send 127.0.0.1 9443 hello --certs pki", "prints: hello"),
            ("{prog} COMMAND --help", "options and examples of a command"),
        )
        + "\n\nexit status: 0 ok, 1 failed, 2 bad arguments, 130 Ctrl-C (128 + signal)")
    p.add_argument("--version", action=_Version,
                   help="print the versions of the package and the library, and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "serve", help="run an echo or print server until Ctrl-C", formatter_class=raw,
        description="Run an echo server (or, with --mode print, print what clients send) until "
                    "Ctrl-C or SIGTERM. One line 'tcpgo: listening on HOST:PORT ...' on stdout "
                    "says when it is ready.",
        epilog=_examples(
            prog,
            ("{prog} serve --host 127.0.0.1 --port 9000", "TCP echo, newline-delimited"),
            ("{prog} serve --mode print --delimiter none", "any free port, print a raw stream"),
            ("{prog} serve --port 9443 --certs pki", "mutual TLS with the files of `certs pki`"),
            ("{prog} serve --port 9443 --cert s.pem --key s.key", "TLS, no client certificates"),
        )
        + "\n\nexit status 130 after Ctrl-C (143 after SIGTERM), 1 when it cannot start")
    s.add_argument("--host", default="", help='listen address (default "" = every interface)')
    s.add_argument("--port", type=int, default=0, help="port (default 0 = any free port)")
    s.add_argument("--mode", choices=("echo", "print"), default="echo",
                   help="echo messages back (default) or print them")
    s.add_argument("--delimiter", type=_delimiter, default=b"\n",
                   help=r"message delimiter: '\n' (default), '\0', 0xNN, or 'none' (raw stream)")
    s.add_argument("--max-len", type=int, default=0, help="maximum message length (0 = 16 MiB)")
    s.add_argument("--no-client-cert", action="store_true",
                   help="with --certs: do not require client certificates")
    s.add_argument("-v", "--verbose", action="store_true", help="log connections to stderr")
    _add_tls(s, "server")
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser(
        "send", help="send a message and print the reply", formatter_class=raw,
        description="Connect, send the message (the words joined by spaces) or each line of "
                    "stdin, and print each reply on its own line.",
        epilog=_examples(
            prog,
            ("{prog} send 127.0.0.1 9000 hello world", "prints: hello world"),
            ("printf 'a\\nb\\n' | {prog} send 127.0.0.1 9000", "one message per line"),
            ("{prog} send localhost 9443 hi --certs pki", "mutual TLS"),
            ("{prog} send 127.0.0.1 9000 bye --no-reply", "do not wait for a reply"),
        ))
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("message", nargs="*", help="the message (words joined by spaces); "
                                              "'-' or nothing: one message per stdin line")
    c.add_argument("--delimiter", type=_delimiter, default=b"\n", help=r"default '\n'")
    c.add_argument("--no-reply", action="store_true", help="do not wait for replies")
    c.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    c.add_argument("--verify", choices=("full", "ca"), default="full",
                   help="TLS: check CA and host name (full, default) or only the CA")
    _add_tls(c, "client")
    c.set_defaults(func=cmd_send)

    k = sub.add_parser(
        "certs", help="write a test CA, server and client certificate", formatter_class=raw,
        description="Write ca.pem, server.pem, server.key, client.pem and client.key into "
                    "DIRECTORY (created if needed): a throw-away CA for tests and demos.",
        epilog=_examples(
            prog,
            ("{prog} certs pki", ""),
            ("{prog} certs pki --hosts myhost.example,10.0.0.5", "names in the server certificate"),
        ))
    k.add_argument("directory")
    k.add_argument("--hosts", default=None,
                   help="server certificate names/IPs, comma-separated "
                        "(default localhost,127.0.0.1,::1)")
    k.set_defaults(func=cmd_certs)

    b = sub.add_parser(
        "bench", help="echo benchmark (64-byte messages, pipelined)", formatter_class=raw,
        description="Load an echo server (by default one started in a child process) and print "
                    "one JSON line: msgs_per_s, p50_us, p99_us, errors, load.",
        epilog=_examples(
            prog,
            ("{prog} bench --duration 2", ""),
            ("{prog} bench --tls --conns 10", "mutual TLS, throw-away certificates"),
            ("{prog} bench --port 9000 --python-load", "an echo server already running"),
        ))
    b.add_argument("--host", default="127.0.0.1")
    b.add_argument("--port", type=int, default=0,
                   help="echo server to load (default: start `tcpgo serve` in a child process)")
    b.add_argument("--conns", type=int, default=50)
    b.add_argument("--inflight", type=int, default=16)
    b.add_argument("--size", type=int, default=64, help="message size including the newline")
    b.add_argument("--duration", type=float, default=5.0, help="seconds")
    b.add_argument("--loadgen", help="path of build/bench/loadgen (default: found in the "
                                     "checkout or $TCPGO_LOADGEN; else a Python load generator)")
    b.add_argument("--python-load", action="store_true",
                   help="use the built-in Python load generator even if loadgen exists")
    b.add_argument("--verify", choices=("full", "ca"), default="full")
    _add_tls(b, "client")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt as e:
        return 128 + getattr(e, "signum", signal.SIGINT)
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
