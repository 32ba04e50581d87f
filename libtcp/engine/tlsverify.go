package engine

// Certificate purpose checks, after OpenSSL's X509_PURPOSE_SSL_SERVER and
// X509_PURPOSE_SSL_CLIENT (check_purpose_ssl_server / check_purpose_ssl_client
// and check_ssl_ca / check_ca in crypto/x509/v3_purp.c, OpenSSL 3.0), which
// OpenSSL-based peers such as TCP_ServerClient v2 and `openssl s_client
// -verify_return_error` apply to the peer's chain. Go's verifier checks EKU
// its own way (anyExtendedKeyUsage allows everything, the SGC usages do not
// count as serverAuth) and never looks at KeyUsage or the Netscape cert
// type, so we check them here, in every verify mode:
//
// Leaf (require_ca = 0), an extension only counts when it is present:
//   - server: EKU must hold serverAuth, msSGC or nsSGC; the Netscape cert
//     type must hold "server"; KeyUsage must hold digitalSignature,
//     keyEncipherment or keyAgreement (OpenSSL's KU_TLS).
//   - client: EKU must hold clientAuth; KeyUsage must hold digitalSignature
//     or keyAgreement; the Netscape cert type must hold "client".
//   - anyExtendedKeyUsage alone satisfies neither: OpenSSL 3.0 records it as
//     XKU_ANYEKU, which is outside both masks (`openssl verify -purpose
//     sslserver` rejects such a leaf; checked by the tests).
//
// Every CA certificate of the chain, the trust anchor included (OpenSSL
// checks the anchor's purpose too, as it has no auxiliary trust settings:
// Go cannot load "TRUSTED CERTIFICATE" PEM blocks):
//   - EKU as for the leaf of the same role (a CA with EKU clientAuth only
//     cannot vouch for a server);
//   - check_ssl_ca: KeyUsage, when present, holds keyCertSign; with
//     basicConstraints it must say CA:TRUE; without it the certificate is
//     accepted as an X.509 v1 self-signed root, when it has a KeyUsage
//     (with keyCertSign, see above), or when its Netscape cert type holds
//     sslCA. Go's chain builder already refuses most of what this rejects
//     (CheckSignatureFrom wants CA:TRUE from v3 issuers and keyCertSign in
//     any KeyUsage), and is stricter in one corner we leave alone: it
//     refuses a v3 CA without basicConstraints, which OpenSSL takes when it
//     has keyCertSign or the sslCA cert type.
//
// Not modelled: OpenSSL's strict mode (X509_V_FLAG_X509_STRICT), auxiliary
// trust, and the TLS layer's own per-key-type KeyUsage checks (e.g. an
// ECDSA certificate without digitalSignature in TLS 1.2).

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
)

// peerRole is what the peer's certificate must be fit for.
type peerRole int

const (
	serverRole peerRole = iota // X509_PURPOSE_SSL_SERVER
	clientRole                 // X509_PURPOSE_SSL_CLIENT
)

func (r peerRole) String() string {
	if r == serverRole {
		return "server"
	}
	return "client"
}

var (
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidNetscapeCertType = asn1.ObjectIdentifier{2, 16, 840, 1, 113730, 1, 1}
)

// Netscape cert type bits (NS_* in OpenSSL's x509v3.h), first byte of the
// BIT STRING.
const (
	nsSSLClient = 0x80
	nsSSLServer = 0x40
	nsSSLCA     = 0x04
	nsAnyCA     = 0x07 // sslCA, emailCA, objCA
)

var nsNames = []struct {
	bit  byte
	name string
}{
	{0x80, "client"}, {0x40, "server"}, {0x20, "email"}, {0x10, "objsign"},
	{0x08, "reserved"}, {0x04, "sslCA"}, {0x02, "emailCA"}, {0x01, "objCA"},
}

// verifyServerCert is the client's check of the server: the chain to roots
// (the system's when nil) with Go's verifier, the host name unless host is
// empty (VerifyCA), and the ssl_server purpose. Go's verifier runs with any
// EKU so that the purpose check alone decides on EKU, as OpenSSL does.
func verifyServerCert(certs []*x509.Certificate, roots *x509.CertPool, host string) error {
	if len(certs) == 0 {
		return errors.New("server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       host,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return err
	}
	return checkChainsPurpose(chains, serverRole)
}

// verifyClientPurpose is the server's check of a client certificate, run
// after Go verified its chain to the CA. Go accepts every EKU that OpenSSL's
// ssl_client purpose accepts (clientAuth; Go also takes anyExtendedKeyUsage),
// so adding the purpose check gives OpenSSL's verdict.
func verifyClientPurpose(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil // an optional certificate that was not sent
	}
	if len(cs.VerifiedChains) == 0 {
		return errors.New("client certificate was not verified")
	}
	return checkChainsPurpose(cs.VerifiedChains, clientRole)
}

// checkChainsPurpose accepts when one of the verified chains (leaf first,
// trust anchor last) suits role; otherwise it returns the first chain's
// problem.
func checkChainsPurpose(chains [][]*x509.Certificate, role peerRole) error {
	var first error
	for _, chain := range chains {
		err := checkChainPurpose(chain, role)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = errors.New("no verified chain")
	}
	return first
}

// checkChainPurpose checks chain[0] as a leaf and the rest as CAs.
func checkChainPurpose(chain []*x509.Certificate, role peerRole) error {
	if len(chain) == 0 {
		return errors.New("empty chain")
	}
	if err := checkLeafPurpose(chain[0], role); err != nil {
		return fmt.Errorf("certificate purpose: %s certificate %q %w", role, chain[0].Subject.String(), err)
	}
	for _, ca := range chain[1:] {
		if err := checkCAPurpose(ca, role); err != nil {
			return fmt.Errorf("certificate purpose: CA certificate %q in the %s's chain %w", ca.Subject.String(), role, err)
		}
	}
	return nil
}

// checkLeafPurpose is check_purpose_ssl_server / _client with require_ca 0.
// Its errors complete a sentence that starts with the certificate.
func checkLeafPurpose(c *x509.Certificate, role peerRole) error {
	u, err := usagesOf(c)
	if err != nil {
		return err
	}
	if err := u.checkEKU(c, role); err != nil {
		return err
	}
	if role == serverRole {
		if u.hasNS && u.ns&nsSSLServer == 0 {
			return fmt.Errorf("has Netscape cert type %s, server needed", nsString(u.ns))
		}
		const kuTLS = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement
		if u.hasKU && c.KeyUsage&kuTLS == 0 {
			return fmt.Errorf("has KeyUsage %s, needs digitalSignature, keyEncipherment or keyAgreement", kuString(c.KeyUsage))
		}
		return nil
	}
	const kuClient = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
	if u.hasKU && c.KeyUsage&kuClient == 0 {
		return fmt.Errorf("has KeyUsage %s, needs digitalSignature or keyAgreement", kuString(c.KeyUsage))
	}
	if u.hasNS && u.ns&nsSSLClient == 0 {
		return fmt.Errorf("has Netscape cert type %s, client needed", nsString(u.ns))
	}
	return nil
}

// checkCAPurpose is check_purpose_ssl_server / _client with require_ca 1:
// the EKU, then check_ssl_ca.
func checkCAPurpose(c *x509.Certificate, role peerRole) error {
	u, err := usagesOf(c)
	if err != nil {
		return err
	}
	if err := u.checkEKU(c, role); err != nil {
		return err
	}
	if u.hasKU && c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("has KeyUsage %s, keyCertSign needed", kuString(c.KeyUsage))
	}
	switch {
	case c.BasicConstraintsValid:
		if !c.IsCA {
			return errors.New("has basicConstraints CA:FALSE")
		}
	case c.Version == 1 && selfSigned(c), u.hasKU:
		// An X.509 v1 root, or a KeyUsage with keyCertSign (checked above).
	case u.hasNS && u.ns&nsAnyCA != 0:
		if u.ns&nsSSLCA == 0 {
			return fmt.Errorf("has Netscape cert type %s, sslCA needed", nsString(u.ns))
		}
	default:
		return errors.New("is no CA: no basicConstraints, KeyUsage or Netscape CA type")
	}
	return nil
}

// selfSigned approximates OpenSSL's EXFLAG_SS: subject equals issuer and an
// authority key id, if any, names the certificate's own key.
func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawSubject, c.RawIssuer) {
		return false
	}
	return len(c.AuthorityKeyId) == 0 || len(c.SubjectKeyId) == 0 ||
		bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
}

// usages records which of the purpose-relevant extensions a certificate
// has: present-but-empty differs from absent, as in OpenSSL's ex_flags.
type usages struct {
	hasKU, hasEKU, hasNS bool
	ns                   byte
}

func usagesOf(c *x509.Certificate) (usages, error) {
	var u usages
	for _, e := range c.Extensions {
		switch {
		case e.Id.Equal(oidKeyUsage):
			u.hasKU = true
		case e.Id.Equal(oidExtKeyUsage):
			u.hasEKU = true
		case e.Id.Equal(oidNetscapeCertType):
			var bits asn1.BitString
			if rest, err := asn1.Unmarshal(e.Value, &bits); err != nil || len(rest) != 0 {
				return u, errors.New("has a malformed Netscape cert type")
			}
			u.hasNS = true
			if len(bits.Bytes) > 0 {
				u.ns = bits.Bytes[0]
			}
		}
	}
	return u, nil
}

// checkEKU is OpenSSL's xku_reject: an EKU, when present, must name the
// role's usage (serverAuth or one of the SGC usages for a server, clientAuth
// for a client). anyExtendedKeyUsage does not count.
func (u usages) checkEKU(c *x509.Certificate, role peerRole) error {
	if !u.hasEKU {
		return nil
	}
	for _, e := range c.ExtKeyUsage {
		switch {
		case role == serverRole && (e == x509.ExtKeyUsageServerAuth ||
			e == x509.ExtKeyUsageMicrosoftServerGatedCrypto ||
			e == x509.ExtKeyUsageNetscapeServerGatedCrypto):
			return nil
		case role == clientRole && e == x509.ExtKeyUsageClientAuth:
			return nil
		}
	}
	need := "serverAuth"
	if role == clientRole {
		need = "clientAuth"
	}
	return fmt.Errorf("has EKU %s, %s needed", ekuString(c), need)
}

var ekuNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:                            "anyExtendedKeyUsage",
	x509.ExtKeyUsageServerAuth:                     "serverAuth",
	x509.ExtKeyUsageClientAuth:                     "clientAuth",
	x509.ExtKeyUsageCodeSigning:                    "codeSigning",
	x509.ExtKeyUsageEmailProtection:                "emailProtection",
	x509.ExtKeyUsageIPSECEndSystem:                 "ipsecEndSystem",
	x509.ExtKeyUsageIPSECTunnel:                    "ipsecTunnel",
	x509.ExtKeyUsageIPSECUser:                      "ipsecUser",
	x509.ExtKeyUsageTimeStamping:                   "timeStamping",
	x509.ExtKeyUsageOCSPSigning:                    "OCSPSigning",
	x509.ExtKeyUsageMicrosoftServerGatedCrypto:     "msSGC",
	x509.ExtKeyUsageNetscapeServerGatedCrypto:      "nsSGC",
	x509.ExtKeyUsageMicrosoftCommercialCodeSigning: "msCodeCom",
	x509.ExtKeyUsageMicrosoftKernelCodeSigning:     "msKernelCodeSigning",
}

// ekuString lists a certificate's EKU the way the openssl CLI names them,
// unknown ones as dotted OIDs: "clientAuth only", "a and b only", "empty".
func ekuString(c *x509.Certificate) string {
	var names []string
	for _, e := range c.ExtKeyUsage {
		if n, ok := ekuNames[e]; ok {
			names = append(names, n)
		} else {
			names = append(names, fmt.Sprintf("#%d", int(e)))
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		names = append(names, oid.String())
	}
	return onlyList(names)
}

var kuNames = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "nonRepudiation"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

func kuString(ku x509.KeyUsage) string {
	var names []string
	for _, k := range kuNames {
		if ku&k.bit != 0 {
			names = append(names, k.name)
		}
	}
	return onlyList(names)
}

func nsString(ns byte) string {
	var names []string
	for _, n := range nsNames {
		if ns&n.bit != 0 {
			names = append(names, n.name)
		}
	}
	return onlyList(names)
}

// onlyList renders names as "a only", "a and b only", "a, b and c only" or
// "empty".
func onlyList(names []string) string {
	switch len(names) {
	case 0:
		return "empty"
	case 1:
		return names[0] + " only"
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1] + " only"
}
