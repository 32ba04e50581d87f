package engine

import (
	"net/netip"
	"strings"
	"sync/atomic"
)

// AcceptFunc decides whether to accept a connection from ip:port on the
// server's localPort, before any TLS handshake.
type AcceptFunc func(ip string, port, localPort int) bool

// ParseAddrList parses comma- or space-separated IP addresses and CIDR
// ranges, IPv4 and IPv6. An empty string is the empty list.
func ParseAddrList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		p, err := parsePrefix(f)
		if err != nil {
			return nil, newError(ErrInvalidArg, nil, "%q is not an IP address or CIDR range", f)
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), unmapBits(p)).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapBits converts the length of a ::ffff:a.b.c.d/n range to IPv4's.
func unmapBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(0, p.Bits()-96)
	}
	return p.Bits()
}

func matchAny(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrLists are the allowed and blocked lists, replaced whole so that the
// accept path reads them without a lock.
type addrLists struct {
	allowed, blocked atomic.Pointer[[]netip.Prefix]
}

// admits reports whether ip passes the lists.
func (l *addrLists) admits(ip netip.Addr) bool {
	ip = ip.Unmap()
	if b := l.blocked.Load(); b != nil && matchAny(*b, ip) {
		return false
	}
	if a := l.allowed.Load(); a != nil && len(*a) > 0 && !matchAny(*a, ip) {
		return false
	}
	return true
}
