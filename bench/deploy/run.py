#!/usr/bin/env python3
"""tcpgo through a load balancer: messages/s and connections/s through a real
HAProxy (TCP mode, PROXY v2; examples/deploy/haproxy.cfg without the log line
per connection) to one and to two
tcpgo backends, next to the same backend reached directly (and nginx's
stream proxy to two, for comparison). `make bench-deploy`, part of `make bench`.

    run.py --loadgen build/bench/loadgen [--duration 3] [--warmup 1] [--rounds 1]
           [--json out.json] [--only direct,haproxy-1,haproxy-2,nginx-2]

The backends are tests/deploy/backend.c in --echo mode ($DEPLOY_BIN): a C
server on the public header echoing '\\n'-delimited messages from its
callback, with TCP_PROXY_REQUIRED behind a proxy and the PROXY protocol off
when reached directly. Two loads (bench/loadgen):

    echo     64-byte messages, 50 connections x 16 in flight     -> msgs/s, p50, p99
    connect  16 workers: connect, one 64-byte echo, close        -> conns/s

Each figure is the median of --rounds runs. For each window the CPU used by
the proxy and by the backends (% of one CPU) and /proc/stat's steal are
recorded, and the CPU the rest of the machine used meanwhile ("other": other
people's work disturbs the run): on a small VM everything -- load generator, proxy, backends --
shares the same cores, so the figures say what the proxy costs, not what it
could do on its own machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "deploy"))
sys.path.insert(0, str(ROOT / "bench"))

import benchlib  # noqa: E402
import lb  # noqa: E402

SETUPS = {
    "direct": "direct (no proxy)",
    "haproxy-1": "HAProxy -> 1 backend",
    "haproxy-2": "HAProxy -> 2 backends",
    "nginx-2": "nginx -> 2 backends",
}
LOADS = {
    "echo": ["-conns", "50", "-inflight", "16", "-size", "64"],
    # Many source addresses: TIME_WAIT of earlier runs never runs out of ports.
    "connect": ["-mode", "connect", "-conns", "16", "-inflight", "1", "-size", "64",
                "-src", "127.0.2.2-127.0.2.65"],
}


def quiet_haproxy_cfg(run_dir: str) -> str:
    """examples/deploy/haproxy.cfg without the log line per connection (a
    bench measures the proxying, not the logging)."""
    lines = (lb.EXAMPLES / "haproxy.cfg").read_text().splitlines()
    keep = ["    no log" if line.strip() == "log global" else line for line in lines
            if line.strip() != "option tcplog"]
    path = os.path.join(run_dir, "haproxy-bench.cfg")
    Path(path).write_text("\n".join(keep) + "\n")
    return path


def start_setup(name: str, procs: lb.Procs, backend: str, run_dir: str):
    """Starts the backends and the proxy of one set-up; returns (port to
    load, pids whose process groups are the proxy, pids of the backends)."""
    n_backends = 1 if name in ("direct", "haproxy-1") else 2
    mode = "off" if name == "direct" else "required"
    bs = [procs.add(lb.Backend(backend, f"b{i + 1}", ["--echo", "--proxy", mode]))
          for i in range(n_backends)]
    if name == "direct":
        return bs[0].port, [], [b.pid for b in bs]
    port = lb.free_port()
    values = dict(LB_ADDR=f"127.0.0.1:{port}", BACKEND1=bs[0].address, BACKEND2=bs[-1].address)
    if name.startswith("haproxy"):
        # One backend: both server lines name the same process.
        proxy: lb.Proc = procs.add(lb.HAProxy(run_dir, quiet_haproxy_cfg(run_dir), values, port))
    else:
        proxy = procs.add(lb.Nginx(run_dir, values, port))
    return port, [proxy.pid], [b.pid for b in bs]


def measure(loadgen: str, port: int, load: str, args, proxy_pids, backend_pids) -> dict:
    cmd = [loadgen, "-addr", f"127.0.0.1:{port}", *LOADS[load],
           "-duration", f"{args.duration}s", "-warmup", f"{args.warmup}s"]
    lg = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(args.warmup + 0.05)
    t0, m0 = time.monotonic(), benchlib.machine_cpu()
    p0 = sum(benchlib.group_cpu(p) for p in proxy_pids)
    b0 = sum(benchlib.group_cpu(p) for p in backend_pids)
    l0 = benchlib.group_cpu(lg.pid, pgrp=False)
    time.sleep(max(0.0, args.duration - 0.1))
    wall = time.monotonic() - t0
    m1 = benchlib.machine_cpu()
    p1 = sum(benchlib.group_cpu(p) for p in proxy_pids)
    b1 = sum(benchlib.group_cpu(p) for p in backend_pids)
    l1 = benchlib.group_cpu(lg.pid, pgrp=False)
    try:
        out, err = lg.communicate(timeout=args.duration + args.warmup + 40)
    except subprocess.TimeoutExpired:
        lg.kill()
        lg.communicate()
        return {"error": "loadgen did not finish"}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"loadgen printed nothing (exit {lg.returncode}): {err.strip()[-300:]}"}
    res = json.loads(lines[-1])
    pct = lambda x: round(100 * x / wall, 1)  # noqa: E731
    ours = (p1 - p0) + (b1 - b0) + (l1 - l0)
    res.update(proxy_cpu_pct=pct(p1 - p0), backend_cpu_pct=pct(b1 - b0),
               loadgen_cpu_pct=pct(l1 - l0), steal_pct=pct(m1["steal"] - m0["steal"]),
               # what the rest of the machine used meanwhile (other people's work)
               other_cpu_pct=pct(max(0.0, m1["busy"] - m0["busy"] - ours)))
    if res.get("errors"):
        res["error"] = f"{res['errors']} errors: {err.strip()[-300:]}"
    return res


def median_of(runs: list, key: str):
    vals = [r[key] for r in runs if key in r and "error" not in r]
    return statistics.median(vals) if vals else None


def run_rounds(args, setups: list, backend: str, tmp: str) -> dict:
    """Every set-up and load, --rounds times; results[setup][load] = runs."""
    results: dict = {}
    for rnd in range(args.rounds):
        for setup in setups:
            procs = lb.Procs()
            try:
                port, proxy_pids, backend_pids = start_setup(setup, procs, backend,
                                                             tempfile.mkdtemp(dir=tmp))
                for load in LOADS:
                    r = measure(args.loadgen, port, load, args, proxy_pids, backend_pids)
                    results.setdefault(setup, {}).setdefault(load, []).append(r)
                    rate = r.get("msgs_per_s", 0)
                    print(f"  round {rnd + 1} {setup:10} {load:8} {rate:>11,.0f}/s  "
                          f"proxy {r.get('proxy_cpu_pct', 0):5.1f}%  backends "
                          f"{r.get('backend_cpu_pct', 0):5.1f}%  loadgen "
                          f"{r.get('loadgen_cpu_pct', 0):5.1f}%  other {r.get('other_cpu_pct', 0):5.1f}%  "
                          f"steal {r.get('steal_pct', 0):4.1f}%"
                          + (f"  ERROR {r['error']}" if "error" in r else ""), flush=True)
            finally:
                procs.close()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", default=",".join(SETUPS))
    ap.add_argument("--json")
    args = ap.parse_args()
    backend = str(Path(os.environ.get("DEPLOY_BIN", ROOT / "build" / "deploy")) / "backend")
    missing = lb.missing_tools()
    setups = [s for s in args.only.split(",") if s]
    for s in setups:
        if s not in SETUPS:
            ap.error(f"unknown set-up {s!r} (known: {', '.join(SETUPS)})")
        if s != "direct" and missing:
            print(f"bench-deploy: skipping {s}: missing {', '.join(missing)}")
    setups = [s for s in setups if s == "direct" or not missing]

    info = benchlib.machine_info()
    tmp = tempfile.mkdtemp(prefix="tcpgo-bench-deploy-")
    try:
        results = run_rounds(args, setups, backend, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    head = ["set-up", "msgs/s", "p50 us", "p99 us", "conns/s", "proxy CPU %", "backends CPU %",
            "other CPU %", "steal %"]
    rows = []
    for setup in setups:
        echo, conn = results[setup]["echo"], results[setup]["connect"]
        f = lambda v, fmt="{:,.0f}": "-" if v is None else fmt.format(v)  # noqa: E731
        rows.append([SETUPS[setup], f(median_of(echo, "msgs_per_s")), f(median_of(echo, "p50_us")),
                     f(median_of(echo, "p99_us")), f(median_of(conn, "msgs_per_s")),
                     f"{f(median_of(echo, 'proxy_cpu_pct'), '{:.0f}')} / "
                     f"{f(median_of(conn, 'proxy_cpu_pct'), '{:.0f}')}",
                     f"{f(median_of(echo, 'backend_cpu_pct'), '{:.0f}')} / "
                     f"{f(median_of(conn, 'backend_cpu_pct'), '{:.0f}')}",
                     f"{f(median_of(echo + conn, 'other_cpu_pct'), '{:.0f}')}",
                     f"{f(median_of(echo + conn, 'steal_pct'), '{:.1f}')}"])
    text, md = benchlib.render_table(head, rows, right=set(range(1, len(head))))
    print()
    print(f"tcpgo through a load balancer -- {info['date']}, commit {info['commit']}, "
          f"{info['nproc']} CPUs ({info['cpu']}), kernel {info['kernel']}, "
          f"{args.rounds} round(s) of {args.duration:g} s (CPU columns: echo / connect)")
    print(text)
    print()
    print(md)
    errors = [(s, load, r["error"]) for s, by in results.items() for load, rs in by.items()
              for r in rs if "error" in r]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": info, "args": vars(args),
                                               "results": results, "markdown": md}, indent=1))
    for s, load, e in errors:
        print(f"bench-deploy: {s} {load}: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
