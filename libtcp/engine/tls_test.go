package engine

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startTLS(t testing.TB, s *Server, files TLSFiles) int {
	t.Helper()
	require.NoError(t, s.StartTLS(0, files))
	return s.Port()
}

// garbageFile writes a file that holds no PEM and returns its path.
func garbageFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "garbage.pem")
	require.NoError(t, os.WriteFile(p, []byte("this is not PEM\n"), 0o600))
	return p
}

func rawTLSConfig(t testing.TB, p pki, maxVersion uint16) *tls.Config {
	t.Helper()
	caPEM, err := os.ReadFile(p.client.CA)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	pair, err := tls.LoadX509KeyPair(p.client.Cert, p.client.Key)
	require.NoError(t, err)
	return &tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{pair},
		ServerName:   "127.0.0.1",
		MaxVersion:   maxVersion,
	}
}

func rawTLSDial(port int, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: waitTimeout}
	return tls.DialWithDialer(d, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cfg)
}

func TestTLSMutualEcho(t *testing.T) {
	p := newPKI(t, "")
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			s, rs := echoServer(t, m.f, testOptions())
			port := startTLS(t, s, p.server)
			rc := newRecorder("client")
			cl := newClient(t, m.f, rc)
			require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
			id := rs.waitEstablished(t, 1)[0]
			assert.Equal(t, []int{id}, s.ClientIDs())

			exchange(t, m.f, cl, rc, []string{"secure", "", "hello"})

			for nid, want := range map[int]string{
				NIDCommonName:             "tcpgo client",
				NIDOrganizationName:       "tcpgo",
				NIDOrganizationalUnitName: "test",
			} {
				got, err := s.SubjectPart(id, nid)
				require.NoError(t, err, "nid %d", nid)
				assert.Equal(t, want, got)
			}
			_, err := s.SubjectPart(id, NIDCountryName)
			requireCode(t, ErrNoField, err)
			_, err = s.SubjectPart(id, 999)
			requireCode(t, ErrInvalidArg, err)
			_, err = s.SubjectPart(id, 0)
			requireCode(t, ErrInvalidArg, err)
			_, err = s.SubjectPart(id+1, NIDCommonName)
			requireCode(t, ErrNoClient, err)

			cn, err := cl.ServerSubjectPart(NIDCommonName)
			require.NoError(t, err)
			assert.Equal(t, "tcpgo server", cn)
			_, err = cl.ServerSubjectPart(999)
			requireCode(t, ErrInvalidArg, err)

			cl.Stop()
			rs.waitClosed(t, id)
			assert.Empty(t, rs.errorsOf(id), "a client's stop is an orderly close")

			// The server's stop is an orderly close for the client too.
			require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
			rs.waitEstablished(t, 2)
			s.Stop()
			rc.waitFor(t, func() bool { return rc.closedCount() == 2 }, "closed after server stop")
			require.Eventually(t, func() bool { return !cl.Running() }, waitTimeout, tick)
			assert.Empty(t, rc.errorsOf(0))
			rs.checkOrder(t, true, true)
			rc.checkOrder(t, false, true)
			assert.Empty(t, rs.errorsOf(0))
		})
	}
}

func TestTLSHostNameVerification(t *testing.T) {
	p := newPKI(t, "")
	s, _ := echoServer(t, Continuous{}, testOptions())
	port := startTLS(t, s, p.server)
	cl := newClient(t, Continuous{}, nil)
	require.NoError(t, cl.StartTLS("localhost", port, p.client), "default SAN holds localhost")
}

func TestTLSServerStartCodes(t *testing.T) {
	p := newPKI(t, "")
	other := newPKI(t, "")
	garbage := garbageFile(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	good := p.server
	cases := []struct {
		name  string
		files TLSFiles
		want  Code
	}{
		{"CA path missing, others too", TLSFiles{CA: missing, Cert: missing, Key: missing}, StartWrongCAPath},
		{"CA path missing", TLSFiles{CA: missing, Cert: good.Cert, Key: good.Key}, StartWrongCAPath},
		{"cert path missing", TLSFiles{CA: good.CA, Cert: missing, Key: missing}, StartWrongCertPath},
		{"cert path missing, no CA", TLSFiles{Cert: missing, Key: good.Key}, StartWrongCertPath},
		{"a key without cert", TLSFiles{CA: good.CA, Key: good.Key}, StartWrongCertPath}, // neither: self-signed (tls_selfsigned_test.go)
		{"key path missing", TLSFiles{CA: good.CA, Cert: good.Cert, Key: missing}, StartWrongKeyPath},
		{"key not given", TLSFiles{CA: good.CA, Cert: good.Cert}, StartWrongKeyPath},
		{"paths before contents", TLSFiles{CA: garbage, Cert: garbage, Key: missing}, StartWrongKeyPath},
		{"CA garbage", TLSFiles{CA: garbage, Cert: garbage, Key: garbage}, StartWrongCA},
		{"CA is a key", TLSFiles{CA: good.Key, Cert: good.Cert, Key: good.Key}, StartWrongCA},
		{"cert garbage", TLSFiles{CA: good.CA, Cert: garbage, Key: garbage}, StartWrongCert},
		{"cert is a key", TLSFiles{CA: good.CA, Cert: good.Key, Key: good.Key}, StartWrongCert},
		{"key garbage", TLSFiles{CA: good.CA, Cert: good.Cert, Key: garbage}, StartWrongKey},
		{"key of another certificate", TLSFiles{CA: good.CA, Cert: good.Cert, Key: other.server.Key}, StartWrongKey},
		{"key is a certificate", TLSFiles{CA: good.CA, Cert: good.Cert, Key: good.Cert}, StartWrongKey},
	}
	s := newServer(t, Continuous{}, testOptions(), nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.StartTLS(0, c.files)
			requireCode(t, c.want, err)
			assert.NotEmpty(t, err.Error())
			assert.False(t, s.Running())
			assert.Equal(t, 0, s.Port())
		})
	}
	requireCode(t, StartWrongPort, s.StartTLS(70000, good))
	require.NoError(t, s.StartTLS(0, good))
	requireCode(t, ErrAlreadyRunning, s.StartTLS(0, good))
	s.Stop()
	require.NoError(t, s.StartTLS(0, TLSFiles{Cert: good.Cert, Key: good.Key}), "without CA")
	s.Stop()

	busy := newServer(t, Continuous{}, testOptions(), nil)
	port := startServer(t, busy)
	requireCode(t, StartBindPort, s.StartTLS(port, good))
}

func TestTLSClientStartCodes(t *testing.T) {
	p := newPKI(t, "")
	other := newPKI(t, "")
	garbage := garbageFile(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	good := p.client
	cases := []struct {
		name  string
		files TLSFiles
		want  Code
	}{
		{"CA path missing", TLSFiles{CA: missing, Cert: missing, Key: missing}, StartWrongCAPath},
		{"cert path missing", TLSFiles{CA: good.CA, Cert: missing, Key: good.Key}, StartWrongCertPath},
		{"key path missing", TLSFiles{CA: good.CA, Cert: good.Cert, Key: missing}, StartWrongKeyPath},
		{"key without cert", TLSFiles{CA: good.CA, Key: good.Key}, StartWrongCertPath},
		{"cert without key", TLSFiles{CA: good.CA, Cert: good.Cert}, StartWrongKeyPath},
		{"paths before contents", TLSFiles{CA: garbage, Cert: missing, Key: good.Key}, StartWrongCertPath},
		{"CA garbage", TLSFiles{CA: garbage, Cert: garbage, Key: garbage}, StartWrongCA},
		{"cert garbage", TLSFiles{CA: good.CA, Cert: garbage, Key: good.Key}, StartWrongCert},
		{"key garbage", TLSFiles{CA: good.CA, Cert: good.Cert, Key: garbage}, StartWrongKey},
		{"key of another certificate", TLSFiles{CA: good.CA, Cert: good.Cert, Key: other.client.Key}, StartWrongKey},
	}
	// Nothing listens there: the files are checked before connecting.
	port := freePort(t)
	cl := newClient(t, Continuous{}, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireCode(t, c.want, cl.StartTLS("127.0.0.1", port, c.files))
			assert.False(t, cl.Running())
		})
	}
	requireCode(t, StartWrongPort, cl.StartTLS("127.0.0.1", 0, good))
	requireCode(t, StartConnect, cl.StartTLS("127.0.0.1", port, good))
}

// A client whose certificate comes from another CA never becomes a client
// of the server; the server reports the handshake failure with id 0.
func TestTLSServerRejectsUnknownClient(t *testing.T) {
	p := newPKI(t, "")
	stranger := newPKI(t, "")
	cases := map[string]TLSFiles{
		"certificate from another CA": {CA: p.client.CA, Cert: stranger.client.Cert, Key: stranger.client.Key},
		"no certificate":              {CA: p.client.CA},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			s, rs := echoServer(t, Continuous{}, testOptions())
			port := startTLS(t, s, p.server)
			rc := newRecorder("client")
			cl := newClient(t, Continuous{}, rc)
			err := cl.StartTLS("127.0.0.1", port, files)
			// TLS 1.3: the client's side of the handshake completes before
			// the server checks its certificate.
			if err != nil {
				requireCode(t, StartConnectInit, err)
			} else {
				rc.waitClosed(t, 0)
				require.Eventually(t, func() bool { return !cl.Running() }, waitTimeout, tick)
			}
			rs.waitFor(t, func() bool { return len(rs.errorsOf(0)) > 0 }, "handshake error")
			e := rs.errorsOf(0)[0]
			assert.Equal(t, ErrHandshake, e.code, e.text)
			assert.Empty(t, s.ClientIDs())

			// A good client afterwards is served, and is the only one ever
			// established.
			good := newClient(t, Continuous{}, nil)
			require.NoError(t, good.StartTLS("127.0.0.1", port, p.client))
			rs.waitEstablished(t, 1)
			s.Stop()
			assert.Len(t, rs.established(), 1)
			rs.checkOrder(t, true, true)
		})
	}
}

func TestTLSClientRejectsUnknownServerCA(t *testing.T) {
	p := newPKI(t, "")
	stranger := newPKI(t, "")
	s, rs := echoServer(t, Continuous{}, testOptions())
	port := startTLS(t, s, p.server)
	cl := newClient(t, Continuous{}, nil)
	files := p.client
	files.CA = stranger.client.CA
	requireCode(t, StartConnectInit, cl.StartTLS("127.0.0.1", port, files))
	assert.False(t, cl.Running())
	files.CA = "" // the system's CAs do not know the test CA either
	requireCode(t, StartConnectInit, cl.StartTLS("127.0.0.1", port, files))
	rs.waitFor(t, func() bool { return len(rs.errorsOf(0)) > 0 }, "handshake error")
	assert.Equal(t, ErrHandshake, rs.errorsOf(0)[0].code)
	assert.Empty(t, rs.established())
}

// VerifyCA checks the chain only; VerifyFull also the host.
func TestTLSVerifyModes(t *testing.T) {
	p := newPKI(t, "otherhost")
	stranger := newPKI(t, "otherhost")
	s, _ := echoServer(t, Continuous{}, testOptions())
	port := startTLS(t, s, p.server)

	full := newClient(t, Continuous{}, nil)
	err := full.StartTLS("127.0.0.1", port, p.client)
	requireCode(t, StartConnectInit, err, "SAN otherhost does not match 127.0.0.1")

	o := testOptions()
	o.VerifyMode = VerifyCA
	rc := newRecorder("client")
	caOnly := NewClient(Continuous{}, o, rc)
	t.Cleanup(caOnly.Stop)
	require.NoError(t, caOnly.StartTLS("127.0.0.1", port, p.client))
	exchange(t, Continuous{}, caOnly, rc, []string{"verified by CA"})
	caOnly.Stop()

	wrongCA := p.client
	wrongCA.CA = stranger.client.CA
	requireCode(t, StartConnectInit, caOnly.StartTLS("127.0.0.1", port, wrongCA), "VerifyCA still checks the chain")
}

func TestTLS12OnlyWhenAllowed(t *testing.T) {
	p := newPKI(t, "")
	r := newRecorder("server")
	s := newServer(t, NewDelimited('\n', 64), testOptions(), r)
	port := startTLS(t, s, p.server)

	c13, err := rawTLSDial(port, rawTLSConfig(t, p, 0))
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS13), c13.ConnectionState().Version)
	r.waitEstablished(t, 1)
	c13.Close()

	c12, err := rawTLSDial(port, rawTLSConfig(t, p, tls.VersionTLS12))
	if err == nil {
		c12.Close()
	}
	require.Error(t, err, "TLS 1.2 refused by default")
	r.waitFor(t, func() bool { return len(r.errorsOf(0)) > 0 }, "handshake error")
	assert.Equal(t, ErrHandshake, r.errorsOf(0)[0].code)
	s.Stop()

	o := testOptions()
	o.TLSMinVersion = tls.VersionTLS12
	require.Equal(t, uint16(0x0303), o.TLSMinVersion)
	require.NoError(t, s.SetOptions(o))
	r.onMessage = func(id int, data []byte) { _ = s.Send(id, data) }
	port = startTLS(t, s, p.server)
	c12, err = rawTLSDial(port, rawTLSConfig(t, p, tls.VersionTLS12))
	require.NoError(t, err, "TLS 1.2 allowed with TLSMinVersion 0x0303")
	defer c12.Close()
	assert.Equal(t, uint16(tls.VersionTLS12), c12.ConnectionState().Version)
	id := r.waitEstablished(t, 2)[1]
	cn, err := s.SubjectPart(id, NIDCommonName)
	require.NoError(t, err)
	assert.Equal(t, "tcpgo client", cn)
	_, err = c12.Write([]byte("over 1.2\n"))
	require.NoError(t, err)
	require.NoError(t, c12.SetReadDeadline(time.Now().Add(waitTimeout)))
	buf := make([]byte, len("over 1.2\n"))
	_, err = io.ReadFull(c12, buf)
	require.NoError(t, err)
	assert.Equal(t, "over 1.2\n", string(buf))
}

func TestTLSClientCertOptional(t *testing.T) {
	p := newPKI(t, "")
	o := testOptions()
	o.ClientCertOptional = true
	s, rs := echoServer(t, Continuous{}, o)
	port := startTLS(t, s, p.server)

	anon := newClient(t, Continuous{}, nil)
	require.NoError(t, anon.StartTLS("127.0.0.1", port, TLSFiles{CA: p.client.CA}))
	idAnon := rs.waitEstablished(t, 1)[0]
	_, err := s.SubjectPart(idAnon, NIDCommonName)
	requireCode(t, ErrNoField, err, "no certificate sent")

	named := newClient(t, Continuous{}, nil)
	require.NoError(t, named.StartTLS("127.0.0.1", port, p.client))
	idNamed := rs.waitEstablished(t, 2)[1]
	cn, err := s.SubjectPart(idNamed, NIDCommonName)
	require.NoError(t, err)
	assert.Equal(t, "tcpgo client", cn)

	// A certificate that is sent is still verified.
	stranger := newPKI(t, "")
	bad := newClient(t, Continuous{}, nil)
	_ = bad.StartTLS("127.0.0.1", port, TLSFiles{CA: p.client.CA, Cert: stranger.client.Cert, Key: stranger.client.Key})
	rs.waitFor(t, func() bool { return len(rs.errorsOf(0)) > 0 }, "handshake error")
	assert.Len(t, s.ClientIDs(), 2)
}

func TestTLSServerWithoutCA(t *testing.T) {
	p := newPKI(t, "")
	s, rs := echoServer(t, Continuous{}, testOptions())
	port := startTLS(t, s, TLSFiles{Cert: p.server.Cert, Key: p.server.Key})
	cl := newClient(t, Continuous{}, nil)
	require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client), "a certificate nobody asked for")
	id := rs.waitEstablished(t, 1)[0]
	_, err := s.SubjectPart(id, NIDCommonName)
	requireCode(t, ErrNoField, err, "the server asks for no certificate")
}

// A connection that never completes its handshake is not a client: it is
// not listed, cannot be sent to, and Stop does not wait for a timeout.
func TestTLSStopDuringHandshake(t *testing.T) {
	p := newPKI(t, "")
	o := testOptions()
	o.ConnectTimeout = 0
	r := newRecorder("server")
	s := newServer(t, Continuous{}, o, r)
	port := startTLS(t, s, p.server)
	c := dial(t, port) // plain TCP: no ClientHello ever comes
	var id int
	require.Eventually(t, func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		for k := range s.conns {
			id = k
		}
		return id != 0
	}, waitTimeout, tick, "connection accepted")
	assert.Empty(t, s.ClientIDs())
	requireCode(t, ErrNoClient, s.Send(id, []byte("x")))
	// Its address is known during the handshake (a certificate callback
	// looks it up with the id it is given).
	ip, _, err := s.ClientAddr(id)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", ip)
	requireCode(t, ErrNoClient, s.CloseClient(id))

	returnsWithin(t, "Stop with a handshake pending", s.Stop)
	r.sealed.Store(true)
	assert.Empty(t, r.snapshot(), "a stop is no handshake error, and nothing was established")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitTimeout)))
	_, err = io.ReadAll(c)
	assert.NotErrorIs(t, err, os.ErrDeadlineExceeded, "connection closed by Stop")
}

// The header documents TCP_ERR_TIMEOUT for an expired handshake timeout.
func TestTLSHandshakeTimeout(t *testing.T) {
	p := newPKI(t, "")
	o := testOptions()
	o.ConnectTimeout = 200 * time.Millisecond
	r := newRecorder("server")
	s := newServer(t, Continuous{}, o, r)
	port := startTLS(t, s, p.server)
	c := dial(t, port)
	r.waitFor(t, func() bool { return len(r.errorsOf(0)) > 0 }, "handshake timeout")
	e := r.errorsOf(0)[0]
	assert.Equal(t, ErrTimeout, e.code, "handshake timeout reported as %d (%s)", e.code, e.text)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitTimeout)))
	_, err := io.ReadAll(c)
	assert.NotErrorIs(t, err, os.ErrDeadlineExceeded, "connection closed after the timeout")
	assert.Empty(t, r.established())
}
