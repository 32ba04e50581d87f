#!/usr/bin/env python3
"""tcpgo echo benchmark driver (run by `make bench`; Python standard library only).

It builds nothing: `make bench` builds build/bench/{loadgen,goecho,c_echo_server,epoll_echo_server,
cpp_echo_server} and the library first. It writes a test PKI into a temporary directory (with
`c_echo_server -gencerts`, i.e. tcp_generate_certs), then measures every server entry in every
configuration it takes part in, side by side, with the same load generator (build/bench/loadgen):

    d16      64-byte messages, 50 connections, 16 in flight each (pipelined)
    d1       64-byte messages, 50 connections, 1 in flight each (request/response)
    16k      16 KiB messages, 50 connections, 4 in flight each
    connect  16 workers, each repeating: connect, one 64-byte echo, close (conns/s; tcp only)

over plain TCP and mutual TLS 1.3 (client certificate required). Rounds are interleaved (the entry
order alternates between rounds) and every figure is the MEDIAN over the rounds -- over the
undisturbed rounds (see below) when there are any; the ratio to the entry's baseline is the ratio of
the medians, and the "paired" median is the median of the per-round ratios (the two runs of a round
are adjacent in time and saw the same background load; rounds where both are undisturbed, if any).

CPU: the server's CPU time during the measured window (utime + stime of its process group, from
/proc/PID/stat) per echoed message ("CPU us/msg") -- the figure that does not depend on the load
generator sharing the 2 CPUs. Also per message: the server's context switches (all its threads,
/proc/PID/task/*/status). System calls per message are counted by bench/profile.py (perf tracepoints
cost too much to run them during these measurements). /proc/stat is sampled too: "steal" (time the hypervisor gave our
vCPUs away) and "other" (what the rest of the machine used: other people's builds), both in % of one
CPU. A run whose steal or other CPU exceeds --max-steal / --max-other is DISTURBED and is repeated,
up to --retries times (within --retry-budget seconds for the whole run); the least disturbed attempt
counts, and every attempt is kept in the JSON.

After the rounds, the Python round-trip scenario (bench/python_rtt.py): 1000 sequential 64-byte
request/response round trips on one connection to the C epoll echo server, from tcpgo's sync client,
tcpgo.aio and asyncio streams (and uvloop streams where installed), under python3 and under
/usr/bin/python3 (Debian's, the one python3-uvloop is for).

Results: build/bench/results.json (everything, every attempt) and build/bench/results.md (tables).
bench/goals.py turns results.json (and scale.json from bench/scale.py) into the table of issue 10's
goals.

EXTENSION POINT -- adding rows
------------------------------
A server entry is a bash script named `*.bench.sh` in bench/ or one directory below it
(bench/*.bench.sh, bench/*/*.bench.sh; e.g. bench/servers/c-abi.bench.sh, or
bench/python/asyncio.bench.sh for the Python rows). Every entry found runs, in `bench-order`.
Its header comments (within the first 30 lines) describe it:

    # bench-name: asyncio           unique id (used by --only and bench-baseline)
    # bench-label: Python asyncio   text of the table's server column (default: the name)
    # bench-baseline: go-stdlib     optional: the ratio columns compare with that entry (same
    #                               transport and configuration, same run); per transport:
    #                               `tcp=c-epoll tls=go-stdlib`
    # bench-goal: 0.8               optional: the msgs/s ratio it should reach (shown, not enforced)
    # bench-order: 30               optional: row order, default 50 (c-epoll 5, c-abi 10, ...)
    # bench-transports: tcp tls     optional: default "tcp tls"
    # bench-configs: d16 d1 16k connect scale
    #                               optional: the configurations it takes part in (default d16);
    #                               `scale` is bench/scale.py's idle-connection scenario

It is run as `bash ENTRY TRANSPORT` (TRANSPORT = tcp or tls) from the repository root with these
environment variables:

    TCPGO_ROOT      absolute path of the repository
    TCPGO_BUILD     absolute path of the build directory (build/ or BUILD=...)
    TCPGO_LIBRARY   absolute path of $TCPGO_BUILD/lib/libtcpserver.so
    BENCH_CERTS     directory with ca.pem, server.pem, server.key, client.pem, client.key

and must:
  * listen on 127.0.0.1 (a port chosen by the system) and echo every '\\n'-terminated message it
    receives (64 bytes to 16 KiB);
  * for tls: serve TLS with $BENCH_CERTS/server.pem + server.key and require a client certificate
    signed by $BENCH_CERTS/ca.pem (mutual TLS; the load generator presents client.pem);
  * print `PORT n` as its first line on stdout (within 20 s), or `SKIP reason` and exit when it
    cannot run here (e.g. an optional module is missing) -- the row then shows the reason;
  * run until its stdin reaches end of file or it gets SIGTERM (the driver closes stdin, then
    sends SIGTERM to its process group after 5 s, SIGKILL after 3 s more). Use `exec` for the
    server process so that it is the process the driver measures.
  * with `scale` in bench-configs: hold 19,000 connections (raise RLIMIT_NOFILE, lift any
    connection limit).

To add prerequisites to the run (things to build first), add them to the `bench-c` target in your
mk/<part>.mk: `bench-c: my-prerequisite`.

Usage: bench/run.py [--duration 2s] [--warmup 1s] [--rounds 3] [--only c-abi,c-epoll]
                    [--configs d16,d1,16k,connect] [--transports tcp,tls] [--no-rtt]
                    [--max-steal 10] [--max-other 25] [--retries 2] [--retry-budget 120]
                    [--build build/perfbench]
Exit status: 0 when every run measured without errors, 1 otherwise (the tables are printed anyway).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import ROOT, fmt_rate  # noqa: E402

# The load of each configuration (loadgen flags).
CONFIGS = {
    "d16": {"title": "64 B, 50 connections x 16 in flight", "size": 64, "conns": 50, "inflight": 16},
    "d1": {"title": "64 B, 50 connections x 1 in flight", "size": 64, "conns": 50, "inflight": 1},
    "16k": {"title": "16 KiB, 50 connections x 4 in flight", "size": 16384, "conns": 50, "inflight": 4},
    "connect": {"title": "connect + one 64 B echo + close, 16 workers", "size": 64, "conns": 16,
                "inflight": 1, "mode": "connect", "transports": ["tcp"],
                # 64 source addresses x ~28k ports: TIME_WAIT of earlier runs never runs out of ports
                "src": "127.0.1.2-127.0.1.65"},
}
CONFIG_ORDER = ["d16", "d1", "16k", "connect"]


def parse_duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError("bad duration %r (e.g. 3s, 500ms)" % text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "ms" else v


def run_once(entry, transport, cfg, args, env, tmp, loadgen, certs, seq):
    """One measurement of one entry: start it, load it, stop it."""
    res = {"name": entry.name, "transport": transport, "ok": False}
    errpath = os.path.join(tmp, "%03d-%s-%s.stderr" % (seq, entry.name, transport))
    srv = benchlib.Server(entry, transport, env, errpath)
    try:
        if srv.skip:
            res["skip"] = srv.skip
            return res
        if srv.error:
            res["error"] = srv.error
            return res
        cmd = [loadgen, "-addr", "127.0.0.1:%d" % srv.port, "-conns", str(cfg["conns"]),
               "-inflight", str(cfg["inflight"]), "-size", str(cfg["size"]),
               "-duration", "%gs" % args.duration, "-warmup", "%gs" % args.warmup]
        if cfg.get("mode"):
            cmd += ["-mode", cfg["mode"]]
        if cfg.get("src"):
            cmd += ["-src", cfg["src"]]
        if transport == "tls":
            cmd += ["-tls", "-ca", os.path.join(certs, "ca.pem"),
                    "-cert", os.path.join(certs, "client.pem"),
                    "-key", os.path.join(certs, "client.key")]
        lgp = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The window starts after the connections are up, a few ms after loadgen starts.
        t0 = time.monotonic()
        time.sleep(args.warmup + 0.05)
        win = benchlib.Window(srv.pid, [lgp.pid])
        time.sleep(max(0.0, t0 + args.warmup + args.duration - 0.05 - time.monotonic()))
        res.update(win.finish())
        try:
            out, err = lgp.communicate(timeout=args.duration + args.warmup + 40)
        except subprocess.TimeoutExpired:
            lgp.kill()
            lgp.communicate()
            res["error"] = "loadgen did not finish"
            return res
        lines = [l for l in out.splitlines() if l.startswith("{")]
        if not lines:
            res["error"] = "loadgen printed no result (exit %d): %s" % (
                lgp.returncode, " | ".join(err.strip().splitlines()[-3:]))
            return res
        res.update(json.loads(lines[-1]))
        if res["errors"]:
            res["error"] = "%d errors: %s" % (res["errors"], " | ".join(err.strip().splitlines()[:2]))
        res["ok"] = res["errors"] == 0 and res["msgs"] > 0
        if res.get("server_cpu_pct") is not None and res["msgs_per_s"] > 0:
            res["server_cpu_us_per_msg"] = round(res["server_cpu_pct"] / 100 * 1e6 / res["msgs_per_s"], 3)
            if "server_ctx_switches" in res:  # same window, approximately
                res["server_ctx_switches_per_msg"] = round(
                    res["server_ctx_switches"] / (res["msgs_per_s"] * res["wall_s"]), 3)
        return res
    finally:
        rc = srv.stop()
        res["server_exit"] = rc
        if (not res["ok"] and "skip" not in res) or rc not in (0, -15, 143, None):
            res["server_stderr"] = srv.stderr_tail()


def disturbance(r, args):
    """Why a run counts as disturbed, or None."""
    why = []
    if r.get("steal_pct", 0) > args.max_steal:
        why.append("steal %.0f%%" % r["steal_pct"])
    if r.get("other_cpu_pct", 0) > args.max_other:
        why.append("other CPU %.0f%%" % r["other_cpu_pct"])
    return ", ".join(why) or None


def run_with_retries(entry, transport, cfgname, args, env, tmp, loadgen, certs, counter):
    """Runs once, again while disturbed (up to args.retries more); returns the
    attempt that counts (least steal + other CPU) with every attempt inside."""
    attempts = []
    for _ in range(args.retries + 1):
        counter[0] += 1
        t0 = time.monotonic()
        r = run_once(entry, transport, CONFIGS[cfgname], args, env, tmp, loadgen, certs, counter[0])
        if attempts:
            counter[1] -= time.monotonic() - t0
        r["disturbed"] = disturbance(r, args)
        attempts.append(r)
        if "skip" in r or not r["disturbed"] or "msgs_per_s" not in r:
            break
        if counter[1] <= 0:
            print("      disturbed (%s); retry budget used up" % r["disturbed"], flush=True)
            break
        print("      disturbed (%s), repeating" % r["disturbed"], flush=True)
    measured = [a for a in attempts if "msgs_per_s" in a] or attempts
    best = min(measured, key=lambda a: a.get("steal_pct", 0) + a.get("other_cpu_pct", 0))
    best = dict(best)
    best["attempts"] = len(attempts)
    best["all_attempts"] = [{k: a.get(k) for k in ("msgs_per_s", "server_cpu_us_per_msg", "steal_pct",
                                                   "other_cpu_pct", "disturbed")} for a in attempts]
    return best


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs, entries, cfgname, transports, rounds):
    """One row per (entry, transport) of a configuration: medians over rounds
    and the ratios to the entry's baseline."""
    rows = []
    by = {}
    for r in runs:
        if r["config"] == cfgname:
            by.setdefault((r["name"], r["transport"]), []).append(r)

    def usable(name, transport):
        """The rounds that count: the undisturbed ones when there are any."""
        ok = [r for r in by.get((name, transport), []) if r.get("ok")]
        return [r for r in ok if not r.get("disturbed")] or ok

    def med(name, transport, key):
        return median(r.get(key) for r in usable(name, transport))

    for transport in transports:
        for e in entries:
            mine = by.get((e.name, transport))
            if not mine:
                continue
            row = {"config": cfgname, "name": e.name, "server": e.label, "transport": transport,
                   "msgs_per_s": med(e.name, transport, "msgs_per_s"),
                   "server_cpu_us_per_msg": med(e.name, transport, "server_cpu_us_per_msg"),
                   "p50_us": med(e.name, transport, "p50_us"), "p99_us": med(e.name, transport, "p99_us"),
                   "server_cpu_pct": med(e.name, transport, "server_cpu_pct"),
                   "ctx_per_msg": med(e.name, transport, "server_ctx_switches_per_msg"),
                   "rounds": [r.get("msgs_per_s") for r in mine],
                   "cpu_rounds": [r.get("server_cpu_us_per_msg") for r in mine],
                   "steal_pct": [r.get("steal_pct") for r in mine],
                   "other_cpu_pct": [r.get("other_cpu_pct") for r in mine],
                   "retries": sum(r.get("attempts", 1) - 1 for r in mine),
                   "disturbed": sum(1 for r in mine if r.get("disturbed")),
                   "clean_rounds": sum(1 for r in mine if r.get("ok") and not r.get("disturbed")),
                   "errors": sum(r.get("errors", 0) for r in mine),
                   "ok": all(r.get("ok") for r in mine),
                   "skip": next((r["skip"] for r in mine if "skip" in r), None),
                   "baseline": e.baseline(transport), "goal": e.goal}
            base = row["baseline"]
            if base and (base, transport) in by:
                bm = med(base, transport, "msgs_per_s")
                bc = med(base, transport, "server_cpu_us_per_msg")
                if bm and row["msgs_per_s"] is not None:
                    row["ratio"] = row["msgs_per_s"] / bm
                if bc and row["server_cpu_us_per_msg"] is not None:
                    row["cpu_ratio"] = row["server_cpu_us_per_msg"] / bc
                paired, cpaired = [], []
                both_clean = [rnd for rnd in range(1, rounds + 1)
                              if any(r["round"] == rnd and r.get("ok") and not r.get("disturbed") for r in mine)
                              and any(r["round"] == rnd and r.get("ok") and not r.get("disturbed")
                                      for r in by[(base, transport)])]
                for rnd in both_clean or range(1, rounds + 1):
                    a = [r for r in mine if r["round"] == rnd and r.get("ok")]
                    b = [r for r in by[(base, transport)] if r["round"] == rnd and r.get("ok")]
                    if a and b:
                        paired.append(a[0]["msgs_per_s"] / b[0]["msgs_per_s"])
                        if a[0].get("server_cpu_us_per_msg") and b[0].get("server_cpu_us_per_msg"):
                            cpaired.append(a[0]["server_cpu_us_per_msg"] / b[0]["server_cpu_us_per_msg"])
                row["paired_ratios"] = [round(x, 3) for x in paired]
                row["paired_median"] = median(paired)
                row["cpu_paired_median"] = median(cpaired)
            rows.append(row)
    return rows


def table(rows, cfgname):
    unit = "conns/s" if cfgname == "connect" else "msgs/s"
    per = "CPU us/conn" if cfgname == "connect" else "CPU us/msg"
    head = ["server", "transport", unit, "p50 us", "p99 us", per, "vs baseline (%s, CPU)" % unit,
            "ctx sw/%s" % ("conn" if cfgname == "connect" else "msg"),
            "steal %", "other %", "rounds (%s)" % unit]
    out = []
    for row in rows:
        if row["skip"]:
            out.append([row["server"], row["transport"], "skipped", "", "", "", "", "", "", "", row["skip"]])
            continue
        if row["msgs_per_s"] is None:
            out.append([row["server"], row["transport"], "FAILED", "", "", "", "", "", "", "", "see the log"])
            continue
        ratio = ""
        if row.get("ratio") is not None:
            ratio = "%.2fx %s" % (row["ratio"], row["baseline"])
            if row.get("cpu_ratio") is not None:
                ratio += ", CPU %.2fx" % row["cpu_ratio"]
            if len(row.get("paired_ratios", [])) > 1:
                ratio += " (paired %.2f)" % row["paired_median"]
        rounds = "/".join("-" if v is None else "%.0fk" % (v / 1000) if v >= 10000 else "%.1fk" % (v / 1000)
                          for v in row["rounds"])
        if row["retries"]:
            rounds += " (%d repeated)" % row["retries"]
        if row["disturbed"]:
            rounds += " %d DISTURBED" % row["disturbed"]
            if row["clean_rounds"]:
                rounds += " (median of the %d clean)" % row["clean_rounds"]
        if row["errors"]:
            rounds += " %d errors" % row["errors"]
        rng = lambda xs: "-" if not [x for x in xs if x is not None] else (
            "%.0f-%.0f" % (min(x for x in xs if x is not None), max(x for x in xs if x is not None)))
        out.append([row["server"], row["transport"], fmt_rate(row["msgs_per_s"]),
                    "%.0f" % row["p50_us"] if row["p50_us"] is not None else "-",
                    "%.0f" % row["p99_us"] if row["p99_us"] is not None else "-",
                    "%.2f" % row["server_cpu_us_per_msg"] if row["server_cpu_us_per_msg"] else "-",
                    ratio, ctx_cell(row), rng(row["steal_pct"]), rng(row["other_cpu_pct"]), rounds])
    return benchlib.render_table(head, out, right={2, 3, 4, 5, 7, 8, 9})


def ctx_cell(row):
    v = row.get("ctx_per_msg")
    return "-" if v is None else "%.3f" % v if v < 10 else "%.0f" % v


def run_rtt(args, env, tmp, build, certs):
    """bench/python_rtt.py against the C epoll echo, under each interpreter."""
    epoll = [e for e in benchlib.discover() if e.name == "c-epoll"]
    if not epoll:
        return [{"error": "no c-epoll entry"}]
    results = []
    srv = benchlib.Server(epoll[0], "tcp", env, os.path.join(tmp, "rtt-server.stderr"))
    try:
        if srv.port is None:
            return [{"error": srv.error or srv.skip}]
        pyenv = dict(env)
        pyenv["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(ROOT, "bindings", "python")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        pythons = [sys.executable]
        if os.path.exists("/usr/bin/python3") and \
                os.path.realpath("/usr/bin/python3") != os.path.realpath(sys.executable):
            pythons.append("/usr/bin/python3")
        for py in pythons:
            win = benchlib.Window(srv.pid)
            p = subprocess.run([py, os.path.join(ROOT, "bench", "python_rtt.py"), "--port", str(srv.port),
                                "--count", str(args.rtt_count), "--repeat", str(args.rtt_repeat)],
                               env=pyenv, capture_output=True, text=True, timeout=600)
            w = win.finish()
            for line in p.stdout.splitlines():
                if line.startswith("{"):
                    r = json.loads(line)
                    r["steal_pct"] = w.get("steal_pct")
                    r["other_cpu_pct"] = w.get("other_cpu_pct")
                    results.append(r)
            if p.returncode != 0:
                results.append({"executable": py, "error": "exit %d: %s" % (
                    p.returncode, " | ".join(p.stderr.strip().splitlines()[-3:]))})
    finally:
        srv.stop()
    return results


def rtt_table(results):
    head = ["client", "python", "1000 round trips, s (median)", "us/round trip", "client CPU s",
            "repeats (s)", "steal %"]
    rows = []
    for r in results:
        py = "%s (%s)" % (r.get("executable", "?"), r.get("python", "?"))
        if "skip" in r or "error" in r:
            rows.append([r.get("label", "?"), py, "skipped" if "skip" in r else "FAILED", "", "", "",
                         r.get("skip") or r.get("error")])
            continue
        rows.append([r["label"], py, "%.3f" % r["median_s"], "%.0f" % r["us_per_rtt"],
                     "%.3f" % r["median_cpu_s"], "/".join("%.3f" % s for s in r["seconds"]),
                     "%.0f" % (r.get("steal_pct") or 0)])
    return benchlib.render_table(head, rows, right={2, 3, 4, 6})


def main():
    def env_or(name, default):
        return os.environ.get(name) or default

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=parse_duration, default=parse_duration(env_or("BENCH_DURATION", "2s")))
    ap.add_argument("--warmup", type=parse_duration, default=parse_duration(env_or("BENCH_WARMUP", "1s")))
    ap.add_argument("--rounds", type=int, default=int(env_or("BENCH_ROUNDS", "3")))
    ap.add_argument("--only", default=env_or("BENCH_ONLY", ""), help="comma-separated entry names")
    ap.add_argument("--configs", default=env_or("BENCH_CONFIGS", ",".join(CONFIG_ORDER)))
    ap.add_argument("--transports", default=env_or("BENCH_TRANSPORTS", "tcp,tls"))
    ap.add_argument("--max-steal", type=float, default=float(env_or("BENCH_MAX_STEAL", "10")),
                    help="%% of one CPU stolen above which a run is repeated (default 10)")
    ap.add_argument("--max-other", type=float, default=float(env_or("BENCH_MAX_OTHER", "25")),
                    help="%% of one CPU used by other processes above which a run is repeated (default 25)")
    ap.add_argument("--retries", type=int, default=int(env_or("BENCH_RETRIES", "2")))
    ap.add_argument("--retry-budget", type=float, default=float(env_or("BENCH_RETRY_BUDGET", "120")),
                    help="seconds all repeated runs together may take (default 120), so that a busy "
                         "machine does not stretch the run without end")
    ap.add_argument("--no-rtt", action="store_true", help="skip the Python round-trip scenario")
    ap.add_argument("--rtt-count", type=int, default=1000)
    ap.add_argument("--rtt-repeat", type=int, default=int(env_or("BENCH_RTT_REPEAT", "5")))
    ap.add_argument("--build", default=env_or("BENCH_BUILD", os.path.join(ROOT, "build")))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    transports = [t for t in args.transports.replace(",", " ").split() if t]
    configs = [c for c in args.configs.replace(",", " ").split() if c]
    for c in configs:
        if c not in CONFIGS:
            sys.exit("bench: unknown configuration %r (have %s)" % (c, ", ".join(CONFIG_ORDER)))
    only = [n for n in args.only.replace(",", " ").split() if n]

    bench = os.path.join(build, "bench")
    loadgen = os.path.join(bench, "loadgen")
    cecho = os.path.join(bench, "c_echo_server")
    for p in (loadgen, cecho, os.path.join(build, "lib", "libtcpserver.so")):
        if not os.path.exists(p):
            sys.exit("bench: %s is missing; run `make bench`" % p)
    entries = benchlib.discover(only)
    if not entries:
        sys.exit("bench: no server entries")

    tmp = tempfile.mkdtemp(prefix="tcpgo-bench-")
    try:
        certs = os.path.join(tmp, "certs")
        os.mkdir(certs)
        benchlib.make_certs(cecho, certs)
        env = benchlib.entry_env(build, certs)
        info = benchlib.machine_info()
        started = time.monotonic()
        print("tcpgo echo benchmark: configurations %s; %d round(s) of %gs warm-up + %gs measured; "
              "median of the rounds; runs with steal > %g%% or other CPU > %g%% repeated up to %d times"
              % (", ".join(configs), args.rounds, args.warmup, args.duration, args.max_steal,
                 args.max_other, args.retries))
        print("machine: %s, %s CPUs, Linux %s, %s, commit %s, load average %.2f"
              % (info["cpu"], info["nproc"], info["kernel"], info["go"], info["commit"], info["load_before"]),
              flush=True)

        runs = []
        counter = [0, args.retry_budget]  # runs so far, retry seconds left
        for rnd in range(1, args.rounds + 1):
            for cfgname in configs:
                cfg = CONFIGS[cfgname]
                for transport in transports:
                    if transport not in cfg.get("transports", ["tcp", "tls"]):
                        continue
                    order = [e for e in entries if cfgname in e.configs and transport in e.transports]
                    if rnd % 2 == 0:
                        order.reverse()
                    for e in order:
                        r = run_with_retries(e, transport, cfgname, args, env, tmp, loadgen, certs, counter)
                        r["round"] = rnd
                        r["config"] = cfgname
                        runs.append(r)
                        if "skip" in r:
                            status = "skipped: " + r["skip"]
                        elif "msgs_per_s" in r:
                            status = "%s %s  CPU %s us  p50 %.0f us  server %s%% loadgen %s%% other %s%% steal %s%%" % (
                                fmt_rate(r["msgs_per_s"]), "conns/s" if cfgname == "connect" else "msgs/s",
                                r.get("server_cpu_us_per_msg", "?"), r["p50_us"], r.get("server_cpu_pct", "?"),
                                r.get("loadgen_cpu_pct", "?"), r.get("other_cpu_pct", "?"), r.get("steal_pct", "?"))
                        else:
                            status = "FAILED"
                        if r.get("error"):
                            status += "  (" + r["error"] + ")"
                        print("  round %d %-7s %-4s %-16s %s" % (rnd, cfgname, transport, e.name, status),
                              flush=True)
                        for l in r.get("server_stderr", []):
                            print("      server: " + l)

        rows = {c: summarize(runs, entries, c, transports, args.rounds) for c in configs}
        rtt = [] if args.no_rtt else run_rtt(args, env, tmp, build, certs)

        md = ["Run of %s, commit %s, %s CPUs (%s), Linux %s, %s; %d round(s) of %gs (+%gs warm-up); "
              "medians over the rounds." % (info["date"], info["commit"], info["nproc"], info["cpu"],
                                            info["kernel"], info["go"], args.rounds, args.duration, args.warmup)]
        for c in configs:
            text, mdt = table(rows[c], c)
            print("\n%s (%s)\n%s" % (c, CONFIGS[c]["title"], text))
            md += ["", "**%s** -- %s" % (c, CONFIGS[c]["title"]), "", mdt]
        if rtt:
            text, mdt = rtt_table(rtt)
            print("\nrtt (1000 sequential round trips, one connection, to the C epoll echo)\n" + text)
            md += ["", "**rtt** -- %d sequential 64 B round trips on one connection (C epoll echo server), "
                   "median of %d" % (args.rtt_count, args.rtt_repeat), "", mdt]
        steals = [r.get("steal_pct") for r in runs if r.get("steal_pct") is not None]
        summary = ("steal over all counted runs: median %.1f%%, max %.1f%% of one CPU; %d run(s) repeated, "
                   "%d still disturbed; %.0f s in all" % (
                       median(steals) or 0, max(steals or [0]), sum(r.get("attempts", 1) - 1 for r in runs),
                       sum(1 for r in runs if r.get("disturbed")), time.monotonic() - started))
        print("\nCPU us/msg: server CPU time (utime+stime) per echoed message (per connection for connect).\n"
              "steal/other: % of one CPU (of " + str(info["nproc"]) + ") stolen by the hypervisor / used by "
              "other processes during the window.\n" + summary)
        md += ["", summary]

        os.makedirs(bench, exist_ok=True)
        with open(os.path.join(bench, "results.json"), "w", encoding="utf-8") as f:
            json.dump({"machine": info, "command": " ".join(sys.argv),
                       "params": {"duration_s": args.duration, "warmup_s": args.warmup, "rounds": args.rounds,
                                  "max_steal": args.max_steal, "max_other": args.max_other,
                                  "retries": args.retries, "configs": {c: CONFIGS[c] for c in configs}},
                       "rows": [r for c in configs for r in rows[c]], "runs": runs, "rtt": rtt}, f, indent=1)
        with open(os.path.join(bench, "results.md"), "w", encoding="utf-8") as f:
            f.write("\n".join(md) + "\n")
        print("results: %s, %s" % (os.path.join(bench, "results.json"), os.path.join(bench, "results.md")))
        failed = [r for r in runs if not r.get("ok") and "skip" not in r]
        failed += [r for r in rtt if "error" in r]
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
