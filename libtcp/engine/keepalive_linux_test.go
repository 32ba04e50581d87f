package engine

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sockopt(t *testing.T, c net.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	var v int
	var gerr error
	require.NoError(t, rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, opt) }))
	require.NoError(t, gerr)
	return v
}

// Keep-alive is set on the listening socket only: accepted sockets must
// carry it (Linux copies it), over-large values are capped, not dropped.
func TestAcceptedSocketsInheritKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		name                string
		on                  bool
		idle, intvl         time.Duration
		count               int
		wantIdle, wantIntvl int
		wantCount           int
	}{
		{"set", true, 7 * time.Second, 3 * time.Second, 4, 7, 3, 4},
		{"rounded up", true, 1500 * time.Millisecond, 10 * time.Millisecond, 1, 2, 1, 1},
		{"capped", true, 24 * time.Hour, 24 * time.Hour, 127, 32767, 32767, 127},
		{"off", false, 0, 0, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			o.KeepAlive, o.KeepAliveIdle, o.KeepAliveInterval, o.KeepAliveCount = tc.on, tc.idle, tc.intvl, tc.count
			ln, err := listen(o, 0)
			require.NoError(t, err)
			defer ln.Close()
			cl, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer cl.Close()
			ac, err := ln.Accept()
			require.NoError(t, err)
			defer ac.Close()
			applySocketOptions(ac, &o, true)
			assert.Equal(t, 1, sockopt(t, ac, syscall.IPPROTO_TCP, syscall.TCP_NODELAY))
			if !tc.on {
				assert.Equal(t, 0, sockopt(t, ac, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE))
				return
			}
			assert.Equal(t, 1, sockopt(t, ac, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE))
			assert.Equal(t, tc.wantIdle, sockopt(t, ac, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE))
			assert.Equal(t, tc.wantIntvl, sockopt(t, ac, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL))
			assert.Equal(t, tc.wantCount, sockopt(t, ac, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT))
		})
	}
}
