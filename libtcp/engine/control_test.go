package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// extRec is a recorder that also hears close reasons, Ready and users.
type extRec struct {
	*recorder
	mu      sync.Mutex
	reasons map[int]CloseReason
	users   map[int]any
	ready   chan int
}

func newExtRec(name string) *extRec {
	return &extRec{recorder: newRecorder(name), reasons: map[int]CloseReason{}, users: map[int]any{}, ready: make(chan int, 64)}
}

func (e *extRec) MessageEx(id int, data []byte, _ bool, user any) {
	e.mu.Lock()
	e.users[id] = user
	e.mu.Unlock()
	e.recorder.Message(id, data)
}

func (e *extRec) ClosedEx(id int, reason CloseReason, _ any) {
	e.mu.Lock()
	e.reasons[id] = reason
	e.mu.Unlock()
	e.recorder.Closed(id)
}

func (e *extRec) Ready(id int, _ any) {
	select {
	case e.ready <- id:
	default:
	}
}

func (e *extRec) reason(id int) CloseReason {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reasons[id]
}

func extEchoServer(t *testing.T, f Framing, o Options) (*Server, *extRec) {
	t.Helper()
	r := newExtRec("server")
	s := newServer(t, f, o, r)
	r.onMessage = func(id int, data []byte) { _ = s.Send(id, data) }
	return s, r
}

// readLines reads '\n'-terminated lines until EOF or error.
func readLines(t *testing.T, c net.Conn) []string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	var out []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// A half-closing peer (HTTP/1.0 style) gets every reply that was accepted.
func TestHalfCloseRepliesDelivered(t *testing.T) {
	s, r := extEchoServer(t, NewDelimited('\n', 1024), testOptions())
	port := startServer(t, s)
	c := dial(t, port)
	var req bytes.Buffer
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&req, "request %d\n", i)
	}
	_, err := c.Write(req.Bytes())
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	lines := readLines(t, c)
	require.Len(t, lines, 500)
	assert.Equal(t, "request 499", lines[499])
	id := r.waitEstablished(t, 1)[0]
	r.waitClosed(t, id)
	assert.Equal(t, ClosePeer, r.reason(id))
	assert.Empty(t, r.errorsOf(id))
}

// With CloseOnEOF the connection closes at once on the peer's EOF.
func TestCloseOnEOF(t *testing.T) {
	o := testOptions()
	o.CloseOnEOF = true
	r := newExtRec("server")
	s := newServer(t, Continuous{}, o, r)
	port := startServer(t, s)
	c := dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	require.NoError(t, c.CloseWrite())
	r.waitClosed(t, id)
	assert.Equal(t, ClosePeer, r.reason(id))
}

// Replies to the messages before an oversized one still reach the peer.
func TestOversizedMessageFlushesRepliesFirst(t *testing.T) {
	s, r := extEchoServer(t, NewDelimited('\n', 16), testOptions())
	port := startServer(t, s)
	c := dial(t, port)
	var req bytes.Buffer
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&req, "ok %d\n", i)
	}
	req.WriteString(string(bytes.Repeat([]byte("x"), 100)) + "\n")
	_, err := c.Write(req.Bytes())
	require.NoError(t, err)
	lines := readLines(t, c)
	assert.Len(t, lines, 10)
	id := r.waitEstablished(t, 1)[0]
	r.waitClosed(t, id)
	assert.Equal(t, CloseMessageTooLong, r.reason(id))
	errs := r.errorsOf(id)
	require.Len(t, errs, 1)
	assert.Equal(t, ErrMessageTooLong, errs[0].code)
}

// A peer that sends a long message without end is closed once it holds
// more than its share of the budget; others keep being served.
func TestMemoryBudgetClosesHog(t *testing.T) {
	o := testOptions()
	o.MemoryBudget = 256 << 10
	s, r := extEchoServer(t, NewDelimited('\n', 16<<20), o)
	port := startServer(t, s)
	good := dial(t, port)
	goodID := r.waitEstablished(t, 1)[0]
	hog := dial(t, port)
	hogID := r.waitEstablished(t, 2)[1]
	go func() {
		chunk := bytes.Repeat([]byte("h"), 64<<10)
		for i := 0; i < 64; i++ {
			if _, err := hog.Write(chunk); err != nil {
				return
			}
		}
	}()
	r.waitClosed(t, hogID)
	assert.Equal(t, CloseMemoryBudget, r.reason(hogID))
	assert.Equal(t, uint64(1), s.Stats().ClosedForLimits)
	assert.Equal(t, 0, r.count(evClosed, goodID))
	_, err := good.Write([]byte("still here\n"))
	require.NoError(t, err)
	good.SetReadDeadline(time.Now().Add(waitTimeout))
	line, err := bufio.NewReader(good).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "still here\n", line)
	r.waitFor(t, func() bool { return s.Stats().MemoryUsed == 0 }, "budget given back")
}

func TestIdleTimeout(t *testing.T) {
	o := testOptions()
	o.IdleTimeout = 100 * time.Millisecond
	s, r := extEchoServer(t, Continuous{}, o)
	port := startServer(t, s)
	dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	start := time.Now()
	r.waitClosed(t, id)
	assert.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)
	assert.Equal(t, CloseIdleTimeout, r.reason(id))
	assert.Equal(t, uint64(1), s.Stats().TimedOut)
	require.Len(t, r.errorsOf(id), 1)
	assert.Equal(t, ErrTimeout, r.errorsOf(id)[0].code)
}

func TestSetIdleTimeoutPerConnection(t *testing.T) {
	s, r := extEchoServer(t, Continuous{}, testOptions())
	port := startServer(t, s)
	dial(t, port)
	dial(t, port)
	ids := r.waitEstablished(t, 2)
	require.NoError(t, s.SetIdleTimeout(ids[0], 50*time.Millisecond))
	r.waitClosed(t, ids[0])
	assert.Equal(t, CloseIdleTimeout, r.reason(ids[0]))
	assert.Equal(t, 0, r.count(evClosed, ids[1]), "the other connection has no idle timeout")
}

func TestMessageTimeout(t *testing.T) {
	o := testOptions()
	o.MessageTimeout = 100 * time.Millisecond
	s, r := extEchoServer(t, NewDelimited('\n', 1024), o)
	port := startServer(t, s)
	c := dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	_, err := c.Write([]byte("complete\npart"))
	require.NoError(t, err)
	r.waitClosed(t, id)
	assert.Equal(t, CloseMessageTimeout, r.reason(id))
	assert.Equal(t, [][]byte{[]byte("complete")}, r.messages(id))
}

// expectRefused checks that a connection to port is closed without a byte
// (refused connections are reset: the dial itself may see it).
func expectRefused(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), waitTimeout)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	n, err := c.Read(make([]byte, 1))
	assert.Equal(t, 0, n)
	assert.Error(t, err)
}

func TestMaxConnections(t *testing.T) {
	o := testOptions()
	o.MaxConnections = 2
	s, r := extEchoServer(t, Continuous{}, o)
	port := startServer(t, s)
	dial(t, port)
	dial(t, port)
	r.waitEstablished(t, 2)
	expectRefused(t, port)
	r.waitFor(t, func() bool { return s.Stats().RefusedLimit == 1 }, "refused_limit counted")
	r.waitFor(t, func() bool { return len(r.errorsOf(0)) == 1 }, "error event")
	assert.Equal(t, ErrRefused, r.errorsOf(0)[0].code)
	assert.Len(t, r.established(), 2)
}

func TestAllowedAndBlockedLists(t *testing.T) {
	s, r := extEchoServer(t, Continuous{}, testOptions())
	port := startServer(t, s)
	blocked, err := ParseAddrList("10.0.0.0/8, 127.0.0.0/30")
	require.NoError(t, err)
	s.SetBlocked(blocked)
	expectRefused(t, port)
	s.SetBlocked(nil)
	allowed, err := ParseAddrList("192.168.0.0/16 ::1")
	require.NoError(t, err)
	s.SetAllowed(allowed)
	expectRefused(t, port)
	allowed, err = ParseAddrList("::ffff:127.0.0.1")
	require.NoError(t, err)
	s.SetAllowed(allowed) // a mapped address matches IPv4
	dial(t, port)
	r.waitEstablished(t, 1)
	assert.Equal(t, int64(2), s.stats.refused.Load())
	_, err = ParseAddrList("10.0.0.0/8, not-an-address")
	requireCode(t, ErrInvalidArg, err)
}

func TestAcceptFunc(t *testing.T) {
	s, r := extEchoServer(t, Continuous{}, testOptions())
	port := startServer(t, s)
	type seen struct {
		ip          string
		port, local int
	}
	calls := make(chan seen, 4)
	var refuse atomic.Bool
	s.SetAcceptFunc(func(ip string, p, local int) bool {
		calls <- seen{ip, p, local}
		return !refuse.Load()
	})
	c := dial(t, port)
	got := recv(t, calls, "accept call")
	assert.Equal(t, "127.0.0.1", got.ip)
	assert.Equal(t, c.LocalAddr().(*net.TCPAddr).Port, got.port)
	assert.Equal(t, port, got.local)
	r.waitEstablished(t, 1)
	refuse.Store(true)
	expectRefused(t, port)
	recv(t, calls, "second accept call")
	assert.Len(t, r.established(), 1)
}

// A peer that does not read makes sends report a full queue; Ready comes
// once it reads again.
func TestQueueFullThenReady(t *testing.T) {
	o := testOptions()
	o.SendQueueLimit = 64 << 10
	o.SendLowWater = 0
	r := newExtRec("server")
	s := newServer(t, Continuous{}, o, r)
	port := startServer(t, s)
	c := dial(t, port) // (a tiny SO_RCVBUF would stall loopback TCP below its MSS)
	id := r.waitEstablished(t, 1)[0]
	chunk := bytes.Repeat([]byte("q"), 16<<10)
	var err error
	sent := 0
	for i := 0; i < 10000 && err == nil; i++ {
		if err = s.Send(id, chunk); err == nil {
			sent += len(chunk)
		}
	}
	requireCode(t, ErrQueueFull, err)
	q, err := s.Queued(id)
	require.NoError(t, err)
	assert.Greater(t, q, 0)
	go io.CopyN(io.Discard, c, int64(sent))
	assert.Equal(t, id, recv(t, r.ready, "ready"))
	require.NoError(t, s.Send(id, chunk), "sending works again")
}

func TestPauseResume(t *testing.T) {
	r := newExtRec("server")
	s := newServer(t, NewDelimited('\n', 1024), testOptions(), r)
	paused := make(chan struct{})
	r.onEstablished = func(id int) {
		require.NoError(t, s.Pause(id))
		close(paused)
	}
	port := startServer(t, s)
	c := dial(t, port)
	recv(t, paused, "paused")
	id := r.established()[0]
	for i := 0; i < 5; i++ {
		fmt.Fprintf(c, "m%d\n", i)
	}
	// No event can tell that nothing happened: give delivery a fair chance.
	time.Sleep(200 * time.Millisecond)
	assert.Empty(t, r.messages(id), "nothing delivered while paused")
	require.NoError(t, s.Resume(id))
	r.waitFor(t, func() bool { return len(r.messages(id)) == 5 }, "five messages")
	for i, m := range r.messages(id) {
		assert.Equal(t, "m"+strconv.Itoa(i), string(m))
	}
}

func TestShutdownDeliversQueued(t *testing.T) {
	o := testOptions()
	o.SendQueueLimit, o.MemoryBudget = 0, 0
	r := newExtRec("server")
	s := newServer(t, Continuous{}, o, r)
	port := startServer(t, s)
	c := dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	payload := bytes.Repeat([]byte("s"), 8<<20) // more than the kernel buffers
	require.NoError(t, s.Send(id, payload))
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(c)
		done <- b
	}()
	require.NoError(t, s.Shutdown(waitTimeout))
	got := recv(t, done, "peer read everything")
	assert.Len(t, got, len(payload))
	assert.Equal(t, CloseStopped, r.reason(id))
}

func TestStopListeningKeepsConnections(t *testing.T) {
	s, r := extEchoServer(t, NewDelimited('\n', 1024), testOptions())
	port := startServer(t, s)
	c := dial(t, port)
	r.waitEstablished(t, 1)
	require.NoError(t, s.StopListening())
	_, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	assert.Error(t, err, "no longer listening")
	fmt.Fprint(c, "hi\n")
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "hi\n", line)
	assert.True(t, s.Running())
}

type connectRec struct {
	*extRec
	attempts chan error
}

func (c *connectRec) Connect(attempt int, err error) { c.attempts <- err }

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	o := testOptions()
	s, rs := extEchoServer(t, NewDelimited('\n', 1024), o)
	port := startServer(t, s)
	co := testOptions()
	co.BindAddress = ""
	co.Reconnect = true
	co.ReconnectMin = 20 * time.Millisecond
	co.ReconnectMax = 100 * time.Millisecond
	cr := &connectRec{extRec: newExtRec("client"), attempts: make(chan error, 100)}
	cl := NewClient(NewDelimited('\n', 1024), co, cr)
	t.Cleanup(cl.Stop)
	require.NoError(t, cl.Start("127.0.0.1", port))
	rs.waitEstablished(t, 1)
	s.Stop()
	cr.waitFor(t, func() bool { return cr.count(evClosed, 0) == 1 }, "client closed")
	require.Error(t, recv(t, cr.attempts, "a failed attempt while the server is down"))
	require.NoError(t, s.Start(port))
	for err := range cr.attempts {
		if err == nil {
			break
		}
	}
	require.NoError(t, cl.Send([]byte("again")))
	cr.waitFor(t, func() bool { return len(cr.messages(0)) == 1 }, "echo after reconnect")
	assert.True(t, cl.Running())
	cl.Stop()
	select {
	case err := <-cr.attempts:
		t.Fatalf("attempt after Stop: %v", err)
	case <-time.After(150 * time.Millisecond):
	}
}

func TestStatsCount(t *testing.T) {
	s, r := extEchoServer(t, NewDelimited('\n', 1024), testOptions())
	port := startServer(t, s)
	c := dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	fmt.Fprint(c, "abc\nde\n")
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	br := bufio.NewReader(c)
	br.ReadString('\n')
	br.ReadString('\n')
	// The writer counts its bytes after the write returned, which may be
	// after the peer read them.
	var cs ConnStats
	require.Eventually(t, func() bool {
		var err error
		cs, err = s.ConnStats(id)
		return err == nil && cs.BytesOut == 7
	}, waitTimeout, tick, "bytes out counted")
	assert.Equal(t, uint64(2), cs.MsgsIn)
	assert.Equal(t, uint64(5), cs.BytesIn)
	assert.Equal(t, uint64(2), cs.MsgsOut)
	assert.Equal(t, uint64(7), cs.BytesOut)
	assert.WithinDuration(t, time.Now(), cs.Connected, waitTimeout)
	st := s.Stats()
	assert.Equal(t, uint64(1), st.Active)
	assert.Equal(t, uint64(1), st.Accepted)
	assert.Equal(t, uint64(1), st.Established)
}

func TestUserValueReachesExtendedEvents(t *testing.T) {
	r := newExtRec("server")
	s := newServer(t, Continuous{}, testOptions(), r)
	r.onEstablished = func(id int) { require.NoError(t, s.SetUser(id, "state of "+strconv.Itoa(id))) }
	port := startServer(t, s)
	c := dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	c.Write([]byte("x"))
	r.waitFor(t, func() bool { return len(r.messages(id)) > 0 }, "message")
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Equal(t, "state of "+strconv.Itoa(id), r.users[id])
}

func TestErrorTextSaysEachThingOnce(t *testing.T) {
	inner := newError(StartConnect, nil, "connect to 127.0.0.1:1")
	outer := newError(StartConnect, inner, "")
	assert.Equal(t, "connection to the server failed: connect to 127.0.0.1:1", outer.Error())
	wrapped := newError(StartConnect, inner, "attempt 3")
	assert.Equal(t, "connection to the server failed: attempt 3: connect to 127.0.0.1:1", wrapped.Error())
	io := newError(ErrIO, os.NewSyscallError("read", syscall.ECONNRESET), "read")
	assert.Equal(t, "connection read or write failed: read: connection reset by peer", io.Error())
	assert.ErrorIs(t, io, syscall.ECONNRESET)
}

// Connections the kernel completed but nobody accepted yet are taken from
// the listen queue before the listener closes (StopListening), instead of
// being reset.
func TestTakeBacklogAcceptsQueuedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var clients []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
		require.NoError(t, err)
		defer c.Close()
		clients = append(clients, c)
	}
	var taken []net.Conn
	deadline := time.Now().Add(5 * time.Second)
	for len(taken) < len(clients) && time.Now().Before(deadline) {
		taken = append(taken, takeBacklog(ln)...) // the kernel may finish a handshake late
	}
	require.Len(t, taken, len(clients))
	ln.Close()
	seen := map[string]bool{}
	for _, sc := range taken {
		defer sc.Close()
		seen[sc.RemoteAddr().String()] = true
	}
	for i, c := range clients {
		require.True(t, seen[c.LocalAddr().String()], "client %d not taken", i)
		_, err := c.Write([]byte{byte('a' + i)})
		require.NoError(t, err)
	}
	for _, sc := range taken {
		require.NoError(t, sc.SetReadDeadline(time.Now().Add(2*time.Second)))
		var b [1]byte
		_, err := io.ReadFull(sc, b[:])
		require.NoError(t, err, "a taken connection must still be open")
	}
}

// A send refused while the connection was corked (the reader delivering a
// read's messages, or an event-queue poller's batch): the uncork writes
// everything at once, with no writer goroutine to notice the drain, and
// must deliver Ready itself. (tcpgo.aio's drain() waited forever.)
func TestReadyAfterUncorkWritesEverything(t *testing.T) {
	o := testOptions()
	o.SendQueueLimit = 4 << 10
	o.SendLowWater = 0
	r := newExtRec("server")
	s := newServer(t, Continuous{}, o, r)
	port := startServer(t, s)
	c := dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	cn, err := s.client(id)
	require.NoError(t, err)
	cn.cork()
	chunk := bytes.Repeat([]byte("u"), 3<<10)
	require.NoError(t, s.Send(id, chunk))
	requireCode(t, ErrQueueFull, s.Send(id, chunk))
	go io.CopyN(io.Discard, c, int64(len(chunk)))
	cn.uncork() // the socket takes 3 KiB at once: no writer starts
	assert.Equal(t, id, recv(t, r.ready, "ready"))
}
