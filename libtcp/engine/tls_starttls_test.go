package engine

import (
	"bufio"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 11, TLS: explicit TLS (STARTTLS). The protocol of these tests:
// lines; "STARTTLS" asks for the upgrade and the server replies "OK" in
// plain text right before its handshake; everything else is echoed.

var stLines = NewDelimited('\n', 1024)

// starttlsServer is a plain echo server that upgrades on "STARTTLS", from
// its message callback (fromCallback) or from the test goroutine (the
// request then arrives on the returned channel).
func starttlsServer(t testing.TB, p pki, fromCallback bool) (*Server, *recorder, chan int) {
	t.Helper()
	rs := newRecorder("server")
	s := newServer(t, stLines, testOptions(), rs)
	asked := make(chan int, 4)
	rs.onMessage = func(id int, data []byte) {
		switch {
		case string(data) != "STARTTLS":
			_ = s.Send(id, data)
		case fromCallback:
			if err := s.UpgradeTLS(id, []byte("OK")); err != nil {
				t.Errorf("UpgradeTLS from the callback: %v", err)
			}
		default:
			asked <- id
		}
	}
	require.NoError(t, s.SetUpgradeTLS(p.server))
	startServer(t, s)
	return s, rs, asked
}

func countEvents(r *recorder, kind evKind, id int) int { return r.count(kind, id) }

func TestSTARTTLSFromCallbacks(t *testing.T) {
	p := newPKI(t, "")
	s, rs, _ := starttlsServer(t, p, true)
	rc := newRecorder("client")
	cl := newClient(t, stLines, rc)
	rc.onMessage = func(_ int, data []byte) {
		if string(data) == "OK" {
			if err := cl.UpgradeTLS(p.client); err != nil { // returns at once
				t.Errorf("UpgradeTLS from the callback: %v", err)
			}
		}
	}
	require.NoError(t, cl.Start("127.0.0.1", s.Port()))
	id := rs.waitEstablished(t, 1)[0]
	_, err := s.TLSInfo(id)
	requireCode(t, ErrNoField, err, "plain so far")

	exchange(t, stLines, cl, rc, []string{"plain"})
	require.NoError(t, cl.Send([]byte("STARTTLS")))
	rs.waitFor(t, func() bool { return countEvents(rs, evEstablished, id) == 2 }, "established again")
	rc.waitFor(t, func() bool { return countEvents(rc, evEstablished, 0) == 1 }, "client established after the upgrade")

	require.NoError(t, cl.Send([]byte("secret")))
	rc.waitFor(t, func() bool { return len(rc.messages(0)) == 3 }, "echo over TLS")
	assert.Equal(t, []string{"plain", "OK", "secret"}, msgStrings(rc.messages(0)))
	assert.Equal(t, []string{"plain", "STARTTLS", "secret"}, msgStrings(rs.messages(id)))

	si, err := s.TLSInfo(id)
	require.NoError(t, err)
	assert.True(t, si.Upgraded)
	assert.Equal(t, uint16(tls.VersionTLS13), si.Version)
	cn, err := s.SubjectPart(id, NIDCommonName)
	require.NoError(t, err)
	assert.Equal(t, "tcpgo client", cn, "mutual TLS: the server's material has a CA")
	ci, err := cl.TLSInfo()
	require.NoError(t, err)
	assert.True(t, ci.Upgraded)
	assert.Equal(t, readFile(t, p.server.Cert), ci.PeerCertPEM())
}

func msgStrings(msgs [][]byte) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m)
	}
	return out
}

// From other goroutines: the server's call returns at once, the client's
// waits for the handshake.
func TestSTARTTLSFromOtherGoroutines(t *testing.T) {
	p := newPKI(t, "")
	s, rs, asked := starttlsServer(t, p, false)
	rc := newRecorder("client")
	gotOK := make(chan struct{}, 1)
	rc.onMessage = func(_ int, data []byte) {
		if string(data) == "OK" {
			gotOK <- struct{}{}
		}
	}
	cl := newClient(t, stLines, rc)
	require.NoError(t, cl.Start("127.0.0.1", s.Port()))
	require.NoError(t, cl.Send([]byte("STARTTLS")))
	id := recv(t, asked, "the server's STARTTLS")
	require.NoError(t, s.UpgradeTLS(id, []byte("OK")))
	recv(t, gotOK, "OK")
	require.NoError(t, cl.UpgradeTLS(p.client))
	info, err := cl.TLSInfo()
	require.NoError(t, err, "upgraded when UpgradeTLS returned")
	assert.True(t, info.Upgraded)
	require.NoError(t, cl.Send([]byte("after")))
	rc.waitFor(t, func() bool { return len(rc.messages(0)) == 2 }, "echo over TLS")
	assert.Equal(t, "after", string(rc.messages(0)[1]))
	rs.waitFor(t, func() bool { return countEvents(rs, evEstablished, id) == 2 }, "established again")
	assert.Zero(t, countEvents(rc, evEstablished, 0), "the client's result was UpgradeTLS's return, no event")
}

// A peer that is not tcpgo: a raw socket that sends its request, reads the
// reply and runs crypto/tls's client handshake on the same socket. Messages
// sent with the request are delivered before the upgrade, and what the
// server sends during the handshake goes out encrypted after it.
func TestSTARTTLSRawPeerClient(t *testing.T) {
	p := newPKI(t, "")
	s, rs, asked := starttlsServer(t, p, false)
	nc := dial(t, s.Port())
	_, err := nc.Write([]byte("one\nSTARTTLS\n"))
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	line := func(r *bufio.Reader) string {
		nc.SetReadDeadline(time.Now().Add(waitTimeout))
		l, err := r.ReadString('\n')
		require.NoError(t, err)
		return l
	}
	assert.Equal(t, "one\n", line(br))
	id := recv(t, asked, "STARTTLS")
	require.NoError(t, s.UpgradeTLS(id, []byte("OK")))
	assert.Equal(t, "OK\n", line(br))
	require.Zero(t, br.Buffered())

	// The server now waits in its handshake: a send meanwhile waits too.
	c, err := s.client(id)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, gated := c.nc.(*tlsGate)
		return gated
	}, waitTimeout, tick)
	require.NoError(t, s.Send(id, []byte("early")))

	tc := tls.Client(nc, rawTLSConfig(t, p, 0))
	require.NoError(t, tc.Handshake())
	tr := bufio.NewReader(tc)
	assert.Equal(t, "early\n", line(tr), "sent during the handshake: over TLS")
	_, err = tc.Write([]byte("two\n"))
	require.NoError(t, err)
	assert.Equal(t, "two\n", line(tr))
	assert.Equal(t, []string{"one", "STARTTLS", "two"}, msgStrings(rs.messages(id)))
	info, err := s.TLSInfo(id)
	require.NoError(t, err)
	assert.Equal(t, "CN=tcpgo client,OU=test,O=tcpgo", info.PeerSubject())
}

// The other way round: a crypto/tls server behind a raw plain phase, and a
// tcpgo client.
func TestSTARTTLSRawPeerServer(t *testing.T) {
	p := newPKI(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	pair, err := tls.LoadX509KeyPair(p.server.Cert, p.server.Key)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(waitTimeout))
		br := bufio.NewReader(nc)
		if l, err := br.ReadString('\n'); err != nil || l != "STARTTLS\n" {
			served <- err
			return
		}
		nc.Write([]byte("OK\n"))
		tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{pair}})
		if err := tc.Handshake(); err != nil {
			served <- err
			return
		}
		l, err := bufio.NewReader(tc).ReadString('\n')
		if err == nil {
			_, err = tc.Write([]byte("pong to " + l))
		}
		served <- err
	}()
	rc := newRecorder("client")
	gotOK := make(chan struct{}, 1)
	rc.onMessage = func(_ int, data []byte) {
		if string(data) == "OK" {
			gotOK <- struct{}{}
		}
	}
	cl := newClient(t, stLines, rc)
	require.NoError(t, cl.Start("127.0.0.1", ln.Addr().(*net.TCPAddr).Port))
	require.NoError(t, cl.Send([]byte("STARTTLS")))
	recv(t, gotOK, "OK")
	require.NoError(t, cl.UpgradeTLS(TLSFiles{CA: p.client.CA}))
	require.NoError(t, cl.Send([]byte("ping")))
	require.NoError(t, recv(t, served, "the raw server"))
	rc.waitFor(t, func() bool { return len(rc.messages(0)) == 2 }, "pong")
	assert.Equal(t, "pong to ping", string(rc.messages(0)[1]))
}

// A failed upgrade closes the connection on both sides with CloseTLS.
func TestSTARTTLSFailure(t *testing.T) {
	p, stranger := newPKI(t, ""), newPKI(t, "")
	s, rs, _ := starttlsServer(t, p, true)
	rc := newRecorder("client")
	gotOK := make(chan struct{}, 1)
	rc.onMessage = func(_ int, data []byte) { gotOK <- struct{}{} }
	cl := newClient(t, stLines, rc)
	require.NoError(t, cl.Start("127.0.0.1", s.Port()))
	require.NoError(t, cl.Send([]byte("STARTTLS")))
	recv(t, gotOK, "OK")
	err := cl.UpgradeTLS(TLSFiles{CA: stranger.client.CA}) // trusts another CA
	requireCode(t, StartConnectInit, err)
	assert.Contains(t, err.Error(), "unknown authority")
	rc.waitFor(t, func() bool { return countEvents(rc, evClosed, 0) == 1 }, "client closed")
	require.NotEmpty(t, rc.errorsOf(0))
	assert.Equal(t, ErrHandshake, rc.errorsOf(0)[0].code)

	id := rs.waitEstablished(t, 1)[0]
	rs.waitClosed(t, id)
	require.NotEmpty(t, rs.errorsOf(id))
	assert.Equal(t, ErrHandshake, rs.errorsOf(id)[0].code)
	assert.Equal(t, uint64(1), s.Stats().HandshakeFailed)
	assert.False(t, cl.Running())
}

func TestSTARTTLSMisuse(t *testing.T) {
	p := newPKI(t, "")
	// A plain server without material.
	plain, prs := echoServer(t, stLines, testOptions())
	port := startServer(t, plain)
	cl := newClient(t, stLines, nil)
	requireCode(t, ErrNotRunning, cl.UpgradeTLS(p.client))
	require.NoError(t, cl.Start("127.0.0.1", port))
	id := prs.waitEstablished(t, 1)[0]
	requireCode(t, ErrInvalidArg, plain.UpgradeTLS(id, nil))
	requireCode(t, ErrNoClient, plain.UpgradeTLS(id+100, nil))
	requireCode(t, StartWrongCAPath, cl.UpgradeTLS(TLSFiles{CA: "/nonexistent"}))

	// Material set while running applies at once; a reply must frame.
	require.NoError(t, plain.SetUpgradeTLS(p.server))
	requireCode(t, ErrContainsDelimiter, plain.UpgradeTLS(id, []byte("a\nb")))
	require.NoError(t, plain.UpgradeTLS(id, nil))
	requireCode(t, ErrInvalidArg, plain.UpgradeTLS(id, nil), "already in progress")

	// Implicit TLS connections cannot be upgraded.
	s, rs := echoServer(t, stLines, testOptions())
	tport := startTLS(t, s, p.server)
	tc := newClient(t, stLines, nil)
	require.NoError(t, tc.StartTLS("127.0.0.1", tport, p.client))
	requireCode(t, ErrInvalidArg, s.UpgradeTLS(rs.waitEstablished(t, 1)[0], nil))
	requireCode(t, ErrInvalidArg, tc.UpgradeTLS(p.client))
}
