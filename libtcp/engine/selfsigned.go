package engine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"strings"
	"time"
)

// selfSignedHosts are the names a generated certificate is valid for: the
// loopback names, unless the server is bound to one other address.
func selfSignedHosts(bind string) []string {
	bind = strings.TrimSpace(bind)
	ip := net.ParseIP(bind)
	if bind == "" || bind == "localhost" || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified())) {
		return []string{"localhost", "127.0.0.1", "::1"}
	}
	return []string{bind}
}

// selfSignedCert makes the certificate of a TLS server started without one,
// as the tutorials' servers do: ECDSA P-256, self-signed, valid from an hour
// ago for a year, for hosts (names and IP addresses), fit for a TLS server.
// A client trusts it by taking it as its CA (tls_server_cert_pem), or
// through its certificate callback.
func selfSignedCert(hosts []string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, newError(StartSetContext, err, "key generation")
	}
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"tcpgo self-signed"}},
		NotBefore:             now,
		NotAfter:              now.AddDate(1, 0, 0),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, newError(StartSetContext, err, "self-signed certificate")
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, newError(StartSetContext, err, "self-signed certificate")
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
