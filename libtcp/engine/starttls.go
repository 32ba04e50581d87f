package engine

// Explicit TLS (STARTTLS): a connection that started in plain TCP is
// upgraded on request. The connection's reader does the handshake between
// two reads (the hook in readLoop): the messages of the read that carried
// the request are delivered first; the bytes after them that no message
// took, and everything read afterwards, go to the handshake. What was
// queued for sending before is written in plain text first; what is sent
// during the handshake waits behind a gate and goes out encrypted.
// Established is reported again once the upgrade is done.

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// upgradeDrainFallback bounds the plain-text drain of an upgrade when no
// handshake timeout is set.
const upgradeDrainFallback = 10 * time.Second

// upgradeRequest is a STARTTLS upgrade asked for and not yet done.
type upgradeRequest struct {
	cfg    *tls.Config // the connection's own
	client bool        // client side of the handshake
	// fromHandler: asked from the connection's own handler, so the end is
	// reported as an event (a client's Established(0)); a client that
	// asked from elsewhere learns it from UpgradeTLS's result instead.
	fromHandler bool
	reply       []byte // server: queued (framed) once the reader took the request; nil = none
	framing     Framing
	timeout     time.Duration // handshake; 0 = none

	mu    sync.Mutex
	taken bool // by the reader: no more wake-ups
	done  chan struct{}
	err   error // set before done closes
}

func (up *upgradeRequest) finish(err error) {
	up.err = err
	close(up.done)
}

// requestUpgrade registers up. From the connection's own event goroutine
// (one of its callbacks) the reader takes it after the callback; from
// anywhere else the reader is woken from its read.
func (c *conn) requestUpgrade(up *upgradeRequest) error {
	if c.tlsx.info.Load() != nil {
		return newError(ErrInvalidArg, nil, "connection %d already uses TLS", c.id)
	}
	if c.isDead() {
		return newError(ErrNoClient, nil, "connection %d is closing", c.id)
	}
	if !c.tlsx.upgrade.CompareAndSwap(nil, up) {
		return newError(ErrInvalidArg, nil, "connection %d: a TLS upgrade is already in progress", c.id)
	}
	if c.goid.Load() != goroutineID() {
		go c.wakeForUpgrade(up)
	}
	return nil
}

// wakeForUpgrade makes a reader blocked in read return (a read deadline in
// the past) until it took the request. It retries because the reader may
// arm its own deadline between our wake-up and its next read.
func (c *conn) wakeForUpgrade(up *upgradeRequest) {
	wait := time.Millisecond
	for {
		up.mu.Lock()
		if up.taken {
			up.mu.Unlock()
			return
		}
		c.raw.SetReadDeadline(time.Now())
		up.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.deadCh:
			t.Stop()
			return
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// takeUpgrade returns a request not yet taken, and takes it.
func (c *conn) takeUpgrade() *upgradeRequest {
	up := c.tlsx.upgrade.Load()
	if up == nil {
		return nil
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.taken {
		return nil
	}
	up.taken = true
	return up
}

// upgradePending: a request waits for the reader (whose read was then cut
// short on purpose, not by a timeout).
func (c *conn) upgradePending() bool {
	up := c.tlsx.upgrade.Load()
	if up == nil {
		return false
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	return !up.taken
}

// upgradeTLS is the reader's part: called between two reads with the
// receive buffer and the decoder, which it resets when it hands bytes the
// decoder had seen to the handshake. false: the connection ends with res.
func (c *conn) upgradeTLS(up *upgradeRequest, r *recvBuf, dec *Decoder) (res readResult, ok bool) {
	c.raw.SetReadDeadline(time.Time{}) // a wake-up's; the handshake sets its own
	err := c.switchToTLS(up, r, dec)
	c.tlsx.upgrade.Store(nil)
	if err != nil {
		code := ErrHandshake
		if isTimeout(err) {
			code = ErrTimeout
		}
		if up.client {
			up.finish(newError(StartConnectInit, err, "STARTTLS"))
		} else {
			up.finish(newError(code, err, "STARTTLS"))
		}
		if c.isDead() {
			return readResult{reason: c.closeReason()}, false
		}
		if c.srvStats != nil {
			c.srvStats.handshakeFailed.Add(1)
			if code == ErrTimeout {
				c.srvStats.timedOut.Add(1)
			}
		}
		return readResult{reason: CloseTLS, err: newError(code, err, "STARTTLS handshake with %s", c.peer())}, false
	}
	up.finish(nil)
	if up.client && !up.fromHandler {
		return readResult{}, true
	}
	c.evMu.Lock() // (no defer: a panic is recovered where evMu is reset)
	if !c.closing.Load() {
		c.events.established(c)
	}
	c.evMu.Unlock()
	return readResult{}, true
}

func (c *conn) switchToTLS(up *upgradeRequest, r *recvBuf, dec *Decoder) error {
	var deadline time.Time
	if up.timeout > 0 {
		deadline = time.Now().Add(up.timeout)
	}
	if up.reply != nil {
		if err := c.send(up.framing, up.reply); err != nil {
			return err
		}
	}
	tail := append([]byte(nil), r.b[r.start:r.end]...)
	c.dropBuffer(r)
	if len(tail) > 0 {
		*dec = up.framing.NewDecoder() // the old one has seen these bytes
	}
	gate, err := c.closeGate(deadline)
	if err != nil {
		return err
	}
	pc := &prefixConn{Conn: gate.Conn, prefix: tail}
	var tc *tls.Conn
	if up.client {
		tc = tls.Client(pc, up.cfg)
	} else {
		tc = tls.Server(pc, up.cfg)
	}
	c.raw.SetDeadline(deadline)
	err = tc.Handshake()
	c.raw.SetDeadline(time.Time{})
	if err != nil {
		gate.fail(err)
		return err
	}
	c.recordTLS(tc, true)
	gate.open(tc)
	return nil
}

// closeGate waits until what was queued is written in plain text, then
// puts the gate between the connection and its socket: from here on no
// byte is written until the handshake decides.
func (c *conn) closeGate(deadline time.Time) (*tlsGate, error) {
	if deadline.IsZero() {
		deadline = time.Now().Add(upgradeDrainFallback)
	}
	for {
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			return nil, errors.New("connection closed")
		}
		if len(c.out) == 0 && c.inflight == 0 && len(c.files) == 0 && !c.writer {
			g := &tlsGate{Conn: c.nc, ready: make(chan struct{})}
			c.nc, c.rc = g, nil // no writer runs: it would read nc
			c.mu.Unlock()
			return g, nil
		}
		c.mu.Unlock()
		if err := c.waitDrained(time.Until(deadline)); err != nil {
			return nil, err
		}
	}
}

// tlsGate is the connection's net.Conn during and after an upgrade: reads
// and writes wait for the handshake, then go through TLS (or fail with
// its error). Deadlines, addresses and Close are the plain socket's.
type tlsGate struct {
	net.Conn
	ready chan struct{}
	tc    *tls.Conn
	err   error
}

func (g *tlsGate) open(tc *tls.Conn) {
	g.tc = tc
	close(g.ready)
}

func (g *tlsGate) fail(err error) {
	g.err = err
	close(g.ready)
}

func (g *tlsGate) Read(p []byte) (int, error) {
	<-g.ready
	if g.err != nil {
		return 0, g.err
	}
	return g.tc.Read(p)
}

func (g *tlsGate) Write(p []byte) (int, error) {
	<-g.ready
	if g.err != nil {
		return 0, g.err
	}
	return g.tc.Write(p)
}

// prefixConn reads prefix before the connection's own bytes.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// SetUpgradeTLS is in tlsserver.go (it shares the server's certificates).

// UpgradeTLS upgrades client id's plain connection to TLS with the
// material of SetUpgradeTLS (STARTTLS). reply, when not nil, is queued as
// a message (framed) in plain text right before the handshake, once the
// connection's reader has taken the request: the peer cannot start its
// handshake before the server waits for it, whichever thread calls. It
// returns at once; Established follows when the upgrade is done, or Error
// (ErrHandshake, ErrTimeout) and Closed (CloseTLS) when it failed.
func (s *Server) UpgradeTLS(id int, reply []byte) error {
	c, err := s.client(id)
	if err != nil {
		return err
	}
	setup := s.tlsx.setup.Load()
	if setup == nil || setup.implicit {
		if setup != nil {
			return newError(ErrInvalidArg, nil, "connection %d already uses TLS", id)
		}
		return newError(ErrInvalidArg, nil, "no TLS material for upgrades (set it first: tcp_server_set_starttls)")
	}
	if reply != nil {
		if _, err := s.framing.Encode(nil, reply); err != nil {
			return err
		}
		reply = append([]byte{}, reply...)
	}
	return c.requestUpgrade(&upgradeRequest{
		cfg:     s.tlsx.connConfig(c, setup.base),
		reply:   reply,
		framing: s.framing,
		timeout: s.Options().ConnectTimeout,
		done:    make(chan struct{}),
	})
}

// UpgradeTLS upgrades the client's plain connection to TLS (STARTTLS),
// verifying the server as StartTLS does, against the host of Start. From
// the client's own handler it returns at once and the handshake follows
// the handler's return (Established(0) when done, Error and Closed when
// it failed). From anywhere else it waits for the handshake (at most the
// connect timeout, else 10 s) and returns nil, a start code
// (StartConnectInit, or 30..35 for src) or ErrTimeout; no Established(0)
// follows then (the result is the report).
func (cl *Client) UpgradeTLS(src TLSSource) error {
	_, err := cl.UpgradeTLSPending(src)
	return err
}

// UpgradeTLSPending is UpgradeTLS that also says whether it returned before
// the handshake (pending: it was called from the client's own handler, and
// the handshake's end follows as Established(0), or Error and Closed).
func (cl *Client) UpgradeTLSPending(src TLSSource) (pending bool, err error) {
	c, err := cl.live()
	if err != nil {
		return false, err
	}
	o := cl.Options()
	cl.tlsx.mu.Lock()
	host := cl.tlsx.host
	cl.tlsx.mu.Unlock()
	setup, err := cl.tlsx.prepare(src, host, o)
	if err != nil {
		return false, err
	}
	up := &upgradeRequest{
		cfg:         setup.connConfig(c),
		client:      true,
		fromHandler: c.goid.Load() == goroutineID(),
		framing:     cl.framing,
		timeout:     o.ConnectTimeout,
		done:        make(chan struct{}),
	}
	if err := c.requestUpgrade(up); err != nil {
		return false, err
	}
	if up.fromHandler {
		return true, nil
	}
	wait := o.ConnectTimeout
	if wait <= 0 {
		wait = upgradeDrainFallback
	}
	t := time.NewTimer(wait + time.Second) // the drain and the handshake each have up to wait
	defer t.Stop()
	select {
	case <-up.done:
		return false, up.err
	case <-t.C:
		return false, newError(ErrTimeout, nil, "STARTTLS handshake not done within %v", wait+time.Second)
	}
}
