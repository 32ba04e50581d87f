"""SO_REUSEPORT rolling restart of examples/deploy/worker.c under load.

A worker listens on a port (TCP_OPT_REUSEPORT); the load client runs
throughout. Each restart starts a new worker on the same port, then sends
the old one SIGTERM: it stops listening, says BYE to its clients, serves
them until they left, shuts down and exits. The clients finish what they
sent and reconnect -- to the new worker.

Used by tests/deploy/test_deploy.py. Run as a script (see main) it does
the same inside a private network namespace with net.ipv4.tcp_migrate_req
= 1, which only root can make: `unshare --net python3 rolling.py ...`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lb  # noqa: E402


def rolling_restart(procs: lb.Procs, worker: str, client: str, restarts: int = 3,
                    clients: int = 8, churn: int = 0, per_phase: int = 1000) -> dict:
    """Runs the restarts; returns the load's RESULT plus "workers": each old
    worker's DRAINED line and exit status."""
    first = procs.add(lb.Proc("w0", [worker, "--name", "w0"]))
    port = int(first.expect("PORT "))
    args = ["--src", "127.0.0.2", "--clients", str(clients), "--window", "4"]
    if churn:
        args += ["--reconnect-every", str(churn)]
    load = procs.add(lb.Load(client, port, args))
    load.wait_progress(per_phase)
    old, drained = first, []  # type: lb.Proc, List[dict]
    for i in range(1, restarts + 1):
        new = procs.add(lb.Proc(f"w{i}", [worker, "--name", f"w{i}", "--port", str(port)]))
        new.expect("PORT ")
        old.signal(signal.SIGTERM)
        line = old.expect("DRAINED")
        drained.append({"worker": old.name, "drained": line, "exit": old.wait()})
        load.wait_progress(load.fresh_progress() + per_phase)
        old = new
    result = load.finish()
    result["workers"] = drained
    return result


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def _lo_flags(s: socket.socket) -> int:
    return struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0)))[1]


def loopback_up() -> None:
    """ip link set lo up, without iproute2. Refuses when lo is up already:
    then this is not a fresh network namespace, and the host's settings
    are not ours to change."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = _lo_flags(s)
        if flags & IFF_UP:
            sys.exit("rolling.py --migrate-req: lo is up, so this is not a fresh network "
                     "namespace (run it under unshare --net)")
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--worker", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--churn", type=int, default=0)
    ap.add_argument("--migrate-req", action="store_true",
                    help="in a private network namespace: bring lo up and set "
                         "net.ipv4.tcp_migrate_req = 1 first")
    a = ap.parse_args()
    if a.migrate_req:
        loopback_up()
        Path("/proc/sys/net/ipv4/tcp_migrate_req").write_text("1\n")
    procs = lb.Procs()
    try:
        result = rolling_restart(procs, a.worker, a.client, a.restarts, a.clients, a.churn)
    finally:
        procs.close()
    print("ROLLING " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
