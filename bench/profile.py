#!/usr/bin/env python3
"""Where the C-on-ABI server's time per message goes: a perf profile (run by `make bench-profile`).

    python3 bench/profile.py [--build build] [--libdir DIR] [--config d16] [--seconds 5]
                             [--entry c-abi] [--transport tcp]

Starts the entry's server (default c-abi) with LD_LIBRARY_PATH=DIR (make bench-profile builds the
library with its symbols into BUILD/bench/prof/lib), loads it with build/bench/loadgen in the
chosen configuration (bench/run.py's), and records it with `perf record -e cpu-clock -g` (this VM
has no hardware counters; cpu-clock sampling works). Prints the server's CPU per message, the top
symbols (self time) and the time grouped by what it is (kernel network stack, system call entry,
Go scheduler, cgo crossings, engine, C callback...), and then, in a second window, the system calls
and context switches per message (perf stat on tracepoints). Needs perf (apt-get install linux-perf).
"""

import argparse
import collections
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
from run import CONFIGS  # noqa: E402

# (group, regex on the symbol) -- first match wins; [k] marks kernel symbols.
GROUPS = [
    ("cgo crossings (Go->C callback, C->Go send)", r"cgocall|cgocallback|crosscall|asmcgocall|_cgo_|"
                                                   r"runtime\.(?:exitsyscall|entersyscall|reentersyscall|"
                                                   r"lockOSThread|unlockOSThread|needm|dropm)|"
                                                   r"_Cfunc_|_cgoexp_|tcpgo_call_"),
    ("Go scheduler, netpoll, timers", r"runtime\.(?:schedule|findRunnable|park|ready|goready|netpoll|"
                                      r"stealWork|runqsteal|runqgrab|checkTimers|wakep|startm|stopm|"
                                      r"notesleep|notewakeup|futex|mPark|gopark|goexit|mcall|gogo|"
                                      r"execute|resetspinning|injectglist|lock2|unlock2|nanotime|"
                                      r"selectgo|chansend|chanrecv|send|recv|sellock|selunlock|"
                                      r"casgstatus|sysmon|usleep|osyield|procyield|semacquire|semrelease)|"
                                      r"internal/runtime|runtime\.\(\*"),
    ("Go memory (malloc, GC, write barriers)", r"runtime\.(?:mallocgc|gcBgMarkWorker|gcDrain|scanobject|"
                                               r"greyobject|markBits|memclr|growslice|newobject|makeslice|"
                                               r"wbBuf|bulkBarrier|gcWriteBarrier|sweepone|mspan|mcache|"
                                               r"nextFreeFast|heapBits|findObject|typePointers)"),
    ("syscall entry/exit (Go side)", r"syscall\.|internal/poll|runtime\.(?:Syscall|RawSyscall)|"
                                     r"os\.\(\*File\)|net\.\(\*conn\)|net\.\(\*netFD\)"),
    ("tcpgo engine (framing, queues, conn)", r"tcpgo/libtcp/engine|engine\."),
    ("tcpgo C ABI layer (handles, look-ups)", r"^main\.|libtcp/capi|sync\.\(\*Map\)|sync\.\(\*RWMutex\)|"
                                              r"sync\.\(\*Mutex\)|sync/atomic"),
    ("crypto/tls", r"crypto/|tls\."),
    ("C program (callback, libc)", r"on_message|memcpy|memmove|memchr|__libc|pthread|malloc|free"),
    ("kernel: TCP/IP, loopback, socket", r"\[k\].*(?:tcp|inet|ip_|sock|skb|__dev|netif|net_rx|loopback|"
                                         r"__napi|process_backlog|sk_|__kfree|kmem|copy_|_copy|check_heap|"
                                         r"__check_object|napi|nf_|fib|dst_|xmit|csum|__netif|qdisc|__alloc|"
                                         r"ep_|epoll|security_|apparmor|fsnotify|rw_verify|__fdget|fput|vfs_)"),
    ("kernel: syscall entry, scheduler, futex, other", r"\[k\]"),
]


STAT_EVENTS = ["raw_syscalls:sys_enter", "syscalls:sys_enter_read", "syscalls:sys_enter_write",
               "syscalls:sys_enter_writev", "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_sendto",
               "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_recvmsg", "syscalls:sys_enter_epoll_wait",
               "syscalls:sys_enter_epoll_pwait", "syscalls:sys_enter_futex", "syscalls:sys_enter_nanosleep",
               "syscalls:sys_enter_sched_yield", "syscalls:sys_enter_getpid", "syscalls:sys_enter_tgkill",
               "context-switches"]


def classify(sym):
    for name, rx in GROUPS:
        if re.search(rx, sym):
            return name
    return "other (unresolved, misc.)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("BENCH_BUILD") or os.path.join(ROOT, "build"))
    ap.add_argument("--libdir", default=os.environ.get("BENCH_PROF_LIBDIR"),
                    help="directory with an unstripped libtcpserver.so.0 (default: the build's library)")
    ap.add_argument("--entry", default="c-abi")
    ap.add_argument("--transport", default="tcp")
    ap.add_argument("--config", default="d16", choices=sorted(CONFIGS))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    if not shutil.which("perf"):
        sys.exit("profile: perf is not installed (apt-get install linux-perf)")
    build = os.path.abspath(args.build)
    loadgen = os.path.join(build, "bench", "loadgen")
    cfg = CONFIGS[args.config]
    entry = [e for e in benchlib.discover([args.entry])][0]
    tmp = tempfile.mkdtemp(prefix="tcpgo-profile-")
    try:
        certs = os.path.join(tmp, "certs")
        os.mkdir(certs)
        benchlib.make_certs(os.path.join(build, "bench", "c_echo_server"), certs)
        env = benchlib.entry_env(build, certs)
        if args.libdir:
            env["LD_LIBRARY_PATH"] = os.path.abspath(args.libdir)
        srv = benchlib.Server(entry, args.transport, env, os.path.join(tmp, "server.stderr"))
        if srv.port is None:
            sys.exit("profile: server did not start: %s" % (srv.error or srv.skip))
        try:
            with open("/proc/%d/maps" % srv.pid, encoding="ascii", errors="replace") as f:
                libs = sorted({l.split()[-1] for l in f if "libtcpserver" in l})
            cmd = [loadgen, "-addr", "127.0.0.1:%d" % srv.port, "-conns", str(cfg["conns"]),
                   "-inflight", str(cfg["inflight"]), "-size", str(cfg["size"]),
                   "-duration", "%gs" % (2 * args.seconds + 1), "-warmup", "1s"]
            if cfg.get("mode"):
                cmd += ["-mode", cfg["mode"], "-src", cfg["src"]]
            if args.transport == "tls":
                cmd += ["-tls", "-ca", os.path.join(certs, "ca.pem"), "-cert", os.path.join(certs, "client.pem"),
                        "-key", os.path.join(certs, "client.key")]
            lg = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.2)
            data = os.path.join(tmp, "perf.data")
            win = benchlib.Window(srv.pid, [lg.pid])
            subprocess.run(["perf", "record", "-e", "cpu-clock", "-F", "2000", "-g", "-o", data, "-p", str(srv.pid),
                            "--", "sleep", str(args.seconds)], capture_output=True, timeout=args.seconds + 60)
            w = win.finish()
            # Then count system calls and context switches (tracepoints: a separate window, as
            # counting them slows the server down a little).
            stat = subprocess.run(["perf", "stat", "-x", ",", "-e", ",".join(STAT_EVENTS), "-p", str(srv.pid),
                                   "--", "sleep", str(args.seconds)], capture_output=True, text=True,
                                  timeout=args.seconds + 60)
            out, _ = lg.communicate(timeout=2 * args.seconds + 60)
        finally:
            srv.stop()
        res = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym",
                              "-g", "none", "--percent-limit", "0"], capture_output=True, text=True, timeout=300)
        rows = []
        for line in rep.stdout.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
            if m:
                pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
                rows.append((pct, dso, ("[k] " if kind == "k" else "") + sym))
        per_msg = w["server_cpu_pct"] / 100 * 1e6 / res["msgs_per_s"] if res.get("msgs_per_s") else None
        print("%s %s %s: %s msgs/s, server CPU %.0f%% = %.3f us/msg (steal %.1f%%, other %.1f%%); library %s"
              % (args.entry, args.transport, args.config, benchlib.fmt_rate(res.get("msgs_per_s")),
                 w["server_cpu_pct"], per_msg or 0, w["steal_pct"], w["other_cpu_pct"], ", ".join(libs)))
        if res.get("msgs_per_s"):
            n = res["msgs_per_s"] * args.seconds
            counts = []
            for line in stat.stderr.splitlines():
                f = line.split(",")
                if len(f) > 2 and f[0].strip().isdigit():
                    counts.append((f[2].replace("syscalls:sys_enter_", "").replace("raw_syscalls:sys_enter",
                                                                                    "all system calls"),
                                   int(f[0])))
            print("\nper message (perf stat, %g s, %s msgs/s assumed):" % (args.seconds,
                                                                        benchlib.fmt_rate(res["msgs_per_s"])))
            for name, c in counts:
                if c:
                    print("  %8.4f  %s" % (c / n, name))
        groups = collections.Counter()
        for pct, dso, sym in rows:
            groups[classify(sym if not dso.startswith("[kernel") else "[k] " + sym.replace("[k] ", ""))] += pct
        print("\nby kind (share of the server's CPU; us/msg = share x %.3f):" % (per_msg or 0))
        for name, pct in groups.most_common():
            print("  %5.1f%%  %6.3f us  %s" % (pct, pct / 100 * (per_msg or 0), name))
        print("\ntop %d symbols (self):" % args.top)
        for pct, dso, sym in rows[: args.top]:
            print("  %5.1f%%  %-22s %s" % (pct, dso[:22], sym))
        # Inclusive time (the function and what it calls), user-space frames only.
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--children", "--sort", "dso,sym",
                              "-g", "none", "--percent-limit", "2"], capture_output=True, text=True, timeout=300)
        print("\ninclusive (the function and everything it calls), user-space frames >= 2%:")
        for line in rep.stdout.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
            if m and m.group(4) != "k":
                print("  %5.1f%%  %-22s %s" % (float(m.group(1)), m.group(3)[:22], m.group(5).strip()))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
