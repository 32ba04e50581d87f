package engine

import (
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"
)

// Client is one TCP or TLS connection to a server. Its events go to a
// Handler with id 0 (there is no Established: Start returning nil is it).
// With Options.Reconnect, a lost connection is replaced by a new one, with
// exponential back-off, until Stop. Every method is safe for concurrent
// use, also from inside the handler.
type Client struct {
	framing Framing

	startMu sync.Mutex // serialises Start
	mu      sync.Mutex
	opts    Options
	handler Handler
	running bool               // connected
	c       *conn              // the current (or last) connection
	cancel  context.CancelFunc // aborts a connect in progress
	session *clientSession     // from Start to the end of its last Closed
	tlsx    clientTLS          // certificate callback, session cache (tlsclient.go)
}

// clientSession is one Start's life: its connections, one after another
// when reconnecting, all served by one goroutine so events stay in order.
type clientSession struct {
	stopped chan struct{} // closed by Stop
	done    chan struct{} // the session goroutine ended
	goid    int64
	dial    func(ctx context.Context) (*conn, error)
}

// NewClient returns a stopped client.
func NewClient(f Framing, opts Options, h Handler) *Client {
	if f == nil {
		f = Continuous{}
	}
	if h == nil {
		h = HandlerFuncs{}
	}
	return &Client{framing: f, opts: opts, handler: h}
}

// SetOptions replaces the options; only while stopped.
func (cl *Client) SetOptions(o Options) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.running || cl.session != nil {
		return newError(ErrAlreadyRunning, nil, "options are set before start")
	}
	cl.opts = o
	return nil
}

// Options returns the current options.
func (cl *Client) Options() Options {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.opts
}

// SetHandler replaces the handler; only while stopped.
func (cl *Client) SetHandler(h Handler) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.running || cl.session != nil {
		return newError(ErrAlreadyRunning, nil, "the handler is set before start")
	}
	if h == nil {
		h = HandlerFuncs{}
	}
	cl.handler = h
	return nil
}

// Framing returns the client's framing.
func (cl *Client) Framing() Framing { return cl.framing }

// Start connects with plain TCP.
func (cl *Client) Start(host string, port int) error { return cl.start(host, port, nil) }

// StartTLS connects with TLS. files.CA empty means the system's CAs;
// files.Cert and Key are the client's own certificate for mutual TLS.
func (cl *Client) StartTLS(host string, port int, files TLSFiles) error {
	return cl.start(host, port, files)
}

func (cl *Client) start(host string, port int, src TLSSource) error {
	startIdleRelease() // a process with clients only returns memory too
	cl.startMu.Lock()
	defer cl.startMu.Unlock()
	cl.mu.Lock()
	if cl.running || cl.session != nil {
		cl.mu.Unlock()
		return newError(ErrAlreadyRunning, nil, "client already running")
	}
	o, h := cl.opts, cl.handler
	cl.mu.Unlock()

	if port <= 0 || port > 65535 {
		return newError(StartWrongPort, nil, "port %d outside 1..65535", port)
	}
	cfg, err := cl.tlsx.prepare(src, host, o) // nil: plain TCP
	if err != nil {
		return err
	}
	ss := &clientSession{stopped: make(chan struct{}), done: make(chan struct{})}
	ss.dial = func(ctx context.Context) (*conn, error) {
		c, err := dialConn(ctx, host, port, cfg, &o)
		if err == nil {
			c.dec = cl.framing.NewDecoder()
		}
		return c, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	cl.mu.Lock()
	cl.cancel = cancel
	cl.mu.Unlock()
	c, err := ss.dial(ctx)
	cl.mu.Lock()
	cl.cancel = nil
	aborted := ctx.Err() != nil // Stop ran while we connected
	cl.mu.Unlock()
	cancel()
	if err != nil {
		return err
	}

	cl.mu.Lock()
	if aborted {
		cl.mu.Unlock()
		c.raw.Close()
		return newError(StartConnect, context.Canceled, "stopped while connecting")
	}
	c.events = eventsOf(h)
	cl.running = true
	cl.c = c
	cl.session = ss
	if lc, ok := h.(lifecycle); ok {
		lc.started()
	}
	cl.mu.Unlock()
	go cl.run(ss, c, h, &o)
	return nil
}

// dialConn connects (and handshakes) within Options.ConnectTimeout.
func dialConn(ctx context.Context, host string, port int, cfg *clientTLSSetup, o *Options) (*conn, error) {
	if o.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.ConnectTimeout)
		defer cancel()
	}
	d := net.Dialer{KeepAliveConfig: keepAliveConfig(o)}
	if o.BindAddress != "" {
		ip := net.ParseIP(o.BindAddress)
		if ip == nil {
			return nil, newError(StartConnect, nil, "local address %q is not an IP address", o.BindAddress)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, newError(StartConnect, err, "connect to %s", addr)
	}
	applySocketOptions(nc, o, false)
	if ph := o.ProxyHeader; ph != nil {
		if err := WriteProxyHeader(nc, ph.Version, net.TCPAddrFromAddrPort(ph.Src), net.TCPAddrFromAddrPort(ph.Dst)); err != nil {
			nc.Close()
			return nil, newError(StartConnect, err, "PROXY header to %s", addr)
		}
	}
	c := newConn(0, nc, o, nil, nil)
	if cfg != nil {
		if err := cfg.handshake(ctx, c); err != nil {
			nc.Close()
			return nil, newError(StartConnectInit, err, "TLS handshake with %s", addr)
		}
	}
	c.established.Store(true)
	return c, nil
}

// SetRecordLength changes the record length of the connection (framing
// Records).
func (cl *Client) SetRecordLength(n int) error {
	c, err := cl.live()
	if err != nil {
		return err
	}
	rs, ok := c.dec.(RecordLengthSetter)
	if !ok {
		return newError(ErrInvalidArg, nil, "the client's framing has no record length")
	}
	return rs.SetRecordLength(n)
}

// run serves the session's connections: the first, then, when
// reconnecting, each new one, until Stop or a loss without reconnect.
func (cl *Client) run(ss *clientSession, c *conn, h Handler, o *Options) {
	defer close(ss.done)
	ss.goid = goroutineID()
	var last *conn
	for c != nil {
		last = c
		c.goid.Store(ss.goid)
		cl.serve(ss, c, o)
		close(c.done)
		c = cl.reconnect(ss, h, o, c.closeReason())
	}
	cl.mu.Lock()
	if cl.session == ss {
		cl.session = nil
	}
	if cl.session == nil && cl.c == last { // not restarted meanwhile
		if lc, ok := h.(lifecycle); ok {
			lc.stopped()
		}
	}
	cl.mu.Unlock()
}

func (cl *Client) serve(ss *clientSession, c *conn, o *Options) {
	var res readResult
	func() {
		defer func() {
			if r := recover(); r != nil {
				res = readResult{reason: CloseInternal, err: newError(ErrInternal, nil, "panic in handler: %v", r)}
				c.evMu.TryLock() // the panic may have left it locked
				c.evMu.Unlock()
			}
		}()
		res = c.readLoop(c.dec, ReadBufferLimit(cl.framing))
	}()
	c.finish(res, func() {
		cl.mu.Lock()
		if cl.c == c {
			cl.running = false
		}
		// Without a reconnect to come, the session is over before Closed
		// runs, so that Closed may start the client again.
		if cl.session == ss && (!o.Reconnect || isClosed(ss.stopped)) {
			cl.session = nil
		}
		cl.mu.Unlock()
	})
}

// reconnect connects again after a lost connection, with exponential
// back-off and jitter, reporting each attempt; nil when the session ends.
func (cl *Client) reconnect(ss *clientSession, h Handler, o *Options, reason CloseReason) *conn {
	if !o.Reconnect || reason == CloseStopped || reason == CloseLocal {
		return nil
	}
	ch, _ := h.(ConnectHandler)
	wait := max(o.ReconnectMin, time.Millisecond)
	for attempt := 1; ; attempt++ {
		jitter := 0.8 + 0.4*rand.Float64()
		t := time.NewTimer(time.Duration(float64(wait) * jitter))
		select {
		case <-ss.stopped:
			t.Stop()
			return nil
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		cl.mu.Lock()
		if cl.session != ss {
			cl.mu.Unlock()
			cancel()
			return nil
		}
		cl.cancel = cancel
		cl.mu.Unlock()
		c, err := ss.dial(ctx)
		cl.mu.Lock()
		cl.cancel = nil
		stopped := cl.session != ss || isClosed(ss.stopped)
		if err == nil && !stopped {
			c.events = eventsOf(h)
			cl.c = c
			cl.running = true
		}
		cl.mu.Unlock()
		cancel()
		if stopped {
			if c != nil {
				c.raw.Close()
			}
			return nil
		}
		if ch != nil {
			ch.Connect(attempt, err)
		}
		if err == nil {
			return c
		}
		logf(LogDebug, "reconnect attempt %d: %v", attempt, err)
		wait = min(2*wait, max(o.ReconnectMax, o.ReconnectMin))
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Running reports whether the client is connected.
func (cl *Client) Running() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.running
}

// Stop closes the connection -- after up to Options.Linger for queued data
// to be written -- ends reconnecting, and returns when the handler has
// received Closed, unless called from the handler, whose Closed then
// follows. It also aborts a Start in progress.
func (cl *Client) Stop() {
	cl.mu.Lock()
	if cl.cancel != nil {
		cl.cancel()
	}
	ss := cl.session
	c := cl.c
	wasRunning := cl.running
	cl.running = false
	h, linger := cl.handler, cl.opts.Linger
	if ss != nil && !isClosed(ss.stopped) {
		close(ss.stopped)
	}
	cl.mu.Unlock()
	if ss == nil && c == nil {
		return
	}
	if wasRunning && c != nil {
		c.waitDrained(linger)
	}
	if lc, ok := h.(lifecycle); ok {
		lc.stopping()
	}
	if c == nil {
		return
	}
	c.close(CloseStopped, true)
	if me := goroutineID(); c.goid.Load() == me || c.readyGoid.Load() == me {
		return
	}
	if ss != nil {
		<-ss.done
	} else {
		<-c.done
	}
}

func (cl *Client) live() (*conn, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if !cl.running || cl.c == nil {
		return nil, newError(ErrNotRunning, nil, "client not connected")
	}
	return cl.c, nil
}

// SendMany queues msgs in order with one lock for all, up to the first
// refused; it returns how many were queued and why the next was not.
func (cl *Client) SendMany(msgs [][]byte) (int, error) {
	return cl.SendEach(len(msgs), func(i int) []byte { return msgs[i] })
}

// SendEach is SendMany for callers that hold their messages elsewhere:
// msg(i) returns the i-th of n messages (read during the call only).
func (cl *Client) SendEach(n int, msg func(i int) []byte) (int, error) {
	c, err := cl.live()
	if err != nil {
		return 0, err
	}
	sent, err := c.sendEach(cl.framing, n, msg)
	return sent, notRunningIfClosing(err)
}

// Send queues msg for the server.
func (cl *Client) Send(msg []byte) error {
	c, err := cl.live()
	if err != nil {
		return err
	}
	return notRunningIfClosing(c.send(cl.framing, msg))
}

// notRunningIfClosing: a client whose connection is closing reports "not
// running" (a server reports the closing connection as an unknown client).
func notRunningIfClosing(err error) error {
	if err != nil && CodeOf(err) == ErrNoClient {
		return newError(ErrNotRunning, nil, "connection closing")
	}
	return err
}

// Flush waits up to timeout until everything queued was written.
func (cl *Client) Flush(timeout time.Duration) error {
	c, err := cl.live()
	if err != nil {
		return err
	}
	err = c.waitDrained(timeout)
	if CodeOf(err) == ErrNoClient {
		return newError(ErrNotRunning, err, "connection closed")
	}
	return err
}

// Queued is the number of bytes queued and not yet written.
func (cl *Client) Queued() (int, error) {
	c, err := cl.live()
	if err != nil {
		return 0, err
	}
	return c.queued(), nil
}

// Pause stops reading from the server until Resume.
func (cl *Client) Pause() error {
	c, err := cl.live()
	if err != nil {
		return err
	}
	c.pause()
	return nil
}

// Resume restarts reading.
func (cl *Client) Resume() error {
	c, err := cl.live()
	if err != nil {
		return err
	}
	c.resumeReading()
	return nil
}

// ConnStats returns the counters of the current (or last) connection.
func (cl *Client) ConnStats() (ConnStats, error) {
	cl.mu.Lock()
	c := cl.c
	cl.mu.Unlock()
	if c == nil {
		return ConnStats{}, newError(ErrNotRunning, nil, "client never connected")
	}
	return c.snapshot(), nil
}

// LocalPort returns the local port of the connection.
func (cl *Client) LocalPort() (int, error) {
	c, err := cl.live()
	if err != nil {
		return 0, err
	}
	return c.localPort, nil
}

// ServerSubjectPart returns a field of the server certificate's subject.
func (cl *Client) ServerSubjectPart(nid int) (string, error) {
	cl.mu.Lock()
	c := cl.c
	cl.mu.Unlock()
	if c == nil {
		return "", newError(ErrNotRunning, nil, "client never connected")
	}
	return subjectPart(c.peerSubject, nid)
}
