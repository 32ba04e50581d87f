package main

/*
#include "bridge.h"
*/
import "C"

import (
	"sync/atomic"
	"unsafe"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// serverCallbacks is replaced whole on every set_on_* call, so an event
// reads one consistent snapshot without taking a lock.
type serverCallbacks struct {
	established   C.tcp_established_fn
	establishedUD unsafe.Pointer
	message       C.tcp_message_fn
	messageUD     unsafe.Pointer
	closed        C.tcp_closed_fn
	closedUD      unsafe.Pointer
	errorFn       C.tcp_error_fn
	errorUD       unsafe.Pointer
}

// serverHandler delivers engine events to the C callbacks.
type serverHandler struct {
	cbs atomic.Pointer[serverCallbacks]
}

func (h *serverHandler) update(f func(*serverCallbacks)) {
	for {
		old := h.cbs.Load()
		next := *old
		f(&next)
		if h.cbs.CompareAndSwap(old, &next) {
			return
		}
	}
}

func (h *serverHandler) Established(id int) {
	if cb := h.cbs.Load(); cb.established != nil {
		C.tcpgo_call_established(cb.established, cb.establishedUD, C.int(id))
	}
}

func (h *serverHandler) Message(id int, data []byte) {
	if cb := h.cbs.Load(); cb.message != nil {
		C.tcpgo_call_message(cb.message, cb.messageUD, C.int(id), bytePtr(data), C.size_t(len(data)))
	}
}

func (h *serverHandler) Closed(id int) {
	if cb := h.cbs.Load(); cb.closed != nil {
		C.tcpgo_call_closed(cb.closed, cb.closedUD, C.int(id))
	}
}

func (h *serverHandler) Error(id int, err *engine.Error) {
	if cb := h.cbs.Load(); cb.errorFn != nil {
		msg := C.CString(err.Error())
		defer C.free(unsafe.Pointer(msg))
		C.tcpgo_call_error(cb.errorFn, cb.errorUD, C.int(id), C.int(err.Code), msg)
	}
}

type clientCallbacks struct {
	message   C.tcp_client_message_fn
	messageUD unsafe.Pointer
	closed    C.tcp_client_closed_fn
	closedUD  unsafe.Pointer
	errorFn   C.tcp_client_error_fn
	errorUD   unsafe.Pointer
}

type clientHandler struct {
	cbs atomic.Pointer[clientCallbacks]
}

func (h *clientHandler) update(f func(*clientCallbacks)) {
	for {
		old := h.cbs.Load()
		next := *old
		f(&next)
		if h.cbs.CompareAndSwap(old, &next) {
			return
		}
	}
}

func (h *clientHandler) Established(int) {}

func (h *clientHandler) Message(_ int, data []byte) {
	if cb := h.cbs.Load(); cb.message != nil {
		C.tcpgo_call_client_message(cb.message, cb.messageUD, bytePtr(data), C.size_t(len(data)))
	}
}

func (h *clientHandler) Closed(int) {
	if cb := h.cbs.Load(); cb.closed != nil {
		C.tcpgo_call_client_closed(cb.closed, cb.closedUD)
	}
}

func (h *clientHandler) Error(_ int, err *engine.Error) {
	if cb := h.cbs.Load(); cb.errorFn != nil {
		msg := C.CString(err.Error())
		defer C.free(unsafe.Pointer(msg))
		C.tcpgo_call_client_error(cb.errorFn, cb.errorUD, C.int(err.Code), msg)
	}
}

// bytePtr passes received bytes to C for the duration of one call; the
// memory holds no Go pointers, as cgo's rules require.
func bytePtr(b []byte) *C.char {
	if len(b) == 0 {
		return emptyC // valid, never NULL: an empty message is still a message
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

var emptyC = (*C.char)(C.calloc(1, 1))
