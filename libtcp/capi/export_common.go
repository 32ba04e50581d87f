package main

/*
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// Keep in step with TCPGO_VERSION_* in include/tcpgo.h (the tests compare).
const (
	versionMajor = 0
	versionMinor = 1
	versionPatch = 0
)

// Static C strings, allocated once and never freed.
var (
	versionC       = C.CString("0.1.0")
	codeC          = map[engine.Code]*C.char{}
	unknownC       = C.CString(engine.Code(-9999).String())
	reasonC        = map[engine.CloseReason]*C.char{}
	unknownReasonC = C.CString(engine.CloseReason(-1).String())
)

func init() {
	for _, c := range engine.Codes() {
		codeC[c] = C.CString(c.String())
	}
	for _, r := range engine.CloseReasons() {
		reasonC[r] = C.CString(r.String())
	}
	restoreHostFDLimit()
	logFromEnvironment()
	C.tcpgo_mark_ready()
}

// restoreHostFDLimit undoes the Go runtime's raise of RLIMIT_NOFILE at
// start-up, so that loading tcpgo does not change the host or the children
// it starts; tcp_raise_fd_limit makes the raise an explicit choice.
func restoreHostFDLimit() {
	host := int64(C.tcpgo_host_nofile())
	var lim syscall.Rlimit
	if host < 0 || syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil || lim.Cur == uint64(host) {
		return
	}
	lim.Cur = uint64(host)
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// logFromEnvironment honours TCPGO_LOG=1..4 (or error, warn, info, debug):
// log lines go to stderr until the host sets a log function.
func logFromEnvironment() {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("TCPGO_LOG")))
	level := map[string]int{"1": 1, "error": 1, "2": 2, "warn": 2, "3": 3, "info": 3, "4": 4, "debug": 4}[v]
	if level > 0 {
		engine.SetLogger(func(l int, msg string) { fmt.Fprintf(os.Stderr, "tcpgo[%d]: %s\n", l, msg) }, level)
	}
}

//export tcp_version
func tcp_version() *C.char { return versionC }

//export tcp_version_number
func tcp_version_number() C.int {
	return versionMajor*10000 + versionMinor*100 + versionPatch
}

//export tcp_strerror
func tcp_strerror(code C.int) *C.char {
	if s, ok := codeC[engine.Code(code)]; ok {
		return s
	}
	return unknownC
}

//export tcp_generate_certs
func tcp_generate_certs(dir, hosts *C.char) (rc C.int) {
	defer catch(&rc, nil, internal)
	if dir == nil {
		return failed(invalidArg("NULL directory"))
	}
	var none *lastError
	return none.result(engine.GenerateTestCerts(C.GoString(dir), optString(hosts)))
}

//export tcp_close_reason_str
func tcp_close_reason_str(reason C.int) *C.char {
	if s, ok := reasonC[engine.CloseReason(reason)]; ok {
		return s
	}
	return unknownReasonC
}

//export tcp_raise_fd_limit
func tcp_raise_fd_limit() C.longlong {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return C.longlong(failed(&engine.Error{Code: engine.ErrInternal, Reason: "getrlimit", Err: err}))
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return C.longlong(failed(&engine.Error{Code: engine.ErrInternal, Reason: "setrlimit", Err: err}))
	}
	succeeded()
	return C.longlong(lim.Cur)
}

// maxCPUsLimit bounds tcp_set_max_cpus: each CPU slot costs the runtime a
// scheduler context, so an absurd count is refused rather than allocated.
const maxCPUsLimit = 1024

//export tcp_set_max_cpus
func tcp_set_max_cpus(n C.int) C.int {
	prev := runtime.GOMAXPROCS(0)
	switch {
	case n > maxCPUsLimit:
		return C.int(failed(&engine.Error{Code: engine.ErrInvalidArg,
			Reason: fmt.Sprintf("tcp_set_max_cpus: %d is more than %d", int(n), maxCPUsLimit)}))
	case n > 0:
		runtime.GOMAXPROCS(int(n))
	case n < 0:
		runtime.SetDefaultGOMAXPROCS()
	}
	succeeded()
	return C.int(prev)
}

// logSink is the host's log function; replaced whole, read without a lock.
type logSink struct {
	fn C.tcp_log_fn
	ud unsafe.Pointer
}

var hostLog atomic.Pointer[logSink]

//export tcp_set_log
func tcp_set_log(fn C.tcp_log_fn, ud unsafe.Pointer, maxLevel C.int) {
	if fn == nil || maxLevel <= 0 {
		hostLog.Store(nil)
		engine.SetLogger(nil, 0)
		return
	}
	hostLog.Store(&logSink{fn: fn, ud: ud})
	engine.SetLogger(func(level int, msg string) {
		if s := hostLog.Load(); s != nil {
			cs := C.CString(msg)
			C.tcpgo_call_log(s.fn, s.ud, C.int(level), cs)
			C.free(unsafe.Pointer(cs))
		}
	}, int(maxLevel))
}
