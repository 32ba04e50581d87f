package engine

import (
	"net/netip"
	"time"
)

// VerifyMode selects how a TLS client checks the server's certificate.
type VerifyMode int

const (
	// VerifyFull checks the chain against the CA and the host name or IP
	// against the certificate's subjectAltName.
	VerifyFull VerifyMode = 0
	// VerifyCA checks only that the certificate chains to the given CA, and
	// sends no SNI (TCP_ServerClient v2's behaviour).
	VerifyCA VerifyMode = 1
)

// ProxyMode says whether a server expects PROXY protocol headers.
type ProxyMode int

const (
	ProxyOff      ProxyMode = 0 // no PROXY protocol
	ProxyTrusted  ProxyMode = 1 // trusted sources must send one, others must not
	ProxyRequired ProxyMode = 2 // every connection: trusted source with a header
)

// Options configure a server or client. The zero value is not the default:
// start from DefaultOptions. Durations of 0 mean "none".
type Options struct {
	TLSMinVersion      uint16        // 0 = TLS 1.3
	ClientCertOptional bool          // server with CA: verify a client cert only if sent
	VerifyMode         VerifyMode    // client
	ConnectTimeout     time.Duration // client connect+handshake, server handshake (+PROXY header)
	NoDelay            bool          // TCP_NODELAY
	SendQueueLimit     int           // bytes queued per connection; 0 = no limit
	ReusePort          bool          // SO_REUSEPORT on the listener
	BindAddress        string        // server: listen address; client: local address
	Linger             time.Duration // stop/close first wait this long for queued data to be written

	MaxConnections    int           // server: connections at once (incl. handshakes); 0 = no limit
	IdleTimeout       time.Duration // close after this long without a byte received
	MessageTimeout    time.Duration // a started message must end within this
	WriteTimeout      time.Duration // queued data must make progress within this
	KeepAlive         bool          // TCP keep-alive probes
	KeepAliveIdle     time.Duration
	KeepAliveInterval time.Duration
	KeepAliveCount    int
	Backlog           int   // listen backlog; 0 = system maximum
	IPv6Only          bool  // IPV6_V6ONLY on an IPv6 listener
	MemoryBudget      int64 // server-wide bytes; 0 = none
	SendLowWater      int   // Ready fires when a refused queue drains to this
	CloseOnEOF        bool  // a peer's EOF closes at once, discarding the queue
	Reconnect         bool  // client: reconnect after a lost connection
	ReconnectMin      time.Duration
	ReconnectMax      time.Duration
	ProxyMode         ProxyMode
	ProxyTrusted      []netip.Prefix
	ProxyHeader       *ProxyHeader // client: a PROXY header to send first
	TLS               TLSOptions   // versions, suites, ALPN, SNI, key log, resumption (tlsoptions.go)
}

// ProxyHeader is what a client sends first when its chain expects a PROXY
// header: Version 1 or 2, the addresses to announce.
type ProxyHeader struct {
	Version  byte
	Src, Dst netip.AddrPort
}

// Defaults of the options, documented in include/tcpgo.h.
const (
	DefaultSendQueueLimit = 4 << 20
	DefaultMemoryBudget   = 64 << 20
	DefaultMaxConnections = 10000
	DefaultSendLowWater   = 64 << 10
)

// DefaultOptions returns the defaults documented in include/tcpgo.h.
func DefaultOptions() Options {
	return Options{
		ConnectTimeout:    10 * time.Second,
		NoDelay:           true,
		SendQueueLimit:    DefaultSendQueueLimit,
		Linger:            time.Second,
		MaxConnections:    DefaultMaxConnections,
		KeepAlive:         true,
		KeepAliveIdle:     15 * time.Second,
		KeepAliveInterval: 15 * time.Second,
		KeepAliveCount:    9,
		MemoryBudget:      DefaultMemoryBudget,
		SendLowWater:      DefaultSendLowWater,
		ReconnectMin:      100 * time.Millisecond,
		ReconnectMax:      30 * time.Second,
	}
}
