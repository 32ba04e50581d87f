package engine

import (
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Buffers. A connection holds no receive buffer while nothing is pending:
// plain TCP waits for readability first and borrows a pooled chunk only to
// read, keeping it until the socket has nothing more; bytes of a message
// that is not complete then move into a buffer of the connection's own,
// sized to what arrived and charged to the budget. A connection whose reads
// fill a chunk (large messages, a fast sender) borrows a big chunk instead,
// so that one system call takes several messages.
const (
	readChunk         = 16 << 10 // pooled read buffer
	bigReadChunk      = 64 << 10 // pooled read buffer of a connection reading a lot
	minOwnedBuffer    = 512      // smallest buffer for a partial message
	maxIdleSendBuffer = 256 << 10
	writeChunk        = 256 << 10 // bytes per write call: progress is seen per chunk
)

var (
	readPool    = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}
	bigReadPool = sync.Pool{New: func() any { b := make([]byte, bigReadChunk); return &b }}
)

// putChunk gives a pooled read chunk back to its pool.
func putChunk(p *[]byte) {
	if cap(*p) == bigReadChunk {
		bigReadPool.Put(p)
	} else {
		readPool.Put(p)
	}
}

// errOwnPending: the socket has nothing more while a partial message sits
// in a pooled chunk; the reader moves it to a buffer of its own and waits.
var errOwnPending = errors.New("partial message in a pooled chunk")

// conn is all per-connection state, shared by server and client: the socket,
// the receive buffer, the send queue and its on-demand writer, the events'
// serialisation, the counters.
type conn struct {
	id          int
	raw         net.Conn        // the TCP socket; closing it ends everything
	nc          net.Conn        // what we read and write: raw, or TLS over raw
	rc          syscall.RawConn // raw's, for buffer-less waits and inline writes (plain TCP only)
	remoteIP    string
	remotePort  int
	localPort   int
	peerSubject *pkix.Name // verified peer certificate's subject; nil if none
	proxy       *ProxyInfo // the PROXY header's content; nil without one
	tlsx        connTLS    // negotiated TLS details, a STARTTLS request (tlsinfo.go, starttls.go)
	dec         Decoder    // set by the reader before the first read
	quiet       bool       // TLS: the last read at a message boundary was short (reader only)
	bigReads    bool       // plain TCP: reads fill chunks, borrow big ones (reader only)
	bt          batcher    // a read's messages for a BatchHandler (batch.go; reader only)
	small       []byte     // TLS over a conn without a socket: the quiet read's buffer (readTLSSmall)
	established atomic.Bool
	closing     atomic.Bool  // set by close: no Message call after it
	goid        atomic.Int64 // goroutine that delivers this connection's events
	readyGoid   atomic.Int64 // goroutine delivering a Ready, while it runs
	user        atomic.Pointer[any]
	since       time.Time
	stats       connCounters
	srvStats    *serverCounters // nil for a client
	budget      *budget
	opts        *Options

	idle   atomic.Int64 // idle timeout in ns; 0 = none
	evMu   sync.Mutex   // held while a callback of this connection runs
	events events

	pauseMu  sync.Mutex
	paused   bool
	pausedA  atomic.Bool // paused, for the per-message check without the lock
	resumeCh chan struct{}

	mu        sync.Mutex
	out       []byte     // queued bytes, framed, not yet taken by a writer
	files     []fileItem // files queued between bytes of out (sendfile.go)
	spare     []byte     // the writer's previous buffer, reused
	inflight  int        // bytes a writer took and has not finished writing
	held      int64      // bytes of out+inflight charged to the budget
	writer    bool       // a writer goroutine runs
	corked    bool       // the reader is delivering one read's messages: write after
	wantReady bool       // a send was refused: Ready when the queue drains
	progress  uint64     // bumped after every chunk written
	dead      bool       // closed: sends refused
	reason    CloseReason
	writeErr  *Error        // first write failure
	drained   chan struct{} // closed when out is empty and nothing is being written
	deadCh    chan struct{}
	done      chan struct{} // event goroutine finished, after Closed
	helpers   sync.WaitGroup
}

type connCounters struct {
	bytesIn, bytesOut, msgsIn, msgsOut atomic.Uint64
}

func newConn(id int, nc net.Conn, o *Options, b *budget, ss *serverCounters) *conn {
	c := &conn{
		id:       id,
		raw:      nc,
		nc:       nc,
		opts:     o,
		budget:   b,
		srvStats: ss,
		since:    time.Now(),
		deadCh:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.idle.Store(int64(o.IdleTimeout))
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.remoteIP = a.AddrPort().Addr().Unmap().String()
		c.remotePort = a.Port
	}
	if a, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		c.localPort = a.Port
	}
	if sc, ok := nc.(syscall.Conn); ok {
		c.rc, _ = sc.SyscallConn()
	}
	return c
}

// useTLS switches reading and writing to the TLS connection over raw.
func (c *conn) useTLS(t net.Conn) {
	c.nc = t
	c.rc = nil     // TLS buffers internally: only its own Read may wait
	c.quiet = true // see readTLSBoundary
}

// User is the value set with SetUser, or nil.
func (c *conn) User() any {
	if p := c.user.Load(); p != nil {
		return *p
	}
	return nil
}

// SetUser attaches the caller's value to the connection.
func (c *conn) SetUser(v any) { c.user.Store(&v) }

// ---------------------------------------------------------------------------
// Sending

// send frames msg into the queue. It never blocks on the network: with
// nothing queued, plain TCP writes at once what the kernel takes, and only
// the rest waits for a writer goroutine.
func (c *conn) send(f Framing, msg []byte) error {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return newError(ErrNoClient, nil, "connection %d is closing", c.id)
	}
	queued := len(c.out) + c.inflight
	if lim := c.opts.SendQueueLimit; lim > 0 && queued > 0 && queued+len(msg) > lim {
		c.wantReady = true
		c.mu.Unlock()
		return newError(ErrQueueFull, nil, "%d bytes queued for connection %d, limit %d", queued, c.id, lim)
	}
	before := len(c.out)
	out, err := f.Encode(c.out, msg)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.out = out
	c.stats.msgsOut.Add(1)
	if queued == 0 && !c.writer && !c.corked && c.rc != nil && len(c.files) == 0 && !c.deferLocked() {
		c.writeNowLocked()
		if len(c.out) == 0 {
			c.mu.Unlock()
			return nil
		}
		// The rest must go out whole: charge it whatever the budget says.
		c.budget.force(int64(len(c.out)))
		c.held += int64(len(c.out))
	} else if err := c.chargeLocked(before); err != nil {
		c.mu.Unlock()
		return err
	}
	if !c.writer && !c.corked {
		c.startWriterLocked()
	}
	c.mu.Unlock()
	return nil
}

// chargeLocked charges what the last message added to c.out after before;
// refused, it takes the message back out.
func (c *conn) chargeLocked(before int) error {
	delta := int64(len(c.out) - before)
	if !c.budget.charge(c.held, delta) {
		c.out = c.out[:before]
		c.wantReady = true
		c.stats.msgsOut.Add(^uint64(0))
		if !c.writer && len(c.out) == 0 {
			// No writer of ours will drain anything: other connections
			// free the budget, so offer a retry a little later.
			c.wantReady = false
			c.deliverReadyAfter(budgetRetryDelay)
		}
		return newError(ErrMemoryBudget, nil, "connection %d: the server's memory budget is used up", c.id)
	}
	c.held += delta
	return nil
}

// sendEach queues msg(0) .. msg(n-1) under one lock, in order, up to the
// first refused (whose error it returns), and writes them as send would:
// together, at once if the socket takes them (or with the read's replies
// when called from a message callback).
func (c *conn) sendEach(f Framing, n int, msg func(i int) []byte) (int, error) {
	c.mu.Lock()
	wasCorked := c.corked
	c.corked = true // no inline write per message: one write for all
	sent := 0
	var err error
	for ; sent < n; sent++ {
		if err = c.queueLocked(f, msg(sent)); err != nil {
			break
		}
	}
	if wasCorked || c.deferLocked() {
		c.mu.Unlock()
		return sent, err
	}
	c.mu.Unlock()
	c.uncork()
	return sent, err
}

// queueLocked frames msg into c.out and charges it (no write).
func (c *conn) queueLocked(f Framing, msg []byte) error {
	if c.dead {
		return newError(ErrNoClient, nil, "connection %d is closing", c.id)
	}
	queued := len(c.out) + c.inflight
	if lim := c.opts.SendQueueLimit; lim > 0 && queued > 0 && queued+len(msg) > lim {
		c.wantReady = true
		return newError(ErrQueueFull, nil, "%d bytes queued for connection %d, limit %d", queued, c.id, lim)
	}
	before := len(c.out)
	out, err := f.Encode(c.out, msg)
	if err != nil {
		return err
	}
	c.out = out
	c.stats.msgsOut.Add(1)
	return c.chargeLocked(before)
}

// deferLocked corks c while its event-queue poller handles a batch (see
// EventQueue.deferSend): the poller's replies to one batch then leave in
// one write per connection.
func (c *conn) deferLocked() bool {
	q, ok := c.events.h.(*EventQueue)
	if !ok || !q.deferSend(c) {
		return false
	}
	c.corked = true
	return true
}

func (c *conn) startWriterLocked() {
	c.writer = true
	c.helpers.Add(1)
	go c.writeLoop()
}

// cork holds writes back while the reader delivers the messages of one
// read: the replies they trigger go out in one write (one syscall, one TLS
// record) at uncork, instead of one each.
func (c *conn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

func (c *conn) uncork() {
	c.mu.Lock()
	c.corked = false
	if c.dead || c.writer || (len(c.out) == 0 && len(c.files) == 0) {
		c.mu.Unlock()
		return
	}
	if c.rc != nil && c.inflight == 0 && len(c.files) == 0 {
		before := len(c.out)
		c.writeNowLocked()
		written := int64(before - len(c.out))
		c.held -= written
		c.budget.release(written)
		if len(c.out) == 0 {
			c.signalDrainedLocked()
			// A send refused while corked waits for Ready: no writer
			// will run to deliver it, so this write must.
			ready := c.wantReady
			c.wantReady = false
			c.mu.Unlock()
			if ready {
				c.deliverReady()
			}
			return
		}
	}
	c.startWriterLocked()
	c.mu.Unlock()
}

// writeNowLocked writes as much of c.out as the socket takes without
// waiting (plain TCP, nothing else queued). MSG_NOSIGNAL: this may run on a
// host thread, where a SIGPIPE would reach the host's handler.
func (c *conn) writeNowLocked() {
	var n int
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.SendmsgN(int(fd), c.out, nil, nil, syscall.MSG_NOSIGNAL)
			if werr != syscall.EINTR {
				return true
			}
		}
	})
	if err == nil && werr != nil && werr != syscall.EAGAIN {
		err = werr
	}
	if n > 0 {
		c.countOut(n)
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	if err != nil {
		// Leave it to the writer goroutine, which reports and closes.
		return
	}
}

func (c *conn) countOut(n int) {
	c.stats.bytesOut.Add(uint64(n))
}

// writeLoop writes whatever is queued, many messages per write call (and per
// TLS record), and exits when the queue is empty.
func (c *conn) writeLoop() {
	defer c.helpers.Done()
	for {
		c.mu.Lock()
		if c.dead || (len(c.out) == 0 && len(c.files) == 0) {
			c.writer = false
			c.signalDrainedLocked()
			c.mu.Unlock()
			return
		}
		buf, files := c.out, c.files
		c.out = c.spare[:0]
		c.spare, c.files = nil, nil
		c.inflight = len(buf)
		c.mu.Unlock()

		err := c.writeSegments(buf, files)

		c.mu.Lock()
		c.inflight = 0
		c.held -= int64(len(buf))
		c.budget.release(int64(len(buf)))
		if cap(buf) <= maxIdleSendBuffer {
			c.spare = buf[:0]
		} else {
			noteBigFree(cap(buf))
		}
		ready := c.wantReady && !c.dead && err == nil && len(c.out) <= c.opts.SendLowWater
		if ready {
			c.wantReady = false
		}
		c.mu.Unlock()
		if err != nil {
			c.failWrite(err)
			c.mu.Lock()
			c.writer = false
			c.mu.Unlock()
			return
		}
		if ready {
			c.deliverReady()
		}
	}
}

// writeAll writes buf in chunks, so that the write timeout measures progress
// and the drain after a peer's EOF can see it.
func (c *conn) writeAll(buf []byte) error {
	wt := c.opts.WriteTimeout
	for len(buf) > 0 {
		chunk := buf[:min(len(buf), writeChunk)]
		if wt > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(wt))
		}
		n, err := c.nc.Write(chunk)
		if n > 0 {
			c.countOut(n)
			c.mu.Lock()
			c.progress++
			c.mu.Unlock()
		}
		if err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

func (c *conn) failWrite(err error) {
	c.mu.Lock()
	reason := CloseReset
	if errors.Is(err, os.ErrDeadlineExceeded) {
		reason = CloseWriteTimeout
		if c.srvStats != nil {
			c.srvStats.timedOut.Add(1)
		}
	}
	if c.writeErr == nil && !c.dead {
		code := ErrIO
		if reason == CloseWriteTimeout {
			code = ErrTimeout
		}
		c.writeErr = newError(code, err, "write")
	}
	c.mu.Unlock()
	c.close(reason, false)
}

func (c *conn) signalDrainedLocked() {
	if len(c.out) == 0 && c.inflight == 0 && len(c.files) == 0 && !c.writer && c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
}

// deliverReady runs the Ready event on a goroutine of its own (the event
// goroutine may be waiting for the peer), serialised with the connection's
// other events and finished before its Closed.
func (c *conn) deliverReady() {
	c.helpers.Add(1)
	go func() {
		defer c.helpers.Done()
		c.readyGoid.Store(goroutineID())
		defer c.readyGoid.Store(0)
		c.evMu.Lock()
		defer c.evMu.Unlock()
		if !c.closing.Load() {
			c.events.ready(c)
		}
	}()
}

// budgetRetryDelay is when a connection refused for the budget alone hears
// Ready: no queue of its own drains to tell it sooner.
const budgetRetryDelay = 20 * time.Millisecond

func (c *conn) deliverReadyAfter(d time.Duration) {
	c.helpers.Add(1)
	go func() {
		defer c.helpers.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			c.deliverReady() // counted in helpers before ours is done
		case <-c.deadCh:
		}
	}()
}

// queued is the number of bytes not yet handed to the kernel.
func (c *conn) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.out) + c.inflight + c.filesQueuedLocked()
}

// waitDrained waits up to timeout until everything queued was written (to
// the kernel; for TLS, encrypted first).
func (c *conn) waitDrained(timeout time.Duration) error {
	return c.waitDrainedIdle(timeout, false)
}

// waitDrainedIdle is waitDrained; with idle, the timeout counts from the
// last progress of the writer instead of from the call.
func (c *conn) waitDrainedIdle(timeout time.Duration, idle bool) error {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return newError(ErrNoClient, nil, "connection %d closed", c.id)
	}
	if len(c.out) == 0 && c.inflight == 0 && len(c.files) == 0 && !c.writer {
		c.mu.Unlock()
		return nil
	}
	if timeout <= 0 {
		c.mu.Unlock()
		return newError(ErrTimeout, nil, "data still queued for connection %d", c.id)
	}
	if c.corked && !c.writer && (len(c.out) > 0 || len(c.files) > 0) {
		c.startWriterLocked() // a flush from a message callback: write now
	}
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	ch, progress := c.drained, c.progress
	c.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-ch:
			return nil
		case <-c.deadCh:
			return newError(ErrNoClient, nil, "connection %d closed before its data was written", c.id)
		case <-t.C:
			c.mu.Lock()
			moved := c.progress != progress
			progress = c.progress
			c.mu.Unlock()
			if !idle || !moved {
				return newError(ErrTimeout, nil, "data still queued for connection %d after %v", c.id, timeout)
			}
			t.Reset(timeout)
		}
	}
}

// close shuts the connection once, discarding what is queued. reason is
// kept from the first close; quiet marks a close we asked for, which is
// not reported as an error.
func (c *conn) close(reason CloseReason, quiet bool) {
	c.closing.Store(true)
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	c.reason = reason
	if quiet {
		c.writeErr = nil
	}
	c.budget.release(int64(len(c.out)))
	c.held -= int64(len(c.out))
	c.out, c.spare = nil, nil
	files := c.files
	c.files = nil
	c.mu.Unlock()
	for _, f := range files {
		f.finish(newError(ErrNoClient, nil, "connection %d closed before the file was sent", c.id))
	}
	close(c.deadCh)
	c.raw.Close()
	c.resumeReading() // a paused reader must see the close
}

func (c *conn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// closeReason is the reason of the first close.
func (c *conn) closeReason() CloseReason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// ---------------------------------------------------------------------------
// Pausing

func (c *conn) pause() {
	c.pauseMu.Lock()
	if !c.paused {
		c.paused = true
		c.pausedA.Store(true)
		c.resumeCh = make(chan struct{})
	}
	c.pauseMu.Unlock()
	// The idle and message timeouts do not run while paused (the reader
	// re-arms them after resume). A reader blocked in read delivers what it
	// reads next only after resume (see waitResumed).
	c.raw.SetReadDeadline(time.Time{})
}

func (c *conn) resumeReading() {
	c.pauseMu.Lock()
	wasPaused := c.paused
	if c.paused {
		c.paused = false
		c.pausedA.Store(false)
		close(c.resumeCh)
	}
	c.pauseMu.Unlock()
	if idle := time.Duration(c.idle.Load()); wasPaused && idle > 0 {
		c.raw.SetReadDeadline(time.Now().Add(idle)) // for a reader still waiting in read
	}
}

func (c *conn) isPaused() bool { return c.pausedA.Load() }

// waitResumed blocks while the connection is paused; false when it closed.
func (c *conn) waitResumed() bool {
	if !c.pausedA.Load() {
		return !c.closing.Load()
	}
	c.pauseMu.Lock()
	paused, ch := c.paused, c.resumeCh
	c.pauseMu.Unlock()
	if paused {
		<-ch
	}
	return !c.closing.Load()
}

// setIdle changes the idle timeout; it applies to the wait in progress too.
func (c *conn) setIdle(d time.Duration) {
	c.idle.Store(int64(d))
	if d > 0 {
		c.raw.SetReadDeadline(time.Now().Add(d))
	} else {
		c.raw.SetReadDeadline(time.Time{})
	}
}

// ---------------------------------------------------------------------------
// Receiving

// recvBuf is the receive buffer: nil while nothing is pending, a pooled
// chunk while reading, or the connection's own buffer holding a partial
// message (charged to the budget).
type recvBuf struct {
	b          []byte
	pooled     *[]byte
	start, end int
	charged    int64
}

func (r *recvBuf) pending() int { return r.end - r.start }

func (c *conn) dropBuffer(r *recvBuf) {
	if r.pooled != nil {
		putChunk(r.pooled)
	} else if r.b != nil {
		c.budget.release(r.charged)
		if r.charged >= maxIdleSendBuffer {
			noteBigFree(int(r.charged))
		}
	}
	*r = recvBuf{}
}

// own moves pending bytes into a buffer of the connection's own of at least
// size bytes. False when the budget refuses it.
func (c *conn) own(r *recvBuf, size int) bool {
	size = max(size, minOwnedBuffer)
	if r.pooled == nil && len(r.b) >= size && r.start == 0 {
		return true
	}
	if !c.budget.charge(r.charged, int64(size)-r.charged) {
		return false
	}
	nb := make([]byte, size)
	n := copy(nb, r.b[r.start:r.end])
	if r.pooled != nil {
		putChunk(r.pooled)
	} else if r.charged >= maxIdleSendBuffer {
		noteBigFree(int(r.charged))
	}
	*r = recvBuf{b: nb, end: n, charged: int64(size)}
	return true
}

// readResult is how reading ended.
type readResult struct {
	reason CloseReason
	err    *Error // reported to the error event; nil for an orderly end
	drain  bool   // write what is queued before closing
}

// readLoop reads and decodes until the connection ends, delivering messages.
// limit is the largest buffer the framing's decoder needs (0: any).
func (c *conn) readLoop(dec Decoder, limit int) readResult {
	st := new(readState)
	defer c.endRead(st)
	r := &st.r
	bt := &c.bt
	emit := func(m []byte, partial bool) {
		if c.isPaused() {
			bt.flush(c)
			c.uncork() // what was sent so far must not wait for the resume
			ok := c.waitResumed()
			c.cork()
			if !ok {
				return
			}
		}
		c.stats.bytesIn.Add(uint64(len(m)))
		if !partial {
			c.stats.msgsIn.Add(1)
		}
		if bt.on {
			if bt.add(m, partial) {
				return
			}
			bt.flush(c) // m comes alone: what came before it goes first
		}
		c.evMu.Lock() // (no defer: a panic is recovered where evMu is reset)
		if !c.closing.Load() {
			c.events.message(c, m, partial)
		}
		c.evMu.Unlock()
	}
	st.needer, _ = dec.(Needer)
	for {
		if r.pooled != nil && c.isPaused() { // a paused connection borrows no chunk
			if r.pending() == 0 {
				c.dropBuffer(r)
			} else if !c.own(r, c.nextSize(r, limit, st.needer)) {
				return c.budgetExceeded()
			}
		}
		if !c.waitResumed() {
			return readResult{}
		}
		if up := c.takeUpgrade(); up != nil { // STARTTLS, between two reads (starttls.go)
			if res, ok := c.upgradeTLS(up, r, &dec); !ok {
				return res
			}
			st.needer, _ = dec.(Needer)
			st.msgStart, st.armed = time.Time{}, false
		}
		c.armReadDeadline(r.pending() > 0, st.msgStart, &st.armed)
		if r.pooled != nil && r.start > 0 && len(r.b)-r.end < len(r.b)/4 {
			// little room left behind a partial message: move it to the front
			r.end = copy(r.b, r.b[r.start:r.end])
			r.start = 0
		}
		if r.b != nil && r.end == len(r.b) {
			if r.start > 0 {
				r.end = copy(r.b, r.b[r.start:r.end])
				r.start = 0
			} else if c.canGrowChunk(r, limit) {
				c.growChunk(r)
			} else if !c.own(r, c.nextSize(r, limit, st.needer)) {
				return c.budgetExceeded()
			}
			if r.end == len(r.b) { // the framing let a message pass its limit
				return c.overLimit(limit)
			}
		}
		if c.rc == nil && r.pending() == 0 {
			bt.release() // TLS may wait inside its read
		}
		var n int
		var err error
		if c.rc == nil {
			// Directly, not through read: one frame less under an idle
			// TLS wait keeps the goroutine's stack small enough for the
			// runtime to halve it (tlsread.go).
			n, err = c.readTLS(r)
		} else {
			n, err = c.read(r)
		}
		if err == errOwnPending {
			if !c.own(r, c.nextSize(r, limit, st.needer)) {
				return c.budgetExceeded()
			}
			continue
		}
		if n > 0 {
			r.end += n
			c.cork()
			bt.begin(c, r.b[r.start:r.end])
			used, ferr := dec.Decode(r.b[r.start:r.end], emit)
			bt.end(c)
			c.uncork()
			r.start += used
			switch {
			case r.start == r.end && r.pooled != nil && c.rc != nil:
				r.start, r.end = 0, 0 // keep the chunk until the socket is empty (read)
				st.msgStart = time.Time{}
			case r.start == r.end:
				c.dropBuffer(r)
				st.msgStart = time.Time{}
			case r.pooled != nil:
				if st.msgStart.IsZero() || used > 0 {
					st.msgStart = time.Now()
				}
				if c.rc == nil && !c.own(r, c.nextSize(r, limit, st.needer)) {
					return c.budgetExceeded()
				}
			case used > 0:
				st.msgStart = time.Now()
			}
			if ferr != nil {
				return c.decodeFailed(ferr)
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && (c.isPaused() || c.upgradePending()) {
				continue // a timeout that fired as the connection was paused, or a STARTTLS wake-up
			}
			return c.endReason(err, r.pending() > 0, st.msgStart)
		}
	}
}

// readState is readLoop's state. It lives on the heap so that the loop's
// frame stays small: an idle TLS reader waits below it, and the runtime
// halves the stack the handshake grew only while less than a quarter of
// it is in use (tlsread.go; TestIdleTLSReaderStackShrinks).
type readState struct {
	r        recvBuf
	msgStart time.Time // first byte of a partial message
	needer   Needer
	armed    bool
}

// endRead lets go of what the reader holds.
func (c *conn) endRead(st *readState) {
	c.dropBuffer(&st.r)
	c.bt.release()
}

// overLimit ends a connection whose framing let a message pass its limit.
func (c *conn) overLimit(limit int) readResult {
	if c.srvStats != nil {
		c.srvStats.closedForLimits.Add(1)
	}
	return readResult{reason: CloseMessageTooLong, err: newError(ErrMessageTooLong, nil, "received message over the framing's limit (%d bytes buffered)", limit), drain: true}
}

// decodeFailed ends a connection whose bytes the framing refused.
func (c *conn) decodeFailed(ferr error) readResult {
	var e *Error
	if !errors.As(ferr, &e) {
		e = newError(ErrIO, ferr, "decode")
	}
	reason := CloseMessageTooLong
	if e.Code != ErrMessageTooLong {
		reason = CloseReset
	} else if c.srvStats != nil {
		c.srvStats.closedForLimits.Add(1)
	}
	return readResult{reason: reason, err: e, drain: true}
}

// nextSize is the size a partial message's buffer grows to: exactly what
// the framing says the message needs, else twice what arrived, never more
// than the framing's limit.
func (c *conn) nextSize(r *recvBuf, limit int, needer Needer) int {
	p := r.pending()
	size := 2 * max(p, minOwnedBuffer/2)
	if needer != nil {
		if need := needer.Need(); need > 0 {
			size = p + need
		}
	}
	if limit > 0 && size > limit {
		size = max(limit, p+1)
	}
	return size
}

// canGrowChunk: a full small chunk can become a big one (plain TCP, and
// a framing whose limit does not need the exact sizing of own).
func (c *conn) canGrowChunk(r *recvBuf, limit int) bool {
	return r.pooled != nil && c.rc != nil && cap(r.b) == readChunk && (limit <= 0 || limit >= bigReadChunk)
}

// growChunk moves r's bytes into a big pooled chunk; the connection reads
// into big chunks from then on.
func (c *conn) growChunk(r *recvBuf) {
	big := bigReadPool.Get().(*[]byte)
	n := copy(*big, r.b[r.start:r.end])
	putChunk(r.pooled)
	*r = recvBuf{b: *big, pooled: big, end: n}
	c.bigReads = true
}

func (c *conn) budgetExceeded() readResult {
	if c.srvStats != nil {
		c.srvStats.closedForLimits.Add(1)
	}
	return readResult{
		reason: CloseMemoryBudget,
		err:    newError(ErrMemoryBudget, nil, "connection %d needs more memory than its share of the budget", c.id),
		drain:  true,
	}
}

// read reads into r (plain TCP; TLS: readTLS), taking a pooled chunk if r
// holds nothing. It waits for readability before taking the chunk, so that
// idle connections hold no buffer.
func (c *conn) read(r *recvBuf) (int, error) {
	var n int
	var rerr error
	own := false
	err := c.rc.Read(func(fd uintptr) bool {
		if r.b == nil {
			if c.bigReads {
				r.pooled = bigReadPool.Get().(*[]byte)
			} else {
				r.pooled = readPool.Get().(*[]byte)
			}
			r.b = *r.pooled
		}
		space := len(r.b) - r.end
		for {
			n, rerr = syscall.Read(int(fd), r.b[r.end:])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			// Nothing more: no chunk (nor batch slice) is held while waiting.
			c.bt.release()
			if r.pooled != nil && r.end == r.start {
				putChunk(r.pooled)
				*r = recvBuf{}
			} else if r.pooled != nil {
				own, rerr = true, nil
				return true
			}
			return false
		}
		if n == space {
			c.bigReads = true
		} else if r.pooled != nil && cap(r.b) == bigReadChunk && r.end == 0 && n < readChunk/2 {
			c.bigReads = false
		}
		return true
	})
	switch {
	case own:
		return 0, errOwnPending
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// armReadDeadline sets the read deadline from the idle and message
// timeouts; with neither it touches the socket only to clear what it set.
func (c *conn) armReadDeadline(partial bool, msgStart time.Time, armed *bool) {
	// setIdle from another thread may store a new timeout and set its
	// deadline between our load and our SetReadDeadline: do it again until
	// the value we armed is the current one.
	for {
		idle := c.idle.Load()
		c.armReadDeadlineFor(time.Duration(idle), partial, msgStart, armed)
		if c.idle.Load() == idle {
			return
		}
	}
}

func (c *conn) armReadDeadlineFor(idle time.Duration, partial bool, msgStart time.Time, armed *bool) {
	mt := c.opts.MessageTimeout
	if !partial {
		mt = 0
	}
	if idle <= 0 && mt <= 0 {
		if *armed {
			c.raw.SetReadDeadline(time.Time{})
			*armed = false
		}
		return
	}
	*armed = true
	defer func() {
		if c.isPaused() { // paused meanwhile: pause's clearing may have come first
			c.raw.SetReadDeadline(time.Time{})
		}
	}()
	var dl time.Time
	if idle > 0 {
		dl = time.Now().Add(idle)
	}
	if mt > 0 {
		if md := msgStart.Add(mt); dl.IsZero() || md.Before(dl) {
			dl = md
		}
	}
	c.raw.SetReadDeadline(dl)
}

// endReason turns the read error that ended a connection into its close
// reason and what the user is told.
func (c *conn) endReason(err error, partial bool, msgStart time.Time) readResult {
	c.mu.Lock()
	dead, reason, werr := c.dead, c.reason, c.writeErr
	c.mu.Unlock()
	switch {
	case werr != nil:
		return readResult{reason: reason, err: werr}
	case dead:
		return readResult{reason: reason}
	case errors.Is(err, io.EOF):
		return readResult{reason: ClosePeer, drain: !c.opts.CloseOnEOF}
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.srvStats != nil {
			c.srvStats.timedOut.Add(1)
		}
		if partial && c.opts.MessageTimeout > 0 && time.Since(msgStart) >= c.opts.MessageTimeout {
			return readResult{reason: CloseMessageTimeout, err: newError(ErrTimeout, nil, "message not completed within %v", c.opts.MessageTimeout)}
		}
		return readResult{reason: CloseIdleTimeout, err: newError(ErrTimeout, nil, "idle for %v", time.Duration(c.idle.Load()))}
	}
	return readResult{reason: CloseReset, err: newError(ErrIO, err, "read")}
}

// finish ends a connection whose reading ended: for an EOF or a protocol
// error, what is queued is written first (bounded), then everything closes,
// helpers finish, and the error and closed events run.
func (c *conn) finish(res readResult, unlist func()) {
	if res.drain {
		bound, idle := c.opts.WriteTimeout, true
		if bound <= 0 {
			bound = c.opts.Linger
		}
		if hw, ok := c.events.h.(handledWaiter); ok && bound > 0 {
			hw.waitHandled(bound) // replies a poller sends come after it handled the events
		}
		if err := c.waitDrainedIdle(bound, idle); err != nil && CodeOf(err) == ErrTimeout && res.err == nil && res.reason == ClosePeer {
			res.err = newError(ErrTimeout, nil, "peer closed; queued data not taken within %v", bound)
			res.reason = CloseWriteTimeout
			if c.srvStats != nil {
				c.srvStats.timedOut.Add(1)
			}
		}
	}
	if unlist != nil {
		unlist()
	}
	c.close(res.reason, false)
	c.helpers.Wait()
	reason := c.closeReason()
	c.mu.Lock()
	werr := c.writeErr
	c.mu.Unlock()
	report := res.err
	if report == nil && werr != nil {
		report = werr
	}
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if report != nil && reason != CloseStopped && reason != CloseLocal {
		c.events.h.Error(c.id, report)
	}
	c.events.closed(c, reason)
}
