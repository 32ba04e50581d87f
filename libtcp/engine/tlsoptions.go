package engine

import (
	"crypto/tls"
	"os"
	"strings"
)

// TLSOptions are the TLS settings beyond Options.TLSMinVersion
// (Options.TLS). The zero value is the default.
type TLSOptions struct {
	MaxVersion   uint16   // highest version; 0 = TLS 1.3
	CipherSuites []uint16 // TLS 1.2 suites in preference order; nil = Go's defaults
	ALPN         []string // protocols offered (client) / accepted (server), preferred first
	// ServerName (client) is the name the server's certificate must match
	// (TCP_VERIFY_FULL) and that is sent as SNI; "" = the host dialled.
	ServerName string
	// SystemCAs (client): trust the system's CAs besides the given CA.
	SystemCAs bool
	// KeyLogFile: append every handshake's secrets to this file in the NSS
	// key log format (for Wireshark); "" = none.
	KeyLogFile string
	// NoResumption: a client keeps no session cache, a server issues no
	// session tickets.
	NoResumption bool
}

// ParseCipherSuites turns comma-separated cipher suite names (Go's and
// IANA's, e.g. "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256") into ids; ""
// gives nil (the defaults). TLS 1.3 suites cannot be chosen (Go always
// enables all three) and are refused, as are unknown names.
func ParseCipherSuites(list string) ([]uint16, error) {
	byName := map[string]*tls.CipherSuite{}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		byName[cs.Name] = cs
	}
	var ids []uint16
	for _, name := range splitList(list) {
		cs, ok := byName[name]
		switch {
		case !ok:
			return nil, newError(ErrInvalidArg, nil, "unknown cipher suite %q", name)
		case len(cs.SupportedVersions) == 1 && cs.SupportedVersions[0] == tls.VersionTLS13:
			return nil, newError(ErrInvalidArg, nil, "%s is a TLS 1.3 suite: TLS 1.3 suites are always enabled and cannot be chosen", name)
		}
		ids = append(ids, cs.ID)
	}
	return ids, nil
}

// ParseALPN turns comma-separated protocol names ("h2,http/1.1") into a
// list; "" gives nil (no ALPN).
func ParseALPN(list string) ([]string, error) {
	protos := splitList(list)
	for _, p := range protos {
		if len(p) > 255 {
			return nil, newError(ErrInvalidArg, nil, "ALPN protocol of %d bytes (at most 255)", len(p))
		}
	}
	return protos, nil
}

func splitList(list string) []string {
	var out []string
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// versionRange checks and returns the configured versions.
func versionRange(o Options) (lo, hi uint16, err error) {
	lo, hi = minVersion(o.TLSMinVersion), o.TLS.MaxVersion
	if hi == 0 {
		hi = tls.VersionTLS13
	}
	if lo > hi {
		return 0, 0, newError(StartSetContext, nil, "minimum TLS version %s is above the maximum %s", tls.VersionName(lo), tls.VersionName(hi))
	}
	return lo, hi, nil
}

// applyTLSOptions sets what servers and clients share.
func applyTLSOptions(cfg *tls.Config, o Options) error {
	lo, hi, err := versionRange(o)
	if err != nil {
		return err
	}
	cfg.MinVersion, cfg.MaxVersion = lo, hi
	cfg.CipherSuites = o.TLS.CipherSuites
	cfg.NextProtos = o.TLS.ALPN
	if o.TLS.KeyLogFile != "" {
		w, err := openKeyLog(o.TLS.KeyLogFile)
		if err != nil {
			return err
		}
		cfg.KeyLogWriter = w
	}
	return nil
}

// keyLog appends each line Go writes (one per secret) to the file, opening
// it per line: key logging is for debugging, and so no descriptor stays
// open after the server or client is gone.
type keyLog struct{ path string }

func openKeyLog(path string) (keyLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return keyLog{}, newError(StartSetContext, err, "key log file")
	}
	f.Close()
	return keyLog{path: path}, nil
}

func (k keyLog) Write(p []byte) (int, error) {
	f, err := os.OpenFile(k.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := f.Write(p)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// TLSVersionName is "TLS 1.2", "TLS 1.3"...
func TLSVersionName(v uint16) string {
	if v == 0 {
		return ""
	}
	return tls.VersionName(v)
}

// CipherSuiteName is the IANA name of a suite, or "0x...." when unknown.
func CipherSuiteName(id uint16) string {
	return tls.CipherSuiteName(id)
}
