package engine

import "time"

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

// Options configure a server or client. The zero value is not the default:
// start from DefaultOptions.
type Options struct {
	TLSMinVersion      uint16        // 0 = TLS 1.3
	ClientCertOptional bool          // server with CA: verify a client cert only if sent
	VerifyMode         VerifyMode    // client
	ConnectTimeout     time.Duration // client connect+handshake, server handshake; 0 = none
	NoDelay            bool          // TCP_NODELAY
	SendQueueLimit     int           // bytes queued per connection; 0 = no limit
	ReusePort          bool          // SO_REUSEPORT on the listener
	BindAddress        string        // server: "" = all interfaces
	Linger             time.Duration // stop/close first wait this long for queued data to be written
}

// DefaultOptions returns the defaults documented in include/tcpgo.h.
func DefaultOptions() Options {
	return Options{
		ConnectTimeout: 10 * time.Second,
		NoDelay:        true,
		SendQueueLimit: 64 << 20,
		Linger:         time.Second,
	}
}
