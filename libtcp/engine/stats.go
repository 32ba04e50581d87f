package engine

import (
	"sync/atomic"
	"time"
)

// serverCounters are a server's counters since it was created; atomics,
// cheap enough to leave on. Byte and message totals are not counted per
// message here (one shared cache line for every core); they are the
// connections' own counters, added in when a connection ends (retire) and
// summed over the live ones when asked.
type serverCounters struct {
	active, established, accepted, refused, refusedLimit atomic.Int64
	handshakeFailed, timedOut, closedForLimits           atomic.Uint64
	acceptErrors                                         atomic.Uint64
	bytesIn, bytesOut, msgsIn, msgsOut                   atomic.Uint64
}

// ServerStats is a snapshot of a server's counters (tcp_server_stats).
type ServerStats struct {
	Active, Established, Accepted, Refused, RefusedLimit uint64
	HandshakeFailed, TimedOut, ClosedForLimits           uint64
	AcceptErrors                                         uint64
	BytesIn, BytesOut, MsgsIn, MsgsOut                   uint64
	MemoryUsed                                           uint64
}

// ConnStats is a snapshot of one connection's counters (tcp_conn_stats).
type ConnStats struct {
	BytesIn, BytesOut, MsgsIn, MsgsOut uint64
	Connected                          time.Time
	Queued                             uint64
}

// retire adds an ended connection's totals.
func (s *serverCounters) retire(c *conn) {
	s.bytesIn.Add(c.stats.bytesIn.Load())
	s.bytesOut.Add(c.stats.bytesOut.Load())
	s.msgsIn.Add(c.stats.msgsIn.Load())
	s.msgsOut.Add(c.stats.msgsOut.Load())
}

func (c *conn) snapshot() ConnStats {
	return ConnStats{
		BytesIn:   c.stats.bytesIn.Load(),
		BytesOut:  c.stats.bytesOut.Load(),
		MsgsIn:    c.stats.msgsIn.Load(),
		MsgsOut:   c.stats.msgsOut.Load(),
		Connected: c.since,
		Queued:    uint64(c.queued()),
	}
}
