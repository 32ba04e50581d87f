package engine

// The TLS read path (tlsread.go): a quiet connection probes what crypto/tls
// buffered, then waits for readability on the raw socket holding no buffer.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// holdConn passes writes through until hold is set; then it keeps them
// until flush, which sends them in one write (several TLS records in one
// TCP segment, or a record cut where the test wants).
type holdConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  bytes.Buffer
}

func (h *holdConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hold {
		return h.buf.Write(p)
	}
	return h.Conn.Write(p)
}

// flush writes n held bytes (all when n < 0) in one write.
func (h *holdConn) flush(t testing.TB, n int) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if n < 0 || n > h.buf.Len() {
		n = h.buf.Len()
	}
	_, err := h.Conn.Write(h.buf.Next(n))
	require.NoError(t, err)
}

// tlsReadServer starts an echo server over mutual TLS with delimited
// framing; the peer is a crypto/tls client over a holdConn.
func tlsReadServer(t *testing.T, o Options) (*Server, *extRec, *tls.Conn, *holdConn, int) {
	t.Helper()
	p := newPKI(t, "")
	s, r := extEchoServer(t, NewDelimited('\n', 1<<20), o)
	port := startTLS(t, s, p.server)
	nc := dial(t, port)
	hc := &holdConn{Conn: nc}
	tc := tls.Client(hc, rawTLSConfig(t, p, 0))
	tc.SetDeadline(time.Now().Add(waitTimeout))
	require.NoError(t, tc.Handshake())
	id := r.waitEstablished(t, 1)[0]
	return s, r, tc, hc, id
}

func readEcho(t testing.TB, br *bufio.Reader, want string) {
	t.Helper()
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, want+"\n", line)
}

// Several records in one segment: after the first (a short read) the rest
// sit in crypto/tls's buffer, not in the socket; the probe must find them.
func TestTLSReadRecordsBufferedBehindShortRead(t *testing.T) {
	_, r, tc, hc, id := tlsReadServer(t, testOptions())
	br := bufio.NewReader(tc)
	for round := 0; round < 3; round++ {
		hc.mu.Lock()
		hc.hold = true
		hc.mu.Unlock()
		var want []string
		for i := 0; i < 5; i++ { // one record per Write
			m := fmt.Sprintf("r%d-m%d", round, i)
			want = append(want, m)
			_, err := tc.Write([]byte(m + "\n"))
			require.NoError(t, err)
		}
		hc.flush(t, -1)
		hc.mu.Lock()
		hc.hold = false
		hc.mu.Unlock()
		for _, m := range want {
			readEcho(t, br, m)
		}
	}
	assert.Len(t, r.messages(id), 15)
}

// A record cut in two: the probe meets half a record (crypto/tls must keep
// it and not fail the connection), the wait ends when the rest comes.
func TestTLSReadRecordSplitAcrossReads(t *testing.T) {
	_, r, tc, hc, id := tlsReadServer(t, testOptions())
	br := bufio.NewReader(tc)
	readEcho(t, br, func() string { // a first exchange makes the connection quiet
		_, err := tc.Write([]byte("first\n"))
		require.NoError(t, err)
		return "first"
	}())
	for _, cut := range []int{1, 3, 5, 6, 20} { // inside the header, at its end, in the body
		hc.mu.Lock()
		hc.hold = true
		hc.mu.Unlock()
		m := "split-at-" + strconv.Itoa(cut)
		_, err := tc.Write([]byte(m + "\n"))
		require.NoError(t, err)
		hc.flush(t, cut)
		// Nothing tells that the server read the first part: give it a
		// fair chance (the test passes either way, it covers more if so).
		time.Sleep(20 * time.Millisecond)
		hc.flush(t, -1)
		hc.mu.Lock()
		hc.hold = false
		hc.mu.Unlock()
		readEcho(t, br, m)
	}
	// And a big message (many full records) after the quiet ones.
	big := strings.Repeat("b", 100<<10)
	_, err := tc.Write([]byte(big + "\n"))
	require.NoError(t, err)
	readEcho(t, br, big)
	assert.Len(t, r.messages(id), 7)
}

// An idle TLS connection's reader waits outside crypto/tls (on the raw
// socket), and holds no read buffer.
func TestTLSReadIdleWaitsOnSocket(t *testing.T) {
	_, _, tc, _, _ := tlsReadServer(t, testOptions())
	br := bufio.NewReader(tc)
	_, err := tc.Write([]byte("hello\n"))
	require.NoError(t, err)
	readEcho(t, br, "hello")
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range bytes.Split(buf, []byte("\n\n")) {
			if bytes.Contains(g, []byte("engine.(*conn).readTLS(")) && bytes.Contains(g, []byte("net.(*rawConn).Read")) &&
				!bytes.Contains(g, []byte("crypto/tls.")) {
				return true
			}
		}
		return false
	}, waitTimeout, tick, "the server's reader parked in the raw socket's wait")
}

// The idle timeout still fires on time while the reader waits on the raw
// socket, and messages before it keep the connection alive.
func TestTLSReadIdleTimeout(t *testing.T) {
	o := testOptions()
	o.IdleTimeout = 200 * time.Millisecond
	s, r, tc, _, id := tlsReadServer(t, o)
	br := bufio.NewReader(tc)
	var last time.Time
	for i := 0; i < 6; i++ { // 5 x 60 ms: longer than the timeout in all
		if i > 0 {
			time.Sleep(60 * time.Millisecond)
		}
		m := "keep" + strconv.Itoa(i)
		last = time.Now()
		_, err := tc.Write([]byte(m + "\n"))
		require.NoError(t, err)
		readEcho(t, br, m)
	}
	assert.Equal(t, 0, r.count(evClosed, id), "messages kept it alive")
	r.waitClosed(t, id)
	assert.GreaterOrEqual(t, time.Since(last), 150*time.Millisecond)
	assert.Equal(t, CloseIdleTimeout, r.reason(id))
	assert.Equal(t, uint64(1), s.Stats().TimedOut)
}

// A per-connection idle timeout set while the reader waits applies to that
// wait; 0 removes it again.
func TestTLSReadSetIdleWhileWaiting(t *testing.T) {
	o := testOptions()
	o.IdleTimeout = 100 * time.Millisecond
	s, r, tc, _, id := tlsReadServer(t, o)
	br := bufio.NewReader(tc)
	require.NoError(t, s.SetIdleTimeout(id, 0))
	_, err := tc.Write([]byte("x\n"))
	require.NoError(t, err)
	readEcho(t, br, "x")
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, 0, r.count(evClosed, id), "no idle timeout any more")
	start := time.Now()
	require.NoError(t, s.SetIdleTimeout(id, 50*time.Millisecond))
	r.waitClosed(t, id)
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond)
	assert.Equal(t, CloseIdleTimeout, r.reason(id))
}

// Pause while the reader waits quietly: no delivery and no idle timeout
// while paused; resume delivers in order and re-arms the timeout.
func TestTLSReadPauseResume(t *testing.T) {
	o := testOptions()
	o.IdleTimeout = 150 * time.Millisecond
	s, r, tc, _, id := tlsReadServer(t, o)
	br := bufio.NewReader(tc)
	_, err := tc.Write([]byte("before\n"))
	require.NoError(t, err)
	readEcho(t, br, "before")
	require.NoError(t, s.Pause(id))
	for i := 0; i < 5; i++ {
		fmt.Fprintf(tc, "m%d\n", i)
	}
	time.Sleep(400 * time.Millisecond) // more than the idle timeout
	assert.Equal(t, 0, r.count(evClosed, id), "no idle timeout while paused")
	assert.Len(t, r.messages(id), 1, "nothing delivered while paused")
	require.NoError(t, s.Resume(id))
	for i := 0; i < 5; i++ {
		readEcho(t, br, "m"+strconv.Itoa(i))
	}
	start := time.Now()
	r.waitClosed(t, id)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	assert.Equal(t, CloseIdleTimeout, r.reason(id))
	got := r.messages(id)
	require.Len(t, got, 6)
	for i, m := range got[1:] {
		assert.Equal(t, "m"+strconv.Itoa(i), string(m))
	}
}

// Closing a connection whose reader waits on the socket, from either side.
func TestTLSReadCloseWhileWaiting(t *testing.T) {
	s, r, tc, _, id := tlsReadServer(t, testOptions())
	br := bufio.NewReader(tc)
	_, err := tc.Write([]byte("x\n"))
	require.NoError(t, err)
	readEcho(t, br, "x")
	require.NoError(t, s.CloseClient(id))
	r.waitClosed(t, id)
	_, err = br.ReadString('\n')
	assert.Error(t, err, "the peer sees the end")

	_, r2, tc2, _, id2 := tlsReadServer(t, testOptions())
	br2 := bufio.NewReader(tc2)
	_, err = tc2.Write([]byte("y\n"))
	require.NoError(t, err)
	readEcho(t, br2, "y")
	require.NoError(t, tc2.Close()) // close_notify, then FIN
	r2.waitClosed(t, id2)
	assert.Equal(t, ClosePeer, r2.reason(id2))
}
