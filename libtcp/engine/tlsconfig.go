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

// loadedTLS holds the parsed files.
type loadedTLS struct {
	pool *x509.CertPool   // nil when no CA was given
	cert *tls.Certificate // nil when no certificate was given
}

// load reads and checks the files in the order TCP_ServerClient v2 reports
// them: every path first (30, 31, 32), then every content (33, 34, 35).
// A server must have a certificate (needCert).
func (f TLSFiles) load(needCert bool) (*loadedTLS, error) {
	var caPEM, certPEM, keyPEM []byte
	var err error
	if f.CA != "" {
		if caPEM, err = os.ReadFile(f.CA); err != nil {
			return nil, newError(StartWrongCAPath, err, "")
		}
	}
	if f.Cert != "" {
		if certPEM, err = os.ReadFile(f.Cert); err != nil {
			return nil, newError(StartWrongCertPath, err, "")
		}
	}
	if f.Key != "" {
		if keyPEM, err = os.ReadFile(f.Key); err != nil {
			return nil, newError(StartWrongKeyPath, err, "")
		}
	}
	if needCert && f.Cert == "" {
		return nil, newError(StartWrongCertPath, nil, "a TLS server needs a certificate")
	}
	if (f.Cert == "") != (f.Key == "") {
		if f.Cert == "" {
			return nil, newError(StartWrongCertPath, nil, "a key was given without a certificate")
		}
		return nil, newError(StartWrongKeyPath, nil, "a certificate was given without a key")
	}

	out := &loadedTLS{}
	if caPEM != nil {
		pool, err := parseCertPool(caPEM)
		if err != nil {
			return nil, newError(StartWrongCA, err, "%s", f.CA)
		}
		out.pool = pool
	}
	if certPEM != nil {
		if _, err := parseCertificates(certPEM); err != nil {
			return nil, newError(StartWrongCert, err, "%s", f.Cert)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, newError(StartWrongKey, err, "%s", f.Key)
		}
		out.cert = &pair
	}
	return out, nil
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

// serverTLSConfig builds the server side: with a CA, clients must present a
// certificate signed by it (unless ClientCertOptional).
func serverTLSConfig(files TLSFiles, o Options) (*tls.Config, error) {
	l, err := files.load(true)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{*l.cert},
		MinVersion:   minVersion(o.TLSMinVersion),
		ClientAuth:   tls.NoClientCert,
	}
	if l.pool != nil {
		cfg.ClientCAs = l.pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if o.ClientCertOptional {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
		cfg.VerifyConnection = verifyClientPurpose // KeyUsage etc. as OpenSSL (tlsverify.go)
	}
	return cfg, nil
}

// clientTLSConfig builds the client side. VerifyFull checks chain and host
// name; VerifyCA checks only that the server's certificate chains to the CA
// and sends no SNI, like TCP_ServerClient v2. Both check that the
// certificate is fit for a TLS server as OpenSSL does (tlsverify.go).
func clientTLSConfig(files TLSFiles, host string, o Options) (*tls.Config, error) {
	l, err := files.load(false)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		RootCAs:    l.pool,
		MinVersion: minVersion(o.TLSMinVersion),
	}
	if l.cert != nil {
		cfg.Certificates = []tls.Certificate{*l.cert}
	}
	verifyHost := ""
	if o.VerifyMode != VerifyCA {
		cfg.ServerName = host
		verifyHost = host
	}
	roots := l.pool
	// Replaced by verifyServerCert, which runs Go's chain (and host) check
	// and then OpenSSL's ssl_server purpose check, SGC EKU included.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyServerCert(cs.PeerCertificates, roots, verifyHost)
	}
	return cfg, nil
}
