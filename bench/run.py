#!/usr/bin/env python3
"""tcpgo echo benchmark driver (run by `make bench`; Python standard library only).

It builds nothing: `make bench` builds build/bench/{loadgen,goecho,c_echo_server} and the library
first. It writes a test PKI into a temporary directory (with `c_echo_server -gencerts`, i.e.
tcp_generate_certs), then for each transport (tcp, tls) starts every server entry in turn, loads it
with build/bench/loadgen (same parameters for all: 50 connections, 16 messages in flight each,
64-byte messages), stops it, and prints a side-by-side table: server, transport, msgs/s, p50 and p99
latency, and the ratio to the entry's baseline. Each server is measured --rounds times, interleaved
(the order alternates between rounds) and the best round is reported: on a shared machine noise only
ever lowers a figure. With several rounds the ratio column also gives the median of the per-round
ratios ("paired": the two runs of a round are adjacent in time and saw the same background load).
The server's CPU use during the window (its process group, % of one core) and its CPU time per
echoed message are shown too: on a small machine the load generator shares the CPUs, so CPU per
message is the figure that tells which server does less work. "other CPU" is what the rest of the
machine used during the window (other users' builds): a large value marks a noisy figure. Results also go to build/bench/results.json and build/bench/results.md.

EXTENSION POINT -- adding rows
------------------------------
A server entry is a bash script named `*.bench.sh` in bench/ or one directory below it
(bench/*.bench.sh, bench/*/*.bench.sh; e.g. bench/servers/c-abi.bench.sh, or
bench/python/asyncio.bench.sh for the Python rows). Every entry found runs, in `bench-order`.
Its header comments (within the first 30 lines) describe it:

    # bench-name: asyncio           unique id (used by --only and bench-baseline)
    # bench-label: Python asyncio   text of the table's server column (default: the name)
    # bench-baseline: go-stdlib     optional: the ratio column is msgs/s / msgs/s of that entry
    #                               (same transport, same run)
    # bench-goal: 0.8               optional: the ratio it should reach (reported, not enforced)
    # bench-order: 30               optional: row order, default 50 (c-abi 10, go-stdlib 20)
    # bench-transports: tcp tls     optional: default "tcp tls"

It is run as `bash ENTRY TRANSPORT` (TRANSPORT = tcp or tls) from the repository root with these
environment variables:

    TCPGO_ROOT      absolute path of the repository
    TCPGO_BUILD     absolute path of build/
    TCPGO_LIBRARY   absolute path of build/lib/libtcpserver.so
    BENCH_CERTS     directory with ca.pem, server.pem, server.key, client.pem, client.key
    BENCH_TRANSPORT the transport again

and must:
  * listen on 127.0.0.1 (a port chosen by the system) and echo every byte it receives; messages
    are 64-byte lines ending in '\\n';
  * for tls: serve TLS with $BENCH_CERTS/server.pem + server.key and require a client certificate
    signed by $BENCH_CERTS/ca.pem (mutual TLS; the load generator presents client.pem);
  * print `PORT n` as its first line on stdout (within 20 s), or `SKIP reason` and exit when it
    cannot run here (e.g. an optional module is missing) -- the row then shows the reason;
  * run until its stdin reaches end of file or it gets SIGTERM (the driver closes stdin, then
    sends SIGTERM to its process group after 5 s, SIGKILL after 3 s more). Use `exec` for the
    server process so that it is the process the driver talks to.

To add prerequisites to the run (things to build first), add them to the `bench-c` target in your
mk/<part>.mk: `bench-c: my-prerequisite`.

Usage: bench/run.py [--duration 3s] [--warmup 1s] [--rounds 2] [--only c-abi,go-stdlib]
                    [--transports tcp,tls] [--conns 50] [--inflight 16] [--size 64]
Exit status: 0 when every run measured without errors, 1 otherwise (the table is printed anyway).
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError("bad duration %r (e.g. 3s, 500ms)" % text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "ms" else v


class Entry:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[: -len(".bench.sh")]
        self.label = None
        self.baseline = None
        self.goal = None
        self.order = 50
        self.transports = ["tcp", "tls"]
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= 30:
                    break
                m = re.match(r"#\s*bench-([a-z]+):\s*(.*?)\s*$", line)
                if not m:
                    continue
                key, val = m.groups()
                if key == "name":
                    self.name = val
                elif key == "label":
                    self.label = val
                elif key == "baseline":
                    self.baseline = val or None
                elif key == "goal":
                    self.goal = float(val)
                elif key == "order":
                    self.order = int(val)
                elif key == "transports":
                    self.transports = val.split()
        self.label = self.label or self.name


def discover(only):
    paths = sorted(set(glob.glob(os.path.join(ROOT, "bench", "*.bench.sh"))
                       + glob.glob(os.path.join(ROOT, "bench", "*", "*.bench.sh"))))
    entries = [Entry(p) for p in paths]
    names = [e.name for e in entries]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit("bench: duplicate bench-name: %s" % ", ".join(sorted(dup)))
    if only:
        unknown = set(only) - set(names)
        if unknown:
            sys.exit("bench: no entry named %s (have: %s)" % (", ".join(sorted(unknown)), ", ".join(names)))
        entries = [e for e in entries if e.name in only]
    entries.sort(key=lambda e: (e.order, e.name))
    return entries


def read_line(proc, timeout):
    """First stdout line of proc, or None after timeout or EOF."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return buf.decode(errors="replace").strip() or None
            buf += chunk
    finally:
        sel.close()
    return buf.split(b"\n", 1)[0].decode(errors="replace").strip()


def stop_server(proc):
    """Close stdin, then SIGTERM, then SIGKILL the entry's process group."""
    try:
        proc.stdin.close()
    except OSError:
        pass
    for sig, wait in ((None, 5), (signal.SIGTERM, 3), (signal.SIGKILL, 3)):
        if sig is not None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return None


def tail(path, n=5):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [l.rstrip() for l in f if l.strip()]
        return lines[-n:]
    except OSError:
        return []


def run_one(entry, transport, args, env, tmp, loadgen, certs, seq):
    res = {"name": entry.name, "transport": transport, "ok": False}
    errpath = os.path.join(tmp, "%03d-%s-%s.stderr" % (seq, entry.name, transport))
    with open(errpath, "wb") as errf:
        proc = subprocess.Popen(["bash", entry.path, transport], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf,
                                start_new_session=True)
    try:
        first = read_line(proc, 20)
        if first and first.startswith("SKIP"):
            res["skip"] = first[4:].strip() or "skipped"
            return res
        m = re.fullmatch(r"PORT (\d+)", first or "")
        if not m:
            res["error"] = "server did not print PORT n (got %r)" % first
            return res
        cmd = [loadgen, "-addr", "127.0.0.1:" + m.group(1), "-conns", str(args.conns),
               "-inflight", str(args.inflight), "-size", str(args.size),
               "-duration", "%gs" % args.duration, "-warmup", "%gs" % args.warmup]
        if transport == "tls":
            cmd += ["-tls", "-ca", os.path.join(certs, "ca.pem"),
                    "-cert", os.path.join(certs, "client.pem"),
                    "-key", os.path.join(certs, "client.key")]
        lgp = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # CPU time of the server's process group and of loadgen during the
        # measurement window (approximately: the window starts after the
        # connections are up, a few ms after loadgen starts).
        t0 = time.monotonic()
        time.sleep(args.warmup + 0.05)
        c0 = (group_cpu(proc.pid), group_cpu(lgp.pid, pgrp=False), time.monotonic(), busy_cpu())
        time.sleep(max(0.0, t0 + args.warmup + args.duration - 0.05 - time.monotonic()))
        c1 = (group_cpu(proc.pid), group_cpu(lgp.pid, pgrp=False), time.monotonic(), busy_cpu())
        try:
            out, err = lgp.communicate(timeout=args.duration + args.warmup + 40)
        except subprocess.TimeoutExpired:
            lgp.kill()
            lgp.communicate()
            res["error"] = "loadgen did not finish"
            return res
        lg = subprocess.CompletedProcess(cmd, lgp.returncode, out, err)
        wall = c1[2] - c0[2]
        if wall > 0:
            res["server_cpu_pct"] = round(100 * (c1[0] - c0[0]) / wall, 1)
            res["loadgen_cpu_pct"] = round(100 * (c1[1] - c0[1]) / wall, 1)
            # Everything else the machine did meanwhile (other users' builds...).
            other = (c1[3] - c0[3]) - (c1[0] - c0[0]) - (c1[1] - c0[1])
            res["other_cpu_pct"] = round(max(0.0, 100 * other / wall), 1)
        lines = [l for l in lg.stdout.splitlines() if l.startswith("{")]
        if not lines:
            res["error"] = "loadgen printed no result (exit %d): %s" % (
                lg.returncode, " | ".join(lg.stderr.strip().splitlines()[-3:]))
            return res
        res.update(json.loads(lines[-1]))
        if res["errors"]:
            res["error"] = "%d errors: %s" % (res["errors"], " | ".join(lg.stderr.strip().splitlines()[:2]))
        res["ok"] = res["errors"] == 0 and res["msgs"] > 0
        if res.get("server_cpu_pct") is not None and res["msgs_per_s"] > 0:
            # server CPU microseconds per echoed message
            res["server_cpu_us_per_msg"] = round(res["server_cpu_pct"] / 100 * 1e6 / res["msgs_per_s"], 2)
        return res
    finally:
        rc = stop_server(proc)
        if proc.stdout:
            proc.stdout.close()
        res["server_exit"] = rc
        if not res["ok"] and "skip" not in res:
            res["server_stderr"] = tail(errpath)
        elif rc not in (0, -signal.SIGTERM, 143):
            res["server_stderr"] = tail(errpath)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def group_cpu(pid, pgrp=True):
    """CPU seconds (user + system) used so far by the processes of process
    group pid (or by process pid alone)."""
    total = 0
    pids = [pid]
    if pgrp:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    for p in pids:
        try:
            with open("/proc/%d/stat" % p, "rb") as f:
                st = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15
        if pgrp and int(fields[2]) != pid:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def busy_cpu():
    """CPU seconds the whole machine spent busy (all CPUs, not idle)."""
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / CLK_TCK


def machine_info():
    info = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        info["cpu"] = m.group(1).strip() if m else "?"
    except (OSError, subprocess.SubprocessError):
        info["cpu"] = "?"
    try:
        info["go"] = subprocess.run([os.environ.get("GO", "go"), "version"], capture_output=True,
                                    text=True, timeout=30).stdout.strip().replace("go version ", "")
    except (OSError, subprocess.SubprocessError):
        info["go"] = "?"
    info["python"] = platform.python_version()
    return info


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


def fmt_rate(v):
    return "{:,.0f}".format(v) if v is not None else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    def env_or(name, default):
        return os.environ.get(name) or default

    ap.add_argument("--duration", type=parse_duration, default=parse_duration(env_or("BENCH_DURATION", "3s")))
    ap.add_argument("--warmup", type=parse_duration, default=parse_duration(env_or("BENCH_WARMUP", "1s")))
    ap.add_argument("--rounds", type=int, default=int(env_or("BENCH_ROUNDS", "2")))
    ap.add_argument("--only", default=env_or("BENCH_ONLY", ""), help="comma-separated entry names")
    ap.add_argument("--transports", default=env_or("BENCH_TRANSPORTS", "tcp,tls"))
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    transports = [t for t in args.transports.replace(",", " ").split() if t]
    only = [n for n in args.only.replace(",", " ").split() if n]

    loadgen = os.path.join(build, "bench", "loadgen")
    cecho = os.path.join(build, "bench", "c_echo_server")
    lib = os.path.join(build, "lib", "libtcpserver.so")
    for p in (loadgen, cecho, lib):
        if not os.path.exists(p):
            sys.exit("bench: %s is missing; run `make bench`" % os.path.relpath(p, ROOT))
    entries = discover(only)
    if not entries:
        sys.exit("bench: no server entries")

    tmp = tempfile.mkdtemp(prefix="tcpgo-bench-")
    try:
        certs = os.path.join(tmp, "certs")
        os.mkdir(certs)
        gen = subprocess.run([cecho, "-gencerts", certs], capture_output=True, text=True, timeout=60)
        if gen.returncode != 0:
            sys.exit("bench: generating certificates failed: " + gen.stderr.strip())
        env = dict(os.environ, TCPGO_ROOT=ROOT, TCPGO_BUILD=build, TCPGO_LIBRARY=lib,
                   BENCH_CERTS=certs)

        info = machine_info()
        info["load_before"] = loadavg()
        print("tcpgo echo benchmark: %s, %d conns x %d in flight, %d-byte messages, "
              "%gs warm-up + %gs measured, best of %d round(s)"
              % (", ".join(e.name for e in entries), args.conns, args.inflight, args.size,
                 args.warmup, args.duration, args.rounds))
        print("machine: %s, %s CPUs (nproc), Linux %s, %s, load average %.2f"
              % (info["cpu"], info["nproc"], info["kernel"], info["go"], info["load_before"]))
        sys.stdout.flush()

        runs = []
        seq = 0
        for rnd in range(args.rounds):
            for transport in transports:
                order = entries if rnd % 2 == 0 else list(reversed(entries))
                for e in order:
                    if transport not in e.transports:
                        continue
                    seq += 1
                    r = run_one(e, transport, args, env, tmp, loadgen, certs, seq)
                    r["round"] = rnd + 1
                    runs.append(r)
                    if "skip" in r:
                        status = "skipped: " + r["skip"]
                    elif "msgs_per_s" in r:
                        status = "%s msgs/s  p50 %.0f us  p99 %.0f us  CPU: server %s%% loadgen %s%% other %s%%" % (
                            fmt_rate(r["msgs_per_s"]), r["p50_us"], r["p99_us"],
                            r.get("server_cpu_pct", "?"), r.get("loadgen_cpu_pct", "?"),
                            r.get("other_cpu_pct", "?"))
                    else:
                        status = "FAILED"
                    if r.get("error"):
                        status += "  (" + r["error"] + ")"
                    print("  round %d  %-4s %-14s %s" % (rnd + 1, transport, e.name, status))
                    for l in r.get("server_stderr", []):
                        print("      server: " + l)
                    sys.stdout.flush()

        # Best round per (entry, transport).
        best = {}
        for r in runs:
            key = (r["name"], r["transport"])
            cur = best.get(key)
            if "msgs_per_s" in r and (cur is None or "msgs_per_s" not in cur
                                      or r["msgs_per_s"] > cur["msgs_per_s"]):
                best[key] = r
            elif cur is None:
                best[key] = r
        rows = []
        for transport in transports:
            for e in entries:
                b = best.get((e.name, transport))
                if b is None:
                    continue
                all_rates = [r["msgs_per_s"] for r in runs
                             if r["name"] == e.name and r["transport"] == transport and "msgs_per_s" in r]
                row = {"server": e.label, "name": e.name, "transport": transport,
                       "msgs_per_s": b.get("msgs_per_s"), "p50_us": b.get("p50_us"),
                       "p99_us": b.get("p99_us"), "server_cpu_pct": b.get("server_cpu_pct"),
                       "server_cpu_us_per_msg": b.get("server_cpu_us_per_msg"),
                       "loadgen_cpu_pct": b.get("loadgen_cpu_pct"),
                       "other_cpu_pct": b.get("other_cpu_pct"), "errors": sum(r.get("errors", 0) for r in runs
                                                                if r["name"] == e.name and r["transport"] == transport),
                       "rounds": all_rates, "skip": b.get("skip"), "ok": all(
                           r["ok"] for r in runs if r["name"] == e.name and r["transport"] == transport)}
                ratio = None
                base = best.get((e.baseline, transport)) if e.baseline else None
                if base and base.get("msgs_per_s") and b.get("msgs_per_s") is not None:
                    ratio = b["msgs_per_s"] / base["msgs_per_s"]
                # Ratio of the two runs of the same round (adjacent in time,
                # so they saw the same background load), median over rounds.
                paired = []
                for rnd in range(1, args.rounds + 1):
                    mine = [r for r in runs if r["name"] == e.name and r["transport"] == transport
                            and r["round"] == rnd and r.get("msgs_per_s")]
                    theirs = [r for r in runs if r["name"] == e.baseline and r["transport"] == transport
                              and r["round"] == rnd and r.get("msgs_per_s")]
                    if mine and theirs:
                        paired.append(mine[0]["msgs_per_s"] / theirs[0]["msgs_per_s"])
                row["baseline"] = e.baseline
                row["ratio"] = ratio
                row["paired_ratios"] = [round(x, 3) for x in paired]
                row["paired_median"] = statistics.median(paired) if paired else None
                row["goal"] = e.goal
                rows.append(row)

        def cells(row):
            if row["skip"]:
                return [row["server"], row["transport"], "skipped", "", "", "", "", "", "", row["skip"]]
            if row["msgs_per_s"] is None:
                return [row["server"], row["transport"], "FAILED", "", "", "", "", "", "", "see the log above"]
            ratio = ""
            if row["ratio"] is not None:
                ratio = "%.2fx %s" % (row["ratio"], row["baseline"])
                if row["paired_median"] is not None and len(row["paired_ratios"]) > 1:
                    ratio += ", paired median %.2f" % row["paired_median"]
                if row["goal"] is not None:
                    ratio += " (goal %.2f: %s)" % (row["goal"], "met" if row["ratio"] >= row["goal"] else "NOT met")
            rounds = "/".join("%.0fk" % (v / 1000) for v in row["rounds"])
            cpu = row["server_cpu_pct"]
            per = row["server_cpu_us_per_msg"]
            return [row["server"], row["transport"], fmt_rate(row["msgs_per_s"]),
                    "%.0f" % row["p50_us"], "%.0f" % row["p99_us"], ratio,
                    "-" if cpu is None else "%.0f%%" % cpu, "-" if per is None else "%.2f" % per,
                    "-" if row["other_cpu_pct"] is None else "%.0f%%" % row["other_cpu_pct"],
                    rounds + ("" if row["errors"] == 0 else "  %d errors" % row["errors"])]

        head = ["server", "transport", "msgs/s", "p50 us", "p99 us", "ratio", "server CPU",
                "CPU us/msg", "other CPU", "rounds (msgs/s)"]
        table = [head] + [cells(r) for r in rows]
        widths = [max(len(t[i]) for t in table) for i in range(len(head))]
        right = {2, 3, 4, 6, 7, 8}
        print()
        for i, t in enumerate(table):
            print("  ".join(c.rjust(w) if j in right else c.ljust(w)
                            for j, (c, w) in enumerate(zip(t, widths))).rstrip())
            if i == 0:
                print("  ".join("-" * w for w in widths))
        print("server CPU: the server's processes during the window, %% of one CPU (of %s); CPU us/msg: that\n"
              "time per echoed message; other CPU: what the rest of the machine used meanwhile (noise)."
              % info["nproc"])

        outdir = os.path.join(build, "bench")
        with open(os.path.join(outdir, "results.json"), "w", encoding="utf-8") as f:
            json.dump({"machine": info, "params": {"conns": args.conns, "inflight": args.inflight,
                                                    "size": args.size, "duration_s": args.duration,
                                                    "warmup_s": args.warmup, "rounds": args.rounds},
                       "rows": rows, "runs": runs}, f, indent=1)
        with open(os.path.join(outdir, "results.md"), "w", encoding="utf-8") as f:
            f.write("| " + " | ".join(head) + " |\n")
            f.write("|" + "|".join("---:" if j in right else "---" for j in range(len(head))) + "|\n")
            for t in table[1:]:
                f.write("| " + " | ".join(t) + " |\n")
        print("results: %s, %s" % (os.path.relpath(os.path.join(outdir, "results.json"), ROOT),
                                   os.path.relpath(os.path.join(outdir, "results.md"), ROOT)))
        failed = [r for r in runs if not r["ok"] and "skip" not in r]
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
