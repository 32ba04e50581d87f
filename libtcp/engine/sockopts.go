package engine

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
)

// listen opens the listening socket, mapping the failing system call to the
// v2 start code: socket 40, setsockopt 41, bind 42, listen 43.
func listen(o Options, port int) (net.Listener, error) {
	// Keep-alive is set once on the listening socket: Linux copies it (and
	// TCP_NODELAY, which Go sets on every accepted connection anyway) into
	// each accepted socket, which saves four system calls per connection.
	lc := net.ListenConfig{
		Control: func(network, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				if keepAliveInherited {
					serr = setKeepAlive(int(fd), keepAliveConfig(&o))
				}
				if serr == nil && o.ReusePort {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
				}
				if serr == nil && network == "tcp6" {
					v := 0
					if o.IPv6Only {
						v = 1
					}
					serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, v)
				}
			})
			if err != nil {
				return err
			}
			if serr != nil {
				return os.NewSyscallError("setsockopt", serr)
			}
			return nil
		},
	}
	if keepAliveInherited {
		lc.KeepAlive = -1 // not again per accepted connection (net.newTCPConn)
	} else {
		lc.KeepAliveConfig = keepAliveConfig(&o)
	}
	network := "tcp"
	if o.IPv6Only {
		network = "tcp6"
	}
	addr := net.JoinHostPort(o.BindAddress, strconv.Itoa(port))
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, newError(listenCode(err), err, "listen on %s", addr)
	}
	if o.Backlog > 0 {
		if err := setBacklog(ln, o.Backlog); err != nil {
			ln.Close()
			return nil, newError(StartListen, err, "listen backlog %d on %s", o.Backlog, addr)
		}
	}
	return ln, nil
}

// setBacklog calls listen(2) again, which on Linux changes the backlog of a
// listening socket.
func setBacklog(ln net.Listener, backlog int) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), backlog) }); err != nil {
		return err
	}
	return os.NewSyscallError("listen", lerr)
}

func listenCode(err error) Code {
	var se *os.SyscallError
	if errors.As(err, &se) {
		switch se.Syscall {
		case "socket":
			return StartCreateSocket
		case "setsockopt":
			return StartSetSocketOpt
		case "bind":
			return StartBindPort
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) {
		return StartBindPort
	}
	return StartListen
}

func keepAliveConfig(o *Options) net.KeepAliveConfig {
	if !o.KeepAlive {
		return net.KeepAliveConfig{Enable: false}
	}
	return net.KeepAliveConfig{
		Enable:   true,
		Idle:     o.KeepAliveIdle,
		Interval: o.KeepAliveInterval,
		Count:    o.KeepAliveCount,
	}
}

// applySocketOptions sets what each connection needs. An accepted
// connection has the listening socket's keep-alive and Go's TCP_NODELAY
// already (listen); a dialled one gets both here.
func applySocketOptions(nc net.Conn, o *Options, accepted bool) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	if !accepted || !o.NoDelay {
		tc.SetNoDelay(o.NoDelay)
	}
	switch {
	case !keepAliveInherited:
		tc.SetKeepAliveConfig(keepAliveConfig(o))
	case !accepted:
		if rc, err := tc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { setKeepAlive(int(fd), keepAliveConfig(o)) })
		}
	}
}
