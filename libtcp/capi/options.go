package main

import (
	"fmt"
	"time"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// Option ids of enum tcp_option in include/tcpgo.h.
const (
	optTLSMinVersion     = 1
	optRequireClientCert = 2
	optVerifyMode        = 3
	optConnectTimeoutMS  = 4
	optNoDelay           = 5
	optSendQueueLimit    = 6
	optEventQueue        = 7
	optEventQueueLimit   = 8
	optReusePort         = 9
	optLingerMS          = 10
	optBindAddress       = 100
)

// queueSettings are the options the cgo layer keeps itself: whether events
// go to callbacks or to the poll queue.
type queueSettings struct {
	enabled bool
	limit   int
}

func defaultQueueSettings() queueSettings { return queueSettings{limit: 16 << 20} }

func badValue(opt int, v int64) error {
	return &engine.Error{Code: engine.ErrInvalidArg, Reason: fmt.Sprintf("bad value %d for option %d", v, opt)}
}

func unknownOption(opt int) error {
	return &engine.Error{Code: engine.ErrUnknownOption, Reason: fmt.Sprintf("option %d", opt)}
}

// applyIntOption changes o (or q) for one integer option.
func applyIntOption(o *engine.Options, q *queueSettings, opt int, v int64) error {
	switch opt {
	case optTLSMinVersion:
		if v != 0x0303 && v != 0x0304 {
			return badValue(opt, v)
		}
		o.TLSMinVersion = uint16(v)
	case optRequireClientCert:
		o.ClientCertOptional = v == 0
	case optVerifyMode:
		if v != int64(engine.VerifyFull) && v != int64(engine.VerifyCA) {
			return badValue(opt, v)
		}
		o.VerifyMode = engine.VerifyMode(v)
	case optConnectTimeoutMS:
		if v < 0 {
			return badValue(opt, v)
		}
		o.ConnectTimeout = time.Duration(v) * time.Millisecond
	case optNoDelay:
		o.NoDelay = v != 0
	case optSendQueueLimit:
		if v < 0 {
			return badValue(opt, v)
		}
		o.SendQueueLimit = int(v)
	case optEventQueue:
		q.enabled = v != 0
	case optEventQueueLimit:
		if v < 0 {
			return badValue(opt, v)
		}
		q.limit = int(v)
	case optReusePort:
		o.ReusePort = v != 0
	case optLingerMS:
		if v < 0 {
			return badValue(opt, v)
		}
		o.Linger = time.Duration(v) * time.Millisecond
	default:
		return unknownOption(opt)
	}
	return nil
}

func applyStringOption(o *engine.Options, opt int, v string) error {
	switch opt {
	case optBindAddress:
		o.BindAddress = v
	default:
		return unknownOption(opt)
	}
	return nil
}
