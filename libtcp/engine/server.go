package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server accepts TCP or TLS connections and delivers their events to a
// Handler. Every method is safe for concurrent use, also from inside the
// handler. A stopped server can be started again; client ids keep growing.
type Server struct {
	framing Framing

	mu      sync.RWMutex
	opts    Options
	handler Handler
	running bool
	ln      net.Listener
	conns   map[int]*conn // accepted, established or still in handshake
	nextID  atomic.Int64
}

// NewServer returns a stopped server using framing f (Continuous{} or a
// Delimited) and handler h (nil drops every event).
func NewServer(f Framing, opts Options, h Handler) *Server {
	if f == nil {
		f = Continuous{}
	}
	if h == nil {
		h = HandlerFuncs{}
	}
	return &Server{framing: f, opts: opts, handler: h, conns: map[int]*conn{}}
}

// SetOptions replaces the options; only while stopped.
func (s *Server) SetOptions(o Options) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return newError(ErrAlreadyRunning, nil, "options are set before start")
	}
	s.opts = o
	return nil
}

// Options returns the current options.
func (s *Server) Options() Options {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opts
}

// SetHandler replaces the handler; only while stopped.
func (s *Server) SetHandler(h Handler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return newError(ErrAlreadyRunning, nil, "the handler is set before start")
	}
	if h == nil {
		h = HandlerFuncs{}
	}
	s.handler = h
	return nil
}

// Framing returns the server's framing.
func (s *Server) Framing() Framing { return s.framing }

// Start listens for plain TCP on port (0 = chosen by the system).
func (s *Server) Start(port int) error { return s.start(port, nil) }

// StartTLS listens for TLS. files.Cert and files.Key are required; with
// files.CA, clients must present a certificate signed by it.
func (s *Server) StartTLS(port int, files TLSFiles) error { return s.start(port, &files) }

func (s *Server) start(port int, files *TLSFiles) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return newError(ErrAlreadyRunning, nil, "server already running")
	}
	if port < 0 || port > 65535 {
		return newError(StartWrongPort, nil, "port %d outside 0..65535", port)
	}
	var cfg *tls.Config
	if files != nil {
		var err error
		if cfg, err = serverTLSConfig(*files, s.opts); err != nil {
			return err
		}
	}
	ln, err := listen(s.opts, port)
	if err != nil {
		return err
	}
	s.ln = ln
	s.running = true
	if lc, ok := s.handler.(lifecycle); ok {
		lc.started()
	}
	go s.acceptLoop(ln, cfg, s.handler, s.opts)
	return nil
}

// Port is the listening port, or 0 when stopped.
func (s *Server) Port() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ln == nil {
		return 0
	}
	return s.ln.Addr().(*net.TCPAddr).Port
}

// Running reports whether the server is started.
func (s *Server) Running() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.running
}

// Stop closes the listener and every connection, lets each established
// connection report Closed, and returns when no handler call of this server
// runs any more. Data queued for sending gets up to Options.Linger to be
// written first.
//
// Called from inside a handler of this server, Stop closes everything but
// does not wait: two handlers stopping at once would otherwise wait for each
// other. A later Stop from outside the handlers (or the owner's release)
// waits for every remaining call.
func (s *Server) Stop() {
	me := goroutineID()
	s.mu.Lock()
	wasRunning := s.running
	s.running = false
	ln := s.ln
	s.ln = nil
	linger := s.opts.Linger
	snapshot := make([]*conn, 0, len(s.conns))
	inHandler := false
	for _, c := range s.conns {
		snapshot = append(snapshot, c)
		inHandler = inHandler || c.goid.Load() == me
	}
	lc, _ := s.handler.(lifecycle)
	s.mu.Unlock()

	if wasRunning {
		if lc != nil {
			lc.stopping()
		}
		ln.Close()
		drainAll(snapshot, linger)
	}
	for _, c := range snapshot {
		// No longer a client, even while its Closed is still to come
		// after a quick restart.
		c.established.Store(false)
		c.close(true)
	}
	if inHandler {
		return
	}
	for _, c := range snapshot {
		<-c.done
	}
	s.mu.Lock()
	idle := !s.running
	s.mu.Unlock()
	if lc != nil && idle {
		lc.stopped()
	}
}

// drainAll gives the established connections' queued data until linger to
// be written.
func drainAll(conns []*conn, linger time.Duration) {
	if linger <= 0 {
		return
	}
	deadline := time.Now().Add(linger)
	for _, c := range conns {
		c.waitDrained(time.Until(deadline))
	}
}

func (s *Server) acceptLoop(ln net.Listener, cfg *tls.Config, h Handler, o Options) {
	backoff := time.Duration(0)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(o.NoDelay)
		}
		c := newConn(int(s.nextID.Add(1)), nc, o.SendQueueLimit)
		s.mu.Lock()
		if s.ln != ln {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c.id] = c
		s.mu.Unlock()
		go s.serveConn(c, cfg, h, o)
	}
}

// serveConn runs one connection: handshake, Established, messages, Closed.
// All of its events come from this goroutine, which keeps them in order.
func (s *Server) serveConn(c *conn, cfg *tls.Config, h Handler, o Options) {
	defer close(c.done)
	c.goid.Store(goroutineID())
	defer s.forget(c)

	if cfg != nil {
		if err := handshakeServer(c, cfg, o.ConnectTimeout); err != nil {
			c.close(false)
			if !c.isQuiet() {
				h.Error(0, err)
			}
			return
		}
	}
	go c.writeLoop()

	s.mu.Lock()
	live := s.running && s.conns[c.id] == c && !c.isDead()
	if live {
		c.established.Store(true)
	}
	s.mu.Unlock()
	if !live {
		c.close(true)
		<-c.writeDone
		return
	}

	var reason *Error
	func() {
		defer func() {
			if r := recover(); r != nil {
				reason = newError(ErrInternal, nil, "panic in handler: %v", r)
			}
		}()
		h.Established(c.id)
		reason = c.readLoop(s.framing.NewDecoder(), s.framing.MaxMessage(), h)
	}()
	// Leave the client list now, but stay in s.conns until Closed has run,
	// so that a concurrent Stop waits for these last calls.
	c.established.Store(false)
	c.close(false)
	<-c.writeDone
	if reason != nil {
		h.Error(c.id, reason)
	}
	h.Closed(c.id)
}

func handshakeServer(c *conn, cfg *tls.Config, timeout time.Duration) *Error {
	tc := tls.Server(c.nc, cfg)
	if timeout > 0 {
		tc.SetDeadline(time.Now().Add(timeout))
	}
	if err := tc.Handshake(); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return newError(ErrTimeout, err, "TLS handshake of client %s", net.JoinHostPort(c.remoteIP, strconv.Itoa(c.remotePort)))
		}
		return newError(ErrHandshake, err, "client %s", net.JoinHostPort(c.remoteIP, strconv.Itoa(c.remotePort)))
	}
	tc.SetDeadline(time.Time{})
	c.nc = tc // only this goroutine uses nc until the writer starts
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		c.mu.Lock()
		c.peerSubject = &certs[0].Subject
		c.mu.Unlock()
	}
	return nil
}

func (c *conn) isQuiet() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.quiet
}

func (c *conn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	s.mu.Unlock()
}

// client returns an established connection.
func (s *Server) client(id int) (*conn, error) {
	s.mu.RLock()
	c := s.conns[id]
	running := s.running
	s.mu.RUnlock()
	if !running {
		return nil, newError(ErrNotRunning, nil, "server not running")
	}
	if c == nil || !c.established.Load() {
		return nil, newError(ErrNoClient, nil, "no client with id %d", id)
	}
	return c, nil
}

// Send queues msg for client id. It never blocks on the network.
func (s *Server) Send(id int, msg []byte) error {
	c, err := s.client(id)
	if err != nil {
		return err
	}
	return c.send(s.framing, msg)
}

// Broadcast queues msg for every established client and returns how many
// accepted it.
func (s *Server) Broadcast(msg []byte) int {
	n := 0
	for _, id := range s.ClientIDs() {
		if s.Send(id, msg) == nil {
			n++
		}
	}
	return n
}

// CloseClient closes one client's connection after up to Options.Linger
// for its queued data to be written; its Closed follows.
func (s *Server) CloseClient(id int) error {
	c, err := s.client(id)
	if err != nil {
		return err
	}
	c.waitDrained(s.Options().Linger)
	c.close(true)
	return nil
}

// Flush waits up to timeout until everything queued for client id (0: for
// every client) was written to the socket.
func (s *Server) Flush(id int, timeout time.Duration) error {
	if id != 0 {
		c, err := s.client(id)
		if err != nil {
			return err
		}
		return c.waitDrained(timeout)
	}
	if !s.Running() {
		return newError(ErrNotRunning, nil, "server not running")
	}
	deadline := time.Now().Add(timeout)
	for _, id := range s.ClientIDs() {
		if c, err := s.client(id); err == nil {
			if err := c.waitDrained(time.Until(deadline)); CodeOf(err) == ErrTimeout {
				return err
			}
		}
	}
	return nil
}

// ClientIDs lists the established clients in ascending order.
func (s *Server) ClientIDs() []int {
	s.mu.RLock()
	ids := make([]int, 0, len(s.conns))
	for id, c := range s.conns {
		if c.established.Load() {
			ids = append(ids, id)
		}
	}
	s.mu.RUnlock()
	sort.Ints(ids)
	return ids
}

// ClientAddr returns a client's IP address and port.
func (s *Server) ClientAddr(id int) (string, int, error) {
	c, err := s.client(id)
	if err != nil {
		return "", 0, err
	}
	return c.remoteIP, c.remotePort, nil
}

// SubjectPart returns one field of the client's verified certificate
// subject; nid is an OpenSSL NID (see subject.go).
func (s *Server) SubjectPart(id, nid int) (string, error) {
	c, err := s.client(id)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	subj := c.peerSubject
	c.mu.Unlock()
	return subjectPart(subj, nid)
}

// listen opens the listening socket, mapping the failing system call to the
// v2 start code: socket 40, setsockopt 41, bind 42, listen 43.
func listen(o Options, port int) (net.Listener, error) {
	lc := net.ListenConfig{}
	if o.ReusePort {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
			}); err != nil {
				return err
			}
			if serr != nil {
				return os.NewSyscallError("setsockopt", serr)
			}
			return nil
		}
	}
	addr := net.JoinHostPort(o.BindAddress, strconv.Itoa(port))
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, newError(listenCode(err), err, "listen on %s", addr)
	}
	return ln, nil
}

func listenCode(err error) Code {
	var se *os.SyscallError
	if errors.As(err, &se) {
		switch se.Syscall {
		case "socket":
			return StartCreateSocket
		case "setsockopt":
			return StartSetSocketOpt
		case "bind":
			return StartBindPort
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) {
		return StartBindPort
	}
	return StartListen
}
