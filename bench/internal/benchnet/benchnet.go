// Package benchnet holds what tcpgo's benchmark clients share: dialing from
// a range of loopback source addresses, and raising the descriptor limit.
package benchnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h; not in
// package syscall for amd64): bind() takes the address only and the port is
// chosen at connect(), per destination, so a source address is not limited
// to one connection per port across all destinations.
const ipBindAddressNoPort = 0x18

// ParseRange parses "A" or "A-B" (IPv4, same /24 not required) into the list
// of addresses from A to B inclusive. "" gives nil.
func ParseRange(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	lo, hi, found := strings.Cut(s, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil || !first.Is4() {
		return nil, fmt.Errorf("bad source address %q", lo)
	}
	last := first
	if found {
		if last, err = netip.ParseAddr(hi); err != nil || !last.Is4() || last.Less(first) {
			return nil, fmt.Errorf("bad source range %q", s)
		}
	}
	var out []netip.Addr
	for a := first; ; a = a.Next() {
		out = append(out, a)
		if a == last || len(out) > 1<<16 {
			break
		}
	}
	return out, nil
}

// Dialer dials TCP connections, taking the source addresses of its list in
// turn (none: the system's choice).
type Dialer struct {
	Timeout time.Duration
	sources []netip.Addr
	next    atomic.Uint64
}

// NewDialer returns a dialer over the given source addresses.
func NewDialer(timeout time.Duration, sources []netip.Addr) *Dialer {
	return &Dialer{Timeout: timeout, sources: sources}
}

// Dial connects to addr ("host:port") and sets TCP_NODELAY.
func (d *Dialer) Dial(addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.Timeout}
	if len(d.sources) > 0 {
		src := d.sources[int(d.next.Add(1)-1)%len(d.sources)]
		nd.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		nd.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	c, err := nd.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return c, nil
}

// RaiseFdLimit sets the soft RLIMIT_NOFILE to the hard limit and returns the
// new soft limit. (The Go runtime does this too at start; doing it here
// keeps it explicit and independent of the Go version.)
func RaiseFdLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}
