"""What the benchmark drivers (bench/run.py, bench/scale.py) share: the server
entries, starting and stopping them, CPU accounting from /proc, the test PKI
and a description of the machine. Python standard library only.

Server entries are documented at the top of bench/run.py.
"""

import datetime
import glob
import os
import platform
import re
import selectors
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
NPROC = os.cpu_count() or 1


class Entry:
    """One bench/*.bench.sh or bench/*/*.bench.sh server entry."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[: -len(".bench.sh")]
        self.label = None
        self.baselines = {}  # transport -> entry name ("*" = every transport)
        self.goal = None
        self.order = 50
        self.transports = ["tcp", "tls"]
        self.configs = ["d16"]
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
                    for word in val.split():
                        t, sep, name = word.partition("=")
                        if sep:
                            self.baselines[t] = name
                        else:
                            self.baselines["*"] = word
                elif key == "goal":
                    self.goal = float(val)
                elif key == "order":
                    self.order = int(val)
                elif key == "transports":
                    self.transports = val.split()
                elif key == "configs":
                    self.configs = val.split()
        self.label = self.label or self.name

    def baseline(self, transport):
        return self.baselines.get(transport, self.baselines.get("*"))


def discover(only=()):
    """Every entry (sorted by bench-order), or those named in only."""
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


class Server:
    """A running entry: `bash ENTRY TRANSPORT` in its own process group."""

    def __init__(self, entry, transport, env, errpath):
        self.entry = entry
        self.errpath = errpath
        with open(errpath, "wb") as errf:
            self.proc = subprocess.Popen(["bash", entry.path, transport], cwd=ROOT, env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf,
                                         start_new_session=True)
        self.pid = self.proc.pid
        self.port = None
        self.skip = None
        self.error = None
        first = read_line(self.proc, 20)
        if first and first.startswith("SKIP"):
            self.skip = first[4:].strip() or "skipped"
            return
        m = re.fullmatch(r"PORT (\d+)", first or "")
        if m:
            self.port = int(m.group(1))
        else:
            self.error = "server did not print PORT n (got %r)" % first

    def stop(self):
        """Close stdin, then SIGTERM, then SIGKILL the entry's process group."""
        proc = self.proc
        try:
            proc.stdin.close()
        except OSError:
            pass
        rc = None
        for sig, wait in ((None, 5), (signal.SIGTERM, 3), (signal.SIGKILL, 3)):
            if sig is not None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            try:
                rc = proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.stdout:
            proc.stdout.close()
        return rc

    def stderr_tail(self, n=5):
        try:
            with open(self.errpath, encoding="utf-8", errors="replace") as f:
                lines = [l.rstrip() for l in f if l.strip()]
            return lines[-n:]
        except OSError:
            return []


def _stat_fields(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            st = f.read().decode(errors="replace")
    except OSError:
        return None
    # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15
    return st[st.rindex(")") + 2:].split()


def group_cpu(pid, pgrp=True):
    """CPU seconds (user + system, /proc/PID/stat utime + stime) used so far by
    the processes of process group pid, or by process pid alone."""
    if not pgrp:
        f = _stat_fields(pid)
        return 0.0 if f is None else (int(f[11]) + int(f[12])) / CLK_TCK
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        f = _stat_fields(int(d))
        if f is not None and int(f[2]) == pid:
            total += int(f[11]) + int(f[12])
    return total / CLK_TCK


def group_pids(pgid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = _stat_fields(int(d))
            if f is not None and int(f[2]) == pgid:
                out.append(int(d))
    return out


def group_ctx_switches(pgid):
    """Context switches (voluntary + involuntary, over all threads) of a
    process group so far."""
    ctx = 0
    for pid in group_pids(pgid):
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
        except OSError:
            tasks = []
        for t in tasks:
            st = proc_status_path("/proc/%d/task/%s/status" % (pid, t))
            ctx += int(st.get("voluntary_ctxt_switches", "0")) + int(st.get("nonvoluntary_ctxt_switches", "0"))
    return ctx


def proc_status(pid):
    return proc_status_path("/proc/%d/status" % pid)


def proc_status_path(path):
    """/proc/PID/status as a dict of str -> str."""
    out = {}
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out


def rss_kib(pgid):
    """Resident memory of the process group (VmRSS, KiB) and its peak (VmHWM)."""
    rss = hwm = 0
    for pid in group_pids(pgid):
        st = proc_status(pid)
        rss += int(st.get("VmRSS", "0 kB").split()[0])
        hwm += int(st.get("VmHWM", "0 kB").split()[0])
    return rss, hwm


def machine_cpu():
    """/proc/stat "cpu" line in seconds: dict with busy (user+nice+system+irq+
    softirq), steal, iowait, idle -- summed over all CPUs."""
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    v += [0] * (10 - len(v))
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return {"busy": (user + nice + system + irq + softirq) / CLK_TCK, "steal": steal / CLK_TCK,
            "iowait": iowait / CLK_TCK, "idle": idle / CLK_TCK}


class Window:
    """CPU accounting of a measurement window: the server's process group, the
    load generator (optional), and the whole machine (/proc/stat), all as % of
    one CPU. "other" is what the rest of the machine used (other people's work),
    "steal" the time the hypervisor gave our vCPUs to someone else."""

    def __init__(self, server_pgid, client_pids=()):
        self.server_pgid = server_pgid
        self.client_pids = list(client_pids)
        self.start = self._sample()

    def _sample(self):
        return (time.monotonic(), group_cpu(self.server_pgid),
                sum(group_cpu(p, pgrp=False) for p in self.client_pids), machine_cpu(),
                group_ctx_switches(self.server_pgid))

    def add_clients(self, pids):
        """Count these (just started) processes as the load generator too."""
        self.client_pids += list(pids)

    def finish(self):
        end = self._sample()
        wall = end[0] - self.start[0]
        if wall <= 0:
            return {}
        srv = end[1] - self.start[1]
        cli = end[2] - self.start[2]
        m0, m1 = self.start[3], end[3]
        busy = m1["busy"] - m0["busy"]
        pct = lambda x: round(100 * x / wall, 1)
        return {"wall_s": round(wall, 3), "server_cpu_s": round(srv, 3), "server_cpu_pct": pct(srv),
                "loadgen_cpu_pct": pct(cli), "other_cpu_pct": pct(max(0.0, busy - srv - cli)),
                "steal_pct": pct(m1["steal"] - m0["steal"]),
                "iowait_pct": pct(m1["iowait"] - m0["iowait"]),
                "server_ctx_switches": end[4] - self.start[4]}


def make_certs(cecho, certs):
    """The test PKI, made by c_echo_server -gencerts (tcp_generate_certs)."""
    gen = subprocess.run([cecho, "-gencerts", certs], capture_output=True, text=True, timeout=60)
    if gen.returncode != 0:
        sys.exit("bench: generating certificates failed: " + gen.stderr.strip())


def git_commit():
    """The commit measured: $BENCH_COMMIT (for a tree exported with git archive), else git's HEAD."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return head + ("+dirty" if dirty else "") if head else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_info():
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": NPROC, "kernel": platform.release(), "commit": git_commit()}
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
    try:
        info["load_before"] = round(os.getloadavg()[0], 2)
    except OSError:
        info["load_before"] = -1.0
    return info


def entry_env(build, certs):
    lib = os.path.join(build, "lib", "libtcpserver.so")
    return dict(os.environ, TCPGO_ROOT=ROOT, TCPGO_BUILD=build, TCPGO_LIBRARY=lib, BENCH_CERTS=certs)


def fmt_rate(v):
    return "{:,.0f}".format(v) if v is not None else "-"


def render_table(head, rows, right):
    """Plain-text table (for the terminal) and Markdown table, as two strings."""
    widths = [max(len(str(t[i])) for t in [head] + rows) for i in range(len(head))]
    lines = []
    for i, t in enumerate([head] + rows):
        lines.append("  ".join(str(c).rjust(w) if j in right else str(c).ljust(w)
                               for j, (c, w) in enumerate(zip(t, widths))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    md = ["| " + " | ".join(head) + " |",
          "|" + "|".join("---:" if j in right else "---" for j in range(len(head))) + "|"]
    md += ["| " + " | ".join(str(c) for c in t) + " |" for t in rows]
    return "\n".join(lines), "\n".join(md)
