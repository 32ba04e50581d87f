package engine

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func proxyServer(t *testing.T, mode ProxyMode, trusted string) (*Server, *extRec, int) {
	t.Helper()
	o := testOptions()
	o.ProxyMode = mode
	list, err := ParseAddrList(trusted)
	require.NoError(t, err)
	o.ProxyTrusted = list
	o.ConnectTimeout = 300 * time.Millisecond
	s, r := extEchoServer(t, NewDelimited('\n', 1024), o)
	return s, r, startServer(t, s)
}

func TestProxyV1SetsClientAddress(t *testing.T) {
	s, r, port := proxyServer(t, ProxyTrusted, "127.0.0.0/8")
	c := dial(t, port)
	_, err := c.Write([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\nhello\n"))
	require.NoError(t, err)
	id := r.waitEstablished(t, 1)[0]
	ip, p, err := s.ClientAddr(id)
	require.NoError(t, err)
	assert.Equal(t, "203.0.113.7", ip)
	assert.Equal(t, 40000, p)
	r.waitFor(t, func() bool { return len(r.messages(id)) == 1 }, "first message after the header")
	assert.Equal(t, "hello", string(r.messages(id)[0]))
}

func TestProxyV2TLVsAndSubject(t *testing.T) {
	s, r, port := proxyServer(t, ProxyRequired, "127.0.0.1")
	src := &net.TCPAddr{IP: net.ParseIP("2001:db8::5"), Port: 5555}
	dst := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}
	h := proxyproto.HeaderProxyFromAddrs(2, src, dst)
	ssl, err := tlvparse.PP2SSL{
		Client: tlvparse.PP2_BITFIELD_CLIENT_SSL | tlvparse.PP2_BITFIELD_CLIENT_CERT_CONN,
		Verify: 0,
		TLV: []proxyproto.TLV{
			{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte("TLSv1.3")},
			{Type: proxyproto.PP2_SUBTYPE_SSL_CN, Value: []byte("alice")},
		},
	}.Marshal()
	require.NoError(t, err)
	require.NoError(t, h.SetTLVs([]proxyproto.TLV{ssl, {Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.org")}}))
	c := dial(t, port)
	_, err = h.WriteTo(c)
	require.NoError(t, err)
	id := r.waitEstablished(t, 1)[0]
	ip, p, err := s.ClientAddr(id)
	require.NoError(t, err)
	assert.Equal(t, "2001:db8::5", ip)
	assert.Equal(t, 5555, p)
	cn, err := s.SubjectPart(id, NIDCommonName)
	require.NoError(t, err)
	assert.Equal(t, "alice", cn)
	v, err := s.ProxyTLV(id, int(proxyproto.PP2_TYPE_AUTHORITY))
	require.NoError(t, err)
	assert.Equal(t, "example.org", string(v))
	_, err = s.ProxyTLV(id, 0x7f)
	requireCode(t, ErrNoField, err)
}

func TestProxyRefusals(t *testing.T) {
	cases := []struct {
		name, trusted string
		mode          ProxyMode
		send          string
	}{
		{"untrusted source, header required", "10.0.0.0/8", ProxyRequired, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"},
		{"malformed v1", "127.0.0.1", ProxyTrusted, "PROXY TCP9 nonsense\r\n"},
		{"missing header", "127.0.0.1", ProxyTrusted, "GET / HTTP/1.0\r\n\r\n"},
		{"truncated then silent", "127.0.0.1", ProxyTrusted, "PROXY TCP4 1.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, r, _ := proxyServer(t, tc.mode, tc.trusted)
			if c, err := net.Dial("tcp", s.ln.Addr().String()); err == nil { // refusals may reset the dial
				defer c.Close()
				c.Write([]byte(tc.send))
			}
			r.waitFor(t, func() bool { return len(r.errorsOf(0)) == 1 }, "refusal reported")
			assert.Equal(t, ErrProxy, r.errorsOf(0)[0].code, r.errorsOf(0)[0].text)
			assert.Empty(t, r.established())
			assert.Equal(t, uint64(1), s.Stats().HandshakeFailed)
		})
	}
}

func TestProxyUntrustedDirectClientServed(t *testing.T) {
	s, r, port := proxyServer(t, ProxyTrusted, "10.0.0.0/8")
	dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	ip, _, err := s.ClientAddr(id)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", ip)
}

func TestClientSendsProxyHeader(t *testing.T) {
	s, r, port := proxyServer(t, ProxyRequired, "127.0.0.1")
	for _, version := range []byte{1, 2} {
		cl := newClient(t, NewDelimited('\n', 1024), nil)
		o := cl.Options()
		o.ProxyHeader = &ProxyHeader{Version: version,
			Src: netip.MustParseAddrPort("198.51.100.9:1234"), Dst: netip.MustParseAddrPort("127.0.0.1:80")}
		require.NoError(t, cl.SetOptions(o))
		require.NoError(t, cl.Start("127.0.0.1", port))
		ids := r.waitEstablished(t, int(version))
		ip, p, err := s.ClientAddr(ids[len(ids)-1])
		require.NoError(t, err)
		assert.Equal(t, "198.51.100.9", ip, "version %d", version)
		assert.Equal(t, 1234, p)
		cl.Stop()
	}
}
