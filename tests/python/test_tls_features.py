"""TLS features of issue 11 in Python: PEM from memory, self-signed servers,
certificate callbacks, per-connection TLS information, versions, suites,
ALPN, server name, key log, resumption, SNI certificates, reloading,
STARTTLS -- and interop with the openssl command-line tool."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import unittest
from typing import Any, List, Optional

from _support import LOOPBACK, TIMEOUT, Collector, TestCase, certs, tempdir

import tcpgo

OPENSSL = shutil.which("openssl")


def read(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


def echo_tls(**kw: Any) -> tcpgo.TlsServer:
    kw.setdefault("host", LOOPBACK)
    kw.setdefault("framing", tcpgo.Lines())
    srv = tcpgo.TlsServer(**kw)
    srv.on_message(lambda conn, data: conn.send(data))
    return srv


class PemTest(TestCase):
    def test_mutual_tls_from_memory(self) -> None:
        c = certs()
        established = Collector()
        srv = echo_tls(cert=read(c.server_cert), key=read(c.server_key).encode(),
                       ca=read(c.ca), on_established=established.add)
        with srv:
            port = srv.start(0)
            with tcpgo.TlsClient(ca=read(c.ca).encode(), cert=read(c.client_cert),
                                 key=read(c.client_key), framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("pem", TIMEOUT), b"pem")
                conn = established.wait_count(1)[0]
                self.assertEqual(srv.peer_subject_part(conn, "CN"), "tcpgo client")

    def test_bad_pem_and_mixed_sources(self) -> None:
        c = certs()
        with tcpgo.TlsServer("-----BEGIN CERTIFICATE-----\nnot base64\n", c.server_key,
                             host=LOOPBACK) as srv:
            with self.assertRaises(tcpgo.CertificateError) as cm:
                srv.start(0)
            self.assertEqual(cm.exception.code, tcpgo.StartCode.WRONG_CERT)
            self.assertNotIn("not base64", str(cm.exception))  # PEM is not dumped into messages
        missing = os.path.join(tempdir(), "missing.key")
        with tcpgo.TlsServer(read(c.server_cert), missing, host=LOOPBACK) as srv:
            with self.assertRaises(tcpgo.CertificateError) as cm:
                srv.start(0)
            self.assertEqual(cm.exception.code, tcpgo.StartCode.WRONG_KEY_PATH)
            self.assertIn("missing.key", str(cm.exception))
        with self.assertRaises(TypeError):
            tcpgo.TlsServer(c.server_cert)  # a cert without its key
        with self.assertRaises(TypeError):
            tcpgo.TlsClient(ca=42)  # type: ignore[arg-type]


class SelfSignedTest(TestCase):
    def test_self_signed_server_and_its_certificate(self) -> None:
        with echo_tls() as srv:
            self.assertIsNone(srv.certificate_pem)
            port = srv.start(0)
            pem = srv.certificate_pem
            assert pem is not None
            self.assertTrue(pem.startswith("-----BEGIN CERTIFICATE-----"))
            with tcpgo.TlsClient(ca=pem, framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("ok", TIMEOUT), b"ok")
                info = cl.tls_info()
                assert info is not None
                self.assertEqual(info.peer_cert, pem)
            with tcpgo.TlsClient(ca=certs().ca, framing=tcpgo.Lines()) as cl:
                with self.assertRaises(tcpgo.HandshakeError):
                    cl.connect(LOOPBACK, port)


class CertCallbackTest(TestCase):
    def test_server_judges_client_certificates(self) -> None:
        c = certs()
        seen = Collector()
        errors = Collector()
        established = Collector()

        def judge(info: tcpgo.CertInfo) -> bool:
            seen.add(info)
            return "OU=test" in info.subject and info.ok

        srv = echo_tls(cert=c.server_cert, key=c.server_key, ca=c.ca, on_cert=judge,
                       on_established=established.add, on_error=lambda cid, e: errors.add((cid, e)))
        with srv:
            port = srv.start(0)
            # a client certificate signed by a CA the server does not know: refused
            other = tcpgo.generate_certs(tempdir())
            with tcpgo.TlsClient(ca=c.ca, cert=other.client_cert, key=other.client_key,
                                 framing=tcpgo.Lines()) as cl:
                try:
                    cl.connect(LOOPBACK, port)
                    cl.wait_closed(TIMEOUT)  # TLS 1.3: refused after the client's side
                except tcpgo.StartError:
                    pass
            cid, err = errors.wait_count(1)[0]
            self.assertEqual(cid, 0)
            self.assertEqual(err.code, tcpgo.ErrorCode.HANDSHAKE)
            self.assertEqual(established.snapshot(), [])
            info = seen.snapshot()[0]
            self.assertEqual(info.result, tcpgo.CertResult.UNKNOWN_CA)
            self.assertTrue(info.error)
            # a good one: accepted, and the callback saw it before established
            with tcpgo.TlsClient(ca=c.ca, cert=c.client_cert, key=c.client_key,
                                 framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("in", TIMEOUT), b"in")
            info = seen.snapshot()[-1]
            self.assertTrue(info.ok)
            self.assertIn("CN=tcpgo client", info.subject)
            self.assertTrue(info.pem.startswith("-----BEGIN CERTIFICATE-----"))
            self.assertEqual(info.chain[0], info.pem)
            self.assertGreater(info.client_id, 0)

    def test_server_without_ca_asks_for_certificates(self) -> None:
        """Without a CA the built-in check cannot pass; the callback decides
        (here by pinning the client certificate)."""
        c = certs()
        pinned = read(c.client_cert).split("-----END CERTIFICATE-----")[0]
        seen = Collector()

        def pin(info: tcpgo.CertInfo) -> bool:
            seen.add(info)
            return info.pem.startswith(pinned)

        with echo_tls(cert=c.server_cert, key=c.server_key, on_cert=pin) as srv:
            port = srv.start(0)
            with tcpgo.TlsClient(ca=c.ca, cert=c.client_cert, key=c.client_key,
                                 framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("pinned", TIMEOUT), b"pinned")
            with tcpgo.TlsClient(ca=c.ca, framing=tcpgo.Lines()) as cl:  # no certificate
                try:
                    cl.connect(LOOPBACK, port)
                    cl.wait_closed(TIMEOUT)
                except tcpgo.StartError:
                    pass
            self.assertEqual(seen.wait_count(2)[1].result, tcpgo.CertResult.NO_CERT)

    def test_exception_in_callback_refuses_and_is_logged(self) -> None:
        c = certs()
        errors = Collector()

        def broken(info: tcpgo.CertInfo) -> bool:
            raise RuntimeError("judge failed")

        srv = echo_tls(cert=c.server_cert, key=c.server_key, on_cert=broken,
                       on_error=lambda cid, e: errors.add(e))
        with srv, self.assertLogs("tcpgo", "ERROR") as logs:
            port = srv.start(0)
            with tcpgo.TlsClient(ca=c.ca, cert=c.client_cert, key=c.client_key,
                                 framing=tcpgo.Lines()) as cl:
                try:
                    cl.connect(LOOPBACK, port)
                    cl.wait_closed(TIMEOUT)
                except tcpgo.StartError:
                    pass
            errors.wait_count(1)
        self.assertIn("judge failed", "\n".join(logs.output))
        with self.assertRaises(TypeError):
            srv.on_cert(42)  # type: ignore[arg-type]

    def test_client_pins_a_certificate_the_built_in_check_rejects(self) -> None:
        with echo_tls() as srv:  # self-signed
            port = srv.start(0)
            pinned = srv.certificate_pem
            seen: List[tcpgo.CertInfo] = []

            def pin(info: tcpgo.CertInfo) -> bool:
                seen.append(info)
                return info.pem == pinned

            with tcpgo.TlsClient(ca=certs().ca, on_cert=pin, framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("pinned", TIMEOUT), b"pinned")
            self.assertEqual(seen[0].result, tcpgo.CertResult.UNKNOWN_CA)
            self.assertEqual(seen[0].client_id, 0)
            with tcpgo.TlsClient(ca=pinned, on_cert=lambda info: False,
                                 framing=tcpgo.Lines()) as cl:
                with self.assertRaises(tcpgo.HandshakeError):
                    cl.connect(LOOPBACK, port)


class TlsInfoAndOptionsTest(TestCase):
    def test_info_of_mutual_tls_connection(self) -> None:
        c = certs()
        infos = Collector()
        srv = echo_tls(cert=c.server_cert, key=c.server_key, ca=c.ca, alpn=["x-one", "x-two"],
                       on_established=lambda conn: infos.add(conn.tls_info()))
        with srv:
            port = srv.start(0)
            with tcpgo.TlsClient(ca=c.ca, cert=c.client_cert, key=c.client_key,
                                 alpn="x-two,x-one", server_name="localhost",
                                 framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                cl.request("x", TIMEOUT)
                ci = cl.tls_info()
            si = infos.wait_count(1)[0]
        assert ci is not None and si is not None
        self.assertEqual((si.version, si.version_number), ("TLS 1.3", 0x0304))
        self.assertTrue(si.cipher.startswith("TLS_"))
        self.assertEqual(si.alpn, "x-one")  # the server's preference
        self.assertEqual(ci.alpn, "x-one")
        self.assertEqual(si.server_name, "localhost")
        self.assertFalse(si.upgraded)
        self.assertEqual(si.verify_result, tcpgo.CertResult.OK)
        self.assertIn("CN=tcpgo client", si.peer_subject or "")
        self.assertIn("CN=", si.peer_issuer or "")
        self.assertEqual(si.peer_cert, read(c.client_cert).split("-----END CERTIFICATE-----")[0]
                         + "-----END CERTIFICATE-----\n")
        self.assertEqual(ci.cipher_id, si.cipher_id)

    def test_plain_connection_has_no_tls_info(self) -> None:
        infos = Collector()
        with tcpgo.TcpServer("\n", host=LOOPBACK,
                             on_established=lambda conn: infos.add(conn.tls_info())) as srv:
            port = srv.start(0)
            with tcpgo.TcpClient("\n") as cl:
                cl.connect(LOOPBACK, port)
                self.assertIsNone(infos.wait_count(1)[0])
                self.assertIsNone(cl.tls_info())

    def test_alpn_mismatch_refused(self) -> None:
        with echo_tls(alpn="x-server") as srv:
            port = srv.start(0)
            with tcpgo.TlsClient(ca=srv.certificate_pem, alpn=["x-client"]) as cl:
                with self.assertRaises(tcpgo.HandshakeError):
                    cl.connect(LOOPBACK, port)

    def test_versions_and_cipher_suites(self) -> None:
        suite = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        with echo_tls(min_tls_version="1.2", max_tls_version="1.2",
                      cipher_suites=[suite]) as srv:
            port = srv.start(0)
            with tcpgo.TlsClient(ca=srv.certificate_pem, min_tls_version="1.2",
                                 framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                info = cl.tls_info()
                assert info is not None
                self.assertEqual(info.version, "TLS 1.2")
                self.assertEqual(info.cipher, suite)
            with tcpgo.TlsClient(ca=srv.certificate_pem, framing=tcpgo.Lines()) as cl:
                with self.assertRaises(tcpgo.HandshakeError):  # the client wants 1.3 only
                    cl.connect(LOOPBACK, port)
        with self.assertRaises(ValueError):
            tcpgo.TlsServer(cipher_suites="TLS_NO_SUCH_SUITE")
        with self.assertRaises(ValueError):
            tcpgo.TlsClient(max_tls_version="1.1")

    def test_server_name_differs_from_the_address(self) -> None:
        only_names = tcpgo.generate_certs(tempdir(), hosts="db.example")
        with echo_tls(cert=only_names.server_cert, key=only_names.server_key) as srv:
            port = srv.start(0)
            with tcpgo.TlsClient(ca=only_names.ca, framing=tcpgo.Lines()) as cl:
                with self.assertRaises(tcpgo.HandshakeError):  # no IP SAN for 127.0.0.1
                    cl.connect(LOOPBACK, port)
            with tcpgo.TlsClient(ca=only_names.ca, server_name="db.example",
                                 framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("named", TIMEOUT), b"named")

    def test_system_cas_with_a_given_ca(self) -> None:
        with echo_tls() as srv:
            port = srv.start(0)
            with tcpgo.TlsClient(ca=srv.certificate_pem, system_cas=True,
                                 framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("sys", TIMEOUT), b"sys")

    def test_key_log_file(self) -> None:
        path = os.path.join(tempdir(), "keys.log")
        with echo_tls() as srv:
            port = srv.start(0)
            with tcpgo.TlsClient(ca=srv.certificate_pem, key_log_file=path,
                                 framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                cl.request("k", TIMEOUT)
        text = read(path)
        self.assertRegex(text, r"(?m)^CLIENT_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]+ [0-9a-f]+$")

    def test_resumption(self) -> None:
        def resumed(**kw: Any) -> List[bool]:
            out = []
            with echo_tls() as srv:
                port = srv.start(0)
                with tcpgo.TlsClient(ca=srv.certificate_pem, framing=tcpgo.Lines(), **kw) as cl:
                    for _ in range(2):
                        cl.connect(LOOPBACK, port)
                        cl.request("r", TIMEOUT)  # the ticket arrives after the handshake
                        info = cl.tls_info()
                        assert info is not None
                        out.append(info.resumed)
                        cl.stop()
            return out

        self.assertEqual(resumed(), [False, True])
        self.assertEqual(resumed(resumption=False), [False, False])


class SniAndReloadTest(TestCase):
    def test_add_cert_serves_another_name(self) -> None:
        other = tcpgo.generate_certs(tempdir(), hosts="other.test")
        names = Collector()
        with echo_tls(on_established=lambda conn: names.add(conn.tls_info().server_name)) as srv:
            srv.add_cert("other.test", read(other.server_cert), read(other.server_key))
            port = srv.start(0)
            with tcpgo.TlsClient(ca=other.ca, server_name="other.test",
                                 framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("sni", TIMEOUT), b"sni")
            with tcpgo.TlsClient(ca=srv.certificate_pem, server_name="localhost",
                                 framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)  # every other name: the default certificate
            self.assertEqual(names.wait_count(2), ["other.test", "localhost"])
            with self.assertRaises(tcpgo.CertificateError):
                srv.add_cert("x.test", other.server_cert, other.client_key)  # not a pair
            with self.assertRaises(ValueError):
                srv.add_cert("", other.server_cert, other.server_key)

    def test_reload_without_restart(self) -> None:
        with echo_tls() as srv:
            with self.assertRaises(tcpgo.NotRunningError):
                srv.reload_cert()
            port = srv.start(0)
            old = srv.certificate_pem
            with tcpgo.TlsClient(ca=old, framing=tcpgo.Lines()) as kept:
                kept.connect(LOOPBACK, port)
                c = certs()
                srv.reload_cert(c.server_cert, c.server_key)
                self.assertNotEqual(srv.certificate_pem, old)
                with tcpgo.TlsClient(ca=old, framing=tcpgo.Lines()) as cl:
                    with self.assertRaises(tcpgo.HandshakeError):
                        cl.connect(LOOPBACK, port)
                with tcpgo.TlsClient(ca=c.ca, framing=tcpgo.Lines()) as cl:
                    cl.connect(LOOPBACK, port)
                    self.assertEqual(cl.request("new", TIMEOUT), b"new")
                self.assertEqual(kept.request("old", TIMEOUT), b"old")  # keeps its session
                with self.assertRaises(tcpgo.CertificateError):
                    srv.reload_cert(c.server_cert, c.client_key)
                srv.reload_cert()  # a new self-signed one
                self.assertNotIn(srv.certificate_pem, (old, read(c.server_cert)))


class StartTlsTest(TestCase):
    def test_tcpgo_both_sides(self) -> None:
        infos = Collector()
        srv = tcpgo.TcpServer(framing=tcpgo.Lines(), host=LOOPBACK,
                              on_established=lambda conn: infos.add(conn.tls_info()))
        srv.set_starttls()

        @srv.on_message
        def dialogue(conn: tcpgo.Connection, data: bytes) -> None:
            if data == b"STARTTLS":
                conn.starttls("220 go ahead")
            else:
                conn.send(b"echo " + data)

        with srv:
            port = srv.start(0)
            with tcpgo.TcpClient(framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("plain", TIMEOUT), b"echo plain")
                self.assertIsNone(cl.tls_info())
                self.assertEqual(cl.request("STARTTLS", TIMEOUT), b"220 go ahead")
                cl.starttls(ca=srv.certificate_pem)
                self.assertEqual(cl.request("secret", TIMEOUT), b"echo secret")
                info = cl.tls_info()
                assert info is not None
                self.assertTrue(info.upgraded)
                with self.assertRaises(ValueError):
                    cl.starttls(ca=srv.certificate_pem)  # already TLS
            first, second = infos.wait_count(2)
            self.assertIsNone(first)
            self.assertTrue(second.upgraded)

    def test_without_material_refused(self) -> None:
        errors = Collector()
        srv = tcpgo.TcpServer(framing=tcpgo.Lines(), host=LOOPBACK)

        @srv.on_message
        def up(conn: tcpgo.Connection, data: bytes) -> None:
            try:
                conn.starttls()
            except ValueError as e:
                errors.add(e)

        with srv:
            port = srv.start(0)
            with tcpgo.TcpClient(framing=tcpgo.Lines()) as cl:
                cl.connect(LOOPBACK, port)
                cl.send("x")
                self.assertEqual(len(errors.wait_count(1)), 1)


class LibraryLogTest(TestCase):
    def test_library_lines_reach_the_tcpgo_logger(self) -> None:
        """tcp_set_log goes to logging: a reconnecting client's attempts are
        logged by the library at DEBUG, without a "tcpgo:" prefix."""
        attempts = Collector()
        with tcpgo.TcpServer("\n", host=LOOPBACK) as srv:
            port = srv.start(0)
            with self.assertLogs("tcpgo", "DEBUG") as logs:
                with tcpgo.TcpClient("\n", reconnect=True, reconnect_min=0.01,
                                     reconnect_max=0.02, on_connect=lambda a, r: attempts.add(r)
                                     ) as cl:
                    cl.connect(LOOPBACK, port)
                    srv.stop()
                    attempts.wait_count(2)
        lines = [r.getMessage() for r in logs.records]
        self.assertTrue(any("reconnect attempt" in m for m in lines), lines)
        self.assertFalse([m for m in lines if m.startswith("tcpgo:")])


@unittest.skipUnless(OPENSSL, "the openssl command-line tool is not installed")
class OpenSSLInteropTest(TestCase):
    def s_client(self, port: int, stdin: str, *args: str) -> str:
        p = subprocess.run([OPENSSL or "openssl", "s_client", "-connect", f"{LOOPBACK}:{port}",
                            "-ign_eof", *args], input=stdin, capture_output=True, text=True,
                           timeout=20)
        return p.stdout + p.stderr

    def test_alpn_with_s_client(self) -> None:
        c = certs()
        infos = Collector()

        srv = tcpgo.TlsServer(c.server_cert, c.server_key, framing=tcpgo.Lines(), host=LOOPBACK,
                              alpn=["h2", "http/1.1"],
                              on_established=lambda conn: infos.add(conn.tls_info()))

        @srv.on_message
        def bye(conn: tcpgo.Connection, data: bytes) -> None:
            conn.send(b"got " + data)
            conn.close()

        with srv:
            port = srv.start(0)
            out = self.s_client(port, "hi\n", "-alpn", "http/1.1", "-CAfile", c.ca,
                                "-verify_return_error")
            self.assertIn("ALPN protocol: http/1.1", out)
            self.assertIn("got hi", out)
            self.assertEqual(infos.wait_count(1)[0].alpn, "http/1.1")

    def test_alpn_with_s_server(self) -> None:
        c = certs()
        proc = subprocess.Popen([OPENSSL or "openssl", "s_server", "-accept", f"{LOOPBACK}:0",
                                 "-cert", c.server_cert, "-key", c.server_key, "-alpn",
                                 "x-b,x-a", "-naccept", "1"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert proc.stdout is not None
            port = 0
            timer = threading.Timer(TIMEOUT, proc.kill)
            timer.start()
            try:
                for line in proc.stdout:
                    m = re.search(r"ACCEPT .*:(\d+)", line)
                    if m:
                        port = int(m.group(1))
                        break
            finally:
                timer.cancel()
            self.assertTrue(port, "s_server printed no port")
            with tcpgo.TlsClient(ca=c.ca, alpn=["x-a", "x-c"], min_tls_version="1.2") as cl:
                cl.connect(LOOPBACK, port)
                info = cl.tls_info()
                assert info is not None
                self.assertEqual(info.alpn, "x-a")
        finally:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)

    def start_s_server(self, *args: str) -> "tuple[subprocess.Popen[str], int]":
        proc = subprocess.Popen([OPENSSL or "openssl", "s_server", "-accept", f"{LOOPBACK}:0",
                                 *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: (proc.kill(), proc.communicate(timeout=TIMEOUT)))
        assert proc.stdout is not None
        timer = threading.Timer(TIMEOUT, proc.kill)
        timer.start()
        try:
            for line in proc.stdout:
                m = re.search(r"ACCEPT .*:(\d+)", line)
                if m:
                    return proc, int(m.group(1))
        finally:
            timer.cancel()
        self.fail("s_server printed no port")

    def test_sni_with_s_client(self) -> None:
        other = tcpgo.generate_certs(tempdir(), hosts="other.test")
        names = Collector()
        srv = echo_tls(on_established=lambda conn: (names.add(conn.tls_info().server_name),
                                                    conn.close()))  # s_client then exits
        srv.add_cert("other.test", other.server_cert, other.server_key)
        with srv:
            port = srv.start(0)
            out = self.s_client(port, "", "-servername", "other.test", "-CAfile", other.ca,
                                "-verify_return_error", "-verify_hostname", "other.test")
            self.assertIn("Verification: OK", out)
            self.assertEqual(names.wait_count(1), ["other.test"])

    def test_resumption_against_s_server(self) -> None:
        c = certs()
        _proc, port = self.start_s_server("-cert", c.server_cert, "-key", c.server_key,
                                          "-naccept", "2", "-rev")
        with tcpgo.TlsClient(ca=c.ca, server_name="localhost") as cl:
            resumed = []
            for _ in range(2):
                cl.connect(LOOPBACK, port)
                # -rev answers each line reversed; the answer comes after the session
                # ticket, so the client has its ticket once it has the answer
                cl.send(b"ping\n")
                self.assertTrue(cl.recv(TIMEOUT))
                info = cl.tls_info()
                assert info is not None
                resumed.append(info.resumed)
                cl.stop()
        self.assertEqual(resumed, [False, True])

    def test_starttls_with_s_client_smtp(self) -> None:
        """openssl s_client -starttls smtp: greeting, EHLO, STARTTLS, then TLS."""
        c = certs()
        lines = Collector()
        established = Collector()
        srv = tcpgo.TcpServer(framing=tcpgo.Lines(), host=LOOPBACK,
                              on_established=lambda conn: (
                                  established.add(conn.tls_info()),
                                  None if conn.data else conn.send("220 tcpgo ESMTP")))
        srv.set_starttls(c.server_cert, c.server_key)

        @srv.on_message
        def smtp(conn: tcpgo.Connection, data: bytes) -> None:
            conn.data = True
            line = data.decode()
            lines.add(line)
            if line.startswith("EHLO "):
                conn.send("250-tcpgo greets " + line[5:])
                conn.send("250 STARTTLS")
            elif line == "STARTTLS":
                conn.starttls("220 2.0.0 Ready to start TLS")
            else:
                conn.send("echo " + line)
                conn.close()

        with srv:
            port = srv.start(0)
            out = self.s_client(port, "ping\n", "-starttls", "smtp", "-CAfile", c.ca,
                                "-verify_return_error", "-verify_hostname", "localhost")
            self.assertIn("Verification: OK", out)
            self.assertIn("echo ping", out)
            got = lines.wait_count(3)
            self.assertTrue(got[0].startswith("EHLO "))
            self.assertEqual(got[1:], ["STARTTLS", "ping"])
            first, second = established.wait_count(2)
            self.assertIsNone(first)
            self.assertTrue(second.upgraded)


if __name__ == "__main__":
    unittest.main()
