package main

/*
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"unsafe"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// Handles given to C are one-byte C allocations: unique, stable, and never
// Go pointers. handles maps them to the Go objects.
var handles sync.Map // uintptr -> *serverObj | *clientObj

func newHandle(obj any) unsafe.Pointer {
	p := C.malloc(1)
	if p == nil {
		return nil
	}
	handles.Store(uintptr(p), obj)
	return p
}

func dropHandle(p unsafe.Pointer) {
	if _, ok := handles.LoadAndDelete(uintptr(p)); ok {
		C.free(p)
	}
}

func lookupServer(p *C.tcp_server) *serverObj {
	if p == nil {
		return nil
	}
	v, _ := handles.Load(uintptr(unsafe.Pointer(p)))
	o, _ := v.(*serverObj)
	return o
}

func lookupClient(p *C.tcp_client) *clientObj {
	if p == nil {
		return nil
	}
	v, _ := handles.Load(uintptr(unsafe.Pointer(p)))
	o, _ := v.(*clientObj)
	return o
}

// lastError keeps the detailed reason of a handle's last failure.
type lastError struct {
	mu  sync.Mutex
	msg string
}

func (l *lastError) set(err error) {
	l.mu.Lock()
	l.msg = err.Error()
	l.mu.Unlock()
}

func (l *lastError) setf(format string, args ...any) { l.set(fmt.Errorf(format, args...)) }

func (l *lastError) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg
}

// result records err (if any) and returns its code as a C int.
func (l *lastError) result(err error) C.int {
	if err != nil {
		l.set(err)
	}
	return C.int(engine.CodeOf(err))
}

// copyOut copies s into the caller's buffer as snprintf does and returns the
// full length.
func copyOut(s string, buf *C.char, buflen C.size_t) C.int {
	if buf != nil && buflen > 0 {
		dst := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(buflen))
		n := copy(dst[:len(dst)-1], s)
		dst[n] = 0
	}
	return C.int(len(s))
}

func goBytes(data unsafe.Pointer, n C.size_t) []byte {
	if data == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(data), int(n))
}

// catch stops a Go panic at the C boundary: it must never unwind through C
// frames. The call then reports TCP_ERR_INTERNAL.
func catch(rc *C.int, l *lastError) {
	if r := recover(); r != nil {
		msg := fmt.Sprintf("tcpgo: internal error: %v\n%s", r, debug.Stack())
		fmt.Fprintln(os.Stderr, msg)
		if l != nil {
			l.setf("internal error: %v", r)
		}
		if rc != nil {
			*rc = C.int(engine.ErrInternal)
		}
	}
}
