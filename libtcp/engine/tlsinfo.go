package engine

import (
	"crypto/tls"
	"crypto/x509"
	"sync/atomic"
)

// TLSInfo describes a connection's TLS session once its handshake is done
// (tcp_tls_info and tcp_*_tls_str).
type TLSInfo struct {
	Version     uint16 // tls.VersionTLS12, tls.VersionTLS13
	CipherSuite uint16 // IANA id
	ALPN        string // the negotiated protocol; "" = none
	Resumed     bool   // the session was resumed (ticket / PSK)
	ServerName  string // the SNI the client sent ("" = none)
	// PeerChain is the peer's certificates as it sent them (on a resumed
	// session: as it sent them then), leaf first; empty when it sent none.
	PeerChain []*x509.Certificate
	Verify    CertResult // the built-in verdict on PeerChain
	VerifyErr string     // why it failed; "" when verified
	Upgraded  bool       // by STARTTLS (explicit TLS), not at connect
}

// PeerCertPEM is the peer's leaf certificate in PEM, or nil.
func (i *TLSInfo) PeerCertPEM() []byte {
	if len(i.PeerChain) == 0 {
		return nil
	}
	return certsPEM(i.PeerChain[:1])
}

// PeerChainPEM is every certificate the peer sent, in PEM.
func (i *TLSInfo) PeerChainPEM() []byte { return certsPEM(i.PeerChain) }

// PeerSubject is the peer certificate's subject as one line (RFC 2253,
// e.g. "CN=tcpgo client,OU=test,O=tcpgo"), "" without a certificate.
func (i *TLSInfo) PeerSubject() string {
	if len(i.PeerChain) == 0 {
		return ""
	}
	return i.PeerChain[0].Subject.String()
}

// PeerIssuer is the peer certificate's issuer as one line.
func (i *TLSInfo) PeerIssuer() string {
	if len(i.PeerChain) == 0 {
		return ""
	}
	return i.PeerChain[0].Issuer.String()
}

// connTLS is a connection's TLS state beside its socket: what the handshake
// negotiated, and a STARTTLS upgrade asked for (starttls.go).
type connTLS struct {
	info    atomic.Pointer[TLSInfo]
	upgrade atomic.Pointer[upgradeRequest]
	// checked is the built-in verdict of the handshake in progress, set by
	// its certificate check and read after it, on the same goroutine.
	checked struct {
		result CertResult
		err    error
		ran    bool
	}
}

// recordTLS keeps what tc negotiated; the subject of a peer certificate
// that was accepted becomes get_subj_part's.
func (c *conn) recordTLS(tc *tls.Conn, upgraded bool) {
	cs := tc.ConnectionState()
	info := &TLSInfo{
		Version:     cs.Version,
		CipherSuite: cs.CipherSuite,
		ALPN:        cs.NegotiatedProtocol,
		Resumed:     cs.DidResume,
		ServerName:  cs.ServerName,
		PeerChain:   cs.PeerCertificates,
		Upgraded:    upgraded,
	}
	if ch := &c.tlsx.checked; ch.ran {
		info.Verify = ch.result
		if ch.err != nil {
			info.VerifyErr = ch.err.Error()
		}
	} else if len(cs.PeerCertificates) == 0 {
		info.Verify = CertNoCert
	}
	c.tlsx.info.Store(info)
	if len(cs.PeerCertificates) > 0 {
		c.mu.Lock()
		c.peerSubject = &cs.PeerCertificates[0].Subject
		c.mu.Unlock()
	}
}

// tlsInfo is the connection's TLS description, ErrNoField for plain TCP.
func (c *conn) tlsInfo() (*TLSInfo, error) {
	if i := c.tlsx.info.Load(); i != nil {
		return i, nil
	}
	return nil, newError(ErrNoField, nil, "connection %d does not use TLS", c.id)
}

// TLSInfo describes the TLS session of client id; ErrNoField for a plain
// TCP connection (also one whose STARTTLS upgrade has not finished).
func (s *Server) TLSInfo(id int) (*TLSInfo, error) {
	c, err := s.client(id)
	if err != nil {
		return nil, err
	}
	return c.tlsInfo()
}

// TLSInfo describes the TLS session of the current (or last) connection.
func (cl *Client) TLSInfo() (*TLSInfo, error) {
	cl.mu.Lock()
	c := cl.c
	cl.mu.Unlock()
	if c == nil {
		return nil, newError(ErrNotRunning, nil, "client never connected")
	}
	return c.tlsInfo()
}
