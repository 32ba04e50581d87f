package engine

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// clientTLS is a client's TLS state across starts: the certificate
// callback, the session cache, and the host of the last start (a STARTTLS
// upgrade verifies the server against it).
type clientTLS struct {
	check atomic.Pointer[CertCheckFunc]

	mu       sync.Mutex
	cache    tls.ClientSessionCache
	cacheKey [32]byte
	host     string
}

// clientTLSSetup is the TLS configuration of one start (or upgrade).
type clientTLSSetup struct {
	base       *tls.Config // without the per-connection certificate check
	roots      *x509.CertPool
	verifyHost string // "" = the name is not checked (VerifyCA)
	check      *atomic.Pointer[CertCheckFunc]
}

// sessionCacheSize is how many servers' sessions a client keeps: one
// client talks to one server, a few names at most.
const sessionCacheSize = 16

// prepare builds the configuration of a start from src (nil: plain TCP,
// no configuration), for host.
//
// Verification is the same in every API: with VerifyFull the server's
// certificate must chain to the CA (the system's CAs when none is given,
// or both with SystemCAs) and match Options.TLS.ServerName, or the host
// dialled when that is empty; VerifyCA checks the chain only. Both check
// the certificate's purpose as OpenSSL does (tlsverify.go). The name is
// sent as SNI, except an IP address; VerifyCA sends SNI only when
// ServerName is set (TCP_ServerClient v2 sends none).
func (ct *clientTLS) prepare(src TLSSource, host string, o Options) (*clientTLSSetup, error) {
	ct.mu.Lock()
	ct.host = host // a plain connection's STARTTLS verifies against it
	ct.mu.Unlock()
	if src == nil {
		return nil, nil
	}
	m, err := src.material()
	if err != nil {
		return nil, err
	}
	l, err := m.parse()
	if err != nil {
		return nil, err
	}
	roots := l.pool
	if o.TLS.SystemCAs && roots != nil {
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, newError(StartSetContext, err, "system CAs")
		}
		extra, _ := parseCertificates(m.ca) // parsed once already by parse
		for _, c := range extra {
			sys.AddCert(c)
		}
		roots = sys
	}
	cfg := &tls.Config{
		RootCAs: roots,
		// Replaced by verifyServer (per connection), which runs the
		// built-in check and then the certificate callback, if any.
		InsecureSkipVerify: true,
	}
	if err := applyTLSOptions(cfg, o); err != nil {
		return nil, err
	}
	if l.cert != nil {
		cfg.Certificates = []tls.Certificate{*l.cert}
	}
	name, verifyHost := o.TLS.ServerName, ""
	if o.VerifyMode != VerifyCA {
		if name == "" {
			name = host
		}
		verifyHost = name
	}
	cfg.ServerName = name
	if !o.TLS.NoResumption {
		cfg.ClientSessionCache = ct.sessionCache(m, name, o)
	}
	return &clientTLSSetup{base: cfg, roots: roots, verifyHost: verifyHost, check: &ct.check}, nil
}

// sessionCache is the client's cache of sessions for resumption. It lives
// as long as the handle and survives restarts and reconnections, but a
// start with other certificates or verification settings gets a new one:
// a session must never carry an identity or a verdict the new settings
// would not give.
func (ct *clientTLS) sessionCache(m *tlsMaterial, name string, o Options) tls.ClientSessionCache {
	h := sha256.New()
	for _, b := range [][]byte{m.ca, m.cert, m.key, []byte(name)} {
		binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	binary.Write(h, binary.BigEndian, [3]int64{int64(o.VerifyMode), boolInt(o.TLS.SystemCAs), int64(o.TLSMinVersion)<<16 | int64(o.TLS.MaxVersion)})
	var key [32]byte
	h.Sum(key[:0])
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.cache == nil || ct.cacheKey != key {
		ct.cache, ct.cacheKey = tls.NewLRUClientSessionCache(sessionCacheSize), key
	}
	return ct.cache
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// connConfig is the configuration of one connection's handshake.
func (t *clientTLSSetup) connConfig(c *conn) *tls.Config {
	cfg := t.base.Clone()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { return t.verifyServer(c, cs) }
	return cfg
}

// verifyServer is the client's check of the server: the built-in verdict,
// then the certificate callback's, if one is set. It runs on resumed
// sessions too.
func (t *clientTLSSetup) verifyServer(c *conn, cs tls.ConnectionState) error {
	res, err := verifyPeer(cs.PeerCertificates, t.roots, t.verifyHost, serverRole)
	ch := &c.tlsx.checked
	ch.result, ch.err, ch.ran = res, err, true
	var check CertCheckFunc
	if p := t.check.Load(); p != nil {
		check = *p
	}
	cc := &CertCheck{Chain: cs.PeerCertificates, Result: res, Err: err, ServerName: t.verifyHost}
	return verdict(check, cc, res == CertOK)
}

// handshake runs the client side of a new connection's TLS handshake.
func (t *clientTLSSetup) handshake(ctx context.Context, c *conn) error {
	tc := tls.Client(c.nc, t.connConfig(c))
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	c.useTLS(tc)
	c.recordTLS(tc, false)
	return nil
}

// SetCertCheck sets (nil: removes) the callback that judges the server's
// certificate; any time, for the handshakes that follow.
func (cl *Client) SetCertCheck(f CertCheckFunc) {
	if f == nil {
		cl.tlsx.check.Store(nil)
	} else {
		cl.tlsx.check.Store(&f)
	}
}

// StartTLSPEM connects with TLS, with the CA, certificate and key given as
// PEM text (nil: not given).
func (cl *Client) StartTLSPEM(host string, port int, p TLSPEM) error {
	return cl.start(host, port, p)
}
