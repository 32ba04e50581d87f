"""tcpgo behind real load balancers (issue 12), run by `make test-deploy`.

Real HAProxy (TCP mode, PROXY v2) and nginx (stream, PROXY v1) in front of
two tcpgo backend processes (tests/deploy/backend.c), driven by the tcpgo
load client (tests/deploy/client.c), all on loopback with free ports, from
the configuration templates of examples/deploy/. Each scenario checks:

- the backends see the true client address (127.0.0.2, and the client's own
  port) and, with TLS, the client certificate's CN;
- a client address on the backends' blocked list (127.0.0.3) is refused
  behind the proxy;
- traffic is spread over both backends;
- one backend killed mid-run: the balancer takes it out (HAProxy: health
  checks with check-send-proxy; nginx: passive, next upstream), the
  reconnecting clients carry on, and no acknowledged message is lost
  (clients resend what was not acknowledged and every client's messages
  1..n are acknowledged in order).

Plus: a tcpgo client sending its own PROXY header (v1, v2) through HAProxy's
accept-proxy, and the SO_REUSEPORT rolling restart of examples/deploy/worker.c.

Binaries come from $DEPLOY_BIN (backend, client, worker). Skips, with the
reason, only when haproxy / nginx / its stream module are not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import lb  # noqa: E402
import rolling  # noqa: E402

BIN = Path(os.environ.get("DEPLOY_BIN", lb.ROOT / "build" / "deploy"))
BACKEND, CLIENT, WORKER = (str(BIN / n) for n in ("backend", "client", "worker"))
CLIENT_IP, BLOCKED_IP = "127.0.0.2", "127.0.0.3"
ERR_IO, ERR_HANDSHAKE, ERR_REFUSED, ERR_PROXY = "-8", "-9", "-17", "-18"

MISSING = lb.missing_tools()


def make_pki(d: str) -> str:
    """tcp_generate_certs' PKI, a client certificate with CN "alice" signed
    by the same CA (openssl CLI), and haproxy.pem (cert + key in one file)."""
    os.makedirs(d, exist_ok=True)
    subprocess.run([BACKEND, "--gencerts", d], check=True)
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "alice.key", "-subj", "/CN=alice/O=tcpgo", "-out", "alice.csr")
    Path(d, "alice.ext").write_text("keyUsage=critical,digitalSignature\n"
                                    "extendedKeyUsage=clientAuth\n")
    run("openssl", "x509", "-req", "-in", "alice.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "alice.ext", "-out", "alice.pem")
    Path(d, "haproxy.pem").write_text(Path(d, "server.pem").read_text() +
                                      Path(d, "server.key").read_text())
    return d


def can_unshare_net() -> bool:
    if not shutil.which("unshare"):
        return False
    try:
        return subprocess.run(["unshare", "--net", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@unittest.skipIf(MISSING, "load-balancer tests skipped: missing " + ", ".join(MISSING) +
                 " (.ci/run installs them)")
class Deploy(unittest.TestCase):
    tmp: str
    pki: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp(prefix="tcpgo-deploy-")
        cls.pki = make_pki(os.path.join(cls.tmp, "pki"))

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self) -> None:
        self.procs = lb.Procs()
        self.addCleanup(self.procs.close)
        self.run_dir = tempfile.mkdtemp(prefix="run-", dir=self.tmp)
        self.t0 = time.monotonic()

    def tearDown(self) -> None:
        print(f"\n  {self.id().split('.')[-1]}: {time.monotonic() - self.t0:.1f} s", end=" ",
              file=sys.stderr)

    # --- pieces ---------------------------------------------------------

    def balancer_log(self) -> str:
        out = []
        for p in self.procs.procs:
            if isinstance(p, lb.Nginx):
                out.append("nginx error.log:\n" + p.log()[-3000:])
            elif isinstance(p, lb.HAProxy):
                out.append("haproxy output:\n" + p.output(30))
        return "\n".join(out)

    def backends(self, *extra: str) -> "list[lb.Backend]":
        args = ["--proxy", "required", "--trusted", "127.0.0.1", "--blocked", BLOCKED_IP, *extra]
        return [self.procs.add(lb.Backend(BACKEND, name, args)) for name in ("b1", "b2")]

    def haproxy(self, template: str, bs: "list[lb.Backend]") -> lb.HAProxy:
        port = lb.free_port()
        values = dict(LB_ADDR=f"127.0.0.1:{port}", BACKEND1=bs[0].address,
                      BACKEND2=bs[1].address, CERT_DIR=self.pki)
        h = self.procs.add(lb.HAProxy(self.run_dir, template, values, port))
        for s in ("s1", "s2"):
            h.wait_status(s, "UP")
        return h

    def nginx(self, bs: "list[lb.Backend]") -> lb.Nginx:
        port = lb.free_port()
        values = dict(LB_ADDR=f"127.0.0.1:{port}", BACKEND1=bs[0].address,
                      BACKEND2=bs[1].address)
        return self.procs.add(lb.Nginx(self.run_dir, values, port))

    def load(self, port: int, *args: str, name: str = "client") -> lb.Load:
        return self.procs.add(lb.Load(CLIENT, port, list(args), name=name))

    def tls_args(self, cert: str = "client") -> "list[str]":
        return ["--tls", self.pki, "--cert", cert]

    # --- the scenario every balancer and TLS set-up goes through ----------

    def scenario(self, port: int, client_args: "list[str]", bs: "list[lb.Backend]",
                 expect_cn: str, haproxy: "lb.HAProxy | None" = None) -> None:
        # Two loads from 127.0.0.2: 4 long-lived connections, spread 2/2 by
        # round robin (so the kill surely cuts some), and 8 clients that
        # reconnect every 50 replies (connections come and go throughout).
        steady = self.load(port, "--src", CLIENT_IP, "--clients", "4", "--window", "4",
                           *client_args, name="steady")
        steady.wait_progress(1)
        churn = self.load(port, "--src", CLIENT_IP, "--clients", "8", "--window", "4",
                          "--reconnect-every", "50", *client_args, name="churn")
        churn.wait_progress(1500)

        # A blocked address is refused behind the proxy, by whichever backend.
        refused = self.load(port, "--src", BLOCKED_IP, "--clients", "2", "--expect-refused",
                            *client_args, name="blocked").finish()
        self.assertEqual((refused["refused"], refused["unexpected_reply"]), (2, 0), refused)
        before = [b.stats() for b in bs]
        self.assertGreaterEqual(sum(s["lib"]["refused"] for s in before), 2, before)
        self.assertTrue(any(BLOCKED_IP in s["last_error"].get(ERR_REFUSED, "") for s in before),
                        before)
        # Spread: both backends served messages.
        self.assertTrue(all(s["messages"] > 0 for s in before), before)

        # Kill b2 mid-run: the balancer takes it out, the clients carry on.
        bs[1].kill_group()
        if haproxy is not None:
            haproxy.wait_status("s2", "DOWN", timeout=5)
        for load in (steady, churn):
            load.wait_progress(load.fresh_progress() + 1000)
        self.assertGreaterEqual(bs[0].stats()["messages"], before[0]["messages"] + 2000)

        results = {load.name: load.finish() for load in (steady, churn)}
        for name, r in results.items():
            acked = r["acked"]
            # Nothing lost: every message sent was acknowledged, in order.
            self.assertEqual((r["gave_up"], r["unacked_at_end"]), (0, 0), r)
            self.assertEqual((r["wrong_reply"], r["wrong_port"], r["timeouts"]), (0, 0, 0), r)
            self.assertGreater(r["min_acked"], 0, r)
            self.assertEqual(r["ips"], {CLIENT_IP: acked}, r)
            self.assertEqual(r["cns"], {expect_cn: acked}, r)
            self.assertEqual(set(r["backends"]), {"b1", "b2"}, r)
        self.assertGreater(results["steady"]["lost"], 0,
                           f"the kill should have cut connections: {results['steady']}\n"
                           f"{self.balancer_log()}")
        final = bs[0].stop()
        # Health checks (a PROXY v2 LOCAL header, then a reset) are never
        # taken for malformed PROXY headers.
        self.assertNotIn(ERR_PROXY, final["errors"], final)
        for name, r in results.items():
            sys.stderr.write(f"\n    {name}: acked {r['acked']}, connections {r['connections']}, "
                             f"lost {r['lost']} ({r['resends']} resent), connect failures "
                             f"{r['connect_failures']}")
        sys.stderr.write(f"\n    b1: established {final['established']}, errors "
                         f"{final['errors']}, closed {final['closed']}")

    # --- the balancers ----------------------------------------------------

    def test_haproxy_plain(self) -> None:
        bs = self.backends()
        h = self.haproxy("haproxy.cfg", bs)
        self.scenario(h.port, [], bs, "-", haproxy=h)

    def test_nginx_plain(self) -> None:
        bs = self.backends()
        n = self.nginx(bs)
        self.scenario(n.port, [], bs, "-")

    def test_haproxy_tls_passthrough(self) -> None:
        """tcpgo terminates mutual TLS; HAProxy passes the bytes through."""
        bs = self.backends("--tls", self.pki)
        h = self.haproxy("haproxy.cfg", bs)
        self.scenario(h.port, self.tls_args(), bs, "tcpgo_client", haproxy=h)

    def test_haproxy_tls_terminated(self) -> None:
        """HAProxy terminates mutual TLS; the CN reaches get_subj_part in the
        PROXY v2 SSL TLVs (send-proxy-v2-ssl-cn)."""
        bs = self.backends()
        h = self.haproxy("haproxy-tls.cfg", bs)
        self.scenario(h.port, self.tls_args("alice"), bs, "alice", haproxy=h)

    def test_client_proxy_header_through_haproxy(self) -> None:
        """tcp_client_set_proxy_header, v1 and v2, parsed by HAProxy's
        accept-proxy: the backends see the address the client announced."""
        bs = self.backends()
        h = self.haproxy(str(HERE / "haproxy-chain.cfg"), bs)
        for version, src in (("1", "203.0.113.7:4001"), ("2", "198.51.100.9:4002")):
            r = self.load(h.port, "--src", CLIENT_IP, "--clients", "2", "--messages", "20",
                          "--proxy-header", version, src, f"127.0.0.1:{h.port}").finish()
            self.assertEqual(r["ips"], {src.split(":")[0]: 40}, r)
            self.assertEqual((r["gave_up"], r["lost"], r["wrong_reply"]), (0, 0, 0), r)


class RollingRestart(unittest.TestCase):
    """SO_REUSEPORT workers (examples/deploy/worker.c) replaced one by one
    under a load that runs throughout."""

    def setUp(self) -> None:
        self.procs = lb.Procs()
        self.addCleanup(self.procs.close)
        self.t0 = time.monotonic()

    def tearDown(self) -> None:
        print(f"\n  {self.id().split('.')[-1]}: {time.monotonic() - self.t0:.1f} s", end=" ",
              file=sys.stderr)

    def check(self, r: dict, restarts: int, clients: int) -> None:
        for w in r["workers"]:
            self.assertEqual(w["exit"], 0, r["workers"])
            self.assertIn("0 clients left, shutdown clean", w["drained"], r["workers"])
        # No established connection saw an error, none was refused, and
        # every client's messages 1..n were acknowledged (nothing resent).
        self.assertEqual({k: r[k] for k in ("lost", "timeouts", "connect_failures", "resends",
                                            "wrong_reply", "gave_up", "unacked_at_end")},
                         dict(lost=0, timeouts=0, connect_failures=0, resends=0, wrong_reply=0,
                              gave_up=0, unacked_at_end=0), r)
        self.assertGreater(r["min_acked"], 0, r)
        self.assertGreaterEqual(r["byes"], clients * restarts, r)  # every client moved
        self.assertEqual(set(r["backends"]), {f"w{i}" for i in range(restarts + 1)}, r)

    def test_rolling_restart(self) -> None:
        """Long-lived connections: each moves when its worker says BYE."""
        r = rolling.rolling_restart(self.procs, WORKER, CLIENT, restarts=3, clients=8)
        self.check(r, 3, 8)

    @unittest.skipUnless(can_unshare_net(), "needs unshare(1) and the right to make a network "
                         "namespace (root)")
    def test_rolling_restart_connection_churn_tcp_migrate_req(self) -> None:
        """New connections every reply, throughout the restarts. Closing a
        listener resets the connections still in its accept queue, unless
        net.ipv4.tcp_migrate_req = 1 hands them to another listener of the
        port: set here in a private network namespace (the host is untouched)."""
        cmd = ["unshare", "--net", sys.executable, str(HERE / "rolling.py"), "--migrate-req",
               "--worker", WORKER, "--client", CLIENT, "--clients", "16", "--churn", "1"]
        proc = self.procs.add(lb.Proc("rolling-netns", cmd, stdin=False))
        r = json.loads(proc.expect("ROLLING ", timeout=30))
        self.assertEqual(proc.wait(), 0, proc.output())
        self.check(r, 3, 0)
        self.assertGreater(r["connections"], 1000, r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
