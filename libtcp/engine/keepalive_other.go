//go:build !linux

package engine

import "net"

// keepAliveInherited: elsewhere each accepted connection gets its keep-alive
// settings itself (net.ListenConfig.KeepAliveConfig).
const keepAliveInherited = false

func setKeepAlive(int, net.KeepAliveConfig) error { return nil }
