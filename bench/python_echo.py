#!/usr/bin/env python3
"""Python echo servers for the benchmark: tcpgo, asyncio Protocol, uvloop.

    python3 bench/python_echo.py KIND [--mode msg|batch|stream] [--tls CERT KEY CA]

KIND is ``tcpgo``, ``asyncio`` or ``uvloop``. The server listens on
127.0.0.1 on a free port, prints ``PORT <n>`` on stdout when ready, and runs
until SIGINT/SIGTERM or until stdin is closed.

Modes (each server does the same work in a mode):

* ``msg`` -- a message server: the bytes are split at ``\\n`` and a handler is
  called for every message, which sends the message back (tcpgo: fragmented
  mode and ``on_message``; asyncio: a Protocol that splits its buffer and
  calls ``transport.write`` once per message).
* ``batch`` -- the message server with tcpgo's batch handler: the messages
  are split at ``\\n`` as in ``msg``, but ``on_messages(conn, messages)``
  gets all the messages of one connection from one batch of events and
  sends them back with one ``conn.send_many(messages)`` (asyncio/uvloop:
  the same as ``msg``, whose ``data_received`` already sees one read's
  messages at once).
* ``stream`` -- a byte echo: whatever arrives is written back as it is
  (tcpgo: continuous mode; asyncio: ``transport.write(data)`` in
  ``data_received``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import ssl
import sys
import threading


def run_tcpgo(mode: str, tls: list | None) -> None:
    import tcpgo

    delim = None if mode == "stream" else b"\n"
    if tls:
        server = tcpgo.TlsServer(tls[0], tls[1], tls[2], delim, host="127.0.0.1")
    else:
        server = tcpgo.TcpServer(delim, host="127.0.0.1")
    if mode == "batch":
        @server.on_messages
        def echo_all(conn: tcpgo.Connection, messages: list) -> None:
            conn.send_many(messages)
    else:
        send = server.send

        @server.on_message
        def echo(client_id: int, data: bytes) -> None:
            send(client_id, data)

    # A background job of a non-interactive shell starts with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    port = server.start(0)
    try:
        announce(port)
        threading.Thread(target=watch_stdin, args=(os.getpid(),), daemon=True).start()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


class MsgEcho(asyncio.Protocol):
    """Split at b'\\n'; one handler call and one write per message."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        start = 0
        find = buf.find
        while True:
            i = find(b"\n", start)
            if i < 0:
                break
            self.on_message(buf[start:i])
            start = i + 1
        self.buf = buf[start:]

    def on_message(self, msg: bytes) -> None:
        if not self.transport.is_closing():  # type: ignore[attr-defined]
            self.transport.write(msg + b"\n")  # type: ignore[attr-defined]


class StreamEcho(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.transport.is_closing():  # type: ignore[attr-defined]
            self.transport.write(data)  # type: ignore[attr-defined]


def run_asyncio(mode: str, tls: list | None, use_uvloop: bool) -> None:
    if use_uvloop:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    ctx = None
    if tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls[2])
        ctx.load_cert_chain(tls[0], tls[1])
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3

    async def main() -> None:
        loop = asyncio.get_running_loop()
        proto = StreamEcho if mode == "stream" else MsgEcho
        server = await loop.create_server(proto, "127.0.0.1", 0, ssl=ctx, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        announce(port)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        threading.Thread(target=watch_stdin, args=(os.getpid(),), daemon=True).start()
        async with server:
            await stop.wait()

    asyncio.run(main())


def announce(port: int) -> None:
    print(f"PORT {port}", flush=True)


def watch_stdin(pid: int) -> None:
    """Stop (SIGINT ourselves) when the parent closes our stdin."""
    try:
        sys.stdin.read()
    except Exception:
        pass
    os.kill(pid, signal.SIGINT)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("kind", choices=("tcpgo", "asyncio", "uvloop"))
    p.add_argument("--mode", choices=("msg", "batch", "stream"), default="msg")
    p.add_argument("--tls", nargs=3, metavar=("CERT", "KEY", "CA"))
    a = p.parse_args()
    if a.kind == "tcpgo":
        run_tcpgo(a.mode, a.tls)
    else:
        run_asyncio(a.mode, a.tls, a.kind == "uvloop")


if __name__ == "__main__":
    main()
