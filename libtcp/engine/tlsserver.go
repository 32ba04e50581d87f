package engine

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// serverTLS is a server's TLS state across starts: its certificates (the
// default one and those chosen by SNI), the certificate callback, the
// material for STARTTLS, and the configuration of the running server.
type serverTLS struct {
	mu      sync.Mutex // serialises changes of certs, upgrade and setup
	certs   atomic.Pointer[certStore]
	check   atomic.Pointer[CertCheckFunc]
	setup   atomic.Pointer[serverTLSSetup] // nil: plain server without STARTTLS material
	upgrade *loadedTLS                     // STARTTLS material (SetUpgradeTLS); nil = none
}

// serverTLSSetup is the TLS configuration of one start.
type serverTLSSetup struct {
	base     *tls.Config
	pool     *x509.CertPool // CAs of client certificates; nil = none
	request  bool           // clients are asked for a certificate
	optional bool           // ... and may send none
	implicit bool           // TLS from the first byte (not STARTTLS)
}

// certStore is copied on every change, so a handshake reads one
// consistent version without a lock.
type certStore struct {
	def    *tls.Certificate            // no SNI, or no name matched
	byName map[string]*tls.Certificate // lower-case host names and "*.suffix"
}

func (st *serverTLS) store() *certStore {
	if s := st.certs.Load(); s != nil {
		return s
	}
	return &certStore{}
}

// change applies f to a copy of the store; st.mu held.
func (st *serverTLS) change(f func(*certStore)) {
	old := st.store()
	next := &certStore{def: old.def, byName: make(map[string]*tls.Certificate, len(old.byName)+1)}
	for k, v := range old.byName {
		next.byName[k] = v
	}
	f(next)
	st.certs.Store(next)
}

// certificateFor picks the certificate for a client's SNI: the exact name,
// then a wildcard for its first label, then the default.
func (st *serverTLS) certificateFor(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	s := st.store()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c := s.byName[name]; c != nil {
			return c, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := s.byName["*"+name[i:]]; c != nil {
				return c, nil
			}
		}
	}
	if s.def == nil {
		return nil, errors.New("the server has no certificate")
	}
	return s.def, nil
}

// loadServerMaterial parses a server's source; without certificate and
// key it makes a self-signed certificate (selfsigned.go).
func loadServerMaterial(src TLSSource, o Options) (*loadedTLS, error) {
	m, err := src.material()
	if err != nil {
		return nil, err
	}
	l, err := m.parse()
	if err != nil {
		return nil, err
	}
	if l.cert == nil {
		if l.cert, err = selfSignedCert(selfSignedHosts(o.BindAddress)); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// build makes the configuration of a start from parsed material.
func (st *serverTLS) build(l *loadedTLS, o Options, implicit bool) (*serverTLSSetup, error) {
	cfg := &tls.Config{
		GetCertificate:         st.certificateFor,
		SessionTicketsDisabled: o.TLS.NoResumption,
	}
	if err := applyTLSOptions(cfg, o); err != nil {
		return nil, err
	}
	// Fixed ticket keys for this start: every connection's config is a
	// clone, and clones share explicit keys (automatic ones would be
	// made per clone, and no ticket would ever be accepted).
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, newError(StartSetContext, err, "session ticket key")
	}
	cfg.SetSessionTicketKeys([][32]byte{key})
	setup := &serverTLSSetup{base: cfg, pool: l.pool, implicit: implicit}
	switch {
	case l.pool != nil:
		// Verified by verifyClient, which sees every certificate first so
		// that the certificate callback can overrule the built-in check.
		setup.request, setup.optional = true, o.ClientCertOptional
		cfg.ClientAuth = tls.RequireAnyClientCert
		if o.ClientCertOptional {
			cfg.ClientAuth = tls.RequestClientCert
		}
	case st.check.Load() != nil:
		// No CA, but a callback: ask for a certificate it can judge.
		setup.request, setup.optional = true, true
		cfg.ClientAuth = tls.RequestClientCert
	}
	return setup, nil
}

// prepare sets up TLS for a start: src for a TLS server (implicit), else
// the STARTTLS material if any. It returns the configuration of implicit
// TLS, nil for a plain server. Nothing changes when it fails.
func (st *serverTLS) prepare(src TLSSource, o Options) (*tls.Config, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	l := st.upgrade
	if src != nil {
		var err error
		if l, err = loadServerMaterial(src, o); err != nil {
			return nil, err
		}
	}
	if l == nil {
		st.setup.Store(nil)
		return nil, nil
	}
	setup, err := st.build(l, o, src != nil)
	if err != nil {
		return nil, err
	}
	st.change(func(s *certStore) { s.def = l.cert })
	st.setup.Store(setup)
	if src == nil {
		return nil, nil
	}
	return setup.base, nil
}

// connConfig is the configuration of one connection's handshake: the
// start's, with a certificate check that knows the connection.
func (st *serverTLS) connConfig(c *conn, cfg *tls.Config) *tls.Config {
	setup := st.setup.Load()
	if setup == nil || !setup.request {
		return cfg
	}
	out := setup.base.Clone()
	out.VerifyConnection = func(cs tls.ConnectionState) error { return st.verifyClient(c, setup, cs) }
	return out
}

// verifyClient is the server's check of a client certificate: the
// built-in verdict, then the certificate callback's, if one is set.
func (st *serverTLS) verifyClient(c *conn, setup *serverTLSSetup, cs tls.ConnectionState) error {
	var res CertResult
	var err error
	switch {
	case len(cs.PeerCertificates) == 0:
		res, err = CertNoCert, errors.New("the client sent no certificate")
	case setup.pool == nil:
		res, err = CertUnknownCA, errors.New("the server has no CA to verify client certificates with")
	default:
		res, err = verifyPeer(cs.PeerCertificates, setup.pool, "", clientRole)
	}
	ch := &c.tlsx.checked
	ch.result, ch.err, ch.ran = res, err, true
	var check CertCheckFunc
	if p := st.check.Load(); p != nil {
		check = *p
	}
	cc := &CertCheck{ID: c.id, Chain: cs.PeerCertificates, Result: res, Err: err, ServerName: cs.ServerName}
	return verdict(check, cc, res == CertOK || (res == CertNoCert && setup.optional))
}

// handshake runs the server side of a connection's TLS handshake.
func (st *serverTLS) handshake(c *conn, cfg *tls.Config, timeout time.Duration) *Error {
	tc := tls.Server(c.nc, st.connConfig(c, cfg))
	if timeout > 0 {
		tc.SetDeadline(time.Now().Add(timeout))
	}
	if err := tc.Handshake(); err != nil {
		if isTimeout(err) {
			return newError(ErrTimeout, err, "TLS handshake of client %s", c.peer())
		}
		return newError(ErrHandshake, err, "client %s", c.peer())
	}
	tc.SetDeadline(time.Time{})
	c.useTLS(tc) // only this goroutine uses nc until established
	c.recordTLS(tc, false)
	return nil
}

// SetCertCheck sets (nil: removes) the callback that judges client
// certificates; any time, for the handshakes that follow. Set it before
// Start for a server without a CA: only then are clients asked for a
// certificate.
func (s *Server) SetCertCheck(f CertCheckFunc) {
	if f == nil {
		s.tlsx.check.Store(nil)
	} else {
		s.tlsx.check.Store(&f)
	}
}

// validHostPattern accepts "host.example" and "*.example" (one leading
// wildcard label).
func validHostPattern(p string) bool {
	rest := strings.TrimPrefix(p, "*.")
	if rest == "" || strings.ContainsAny(rest, "* /:") || strings.HasPrefix(rest, ".") || strings.HasSuffix(rest, ".") {
		return false
	}
	return true
}

// AddCert adds (or replaces) the certificate for clients that ask for
// host by SNI: a name, or "*.domain" for the names one label below
// domain. The default certificate (of StartTLS) serves every other name.
// Any time; kept across restarts.
func (s *Server) AddCert(host string, src TLSSource) error {
	host = strings.ToLower(strings.TrimSpace(host))
	if !validHostPattern(host) {
		return newError(ErrInvalidArg, nil, "host %q: want a name or *.domain", host)
	}
	m, err := src.material()
	if err != nil {
		return err
	}
	if !m.hasCert && !m.hasKey {
		return newError(m.missingCert, nil, "a certificate and its key are needed")
	}
	m.hasCA = false
	l, err := m.parse()
	if err != nil {
		return err
	}
	st := &s.tlsx
	st.mu.Lock()
	st.change(func(cs *certStore) { cs.byName[host] = l.cert })
	st.mu.Unlock()
	return nil
}

// ReloadCert replaces the default certificate of a running TLS server (or
// of a plain server's STARTTLS material) for the handshakes that follow;
// connections already up keep theirs. Neither certificate nor key: a new
// self-signed certificate.
func (s *Server) ReloadCert(src TLSSource) error {
	m, err := src.material()
	if err != nil {
		return err
	}
	m.hasCA = false
	l, err := m.parse()
	if err != nil {
		return err
	}
	o := s.Options()
	if l.cert == nil {
		if l.cert, err = selfSignedCert(selfSignedHosts(o.BindAddress)); err != nil {
			return err
		}
	}
	st := &s.tlsx
	st.mu.Lock()
	defer st.mu.Unlock()
	if !s.Running() || st.setup.Load() == nil {
		return newError(ErrNotRunning, nil, "no running TLS server (start it with TLS, or set STARTTLS material)")
	}
	st.change(func(cs *certStore) { cs.def = l.cert })
	if st.upgrade != nil {
		up := *st.upgrade
		up.cert = l.cert
		st.upgrade = &up
	}
	return nil
}

// CertificatePEM is the server's default certificate (with its chain) in
// PEM: the one of the last TLS start, reload or STARTTLS material, e.g. a
// self-signed one the server made.
func (s *Server) CertificatePEM() ([]byte, error) {
	def := s.tlsx.store().def
	if def == nil {
		return nil, newError(ErrNoField, nil, "the server has no TLS certificate yet")
	}
	return chainPEM(def.Certificate), nil
}

// SetUpgradeTLS sets the material for upgrading connections of a plain
// server to TLS (UpgradeTLS): the CA of client certificates, the server's
// certificate and key (neither: a self-signed certificate). Any time; on a
// running plain server it applies to the upgrades that follow.
func (s *Server) SetUpgradeTLS(src TLSSource) error {
	l, err := loadServerMaterial(src, s.Options())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.tlsx
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.running {
		if setup := st.setup.Load(); setup == nil || !setup.implicit {
			setup, err := st.build(l, s.opts, false)
			if err != nil {
				return err
			}
			st.change(func(cs *certStore) { cs.def = l.cert })
			st.setup.Store(setup)
		}
	}
	st.upgrade = l
	return nil
}

// clientOrHandshaking is client(id), but also finds a connection that is
// still in its TLS handshake (not yet established), so that a certificate
// callback can look up the address of the connection it judges.
func (s *Server) clientOrHandshaking(id int) (*conn, error) {
	c, err := s.client(id)
	if err == nil || CodeOf(err) != ErrNoClient {
		return c, err
	}
	v, _ := s.byID.Load(id)
	if h, _ := v.(*conn); h != nil && !h.isDead() {
		return h, nil
	}
	return nil, err
}
