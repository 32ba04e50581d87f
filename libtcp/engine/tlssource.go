package engine

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
)

// TLSSource is where the certificates of a start come from: files
// (TLSFiles) or PEM text in memory (TLSPEM).
type TLSSource interface {
	material() (*tlsMaterial, error)
}

// TLSPEM holds the PEM text of one side of a TLS connection; nil means
// "not given".
type TLSPEM struct {
	CA   []byte // CA certificates the peer must chain to
	Cert []byte // own certificate (optionally followed by its chain)
	Key  []byte // own private key
}

func (p TLSPEM) material() (*tlsMaterial, error) {
	return &tlsMaterial{
		ca: p.CA, cert: p.Cert, key: p.Key,
		hasCA: p.CA != nil, hasCert: p.Cert != nil, hasKey: p.Key != nil,
		caName: "CA PEM", certName: "certificate PEM", keyName: "key PEM",
		// Without files there is no path: a missing half is bad content.
		missingCert: StartWrongCert, missingKey: StartWrongKey,
	}, nil
}

// tlsMaterial is a source's bytes, read but not yet parsed.
type tlsMaterial struct {
	ca, cert, key             []byte
	hasCA, hasCert, hasKey    bool
	caName, certName, keyName string // for messages: a path, or what the PEM was
	missingCert, missingKey   Code   // a certificate without key, or the reverse
}

// parse checks the contents: CA (33), certificate (34), key and whether it
// matches the certificate (35). Neither certificate nor key is allowed (a
// client without its own certificate; a server that makes one itself).
func (m *tlsMaterial) parse() (*loadedTLS, error) {
	if m.hasCert != m.hasKey {
		if !m.hasCert {
			return nil, newError(m.missingCert, nil, "a key was given without a certificate")
		}
		return nil, newError(m.missingKey, nil, "a certificate was given without a key")
	}
	out := &loadedTLS{}
	if m.hasCA {
		pool, err := parseCertPool(m.ca)
		if err != nil {
			return nil, newError(StartWrongCA, err, "%s", m.caName)
		}
		out.pool = pool
	}
	if m.hasCert {
		pair, err := parsePair(m.cert, m.key, m.certName, m.keyName)
		if err != nil {
			return nil, err
		}
		out.cert = pair
	}
	return out, nil
}

// parsePair parses a certificate (34) and its key (35).
func parsePair(certPEM, keyPEM []byte, certName, keyName string) (*tls.Certificate, error) {
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return nil, newError(StartWrongCert, err, "%s", certName)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, newError(StartWrongKey, err, "%s", keyName)
	}
	pair.Leaf = certs[0]
	return &pair, nil
}

// loadPair reads and parses the certificate and key of src (its CA is
// ignored). With neither, it returns nil: the caller decides what that
// means (a self-signed certificate).
func loadPair(src TLSSource) (*tls.Certificate, error) {
	m, err := src.material()
	if err != nil {
		return nil, err
	}
	m.hasCA = false
	l, err := m.parse()
	if err != nil {
		return nil, err
	}
	return l.cert, nil
}

// chainPEM encodes certificates (DER) as PEM, one after another.
func chainPEM(ders [][]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

// certsPEM encodes parsed certificates as PEM.
func certsPEM(certs []*x509.Certificate) []byte {
	ders := make([][]byte, len(certs))
	for i, c := range certs {
		ders[i] = c.Raw
	}
	return chainPEM(ders)
}
