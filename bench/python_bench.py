#!/usr/bin/env python3
"""Python echo benchmark: tcpgo against asyncio Protocols (and uvloop), one run.

    python3 bench/python_bench.py [--loadgen build/bench/loadgen] [--duration 5]
                                  [--modes msg,stream] [--tls] [--json FILE]

Every server of bench/python_echo.py is started in turn, loaded by the
benchmark engineer's load generator (64-byte messages, 50 connections, 16 in
flight per connection), and stopped; the results are printed as a Markdown
table (and as JSON lines with --json).

Interpreters: each server runs under ``python3`` (the one running this script).
When another interpreter has uvloop (Debian's ``python3-uvloop`` installs it
for ``/usr/bin/python3``), the tcpgo and asyncio servers are also run under
that interpreter next to uvloop, so that every comparison is made under one
interpreter. Set ``TCPGO_BENCH_PYTHONS`` to a colon-separated list to choose.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ECHO = HERE / "python_echo.py"


def has_module(python: str, module: str) -> bool:
    r = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
    return r.returncode == 0


def py_version(python: str) -> str:
    r = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


def run_one(python: str, kind: str, mode: str, loadgen: str, args: argparse.Namespace,
            tls: Optional[List[str]], env: Dict[str, str]) -> dict:
    cmd = [python, str(ECHO), kind, "--mode", mode]
    if tls:
        cmd += ["--tls", tls[0], tls[1], tls[2]]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{' '.join(cmd)}: no PORT line (got {line!r})")
        port = int(line.split()[1])
        lg = [loadgen, "-addr", f"127.0.0.1:{port}", "-conns", str(args.conns), "-inflight",
              str(args.inflight), "-size", str(args.size), "-duration", f"{args.duration}s"]
        if tls:
            lg += ["-tls", "-ca", tls[3], "-cert", tls[4], "-key", tls[5]]
        r = subprocess.run(lg, capture_output=True, text=True, timeout=args.duration + 60)
        if r.returncode != 0:
            raise RuntimeError(f"loadgen failed: {r.stderr.strip()}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        if proc.stdin:
            proc.stdin.close()  # the server stops when its stdin closes
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--loadgen", default=str(ROOT / "build" / "bench" / "loadgen"))
    p.add_argument("--duration", type=int, default=5, help="seconds per run (default 5)")
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--inflight", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--modes", default="msg,stream")
    p.add_argument("--tls", action="store_true", help="also run the servers with mutual TLS")
    p.add_argument("--json", help="append the results as JSON lines to this file")
    args = p.parse_args()

    if not os.path.isfile(args.loadgen):
        print(f"python_bench: no load generator at {args.loadgen} (make {args.loadgen})",
              file=sys.stderr)
        return 1
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "bindings" / "python")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if "TCPGO_LIBRARY" not in env and (ROOT / "build" / "lib" / "libtcpserver.so").exists():
        env["TCPGO_LIBRARY"] = str(ROOT / "build" / "lib" / "libtcpserver.so")

    pythons = [sys.executable]
    extra = os.environ.get("TCPGO_BENCH_PYTHONS")
    if extra:
        pythons = [x for x in extra.split(":") if x]
    else:
        for cand in ("/usr/bin/python3",):
            if (os.path.exists(cand) and os.path.realpath(cand) != os.path.realpath(sys.executable)
                    and has_module(cand, "uvloop")):
                pythons.append(cand)

    tls_files: Optional[List[str]] = None
    tmp = None
    if args.tls:
        tmp = tempfile.mkdtemp(prefix="tcpgo-bench-pki-")
        r = subprocess.run([sys.executable, "-m", "tcpgo", "certs", tmp], env=env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"python_bench: cannot make certificates: {r.stderr}", file=sys.stderr)
            return 1
        d = Path(tmp)
        tls_files = [str(d / "server.pem"), str(d / "server.key"), str(d / "ca.pem"),
                     str(d / "ca.pem"), str(d / "client.pem"), str(d / "client.key")]

    results = []
    variants = [("tcp", None)] + ([("mTLS", tls_files)] if tls_files else [])
    for transport, tls in variants:
        for mode in args.modes.split(","):
            for python in pythons:
                kinds = ["tcpgo", "asyncio"] + (["uvloop"] if has_module(python, "uvloop") else [])
                for kind in kinds:
                    label = f"{kind} ({py_version(python)}, {os.path.basename(os.path.dirname(os.path.dirname(python)))}/{os.path.basename(python)})"
                    try:
                        res = run_one(python, kind, mode, args.loadgen, args, tls, env)
                    except Exception as e:  # keep going: report the failure
                        res = {"msgs_per_s": 0, "p50_us": 0, "p99_us": 0, "errors": -1,
                               "failure": str(e)}
                    res.update(server=kind, mode=mode, transport=transport, python=python,
                               python_version=py_version(python))
                    results.append(res)
                    print(f"{transport:4} {mode:6} {label:45} {res['msgs_per_s']:>12,.0f} msg/s "
                          f"p50 {res['p50_us']:>8.0f} us  p99 {res['p99_us']:>8.0f} us  "
                          f"errors {res['errors']}", file=sys.stderr, flush=True)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"\nPython echo benchmark, {when}, {platform.node()}: {os.cpu_count()} cores ({cpu}), "
          f"{platform.system()} {platform.release()}")
    print(f"loadgen: {args.conns} connections, {args.inflight} in flight each, "
          f"{args.size}-byte messages, {args.duration} s per server\n")
    print("| transport | mode | server | python | msgs/s | p50 µs | p99 µs | errors |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['transport']} | {r['mode']} | {r['server']} | {r['python']} "
              f"({r['python_version']}) | {r['msgs_per_s']:,.0f} | {r['p50_us']:,.0f} | "
              f"{r['p99_us']:,.0f} | {r['errors']} |")
    if args.json:
        with open(args.json, "a") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    failed = [r for r in results if r.get("errors", 0) != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
