package engine

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
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

	mu         sync.RWMutex
	opts       Options
	handler    Handler
	running    bool
	ln         net.Listener
	conns      map[int]*conn // accepted, established or still in handshake
	byID       sync.Map      // the same, for look-ups without s.mu (per send)
	live       atomic.Bool   // running, for the same look-ups
	nextID     atomic.Int64
	budget     *budget
	lists      addrLists
	accept     atomic.Pointer[AcceptFunc]
	stats      serverCounters
	listening  atomic.Bool
	tlsx       serverTLS  // certificates by SNI, reload, callback, STARTTLS (tlsserver.go)
	acceptArgs acceptArgs // what acceptLoop was started with, for StopListening
}

// acceptArgs is what a newly accepted connection is served with.
type acceptArgs struct {
	cfg *tls.Config
	ev  events
	o   *Options
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

// SetAcceptFunc sets (nil: removes) the admission callback; any time.
func (s *Server) SetAcceptFunc(f AcceptFunc) {
	if f == nil {
		s.accept.Store(nil)
	} else {
		s.accept.Store(&f)
	}
}

// SetAllowed replaces the allowed list (empty: everyone); any time.
func (s *Server) SetAllowed(list []netip.Prefix) { s.lists.allowed.Store(&list) }

// SetBlocked replaces the blocked list; any time.
func (s *Server) SetBlocked(list []netip.Prefix) { s.lists.blocked.Store(&list) }

// Framing returns the server's framing.
func (s *Server) Framing() Framing { return s.framing }

// Start listens for plain TCP on port (0 = chosen by the system).
func (s *Server) Start(port int) error { return s.start(port, nil) }

// StartTLS listens for TLS. files.Cert and files.Key are required; with
// files.CA, clients must present a certificate signed by it.
func (s *Server) StartTLS(port int, files TLSFiles) error { return s.start(port, files) }

// StartTLSPEM is StartTLS with PEM text instead of files. Without
// certificate and key (as StartTLS with neither path), the server makes a
// self-signed certificate (selfsigned.go).
func (s *Server) StartTLSPEM(port int, p TLSPEM) error { return s.start(port, p) }

func (s *Server) start(port int, src TLSSource) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return newError(ErrAlreadyRunning, nil, "server already running")
	}
	if port < 0 || port > 65535 {
		return newError(StartWrongPort, nil, "port %d outside 0..65535", port)
	}
	cfg, err := s.tlsx.prepare(src, s.opts) // nil: plain TCP
	if err != nil {
		return err
	}
	ln, err := listen(s.opts, port)
	if err != nil {
		return err
	}
	s.ln = ln
	s.running = true
	s.live.Store(true)
	s.listening.Store(true)
	s.budget = newBudget(s.opts.MemoryBudget)
	if lc, ok := s.handler.(lifecycle); ok {
		lc.started()
	}
	if bu, ok := s.handler.(budgetUser); ok {
		bu.useBudget(s.budget)
	}
	opts := s.opts
	s.acceptArgs = acceptArgs{cfg: cfg, ev: eventsOf(s.handler), o: &opts}
	go s.acceptLoop(ln, s.acceptArgs)
	return nil
}

// budgetUser is implemented by handlers that hold memory for the server
// (the event queue), to charge it to the server's budget.
type budgetUser interface{ useBudget(*budget) }

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

// StopListening closes the listener but keeps serving the connections
// already accepted.
func (s *Server) StopListening() error {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return newError(ErrNotRunning, nil, "server not running")
	}
	if !s.listening.Swap(false) {
		s.mu.Unlock()
		return nil
	}
	// Connections the kernel already completed wait in the listen queue;
	// closing the listener would reset them although their clients
	// consider them established. Take them first (a rolling restart then
	// drops none, except one completing in the microseconds before the
	// close -- net.ipv4.tcp_migrate_req hands those to another
	// SO_REUSEPORT listener).
	ln, args := s.ln, s.acceptArgs
	pending := takeBacklog(ln)
	ln.Close()
	s.mu.Unlock()
	for _, nc := range pending {
		s.register(ln, nc, args)
	}
	return nil
}

// takeBacklog accepts, without waiting, every connection in ln's listen
// queue.
func takeBacklog(ln net.Listener) []net.Conn {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil
	}
	var fds []int
	rc.Control(func(fd uintptr) {
		for {
			nfd, _, err := syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			if err == syscall.EINTR || err == syscall.ECONNABORTED {
				continue
			}
			if err != nil {
				return // EAGAIN: the queue is empty
			}
			fds = append(fds, nfd)
		}
	})
	out := make([]net.Conn, 0, len(fds))
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "")
		nc, err := net.FileConn(f) // a dup; the original is closed below
		f.Close()
		if err == nil {
			out = append(out, nc)
		}
	}
	return out
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
func (s *Server) Stop() { s.stop(s.Options().Linger) }

// Shutdown stops gracefully: it stops listening, gives the connections up to
// timeout in all to write what is queued (sends are still accepted
// meanwhile), then stops. It reports ErrTimeout when data was dropped.
func (s *Server) Shutdown(timeout time.Duration) error {
	if err := s.StopListening(); err != nil {
		return err
	}
	s.mu.RLock()
	snapshot := s.snapshotLocked()
	s.mu.RUnlock()
	err := drainAll(snapshot, timeout)
	s.stop(0)
	return err
}

func (s *Server) snapshotLocked() []*conn {
	out := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c)
	}
	return out
}

func (s *Server) stop(linger time.Duration) {
	me := goroutineID()
	s.mu.Lock()
	wasRunning := s.running
	s.running = false
	s.live.Store(false)
	ln := s.ln
	s.ln = nil
	snapshot := s.snapshotLocked()
	inHandler := false
	for _, c := range snapshot {
		inHandler = inHandler || c.goid.Load() == me || c.readyGoid.Load() == me
	}
	lc, _ := s.handler.(lifecycle)
	s.mu.Unlock()

	if wasRunning {
		if lc != nil {
			lc.stopping()
		}
		if s.listening.Swap(false) {
			ln.Close()
		}
		drainAll(snapshot, linger)
	}
	for _, c := range snapshot {
		// No longer a client, even while its Closed is still to come
		// after a quick restart.
		c.established.Store(false)
		c.close(CloseStopped, true)
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

// drainAll gives the connections' queued data until timeout to be written.
func drainAll(conns []*conn, timeout time.Duration) error {
	if timeout <= 0 {
		return nil
	}
	deadline := time.Now().Add(timeout)
	var failed error
	for _, c := range conns {
		if err := c.waitDrained(time.Until(deadline)); CodeOf(err) == ErrTimeout {
			failed = err
		}
	}
	return failed
}

func (s *Server) acceptLoop(ln net.Listener, args acceptArgs) {
	ev := args.ev
	backoff := time.Duration(0)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: report once per
			// episode, then wait, as net/http does, so as not to spin.
			s.stats.acceptErrors.Add(1)
			if backoff == 0 {
				backoff = 5 * time.Millisecond
				e := newError(ErrAccept, err, "accept on port %d (retrying)", ln.Addr().(*net.TCPAddr).Port)
				logf(LogError, "%v", e)
				go ev.h.Error(0, e)
			} else if backoff < time.Second {
				backoff *= 2
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.register(ln, nc, args) {
			return
		}
	}
}

// register records a connection accepted on ln and serves it, or refuses
// it when over the limit. false: ln is no longer the server's listener
// (stopped and maybe restarted); nc was closed.
func (s *Server) register(ln net.Listener, nc net.Conn, args acceptArgs) bool {
	o, ev := args.o, args.ev
	s.stats.accepted.Add(1)
	c := newConn(int(s.nextID.Add(1)), nc, o, s.budget, &s.stats)
	c.events = ev
	s.mu.Lock()
	if s.ln != ln {
		s.mu.Unlock()
		nc.Close()
		return false
	}
	over := o.MaxConnections > 0 && len(s.conns) >= o.MaxConnections
	if !over {
		s.conns[c.id] = c
		s.byID.Store(c.id, c)
		s.stats.active.Add(1)
		s.budget.conns.Add(1)
	}
	s.mu.Unlock()
	if over {
		s.stats.refusedLimit.Add(1)
		go s.refuse(c, ev, newError(ErrRefused, nil, "%s: over the limit of %d connections", c.peer(), o.MaxConnections))
		return true
	}
	go s.serveConn(c, args.cfg, ev, o)
	return true
}

func (c *conn) peer() string { return net.JoinHostPort(c.remoteIP, strconv.Itoa(c.remotePort)) }

// refuse closes a connection that never reaches established and reports it.
func (s *Server) refuse(c *conn, ev events, err *Error) {
	if tc, ok := c.raw.(*net.TCPConn); ok {
		tc.SetLinger(0) // no TIME_WAIT for connections we refuse
	}
	c.raw.Close()
	logf(LogInfo, "%v", err)
	ev.h.Error(0, err)
}

// admit runs the PROXY header, the lists and the accept callback; nil means
// the connection may go on to its handshake.
func (s *Server) admit(c *conn, o *Options) *Error {
	if o.ProxyMode != ProxyOff {
		if err := readProxyHeader(c, o); err != nil {
			s.stats.handshakeFailed.Add(1)
			return err
		}
	}
	ip, _ := netip.ParseAddr(c.remoteIP)
	if !s.lists.admits(ip) {
		s.stats.refused.Add(1)
		return newError(ErrRefused, nil, "%s: by the allowed/blocked lists", c.peer())
	}
	if f := s.accept.Load(); f != nil && !(*f)(c.remoteIP, c.remotePort, c.localPort) {
		s.stats.refused.Add(1)
		return newError(ErrRefused, nil, "%s: by the accept callback", c.peer())
	}
	return nil
}

// readProxyHeader reads a PROXY protocol header (proxy.go); replaced there.
var readProxyHeader = func(c *conn, o *Options) *Error {
	return newError(ErrProxy, nil, "PROXY protocol is not supported by this build")
}

// serveConn runs one connection: admission, handshake, Established,
// messages, Closed. All of its events come from this goroutine (Ready from
// a helper, serialised with them), which keeps them in order.
func (s *Server) serveConn(c *conn, cfg *tls.Config, ev events, o *Options) {
	defer close(c.done)
	c.goid.Store(goroutineID())
	defer s.forget(c)
	applySocketOptions(c.raw, o, true)

	if err := s.admit(c, o); err != nil {
		s.refuse(c, ev, err)
		return
	}
	if cfg != nil {
		if err := s.tlsx.handshake(c, cfg, o.ConnectTimeout); err != nil {
			s.stats.handshakeFailed.Add(1)
			if err.Code == ErrTimeout {
				s.stats.timedOut.Add(1)
			}
			c.close(CloseTLS, false)
			if !c.quietClose() {
				ev.h.Error(0, err)
			}
			return
		}
	}

	s.mu.Lock()
	live := s.running && s.conns[c.id] == c && !c.isDead()
	if live {
		c.dec = s.framing.NewDecoder() // before anyone can look the connection up
		c.established.Store(true)
	}
	s.mu.Unlock()
	if !live {
		c.close(CloseStopped, true)
		return
	}
	s.stats.established.Add(1)

	var res readResult
	func() {
		defer func() {
			if r := recover(); r != nil {
				res = readResult{reason: CloseInternal, err: newError(ErrInternal, nil, "panic in handler: %v", r)}
				c.evMu.TryLock() // the panic may have left it locked
				c.evMu.Unlock()
			}
		}()
		c.evMu.Lock()
		ev.established(c)
		c.evMu.Unlock()
		res = c.readLoop(c.dec, ReadBufferLimit(s.framing))
	}()
	// Leave the client list now, but stay in s.conns until Closed has run,
	// so that a concurrent Stop waits for these last calls.
	c.finish(res, func() { c.established.Store(false) })
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// quietClose reports whether the connection was closed on purpose (stop).
func (c *conn) quietClose() bool {
	r := c.closeReason()
	return r == CloseStopped || r == CloseLocal
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
		s.byID.Delete(c.id)
		s.stats.active.Add(-1)
		s.budget.conns.Add(-1)
		s.stats.retire(c)
	}
	s.mu.Unlock()
}

// conn returns an established connection.
func (s *Server) client(id int) (*conn, error) {
	v, _ := s.byID.Load(id)
	c, _ := v.(*conn)
	if !s.live.Load() {
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

// SendMany queues msgs for one client, in order, with one look-up and one
// lock for all: it stops at the first message refused and returns how many
// were queued and why the next one was not (Send's errors).
func (s *Server) SendMany(id int, msgs [][]byte) (int, error) {
	return s.SendEach(id, len(msgs), func(i int) []byte { return msgs[i] })
}

// SendEach is SendMany for callers that hold their messages elsewhere:
// msg(i) returns the i-th of n messages (read during the call only).
func (s *Server) SendEach(id int, n int, msg func(i int) []byte) (int, error) {
	c, err := s.client(id)
	if err != nil {
		return 0, err
	}
	return c.sendEach(s.framing, n, msg)
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
	c.close(CloseLocal, true)
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

// Queued is the number of bytes queued for client id and not yet written.
func (s *Server) Queued(id int) (int, error) {
	c, err := s.client(id)
	if err != nil {
		return 0, err
	}
	return c.queued(), nil
}

// Pause stops reading from client id until Resume.
func (s *Server) Pause(id int) error {
	c, err := s.client(id)
	if err != nil {
		return err
	}
	c.pause()
	return nil
}

// Resume restarts reading from client id.
func (s *Server) Resume(id int) error {
	c, err := s.client(id)
	if err != nil {
		return err
	}
	c.resumeReading()
	return nil
}

// SetIdleTimeout replaces Options.IdleTimeout for one connection.
func (s *Server) SetIdleTimeout(id int, d time.Duration) error {
	c, err := s.client(id)
	if err != nil {
		return err
	}
	c.setIdle(d)
	return nil
}

// SetUser attaches v to client id; extended handlers receive it.
func (s *Server) SetUser(id int, v any) error {
	c, err := s.client(id)
	if err != nil {
		return err
	}
	c.SetUser(v)
	return nil
}

// User returns the value attached to client id.
func (s *Server) User(id int) (any, error) {
	c, err := s.client(id)
	if err != nil {
		return nil, err
	}
	return c.User(), nil
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	st := &s.stats
	s.mu.RLock()
	b := s.budget
	var in, out, msgsIn, msgsOut uint64
	for _, c := range s.conns {
		in += c.stats.bytesIn.Load()
		out += c.stats.bytesOut.Load()
		msgsIn += c.stats.msgsIn.Load()
		msgsOut += c.stats.msgsOut.Load()
	}
	s.mu.RUnlock()
	return ServerStats{
		Active:          uint64(st.active.Load()),
		Established:     uint64(st.established.Load()),
		Accepted:        uint64(st.accepted.Load()),
		Refused:         uint64(st.refused.Load()),
		RefusedLimit:    uint64(st.refusedLimit.Load()),
		HandshakeFailed: st.handshakeFailed.Load(),
		TimedOut:        st.timedOut.Load(),
		ClosedForLimits: st.closedForLimits.Load(),
		AcceptErrors:    st.acceptErrors.Load(),
		BytesIn:         st.bytesIn.Load() + in,
		BytesOut:        st.bytesOut.Load() + out,
		MsgsIn:          st.msgsIn.Load() + msgsIn,
		MsgsOut:         st.msgsOut.Load() + msgsOut,
		MemoryUsed:      uint64(max(0, b.inUse())),
	}
}

// ConnStats returns one connection's counters.
func (s *Server) ConnStats(id int) (ConnStats, error) {
	c, err := s.client(id)
	if err != nil {
		return ConnStats{}, err
	}
	return c.snapshot(), nil
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
	c, err := s.clientOrHandshaking(id) // also during its handshake (tlsserver.go)
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
	if subj == nil && c.proxy != nil && c.proxy.Verified && c.proxy.CN != "" && nid == NIDCommonName {
		return c.proxy.CN, nil // TLS was terminated by the proxy, which verified the client
	}
	return subjectPart(subj, nid)
}

// SetRecordLength changes the record length of client id (framing Records).
func (s *Server) SetRecordLength(id, n int) error {
	c, err := s.client(id)
	if err != nil {
		return err
	}
	rs, ok := c.dec.(RecordLengthSetter)
	if !ok {
		return newError(ErrInvalidArg, nil, "the server's framing has no record length")
	}
	return rs.SetRecordLength(n)
}

// ProxyTLV returns the value of a PROXY v2 TLV of client id's header.
func (s *Server) ProxyTLV(id, typ int) ([]byte, error) {
	c, err := s.client(id)
	if err != nil {
		return nil, err
	}
	if v, ok := c.proxy.TLV(typ); ok {
		return v, nil
	}
	return nil, newError(ErrNoField, nil, "client %d: no PROXY TLV of type 0x%02x", id, typ)
}
