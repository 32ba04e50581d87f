"""A Python tcpgo server behind a real HAProxy (issue 12): the PROXY protocol
gives it the true client address, its blocked list applies to that address,
and with TLS terminated at HAProxy the client certificate's CN arrives in
the PROXY v2 SSL TLVs (TcpServer.proxy_cn, TcpServer.proxy_tlv).

HAProxy runs from examples/deploy/ (haproxy.cfg, haproxy-tls.cfg) on a free
loopback port, started and killed by the tests (tests/deploy/lb.py). Skipped
when haproxy is not installed (Debian package haproxy; .ci/run installs it).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import sys
import tempfile
import threading
from pathlib import Path
from typing import List, Optional, Tuple

from _support import LOOPBACK, TIMEOUT, ROOT, TestCase, certs, tcpgo

sys.path.insert(0, str(ROOT / "tests" / "deploy"))
import lb  # noqa: E402

import unittest  # noqa: E402

CLIENT_IP, BLOCKED_IP = "127.0.0.2", "127.0.0.3"
PP2_TYPE_SSL = 0x20
PP2_CLIENT_SSL, PP2_CLIENT_CERT_CONN = 0x01, 0x02


def exchange(port: int, source_ip: str, line: bytes,
             wrap: Optional[ssl.SSLContext] = None) -> Tuple[Tuple[str, int], bytes]:
    """Connects from source_ip (through the proxy), sends one line, returns
    (its own address, the reply line; b"" when the connection was closed)."""
    raw = socket.create_connection((LOOPBACK, port), timeout=TIMEOUT,
                                   source_address=(source_ip, 0))
    me = raw.getsockname()
    sock = wrap.wrap_socket(raw, server_hostname=LOOPBACK) if wrap else raw
    with sock:
        try:
            sock.sendall(line)
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except (ConnectionResetError, ssl.SSLError):
            reply = b""
    return me, reply


@unittest.skipUnless(lb.tool("haproxy"), "haproxy is not installed (Debian package haproxy)")
class BehindHAProxy(TestCase):
    def setUp(self) -> None:
        self.procs = lb.Procs()
        self.addCleanup(self.procs.close)
        self.run_dir = tempfile.mkdtemp(prefix="tcpgo-pyproxy-")
        self.addCleanup(shutil.rmtree, self.run_dir, True)
        self.seen: List[tuple] = []
        self.lock = threading.Lock()

    def server(self) -> tcpgo.TcpServer:
        srv = tcpgo.TcpServer("\n", host=LOOPBACK, proxy_protocol="required",
                              proxy_trusted=["127.0.0.1"], blocked=[BLOCKED_IP])

        @srv.on_message
        def answer(cid: int, data: bytes) -> None:
            ip, port = srv.client_address(cid)
            cn = srv.proxy_cn(cid)
            ssl_tlv = srv.proxy_tlv(cid, PP2_TYPE_SSL)
            with self.lock:
                self.seen.append((ip, port, cn, ssl_tlv, srv.connection(cid).address))
            srv.send(cid, f"{ip} {port} {cn or '-'} ".encode() + data)

        srv.start(0)
        self.addCleanup(srv.stop)
        return srv

    def haproxy(self, template: str, srv: tcpgo.TcpServer, **values: str) -> lb.HAProxy:
        port = lb.free_port()
        backend = f"{LOOPBACK}:{srv.port}"
        return self.procs.add(lb.HAProxy(self.run_dir, template, dict(
            LB_ADDR=f"{LOOPBACK}:{port}", BACKEND1=backend, BACKEND2=backend, **values), port))

    def test_true_client_address_and_blocked_list(self) -> None:
        srv = self.server()
        h = self.haproxy("haproxy.cfg", srv)
        me, reply = exchange(h.port, CLIENT_IP, b"hello\n")
        self.assertEqual(reply, f"{CLIENT_IP} {me[1]} - hello\n".encode())
        self.assertEqual(self.seen[-1][4], me)  # the Connection object's address too
        self.assertEqual(self.seen[-1][3], None)  # no SSL TLV without TLS

        _, reply = exchange(h.port, BLOCKED_IP, b"let me in\n")
        self.assertEqual(reply, b"")
        self.assertNotIn(BLOCKED_IP, [s[0] for s in self.seen])
        self.assertGreaterEqual(srv.stats().refused, 1)

    def test_cn_from_tls_terminated_at_haproxy(self) -> None:
        c = certs()
        # HAProxy's crt: the certificate and its key in one file.
        Path(self.run_dir, "haproxy.pem").write_text(
            Path(c.server_cert).read_text() + Path(c.server_key).read_text())
        shutil.copy(c.ca, f"{self.run_dir}/ca.pem")
        srv = self.server()
        h = self.haproxy("haproxy-tls.cfg", srv, CERT_DIR=self.run_dir)
        ctx = ssl.create_default_context(cafile=str(c.ca))
        ctx.load_cert_chain(str(c.client_cert), str(c.client_key))
        me, reply = exchange(h.port, CLIENT_IP, b"secret\n", wrap=ctx)
        self.assertEqual(reply, f"{CLIENT_IP} {me[1]} tcpgo client secret\n".encode())
        ssl_tlv = self.seen[-1][3]
        self.assertIsNotNone(ssl_tlv)
        # PP2_TYPE_SSL: client flags, then verify (0 = the certificate verified).
        self.assertEqual(ssl_tlv[0] & (PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN),
                         PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN)
        self.assertEqual(ssl_tlv[1:5], b"\0\0\0\0")


if __name__ == "__main__":
    unittest.main()
