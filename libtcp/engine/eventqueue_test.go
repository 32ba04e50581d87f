package engine

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// record is one decoded event record of EventQueue.Poll.
type record struct {
	kind, id, code int
	payload        []byte
}

// decodeRecords parses packed records as a C program would: int32 kind,
// int32 client id, int32 code, uint32 length, payload; native byte order.
func decodeRecords(t testing.TB, b []byte) []record {
	t.Helper()
	var out []record
	for len(b) > 0 {
		require.GreaterOrEqual(t, len(b), EventHeaderSize, "truncated header")
		r := record{
			kind: int(int32(binary.NativeEndian.Uint32(b[0:]))),
			id:   int(int32(binary.NativeEndian.Uint32(b[4:]))),
			code: int(int32(binary.NativeEndian.Uint32(b[8:]))),
		}
		n := int(binary.NativeEndian.Uint32(b[12:]))
		require.GreaterOrEqual(t, len(b), EventHeaderSize+n, "truncated payload")
		r.payload = append([]byte{}, b[EventHeaderSize:EventHeaderSize+n]...)
		out = append(out, r)
		b = b[EventHeaderSize+n:]
	}
	return out
}

// pollUntil polls q until done says the collected records suffice.
func pollUntil(t testing.TB, q *EventQueue, done func([]record) bool) []record {
	t.Helper()
	buf := make([]byte, 64<<10)
	var recs []record
	deadline := time.Now().Add(waitTimeout)
	for !done(recs) {
		require.True(t, time.Now().Before(deadline), "timed out polling; have %v", recs)
		n, used, err := q.Poll(buf, 50*time.Millisecond)
		require.NoError(t, err)
		got := decodeRecords(t, buf[:used])
		require.Len(t, got, n)
		recs = append(recs, got...)
	}
	return recs
}

func hasKind(recs []record, kind, id int) bool {
	for _, r := range recs {
		if r.kind == kind && r.id == id {
			return true
		}
	}
	return false
}

func TestEventQueueServerRecords(t *testing.T) {
	q := NewEventQueue(0)
	_, _, err := q.Poll(make([]byte, 64), 0)
	requireCode(t, ErrNotRunning, err, "not started")

	f := NewDelimited('\n', 8)
	s := newServer(t, f, testOptions(), q)
	port := startServer(t, s)
	n, used, err := q.Poll(make([]byte, 64), 0)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Zero(t, used)

	cl := newClient(t, f, nil)
	require.NoError(t, cl.Start("127.0.0.1", port))
	for _, m := range []string{"one", "", "three"} {
		require.NoError(t, cl.Send([]byte(m)))
	}
	raw := dial(t, port)
	_, err = raw.Write([]byte("123456789\n")) // too long
	require.NoError(t, err)

	recs := pollUntil(t, q, func(r []record) bool {
		msgs, closed := 0, 0
		for _, e := range r {
			switch e.kind {
			case EventMessage:
				msgs++
			case EventClosed:
				closed++
			}
		}
		return msgs == 3 && closed == 1
	})
	// The client's connection: established, three messages in order.
	require.Equal(t, EventEstablished, recs[0].kind)
	var id int
	for _, r := range recs {
		if r.kind == EventMessage {
			id = r.id
		}
	}
	require.Greater(t, id, 0)
	var msgs []string
	for _, r := range recs {
		if r.id == id {
			assert.Zero(t, r.code)
			switch r.kind {
			case EventMessage:
				msgs = append(msgs, string(r.payload))
			case EventEstablished:
				assert.Regexp(t, `^127\.0\.0\.1 \d+$`, string(r.payload), "the peer's address")
			default:
				assert.Empty(t, r.payload)
			}
		}
	}
	assert.Equal(t, []string{"one", "", "three"}, msgs)
	// The raw connection: established, error (code and text), closed.
	var rawEvents []record
	for _, r := range recs {
		if r.id != id {
			rawEvents = append(rawEvents, r)
		}
	}
	require.Len(t, rawEvents, 3, "%v", rawEvents)
	assert.Equal(t, EventEstablished, rawEvents[0].kind)
	assert.Equal(t, EventError, rawEvents[1].kind)
	assert.Equal(t, int(ErrMessageTooLong), rawEvents[1].code)
	assert.Contains(t, string(rawEvents[1].payload), ErrMessageTooLong.String())
	assert.Equal(t, EventClosed, rawEvents[2].kind)
	assert.Equal(t, rawEvents[0].id, rawEvents[2].id)

	s.Stop()
	recs = pollUntil(t, q, func(r []record) bool { return hasKind(r, EventClosed, id) })
	require.Len(t, recs, 1)
	_, _, err = q.Poll(make([]byte, 64), time.Second)
	requireCode(t, ErrNotRunning, err, "stopped and drained")

	// A restart brings the queue back.
	require.Eventually(t, func() bool { return !cl.Running() }, waitTimeout, tick)
	port = startServer(t, s)
	n, _, err = q.Poll(make([]byte, 64), 0)
	require.NoError(t, err)
	assert.Zero(t, n)
	require.NoError(t, cl.Start("127.0.0.1", port))
	recs = pollUntil(t, q, func(r []record) bool { return len(r) > 0 })
	assert.Equal(t, EventEstablished, recs[0].kind)
	assert.Greater(t, recs[0].id, id, "ids keep growing across restarts")
}

func TestEventQueueBufferTooSmall(t *testing.T) {
	q := NewEventQueue(0)
	q.started()
	q.Message(3, bytes.Repeat([]byte("m"), 100))
	q.Closed(3)

	n, used, err := q.Poll(make([]byte, 50), 0)
	requireCode(t, ErrBufferTooSmall, err)
	assert.Zero(t, n)
	assert.Equal(t, EventHeaderSize+100, used, "used is the size needed")

	buf := make([]byte, EventHeaderSize+100+EventHeaderSize-1)
	n, used, err = q.Poll(buf, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only whole records")
	assert.Equal(t, EventHeaderSize+100, used)
	recs := decodeRecords(t, buf[:used])
	assert.Equal(t, record{kind: EventMessage, id: 3, payload: bytes.Repeat([]byte("m"), 100)}, recs[0])

	n, used, err = q.Poll(buf, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []record{{kind: EventClosed, id: 3, payload: []byte{}}}, decodeRecords(t, buf[:used]))
}

func TestEventQueueNegativeAndLargeValues(t *testing.T) {
	q := NewEventQueue(0)
	q.started()
	q.Error(0, newError(ErrHandshake, nil, "bad cert"))
	q.Established(1<<31 - 1)
	buf := make([]byte, 256)
	n, used, err := q.Poll(buf, 0)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	recs := decodeRecords(t, buf[:used])
	assert.Equal(t, record{kind: EventError, id: 0, code: -9, payload: []byte("TLS handshake failed: bad cert")}, recs[0])
	assert.Equal(t, 1<<31-1, recs[1].id)
}

func TestEventQueuePollWaits(t *testing.T) {
	q := NewEventQueue(0)
	q.started()
	buf := make([]byte, 256)

	start := time.Now()
	n, used, err := q.Poll(buf, 30*time.Millisecond)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Zero(t, used)
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond, "waited for the timeout")

	got := make(chan int, 1)
	go func() {
		n, _, _ := q.Poll(buf, waitTimeout)
		got <- n
	}()
	q.Established(7) // wakes the poller, whenever it started waiting
	assert.Equal(t, 1, recv(t, got, "poll woken by an event"))

	// A poller waiting on an empty queue learns about the stop.
	errc := make(chan error, 1)
	go func() {
		_, _, err := q.Poll(make([]byte, 256), waitTimeout)
		errc <- err
	}()
	q.stopping()
	q.stopped()
	requireCode(t, ErrNotRunning, recv(t, errc, "poll woken by stop"))
}

func TestEventQueueBackPressure(t *testing.T) {
	q := NewEventQueue(10)
	q.started()
	returnsWithin(t, "first message under the limit", func() { q.Message(1, []byte("0123456789")) })

	produced := make(chan struct{})
	go func() {
		q.Message(1, []byte("next"))
		close(produced)
	}()
	// Established/Closed/Error never wait, even on a full queue.
	returnsWithin(t, "closed on a full queue", func() { q.Closed(1) })
	select {
	case <-produced:
		t.Fatal("a message was queued over the limit")
	case <-time.After(50 * time.Millisecond):
	}

	buf := make([]byte, 256)
	n, used, err := q.Poll(buf, 0)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 2)
	recv(t, produced, "the producer to go on after Poll")
	recs := decodeRecords(t, buf[:used])
	assert.Equal(t, "0123456789", string(recs[0].payload))
	assert.Equal(t, EventClosed, recs[1].kind)
	recs = pollUntil(t, q, func(r []record) bool { return len(r) > 0 })
	assert.Equal(t, "next", string(recs[0].payload))
}

// A server whose event queue is full (nobody polls) must still stop: Stop
// releases the connection goroutine blocked on the queue.
func TestEventQueueStopReleasesBlockedProducer(t *testing.T) {
	f := NewDelimited('\n', 1024)
	q := NewEventQueue(1024)
	s := newServer(t, f, testOptions(), q)
	port := startServer(t, s)
	cl := newClient(t, f, nil)
	require.NoError(t, cl.Start("127.0.0.1", port))
	msg := bytes.Repeat([]byte("p"), 500)
	for i := 0; i < 20; i++ {
		require.NoError(t, cl.Send(msg))
	}
	require.Eventually(t, func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.msgBytes >= q.limit
	}, waitTimeout, tick, "queue full")

	returnsWithin(t, "Stop with a producer blocked on the full queue", s.Stop)
	assert.False(t, s.Running())

	// Everything that was queued can still be taken, then the queue ends.
	buf := make([]byte, 64<<10)
	var recs []record
	for {
		n, used, err := q.Poll(buf, 0)
		if err != nil {
			requireCode(t, ErrNotRunning, err)
			break
		}
		require.NotZero(t, n, "a stopped queue must not report an empty poll")
		recs = append(recs, decodeRecords(t, buf[:used])...)
	}
	require.NotEmpty(t, recs)
	assert.Equal(t, EventEstablished, recs[0].kind)
	assert.Equal(t, EventClosed, recs[len(recs)-1].kind)
	for _, r := range recs[1 : len(recs)-1] {
		assert.Equal(t, EventMessage, r.kind)
		assert.Equal(t, msg, r.payload)
	}
}

func TestEventQueueClient(t *testing.T) {
	f := NewDelimited('\n', 64)
	s, _ := echoServer(t, f, testOptions())
	port := startServer(t, s)
	q := NewEventQueue(0)
	cl := newClient(t, f, q)
	require.NoError(t, cl.Start("127.0.0.1", port))
	require.NoError(t, cl.Send([]byte("ping")))
	recs := pollUntil(t, q, func(r []record) bool { return len(r) > 0 })
	assert.Equal(t, []record{{kind: EventMessage, id: 0, payload: []byte("ping")}}, recs)

	s.Stop()
	recs = pollUntil(t, q, func(r []record) bool { return hasKind(r, EventClosed, 0) })
	assert.Equal(t, EventClosed, recs[len(recs)-1].kind)
	require.Eventually(t, func() bool {
		_, _, err := q.Poll(make([]byte, 64), 0)
		return CodeOf(err) == ErrNotRunning
	}, waitTimeout, tick, "client queue ends after closed")
}
