package engine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --- Unit tests of the purpose rules, certificates made in Go ---

// goCert signs tmpl with parent (self-signed when parent is nil) and
// returns the parsed certificate and its key.
func goCert(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c, key
}

func goCA(t *testing.T, mod func(*x509.Certificate)) (*x509.Certificate, *ecdsa.PrivateKey) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "unit CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	if mod != nil {
		mod(tmpl)
	}
	return goCert(t, tmpl, nil, nil)
}

// nsCertType is a Netscape cert type extension with the given first byte.
func nsCertType(t *testing.T, bits byte) []pkix.Extension {
	der, err := asn1.Marshal(asn1.BitString{Bytes: []byte{bits}, BitLength: 8})
	require.NoError(t, err)
	return []pkix.Extension{{Id: oidNetscapeCertType, Value: der}}
}

func TestPurposeLeafRules(t *testing.T) {
	ca, caKey := goCA(t, nil)
	type verdict struct{ server, client string } // "" accepted, else part of the reason
	cases := []struct {
		name string
		mod  func(*x509.Certificate)
		want verdict
	}{
		{"no EKU, no KeyUsage", func(*x509.Certificate) {}, verdict{}},
		{"EKU serverAuth", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} },
			verdict{client: "has EKU serverAuth only, clientAuth needed"}},
		{"EKU clientAuth", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} },
			verdict{server: "has EKU clientAuth only, serverAuth needed"}},
		{"EKU both", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}
		}, verdict{}},
		{"EKU anyExtendedKeyUsage alone", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} },
			verdict{server: "has EKU anyExtendedKeyUsage only, serverAuth needed", client: "anyExtendedKeyUsage only, clientAuth needed"}},
		{"EKU msSGC", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageMicrosoftServerGatedCrypto}
		}, verdict{client: "has EKU msSGC only"}},
		{"EKU nsSGC", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageNetscapeServerGatedCrypto}
		}, verdict{client: "has EKU nsSGC only"}},
		{"EKU unknown OID and codeSigning", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
			c.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{1, 2, 3, 4}}
		}, verdict{server: "has EKU codeSigning and 1.2.3.4 only, serverAuth needed", client: "codeSigning and 1.2.3.4 only"}},
		{"KeyUsage keyCertSign", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCertSign },
			verdict{server: "has KeyUsage keyCertSign only, needs digitalSignature, keyEncipherment or keyAgreement",
				client: "has KeyUsage keyCertSign only, needs digitalSignature or keyAgreement"}},
		{"KeyUsage nonRepudiation and cRLSign", func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageContentCommitment | x509.KeyUsageCRLSign
		}, verdict{server: "nonRepudiation and cRLSign only", client: "nonRepudiation and cRLSign only"}},
		{"KeyUsage digitalSignature", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }, verdict{}},
		{"KeyUsage keyEncipherment", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment },
			verdict{client: "has KeyUsage keyEncipherment only"}},
		{"KeyUsage keyAgreement", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyAgreement }, verdict{}},
		{"Netscape cert type client", func(c *x509.Certificate) { c.ExtraExtensions = nsCertType(t, nsSSLClient) },
			verdict{server: "has Netscape cert type client only, server needed"}},
		{"Netscape cert type server", func(c *x509.Certificate) { c.ExtraExtensions = nsCertType(t, nsSSLServer) },
			verdict{client: "has Netscape cert type server only, client needed"}},
		{"serverAuth but KeyUsage keyCertSign", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			c.KeyUsage = x509.KeyUsageCertSign
		}, verdict{server: "KeyUsage keyCertSign only", client: "EKU serverAuth only"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "leaf"}}
			tc.mod(tmpl)
			leaf, _ := goCert(t, tmpl, ca, caKey)
			for role, want := range map[peerRole]string{serverRole: tc.want.server, clientRole: tc.want.client} {
				err := checkChainPurpose([]*x509.Certificate{leaf, ca}, role)
				if want == "" {
					assert.NoError(t, err, "as %s", role)
					continue
				}
				if assert.Error(t, err, "as %s", role) {
					assert.Contains(t, err.Error(), want, "as %s", role)
					assert.Contains(t, err.Error(), `certificate purpose: `+role.String()+` certificate "CN=leaf"`)
				}
			}
		})
	}
}

// A present but empty EKU or KeyUsage extension allows nothing (OpenSSL
// sets the "present" flag with no usage bits); Go reports both as absent.
func TestPurposeEmptyExtensions(t *testing.T) {
	ca, caKey := goCA(t, nil)
	emptySeq, err := asn1.Marshal([]asn1.ObjectIdentifier{})
	require.NoError(t, err)
	emptyBits, err := asn1.Marshal(asn1.BitString{})
	require.NoError(t, err)
	for name, ext := range map[string]pkix.Extension{
		"EKU":      {Id: oidExtKeyUsage, Value: emptySeq},
		"KeyUsage": {Id: oidKeyUsage, Value: emptyBits},
	} {
		t.Run(name, func(t *testing.T) {
			leaf, _ := goCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "leaf"}, ExtraExtensions: []pkix.Extension{ext}}, ca, caKey)
			for _, role := range []peerRole{serverRole, clientRole} {
				err := checkChainPurpose([]*x509.Certificate{leaf, ca}, role)
				require.Error(t, err, "as %s", role)
				assert.Contains(t, err.Error(), name+" empty")
			}
		})
	}
}

func TestPurposeCARules(t *testing.T) {
	cases := []struct {
		name           string
		mod            func(*x509.Certificate)
		server, client string // "" accepted, else part of the reason
	}{
		{"CA:TRUE, keyCertSign", func(*x509.Certificate) {}, "", ""},
		{"EKU clientAuth", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} },
			`CA certificate "CN=unit CA" in the server's chain has EKU clientAuth only, serverAuth needed`, ""},
		{"EKU serverAuth", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} },
			"", `in the client's chain has EKU serverAuth only, clientAuth needed`},
		{"EKU anyExtendedKeyUsage", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} },
			"anyExtendedKeyUsage only", "anyExtendedKeyUsage only"},
		{"KeyUsage without keyCertSign", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature },
			"has KeyUsage digitalSignature only, keyCertSign needed", "keyCertSign needed"},
		{"CA:FALSE", func(c *x509.Certificate) { c.IsCA = false }, "has basicConstraints CA:FALSE", "CA:FALSE"},
		{"no basicConstraints, keyCertSign", func(c *x509.Certificate) { c.BasicConstraintsValid, c.IsCA = false, false }, "", ""},
		{"no basicConstraints, no KeyUsage", func(c *x509.Certificate) {
			c.BasicConstraintsValid, c.IsCA, c.KeyUsage = false, false, 0
		}, "is no CA", "is no CA"},
		{"no basicConstraints, Netscape sslCA", func(c *x509.Certificate) {
			c.BasicConstraintsValid, c.IsCA, c.KeyUsage = false, false, 0
			c.ExtraExtensions = nsCertType(t, nsSSLCA)
		}, "", ""},
		{"no basicConstraints, Netscape objCA", func(c *x509.Certificate) {
			c.BasicConstraintsValid, c.IsCA, c.KeyUsage = false, false, 0
			c.ExtraExtensions = nsCertType(t, 0x01)
		}, "has Netscape cert type objCA only, sslCA needed", "sslCA needed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ca, caKey := goCA(t, tc.mod)
			leaf, _ := goCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "leaf"}}, ca, caKey)
			for role, want := range map[peerRole]string{serverRole: tc.server, clientRole: tc.client} {
				err := checkChainPurpose([]*x509.Certificate{leaf, ca}, role)
				if want == "" {
					assert.NoError(t, err, "as %s", role)
				} else if assert.Error(t, err, "as %s", role) {
					assert.Contains(t, err.Error(), want, "as %s", role)
				}
			}
		})
	}
}

// One chain that suits the role is enough; otherwise the first chain's
// problem is reported.
func TestPurposeAnyChain(t *testing.T) {
	good, gKey := goCA(t, nil)
	bad, _ := goCA(t, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })
	leaf, _ := goCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "leaf"}}, good, gKey)
	assert.NoError(t, checkChainsPurpose([][]*x509.Certificate{{leaf, bad}, {leaf, good}}, serverRole))
	err := checkChainsPurpose([][]*x509.Certificate{{leaf, bad}, {leaf, bad}}, serverRole)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "EKU clientAuth only")
	assert.Error(t, checkChainsPurpose(nil, serverRole))
}

// --- End to end, certificates made by the openssl CLI, verdicts compared
// with `openssl verify -purpose` ---

// opensslPKI makes certificates with the openssl CLI in a temp directory.
type opensslPKI struct {
	t   *testing.T
	dir string
}

func newOpenSSLPKI(t *testing.T) *opensslPKI {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl CLI not found: these tests compare verdicts with `openssl verify`")
	}
	return &opensslPKI{t: t, dir: t.TempDir()}
}

func (p *opensslPKI) path(name string) string { return filepath.Join(p.dir, name) }

func (p *opensslPKI) run(args ...string) {
	p.t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	require.NoError(p.t, err, "openssl %s\n%s", strings.Join(args, " "), out)
}

// csr makes name.key (P-256) and name.csr with subject /CN=name.
func (p *opensslPKI) csr(name string) {
	p.run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", p.path(name+".key"), "-out", p.path(name+".csr"), "-subj", "/CN="+name)
}

// extArgs writes ext (one extension per line, openssl x509v3 config syntax)
// and returns the -extfile arguments; no ext gives an X.509 v1 certificate.
func (p *opensslPKI) extArgs(name string, ext []string) []string {
	if len(ext) == 0 {
		return nil
	}
	f := p.path(name + ".cnf")
	require.NoError(p.t, os.WriteFile(f, []byte(strings.Join(ext, "\n")+"\n"), 0o600))
	return []string{"-extfile", f}
}

// root makes a self-signed name.pem the way `openssl x509 -req -signkey`
// does.
func (p *opensslPKI) root(name string, ext ...string) {
	p.csr(name)
	p.run(append([]string{"x509", "-req", "-in", p.path(name + ".csr"), "-signkey", p.path(name + ".key"),
		"-out", p.path(name + ".pem"), "-days", "2"}, p.extArgs(name, ext)...)...)
}

// v2Root makes a CA like v2 users do: `openssl req -x509` (v3, CA:TRUE).
func (p *opensslPKI) v2Root(name string) {
	p.run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", p.path(name+".key"), "-out", p.path(name+".pem"), "-days", "2", "-subj", "/CN="+name)
}

// leaf makes name.pem signed by ca.
func (p *opensslPKI) leaf(name, ca string, ext ...string) {
	p.csr(name)
	p.run(append([]string{"x509", "-req", "-in", p.path(name + ".csr"), "-CA", p.path(ca + ".pem"),
		"-CAkey", p.path(ca + ".key"), "-CAcreateserial", "-out", p.path(name + ".pem"), "-days", "2"},
		p.extArgs(name, ext)...)...)
}

func (p *opensslPKI) files(ca, name string) TLSFiles {
	return TLSFiles{CA: p.path(ca + ".pem"), Cert: p.path(name + ".pem"), Key: p.path(name + ".key")}
}

// opensslAccepts is `openssl verify -purpose purpose` of name against ca,
// with extra options (e.g. -verify_ip).
func (p *opensslPKI) opensslAccepts(purpose, ca, name string, extra ...string) bool {
	p.t.Helper()
	args := append([]string{"verify", "-purpose", purpose, "-CAfile", p.path(ca + ".pem")}, extra...)
	err := exec.Command("openssl", append(args, p.path(name+".pem"))...).Run()
	if _, refused := err.(*exec.ExitError); err != nil && !refused {
		require.NoError(p.t, err)
	}
	return err == nil
}

const sanLoopback = "subjectAltName=IP:127.0.0.1"

// purposeCase is a certificate made by openssl (name, signed by ca, with
// the extensions ext) and whether the peer must accept it.
type purposeCase struct {
	name, ca string
	ext      []string
	accept   bool
}

func TestPurposeServerCertificatesFromOpenSSL(t *testing.T) {
	p := newOpenSSLPKI(t)
	p.v2Root("ca")
	p.root("v1root") // X.509 v1 self-signed, as `openssl x509 -req -signkey` makes it
	p.root("cliroot", "basicConstraints=critical,CA:TRUE", "extendedKeyUsage=clientAuth")
	cases := []purposeCase{
		{"v1", "ca", nil, true}, // v2 users' certificates: no extension at all
		{"v1-under-v1-root", "v1root", nil, true},
		{"no-eku", "ca", []string{sanLoopback}, true},
		{"serverauth", "ca", []string{sanLoopback, "extendedKeyUsage=serverAuth", "keyUsage=digitalSignature"}, true},
		{"clientauth", "ca", []string{sanLoopback, "extendedKeyUsage=clientAuth"}, false},
		{"anyeku", "ca", []string{sanLoopback, "extendedKeyUsage=anyExtendedKeyUsage"}, false},
		{"mssgc", "ca", []string{sanLoopback, "extendedKeyUsage=msSGC"}, true},
		{"ku-certsign", "ca", []string{sanLoopback, "keyUsage=keyCertSign"}, false},
		{"ku-keyencipherment", "ca", []string{sanLoopback, "keyUsage=keyEncipherment"}, true},
		{"ns-client", "ca", []string{sanLoopback, "nsCertType=client"}, false},
		{"under-clientauth-ca", "cliroot", []string{sanLoopback, "extendedKeyUsage=serverAuth"}, false},
	}
	for _, c := range cases {
		p.leaf(c.name, c.ca, c.ext...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.accept, p.opensslAccepts("sslserver", c.ca, c.name), "openssl's verdict")
			s, _ := echoServer(t, Continuous{}, testOptions())
			port := startTLS(t, s, TLSFiles{Cert: p.path(c.name + ".pem"), Key: p.path(c.name + ".key")})

			modes := map[string]VerifyMode{"VerifyCA": VerifyCA}
			if len(c.ext) > 0 { // v1 certificates have no subjectAltName
				modes["VerifyFull"] = VerifyFull
				require.Equal(t, c.accept, p.opensslAccepts("sslserver", c.ca, c.name, "-verify_ip", "127.0.0.1"))
			}
			for mode, vm := range modes {
				o := testOptions()
				o.BindAddress = ""
				o.VerifyMode = vm
				cl := NewClient(Continuous{}, o, nil)
				t.Cleanup(cl.Stop)
				err := cl.StartTLS("127.0.0.1", port, TLSFiles{CA: p.path(c.ca + ".pem")})
				if c.accept {
					assert.NoError(t, err, mode)
				} else {
					requireCode(t, StartConnectInit, err, mode)
					assert.Contains(t, err.Error(), "certificate purpose: ", mode)
				}
				cl.Stop()
			}
		})
	}
}

func TestPurposeClientCertificatesFromOpenSSL(t *testing.T) {
	p := newOpenSSLPKI(t)
	p.v2Root("ca")
	p.leaf("server", "ca", sanLoopback, "extendedKeyUsage=serverAuth")
	p.root("srvroot", "basicConstraints=critical,CA:TRUE", "extendedKeyUsage=serverAuth")
	// The server trusts both roots.
	bundle, err := os.ReadFile(p.path("ca.pem"))
	require.NoError(t, err)
	more, err := os.ReadFile(p.path("srvroot.pem"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p.path("bundle.pem"), append(bundle, more...), 0o600))
	cases := []purposeCase{
		{"v1", "ca", nil, true},
		{"clientauth", "ca", []string{"extendedKeyUsage=clientAuth"}, true},
		{"serverauth", "ca", []string{"extendedKeyUsage=serverAuth"}, false},
		{"anyeku", "ca", []string{"extendedKeyUsage=anyExtendedKeyUsage"}, false},
		{"ku-certsign", "ca", []string{"keyUsage=keyCertSign"}, false},
		{"ku-keyagreement", "ca", []string{"keyUsage=keyAgreement"}, true},
		{"ns-server", "ca", []string{"nsCertType=server"}, false},
		{"under-serverauth-ca", "srvroot", []string{"extendedKeyUsage=clientAuth"}, false},
	}
	for _, c := range cases {
		p.leaf(c.name, c.ca, c.ext...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.accept, p.opensslAccepts("sslclient", c.ca, c.name), "openssl's verdict")
			s, rs := echoServer(t, Continuous{}, testOptions())
			port := startTLS(t, s, TLSFiles{CA: p.path("bundle.pem"), Cert: p.path("server.pem"), Key: p.path("server.key")})
			cl := newClient(t, Continuous{}, nil)
			files := p.files("ca", c.name)
			err := cl.StartTLS("127.0.0.1", port, files)
			if c.accept {
				require.NoError(t, err)
				rs.waitEstablished(t, 1)
				assert.Empty(t, rs.errorsOf(0))
				return
			}
			// TLS 1.3: the client may finish its side before the server
			// refuses its certificate.
			if err != nil {
				requireCode(t, StartConnectInit, err)
			}
			rs.waitFor(t, func() bool { return len(rs.errorsOf(0)) > 0 }, "handshake error")
			e := rs.errorsOf(0)[0]
			assert.Equal(t, ErrHandshake, e.code, e.text)
			// Go's own client check refuses a chain without clientAuth
			// first, in its words; the rest is ours.
			assert.Regexp(t, "certificate purpose: |incompatible key usage", e.text)
			assert.Empty(t, rs.established())
			assert.Empty(t, s.ClientIDs())
		})
	}
}

// The certificates of GenerateTestCerts (tcp_generate_certs) suit their
// roles, and client.pem cannot act as a server: the case of issue 8.
func TestPurposeGeneratedCerts(t *testing.T) {
	pk := newPKI(t, "")
	if _, err := exec.LookPath("openssl"); err == nil {
		verify := func(purpose, name string) bool {
			return exec.Command("openssl", "verify", "-purpose", purpose, "-CAfile", pk.server.CA, name).Run() == nil
		}
		assert.True(t, verify("sslserver", pk.server.Cert))
		assert.True(t, verify("sslclient", pk.client.Cert))
		assert.False(t, verify("sslserver", pk.client.Cert))
		assert.False(t, verify("sslclient", pk.server.Cert))
	}

	// client.pem has no subjectAltName, so only VerifyCA gets as far as
	// the purpose (VerifyFull: see the openssl tests above).
	s, _ := echoServer(t, Continuous{}, testOptions())
	port := startTLS(t, s, TLSFiles{Cert: pk.client.Cert, Key: pk.client.Key})
	o := testOptions()
	o.BindAddress = ""
	o.VerifyMode = VerifyCA
	cl := NewClient(Continuous{}, o, nil)
	t.Cleanup(cl.Stop)
	err := cl.StartTLS("127.0.0.1", port, TLSFiles{CA: pk.client.CA})
	requireCode(t, StartConnectInit, err)
	assert.Contains(t, err.Error(), `certificate purpose: server certificate "CN=tcpgo client,OU=test,O=tcpgo" has EKU clientAuth only, serverAuth needed`)

	// Mutual TLS with server.pem as the client's certificate.
	s2, rs2 := echoServer(t, Continuous{}, testOptions())
	port = startTLS(t, s2, pk.server)
	mtls := newClient(t, Continuous{}, nil)
	_ = mtls.StartTLS("127.0.0.1", port, TLSFiles{CA: pk.client.CA, Cert: pk.server.Cert, Key: pk.server.Key})
	rs2.waitFor(t, func() bool { return len(rs2.errorsOf(0)) > 0 }, "handshake error")
	assert.Equal(t, ErrHandshake, rs2.errorsOf(0)[0].code)
	assert.Empty(t, rs2.established())
}
