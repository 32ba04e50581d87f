package engine

import (
	"net"
	"syscall"
	"time"
)

// keepAliveInherited: Linux copies a listening socket's keep-alive settings
// into the sockets accept returns (tcp_create_openreq_child arms the timer).
const keepAliveInherited = true

// setKeepAlive applies ka to a socket as net.TCPConn.SetKeepAliveConfig
// does: zero durations and count take Go's defaults (15 s, 15 s, 9),
// negative ones leave the system's value.
func setKeepAlive(fd int, ka net.KeepAliveConfig) error {
	on := 0
	if ka.Enable {
		on = 1
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, on); err != nil || !ka.Enable {
		return err
	}
	// Linux refuses values over its maxima (EINVAL); Go's per-connection
	// setting ignored that error, leaving the system's value. Cap instead.
	set := func(opt, v, def, most int) error {
		switch {
		case v < 0:
			return nil
		case v == 0:
			v = def
		}
		return syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, opt, min(v, most))
	}
	secs := func(d time.Duration) int {
		if d <= 0 {
			return int(d)
		}
		return max(1, int((d+time.Second-1)/time.Second))
	}
	if err := set(syscall.TCP_KEEPIDLE, secs(ka.Idle), 15, 32767); err != nil {
		return err
	}
	if err := set(syscall.TCP_KEEPINTVL, secs(ka.Interval), 15, 32767); err != nil {
		return err
	}
	return set(syscall.TCP_KEEPCNT, ka.Count, 9, 127)
}
