package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Messages larger than a read chunk, sent back to back, move the
// connection to big chunks; every byte still comes back once, in order.
func TestLargePipelinedMessagesEchoExactly(t *testing.T) {
	s, _ := echoServer(t, NewDelimited('\n', 0), testOptions())
	port := startServer(t, s)
	nc := dial(t, port)
	const n, size = 200, 16<<10 + 7 // never aligned with a chunk
	var want bytes.Buffer
	for i := 0; i < n; i++ {
		body := bytes.Repeat([]byte{byte('a' + i%26)}, size-1)
		copy(body, fmt.Sprintf("%06d", i))
		want.Write(body)
		want.WriteByte('\n')
	}
	go func() { _, _ = nc.Write(want.Bytes()) }()
	nc.SetReadDeadline(time.Now().Add(waitTimeout))
	got := make([]byte, want.Len())
	_, err := io.ReadFull(nc, got)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want.Bytes(), got), "echo differs")
	assert.Equal(t, uint64(n), s.Stats().MsgsIn)
}

// A partial message left in a pooled chunk when the socket has nothing
// more moves to the connection's own buffer, charged to the budget, and
// is completed by the next read.
func TestPartialMessageMovesToOwnBuffer(t *testing.T) {
	o := testOptions()
	o.MemoryBudget = 64 << 20
	s, _ := echoServer(t, NewDelimited('\n', 0), o)
	port := startServer(t, s)
	nc := dial(t, port)
	head := bytes.Repeat([]byte("p"), 3000)
	_, err := nc.Write(head)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.Stats().MemoryUsed > 0 }, waitTimeout, time.Millisecond,
		"the partial message is charged to the budget once the socket is empty")
	_, err = nc.Write([]byte("tail\n"))
	require.NoError(t, err)
	nc.SetReadDeadline(time.Now().Add(waitTimeout))
	line, err := bufio.NewReader(nc).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, string(head)+"tail\n", line)
	require.Eventually(t, func() bool { return s.Stats().MemoryUsed == 0 }, waitTimeout, time.Millisecond, "budget given back")
}
