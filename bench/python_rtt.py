#!/usr/bin/env python3
"""Sequential request/response round trips from Python, as a new user writes them.

    python3 bench/python_rtt.py --port PORT [--host 127.0.0.1] [--count 1000]
                                [--repeat 5] [--clients sync,aio,asyncio,uvloop]

One connection to a '\\n'-framed echo server (bench/run.py points it at the C
epoll echo, the cheapest server, so the figures are the clients'), then
--count round trips one after the other: send a 64-byte message, wait for its
echo, send the next. Clients:

* ``sync``    -- tcpgo.TcpClient(delimiter=b"\\n").request(msg)
* ``aio``     -- await tcpgo.aio.connect(..., delimiter=b"\\n") then await client.request(msg)
* ``asyncio`` -- asyncio streams: writer.write(msg + b"\\n"); await reader.readuntil(b"\\n")
* ``uvloop``  -- the same streams on uvloop (only where uvloop is importable)

Each client is measured --repeat times (a new connection each time, not
timed); one JSON line per client goes to stdout with the wall time of the
--count round trips (every repeat, and the median) and the process CPU time
they took (all threads, so tcpgo's Go threads count too).
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time

SIZE = 64  # bytes on the wire, '\n' included


def message(i):
    head = b"%016x" % i
    return head + b"x" * (SIZE - 1 - len(head))


def timed(fn):
    """Wall and process CPU seconds of fn()."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def run_sync(host, port, count):
    import tcpgo
    client = tcpgo.TcpClient(delimiter=b"\n")
    client.connect(host, port)
    try:
        def loop():
            for i in range(count):
                msg = message(i)
                if client.request(msg, timeout=5) != msg:
                    raise RuntimeError("wrong echo")
        return timed(loop)
    finally:
        client.stop()


def run_aio(host, port, count):
    import tcpgo.aio

    async def main():
        client = await tcpgo.aio.connect(host, port, delimiter=b"\n")
        try:
            c0, t0 = time.process_time(), time.perf_counter()
            for i in range(count):
                msg = message(i)
                if await client.request(msg, timeout=5) != msg:
                    raise RuntimeError("wrong echo")
            return time.perf_counter() - t0, time.process_time() - c0
        finally:
            await client.stop()
    return asyncio.run(main())


async def streams(host, port, count):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(count):
            msg = message(i) + b"\n"
            writer.write(msg)
            if await asyncio.wait_for(reader.readuntil(b"\n"), 5) != msg:
                raise RuntimeError("wrong echo")
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        writer.close()
        await writer.wait_closed()


def run_asyncio(host, port, count):
    return asyncio.run(streams(host, port, count))


def run_uvloop(host, port, count):
    import uvloop
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(streams(host, port, count))
    finally:
        loop.close()


CLIENTS = {"sync": run_sync, "aio": run_aio, "asyncio": run_asyncio, "uvloop": run_uvloop}
LABELS = {"sync": "tcpgo TcpClient.request (sync)", "aio": "tcpgo.aio Client.request",
          "asyncio": "asyncio streams", "uvloop": "asyncio streams on uvloop"}


def available(kind):
    try:
        if kind in ("sync", "aio"):
            import tcpgo  # noqa: F401
        elif kind == "uvloop":
            import uvloop  # noqa: F401
    except ImportError as e:
        return str(e)
    return None


def same_malloc_state():
    """Put glibc's malloc in the state every client would reach anyway.

    asyncio streams read with recv(262144). In a fresh process glibc serves a
    256 KiB block with mmap/munmap (0.26-0.45 s per 1000 round trips); once any
    block that large was freed it raises its mmap threshold and the same loop
    takes 0.05-0.09 s. Without this, a client's figure depends on what ran
    before it in the process."""
    import ctypes
    block = ctypes.create_string_buffer(1 << 18)
    del block


def main():
    same_malloc_state()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--clients", default="sync,aio,asyncio,uvloop")
    args = ap.parse_args()
    failed = False
    for kind in [k for k in args.clients.split(",") if k]:
        out = {"client": kind, "label": LABELS.get(kind, kind), "python": platform.python_version(),
               "executable": sys.executable, "count": args.count}
        why = available(kind)
        if why:
            out["skip"] = why
        else:
            try:
                runs = [CLIENTS[kind](args.host, args.port, args.count) for _ in range(args.repeat)]
                out["seconds"] = [round(w, 4) for w, _ in runs]
                out["cpu_seconds"] = [round(c, 4) for _, c in runs]
                out["median_s"] = round(statistics.median(w for w, _ in runs), 4)
                out["median_cpu_s"] = round(statistics.median(c for _, c in runs), 4)
                out["us_per_rtt"] = round(out["median_s"] / args.count * 1e6, 1)
            except Exception as e:  # report and go on with the other clients
                out["error"] = "%s: %s" % (type(e).__name__, e)
                failed = True
        print(json.dumps(out), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
