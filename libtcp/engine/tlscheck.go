package engine

import (
	"crypto/x509"
	"errors"
	"fmt"
)

// CertResult is the built-in verdict on a peer's certificate (enum
// tcp_cert_result).
type CertResult int

const (
	CertOK           CertResult = 0 // chain (and, on a client, name) verified
	CertNoCert       CertResult = 1 // the peer sent no certificate
	CertUnknownCA    CertResult = 2 // no chain to a trusted CA (or no CA to check with)
	CertExpired      CertResult = 3 // expired or not yet valid
	CertNameMismatch CertResult = 4 // valid, but not for the server name
	CertPurpose      CertResult = 5 // not fit for its role (EKU, KeyUsage...: tlsverify.go)
	CertInvalid      CertResult = 6 // anything else (signature, constraints, malformed)
)

var certResultText = map[CertResult]string{
	CertOK: "ok", CertNoCert: "no certificate", CertUnknownCA: "unknown CA",
	CertExpired: "expired or not yet valid", CertNameMismatch: "name mismatch",
	CertPurpose: "unsuitable purpose", CertInvalid: "invalid certificate",
}

func (r CertResult) String() string {
	if t, ok := certResultText[r]; ok {
		return t
	}
	return "unknown result"
}

// CertCheck is what a certificate callback sees: the peer's certificate
// and the built-in verdict on it.
type CertCheck struct {
	ID         int                 // server: the connection's client id; client: 0
	Chain      []*x509.Certificate // as the peer sent it, leaf first; empty if none
	Result     CertResult          // CertOK when verified
	Err        error               // why not; nil when verified
	ServerName string              // server: the SNI the client asked for; client: the name verified ("" = none)
}

// CertCheckFunc decides whether a handshake goes on: true accepts the
// certificate (also one the built-in check rejected), false refuses it.
// It runs during the handshake, on the connection's goroutine.
type CertCheckFunc func(*CertCheck) bool

// verifyPeer is the built-in check of a peer's chain, the same as before
// certificate callbacks existed: Go's chain (and host name) verification,
// then OpenSSL's purpose checks (tlsverify.go). A client checks a server
// with any EKU and lets the purpose check decide (as verifyServerCert); a
// server checks a client for clientAuth as Go's own server does, then the
// purpose (as verifyClientPurpose). roots nil: the system's CAs.
func verifyPeer(certs []*x509.Certificate, roots *x509.CertPool, host string, role peerRole) (CertResult, error) {
	if len(certs) == 0 {
		return CertNoCert, fmt.Errorf("the %s sent no certificate", role)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	eku := x509.ExtKeyUsageAny
	if role == clientRole {
		eku = x509.ExtKeyUsageClientAuth
	}
	// The chain first, then the name (what Verify with DNSName does in the
	// other order), so that a certificate from an unknown CA is reported
	// as such whatever its names.
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{eku},
	})
	if err != nil {
		return classifyVerifyError(err), err
	}
	if host != "" {
		if err := certs[0].VerifyHostname(host); err != nil {
			return classifyVerifyError(err), err
		}
	}
	if err := checkChainsPurpose(chains, role); err != nil {
		return CertPurpose, err
	}
	return CertOK, nil
}

func classifyVerifyError(err error) CertResult {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return CertUnknownCA
	case errors.As(err, &host):
		return CertNameMismatch
	case errors.As(err, &invalid):
		switch invalid.Reason {
		case x509.Expired:
			return CertExpired
		case x509.IncompatibleUsage:
			return CertPurpose
		}
	}
	return CertInvalid
}

// verdict applies the callback, if any, to the built-in result. accept is
// what the built-in check alone decides.
func verdict(check CertCheckFunc, cc *CertCheck, accept bool) error {
	if check != nil {
		accept = check(cc)
		if !accept {
			if cc.Err != nil {
				return fmt.Errorf("certificate refused by the certificate callback (%s: %v)", cc.Result, cc.Err)
			}
			return fmt.Errorf("certificate refused by the certificate callback (%s)", cc.Result)
		}
		return nil
	}
	if !accept {
		return cc.Err
	}
	return nil
}
