package main

/*
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// Handles given to C are addresses in a reserved, inaccessible region of
// address space, handed out in increasing order and never reused until the
// region wraps (2^26 handles later). A freed handle therefore never names a
// new object -- unlike malloc'd keys (what github.com/mattn/go-pointer
// uses), which glibc hands out again at once: malloc(1) after free returned
// the same address 1000 times in 1000 here. Dereferencing a handle faults
// at once instead of reading someone else's memory.
const (
	handleStride = 16
	handleSpace  = 1 << 30
)

var (
	handleBase = uintptr(C.tcpgo_reserve_handles(handleSpace))
	handleSeq  atomic.Uint64
	handles    handleTable
)

// handleTable maps a handle's index (its offset in the reserved region
// divided by handleStride) to its object: a look-up is two atomic loads,
// no hashing and no lock (every call of the API does one). Chunks are
// allocated when the first handle of theirs is made and never freed
// (16 KiB per 1024 handles ever made; at most 1 GiB / 16 / 1024 chunks).
const (
	handleSlots    = handleSpace / handleStride
	handleChunkLog = 10
	handleChunk    = 1 << handleChunkLog
)

type handleSlot struct {
	srv atomic.Pointer[serverObj]
	cl  atomic.Pointer[clientObj]
}

type handleTable struct {
	mu     sync.Mutex // serialises chunk allocation only
	chunks [handleSlots / handleChunk]atomic.Pointer[[handleChunk]handleSlot]
}

// slot is the table entry of handle p, or nil when p is not a handle
// (outside the region, misaligned) or no handle of its chunk was made.
func (t *handleTable) slot(p unsafe.Pointer) *handleSlot {
	off := uintptr(p) - handleBase
	if handleBase == 0 || uintptr(p) < handleBase || off >= handleSpace || off%handleStride != 0 {
		return nil
	}
	i := off / handleStride
	ch := t.chunks[i>>handleChunkLog].Load()
	if ch == nil {
		return nil
	}
	return &ch[i&(handleChunk-1)]
}

// slotAt is the entry of index i, allocating its chunk if needed.
func (t *handleTable) slotAt(i uintptr) *handleSlot {
	c := &t.chunks[i>>handleChunkLog]
	ch := c.Load()
	if ch == nil {
		t.mu.Lock()
		if ch = c.Load(); ch == nil {
			ch = new([handleChunk]handleSlot)
			c.Store(ch)
		}
		t.mu.Unlock()
	}
	return &ch[i&(handleChunk-1)]
}

func newHandle(obj any) unsafe.Pointer {
	if handleBase == 0 {
		return nil
	}
	for {
		i := uintptr(handleSeq.Add(1) % handleSlots)
		if i == 0 {
			continue // never the region's first byte: keep handles non-NULL and distinct
		}
		sl := handles.slotAt(i)
		taken := false
		switch o := obj.(type) {
		case *serverObj:
			taken = sl.cl.Load() != nil || !sl.srv.CompareAndSwap(nil, o)
		case *clientObj:
			taken = sl.srv.Load() != nil || !sl.cl.CompareAndSwap(nil, o)
		default:
			panic("tcpgo: handle of unknown type")
		}
		if !taken {
			return unsafe.Add(unsafe.Pointer(nil), handleBase+i*handleStride) //nolint:govet // an opaque token, never dereferenced
		}
	}
}

func dropHandle(p unsafe.Pointer) {
	if sl := handles.slot(p); sl != nil {
		sl.srv.Store(nil)
		sl.cl.Store(nil)
	}
}

func lookupServer(p *C.tcp_server) *serverObj {
	if sl := handles.slot(unsafe.Pointer(p)); sl != nil {
		return sl.srv.Load()
	}
	return nil
}

func lookupClient(p *C.tcp_client) *clientObj {
	if sl := handles.slot(unsafe.Pointer(p)); sl != nil {
		return sl.cl.Load()
	}
	return nil
}

// ---------------------------------------------------------------------------
// Errors: per handle (tcp_*_last_error) and per calling thread (tcp_errcode,
// tcp_errno, tcp_errmsg; the record lives in C thread-local storage, and an
// exported function runs on its caller's thread).

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

func (l *lastError) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg
}

// result records err (if any) for the handle and the thread, clears the
// thread's record on success, and returns err's code as a C int.
func (l *lastError) result(err error) C.int {
	if err == nil {
		succeeded()
		return 0
	}
	if l != nil {
		l.set(err)
	}
	return failed(err)
}

// fail is result for the calls whose C wrapper (bridge.c) cleared the
// thread's record before entering Go: nothing to do on success.
func (l *lastError) fail(err error) C.int {
	if err == nil {
		return 0
	}
	l.set(err)
	return failed(err)
}

// failed records err for the calling thread and returns its code.
func failed(err error) C.int {
	code := engine.CodeOf(err)
	msg := err.Error()
	cs := C.CString(msg)
	C.tcpgo_set_error(C.int(code), C.int(engine.Errno(err)), cs, C.size_t(len(msg)))
	C.free(unsafe.Pointer(cs))
	return C.int(code)
}

// succeeded clears the calling thread's record.
func succeeded() { C.tcpgo_clear_error() }

func invalidArg(format string, args ...any) error {
	return &engine.Error{Code: engine.ErrInvalidArg, Reason: fmt.Sprintf(format, args...)}
}

// badHandle records a NULL or unknown handle for the thread and returns
// TCP_ERR_INVALID_ARG.
func badHandle(kind string) C.int {
	return failed(invalidArg("invalid %s handle (NULL, freed, or not a %s)", kind, kind))
}

// copyOut copies s into the caller's buffer as snprintf does and returns the
// full length.
func copyOut(s string, buf *C.char, buflen C.size_t) C.int {
	if buf != nil && buflen > 0 {
		dst := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(min(uint64(buflen), math.MaxInt32)))
		n := copy(dst[:len(dst)-1], s)
		dst[n] = 0
	}
	return C.int(len(s))
}

// maxDataLen bounds the length of data passed in: beyond it, a length is a
// bug (a negative number cast to size_t), not data.
const maxDataLen = 1 << 40

var errTooLong = errors.New("length over 2^40 bytes")

// goBytes views C memory as a slice for the duration of a call.
func goBytes(data unsafe.Pointer, n C.size_t) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if data == nil {
		return nil, invalidArg("NULL data with length %d", uint64(n))
	}
	if uint64(n) > maxDataLen {
		return nil, &engine.Error{Code: engine.ErrInvalidArg, Reason: fmt.Sprintf("length %d", uint64(n)), Err: errTooLong}
	}
	return unsafe.Slice((*byte)(data), int(n)), nil
}

// catch stops a Go panic at the C boundary: it must never unwind through C
// frames. The call then reports TCP_ERR_INTERNAL (or ret, for functions that
// return 1/0), and the stack goes to the log, never to stderr unasked.
func catch(rc *C.int, l *lastError, ret C.int) {
	if r := recover(); r != nil {
		engine.Logf(engine.LogError, "tcpgo: internal error: %v\n%s", r, debug.Stack())
		err := &engine.Error{Code: engine.ErrInternal, Reason: fmt.Sprintf("internal error: %v", r)}
		if l != nil {
			l.set(err)
		}
		failed(err)
		if rc != nil {
			*rc = ret
		}
	}
}

const internal = C.int(engine.ErrInternal)
