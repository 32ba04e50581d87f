package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// dialer spreads connections over source addresses 127.0.0.2, .3, ... so
// that thousands of connections (and the TIME_WAIT of churn) do not run out
// of the ephemeral ports of one address, and caps the dials in progress so
// that a burst does not overflow the SYN backlog.
type dialer struct {
	addr    string
	sources []net.IP
	next    atomic.Uint64
	slots   chan struct{}
	timeout time.Duration
}

func newDialer(addr string, nsources, parallel int) *dialer {
	d := &dialer{addr: addr, slots: make(chan struct{}, parallel), timeout: 10 * time.Second}
	for i := 0; i < nsources; i++ {
		d.sources = append(d.sources, net.IPv4(127, 0, byte(i/250), byte(2+i%250)))
	}
	return d
}

// dial connects from the next source address; rcvbuf > 0 sets SO_RCVBUF
// before the connection starts (so the window stays small).
func (d *dialer) dial(ctx context.Context, rcvbuf int) (*net.TCPConn, error) {
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-d.slots }()
	nd := net.Dialer{Timeout: d.timeout}
	if len(d.sources) > 0 {
		src := d.sources[d.next.Add(1)%uint64(len(d.sources))]
		nd.LocalAddr = &net.TCPAddr{IP: src}
	}
	if rcvbuf > 0 {
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// resetClose closes with SO_LINGER 0: the peer sees a reset, not a FIN.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// closeOnCancel closes c when ctx ends, which unblocks any read or write.
func closeOnCancel(ctx context.Context, c net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = c.Close() })
}

// payload returns n random bytes without the delimiter: the echo checks
// cover every byte value but '\n'.
func payload(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		x := byte(rng.Uint32())
		if x == '\n' {
			x = 'N'
		}
		b[i] = x
	}
	return b
}

// echoConn is a well-behaved client: it sends messages and checks that each
// echo comes back byte for byte, in order.
type echoConn struct {
	c net.Conn
	r *bufio.Reader
}

func newEchoConn(c net.Conn) *echoConn {
	return &echoConn{c: c, r: bufio.NewReaderSize(c, 128<<10)}
}

// roundTrip writes msgs (each followed by '\n') in one write and reads
// their echoes, all within timeout.
func (e *echoConn) roundTrip(msgs [][]byte, timeout time.Duration) error {
	var out []byte
	for _, m := range msgs {
		out = append(out, m...)
		out = append(out, '\n')
	}
	_ = e.c.SetDeadline(time.Now().Add(timeout))
	if _, err := e.c.Write(out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	for i, m := range msgs {
		if err := e.expect(m); err != nil {
			return fmt.Errorf("echo %d of %d: %w", i+1, len(msgs), err)
		}
	}
	return nil
}

// expect reads one echoed line and compares it with m.
func (e *echoConn) expect(m []byte) error {
	line, err := e.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// longer than the buffer: collect it
		buf := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = e.r.ReadSlice('\n')
			buf = append(buf, line...)
		}
		line = buf
	}
	if err != nil {
		if len(line) > 0 {
			return fmt.Errorf("read after %d bytes of %d: %w", len(line), len(m)+1, err)
		}
		return fmt.Errorf("read: %w", err)
	}
	got := line[:len(line)-1]
	if !bytes.Equal(got, m) {
		at := 0
		for at < len(got) && at < len(m) && got[at] == m[at] {
			at++
		}
		return fmt.Errorf("wrong echo: %d bytes, want %d, first difference at byte %d", len(got), len(m), at)
	}
	return nil
}

// expectEOF checks that the server closes the connection next.
func (e *echoConn) expectEOF(timeout time.Duration) error {
	_ = e.c.SetReadDeadline(time.Now().Add(timeout))
	n, err := io.Copy(io.Discard, e.r)
	if err == nil && n == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("waiting for the end: %w", err)
	}
	return fmt.Errorf("%d unexpected bytes before the end", n)
}

// isTimeout says whether err is a deadline that expired.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// tlsClientConfig trusts dir/ca.pem and presents dir/client.pem (when
// withCert).
func tlsClientConfig(dir string, withCert bool) (*tls.Config, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s/ca.pem: no certificate", dir)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if withCert {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"))
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// tlsHandshake runs a client handshake over c within timeout.
func tlsHandshake(ctx context.Context, c net.Conn, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// waitClosedByServer reads (and discards) until the server closes c or
// timeout passes; it reports whether the server closed it.
func waitClosedByServer(c net.Conn, timeout time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, c)
	return !isTimeout(err)
}
