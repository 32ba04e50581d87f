package engine

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// batchRecorder is a BatchHandler that notes how each message came.
type batchRecorder struct {
	HandlerFuncs
	want    bool
	mu      sync.Mutex
	msgs    []string
	batches int // Messages calls
	singles int // MessageEx calls
	partial int
	done    chan struct{}
	total   int
}

func (b *batchRecorder) WantsBatch() bool { return b.want }

func (b *batchRecorder) Messages(id int, buf []byte, parts []Part, user any) {
	b.mu.Lock()
	b.batches++
	for _, p := range parts {
		if p.Partial {
			b.partial++
		}
		b.msgs = append(b.msgs, string(buf[p.Off:p.Off+p.Len]))
	}
	b.check()
	b.mu.Unlock()
}

func (b *batchRecorder) MessageEx(id int, data []byte, partial bool, user any) {
	b.mu.Lock()
	b.singles++
	if partial {
		b.partial++
	}
	b.msgs = append(b.msgs, string(data))
	b.check()
	b.mu.Unlock()
}

func (b *batchRecorder) check() {
	if len(b.msgs) == b.total {
		close(b.done)
	}
}

func runBatch(t *testing.T, f Framing, want bool, payload []byte, total int) *batchRecorder {
	h := &batchRecorder{want: want, done: make(chan struct{}), total: total}
	s := newServer(t, f, testOptions(), h)
	port := startServer(t, s)
	nc := dial(t, port)
	_, err := nc.Write(payload)
	require.NoError(t, err)
	recv(t, h.done, "all messages")
	return h
}

func TestBatchHandlerGetsAReadsMessagesInOneCall(t *testing.T) {
	var sb strings.Builder
	var want []string
	for i := 0; i < 200; i++ {
		m := "message " + strconv.Itoa(i)
		want = append(want, m)
		sb.WriteString(m + "\n")
	}
	h := runBatch(t, NewDelimited('\n', 0), true, []byte(sb.String()), len(want))
	assert.Equal(t, want, h.msgs, "every message, in order")
	assert.Zero(t, h.singles)
	assert.Less(t, h.batches, len(want), "messages of one read share a call")
}

func TestBatchHandlerDeclined(t *testing.T) {
	h := runBatch(t, NewDelimited('\n', 0), false, []byte("a\nb\nc\n"), 3)
	assert.Equal(t, []string{"a", "b", "c"}, h.msgs)
	assert.Zero(t, h.batches)
	assert.Equal(t, 3, h.singles)
}

func TestBatchHandlerPartsOfOverlongMessages(t *testing.T) {
	// Lines over 8 bytes come in flagged parts of 8, in order with the rest.
	f, err := NewEOLLines([]byte("\r\n"), 8, OverlongParts)
	require.NoError(t, err)
	h := runBatch(t, f, true, []byte("ab\r\n"+strings.Repeat("x", 20)+"\r\nend\r\n"), 5)
	assert.Equal(t, []string{"ab", "xxxxxxxx", "xxxxxxxx", "xxxx", "end"}, h.msgs)
	assert.Equal(t, 2, h.partial)
}

func TestSendManyQueuesInOrderAndStopsAtTheFirstRefused(t *testing.T) {
	f := NewDelimited('\n', 8)
	s, r := echoServer(t, f, testOptions())
	port := startServer(t, s)
	nc := dial(t, port)
	id := r.waitEstablished(t, 1)[0]

	n, err := s.SendMany(id, [][]byte{[]byte("a"), []byte("bb"), []byte("ccc")})
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	// The third is too long for the framing: two queued, its error returned.
	n, err = s.SendMany(id, [][]byte{[]byte("d"), []byte("e"), []byte("much too long"), []byte("f")})
	assert.Equal(t, 2, n)
	requireCode(t, ErrMessageTooLong, err)
	n, err = s.SendMany(id+1000, [][]byte{[]byte("x")})
	assert.Zero(t, n)
	requireCode(t, ErrNoClient, err)

	nc.SetReadDeadline(time.Now().Add(waitTimeout))
	got := make([]byte, len("a\nbb\nccc\nd\ne\n"))
	_, err = io.ReadFull(nc, got)
	require.NoError(t, err)
	assert.Equal(t, "a\nbb\nccc\nd\ne\n", string(got))
}

func TestClientSendMany(t *testing.T) {
	s, _ := echoServer(t, NewDelimited('\n', 0), testOptions())
	port := startServer(t, s)
	rc := newRecorder("client")
	cl := newClient(t, NewDelimited('\n', 0), rc)
	n, err := cl.SendMany([][]byte{[]byte("x")})
	assert.Zero(t, n)
	requireCode(t, ErrNotRunning, err)
	require.NoError(t, cl.Start("127.0.0.1", port))
	n, err = cl.SendMany([][]byte{[]byte("one"), []byte("two"), []byte("three")})
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	rc.waitFor(t, func() bool { return rc.count(evMessage, 0) == 3 }, "3 echoes")
	assert.Equal(t, [][]byte{[]byte("one"), []byte("two"), []byte("three")}, rc.messages(0))
}
