package engine

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 11, TLS: interoperability with the openssl command line tools
// (OpenSSL, not Go's crypto/tls, on the other side) for ALPN, SNI, session
// resumption and STARTTLS. Skipped when openssl is not installed.

const opensslTimeout = 15 * time.Second

func needOpenSSL(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
}

// sClient runs openssl s_client against our server with stdin as its input
// and returns what it printed. -ign_eof: it reads until the server closes,
// so the servers of these tests close after their reply.
func sClient(t testing.TB, port int, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opensslTimeout)
	defer cancel()
	args = append([]string{"s_client", "-connect", "127.0.0.1:" + strconv.Itoa(port), "-ign_eof"}, args...)
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, _ := cmd.CombinedOutput() // its status reflects how the server closed, not the handshake
	require.NoError(t, ctx.Err(), "openssl s_client did not finish:\n%s", out)
	return string(out)
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var acceptLine = regexp.MustCompile(`ACCEPT 127\.0\.0\.1:(\d+)`)

// sServer starts openssl s_server on a system-chosen loopback port (it
// prints the port) and stops it when the test ends.
func sServer(t testing.TB, args ...string) (int, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	cmd := exec.CommandContext(ctx, "openssl", append([]string{"s_server", "-accept", "127.0.0.1:0"}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe() // open: s_server reads its console from it
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		cancel() // kills the process we started
		cmd.Wait()
	})
	var port int
	require.Eventually(t, func() bool {
		m := acceptLine.FindStringSubmatch(out.String())
		if m != nil {
			port, _ = strconv.Atoi(m[1])
		}
		return m != nil
	}, waitTimeout, tick, "s_server did not start: %s", out)
	return port, out
}

// closingEcho is a server that echoes one message and closes.
func closingEcho(t testing.TB, f Framing, mod func(*Options)) (*Server, *recorder) {
	t.Helper()
	s, rs := tlsServer(t, f, mod)
	rs.onMessage = func(id int, data []byte) {
		_ = s.Send(id, data)
		go s.CloseClient(id) // waits (Linger) for the echo to be written
	}
	return s, rs
}

func TestOpenSSLClientALPN(t *testing.T) {
	needOpenSSL(t)
	p := newPKI(t, "")
	s, rs := closingEcho(t, stLines, func(o *Options) { o.TLS.ALPN = []string{"proto-b", "h2"} })
	port := startTLS(t, s, p.server)
	auth := []string{"-CAfile", p.client.CA, "-cert", p.client.Cert, "-key", p.client.Key, "-verify_return_error"}

	out := sClient(t, port, "ping\n", append(auth, "-alpn", "h2,proto-b")...)
	assert.Contains(t, out, "Verification: OK")
	assert.Contains(t, out, "ALPN protocol: proto-b", "the server's preference")
	assert.Contains(t, out, "ping\n", "the echo (s_client's own prints may interleave with it)")
	id := rs.waitEstablished(t, 1)[0]
	rs.waitClosed(t, id)

	out = sClient(t, port, "ping\n", append(auth, "-alpn", "nope")...)
	assert.NotContains(t, out, "ALPN protocol")
	assert.Contains(t, out, "no application protocol", "the server's alert")
	assert.Len(t, rs.established(), 1)
}

func TestOpenSSLServerALPN(t *testing.T) {
	needOpenSSL(t)
	p := newPKI(t, "")
	port, _ := sServer(t, "-cert", p.server.Cert, "-key", p.server.Key, "-alpn", "proto-b,h2", "-rev")
	for _, c := range []struct {
		offer []string
		want  string
	}{{[]string{"h2"}, "h2"}, {[]string{"x", "proto-b"}, "proto-b"}} {
		cl := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.ALPN = c.offer })
		require.NoError(t, cl.StartTLS("127.0.0.1", port, TLSFiles{CA: p.client.CA}))
		info, err := cl.TLSInfo()
		require.NoError(t, err)
		assert.Equal(t, c.want, info.ALPN)
		cl.Stop()
	}
}

// SNI: openssl s_client naming a server gets that name's certificate from
// ours, and our client naming one gets it from openssl s_server.
func TestOpenSSLSNI(t *testing.T) {
	needOpenSSL(t)
	def, alpha := newPKI(t, ""), newPKI(t, "alpha.test")
	s, _ := closingEcho(t, stLines, nil)
	require.NoError(t, s.AddCert("alpha.test", alpha.server))
	port := startTLS(t, s, TLSFiles{Cert: def.server.Cert, Key: def.server.Key})

	served := func(out string) string {
		i := strings.Index(out, "-----BEGIN CERTIFICATE-----")
		j := strings.Index(out, "-----END CERTIFICATE-----")
		require.True(t, i >= 0 && j > i, "no server certificate in:\n%s", out)
		return out[i : j+len("-----END CERTIFICATE-----\n")]
	}
	out := sClient(t, port, "x\n", "-servername", "alpha.test", "-CAfile", alpha.client.CA, "-verify_hostname", "alpha.test", "-verify_return_error")
	assert.Contains(t, out, "Verification: OK")
	assert.Equal(t, string(readFile(t, alpha.server.Cert)), served(out))
	out = sClient(t, port, "x\n", "-noservername", "-CAfile", def.client.CA, "-verify_return_error")
	assert.Equal(t, string(readFile(t, def.server.Cert)), served(out))

	// Our client: s_server picks -cert2 for -servername.
	sport, _ := sServer(t, "-cert", def.server.Cert, "-key", def.server.Key,
		"-servername", "alpha.test", "-cert2", alpha.server.Cert, "-key2", alpha.server.Key, "-rev")
	cl := tlsClient(t, Continuous{}, nil, func(o *Options) { o.TLS.ServerName = "alpha.test" })
	require.NoError(t, cl.StartTLS("127.0.0.1", sport, TLSFiles{CA: alpha.client.CA}), "verified against alpha.test")
	info, err := cl.TLSInfo()
	require.NoError(t, err)
	assert.Equal(t, readFile(t, alpha.server.Cert), info.PeerCertPEM())
}

// Resumption: s_client resumes with our server (-sess_out / -sess_in), our
// client resumes with s_server.
func TestOpenSSLResumption(t *testing.T) {
	needOpenSSL(t)
	p := newPKI(t, "")
	for _, v := range []string{"-tls1_3", "-tls1_2"} {
		t.Run(v, func(t *testing.T) {
			s, rs := closingEcho(t, stLines, func(o *Options) { o.TLSMinVersion = 0x0303 })
			var mu sync.Mutex
			var resumed []bool
			rs.onEstablished = func(id int) {
				info, err := s.TLSInfo(id)
				if err == nil {
					mu.Lock()
					resumed = append(resumed, info.Resumed)
					mu.Unlock()
				}
			}
			port := startTLS(t, s, p.server)
			sess := t.TempDir() + "/session.pem"
			auth := []string{v, "-CAfile", p.client.CA, "-cert", p.client.Cert, "-key", p.client.Key, "-verify_return_error"}
			out := sClient(t, port, "one\n", append(auth, "-sess_out", sess)...)
			assert.Contains(t, out, "New, TLSv1.")
			out = sClient(t, port, "two\n", append(auth, "-sess_in", sess)...)
			assert.Contains(t, out, "Reused, TLSv1.")
			assert.Contains(t, out, "two\n")
			rs.waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(resumed) == 2 }, "two connections")
			mu.Lock()
			assert.Equal(t, []bool{false, true}, resumed)
			mu.Unlock()
		})
	}

	port, _ := sServer(t, "-cert", p.server.Cert, "-key", p.server.Key, "-rev")
	rc := newRecorder("client")
	cl := newClient(t, stLines, rc)
	for i, want := range []bool{false, true} {
		require.NoError(t, cl.StartTLS("127.0.0.1", port, TLSFiles{CA: p.client.CA}))
		require.NoError(t, cl.Send([]byte("abc")))
		// The reply comes after the session ticket (TLS 1.3).
		rc.waitFor(t, func() bool { return len(rc.messages(0)) == i+1 }, "reply %d", i)
		assert.Equal(t, "cba", string(rc.messages(0)[i]))
		info, err := cl.TLSInfo()
		require.NoError(t, err)
		assert.Equal(t, want, info.Resumed, "connection %d", i+1)
		cl.Stop()
	}
}

// STARTTLS with openssl s_client -starttls smtp: our server speaks just
// enough SMTP (greeting, EHLO, STARTTLS), then upgrades with the "220"
// reply, and echoes lines over TLS.
func TestOpenSSLStartTLSSMTP(t *testing.T) {
	needOpenSSL(t)
	p := newPKI(t, "")
	smtp, err := NewTextLines([]byte("\r\n"), 1024, OverlongClose)
	require.NoError(t, err)
	rs := newRecorder("server")
	s := newServer(t, smtp, testOptions(), rs)
	rs.onEstablished = func(id int) {
		if n := rs.count(evEstablished, id); n == 1 {
			_ = s.Send(id, []byte("220 tcpgo ESMTP"))
		}
	}
	rs.onMessage = func(id int, data []byte) {
		switch line := string(data); {
		case strings.HasPrefix(line, "EHLO "):
			_ = s.Send(id, []byte("250-tcpgo greets "+line[5:]))
			_ = s.Send(id, []byte("250 STARTTLS"))
		case line == "STARTTLS":
			_ = s.UpgradeTLS(id, []byte("220 2.0.0 Ready to start TLS"))
		default:
			_ = s.Send(id, []byte("echo "+line))
			go s.CloseClient(id)
		}
	}
	require.NoError(t, s.SetUpgradeTLS(p.server))
	port := startServer(t, s)

	out := sClient(t, port, "ping\n", "-starttls", "smtp", "-CAfile", p.client.CA,
		"-cert", p.client.Cert, "-key", p.client.Key, "-verify_return_error", "-verify_hostname", "localhost")
	assert.Contains(t, out, "Verification: OK")
	assert.Contains(t, out, "New, TLSv1.3")
	assert.Contains(t, out, "echo ping")
	id := rs.waitEstablished(t, 1)[0]
	rs.waitClosed(t, id)
	msgs := msgStrings(rs.messages(id))
	require.Len(t, msgs, 3)
	assert.Equal(t, "EHLO mail.example.com", msgs[0])
	assert.Equal(t, []string{"STARTTLS", "ping"}, msgs[1:])
	assert.Equal(t, 2, rs.count(evEstablished, id), "established again after the upgrade")
}

// Our client's STARTTLS with OpenSSL as the TLS server: a relay speaks the
// plain phase ("STARTTLS" -> "OK"), then joins the connection to
// openssl s_server (-rev: it replies with each line reversed).
func TestOpenSSLClientStartTLS(t *testing.T) {
	needOpenSSL(t)
	p := newPKI(t, "")
	sport, _ := sServer(t, "-cert", p.server.Cert, "-key", p.server.Key, "-rev", "-naccept", "1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	relayed := make(chan error, 1)
	go func() { relayed <- relayStartTLS(ln, sport) }()

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
	require.NoError(t, cl.UpgradeTLS(TLSFiles{CA: p.client.CA}), "verified OpenSSL's certificate")
	require.NoError(t, cl.Send([]byte("hello openssl")))
	rc.waitFor(t, func() bool { return len(rc.messages(0)) == 2 }, "reply")
	assert.Equal(t, "lssnepo olleh", string(rc.messages(0)[1]))
	info, err := cl.TLSInfo()
	require.NoError(t, err)
	assert.True(t, info.Upgraded)
	assert.Equal(t, readFile(t, p.server.Cert), info.PeerCertPEM())
	cl.Stop()
	require.NoError(t, recv(t, relayed, "relay"))
}

// relayStartTLS serves one client: the plain phase itself, then bytes both
// ways between it and the TLS server on port.
func relayStartTLS(ln net.Listener, port int) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	br := bufio.NewReader(c)
	if l, err := br.ReadString('\n'); err != nil || l != "STARTTLS\n" {
		return err
	}
	c.SetReadDeadline(time.Time{})
	up, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	defer up.Close()
	if _, err := c.Write([]byte("OK\n")); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		io.Copy(c, up)
		c.Close()
		close(done)
	}()
	io.Copy(up, br) // ends when our client closes
	up.Close()
	<-done
	return nil
}
