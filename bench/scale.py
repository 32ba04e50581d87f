#!/usr/bin/env python3
"""tcpgo scale benchmark: what an idle connection costs the server (run by `make bench-scale`,
part of `make bench`; Python standard library only).

For every server entry with `scale` in its bench-configs (see bench/run.py) and each of its
transports: start it, make one connection with one echo (warm-up), note the server's resident
memory (VmRSS of its process group), then open --conns connections (default 19,000) from
--clients separate build/bench/idleconns processes (a process here may hold at most 20,000
descriptors: the server holds the 19,000, the clients are other processes), each client spread
over its own 4 loopback source addresses 127.0.0.2.. (one address has ~28k ephemeral ports).
Every connection does one 64-byte echo and then stays idle. After --settle seconds the server's
memory is read again:

    KiB/conn = (VmRSS after - VmRSS before) / connections

Go servers (tcpgo's library, goecho) run with GODEBUG=gctrace=1; the live heap and goroutine
stacks of the last garbage collection (during the set-up, Go collects only when it allocates) are
reported too. CPU time of the server during the set-up, per connection, and /proc/stat steal are
recorded. Results: build/bench/scale.json and scale.md; bench/goals.py reads scale.json.

Usage: bench/scale.py [--conns 19000] [--clients 2] [--only c-abi,go-stdlib] [--transports tcp,tls]
                      [--settle 2] [--rounds 1] [--build build/perfbench]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import ROOT  # noqa: E402

ADDRS_PER_CLIENT = 4
GCTRACE = re.compile(r"^gc (\d+) @[\d.]+s .*?(\d+)->(\d+)->(\d+) MB, (\d+) MB goal(?:, (\d+) MB stacks)?")


def last_gc(errpath):
    """(number, live heap MB, stacks MB) of the last gctrace line, or None."""
    last = None
    try:
        with open(errpath, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = GCTRACE.match(line)
                if m:
                    last = m
    except OSError:
        return None
    if last is None:
        return None
    return {"gc": int(last.group(1)), "heap_live_mb": int(last.group(4)),
            "stacks_mb": int(last.group(6)) if last.group(6) else None}


def client_cmd(idle, port, n, first_addr, transport, certs):
    src = "127.0.0.%d-127.0.0.%d" % (first_addr, first_addr + ADDRS_PER_CLIENT - 1)
    cmd = [idle, "-addr", "127.0.0.1:%d" % port, "-n", str(n), "-src", src, "-timeout", "30s"]
    if transport == "tls":
        cmd += ["-tls", "-ca", os.path.join(certs, "ca.pem"), "-cert", os.path.join(certs, "client.pem"),
                "-key", os.path.join(certs, "client.key")]
    return cmd


def start_clients(cmds):
    return [subprocess.Popen(c, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for c in cmds]


def wait_ready(procs, timeout):
    """Each client's JSON report line (None for one that said nothing)."""
    out = []
    for p in procs:
        line = benchlib.read_line(p, max(1.0, timeout))
        try:
            out.append(json.loads(line) if line and line.startswith("{") else None)
        except ValueError:
            out.append(None)
    return out


def close_clients(procs):
    errs = []
    for p in procs:
        try:
            p.stdin.close()
        except OSError:
            pass
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        errs += [l for l in (err or "").splitlines() if l.strip()][:3]
    return errs


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def run_scenario(entry, transport, args, env, tmp, idle, certs, seq):
    res = {"name": entry.name, "server": entry.label, "transport": transport, "ok": False}
    errpath = os.path.join(tmp, "scale-%02d-%s-%s.stderr" % (seq, entry.name, transport))
    srv = benchlib.Server(entry, transport, env, errpath)
    clients = []
    try:
        if srv.skip or srv.error:
            res["error" if srv.error else "skip"] = srv.error or srv.skip
            return res
        # Warm-up: one connection, one echo, closed; then the "before" figure.
        warm = start_clients([client_cmd(idle, srv.port, 1, 250, transport, certs)])
        rep = wait_ready(warm, 30)
        close_clients(warm)
        if not rep[0] or rep[0]["errors"]:
            res["error"] = "warm-up connection failed"
            return res
        time.sleep(args.settle)
        res["rss_before_kib"], _ = benchlib.rss_kib(srv.pid)
        res["gc_before"] = last_gc(errpath)

        per = [args.conns // args.clients + (1 if i < args.conns % args.clients else 0)
               for i in range(args.clients)]
        win = benchlib.Window(srv.pid)
        t0 = time.monotonic()
        clients = start_clients([client_cmd(idle, srv.port, n, 2 + i * ADDRS_PER_CLIENT, transport, certs)
                                 for i, n in enumerate(per)])
        win.add_clients(p.pid for p in clients)
        reports = wait_ready(clients, args.timeout)
        res["setup_s"] = round(time.monotonic() - t0, 2)
        w = win.finish()
        res["setup_server_cpu_s"] = w.get("server_cpu_s")
        res["steal_pct"] = w.get("steal_pct")
        res["other_cpu_pct"] = w.get("other_cpu_pct")
        res["clients_cpu_pct"] = w.get("loadgen_cpu_pct")
        res["conns"] = sum(r["conns"] for r in reports if r)
        res["errors"] = sum(r["errors"] for r in reports if r) + sum(n for r, n in zip(reports, per) if not r)
        res["client_fd_limits"] = [r.get("fd_limit") for r in reports if r]
        time.sleep(args.settle)
        res["rss_after_kib"], res["rss_peak_kib"] = benchlib.rss_kib(srv.pid)
        res["server_fds"] = fd_count(srv.pid)
        res["server_threads"] = int(benchlib.proc_status(srv.pid).get("Threads", "0"))
        res["gc_after"] = last_gc(errpath)
        if res["conns"]:
            res["kib_per_conn"] = round((res["rss_after_kib"] - res["rss_before_kib"]) / res["conns"], 2)
            res["cpu_us_per_conn_setup"] = round(1e6 * (res["setup_server_cpu_s"] or 0) / res["conns"], 1)
        if res["errors"]:
            res["error"] = "%d connections failed" % res["errors"]
        res["ok"] = res["errors"] == 0 and res["conns"] == args.conns
        return res
    finally:
        if clients:
            errs = close_clients(clients)
            if errs and not res["ok"]:
                res["client_stderr"] = errs
        rc = srv.stop()
        res["server_exit"] = rc
        if not res["ok"] and "skip" not in res:
            res["server_stderr"] = [l for l in srv.stderr_tail(20) if not l.startswith("gc ")][-5:]


def table(rows, wanted):
    head = ["server", "transport", "connections", "RSS before MiB", "RSS after MiB", "KiB/conn",
            "Go heap / stacks MiB (last GC)", "threads", "set-up s", "server CPU us/conn (set-up)",
            "steal %", "other %"]
    out = []
    for r in rows:
        if "skip" in r or "rss_after_kib" not in r:
            out.append([r["server"], r["transport"], "skipped" if "skip" in r else "FAILED",
                        "", "", "", "", "", "", "", "", r.get("skip") or r.get("error", "")])
            continue
        gc = r.get("gc_after")
        gcs = "-" if not gc else "%d / %s (gc %d)" % (gc["heap_live_mb"],
                                                      "?" if gc["stacks_mb"] is None else gc["stacks_mb"], gc["gc"])
        conns = "{:,}".format(r["conns"]) + ("" if r["conns"] == wanted else " of {:,}".format(wanted))
        out.append([r["server"], r["transport"], conns, "%.1f" % (r["rss_before_kib"] / 1024),
                    "%.1f" % (r["rss_after_kib"] / 1024), "%.2f" % r["kib_per_conn"], gcs,
                    str(r["server_threads"]), "%.1f" % r["setup_s"], "%.0f" % r["cpu_us_per_conn_setup"],
                    "%.0f" % (r["steal_pct"] or 0), "%.0f" % (r["other_cpu_pct"] or 0)])
    return benchlib.render_table(head, out, right={2, 3, 4, 5, 7, 8, 9, 10, 11})


def main():
    def env_or(name, default):
        return os.environ.get(name) or default

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conns", type=int, default=int(env_or("BENCH_SCALE_CONNS", "19000")))
    ap.add_argument("--clients", type=int, default=2, help="idleconns processes (default 2)")
    ap.add_argument("--only", default=env_or("BENCH_SCALE_ONLY", ""))
    ap.add_argument("--transports", default=env_or("BENCH_TRANSPORTS", "tcp,tls"))
    ap.add_argument("--settle", type=float, default=2.0, help="seconds before reading the memory")
    ap.add_argument("--timeout", type=float, default=300.0, help="longest set-up, seconds")
    ap.add_argument("--build", default=env_or("BENCH_BUILD", os.path.join(ROOT, "build")))
    args = ap.parse_args()
    if args.clients < 1 or args.clients * ADDRS_PER_CLIENT > 240:
        sys.exit("scale: bad --clients")
    build = os.path.abspath(args.build)
    bench = os.path.join(build, "bench")
    idle = os.path.join(bench, "idleconns")
    cecho = os.path.join(bench, "c_echo_server")
    for p in (idle, cecho):
        if not os.path.exists(p):
            sys.exit("scale: %s is missing; run `make bench-scale`" % p)
    only = [n for n in args.only.replace(",", " ").split() if n]
    transports = [t for t in args.transports.replace(",", " ").split() if t]
    entries = [e for e in benchlib.discover(only) if "scale" in e.configs]

    tmp = tempfile.mkdtemp(prefix="tcpgo-scale-")
    try:
        certs = os.path.join(tmp, "certs")
        os.mkdir(certs)
        benchlib.make_certs(cecho, certs)
        env = benchlib.entry_env(build, certs)
        env["GODEBUG"] = ",".join(x for x in (os.environ.get("GODEBUG"), "gctrace=1") if x)
        info = benchlib.machine_info()
        print("tcpgo scale benchmark: %d idle connections after one echo each, %d client processes; "
              "machine %s, %d CPUs, commit %s" % (args.conns, args.clients, info["cpu"], info["nproc"],
                                                  info["commit"]), flush=True)
        rows = []
        seq = 0
        for transport in transports:
            for e in entries:
                if transport not in e.transports:
                    continue
                seq += 1
                r = run_scenario(e, transport, args, env, tmp, idle, certs, seq)
                rows.append(r)
                if "kib_per_conn" in r:
                    print("  %-4s %-12s %6d conns  RSS %.1f -> %.1f MiB  %.2f KiB/conn  set-up %.1f s  steal %s%%%s"
                          % (transport, e.name, r["conns"], r["rss_before_kib"] / 1024, r["rss_after_kib"] / 1024,
                             r["kib_per_conn"], r["setup_s"], r["steal_pct"],
                             "  (" + r["error"] + ")" if r.get("error") else ""), flush=True)
                else:
                    print("  %-4s %-12s %s" % (transport, e.name, r.get("skip") or r.get("error")), flush=True)
                for l in r.get("server_stderr", []) + r.get("client_stderr", []):
                    print("      " + l)
        text, md = table(rows, args.conns)
        print("\n" + text)
        print("KiB/conn: growth of the server's resident memory (VmRSS) from one warm-up connection to "
              "all connections idle, per connection.")
        os.makedirs(bench, exist_ok=True)
        with open(os.path.join(bench, "scale.json"), "w", encoding="utf-8") as f:
            json.dump({"machine": info, "command": " ".join(sys.argv), "conns": args.conns,
                       "clients": args.clients, "rows": rows}, f, indent=1)
        with open(os.path.join(bench, "scale.md"), "w", encoding="utf-8") as f:
            f.write("Run of %s, commit %s: %d idle connections after one 64 B echo each.\n\n%s\n"
                    % (info["date"], info["commit"], args.conns, md))
        print("results: %s, %s" % (os.path.join(bench, "scale.json"), os.path.join(bench, "scale.md")))
        return 0 if all(r["ok"] or "skip" in r for r in rows) else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
