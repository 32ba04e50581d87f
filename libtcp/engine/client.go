package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"
)

// Client is one TCP or TLS connection to a server. Its events go to a
// Handler with id 0 (there is no Established: Start returning nil is it).
// Every method is safe for concurrent use, also from inside the handler.
type Client struct {
	framing Framing

	startMu sync.Mutex // serialises Start
	mu      sync.Mutex
	opts    Options
	handler Handler
	running bool
	c       *conn
	cancel  context.CancelFunc // aborts a Start in progress
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
	if cl.running {
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
	if cl.running {
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
	return cl.start(host, port, &files)
}

func (cl *Client) start(host string, port int, files *TLSFiles) error {
	cl.startMu.Lock()
	defer cl.startMu.Unlock()
	cl.mu.Lock()
	if cl.running {
		cl.mu.Unlock()
		return newError(ErrAlreadyRunning, nil, "client already running")
	}
	o, h := cl.opts, cl.handler
	ctx, cancel := context.WithCancel(context.Background())
	cl.cancel = cancel
	cl.mu.Unlock()
	defer func() {
		cl.mu.Lock()
		cl.cancel = nil
		cl.mu.Unlock()
		cancel()
	}()

	if port <= 0 || port > 65535 {
		return newError(StartWrongPort, nil, "port %d outside 1..65535", port)
	}
	var cfg *tls.Config
	if files != nil {
		var err error
		if cfg, err = clientTLSConfig(*files, host, o); err != nil {
			return err
		}
	}
	if o.ConnectTimeout > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, o.ConnectTimeout)
		defer c2()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return newError(StartConnect, err, "connect to %s", addr)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(o.NoDelay)
	}
	c := newConn(0, nc, o.SendQueueLimit)
	if cfg != nil {
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return newError(StartConnectInit, err, "TLS handshake with %s", addr)
		}
		c.nc = tc
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			c.peerSubject = &certs[0].Subject
		}
	}
	c.established.Store(true)

	cl.mu.Lock()
	if ctx.Err() != nil { // Stop ran while we connected
		cl.mu.Unlock()
		c.nc.Close()
		return newError(StartConnect, ctx.Err(), "stopped while connecting to %s", addr)
	}
	cl.running = true
	cl.c = c
	if lc, ok := h.(lifecycle); ok {
		lc.started()
	}
	cl.mu.Unlock()
	go c.writeLoop()
	go cl.serve(c, h)
	return nil
}

func (cl *Client) serve(c *conn, h Handler) {
	defer close(c.done)
	c.goid.Store(goroutineID())
	var reason *Error
	func() {
		defer func() {
			if r := recover(); r != nil {
				reason = newError(ErrInternal, nil, "panic in handler: %v", r)
			}
		}()
		reason = c.readLoop(cl.framing.NewDecoder(), cl.framing.MaxMessage(), h)
	}()
	cl.mu.Lock()
	if cl.c == c {
		cl.running = false
	}
	cl.mu.Unlock()
	c.close(false)
	<-c.writeDone
	if reason != nil {
		h.Error(0, reason)
	}
	h.Closed(0)
	cl.mu.Lock()
	if lc, ok := h.(lifecycle); ok && cl.c == c { // not restarted meanwhile
		lc.stopped()
	}
	cl.mu.Unlock()
}

// Running reports whether the client is connected.
func (cl *Client) Running() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.running
}

// Stop closes the connection -- after up to Options.Linger for queued data
// to be written -- and returns when the handler has received Closed, unless
// called from the handler, whose Closed then follows. It also aborts a
// Start in progress.
func (cl *Client) Stop() {
	cl.mu.Lock()
	if cl.cancel != nil {
		cl.cancel()
	}
	c := cl.c
	wasRunning := cl.running
	cl.running = false
	h, linger := cl.handler, cl.opts.Linger
	cl.mu.Unlock()
	if c == nil {
		return
	}
	if wasRunning {
		c.waitDrained(linger)
	}
	if lc, ok := h.(lifecycle); ok {
		lc.stopping()
	}
	c.close(true)
	if c.goid.Load() != goroutineID() {
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

// Send queues msg for the server.
func (cl *Client) Send(msg []byte) error {
	c, err := cl.live()
	if err != nil {
		return err
	}
	if err := c.send(cl.framing, msg); err != nil {
		if CodeOf(err) == ErrNoClient {
			return newError(ErrNotRunning, nil, "connection closing")
		}
		return err
	}
	return nil
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

// LocalPort returns the local port of the connection.
func (cl *Client) LocalPort() (int, error) {
	c, err := cl.live()
	if err != nil {
		return 0, err
	}
	if a, ok := c.nc.LocalAddr().(*net.TCPAddr); ok {
		return a.Port, nil
	}
	return 0, newError(ErrInternal, errors.New("not a TCP address"), "")
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
