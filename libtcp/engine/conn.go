package engine

import (
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Receive buffers start small and grow only for long messages, so that
// thousands of idle connections stay cheap.
const (
	initialReadBuffer = 16 << 10
	maxIdleReadBuffer = 64 << 10
	maxIdleSendBuffer = 1 << 20
)

// conn is all per-connection state, shared by server and client: the socket,
// the send queue and its writer goroutine, the peer's identity.
type conn struct {
	id          int
	raw         net.Conn // the TCP socket; closing it ends everything
	nc          net.Conn // what we read and write: raw, or TLS over raw
	remoteIP    string
	remotePort  int
	peerSubject *pkix.Name // verified peer certificate's subject; nil if none
	established atomic.Bool
	closing     atomic.Bool  // set by close: no Message call after it
	goid        atomic.Int64 // goroutine that delivers this connection's events

	mu        sync.Mutex
	out       []byte // queued bytes, framed
	spare     []byte // the writer's previous buffer, reused
	limit     int
	dead      bool          // closed: sends refused
	quiet     bool          // closed on purpose (stop, close): no error event
	writeErr  *Error        // first write failure
	writing   bool          // the writer holds bytes it has not written yet
	drained   chan struct{} // closed when out is empty and nothing is being written
	wake      chan struct{}
	deadCh    chan struct{}
	done      chan struct{} // reader goroutine finished, after Closed
	writeDone chan struct{}
}

func newConn(id int, nc net.Conn, limit int) *conn {
	c := &conn{
		id:        id,
		raw:       nc,
		nc:        nc,
		limit:     limit,
		wake:      make(chan struct{}, 1),
		deadCh:    make(chan struct{}),
		done:      make(chan struct{}),
		writeDone: make(chan struct{}),
	}
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.remoteIP = a.IP.String()
		c.remotePort = a.Port
	}
	return c
}

// send frames msg into the queue and wakes the writer. It never blocks on
// the network.
func (c *conn) send(f Framing, msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return newError(ErrNoClient, nil, "connection %d is closing", c.id)
	}
	if c.limit > 0 && len(c.out) > 0 && len(c.out)+len(msg) >= c.limit {
		return newError(ErrQueueFull, nil, "%d bytes queued for connection %d, limit %d", len(c.out), c.id, c.limit)
	}
	out, err := f.Encode(c.out, msg)
	if err != nil {
		return err
	}
	c.out = out
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// writeLoop writes whatever is queued, as one write per wake-up, so that
// many small messages share a syscall (and a TLS record).
func (c *conn) writeLoop() {
	defer close(c.writeDone)
	for {
		select {
		case <-c.wake:
		case <-c.deadCh:
			return
		}
		c.mu.Lock()
		buf := c.out
		c.out = c.spare[:0]
		c.spare = nil
		c.writing = len(buf) > 0
		c.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		_, err := c.nc.Write(buf)
		if err != nil {
			c.mu.Lock()
			if c.writeErr == nil && !c.quiet {
				c.writeErr = newError(ErrIO, err, "write")
			}
			c.mu.Unlock()
			c.close(false)
			return
		}
		c.mu.Lock()
		if cap(buf) <= maxIdleSendBuffer {
			c.spare = buf[:0]
		}
		c.writing = false
		if len(c.out) == 0 && c.drained != nil {
			close(c.drained)
			c.drained = nil
		}
		c.mu.Unlock()
	}
}

// waitDrained waits up to timeout until everything queued was written (to
// the kernel; for TLS, encrypted first).
func (c *conn) waitDrained(timeout time.Duration) error {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return newError(ErrNoClient, nil, "connection %d closed", c.id)
	}
	if len(c.out) == 0 && !c.writing {
		c.mu.Unlock()
		return nil
	}
	if timeout <= 0 {
		c.mu.Unlock()
		return newError(ErrTimeout, nil, "data still queued for connection %d", c.id)
	}
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	ch := c.drained
	c.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-c.deadCh:
		return newError(ErrNoClient, nil, "connection %d closed before its data was written", c.id)
	case <-t.C:
		return newError(ErrTimeout, nil, "data still queued for connection %d after %v", c.id, timeout)
	}
}

// close shuts the connection once; quiet marks a close we asked for, which
// is not reported as an error.
func (c *conn) close(quiet bool) {
	c.closing.Store(true)
	c.mu.Lock()
	if quiet {
		c.quiet = true
	}
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	c.out = nil
	c.mu.Unlock()
	close(c.deadCh)
	c.raw.Close()
}

// readLoop reads and decodes until the connection ends, delivering messages
// to h. It returns the error to report, or nil for an orderly end.
func (c *conn) readLoop(dec Decoder, maxMsg int, h Handler) *Error {
	buf := make([]byte, initialReadBuffer)
	start, end := 0, 0
	emit := func(m []byte, _ bool) {
		if !c.closing.Load() {
			h.Message(c.id, m)
		}
	}
	for {
		if end == len(buf) {
			if start > 0 {
				end = copy(buf, buf[start:end])
				start = 0
			} else {
				buf = grow(buf, end, maxMsg)
			}
		}
		n, err := c.nc.Read(buf[end:])
		if n > 0 {
			end += n
			used, ferr := dec.Decode(buf[start:end], emit)
			start += used
			if start == end {
				start, end = 0, 0
				if len(buf) > maxIdleReadBuffer {
					buf = make([]byte, initialReadBuffer)
				}
			}
			if ferr != nil {
				var e *Error
				if !errors.As(ferr, &e) {
					e = newError(ErrIO, ferr, "decode")
				}
				return e
			}
		}
		if err != nil {
			return c.endReason(err)
		}
	}
}

func grow(buf []byte, used, maxMsg int) []byte {
	size := 2 * len(buf)
	if maxMsg > 0 && size > maxMsg+1 {
		size = maxMsg + 1
	}
	if size <= len(buf) {
		size = len(buf) + initialReadBuffer
	}
	nb := make([]byte, size)
	copy(nb, buf[:used])
	return nb
}

// endReason turns the read error that ended a connection into what the
// user is told: nothing for an orderly close or one we asked for.
func (c *conn) endReason(err error) *Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writeErr != nil {
		return c.writeErr
	}
	if c.quiet || errors.Is(err, io.EOF) {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return newError(ErrTimeout, err, "read")
	}
	return newError(ErrIO, err, "read")
}
