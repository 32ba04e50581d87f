package engine

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientStartCodes(t *testing.T) {
	cl := newClient(t, Continuous{}, nil)
	for _, port := range []int{0, -1, 65536} {
		requireCode(t, StartWrongPort, cl.Start("127.0.0.1", port), "port %d", port)
	}
	err := cl.Start("127.0.0.1", freePort(t))
	requireCode(t, StartConnect, err, "refused")
	assert.False(t, cl.Running())

	s, _ := echoServer(t, Continuous{}, testOptions())
	port := startServer(t, s)
	require.NoError(t, cl.Start("127.0.0.1", port))
	requireCode(t, ErrAlreadyRunning, cl.Start("127.0.0.1", port))
	requireCode(t, ErrAlreadyRunning, cl.SetOptions(testOptions()))
	requireCode(t, ErrAlreadyRunning, cl.SetHandler(nil))
	assert.True(t, cl.Running())
	cl.Stop()
	cl.Stop() // idempotent
	require.NoError(t, cl.SetOptions(testOptions()))
	NewClient(nil, testOptions(), nil).Stop() // never started
}

func TestClientSendErrors(t *testing.T) {
	f := NewDelimited('\n', 8)
	s, _ := echoServer(t, f, testOptions())
	port := startServer(t, s)
	rc := newRecorder("client")
	cl := newClient(t, f, rc)
	requireCode(t, ErrNotRunning, cl.Send([]byte("x")), "never started")
	_, err := cl.LocalPort()
	requireCode(t, ErrNotRunning, err)
	_, err = cl.ServerSubjectPart(NIDCommonName)
	requireCode(t, ErrNotRunning, err)

	require.NoError(t, cl.Start("127.0.0.1", port))
	requireCode(t, ErrMessageTooLong, cl.Send([]byte("123456789")))
	requireCode(t, ErrContainsDelimiter, cl.Send([]byte("a\nb")))
	_, err = cl.ServerSubjectPart(NIDCommonName)
	requireCode(t, ErrNoField, err, "plain TCP")
	exchange(t, f, cl, rc, []string{"12345678", ""})
	cl.Stop()
	requireCode(t, ErrNotRunning, cl.Send([]byte("x")))
}

func TestClientNoticesServerStop(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			s, rs := echoServer(t, m.f, testOptions())
			port := startServer(t, s)
			rc := newRecorder("client")
			cl := newClient(t, m.f, rc)
			require.NoError(t, cl.Start("127.0.0.1", port))
			rs.waitEstablished(t, 1)
			s.Stop()
			rc.waitClosed(t, 0)
			require.Eventually(t, func() bool { return !cl.Running() }, waitTimeout, tick)
			requireCode(t, ErrNotRunning, cl.Send([]byte("x")))
			cl.Stop()
			assert.Equal(t, 1, rc.closedCount())
			assert.Empty(t, rc.errorsOf(0), "an orderly close is not an error")
			rc.checkOrder(t, false, true)
		})
	}
}

func TestClientStopDeliversClosedOnce(t *testing.T) {
	f := NewDelimited('\n', 64)
	s, rs := echoServer(t, f, testOptions())
	port := startServer(t, s)
	rc := newRecorder("client")
	cl := newClient(t, f, rc)
	for round := 1; round <= 3; round++ {
		require.NoError(t, cl.Start("127.0.0.1", port))
		id := rs.waitEstablished(t, round)[round-1]
		for i := 0; i < 100; i++ {
			require.NoError(t, cl.Send([]byte("in flight")))
		}
		cl.Stop()
		assert.Equal(t, round, rc.closedCount(), "closed before Stop returns, once per start")
		assert.False(t, cl.Running())
		rs.waitClosed(t, id)
	}
	rc.sealed.Store(true)
	assert.Equal(t, 0, s.Broadcast([]byte("nobody")))
	rc.checkOrder(t, false, true)
}

func TestClientStopFromHandler(t *testing.T) {
	f := NewDelimited('\n', 64)
	r := newRecorder("server")
	s := newServer(t, f, testOptions(), r)
	r.onEstablished = func(id int) {
		_ = s.Send(id, []byte("first"))
		_ = s.Send(id, []byte("bye"))
		_ = s.Send(id, []byte("never seen"))
	}
	port := startServer(t, s)

	rc := newRecorder("client")
	cl := newClient(t, f, rc)
	stopped := make(chan struct{})
	rc.onMessage = func(_ int, data []byte) {
		if string(data) == "bye" {
			cl.Stop()
			assert.False(t, cl.Running())
			assert.Equal(t, ErrNotRunning, CodeOf(cl.Send([]byte("x"))))
			close(stopped)
		}
	}
	require.NoError(t, cl.Start("127.0.0.1", port))
	recv(t, stopped, "Stop from the message handler to return")
	rc.waitClosed(t, 0)
	cl.Stop()
	assert.Equal(t, 1, rc.closedCount())
	msgs := rc.messages(0)
	assert.Equal(t, [][]byte{[]byte("first"), []byte("bye")}, msgs, "no message after Stop")
	rc.checkOrder(t, false, true)
	r.waitClosed(t, r.established()[0])
}

func TestClientOversizedMessageFromServer(t *testing.T) {
	r := newRecorder("server")
	s := newServer(t, Continuous{}, testOptions(), r)
	port := startServer(t, s)
	rc := newRecorder("client")
	cl := newClient(t, NewDelimited('\n', 8), rc)
	require.NoError(t, cl.Start("127.0.0.1", port))
	id := r.waitEstablished(t, 1)[0]
	require.NoError(t, s.Send(id, []byte("ok\n123456789\nlater\n")))
	rc.waitClosed(t, 0)
	assert.Equal(t, [][]byte{[]byte("ok")}, rc.messages(0))
	errs := rc.errorsOf(0)
	require.Len(t, errs, 1)
	assert.Equal(t, ErrMessageTooLong, errs[0].code)
	require.Eventually(t, func() bool { return !cl.Running() }, waitTimeout, tick)
	r.waitClosed(t, id)
	rc.checkOrder(t, false, true)
}

func TestClientLocalPortAndHostName(t *testing.T) {
	s, rs := echoServer(t, Continuous{}, testOptions())
	port := startServer(t, s)
	cl := newClient(t, Continuous{}, nil)
	require.NoError(t, cl.Start("localhost", port), "host names resolve")
	id := rs.waitEstablished(t, 1)[0]
	lp, err := cl.LocalPort()
	require.NoError(t, err)
	_, sp, err := s.ClientAddr(id)
	require.NoError(t, err)
	assert.Equal(t, lp, sp)
}

// Stop aborts a Start that is still connecting (here: waiting for a TLS
// handshake the peer never answers).
func TestClientStopAbortsStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	p := newPKI(t, "")
	o := testOptions()
	o.ConnectTimeout = 0
	cl := NewClient(Continuous{}, o, nil)
	t.Cleanup(cl.Stop)
	done := make(chan error, 1)
	go func() { done <- cl.StartTLS("127.0.0.1", ln.Addr().(*net.TCPAddr).Port, p.client) }()
	c := recv(t, accepted, "the connection")
	defer c.Close()
	returnsWithin(t, "Stop", cl.Stop)
	err = recv(t, done, "Start to give up")
	require.Error(t, err)
	assert.Contains(t, []Code{StartConnect, StartConnectInit}, CodeOf(err), "%v", err)
	assert.False(t, cl.Running())
}

func TestClientConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	p := newPKI(t, "")
	o := testOptions()
	o.ConnectTimeout = 200 * time.Millisecond
	cl := NewClient(Continuous{}, o, nil)
	t.Cleanup(cl.Stop)
	start := time.Now()
	err = cl.StartTLS("127.0.0.1", ln.Addr().(*net.TCPAddr).Port, p.client)
	require.Error(t, err)
	assert.Contains(t, []Code{StartConnect, StartConnectInit}, CodeOf(err), "%v", err)
	assert.Less(t, time.Since(start), waitTimeout)
}

// After the server closed the connection, a new Start must not be disturbed
// by the end of the previous session: its Closed must not run after the new
// session started (it would look like the new session closed), and with an
// event queue the old session's end must not mark the queue stopped while
// the new session runs.
func TestClientRestartAfterServerClose(t *testing.T) {
	s, rs := echoServer(t, Continuous{}, testOptions())
	port := startServer(t, s)

	q := &slowClosedQueue{EventQueue: NewEventQueue(0), entered: make(chan struct{}, 1), release: make(chan struct{})}
	var once sync.Once
	releaseOld := func() { once.Do(func() { close(q.release) }) }
	t.Cleanup(releaseOld)
	cl := newClient(t, Continuous{}, q)
	require.NoError(t, cl.Start("127.0.0.1", port))
	id := rs.waitEstablished(t, 1)[0]
	require.NoError(t, s.CloseClient(id))
	recv(t, q.entered, "the old session's closed")
	require.Eventually(t, func() bool { return !cl.Running() }, waitTimeout, tick)
	cl.mu.Lock()
	old := cl.c
	cl.mu.Unlock()

	started := make(chan error, 1)
	go func() { started <- cl.Start("127.0.0.1", port) }()
	select {
	case err := <-started:
		// Start did not wait for the old session to end; that is acceptable
		// only if the old end cannot disturb the new session.
		require.NoError(t, err)
		releaseOld()
	case <-time.After(300 * time.Millisecond):
		releaseOld()
		require.NoError(t, recv(t, started, "Start"))
	}
	rs.waitEstablished(t, 2)
	require.True(t, cl.Running())
	recv(t, old.done, "the old session to end")

	buf := make([]byte, 4096)
	var kinds []int
	require.Eventually(t, func() bool {
		n, used, err := q.Poll(buf, 0)
		if err != nil {
			kinds = append(kinds, -int(CodeOf(err)))
			return true
		}
		for _, r := range decodeRecords(t, buf[:used]) {
			kinds = append(kinds, r.kind)
		}
		return n == 0 && len(kinds) > 0 && kinds[len(kinds)-1] == EventClosed
	}, waitTimeout, tick)
	assert.True(t, cl.Running())
	_, _, err := q.Poll(buf, 0)
	assert.NoError(t, err, "the queue reports stopped while the restarted client runs (events so far: %v)", kinds)
	require.NoError(t, cl.Send([]byte("still here")))
	require.Eventually(t, func() bool {
		n, _, err := q.Poll(buf, 0)
		return err == nil && n > 0
	}, waitTimeout, tick, "message of the new session")
}

// slowClosedQueue is an event queue (lifecycle included) whose first Closed
// blocks until released.
type slowClosedQueue struct {
	*EventQueue
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (q *slowClosedQueue) ClosedEx(id int, _ CloseReason, _ any) { q.Closed(id) }

func (q *slowClosedQueue) Closed(id int) {
	q.once.Do(func() {
		q.entered <- struct{}{}
		<-q.release
	})
	q.EventQueue.Closed(id)
}

var _ lifecycle = (*slowClosedQueue)(nil)
