package engine

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
)

// TLSFiles names the PEM files of one side of a TLS connection. Empty paths
// are "not given".
type TLSFiles struct {
	CA   string // CA certificates the peer must chain to
	Cert string // own certificate (optionally followed by its chain)
	Key  string // own private key
}

// loadedTLS holds the parsed material.
type loadedTLS struct {
	pool *x509.CertPool   // nil when no CA was given
	cert *tls.Certificate // nil when no certificate was given
}

// material reads the files in the order TCP_ServerClient v2 reports them:
// every path first (30, 31, 32); their contents are checked by
// tlsMaterial.parse (33, 34, 35, tlssource.go).
func (f TLSFiles) material() (*tlsMaterial, error) {
	m := &tlsMaterial{
		caName: f.CA, certName: f.Cert, keyName: f.Key,
		missingCert: StartWrongCertPath, missingKey: StartWrongKeyPath,
	}
	read := func(path string, code Code, dst *[]byte, has *bool) error {
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return newError(code, err, "")
		}
		*dst, *has = b, true
		return nil
	}
	if err := read(f.CA, StartWrongCAPath, &m.ca, &m.hasCA); err != nil {
		return nil, err
	}
	if err := read(f.Cert, StartWrongCertPath, &m.cert, &m.hasCert); err != nil {
		return nil, err
	}
	if err := read(f.Key, StartWrongKeyPath, &m.key, &m.hasKey); err != nil {
		return nil, err
	}
	return m, nil
}

func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

func parseCertPool(data []byte) (*x509.CertPool, error) {
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func minVersion(v uint16) uint16 {
	if v == 0 {
		return tls.VersionTLS13
	}
	return v
}
