#!/usr/bin/env python3
"""Issue 10's goals against the figures of the last `make bench` (Python standard library only).

    python3 bench/goals.py [--build build]

Reads BUILD/bench/results.json (bench/run.py) and BUILD/bench/scale.json (bench/scale.py), prints
one line per goal -- today's figure, the target, met or NOT met and by how much -- and writes the
same table to BUILD/bench/goals.md. A goal whose figures are missing (an entry was skipped or not
run) says so. Exit status 0 (the goals are reported, not enforced).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import ROOT  # noqa: E402

CONFIG_NAMES = {"d16": "64 B depth 16", "d1": "64 B depth 1", "16k": "16 KiB", "connect": "connect+echo+close"}


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def verdict(value, target, higher_is_better):
    """'met' or 'NOT met (needs +12%)' for value against target."""
    if value is None:
        return "no figure"
    ok = value >= target if higher_is_better else value <= target
    if ok:
        return "met"
    return "NOT met (needs %+.0f%%)" % (100 * (target / value - 1))


class Goals:
    def __init__(self, results, scale):
        self.rows = {}
        for r in (results or {}).get("rows", []):
            self.rows[(r["config"], r["name"], r["transport"])] = r
        self.rtt = (results or {}).get("rtt", [])
        self.scale = {(r["name"], r["transport"]): r for r in (scale or {}).get("rows", [])}
        self.scale_conns = (scale or {}).get("conns")
        self.lines = []

    def row(self, config, name, transport):
        r = self.rows.get((config, name, transport))
        return r if r and r.get("msgs_per_s") else None

    def add(self, goal, figure, target, status):
        self.lines.append([goal, figure, target, status])

    def ratio(self, goal, config, name, base, transport, key, target, higher, unit):
        a, b = self.row(config, name, transport), self.row(config, base, transport)
        if not a or not b or not a.get(key) or not b.get(key):
            self.add(goal, "missing (%s %s or %s not measured)" % (name, transport, base), "", "no figure")
            return
        v = a[key] / b[key]
        fig = "%.2fx (%s vs %s %s)" % (v, fmt(a[key], key), fmt(b[key], key), unit)
        self.add(goal, fig, ("≥ %.2fx" if higher else "≤ %.2fx") % target, verdict(v, target, higher))

    def build(self):
        # The C program with one callback per message (c-abi) and with batch
        # callbacks + one send per batch (c-abi-batch, tcp_*_set_on_messages).
        # The "1 CPU" entries run the same program after tcp_set_max_cpus(1),
        # like the one-thread epoll baseline; their TLS baseline is Go stdlib
        # at GOMAXPROCS=1 (the same limit on both sides).
        c_entries = (("c-abi", "C on the ABI"), ("c-abi-batch", "C on the ABI, batches"),
                     ("c-abi-1cpu", "C on the ABI, 1 CPU"), ("c-abi-batch-1cpu", "C on the ABI, batches, 1 CPU"))
        for name, label in c_entries:
            for cfg in ("d16", "d1", "16k"):
                c = CONFIG_NAMES[cfg]
                self.ratio("%s msgs/s vs C epoll, %s (TCP)" % (label, c), cfg, name, "c-epoll", "tcp",
                           "msgs_per_s", 0.9, True, "msgs/s")
                self.ratio("%s CPU µs/msg vs C epoll, %s (TCP)" % (label, c), cfg, name, "c-epoll", "tcp",
                           "server_cpu_us_per_msg", 1.25, False, "µs")
        for name, label in c_entries:
            go = "go-stdlib-1cpu" if name.endswith("-1cpu") else "go-stdlib"
            for cfg in ("d16", "d1", "16k"):
                self.ratio("%s mutual TLS msgs/s vs %s TLS, %s" % (label, go, CONFIG_NAMES[cfg]), cfg, name,
                           go, "tls", "msgs_per_s", 1.0, True, "msgs/s")
        for cfg in ("d16", "d1", "16k"):
            for t in ("tcp", "tls"):
                self.ratio("C++ tcp:: msgs/s vs C on the ABI, %s (%s)" % (CONFIG_NAMES[cfg], t.upper()), cfg,
                           "cpp", "c-abi", t, "msgs_per_s", 0.95, True, "msgs/s")
                self.ratio("C++ tcp:: CPU µs/msg vs C on the ABI, %s (%s)" % (CONFIG_NAMES[cfg], t.upper()), cfg,
                           "cpp", "c-abi", t, "server_cpu_us_per_msg", 1.05, False, "µs")
        for name, label in (("py-tcpgo-debian", "Python tcpgo"), ("py-tcpgo-batch-debian", "Python tcpgo, on_messages"),
                            ("py-tcpgo-1cpu-debian", "Python tcpgo, 1 CPU")):
            for t in ("tcp", "tls"):
                # "more than uvloop": a ratio above 1.00
                self.ratio("%s msgs/s vs uvloop, /usr/bin/python3, 64 B depth 16 (%s)" % (label, t.upper()), "d16",
                           name, "py-uvloop", t, "msgs_per_s", 1.0, True, "msgs/s")
                self.ratio("%s CPU µs/msg vs uvloop, /usr/bin/python3, 64 B depth 16 (%s)" % (label, t.upper()),
                           "d16", name, "py-uvloop", t, "server_cpu_us_per_msg", 1.0, False, "µs")
        self.rtt_goals()
        self.scale_goals()
        for name, label in (("c-abi", "C on the ABI"), ("c-abi-1cpu", "C on the ABI, 1 CPU")):
            self.ratio("connect+echo+close rate, %s vs C epoll (TCP)" % label, "connect", name, "c-epoll", "tcp",
                       "msgs_per_s", 0.9, True, "conns/s")
        return self.lines

    def rtt_goals(self):
        by_py = {}
        for r in self.rtt:
            if "median_s" in r:
                py = "%s (Python %s)" % (r["executable"], r["python"])
                by_py.setdefault(py, {})[r["client"]] = r
        if not by_py:
            self.add("Python sequential round trips vs asyncio streams", "missing", "", "no figure")
        for py, clients in by_py.items():
            base = clients.get("asyncio")
            for kind, name in (("sync", "TcpClient.request"), ("aio", "tcpgo.aio request")):
                mine = clients.get(kind)
                goal = "1000 round trips, %s vs asyncio streams, %s" % (name, py)
                if not mine or not base:
                    self.add(goal, "missing", "", "no figure")
                    continue
                v = mine["median_s"] / base["median_s"]
                self.add(goal, "%.3f s vs %.3f s (%.1fx)" % (mine["median_s"], base["median_s"], v), "≤ 1.00x",
                         verdict(v, 1.0, False))

    def scale_goals(self):
        n = self.scale_conns
        for t, target in (("tcp", 10.0), ("tls", 20.0)):
            r = self.scale.get(("c-abi", t))
            goal = "idle connection, tcpgo %s, at %s connections" % (
                "TCP" if t == "tcp" else "mutual TLS", "{:,}".format(n) if n else "?")
            if not r or "kib_per_conn" not in r:
                self.add(goal, "missing", "", "no figure")
                continue
            others = []
            for name in ("go-stdlib", "c-epoll"):
                o = self.scale.get((name, t))
                if o and "kib_per_conn" in o:
                    others.append("%s %.2f" % (name, o["kib_per_conn"]))
            fig = "%.2f KiB/conn" % r["kib_per_conn"] + (" (%s)" % ", ".join(others) if others else "")
            if r.get("conns") != n:
                fig += ", only %d connections" % r.get("conns", 0)
            self.add(goal, fig, "≤ %.0f KiB" % target, verdict(r["kib_per_conn"], target, False))


def fmt(v, key):
    if key == "msgs_per_s":
        return "{:,.0f}".format(v)
    return "%.2f" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("BENCH_BUILD") or os.path.join(ROOT, "build"))
    args = ap.parse_args()
    bench = os.path.join(os.path.abspath(args.build), "bench")
    results = load(os.path.join(bench, "results.json"))
    scale = load(os.path.join(bench, "scale.json"))
    if results is None and scale is None:
        print("goals: no results in %s (run make bench-c and make bench-scale)" % bench)
        return 0
    lines = Goals(results, scale).build()
    text, md = benchlib.render_table(["goal (issue 10)", "today", "target", "status"], lines, right=set())
    when = []
    for name, d in (("bench-c", results), ("bench-scale", scale)):
        if d:
            when.append("%s: %s, commit %s" % (name, d["machine"]["date"], d["machine"]["commit"]))
    met = sum(1 for l in lines if l[3] == "met")
    print("\nIssue 10 goals (%s)\n%s\n%d of %d met" % ("; ".join(when), text, met, len(lines)))
    with open(os.path.join(bench, "goals.md"), "w", encoding="utf-8") as f:
        f.write("Figures of %s. %d of %d goals met.\n\n%s\n" % ("; ".join(when), met, len(lines), md))
    print("written: %s" % os.path.join(bench, "goals.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
