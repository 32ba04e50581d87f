package engine

import (
	"bufio"
	"crypto/tls"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An idle TLS connection's reader must wait with a stack the runtime can
// shrink: the handshake grows it to 8 KiB, and a collection halves it only
// while less than a quarter is in use. readLoop's frame (readState keeps its
// state on the heap) and tlsread.go's waiting frames decide that: a few
// dozen bytes more and every idle TLS connection keeps 4 KiB more (the
// issue-10 figure of 19,000 idle mutual-TLS connections went from 18.7 to
// 22.5 KiB each when that happened).
func TestIdleTLSReaderStackShrinks(t *testing.T) {
	if raceEnabled {
		t.Skip("frames are larger under the race detector; make test runs this test without it too")
	}
	const n = 64
	p := newPKI(t, "")
	s, _ := echoServer(t, NewDelimited('\n', 0), testOptions())
	port := startTLS(t, s, p.server)
	cfg := rawTLSConfig(t, p, 0)

	stacks := func() uint64 {
		var ms runtime.MemStats
		for i := 0; i < 3; i++ {
			runtime.GC() // a collection shrinks the stacks of parked goroutines
		}
		runtime.ReadMemStats(&ms)
		return ms.StackInuse
	}
	before := stacks()
	for i := 0; i < n; i++ {
		nc := dial(t, port)
		tc := tls.Client(nc, cfg)
		tc.SetDeadline(time.Now().Add(waitTimeout))
		_, err := tc.Write([]byte("ping\n")) // handshake, one echo: then idle
		require.NoError(t, err)
		line, err := bufio.NewReader(tc).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "ping\n", line)
	}
	require.Eventually(t, func() bool { return len(s.ClientIDs()) == n }, waitTimeout, tick)
	perConn := float64(stacks()-before) / n
	t.Logf("goroutine stack per idle TLS connection: %.0f bytes", perConn)
	require.Less(t, perConn, 6144.0, "idle TLS readers keep the 8 KiB stack of their handshake")
}
