package engine

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

// PROXY protocol (HAProxy's v1 text and v2 binary headers) in front of a
// server: the header is read byte-exact (nothing of the client's own data is
// consumed), parsed by github.com/pires/go-proxyproto, and its source
// address becomes the client's address for the lists, the accept callback
// and every look-up.

// ProxyInfo is what a connection's PROXY header said.
type ProxyInfo struct {
	Version byte
	Local   bool // a LOCAL command (the proxy's health check): no client address
	TLVs    []proxyproto.TLV
	// SSL: the proxy terminated TLS (PP2_TYPE_SSL); Verified when it
	// verified a client certificate, CN that certificate's common name.
	SSL      bool
	Verified bool
	CN       string
}

// TLV returns the value of the first TLV of type typ.
func (p *ProxyInfo) TLV(typ int) ([]byte, bool) {
	if p == nil {
		return nil, false
	}
	for _, t := range p.TLVs {
		if int(t.Type) == typ {
			return t.Value, true
		}
	}
	return nil, false
}

var (
	v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")
	v1Prefix    = []byte("PROXY ")
)

const maxV1Header = 107 // the specification's bound, CRLF included

func init() { readProxyHeader = proxyHandshake }

// proxyHandshake applies Options.ProxyMode to a new connection.
func proxyHandshake(c *conn, o *Options) *Error {
	src, _ := netip.ParseAddr(c.remoteIP)
	trusted := matchAny(o.ProxyTrusted, src)
	if !trusted {
		if o.ProxyMode == ProxyRequired {
			return newError(ErrProxy, nil, "%s: not a trusted proxy", c.peer())
		}
		if startsWithProxyHeader(c) {
			return newError(ErrProxy, nil, "%s: PROXY header from an address not trusted", c.peer())
		}
		return nil
	}
	if o.ConnectTimeout > 0 {
		c.raw.SetReadDeadline(time.Now().Add(o.ConnectTimeout))
		defer c.raw.SetReadDeadline(time.Time{})
	}
	raw, err := readHeaderBytes(c.raw)
	if err != nil {
		if isTimeout(err) {
			return newError(ErrProxy, err, "%s: PROXY header not received in time", c.peer())
		}
		return newError(ErrProxy, err, "%s: PROXY header", c.peer())
	}
	h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return newError(ErrProxy, err, "%s: malformed PROXY header", c.peer())
	}
	info := &ProxyInfo{Version: h.Version, Local: h.Command.IsLocal()}
	if info.TLVs, err = h.TLVs(); err != nil {
		return newError(ErrProxy, err, "%s: malformed PROXY TLVs", c.peer())
	}
	if ssl, ok := tlvparse.FindSSL(info.TLVs); ok {
		info.SSL = ssl.ClientSSL()
		info.Verified = ssl.ClientCertConn() && ssl.Verified()
		info.CN, _ = ssl.ClientCN()
	}
	if src, ok := h.SourceAddr.(*net.TCPAddr); ok && !info.Local {
		c.remoteIP = src.AddrPort().Addr().Unmap().String()
		c.remotePort = src.Port
	}
	c.proxy = info
	return nil
}

// readHeaderBytes reads exactly one PROXY header, v1 or v2.
func readHeaderBytes(r io.Reader) ([]byte, error) {
	head := make([]byte, 8)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	switch {
	case bytes.Equal(head, v2Signature[:8]):
		rest := make([]byte, 8) // signature's end, version/command, family, length
		if _, err := io.ReadFull(r, rest); err != nil {
			return nil, err
		}
		n := int(rest[6])<<8 | int(rest[7])
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		return append(append(head, rest...), body...), nil
	case bytes.HasPrefix(head, v1Prefix):
		line := head
		b := make([]byte, 1)
		for !bytes.HasSuffix(line, []byte("\r\n")) {
			if len(line) >= maxV1Header {
				return nil, newError(ErrProxy, nil, "v1 header longer than %d bytes", maxV1Header)
			}
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, err
			}
			line = append(line, b[0])
		}
		return line, nil
	}
	return nil, newError(ErrProxy, nil, "no PROXY header (connection starts with %q)", head)
}

// startsWithProxyHeader peeks, without waiting, at what a connection from an
// untrusted address already sent.
func startsWithProxyHeader(c *conn) bool {
	if c.rc == nil {
		return false
	}
	buf := make([]byte, 8)
	n := 0
	c.rc.Read(func(fd uintptr) bool {
		n, _, _ = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	if n <= 0 {
		return false
	}
	return bytes.HasPrefix(buf[:n], v1Prefix[:min(n, len(v1Prefix))]) && n >= len(v1Prefix) ||
		bytes.Equal(buf[:n], v2Signature[:n]) && n >= 4
}

// WriteProxyHeader sends a PROXY header (version 1 or 2) for the given
// addresses, as a client behind a chain that expects one does.
func WriteProxyHeader(w io.Writer, version byte, src, dst *net.TCPAddr) error {
	h := proxyproto.HeaderProxyFromAddrs(version, src, dst)
	_, err := h.WriteTo(w)
	return err
}
