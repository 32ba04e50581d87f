package engine

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every wait in these tests is bounded by waitTimeout; polling uses tick.
const (
	waitTimeout = 10 * time.Second
	tick        = 2 * time.Millisecond
)

// evKind names a recorded handler call.
type evKind int

const (
	evEstablished evKind = iota + 1
	evMessage
	evClosed
	evError
)

func (k evKind) String() string {
	return [...]string{"?", "established", "message", "closed", "error"}[k]
}

// event is one recorded handler call.
type event struct {
	kind evKind
	id   int
	data []byte // message copy
	code Code   // error code
	text string // error text
}

func (e event) String() string {
	switch e.kind {
	case evMessage:
		return fmt.Sprintf("%s(%d, %q)", e.kind, e.id, e.data)
	case evError:
		return fmt.Sprintf("%s(%d, %d %s)", e.kind, e.id, e.code, e.text)
	}
	return fmt.Sprintf("%s(%d)", e.kind, e.id)
}

// recorder is a Handler that records every call, checks the per-connection
// rules as calls happen (never two calls of one connection at once, nothing
// after Closed, nothing after the owner's Stop returned), and runs optional
// hooks after recording.
type recorder struct {
	name string

	mu       sync.Mutex
	events   []event
	perID    map[int][]event
	inFlight map[int]int
	problems []string

	// sealed is set by the test once Stop returned: any call after it is a
	// violation.
	sealed atomic.Bool

	// Hooks, set before the owner starts; called after recording, outside
	// the lock.
	onEstablished func(id int)
	onMessage     func(id int, data []byte)
	onClosed      func(id int)
	onError       func(id int, err *Error)
}

func newRecorder(name string) *recorder {
	return &recorder{name: name, perID: map[int][]event{}, inFlight: map[int]int{}}
}

// enter records ev and flags concurrent calls for one connection. Id 0 on a
// server is shared by every failed handshake, which may run in parallel, so
// it is not checked for concurrency there (clientSide marks id 0 as a real
// connection).
func (r *recorder) enter(ev event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sealed.Load() {
		r.problems = append(r.problems, fmt.Sprintf("%s: %v after Stop returned", r.name, ev))
	}
	if r.inFlight[ev.id] > 0 && (ev.id != 0 || ev.kind != evError) {
		r.problems = append(r.problems, fmt.Sprintf("%s: %v while another call of connection %d runs", r.name, ev, ev.id))
	}
	r.inFlight[ev.id]++
	r.events = append(r.events, ev)
	r.perID[ev.id] = append(r.perID[ev.id], ev)
}

func (r *recorder) leave(id int) {
	r.mu.Lock()
	r.inFlight[id]--
	r.mu.Unlock()
}

func (r *recorder) Established(id int) {
	r.enter(event{kind: evEstablished, id: id})
	defer r.leave(id)
	if r.onEstablished != nil {
		r.onEstablished(id)
	}
}

func (r *recorder) Message(id int, data []byte) {
	r.enter(event{kind: evMessage, id: id, data: append([]byte{}, data...)})
	defer r.leave(id)
	if r.onMessage != nil {
		r.onMessage(id, data)
	}
}

func (r *recorder) Closed(id int) {
	r.enter(event{kind: evClosed, id: id})
	defer r.leave(id)
	if r.onClosed != nil {
		r.onClosed(id)
	}
}

func (r *recorder) Error(id int, err *Error) {
	r.enter(event{kind: evError, id: id, code: err.Code, text: err.Error()})
	defer r.leave(id)
	if r.onError != nil {
		r.onError(id, err)
	}
}

// snapshot returns a copy of every recorded event in call order.
func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

// of returns a copy of the events of one connection.
func (r *recorder) of(id int) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.perID[id]...)
}

func (r *recorder) count(kind evKind, id int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.perID[id] {
		if e.kind == kind {
			n++
		}
	}
	return n
}

// ids returns the ids that got Established, in order.
func (r *recorder) established() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []int
	for _, e := range r.events {
		if e.kind == evEstablished {
			ids = append(ids, e.id)
		}
	}
	return ids
}

func (r *recorder) closedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.kind == evClosed {
			n++
		}
	}
	return n
}

// errors returns the recorded Error calls of id.
func (r *recorder) errorsOf(id int) []event {
	var out []event
	for _, e := range r.of(id) {
		if e.kind == evError {
			out = append(out, e)
		}
	}
	return out
}

// stream concatenates the message bytes of id.
func (r *recorder) stream(id int) []byte {
	var out []byte
	for _, e := range r.of(id) {
		if e.kind == evMessage {
			out = append(out, e.data...)
		}
	}
	return out
}

// messages returns the messages of id.
func (r *recorder) messages(id int) [][]byte {
	var out [][]byte
	for _, e := range r.of(id) {
		if e.kind == evMessage {
			out = append(out, e.data)
		}
	}
	return out
}

// waitFor waits until cond holds (evaluated without the lock).
func (r *recorder) waitFor(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	require.Eventuallyf(t, cond, waitTimeout, tick, "%s: "+format, append([]any{r.name}, args...)...)
}

func (r *recorder) waitEstablished(t testing.TB, n int) []int {
	t.Helper()
	r.waitFor(t, func() bool { return len(r.established()) >= n }, "%d established", n)
	return r.established()[:n]
}

func (r *recorder) waitClosed(t testing.TB, id int) {
	t.Helper()
	r.waitFor(t, func() bool { return r.count(evClosed, id) > 0 }, "closed(%d)", id)
}

// checkOrder verifies the per-connection contract on everything recorded:
// a server connection (id > 0) starts with Established, has Closed exactly
// once and last, and an Error only right before Closed. For client-side
// recorders (server=false), id 0 is one connection per session: Closed is
// last of the session. complete demands a Closed for every connection.
func (r *recorder) checkOrder(t testing.TB, server, complete bool) {
	t.Helper()
	r.mu.Lock()
	problems := append([]string(nil), r.problems...)
	perID := map[int][]event{}
	for id, evs := range r.perID {
		perID[id] = append([]event(nil), evs...)
	}
	r.mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	for id, evs := range perID {
		if server && id == 0 {
			for _, e := range evs {
				if e.kind != evError {
					t.Errorf("%s: %v: only errors may have id 0 on a server", r.name, e)
				}
			}
			continue
		}
		if server {
			if evs[0].kind != evEstablished {
				t.Errorf("%s: connection %d starts with %v", r.name, id, evs[0])
			}
		}
		closed := 0
		for i, e := range evs {
			switch e.kind {
			case evEstablished:
				if i != 0 {
					t.Errorf("%s: connection %d: %v at position %d", r.name, id, e, i)
				}
			case evClosed:
				closed++
				if server && i != len(evs)-1 {
					t.Errorf("%s: connection %d: events after closed: %v", r.name, id, evs[i+1:])
				}
			case evError:
				if i+1 < len(evs) && evs[i+1].kind != evClosed {
					t.Errorf("%s: connection %d: %v not followed by closed but by %v", r.name, id, e, evs[i+1])
				}
			}
		}
		if server && closed > 1 {
			t.Errorf("%s: connection %d closed %d times", r.name, id, closed)
		}
		if complete && closed == 0 {
			t.Errorf("%s: connection %d never closed: %v", r.name, id, evs)
		}
	}
}

// testOptions are the defaults, bound to loopback, with a shorter timeout.
func testOptions() Options {
	o := DefaultOptions()
	o.BindAddress = "127.0.0.1"
	o.ConnectTimeout = 5 * time.Second
	return o
}

// newServer returns a server that is stopped when the test ends.
func newServer(t testing.TB, f Framing, o Options, h Handler) *Server {
	t.Helper()
	s := NewServer(f, o, h)
	t.Cleanup(s.Stop)
	return s
}

// startServer starts s for plain TCP on a system-chosen loopback port.
func startServer(t testing.TB, s *Server) int {
	t.Helper()
	require.NoError(t, s.Start(0))
	port := s.Port()
	require.Greater(t, port, 0)
	return port
}

// newClient returns a client that is stopped when the test ends.
func newClient(t testing.TB, f Framing, h Handler) *Client {
	t.Helper()
	o := testOptions()
	o.BindAddress = "" // a client's BindAddress is its local address
	cl := NewClient(f, o, h)
	t.Cleanup(cl.Stop)
	return cl
}

// dial opens a raw TCP connection, closed when the test ends.
func dial(t testing.TB, port int) *net.TCPConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), waitTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return nc.(*net.TCPConn)
}

// freePort returns a loopback port that nothing listens on (right now).
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// pki is a generated test PKI.
type pki struct {
	dir    string
	server TLSFiles // ca + server cert/key
	client TLSFiles // ca + client cert/key
}

func newPKI(t testing.TB, hosts string) pki {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, GenerateTestCerts(dir, hosts))
	p := func(name string) string { return filepath.Join(dir, name) }
	return pki{
		dir:    dir,
		server: TLSFiles{CA: p("ca.pem"), Cert: p("server.pem"), Key: p("server.key")},
		client: TLSFiles{CA: p("ca.pem"), Cert: p("client.pem"), Key: p("client.key")},
	}
}

// requireCode checks that err carries code.
func requireCode(t testing.TB, want Code, err error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.Equalf(t, want, CodeOf(err), "%v", err)
}

// recv waits for a value on ch.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// returnsWithin runs f and fails the test if it does not return in time.
func returnsWithin(t testing.TB, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	recv(t, done, what)
}
