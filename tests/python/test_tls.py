"""TLS: mutual TLS in both modes, subjects, verification, certificate errors."""

from __future__ import annotations

import os
import unittest

from _support import (LOOPBACK, TIMEOUT, Collector, TestCase, certs, tempdir, tls_client,
                      tls_echo_server)

import tcpgo


class MutualTlsTest(TestCase):
    def test_fragmented_echo(self) -> None:
        with tls_echo_server("\n") as srv:
            port = srv.start(0)
            with tls_client("\n") as c:
                c.connect(LOOPBACK, port)
                for i in range(200):
                    c.send(f"secure {i}")
                self.assertEqual([c.recv(TIMEOUT) for _ in range(200)],
                                 [f"secure {i}".encode() for i in range(200)])

    def test_continuous_echo(self) -> None:
        with tls_echo_server(None) as srv:
            port = srv.start(0)
            with tls_client(None) as c:
                c.connect("localhost", port)  # the certificate holds localhost too
                data = os.urandom(100_000)
                c.send(data)
                got = b""
                while len(got) < len(data):
                    got += c.recv(TIMEOUT)
                self.assertEqual(got, data)

    def test_peer_subject_by_name_and_nid(self) -> None:
        seen = Collector()
        srv = tls_echo_server("\n")

        @srv.on_established
        def est(cid: int) -> None:
            seen.add({
                "all": srv.peer_subject(cid),
                "CN": srv.peer_subject_part(cid, "CN"),
                "commonName": srv.peer_subject_part(cid, "commonName"),
                "nid13": srv.peer_subject_part(cid, 13),
                "enum": srv.peer_subject_part(cid, tcpgo.Nid.ORGANIZATION_NAME),
                "OU": srv.get_subj_part(cid, tcpgo.Nid.ORGANIZATIONAL_UNIT_NAME),
                "C": srv.peer_subject_part(cid, "C"),  # absent
            })

        with srv:
            port = srv.start(0)
            with tls_client("\n") as c:
                c.connect(LOOPBACK, port)
                info = seen.wait_count(1)[0]
                self.assertEqual(c.server_subject_part("CN"), "tcpgo server")
                self.assertEqual(c.server_subject_part(tcpgo.Nid.ORGANIZATION_NAME), "tcpgo")
                self.assertEqual(c.server_subject()["CN"], "tcpgo server")
                self.assertIsNone(c.server_subject_part("emailAddress"))
        self.assertEqual(info["all"], {"CN": "tcpgo client", "O": "tcpgo", "OU": "test"})
        self.assertEqual(info["CN"], "tcpgo client")
        self.assertEqual(info["commonName"], "tcpgo client")
        self.assertEqual(info["nid13"], "tcpgo client")
        self.assertEqual(info["enum"], "tcpgo")
        self.assertEqual(info["OU"], "test")
        self.assertIsNone(info["C"])
        with self.assertRaises(ValueError):
            srv.peer_subject_part(1, "no such field")

    def test_plain_tcp_has_no_subject_and_unknown_client(self) -> None:
        with tls_echo_server("\n") as srv:
            srv.start(0)
            with self.assertRaises(tcpgo.NoClientError):
                srv.peer_subject_part(12345, "CN")

    def test_server_without_client_certificates(self) -> None:
        c = certs()
        with tls_echo_server("\n", ca=None) as srv:
            port = srv.start(0)
            with tcpgo.TlsClient(c.ca, delimiter="\n") as cl:  # no client certificate
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("anon", TIMEOUT), b"anon")

    def test_optional_client_certificate(self) -> None:
        c = certs()
        seen = Collector()
        srv = tls_echo_server("\n", require_client_cert=False)
        srv.on_established(lambda cid: seen.add(srv.peer_subject(cid)))
        with srv:
            port = srv.start(0)
            with tcpgo.TlsClient(c.ca, delimiter="\n") as anon:
                anon.connect(LOOPBACK, port)
                self.assertEqual(anon.request("a", TIMEOUT), b"a")
            with tls_client("\n") as named:
                named.connect(LOOPBACK, port)
                self.assertEqual(named.request("b", TIMEOUT), b"b")
        self.assertEqual(seen.wait_count(2), [{}, {"CN": "tcpgo client", "O": "tcpgo", "OU": "test"}])

    def test_client_without_certificate_is_rejected(self) -> None:
        c = certs()
        errors = Collector()
        with tls_echo_server("\n", on_error=lambda cid, e: errors.add((cid, e))) as srv:
            port = srv.start(0)
            cl = tcpgo.TlsClient(c.ca, delimiter="\n")
            try:
                # TLS 1.3: the server rejects the client after the client's side of
                # the handshake completed, so either connect fails or the connection
                # ends right after it.
                cl.connect(LOOPBACK, port)
                self.assertTrue(cl.wait_closed(TIMEOUT))
                with self.assertRaises(tcpgo.ConnectionClosedError):
                    cl.recv(TIMEOUT)
            except tcpgo.HandshakeError:
                pass
            finally:
                cl.close()
            cid, err = errors.wait_count(1)[0]
            self.assertEqual(cid, 0)
            self.assertIsInstance(err, tcpgo.PeerError)
            self.assertEqual(err.code, tcpgo.ErrorCode.HANDSHAKE)
            self.assertEqual(srv.clients, [])

    def test_wrong_ca_is_a_handshake_error(self) -> None:
        other = tcpgo.generate_certs(tempdir())
        with tls_echo_server("\n") as srv:
            port = srv.start(0)
            with self.assertRaises(tcpgo.HandshakeError) as cm:
                tls_client("\n", ca=other.ca).connect(LOOPBACK, port)
            self.assertEqual(cm.exception.code, tcpgo.StartCode.CONNECT_INIT)

    def test_verify_full_checks_the_host_and_verify_ca_does_not(self) -> None:
        pki = tcpgo.generate_certs(tempdir(), "example.com")
        srv = tcpgo.TlsServer(pki.server_cert, pki.server_key, delimiter="\n", host=LOOPBACK)
        srv.on_message(lambda cid, d: srv.send(cid, d))
        with srv:
            port = srv.start(0)
            with self.assertRaises(tcpgo.HandshakeError):
                tcpgo.TlsClient(pki.ca, delimiter="\n").connect(LOOPBACK, port)  # default: full
            with tcpgo.TlsClient(pki.ca, delimiter="\n", verify="ca") as c:
                c.connect(LOOPBACK, port)
                self.assertEqual(c.request("ok", TIMEOUT), b"ok")
        with self.assertRaises(ValueError):
            tcpgo.TlsClient(pki.ca, verify="none")

    def test_tls12_minimum(self) -> None:
        with tls_echo_server("\n", min_tls_version="1.2") as srv:
            port = srv.start(0)
            with tls_client("\n", min_tls_version="1.2") as c:
                c.connect(LOOPBACK, port)
                self.assertEqual(c.request("v", TIMEOUT), b"v")
        with self.assertRaises(ValueError):
            tls_echo_server("\n", min_tls_version="1.0")


class CertificateErrorTest(TestCase):
    def start_with(self, **files: str) -> tcpgo.CertificateError:
        c = certs()
        kw = {"cert": c.server_cert, "key": c.server_key, "ca": c.ca}
        kw.update(files)
        srv = tcpgo.TlsServer(kw["cert"], kw["key"], kw["ca"], host=LOOPBACK)
        try:
            with self.assertRaises(tcpgo.CertificateError) as cm:
                srv.start(0)
        finally:
            srv.close()
        return cm.exception

    def test_every_certificate_code_names_the_file(self) -> None:
        c = certs()
        d = tempdir()
        missing = os.path.join(d, "missing.pem")
        garbage = os.path.join(d, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a certificate\n")
        other = tcpgo.generate_certs(tempdir())
        cases = [
            ({"ca": missing}, tcpgo.StartCode.WRONG_CA_PATH, "ca", missing),
            ({"cert": missing}, tcpgo.StartCode.WRONG_CERT_PATH, "cert", missing),
            ({"key": missing}, tcpgo.StartCode.WRONG_KEY_PATH, "key", missing),
            ({"ca": garbage}, tcpgo.StartCode.WRONG_CA, "ca", garbage),
            ({"cert": garbage}, tcpgo.StartCode.WRONG_CERT, "cert", garbage),
            ({"key": garbage}, tcpgo.StartCode.WRONG_KEY, "key", garbage),
            ({"key": other.server_key}, tcpgo.StartCode.WRONG_KEY, "key", other.server_key),
        ]
        for files, code, kind, path in cases:
            with self.subTest(files=files):
                e = self.start_with(**files)
                self.assertEqual(e.code, code)
                self.assertIsInstance(e.code, tcpgo.StartCode)
                self.assertEqual(e.kind, kind)
                self.assertEqual(e.path, path)
                self.assertIn(path, str(e))
                self.assertTrue(e.reason)

    def test_client_side_certificate_errors(self) -> None:
        c = certs()
        missing = os.path.join(tempdir(), "nope.pem")
        with tls_echo_server("\n") as srv:
            port = srv.start(0)
            with self.assertRaises(tcpgo.CertificateError) as cm:
                tcpgo.TlsClient(c.ca, missing, c.client_key).connect(LOOPBACK, port)
            self.assertEqual(cm.exception.code, tcpgo.StartCode.WRONG_CERT_PATH)
            self.assertIn(missing, str(cm.exception))
            with self.assertRaises(tcpgo.CertificateError) as cm:
                tcpgo.TlsClient(missing).connect(LOOPBACK, port)
            self.assertEqual(cm.exception.code, tcpgo.StartCode.WRONG_CA_PATH)
        with self.assertRaises(ValueError):
            tcpgo.TlsClient(c.ca, cert=c.client_cert)  # key missing

    def test_pathlike_arguments(self) -> None:
        import pathlib
        c = certs()
        srv = tcpgo.TlsServer(pathlib.Path(c.server_cert), pathlib.Path(c.server_key),
                              pathlib.Path(c.ca), "\n", host=LOOPBACK)
        srv.on_message(lambda cid, d: srv.send(cid, d))
        with srv:
            port = srv.start(0)
            with tcpgo.TlsClient(pathlib.Path(c.ca), pathlib.Path(c.client_cert),
                                 pathlib.Path(c.client_key), "\n") as cl:
                cl.connect(LOOPBACK, port)
                self.assertEqual(cl.request("p", TIMEOUT), b"p")


class GenerateCertsTest(TestCase):
    def test_files_and_hosts(self) -> None:
        d = os.path.join(tempdir(), "new", "dir")  # created if missing
        p = tcpgo.generate_certs(d, "localhost,127.0.0.1")
        for path in p:
            self.assertTrue(os.path.isfile(path), path)
        self.assertEqual(os.stat(p.server_key).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(p.client_key).st_mode & 0o777, 0o600)

    def test_unwritable_directory(self) -> None:
        if os.geteuid() == 0:
            target = "/proc/tcpgo-cannot-write-here"
        else:
            target = tempdir()
            os.chmod(target, 0o500)
        with self.assertRaises((tcpgo.Error, OSError)):
            tcpgo.generate_certs(target)


if __name__ == "__main__":
    unittest.main()
