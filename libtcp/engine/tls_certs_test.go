package engine

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 11, TLS: certificate callbacks on both sides, several certificates
// by SNI, reloading the server's certificate.

// checkLog records the calls of a certificate callback and answers with
// verdict (nil: the built-in verdict).
type checkLog struct {
	mu      sync.Mutex
	calls   []CertCheck
	verdict func(*CertCheck) bool
}

func (l *checkLog) check(cc *CertCheck) bool {
	l.mu.Lock()
	l.calls = append(l.calls, *cc)
	l.mu.Unlock()
	if l.verdict != nil {
		return l.verdict(cc)
	}
	return cc.Result == CertOK
}

func (l *checkLog) last(t testing.TB) CertCheck {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.NotEmpty(t, l.calls, "the certificate callback ran")
	return l.calls[len(l.calls)-1]
}

func (l *checkLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

func TestTLSServerCertCallback(t *testing.T) {
	p, stranger := newPKI(t, ""), newPKI(t, "")
	s, rs := echoServer(t, Continuous{}, testOptions())
	var log checkLog
	s.SetCertCheck(log.check)
	port := startTLS(t, s, p.server)

	// A verified certificate: the callback sees it and accepts.
	cl := newClient(t, Continuous{}, nil)
	require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
	id := rs.waitEstablished(t, 1)[0]
	cc := log.last(t)
	assert.Equal(t, CertOK, cc.Result)
	assert.NoError(t, cc.Err)
	assert.Equal(t, id, cc.ID, "the id the connection gets")
	require.Len(t, cc.Chain, 1)
	assert.Equal(t, "CN=tcpgo client,OU=test,O=tcpgo", cc.Chain[0].Subject.String())
	cl.Stop()

	// It may refuse a verified certificate.
	log.verdict = func(*CertCheck) bool { return false }
	refused := newClient(t, Continuous{}, nil)
	_ = refused.StartTLS("127.0.0.1", port, p.client) // TLS 1.3: refused after the client's side
	rs.waitFor(t, func() bool { return len(rs.errorsOf(0)) == 1 }, "handshake error")
	assert.Equal(t, ErrHandshake, rs.errorsOf(0)[0].code)
	assert.Contains(t, rs.errorsOf(0)[0].text, "refused by the certificate callback")
	assert.Len(t, rs.established(), 1)

	// And accept one the built-in check rejects (another CA).
	log.verdict = func(cc *CertCheck) bool { return cc.Result == CertUnknownCA }
	other := newClient(t, Continuous{}, nil)
	require.NoError(t, other.StartTLS("127.0.0.1", port, TLSFiles{CA: p.client.CA, Cert: stranger.client.Cert, Key: stranger.client.Key}))
	id = rs.waitEstablished(t, 2)[1]
	cc = log.last(t)
	assert.Equal(t, CertUnknownCA, cc.Result)
	assert.Error(t, cc.Err)
	info, err := s.TLSInfo(id)
	require.NoError(t, err)
	assert.Equal(t, CertUnknownCA, info.Verify, "the info keeps the built-in verdict")
	assert.NotEmpty(t, info.VerifyErr)
	cn, err := s.SubjectPart(id, NIDCommonName)
	require.NoError(t, err)
	assert.Equal(t, "tcpgo client", cn)

	// Without a callback, the same certificate is refused as before.
	s.SetCertCheck(nil)
	n := len(rs.errorsOf(0))
	again := newClient(t, Continuous{}, nil)
	_ = again.StartTLS("127.0.0.1", port, TLSFiles{CA: p.client.CA, Cert: stranger.client.Cert, Key: stranger.client.Key})
	rs.waitFor(t, func() bool { return len(rs.errorsOf(0)) == n+1 }, "handshake error")
	assert.Contains(t, rs.errorsOf(0)[n].text, "unknown authority")
}

// The purpose check is part of the verdict the callback sees.
func TestTLSServerCertCallbackPurpose(t *testing.T) {
	p := newPKI(t, "")
	s, rs := echoServer(t, Continuous{}, testOptions())
	var log checkLog
	s.SetCertCheck(log.check)
	port := startTLS(t, s, p.server)
	cl := newClient(t, Continuous{}, nil)
	_ = cl.StartTLS("127.0.0.1", port, TLSFiles{CA: p.client.CA, Cert: p.server.Cert, Key: p.server.Key})
	rs.waitFor(t, func() bool { return len(rs.errorsOf(0)) == 1 }, "handshake error")
	cc := log.last(t)
	assert.Equal(t, CertPurpose, cc.Result, "%v", cc.Err)
}

// A server without a CA asks for a certificate only when a callback is set
// at start; the callback judges it (pinning, for example).
func TestTLSServerCertCallbackWithoutCA(t *testing.T) {
	p := newPKI(t, "")
	s, rs := echoServer(t, Continuous{}, testOptions())
	var log checkLog
	log.verdict = func(cc *CertCheck) bool {
		return cc.Result == CertNoCert || (cc.Result == CertUnknownCA && cc.Chain[0].Subject.CommonName == "tcpgo client")
	}
	s.SetCertCheck(log.check)
	port := startTLS(t, s, TLSFiles{Cert: p.server.Cert, Key: p.server.Key})

	cl := newClient(t, Continuous{}, nil)
	require.NoError(t, cl.StartTLS("127.0.0.1", port, p.client))
	id := rs.waitEstablished(t, 1)[0]
	assert.Equal(t, CertUnknownCA, log.last(t).Result)
	cn, err := s.SubjectPart(id, NIDCommonName)
	require.NoError(t, err)
	assert.Equal(t, "tcpgo client", cn)

	anon := newClient(t, Continuous{}, nil)
	require.NoError(t, anon.StartTLS("127.0.0.1", port, TLSFiles{CA: p.client.CA}))
	id = rs.waitEstablished(t, 2)[1]
	assert.Equal(t, CertNoCert, log.last(t).Result)
	_, err = s.SubjectPart(id, NIDCommonName)
	requireCode(t, ErrNoField, err)

	// No callback at start: no certificate asked for, none seen.
	plain, prs := echoServer(t, Continuous{}, testOptions())
	pport := startTLS(t, plain, TLSFiles{Cert: p.server.Cert, Key: p.server.Key})
	var late checkLog
	plain.SetCertCheck(late.check)
	c2 := newClient(t, Continuous{}, nil)
	require.NoError(t, c2.StartTLS("127.0.0.1", pport, p.client))
	_, err = plain.SubjectPart(prs.waitEstablished(t, 1)[0], NIDCommonName)
	requireCode(t, ErrNoField, err)
	assert.Zero(t, late.count())
}

// With an optional client certificate the callback sees "no certificate".
func TestTLSServerCertCallbackOptional(t *testing.T) {
	p := newPKI(t, "")
	s, rs := tlsServer(t, Continuous{}, func(o *Options) { o.ClientCertOptional = true })
	var log checkLog
	log.verdict = func(cc *CertCheck) bool { return cc.Result != CertNoCert }
	s.SetCertCheck(log.check)
	port := startTLS(t, s, p.server)
	anon := newClient(t, Continuous{}, nil)
	_ = anon.StartTLS("127.0.0.1", port, TLSFiles{CA: p.client.CA})
	rs.waitFor(t, func() bool { return len(rs.errorsOf(0)) == 1 }, "refused")
	assert.Equal(t, CertNoCert, log.last(t).Result)
	assert.Empty(t, rs.established())
}

func TestTLSClientCertCallback(t *testing.T) {
	p := newPKI(t, "")
	only2 := newPKI(t, "127.0.0.2") // valid, but not for 127.0.0.1
	s, _ := echoServer(t, Continuous{}, testOptions())
	port := startTLS(t, s, only2.server)

	// The built-in check rejects the name; the callback sees why.
	var log checkLog
	cl := newClient(t, Continuous{}, nil)
	cl.SetCertCheck(log.check)
	err := cl.StartTLS("127.0.0.1", port, only2.client)
	requireCode(t, StartConnectInit, err)
	cc := log.last(t)
	assert.Equal(t, CertNameMismatch, cc.Result)
	assert.Equal(t, "127.0.0.1", cc.ServerName)
	assert.Equal(t, 0, cc.ID)
	assert.Equal(t, "CN=tcpgo server,OU=test,O=tcpgo", cc.Chain[0].Subject.String())

	// Accepting it overrides.
	log.verdict = func(cc *CertCheck) bool { return cc.Result == CertNameMismatch }
	require.NoError(t, cl.StartTLS("127.0.0.1", port, only2.client))
	info, err := cl.TLSInfo()
	require.NoError(t, err)
	assert.Equal(t, CertNameMismatch, info.Verify)
	cl.Stop()

	// An unknown CA.
	log.verdict = nil
	requireCode(t, StartConnectInit, cl.StartTLS("127.0.0.1", port, p.client))
	assert.Equal(t, CertUnknownCA, log.last(t).Result)

	// Refusing a certificate the built-in check accepts.
	good, _ := echoServer(t, Continuous{}, testOptions())
	gport := startTLS(t, good, p.server)
	log.verdict = func(*CertCheck) bool { return false }
	err = cl.StartTLS("127.0.0.1", gport, p.client)
	requireCode(t, StartConnectInit, err)
	assert.Contains(t, err.Error(), "refused by the certificate callback")
	assert.Equal(t, CertOK, log.last(t).Result)
	cl.SetCertCheck(nil)
	require.NoError(t, cl.StartTLS("127.0.0.1", gport, p.client))
}

func TestTLSSNICertificates(t *testing.T) {
	def := newPKI(t, "")
	alpha := newPKI(t, "alpha.test")
	wild := newPKI(t, "*.wild.test")
	s, rs := echoServer(t, Continuous{}, testOptions())
	require.NoError(t, s.AddCert("Alpha.Test", alpha.server), "before start")
	port := startTLS(t, s, TLSFiles{Cert: def.server.Cert, Key: def.server.Key})
	require.NoError(t, s.AddCert("*.wild.test", TLSPEM{Cert: readFile(t, wild.server.Cert), Key: readFile(t, wild.server.Key)}), "while running")

	for _, c := range []struct {
		name string
		pki  pki
	}{
		{"alpha.test", alpha}, {"ALPHA.test", alpha}, {"x.wild.test", wild}, {"", def},
		{"other.test", def}, {"a.b.wild.test", def}, {"wild.test", def},
	} {
		cl := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.ServerName = c.name; o.VerifyMode = VerifyCA })
		require.NoError(t, cl.StartTLS("127.0.0.1", port, TLSFiles{CA: c.pki.client.CA}), "name %q", c.name)
		info, err := cl.TLSInfo()
		require.NoError(t, err)
		assert.Equal(t, readFile(t, c.pki.server.Cert), info.PeerCertPEM(), "name %q", c.name)
		cl.Stop()
	}
	// Full verification by name works through SNI.
	cl := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.ServerName = "alpha.test" })
	require.NoError(t, cl.StartTLS("127.0.0.1", port, alpha.client))
	rs.waitEstablished(t, 8) // with the 7 above, all stopped
	require.Eventually(t, func() bool { return len(s.ClientIDs()) == 1 }, waitTimeout, tick)
	info, err := s.TLSInfo(s.ClientIDs()[0])
	require.NoError(t, err)
	assert.Equal(t, "alpha.test", info.ServerName)

	for _, bad := range []string{"", "*", "*.", "a.*.b", "a b", "host:1", ".x", "x."} {
		requireCode(t, ErrInvalidArg, s.AddCert(bad, alpha.server), bad)
	}
	requireCode(t, StartWrongCertPath, s.AddCert("a.test", TLSFiles{}))
	requireCode(t, StartWrongCert, s.AddCert("a.test", TLSPEM{}))
	requireCode(t, StartWrongKey, s.AddCert("a.test", TLSFiles{Cert: alpha.server.Cert, Key: def.server.Key}))
	requireCode(t, StartWrongKeyPath, s.AddCert("a.test", TLSFiles{Cert: alpha.server.Cert, Key: "/nonexistent"}))
}

// Reloading: new connections get the new certificate, those up keep
// theirs, and a failed reload changes nothing.
func TestTLSReload(t *testing.T) {
	a, b := newPKI(t, ""), newPKI(t, "")
	s, rs := echoServer(t, Continuous{}, testOptions())
	requireCode(t, ErrNotRunning, s.ReloadCert(b.server))
	port := startTLS(t, s, TLSFiles{Cert: a.server.Cert, Key: a.server.Key})

	peer := func(ca string) (*Client, *recorder, []byte) {
		rc := newRecorder("client")
		cl := tlsClient(t, Continuous{}, rc, func(o *Options) { o.VerifyMode = VerifyCA })
		require.NoError(t, cl.StartTLS("127.0.0.1", port, TLSFiles{CA: ca}))
		info, err := cl.TLSInfo()
		require.NoError(t, err)
		return cl, rc, info.PeerCertPEM()
	}
	c1, r1, cert1 := peer(a.client.CA)
	assert.Equal(t, readFile(t, a.server.Cert), cert1)

	require.NoError(t, s.ReloadCert(TLSPEM{Cert: readFile(t, b.server.Cert), Key: readFile(t, b.server.Key)}))
	c2, _, cert2 := peer(b.client.CA)
	assert.Equal(t, readFile(t, b.server.Cert), cert2)
	pemNow, err := s.CertificatePEM()
	require.NoError(t, err)
	assert.Equal(t, cert2, pemNow)

	// The first connection is still up, with its certificate.
	exchange(t, Continuous{}, c1, r1, []string{"still here"})
	// (With TLS 1.3 the client's start returns before the server's side
	// of the handshake is done: wait for the second established.)
	assert.Len(t, rs.waitEstablished(t, 2), 2)
	c1.Stop()
	c2.Stop()

	requireCode(t, StartWrongKey, s.ReloadCert(TLSFiles{Cert: a.server.Cert, Key: b.server.Key}))
	requireCode(t, StartWrongCertPath, s.ReloadCert(TLSFiles{Key: b.server.Key}))
	_, _, cert3 := peer(b.client.CA)
	assert.Equal(t, cert2, cert3, "a failed reload keeps the certificate")

	// Neither certificate nor key: a fresh self-signed one.
	require.NoError(t, s.ReloadCert(TLSPEM{}))
	self, err := s.CertificatePEM()
	require.NoError(t, err)
	c4 := tlsClient(t, Continuous{}, nil, nil)
	require.NoError(t, c4.StartTLSPEM("127.0.0.1", port, TLSPEM{CA: self}))
}
