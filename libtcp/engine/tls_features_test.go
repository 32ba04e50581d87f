package engine

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 11, TLS: certificates from memory, the server name, versions,
// suites, ALPN, key log, resumption, per-connection information.

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// pemOf reads a TLSFiles' files into a TLSPEM.
func pemOf(t testing.TB, f TLSFiles) TLSPEM {
	t.Helper()
	var p TLSPEM
	if f.CA != "" {
		p.CA = readFile(t, f.CA)
	}
	if f.Cert != "" {
		p.Cert = readFile(t, f.Cert)
	}
	if f.Key != "" {
		p.Key = readFile(t, f.Key)
	}
	return p
}

// tlsClient is a client with options o (loopback defaults when nil).
func tlsClient(t testing.TB, f Framing, h Handler, mod func(*Options)) *Client {
	t.Helper()
	cl := newClient(t, f, h)
	if mod != nil {
		o := cl.Options()
		mod(&o)
		require.NoError(t, cl.SetOptions(o))
	}
	return cl
}

// tlsServer is an echo server with options modified by mod.
func tlsServer(t testing.TB, f Framing, mod func(*Options)) (*Server, *recorder) {
	t.Helper()
	o := testOptions()
	if mod != nil {
		mod(&o)
	}
	return echoServer(t, f, o)
}

func parsePEMCert(t testing.TB, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	require.NotNil(t, block, "no PEM in %q", b)
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return c
}

func TestTLSPEMEcho(t *testing.T) {
	p := newPKI(t, "")
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			s, rs := echoServer(t, m.f, testOptions())
			require.NoError(t, s.StartTLSPEM(0, pemOf(t, p.server)))
			rc := newRecorder("client")
			cl := newClient(t, m.f, rc)
			require.NoError(t, cl.StartTLSPEM("127.0.0.1", s.Port(), pemOf(t, p.client)))
			id := rs.waitEstablished(t, 1)[0]
			exchange(t, m.f, cl, rc, []string{"from", "memory"})
			cn, err := s.SubjectPart(id, NIDCommonName)
			require.NoError(t, err)
			assert.Equal(t, "tcpgo client", cn)
		})
	}
}

func TestTLSPEMStartCodes(t *testing.T) {
	p, other := newPKI(t, ""), newPKI(t, "")
	good := pemOf(t, p.server)
	junk := []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
	cases := []struct {
		name string
		pem  TLSPEM
		want Code
	}{
		{"CA garbage", TLSPEM{CA: []byte("junk"), Cert: good.Cert, Key: good.Key}, StartWrongCA},
		{"CA empty", TLSPEM{CA: []byte{}, Cert: good.Cert, Key: good.Key}, StartWrongCA},
		{"CA is a key", TLSPEM{CA: good.Key, Cert: good.Cert, Key: good.Key}, StartWrongCA},
		{"cert garbage", TLSPEM{CA: good.CA, Cert: junk, Key: good.Key}, StartWrongCert},
		{"cert is a key", TLSPEM{Cert: good.Key, Key: good.Key}, StartWrongCert},
		{"a key without cert", TLSPEM{Key: good.Key}, StartWrongCert},
		{"a cert without key", TLSPEM{Cert: good.Cert}, StartWrongKey},
		{"key garbage", TLSPEM{Cert: good.Cert, Key: []byte("junk")}, StartWrongKey},
		{"key of another cert", TLSPEM{Cert: good.Cert, Key: readFile(t, other.server.Key)}, StartWrongKey},
		{"contents checked in order", TLSPEM{CA: []byte("x"), Cert: []byte("x"), Key: []byte("x")}, StartWrongCA},
	}
	s := newServer(t, Continuous{}, testOptions(), nil)
	cl := newClient(t, Continuous{}, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireCode(t, c.want, s.StartTLSPEM(0, c.pem))
			assert.False(t, s.Running())
			requireCode(t, c.want, cl.StartTLSPEM("127.0.0.1", 1, c.pem))
			assert.False(t, cl.Running())
		})
	}
	require.NoError(t, s.StartTLSPEM(0, good))
}

// A TLS server given no certificate makes a self-signed one for the
// loopback names, which a client can take as its CA.
func TestTLSSelfSignedServer(t *testing.T) {
	for name, start := range map[string]func(*Server) error{
		"PEM":   func(s *Server) error { return s.StartTLSPEM(0, TLSPEM{}) },
		"files": func(s *Server) error { return s.StartTLS(0, TLSFiles{}) },
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := echoServer(t, Continuous{}, testOptions())
			_, err := s.CertificatePEM()
			requireCode(t, ErrNoField, err)
			require.NoError(t, start(s))
			certPEM, err := s.CertificatePEM()
			require.NoError(t, err)
			cert := parsePEMCert(t, certPEM)
			assert.Equal(t, []string{"localhost"}, cert.DNSNames)
			require.Len(t, cert.IPAddresses, 2)
			assert.Equal(t, "127.0.0.1", cert.IPAddresses[0].String())
			assert.Equal(t, "::1", cert.IPAddresses[1].String())
			assert.Equal(t, cert.Subject.String(), cert.Issuer.String(), "self-signed")
			require.NoError(t, checkLeafPurpose(cert, serverRole))

			for _, host := range []string{"127.0.0.1", "localhost"} {
				rc := newRecorder("client")
				cl := newClient(t, Continuous{}, rc)
				require.NoError(t, cl.StartTLSPEM(host, s.Port(), TLSPEM{CA: certPEM}), host)
				info, err := cl.TLSInfo()
				require.NoError(t, err)
				assert.Equal(t, certPEM, info.PeerCertPEM())
				exchange(t, Continuous{}, cl, rc, []string{"hi"})
				cl.Stop()
			}
			// Without the certificate as CA the client refuses it.
			cl := newClient(t, Continuous{}, nil)
			requireCode(t, StartConnectInit, cl.StartTLSPEM("127.0.0.1", s.Port(), pemOf(t, newPKI(t, "").client)))
		})
	}
}

func TestTLSSelfSignedHosts(t *testing.T) {
	loop := []string{"localhost", "127.0.0.1", "::1"}
	for _, bind := range []string{"", "127.0.0.1", "::1", "0.0.0.0", "::", "localhost"} {
		assert.Equal(t, loop, selfSignedHosts(bind), bind)
	}
	assert.Equal(t, []string{"192.0.2.7"}, selfSignedHosts("192.0.2.7"))
	assert.Equal(t, []string{"example.org"}, selfSignedHosts("example.org"))
	c, err := selfSignedCert([]string{"192.0.2.7"})
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.7", c.Leaf.IPAddresses[0].String())
	assert.Empty(t, c.Leaf.DNSNames)
}

// Connecting by IP to a server whose certificate names it only by DNS
// fails with full verification, unless the client names the server.
func TestTLSServerName(t *testing.T) {
	p := newPKI(t, "server.test")
	s, rs := echoServer(t, Continuous{}, testOptions())
	port := startTLS(t, s, p.server)

	cl := newClient(t, Continuous{}, nil)
	err := cl.StartTLS("127.0.0.1", port, p.client)
	requireCode(t, StartConnectInit, err)
	assert.Contains(t, err.Error(), "IP SANs")

	named := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.ServerName = "server.test" })
	require.NoError(t, named.StartTLS("127.0.0.1", port, p.client))
	id := rs.waitEstablished(t, 1)[0]
	info, err := s.TLSInfo(id)
	require.NoError(t, err)
	assert.Equal(t, "server.test", info.ServerName, "sent as SNI")
	ci, err := named.TLSInfo()
	require.NoError(t, err)
	assert.Equal(t, CertOK, ci.Verify)
	named.Stop()

	// The name is checked: another name fails.
	wrong := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.ServerName = "other.test" })
	requireCode(t, StartConnectInit, wrong.StartTLS("127.0.0.1", port, p.client))

	// VerifyCA sends no SNI (v2) unless a name is set, and checks no name.
	for _, name := range []string{"", "other.test"} {
		ca := tlsClient(t, Continuous{}, nil, func(o *Options) { o.VerifyMode = VerifyCA; o.TLS.ServerName = name })
		require.NoError(t, ca.StartTLS("127.0.0.1", port, p.client))
		require.Eventually(t, func() bool { return len(s.ClientIDs()) == 1 }, waitTimeout, tick)
		info, err := s.TLSInfo(s.ClientIDs()[0])
		require.NoError(t, err)
		assert.Equal(t, name, info.ServerName)
		ca.Stop()
		require.Eventually(t, func() bool { return len(s.ClientIDs()) == 0 }, waitTimeout, tick)
	}
}

// SystemCAs adds the system's CAs to the given CA.
func TestTLSSystemCAs(t *testing.T) {
	p := newPKI(t, "")
	sys, err := x509.SystemCertPool()
	require.NoError(t, err)
	caPEM := readFile(t, p.client.CA)
	want := sys.Clone()
	require.True(t, want.AppendCertsFromPEM(caPEM))

	var ct clientTLS
	o := testOptions()
	o.TLS.SystemCAs = true
	setup, err := ct.prepare(TLSPEM{CA: caPEM}, "127.0.0.1", o)
	require.NoError(t, err)
	assert.True(t, setup.roots.Equal(want), "system CAs plus the given CA")
	o.TLS.SystemCAs = false
	setup, err = ct.prepare(TLSPEM{CA: caPEM}, "127.0.0.1", o)
	require.NoError(t, err)
	assert.False(t, setup.roots.Equal(want), "the given CA only")

	// And a real connection still verifies against the given CA.
	s, _ := echoServer(t, Continuous{}, testOptions())
	port := startTLS(t, s, p.server)
	cl := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.SystemCAs = true })
	require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
}

func TestTLSVersions(t *testing.T) {
	p := newPKI(t, "")
	s12, rs := tlsServer(t, Continuous{}, func(o *Options) { o.TLSMinVersion = tls.VersionTLS12; o.TLS.MaxVersion = tls.VersionTLS12 })
	port := startTLS(t, s12, p.server)
	cl := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLSMinVersion = tls.VersionTLS12 })
	require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
	info, err := cl.TLSInfo()
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS12), info.Version)
	assert.Equal(t, "TLS 1.2", TLSVersionName(info.Version))
	id := rs.waitEstablished(t, 1)[0]
	si, err := s12.TLSInfo(id)
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS12), si.Version)

	// A client that wants TLS 1.3 only cannot talk to it.
	only13 := newClient(t, Continuous{}, nil)
	requireCode(t, StartConnectInit, only13.StartTLS("127.0.0.1", port, p.client))

	// The minimum above the maximum is refused at start.
	bad := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.MaxVersion = tls.VersionTLS12 })
	requireCode(t, StartSetContext, bad.StartTLS("127.0.0.1", port, p.client))
	badS, _ := tlsServer(t, Continuous{}, func(o *Options) { o.TLS.MaxVersion = tls.VersionTLS12 })
	requireCode(t, StartSetContext, badS.StartTLS(0, p.server))
}

func TestTLSCipherSuites(t *testing.T) {
	ids, err := ParseCipherSuites(" TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 ,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
	require.NoError(t, err)
	assert.Equal(t, []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, ids)
	ids, err = ParseCipherSuites("")
	require.NoError(t, err)
	assert.Nil(t, ids)
	_, err = ParseCipherSuites("TLS_NOT_A_SUITE")
	requireCode(t, ErrInvalidArg, err)
	_, err = ParseCipherSuites("TLS_AES_128_GCM_SHA256")
	requireCode(t, ErrInvalidArg, err)
	assert.Contains(t, err.Error(), "TLS 1.3")

	p := newPKI(t, "") // ECDSA certificates
	for _, suite := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384} {
		s, _ := tlsServer(t, Continuous{}, func(o *Options) {
			o.TLSMinVersion = tls.VersionTLS12
			o.TLS.CipherSuites = []uint16{suite}
		})
		port := startTLS(t, s, p.server)
		cl := tlsClient(t, Continuous{}, nil, func(o *Options) {
			o.TLSMinVersion = tls.VersionTLS12
			o.TLS.MaxVersion = tls.VersionTLS12
		})
		require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
		info, err := cl.TLSInfo()
		require.NoError(t, err)
		assert.Equal(t, suite, info.CipherSuite)
		assert.Equal(t, tls.CipherSuiteName(suite), CipherSuiteName(info.CipherSuite))
	}
}

func TestTLSALPN(t *testing.T) {
	p := newPKI(t, "")
	protos, err := ParseALPN(" h2, proto-b ,")
	require.NoError(t, err)
	assert.Equal(t, []string{"h2", "proto-b"}, protos)
	_, err = ParseALPN(strings.Repeat("x", 256))
	requireCode(t, ErrInvalidArg, err)

	s, rs := tlsServer(t, Continuous{}, func(o *Options) { o.TLS.ALPN = protos })
	port := startTLS(t, s, p.server)
	for i, c := range []struct {
		offer []string
		want  string
	}{{[]string{"proto-b"}, "proto-b"}, {[]string{"proto-b", "h2"}, "h2"}, {nil, ""}} {
		cl := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.ALPN = c.offer })
		require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
		info, err := cl.TLSInfo()
		require.NoError(t, err)
		assert.Equal(t, c.want, info.ALPN)
		id := rs.waitEstablished(t, i+1)[i]
		si, err := s.TLSInfo(id)
		require.NoError(t, err)
		assert.Equal(t, c.want, si.ALPN)
		cl.Stop()
	}
	// No protocol in common: the server refuses the handshake.
	cl := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.ALPN = []string{"nope"} })
	requireCode(t, StartConnectInit, cl.StartTLS("127.0.0.1", port, p.client))
}

func TestTLSKeyLog(t *testing.T) {
	p := newPKI(t, "")
	s, _ := echoServer(t, Continuous{}, testOptions())
	port := startTLS(t, s, p.server)
	path := filepath.Join(t.TempDir(), "keys.log")
	cl := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.KeyLogFile = path })
	require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
	log := string(readFile(t, path))
	for _, label := range []string{"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"} {
		assert.Contains(t, log, label+" ")
	}
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// A server's key log, TLS 1.2 format.
	spath := filepath.Join(t.TempDir(), "server.log")
	s2, _ := tlsServer(t, Continuous{}, func(o *Options) {
		o.TLS.KeyLogFile = spath
		o.TLSMinVersion = tls.VersionTLS12
		o.TLS.MaxVersion = tls.VersionTLS12
	})
	port = startTLS(t, s2, p.server)
	cl2 := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLSMinVersion = tls.VersionTLS12 })
	require.NoError(t, cl2.StartTLS("127.0.0.1", port, p.client))
	assert.Contains(t, string(readFile(t, spath)), "CLIENT_RANDOM ")

	bad := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.KeyLogFile = filepath.Join(t.TempDir(), "no", "such", "dir") })
	requireCode(t, StartSetContext, bad.StartTLS("127.0.0.1", port, p.client))
}

// A client resumes its session on the next connection to the same
// server, by default, with mutual TLS too.
func TestTLSSessionResumption(t *testing.T) {
	p := newPKI(t, "")
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(TLSVersionName(v), func(t *testing.T) {
			s, rs := tlsServer(t, Continuous{}, func(o *Options) { o.TLSMinVersion = tls.VersionTLS12; o.TLS.MaxVersion = v })
			calls := 0
			var mu sync.Mutex
			s.SetCertCheck(func(cc *CertCheck) bool {
				mu.Lock()
				calls++
				mu.Unlock()
				return cc.Result == CertOK
			})
			port := startTLS(t, s, p.server)
			cl := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLSMinVersion = tls.VersionTLS12 })
			resumed := func() (bool, bool) {
				rc := newRecorder("client")
				require.NoError(t, cl.SetHandler(rc))
				require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
				// An echo: the client has read the session ticket that the
				// server sent after its handshake (TLS 1.3).
				exchange(t, Continuous{}, cl, rc, []string{"x"})
				info, err := cl.TLSInfo()
				require.NoError(t, err)
				n := len(rs.established())
				id := rs.established()[n-1]
				si, err := s.TLSInfo(id)
				require.NoError(t, err)
				assert.Equal(t, "CN=tcpgo client,OU=test,O=tcpgo", si.PeerSubject(), "the client's identity survives resumption")
				cn, err := s.SubjectPart(id, NIDCommonName)
				require.NoError(t, err)
				assert.Equal(t, "tcpgo client", cn)
				cl.Stop()
				rs.waitClosed(t, id)
				return info.Resumed, si.Resumed
			}
			c1, s1 := resumed()
			assert.False(t, c1)
			assert.False(t, s1)
			c2, s2 := resumed()
			assert.True(t, c2, "client resumed")
			assert.True(t, s2, "server resumed")
			mu.Lock()
			assert.Equal(t, 2, calls, "the certificate callback runs on resumed sessions too")
			mu.Unlock()

			// Other client certificates: a new cache, a full handshake.
			other := newPKI(t, "")
			s.SetCertCheck(func(*CertCheck) bool { return true })
			require.NoError(t, cl.StartTLS("127.0.0.1", port, TLSFiles{CA: p.client.CA, Cert: other.client.Cert, Key: other.client.Key}))
			info, err := cl.TLSInfo()
			require.NoError(t, err)
			assert.False(t, info.Resumed)
			cl.Stop()

			// NoResumption.
			off := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLSMinVersion = tls.VersionTLS12; o.TLS.NoResumption = true })
			for i := 0; i < 2; i++ {
				require.NoError(t, off.StartTLS("127.0.0.1", port, p.client))
				info, err := off.TLSInfo()
				require.NoError(t, err)
				assert.False(t, info.Resumed)
				off.Stop()
			}
		})
	}
}

func TestTLSInfoBothSides(t *testing.T) {
	p := newPKI(t, "")
	s, rs := echoServer(t, Continuous{}, testOptions())
	port := startTLS(t, s, p.server)
	cl := newClient(t, Continuous{}, nil)
	_, err := cl.TLSInfo()
	requireCode(t, ErrNotRunning, err)
	require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
	id := rs.waitEstablished(t, 1)[0]

	si, err := s.TLSInfo(id)
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS13), si.Version)
	assert.NotZero(t, si.CipherSuite)
	assert.Equal(t, readFile(t, p.client.Cert), si.PeerCertPEM())
	assert.Equal(t, "CN=tcpgo client,OU=test,O=tcpgo", si.PeerSubject())
	assert.Equal(t, "CN=tcpgo test CA,O=tcpgo", si.PeerIssuer())
	assert.Equal(t, CertOK, si.Verify)
	assert.Empty(t, si.VerifyErr)
	assert.False(t, si.Upgraded)

	ci, err := cl.TLSInfo()
	require.NoError(t, err)
	assert.Equal(t, si.Version, ci.Version)
	assert.Equal(t, si.CipherSuite, ci.CipherSuite)
	assert.Equal(t, readFile(t, p.server.Cert), ci.PeerCertPEM())
	assert.Equal(t, ci.PeerCertPEM(), ci.PeerChainPEM(), "the server sent its leaf only")
	assert.Equal(t, "CN=tcpgo server,OU=test,O=tcpgo", ci.PeerSubject())

	// Still readable after the connection ended (client), gone with it
	// (server); plain TCP has none.
	cl.Stop()
	_, err = cl.TLSInfo()
	require.NoError(t, err)
	rs.waitClosed(t, id)
	_, err = s.TLSInfo(id)
	requireCode(t, ErrNoClient, err)

	plain, prs := echoServer(t, Continuous{}, testOptions())
	pport := startServer(t, plain)
	pc := newClient(t, Continuous{}, nil)
	require.NoError(t, pc.Start("127.0.0.1", pport))
	_, err = pc.TLSInfo()
	requireCode(t, ErrNoField, err)
	_, err = plain.TLSInfo(prs.waitEstablished(t, 1)[0])
	requireCode(t, ErrNoField, err)
}
