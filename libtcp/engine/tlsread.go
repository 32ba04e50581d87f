package engine

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// readTLS reads into r over TLS (c.rc is nil: crypto/tls buffers records
// itself). With nothing pending (r.b nil), a busy connection reads into a
// pooled chunk, which crypto/tls's Read may hold while it waits. A quiet
// one -- idle, or whose peer sends one request at a time: the last read at
// a boundary was short -- waits holding no buffer, as plain TCP does:
// first a probe takes what crypto/tls buffered already (tlsProbe), then,
// if there was nothing, the wait for readability is on the raw socket (its
// syscall.RawConn), and only then does a chunk go to crypto/tls's Read.
//
// Parked there, outside crypto/tls, the goroutine's stack is shallow
// enough for the runtime to shrink it: a goroutine parked inside
// crypto/tls's Read keeps the 8 KiB its handshake grew. The runtime halves
// a stack at a collection only while less than a quarter of it is in use,
// counting 800 bytes for nosplit functions: an 8 KiB stack shrinks only if
// the frames from the goroutine's start down to the wait take less than
// 1,248 bytes. This function is the frame that waits: keep it small (the
// probe and the reads are functions of their own, the wait's state is on
// the heap).
func (c *conn) readTLS(r *recvBuf) (int, error) {
	if r.b == nil && c.quiet {
		w := c.tlsProbe(r)
		if w.rc == nil {
			return w.n, w.err
		}
		// Nothing buffered: wait for the socket holding no buffer. The
		// wait ends with the idle timeout, a close, a pause's or STARTTLS's
		// wake-up like a read would (its error goes to readLoop as a
		// read's).
		if err := w.rc.Read(w.ready); err != nil {
			return 0, err
		}
	}
	return c.readTLSRead(r)
}

// tlsWait is a quiet read's probe result and wait.
type tlsWait struct {
	rc    syscall.RawConn // nil: no wait, n and err are the read's result
	n     int
	err   error
	woken bool
}

// ready is the wait's rc.Read callback: a peek first; after a wake-up by
// the poller, readable (or closed) without another system call.
func (w *tlsWait) ready(fd uintptr) bool {
	if w.woken {
		return true
	}
	w.woken = true
	return socketReadable(fd)
}

// readTLSRead is the read itself: into a pooled chunk at a boundary.
//
//go:noinline
func (c *conn) readTLSRead(r *recvBuf) (int, error) {
	if r.b == nil {
		return c.readTLSChunk(r)
	}
	return c.nc.Read(r.b[r.end:])
}

// tlsQuietRead: a read at a message boundary shorter than this marks the
// connection quiet.
const tlsQuietRead = 512

// readTLSChunk reads into a pooled chunk at a message boundary.
func (c *conn) readTLSChunk(r *recvBuf) (int, error) {
	r.pooled = readPool.Get().(*[]byte)
	r.b = *r.pooled
	n, err := c.nc.Read(r.b[r.end:])
	if n == 0 {
		c.dropBuffer(r)
	}
	c.quiet = n < tlsQuietRead
	return n, err
}

// tlsProbeDeadline is a read deadline long past: a read through crypto/tls
// with it returns what the TLS layer already holds, and otherwise fails at
// once with os.ErrDeadlineExceeded, before any system call. That error is
// a temporary net.Error, which crypto/tls does not keep as the
// connection's error (readRecordOrCCS): the next read works, and a record
// it had begun to buffer stays buffered.
var tlsProbeDeadline = time.Unix(1, 0)

// tlsProbe reads what crypto/tls holds already (the rest of a record, or
// whole records it read from the socket with the last one), without
// waiting. It returns raw's RawConn to wait on when there was nothing, or
// else (rc nil) the read's result.
//
//go:noinline
func (c *conn) tlsProbe(r *recvBuf) *tlsWait {
	w := new(tlsWait)
	var rc syscall.RawConn
	if sc, ok := c.raw.(syscall.Conn); ok {
		rc, _ = sc.SyscallConn()
	}
	if rc == nil {
		w.n, w.err = c.readTLSSmall(r) // no socket under raw to wait on
		return w
	}
	r.pooled = readPool.Get().(*[]byte)
	r.b = *r.pooled
	c.raw.SetReadDeadline(tlsProbeDeadline)
	n, err := c.nc.Read(r.b[r.end:])
	// The deadline readLoop armed, again: at a message boundary it is the
	// idle timeout's, from now (armReadDeadline also undoes this deadline
	// if a pause cleared the deadline meanwhile).
	armed := true
	c.armReadDeadline(false, time.Time{}, &armed)
	if n == 0 {
		c.dropBuffer(r)
	}
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		// Data (a busy connection), or the end: a closed or reset
		// connection, a TLS alert. (Another thread that set a deadline
		// between ours and the read -- setIdle, resume -- let the probe
		// wait like an ordinary read; what it returned is as good.)
		c.quiet = n < tlsQuietRead
		w.n, w.err = n, err
		return w
	}
	w.rc = rc
	return w
}

// socketReadable: fd has bytes to read, or an end or error to report
// (false only for "would block").
func socketReadable(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}

// readTLSSmall waits in crypto/tls's Read with the connection's own small
// buffer, for a raw connection without a socket to wait on; the bytes go
// to a pooled chunk once they came.
func (c *conn) readTLSSmall(r *recvBuf) (int, error) {
	if c.small == nil {
		c.small = make([]byte, tlsQuietRead)
	}
	n, err := c.nc.Read(c.small)
	if n > 0 {
		r.pooled = readPool.Get().(*[]byte)
		r.b = *r.pooled
		copy(r.b[r.end:], c.small[:n])
	}
	c.quiet = n < len(c.small)
	return n, err
}
