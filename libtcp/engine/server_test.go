package engine

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer returns a stopped server that sends every message back.
func echoServer(t testing.TB, f Framing, o Options) (*Server, *recorder) {
	t.Helper()
	r := newRecorder("server")
	s := newServer(t, f, o, r)
	r.onMessage = func(id int, data []byte) { _ = s.Send(id, data) }
	return s, r
}

type mode struct {
	name string
	f    Framing
}

func modes() []mode {
	return []mode{
		{"continuous", Continuous{}},
		{"delimited", NewDelimited('\n', 1024)},
	}
}

// exchange sends msgs from cl and waits until rc holds their echo.
func exchange(t testing.TB, f Framing, cl *Client, rc *recorder, msgs []string) {
	t.Helper()
	for _, m := range msgs {
		require.NoError(t, cl.Send([]byte(m)))
	}
	if f.MaxMessage() == 0 {
		want := strings.Join(msgs, "")
		rc.waitFor(t, func() bool { return len(rc.stream(0)) >= len(want) }, "echo of %d bytes", len(want))
		assert.Equal(t, want, string(rc.stream(0)))
		return
	}
	rc.waitFor(t, func() bool { return len(rc.messages(0)) >= len(msgs) }, "echo of %d messages", len(msgs))
	got := rc.messages(0)
	require.Len(t, got, len(msgs))
	for i, m := range msgs {
		assert.Equal(t, m, string(got[i]), "message %d", i)
	}
}

func TestServerEchoTCP(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			s, rs := echoServer(t, m.f, testOptions())
			port := startServer(t, s)
			assert.True(t, s.Running())

			rc := newRecorder("client")
			cl := newClient(t, m.f, rc)
			require.NoError(t, cl.Start("127.0.0.1", port))
			assert.True(t, cl.Running())
			ids := rs.waitEstablished(t, 1)
			assert.Equal(t, ids, s.ClientIDs())

			msgs := []string{"hello", "", "world", strings.Repeat("x", 1000)}
			if m.f.MaxMessage() == 0 {
				msgs = []string{"hello", "wor", "ld\n\x00", strings.Repeat("y", 100000)}
			}
			exchange(t, m.f, cl, rc, msgs)

			cl.Stop()
			assert.False(t, cl.Running())
			rs.waitClosed(t, ids[0])
			assert.Empty(t, s.ClientIDs())
			assert.Equal(t, 1, rc.closedCount(), "client's closed runs once, before Stop returns")
			s.Stop()
			assert.False(t, s.Running())
			assert.Equal(t, 0, s.Port())
			rs.checkOrder(t, true, true)
			rc.checkOrder(t, false, true)
		})
	}
}

func TestServerEventOrderManyConnections(t *testing.T) {
	f := NewDelimited('\n', 64)
	s, rs := echoServer(t, f, testOptions())
	port := startServer(t, s)

	const nClients, nMsgs = 8, 60
	clients := make([]*Client, nClients)
	recs := make([]*recorder, nClients)
	var wg sync.WaitGroup
	for i := range clients {
		recs[i] = newRecorder(fmt.Sprintf("client%d", i))
		clients[i] = newClient(t, f, recs[i])
		require.NoError(t, clients[i].Start("127.0.0.1", port))
	}
	for i := range clients {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < nMsgs; j++ {
				assert.NoError(t, clients[i].Send([]byte(fmt.Sprintf("c%d-m%d", i, j))))
			}
		}(i)
	}
	wg.Wait()
	for i, rc := range recs {
		rc.waitFor(t, func() bool { return len(rc.messages(0)) == nMsgs }, "echoes")
		for j, m := range rc.messages(0) {
			require.Equal(t, fmt.Sprintf("c%d-m%d", i, j), string(m), "messages to one client arrive in send order")
		}
	}
	// Server side: every connection's messages in order.
	for _, id := range rs.established() {
		msgs := rs.messages(id)
		require.Len(t, msgs, nMsgs)
		var ci int
		_, err := fmt.Sscanf(string(msgs[0]), "c%d-m0", &ci)
		require.NoError(t, err)
		for j, m := range msgs {
			require.Equal(t, fmt.Sprintf("c%d-m%d", ci, j), string(m))
		}
	}
	// Half the clients leave, then the server stops.
	for i := 0; i < nClients/2; i++ {
		clients[i].Stop()
	}
	s.Stop()
	assert.Equal(t, nClients, rs.closedCount())
	rs.checkOrder(t, true, true)
	for _, rc := range recs {
		rc.waitClosed(t, 0)
	}
	for _, rc := range recs {
		rc.checkOrder(t, false, true)
		assert.Equal(t, 1, rc.closedCount())
	}
}

func TestServerIDsPositiveAndNeverReused(t *testing.T) {
	r := newRecorder("server")
	s := newServer(t, Continuous{}, testOptions(), r)
	seen := map[int]bool{}
	total := 0
	for round := 0; round < 3; round++ {
		port := startServer(t, s)
		for i := 0; i < 3; i++ {
			c := dial(t, port)
			total++
			ids := r.waitEstablished(t, total)
			id := ids[total-1]
			assert.Greater(t, id, 0)
			assert.False(t, seen[id], "id %d reused", id)
			seen[id] = true
			if i == 0 {
				require.NoError(t, c.Close()) // one leaves on its own
				r.waitClosed(t, id)
			}
		}
		assert.Len(t, s.ClientIDs(), 2)
		s.Stop()
		assert.Empty(t, s.ClientIDs())
	}
	assert.Len(t, seen, 9)
	r.checkOrder(t, true, true)
}

func TestServerStartCodes(t *testing.T) {
	s := newServer(t, Continuous{}, testOptions(), nil)
	requireCode(t, StartWrongPort, s.Start(-1))
	requireCode(t, StartWrongPort, s.Start(65536))
	assert.False(t, s.Running())

	port := startServer(t, s)
	requireCode(t, ErrAlreadyRunning, s.Start(0))
	requireCode(t, ErrAlreadyRunning, s.SetOptions(testOptions()))
	requireCode(t, ErrAlreadyRunning, s.SetHandler(nil))
	assert.Equal(t, port, s.Port(), "a refused start leaves the server unchanged")
	assert.True(t, s.Running())

	other := newServer(t, Continuous{}, testOptions(), nil)
	err := other.Start(port)
	requireCode(t, StartBindPort, err, "port in use")
	assert.Contains(t, err.Error(), fmt.Sprint(port), "the reason names the address")
	assert.False(t, other.Running())
	assert.Equal(t, 0, other.Port())

	o := testOptions()
	o.BindAddress = "192.0.2.1" // TEST-NET-1: not a local address
	bad := newServer(t, Continuous{}, o, nil)
	err = bad.Start(0)
	require.Error(t, err)
	assert.Contains(t, []Code{StartBindPort, StartListen}, CodeOf(err), "%v", err)

	s.Stop()
	s.Stop() // idempotent
	require.NoError(t, other.Start(port), "port free again after stop")
	NewServer(nil, testOptions(), nil).Stop() // never started
}

func TestServerReusePort(t *testing.T) {
	o := testOptions()
	o.ReusePort = true
	a := newServer(t, Continuous{}, o, nil)
	port := startServer(t, a)
	b := newServer(t, Continuous{}, o, nil)
	require.NoError(t, b.Start(port), "SO_REUSEPORT lets a second server share the port")
}

func TestServerOversizedMessageClosesOnlyThatConnection(t *testing.T) {
	const max = 16
	s, rs := echoServer(t, NewDelimited('\n', max), testOptions())
	port := startServer(t, s)

	bad := dial(t, port)
	idBad := rs.waitEstablished(t, 1)[0]
	noDelim := dial(t, port)
	idNoDelim := rs.waitEstablished(t, 2)[1]
	rc := newRecorder("client")
	good := newClient(t, NewDelimited('\n', max), rc)
	require.NoError(t, good.Start("127.0.0.1", port))
	idGood := rs.waitEstablished(t, 3)[2]

	_, err := bad.Write([]byte("fine\n0123456789abcdefX\nnever\n"))
	require.NoError(t, err)
	_, err = noDelim.Write([]byte("0123456789abcdefX")) // max+1, no delimiter at all
	require.NoError(t, err)

	for _, id := range []int{idBad, idNoDelim} {
		rs.waitClosed(t, id)
		errs := rs.errorsOf(id)
		require.Len(t, errs, 1)
		assert.Equal(t, ErrMessageTooLong, errs[0].code, errs[0].text)
	}
	assert.Equal(t, [][]byte{[]byte("fine")}, rs.messages(idBad), "nothing after the long message")
	assert.Empty(t, rs.messages(idNoDelim))

	// The peer sees its connection end.
	for _, c := range []net.Conn{bad, noDelim} {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(waitTimeout)))
		_, err := io.ReadAll(c)
		assert.NotErrorIs(t, err, os.ErrDeadlineExceeded, "connection left open")
	}

	// The others go on.
	assert.Equal(t, []int{idGood}, s.ClientIDs())
	exchange(t, NewDelimited('\n', max), good, rc, []string{"0123456789abcdef", "ok"})
	assert.True(t, s.Running())
	assert.Empty(t, rs.errorsOf(idGood))
	s.Stop()
	rs.checkOrder(t, true, true)
}

// Long messages make the receive buffer grow up to max+1 and shrink again.
func TestServerLongMessages(t *testing.T) {
	const max = 200000
	f := NewDelimited('\n', max)
	s, rs := echoServer(t, f, testOptions())
	port := startServer(t, s)
	rc := newRecorder("client")
	cl := newClient(t, f, rc)
	require.NoError(t, cl.Start("127.0.0.1", port))
	id := rs.waitEstablished(t, 1)[0]

	long := bytes.Repeat([]byte("0123456789"), max/10)
	exchange(t, f, cl, rc, []string{string(long), "small", string(long[:max-1]), "", "x"})
	requireCode(t, ErrMessageTooLong, cl.Send(append(long, 'y')))

	raw := dial(t, port)
	idRaw := rs.waitEstablished(t, 2)[1]
	_, err := raw.Write(append(long, 'y'))
	require.NoError(t, err)
	rs.waitClosed(t, idRaw)
	require.Len(t, rs.errorsOf(idRaw), 1)
	assert.Equal(t, ErrMessageTooLong, rs.errorsOf(idRaw)[0].code)
	assert.Equal(t, []int{id}, s.ClientIDs())
}

func TestServerSendErrors(t *testing.T) {
	const max = 8
	o := testOptions()
	s, rs := echoServer(t, NewDelimited('\n', max), o)
	requireCode(t, ErrNotRunning, s.Send(1, []byte("x")), "never started")
	port := startServer(t, s)
	c := dial(t, port)
	id := rs.waitEstablished(t, 1)[0]

	require.NoError(t, s.Send(id, []byte("12345678")))
	require.NoError(t, s.Send(id, nil))
	requireCode(t, ErrMessageTooLong, s.Send(id, []byte("123456789")))
	requireCode(t, ErrContainsDelimiter, s.Send(id, []byte("a\nb")))
	requireCode(t, ErrNoClient, s.Send(id+1000, []byte("x")))
	requireCode(t, ErrNoClient, s.Send(0, []byte("x")))
	requireCode(t, ErrNoClient, s.Send(-1, []byte("x")))

	// Only the accepted messages went out, in order.
	want := "12345678\n\n"
	got := make([]byte, len(want))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitTimeout)))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, want, string(got))

	require.NoError(t, c.Close())
	rs.waitClosed(t, id)
	requireCode(t, ErrNoClient, s.Send(id, []byte("x")), "closed client")
	s.Stop()
	requireCode(t, ErrNotRunning, s.Send(id, []byte("x")))
	assert.Equal(t, 0, s.Broadcast([]byte("x")))
}

func TestServerSendQueueFull(t *testing.T) {
	o := testOptions()
	o.SendQueueLimit = 64 << 10
	o.Linger = 10 * time.Millisecond // the peer never reads: no point waiting
	r := newRecorder("server")
	s := newServer(t, Continuous{}, o, r)
	port := startServer(t, s)
	_ = dial(t, port) // never reads
	id := r.waitEstablished(t, 1)[0]

	chunk := bytes.Repeat([]byte("q"), 16<<10)
	// The kernel buffers take a few MiB; after that the writer blocks and
	// the queue stays full: rounds in which nothing is accepted. (A round
	// may also find the queue full only because the writer was slow; that
	// is a legitimate ErrQueueFull too.)
	sent, emptyRounds := 0, 0
	var err error
	require.Eventually(t, func() bool {
		accepted := 0
		for {
			if err = s.Send(id, chunk); err != nil || sent+accepted > 100000 {
				break
			}
			accepted++
		}
		sent += accepted
		if accepted == 0 {
			emptyRounds++
		} else {
			emptyRounds = 0
		}
		return CodeOf(err) != ErrQueueFull || emptyRounds >= 3
	}, waitTimeout, 5*time.Millisecond)
	requireCode(t, ErrQueueFull, err)
	t.Logf("queue full after %d KiB", sent*16)
	assert.Equal(t, []int{id}, s.ClientIDs(), "a full queue does not close the connection")
	returnsWithin(t, "Stop with a blocked writer", s.Stop)
	r.checkOrder(t, true, true)
}

func TestServerStopFromHandler(t *testing.T) {
	for _, where := range []string{"message", "established", "closed"} {
		t.Run(where, func(t *testing.T) {
			f := NewDelimited('\n', 64)
			r := newRecorder("server")
			s := newServer(t, f, testOptions(), r)
			stopped := make(chan int, 10)
			stopIn := func(id int) {
				s.Stop()
				stopped <- id
			}
			first := make(chan struct{})
			switch where {
			case "message":
				r.onMessage = func(id int, data []byte) {
					if string(data) == "stop" {
						stopIn(id)
					}
				}
			case "established":
				r.onEstablished = func(id int) {
					select {
					case <-first:
						stopIn(id) // the second client stops the server
					default:
						close(first)
					}
				}
			case "closed":
				r.onClosed = func(id int) {
					select {
					case <-first:
					default:
						close(first)
						stopIn(id)
					}
				}
			}
			port := startServer(t, s)
			rc1, rc2 := newRecorder("client1"), newRecorder("client2")
			c1 := newClient(t, f, rc1)
			require.NoError(t, c1.Start("127.0.0.1", port))
			r.waitEstablished(t, 1)
			c2 := newClient(t, f, rc2)
			require.NoError(t, c2.Start("127.0.0.1", port))
			switch where {
			case "message":
				r.waitEstablished(t, 2)
				require.NoError(t, c2.Send([]byte("stop")))
			case "closed":
				r.waitEstablished(t, 2)
				c2.Stop()
			}
			recv(t, stopped, "Stop called from a handler to return")
			r.waitFor(t, func() bool { return r.closedCount() == 2 }, "closed for both clients")
			assert.False(t, s.Running())
			assert.Empty(t, s.ClientIDs())
			rc1.waitClosed(t, 0)
			r.checkOrder(t, true, true)

			// The server can start again.
			port = startServer(t, s)
			require.NoError(t, c1.Start("127.0.0.1", port))
			r.waitEstablished(t, 3)
		})
	}
}

func TestServerStopClosesEveryClientAndSilencesHandler(t *testing.T) {
	f := NewDelimited('\n', 64)
	s, rs := echoServer(t, f, testOptions())
	port := startServer(t, s)
	const n = 4
	var clients []*Client
	var recs []*recorder
	for i := 0; i < n; i++ {
		rc := newRecorder(fmt.Sprintf("client%d", i))
		cl := newClient(t, f, rc)
		require.NoError(t, cl.Start("127.0.0.1", port))
		clients, recs = append(clients, cl), append(recs, rc)
	}
	raw := dial(t, port)
	rs.waitEstablished(t, n+1)
	// Messages in flight in both directions while the server stops.
	for _, cl := range clients {
		for j := 0; j < 200; j++ {
			require.NoError(t, cl.Send([]byte(fmt.Sprintf("m%d", j))))
		}
	}
	s.Stop()
	rs.sealed.Store(true)
	assert.Equal(t, n+1, rs.closedCount(), "closed for every client before Stop returns")
	assert.False(t, s.Running())
	assert.Empty(t, s.ClientIDs())

	for _, rc := range recs {
		rc.waitClosed(t, 0)
	}
	for _, cl := range clients {
		require.Eventually(t, func() bool { return !cl.Running() }, waitTimeout, tick)
		requireCode(t, ErrNotRunning, cl.Send([]byte("late")))
	}
	// A raw peer that keeps writing gets nothing delivered.
	_, _ = raw.Write([]byte("after stop\n"))
	require.NoError(t, raw.SetReadDeadline(time.Now().Add(waitTimeout)))
	_, _ = io.ReadAll(raw)
	rs.checkOrder(t, true, true)
}

// Stop must return only when no callback runs any more -- also when another
// Stop is already in progress (tcp_server_free after a stop started
// elsewhere, or two threads stopping).
func TestServerConcurrentStopWaitsForCallbacks(t *testing.T) {
	f := NewDelimited('\n', 64)
	r := newRecorder("server")
	s := newServer(t, f, testOptions(), r)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	r.onMessage = func(id int, data []byte) {
		close(entered)
		<-release
	}
	port := startServer(t, s)
	c := dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	_, err := c.Write([]byte("block\n"))
	require.NoError(t, err)
	recv(t, entered, "handler to block")

	firstDone := make(chan struct{})
	go func() { s.Stop(); close(firstDone) }()
	require.Eventually(t, func() bool { return !s.Running() }, waitTimeout, tick)

	secondDone := make(chan int, 1)
	go func() { s.Stop(); secondDone <- r.count(evClosed, id) }()
	select {
	case closed := <-secondDone:
		assert.Equal(t, 1, closed, "second Stop returned while a message callback was still running (closed not delivered yet)")
	case <-time.After(300 * time.Millisecond):
		// Still waiting, as it should.
	}
	once.Do(func() { close(release) })
	recv(t, firstDone, "first Stop")
	r.waitClosed(t, id)
}

func TestServerBroadcast(t *testing.T) {
	f := NewDelimited('\n', 64)
	s, rs := echoServer(t, f, testOptions())
	port := startServer(t, s)
	var recs []*recorder
	for i := 0; i < 3; i++ {
		rc := newRecorder(fmt.Sprintf("client%d", i))
		cl := newClient(t, f, rc)
		require.NoError(t, cl.Start("127.0.0.1", port))
		recs = append(recs, rc)
	}
	rs.waitEstablished(t, 3)
	assert.Equal(t, 3, s.Broadcast([]byte("to all")))
	assert.Equal(t, 0, s.Broadcast([]byte("bad\n")), "refused for everyone")
	assert.Equal(t, 3, s.Broadcast([]byte("again")))
	for _, rc := range recs {
		rc.waitFor(t, func() bool { return len(rc.messages(0)) == 2 }, "broadcasts")
		assert.Equal(t, [][]byte{[]byte("to all"), []byte("again")}, rc.messages(0))
	}
}

func TestServerCloseClientAndAddr(t *testing.T) {
	f := NewDelimited('\n', 64)
	s, rs := echoServer(t, f, testOptions())
	requireCode(t, ErrNotRunning, s.CloseClient(1))
	port := startServer(t, s)
	rc := newRecorder("client")
	cl := newClient(t, f, rc)
	require.NoError(t, cl.Start("127.0.0.1", port))
	id := rs.waitEstablished(t, 1)[0]
	other := newClient(t, f, nil)
	require.NoError(t, other.Start("127.0.0.1", port))
	ids := rs.waitEstablished(t, 2)

	ip, cport, err := s.ClientAddr(id)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", ip)
	lport, err := cl.LocalPort()
	require.NoError(t, err)
	assert.Equal(t, lport, cport)
	_, _, err = s.ClientAddr(id + 100)
	requireCode(t, ErrNoClient, err)

	_, err = s.SubjectPart(id, NIDCommonName)
	requireCode(t, ErrNoField, err, "plain TCP has no certificate")
	_, err = s.SubjectPart(id+100, NIDCommonName)
	requireCode(t, ErrNoClient, err)

	require.NoError(t, s.CloseClient(id))
	rs.waitClosed(t, id)
	assert.Empty(t, rs.errorsOf(id), "a close we asked for is not an error")
	assert.Equal(t, []int{ids[1]}, s.ClientIDs())
	requireCode(t, ErrNoClient, s.CloseClient(id))
	requireCode(t, ErrNoClient, s.CloseClient(id+100))
	rc.waitClosed(t, 0)
	require.Eventually(t, func() bool { return !cl.Running() }, waitTimeout, tick)
	assert.True(t, other.Running())

	s.Stop()
	_, _, err = s.ClientAddr(ids[1])
	requireCode(t, ErrNotRunning, err)
	rs.checkOrder(t, true, true)
}

func TestServerHandlerPanicClosesConnection(t *testing.T) {
	f := NewDelimited('\n', 64)
	s, rs := echoServer(t, f, testOptions())
	echo := rs.onMessage
	rs.onMessage = func(id int, data []byte) {
		if string(data) == "panic" {
			panic("handler bug")
		}
		echo(id, data)
	}
	port := startServer(t, s)
	bad := newClient(t, f, nil)
	require.NoError(t, bad.Start("127.0.0.1", port))
	id := rs.waitEstablished(t, 1)[0]
	require.NoError(t, bad.Send([]byte("panic")))
	rs.waitClosed(t, id)
	errs := rs.errorsOf(id)
	require.Len(t, errs, 1)
	assert.Equal(t, ErrInternal, errs[0].code)

	rc := newRecorder("client")
	good := newClient(t, f, rc)
	require.NoError(t, good.Start("127.0.0.1", port))
	exchange(t, f, good, rc, []string{"still here"})
}

func TestServer200ClientsEcho(t *testing.T) {
	f := NewDelimited('\n', 64)
	s, rs := echoServer(t, f, testOptions())
	port := startServer(t, s)
	const n = 200
	echoes := make(chan string, 2*n)
	clients := make([]*Client, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		clients[i] = newClient(t, f, HandlerFuncs{OnMessage: func(_ int, data []byte) { echoes <- string(data) }})
	}
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := clients[i].Start("127.0.0.1", port); err != nil {
				errs <- err
				return
			}
			if err := clients[i].Send([]byte(fmt.Sprintf("hello %d", i))); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var got []string
	for len(got) < n {
		got = append(got, recv(t, echoes, fmt.Sprintf("echo %d of %d", len(got)+1, n)))
	}
	sort.Strings(got)
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("hello %d", i)
	}
	sort.Strings(want)
	assert.Equal(t, want, got)
	assert.Len(t, s.ClientIDs(), n)
	s.Stop()
	assert.Equal(t, n, rs.closedCount())
	for _, cl := range clients {
		require.Eventually(t, func() bool { return !cl.Running() }, waitTimeout, tick)
	}
	rs.checkOrder(t, true, true)
}

// A peer that resets its connection while the server writes to it must end
// only that connection.
func TestServerPeerResetWhileWriting(t *testing.T) {
	o := testOptions()
	o.SendQueueLimit = 0
	r := newRecorder("server")
	s := newServer(t, Continuous{}, o, r)
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	r.onEstablished = func(id int) {
		for i := 0; i < 64; i++ { // 4 MiB queued
			if s.Send(id, chunk) != nil {
				return
			}
		}
	}
	port := startServer(t, s)
	for round := 1; round <= 5; round++ {
		c := dial(t, port)
		id := r.waitEstablished(t, round)[round-1]
		require.NoError(t, c.SetReadDeadline(time.Now().Add(waitTimeout)))
		_, err := io.ReadFull(c, make([]byte, 100<<10))
		require.NoError(t, err)
		require.NoError(t, c.SetLinger(0))
		require.NoError(t, c.Close()) // RST
		r.waitClosed(t, id)
		for _, e := range r.errorsOf(id) {
			assert.Equal(t, ErrIO, e.code, e.text)
		}
	}
	assert.True(t, s.Running())
	s.Stop()
	r.onEstablished = nil
	r.onMessage = func(id int, data []byte) { _ = s.Send(id, data) }
	port = startServer(t, s)
	rc := newRecorder("client")
	cl := newClient(t, Continuous{}, rc)
	require.NoError(t, cl.Start("127.0.0.1", port))
	exchange(t, Continuous{}, cl, rc, []string{"alive"})
	r.checkOrder(t, true, false)
}

// Stop (or CloseClient) called from a message callback ends the calling
// connection at once: its closed callback is the next call, even when more
// messages of it were already received in the same read.
func TestServerNoMessageAfterStopInHandler(t *testing.T) {
	for _, action := range []string{"stop", "close"} {
		t.Run(action, func(t *testing.T) {
			r := newRecorder("server")
			s := newServer(t, NewDelimited('\n', 64), testOptions(), r)
			r.onMessage = func(id int, data []byte) {
				if string(data) != action {
					return
				}
				if action == "stop" {
					s.Stop()
				} else {
					assert.NoError(t, s.CloseClient(id))
				}
			}
			port := startServer(t, s)
			c := dial(t, port)
			id := r.waitEstablished(t, 1)[0]
			_, err := c.Write([]byte("a\n" + action + "\nb\nc\n")) // one write, one read
			require.NoError(t, err)
			r.waitClosed(t, id)
			assert.Equal(t, [][]byte{[]byte("a"), []byte(action)}, r.messages(id),
				"messages delivered after %s was called from the handler", action)
			r.checkOrder(t, true, true)
		})
	}
}

func TestServerIPv6(t *testing.T) {
	o := testOptions()
	o.BindAddress = "::1"
	s, rs := echoServer(t, Continuous{}, o)
	if err := s.Start(0); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	cl := newClient(t, Continuous{}, nil)
	require.NoError(t, cl.Start("::1", s.Port()))
	id := rs.waitEstablished(t, 1)[0]
	ip, port, err := s.ClientAddr(id)
	require.NoError(t, err)
	assert.Equal(t, "::1", ip)
	lp, err := cl.LocalPort()
	require.NoError(t, err)
	assert.Equal(t, lp, port)
}

// Once everything is stopped, no goroutine of the engine is left.
func TestNoGoroutineLeak(t *testing.T) {
	if !assert.Eventually(t, func() bool { return len(engineGoroutines()) == 0 }, waitTimeout, tick, "left over by an earlier test") {
		t.Fatalf("engine goroutines left:\n%s", strings.Join(engineGoroutines(), "\n\n"))
	}
	p := newPKI(t, "")
	f := NewDelimited('\n', 64)
	func() {
		s, rs := echoServer(t, f, testOptions())
		tlsS, tlsRs := echoServer(t, f, testOptions())
		port := startServer(t, s)
		tlsPort := startTLS(t, tlsS, p.server)
		var clients []*Client
		for i := 0; i < 5; i++ {
			rc := newRecorder("client")
			cl := newClient(t, f, rc)
			require.NoError(t, cl.Start("127.0.0.1", port))
			exchange(t, f, cl, rc, []string{"x"})
			tc := newClient(t, f, rc)
			require.NoError(t, tc.StartTLS("127.0.0.1", tlsPort, p.client))
			clients = append(clients, cl, tc)
		}
		rs.waitEstablished(t, 5)
		tlsRs.waitEstablished(t, 5)
		_ = dial(t, tlsPort) // a handshake that never happens
		clients[0].Stop()
		s.Stop()
		tlsS.Stop()
		for _, cl := range clients {
			cl.Stop()
		}
	}()
	require.Eventually(t, func() bool { return len(engineGoroutines()) == 0 }, waitTimeout, tick)
}

// engineGoroutines returns the stacks of the goroutines running engine code
// (connection readers and writers, accept loops).
func engineGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		// The memory watcher lives as long as the process, by design.
		if strings.Contains(g, "engine.engineGoroutines") || strings.Contains(g, "engine.idleReleaseLoop") {
			continue
		}
		for _, marker := range []string{"engine.(*conn).", "engine.(*Server).", "engine.(*Client).", "engine.(*EventQueue)."} {
			if strings.Contains(g, marker) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// Two handlers that call Stop at the same moment must not wait for each
// other.
func TestServerStopFromTwoHandlersAtOnce(t *testing.T) {
	f := NewDelimited('\n', 64)
	r := newRecorder("server")
	s := newServer(t, f, testOptions(), r)
	arrived := make(chan struct{}, 2)
	both := make(chan struct{})
	stopped := make(chan int, 2)
	r.onMessage = func(id int, data []byte) {
		arrived <- struct{}{}
		select {
		case <-both:
		case <-time.After(waitTimeout):
			t.Errorf("handler %d: the other handler never came", id)
		}
		s.Stop()
		stopped <- id
	}
	port := startServer(t, s)
	a, b := dial(t, port), dial(t, port)
	r.waitEstablished(t, 2)
	for _, c := range []net.Conn{a, b} {
		_, err := c.Write([]byte("stop\n"))
		require.NoError(t, err)
	}
	recv(t, arrived, "first handler")
	recv(t, arrived, "second handler")
	close(both)
	recv(t, stopped, "first Stop from a handler")
	recv(t, stopped, "second Stop from a handler")
	r.waitFor(t, func() bool { return r.closedCount() == 2 }, "closed for both")
	r.checkOrder(t, true, true)
}

// A callback that blocks holds up only its own connection.
func TestServerConnectionsServedInParallel(t *testing.T) {
	f := NewDelimited('\n', 64)
	s, rs := echoServer(t, f, testOptions())
	echo := rs.onMessage
	otherServed := make(chan struct{})
	rs.onMessage = func(id int, data []byte) {
		if string(data) == "wait" {
			select {
			case <-otherServed:
			case <-time.After(waitTimeout):
				t.Error("the other connection was not served while this callback ran")
			}
		}
		echo(id, data)
	}
	port := startServer(t, s)
	rcA, rcB := newRecorder("clientA"), newRecorder("clientB")
	a, b := newClient(t, f, rcA), newClient(t, f, rcB)
	require.NoError(t, a.Start("127.0.0.1", port))
	require.NoError(t, b.Start("127.0.0.1", port))
	require.NoError(t, a.Send([]byte("wait")))
	ids := rs.waitEstablished(t, 2)
	rs.waitFor(t, func() bool { return rs.count(evMessage, ids[0])+rs.count(evMessage, ids[1]) > 0 }, "the blocking message")
	exchange(t, f, b, rcB, []string{"hi"})
	close(otherServed)
	rcA.waitFor(t, func() bool { return len(rcA.messages(0)) == 1 }, "echo of wait")
}

// A connection that ends on its own while Stop runs: Stop must still wait
// for its last callbacks (error, closed).
func TestServerStopWaitsForEndingConnection(t *testing.T) {
	r := newRecorder("server")
	s := newServer(t, Continuous{}, testOptions(), r)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	r.onClosed = func(id int) {
		close(entered)
		<-release
	}
	port := startServer(t, s)
	c := dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	require.NoError(t, c.Close())
	recv(t, entered, "closed callback")
	assert.Empty(t, s.ClientIDs(), "an ending connection is no longer listed")

	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Error("Stop returned while a closed callback was still running")
	case <-time.After(300 * time.Millisecond):
	}
	once.Do(func() { close(release) })
	recv(t, stopped, "Stop")
	assert.Equal(t, 1, r.count(evClosed, id))
}

// "Send, then stop" delivers: Stop, CloseClient and the client's Stop give
// queued data up to Options.Linger to be written.
func TestLingerDeliversQueuedData(t *testing.T) {
	f := NewDelimited('\n', 64)
	const n = 2000
	msg := func(i int) []byte { return []byte(fmt.Sprintf("message %04d %s", i, strings.Repeat("x", 40))) }
	check := func(t *testing.T, got [][]byte) {
		t.Helper()
		require.Len(t, got, n)
		for i, m := range got {
			require.Equal(t, string(msg(i)), string(m))
		}
	}
	for _, how := range []string{"server stop", "close client", "client stop"} {
		t.Run(how, func(t *testing.T) {
			r := newRecorder("server")
			s := newServer(t, f, testOptions(), r)
			port := startServer(t, s)
			rc := newRecorder("client")
			cl := newClient(t, f, rc)
			require.NoError(t, cl.Start("127.0.0.1", port))
			id := r.waitEstablished(t, 1)[0]
			for i := 0; i < n; i++ {
				if how == "client stop" {
					require.NoError(t, cl.Send(msg(i)))
				} else {
					require.NoError(t, s.Send(id, msg(i)))
				}
			}
			switch how {
			case "server stop":
				s.Stop()
			case "close client":
				require.NoError(t, s.CloseClient(id))
			case "client stop":
				cl.Stop()
			}
			r.waitClosed(t, id)
			rc.waitClosed(t, 0)
			if how == "client stop" {
				check(t, r.messages(id))
			} else {
				check(t, rc.messages(0))
			}
		})
	}
}

// Linger is bounded: a peer that does not read does not hold Stop longer.
func TestLingerBounded(t *testing.T) {
	o := testOptions()
	o.Linger = 100 * time.Millisecond
	o.SendQueueLimit = 64 << 20
	r := newRecorder("server")
	s := newServer(t, Continuous{}, o, r)
	port := startServer(t, s)
	peer := dial(t, port) // never reads
	require.NoError(t, peer.SetReadBuffer(16<<10))
	id := r.waitEstablished(t, 1)[0]
	chunk := bytes.Repeat([]byte("l"), 64<<10)
	for i := 0; i < 128; i++ { // 8 MiB: more than the kernel buffers take
		require.NoError(t, s.Send(id, chunk))
	}
	requireCode(t, ErrTimeout, s.Flush(id, 50*time.Millisecond), "nothing drains while the peer does not read")
	start := time.Now()
	returnsWithin(t, "Stop", s.Stop)
	assert.GreaterOrEqual(t, time.Since(start), o.Linger/2, "Stop gave the data a chance")
	assert.Equal(t, 1, r.count(evClosed, id))
}

func TestFlush(t *testing.T) {
	f := NewDelimited('\n', 64)
	s, rs := echoServer(t, f, testOptions())
	requireCode(t, ErrNotRunning, s.Flush(0, time.Second))
	port := startServer(t, s)
	rc := newRecorder("client")
	cl := newClient(t, f, rc)
	requireCode(t, ErrNotRunning, cl.Flush(time.Second))
	require.NoError(t, cl.Start("127.0.0.1", port))
	id := rs.waitEstablished(t, 1)[0]

	require.NoError(t, s.Flush(id, time.Second), "nothing queued")
	require.NoError(t, s.Flush(0, time.Second))
	requireCode(t, ErrNoClient, s.Flush(id+100, time.Second))
	for i := 0; i < 100; i++ {
		require.NoError(t, s.Send(id, []byte("flushed")))
		require.NoError(t, cl.Send([]byte("back")))
	}
	require.NoError(t, s.Flush(id, waitTimeout))
	require.NoError(t, s.Flush(0, waitTimeout))
	require.NoError(t, cl.Flush(waitTimeout))
	rc.waitFor(t, func() bool { return len(rc.messages(0)) >= 200 }, "everything flushed arrives")

	cl.Stop()
	requireCode(t, ErrNotRunning, cl.Flush(time.Second))
	rs.waitClosed(t, id)
	requireCode(t, ErrNoClient, s.Flush(id, time.Second))
}

// Stop from a callback does not wait; a later Stop from outside waits for
// every remaining callback (the "stop in a callback, then free" pattern).
func TestServerStopOutsideWaitsAfterStopInHandler(t *testing.T) {
	r := newRecorder("server")
	s := newServer(t, NewDelimited('\n', 64), testOptions(), r)
	stoppedInside := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	r.onMessage = func(id int, data []byte) {
		s.Stop()
		close(stoppedInside)
		<-release // the callback goes on for a while
	}
	port := startServer(t, s)
	c := dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	_, err := c.Write([]byte("stop\n"))
	require.NoError(t, err)
	recv(t, stoppedInside, "Stop inside the callback to return")
	assert.False(t, s.Running())

	outside := make(chan struct{})
	go func() { s.Stop(); close(outside) }()
	select {
	case <-outside:
		t.Error("Stop from outside returned while a callback was still running")
	case <-time.After(300 * time.Millisecond):
	}
	once.Do(func() { close(release) })
	recv(t, outside, "Stop from outside")
	assert.Equal(t, 1, r.count(evClosed, id), "closed ran before the outside Stop returned")
}
