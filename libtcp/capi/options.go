package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// Option ids of enum tcp_option in include/tcpgo.h.
const (
	optTLSMinVersion      = 1
	optRequireClientCert  = 2
	optVerifyMode         = 3
	optConnectTimeoutMS   = 4
	optNoDelay            = 5
	optSendQueueLimit     = 6
	optEventQueue         = 7
	optEventQueueLimit    = 8
	optReusePort          = 9
	optLingerMS           = 10
	optMaxConnections     = 11
	optIdleTimeoutMS      = 12
	optMessageTimeoutMS   = 13
	optWriteTimeoutMS     = 14
	optKeepAlive          = 15
	optKeepAliveIdleMS    = 16
	optKeepAliveIntervalM = 17
	optKeepAliveCount     = 18
	optBacklog            = 19
	optIPv6Only           = 20
	optMemoryBudget       = 21
	optSendLowWater       = 22
	optCallbackThreads    = 23
	optReconnect          = 24
	optReconnectMinMS     = 25
	optReconnectMaxMS     = 26
	optCloseOnEOF         = 27
	optProxyProtocol      = 28
	optTLSMaxVersion      = 29
	optTLSResumption      = 30
	optTLSSystemCAs       = 31
	optBindAddress        = 100
	optProxyTrusted       = 101
	optTLSCipherSuites    = 102
	optTLSALPN            = 103
	optTLSServerName      = 104
	optTLSKeyLogFile      = 105
)

// Ranges of values: anything outside is a bug in the caller (a negative
// number cast, a unit mix-up), reported as TCP_ERR_INVALID_ARG rather than
// silently wrapped.
const (
	maxMS    = math.MaxInt32 // ~24.8 days
	maxBytes = 1 << 40
	maxCount = 1 << 24
)

// handleSettings are the options the cgo layer keeps itself: whether events
// go to callbacks or to the poll queue, and how many callbacks may run.
type handleSettings struct {
	queueEnabled    bool
	queueLimit      int
	callbackThreads int
}

func defaultHandleSettings() handleSettings {
	return handleSettings{queueLimit: 16 << 20, callbackThreads: defaultCallbackThreads}
}

func badValue(opt int, v int64, want string) error {
	return &engine.Error{Code: engine.ErrInvalidArg, Reason: fmt.Sprintf("bad value %d for option %d (want %s)", v, opt, want)}
}

func unknownOption(opt int) error {
	return &engine.Error{Code: engine.ErrUnknownOption, Reason: fmt.Sprintf("option %d", opt)}
}

func inRange(opt int, v, lo, hi int64) error {
	if v < lo || v > hi {
		return badValue(opt, v, fmt.Sprintf("%d..%d", lo, hi))
	}
	return nil
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// applyIntOption changes o (or q) for one integer option.
func applyIntOption(o *engine.Options, q *handleSettings, opt int, v int64) error {
	msOpt := func(dst *time.Duration) error {
		if err := inRange(opt, v, 0, maxMS); err != nil {
			return err
		}
		*dst = ms(v)
		return nil
	}
	intOpt := func(dst *int, lo, hi int64) error {
		if err := inRange(opt, v, lo, hi); err != nil {
			return err
		}
		*dst = int(v)
		return nil
	}
	boolOpt := func(dst *bool) error { // C's convention: nonzero is true
		*dst = v != 0
		return nil
	}
	switch opt {
	case optTLSMinVersion:
		if v != 0x0303 && v != 0x0304 {
			return badValue(opt, v, "0x0303 or 0x0304")
		}
		o.TLSMinVersion = uint16(v)
	case optRequireClientCert:
		var require bool
		if err := boolOpt(&require); err != nil {
			return err
		}
		o.ClientCertOptional = !require
	case optVerifyMode:
		if v != int64(engine.VerifyFull) && v != int64(engine.VerifyCA) {
			return badValue(opt, v, "TCP_VERIFY_FULL or TCP_VERIFY_CA")
		}
		o.VerifyMode = engine.VerifyMode(v)
	case optConnectTimeoutMS:
		return msOpt(&o.ConnectTimeout)
	case optNoDelay:
		return boolOpt(&o.NoDelay)
	case optSendQueueLimit:
		return intOpt(&o.SendQueueLimit, 0, maxBytes)
	case optEventQueue:
		return boolOpt(&q.queueEnabled)
	case optEventQueueLimit:
		return intOpt(&q.queueLimit, 0, maxBytes)
	case optReusePort:
		return boolOpt(&o.ReusePort)
	case optLingerMS:
		return msOpt(&o.Linger)
	case optMaxConnections:
		return intOpt(&o.MaxConnections, 0, maxCount)
	case optIdleTimeoutMS:
		return msOpt(&o.IdleTimeout)
	case optMessageTimeoutMS:
		return msOpt(&o.MessageTimeout)
	case optWriteTimeoutMS:
		return msOpt(&o.WriteTimeout)
	case optKeepAlive:
		return boolOpt(&o.KeepAlive)
	case optKeepAliveIdleMS:
		if err := inRange(opt, v, 1000, maxMS); err != nil { // the kernel counts seconds
			return err
		}
		o.KeepAliveIdle = ms(v)
	case optKeepAliveIntervalM:
		if err := inRange(opt, v, 1000, maxMS); err != nil {
			return err
		}
		o.KeepAliveInterval = ms(v)
	case optKeepAliveCount:
		return intOpt(&o.KeepAliveCount, 1, 127)
	case optBacklog:
		return intOpt(&o.Backlog, 0, math.MaxInt32)
	case optIPv6Only:
		return boolOpt(&o.IPv6Only)
	case optMemoryBudget:
		if err := inRange(opt, v, 0, maxBytes); err != nil {
			return err
		}
		o.MemoryBudget = v
	case optSendLowWater:
		return intOpt(&o.SendLowWater, 0, maxBytes)
	case optCallbackThreads:
		return intOpt(&q.callbackThreads, 1, maxCallbacksProcess)
	case optReconnect:
		return boolOpt(&o.Reconnect)
	case optReconnectMinMS:
		if err := inRange(opt, v, 1, maxMS); err != nil {
			return err
		}
		o.ReconnectMin = ms(v)
	case optReconnectMaxMS:
		if err := inRange(opt, v, 1, maxMS); err != nil {
			return err
		}
		o.ReconnectMax = ms(v)
	case optCloseOnEOF:
		return boolOpt(&o.CloseOnEOF)
	case optProxyProtocol:
		var m int
		if err := intOpt(&m, 0, 2); err != nil {
			return err
		}
		o.ProxyMode = engine.ProxyMode(m)
	case optTLSMaxVersion:
		if v != 0x0303 && v != 0x0304 {
			return badValue(opt, v, "0x0303 or 0x0304")
		}
		o.TLS.MaxVersion = uint16(v)
	case optTLSResumption:
		o.TLS.NoResumption = v == 0
	case optTLSSystemCAs:
		return boolOpt(&o.TLS.SystemCAs)
	default:
		return unknownOption(opt)
	}
	return nil
}

func applyStringOption(o *engine.Options, opt int, v string) error {
	switch opt {
	case optBindAddress:
		o.BindAddress = v
	case optProxyTrusted:
		list, err := engine.ParseAddrList(v)
		if err != nil {
			return err
		}
		o.ProxyTrusted = list
	case optTLSCipherSuites:
		ids, err := engine.ParseCipherSuites(v)
		if err != nil {
			return err
		}
		o.TLS.CipherSuites = ids
	case optTLSALPN:
		protos, err := engine.ParseALPN(v)
		if err != nil {
			return err
		}
		o.TLS.ALPN = protos
	case optTLSServerName:
		o.TLS.ServerName = strings.TrimSpace(v)
	case optTLSKeyLogFile:
		o.TLS.KeyLogFile = v
	default:
		return unknownOption(opt)
	}
	return nil
}
