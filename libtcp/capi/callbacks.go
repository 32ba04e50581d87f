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
	messageEx     C.tcp_message_ex_fn
	messageExUD   unsafe.Pointer
	messages      C.tcp_messages_fn
	messagesUD    unsafe.Pointer
	closed        C.tcp_closed_fn
	closedUD      unsafe.Pointer
	closedEx      C.tcp_closed_ex_fn
	closedExUD    unsafe.Pointer
	ready         C.tcp_ready_fn
	readyUD       unsafe.Pointer
	errorFn       C.tcp_error_fn
	errorUD       unsafe.Pointer
	accept        C.tcp_accept_fn
	acceptUD      unsafe.Pointer
	cert          C.tcp_cert_check_fn
	certUD        unsafe.Pointer
}

// serverHandler delivers engine events to the C callbacks. Each call into
// C holds a callback slot (see slots.go), which bounds the OS threads that
// slow callbacks can hold.
type serverHandler struct {
	cbs   atomic.Pointer[serverCallbacks]
	slots *slots
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

// connData is the C pointer a connection carries (tcp_server_set_conn_data).
func connData(user any) unsafe.Pointer {
	p, _ := user.(unsafe.Pointer)
	return p
}

func (h *serverHandler) Established(id int) {
	if cb := h.cbs.Load(); cb.established != nil {
		h.slots.enter()
		C.tcpgo_call_established(cb.established, cb.establishedUD, C.int(id))
		h.slots.leave()
	}
}

func (h *serverHandler) Message(id int, data []byte) { h.MessageEx(id, data, false, nil) }

// The message callbacks' precedence (tcpgo.h): the batch callback, else the
// extended one, else the plain one. With the batch callback set, a message
// the engine hands over alone (one a framing did not decode in place, or one
// of a read that began before the callback was set) is a batch of one.
func (h *serverHandler) MessageEx(id int, data []byte, partial bool, user any) {
	cb := h.cbs.Load()
	switch {
	case cb.messages != nil:
		h.slots.enter()
		C.tcpgo_call_messages1(cb.messages, cb.messagesUD, C.int(id), connData(user), bytePtr(data), C.size_t(len(data)), msgFlags(partial))
		h.slots.leave()
	case cb.messageEx != nil:
		h.slots.enter()
		C.tcpgo_call_message_ex(cb.messageEx, cb.messageExUD, C.int(id), connData(user), bytePtr(data), C.size_t(len(data)), msgFlags(partial))
		h.slots.leave()
	case cb.message != nil:
		h.slots.enter()
		C.tcpgo_call_message(cb.message, cb.messageUD, C.int(id), bytePtr(data), C.size_t(len(data)))
		h.slots.leave()
	}
}

// WantsBatch is asked by the engine before each read is decoded.
func (h *serverHandler) WantsBatch() bool { return h.cbs.Load().messages != nil }

// Messages delivers one read's messages in one call into C (one crossing,
// one callback slot): bridge.c builds the tcp_msg array on the C side from
// buf and parts, neither of which holds a Go pointer.
func (h *serverHandler) Messages(id int, buf []byte, parts []engine.Part, user any) {
	cb := h.cbs.Load()
	if cb.messages == nil { // removed since WantsBatch said yes
		for _, p := range parts {
			h.MessageEx(id, buf[p.Off:p.Off+p.Len], p.Partial, user)
		}
		return
	}
	if len(parts) == 0 {
		return
	}
	h.slots.enter()
	C.tcpgo_call_messages(cb.messages, cb.messagesUD, C.int(id), connData(user), bytePtr(buf), partsPtr(parts), C.size_t(len(parts)))
	h.slots.leave()
}

func (h *serverHandler) Closed(id int) { h.ClosedEx(id, engine.ClosePeer, nil) }

func (h *serverHandler) ClosedEx(id int, reason engine.CloseReason, user any) {
	cb := h.cbs.Load()
	switch {
	case cb.closedEx != nil:
		h.slots.enter()
		C.tcpgo_call_closed_ex(cb.closedEx, cb.closedExUD, C.int(id), connData(user), C.int(reason))
		h.slots.leave()
	case cb.closed != nil:
		h.slots.enter()
		C.tcpgo_call_closed(cb.closed, cb.closedUD, C.int(id))
		h.slots.leave()
	}
}

func (h *serverHandler) Ready(id int, user any) {
	if cb := h.cbs.Load(); cb.ready != nil {
		h.slots.enter()
		C.tcpgo_call_ready(cb.ready, cb.readyUD, C.int(id), connData(user))
		h.slots.leave()
	}
}

func (h *serverHandler) Error(id int, err *engine.Error) {
	if cb := h.cbs.Load(); cb.errorFn != nil {
		msg := C.CString(err.Error())
		defer C.free(unsafe.Pointer(msg))
		h.slots.enter()
		C.tcpgo_call_error(cb.errorFn, cb.errorUD, C.int(id), C.int(err.Code), msg)
		h.slots.leave()
	}
}

// accept is the engine's AcceptFunc while an accept callback is set.
func (h *serverHandler) accept(ip string, port, localPort int) bool {
	cb := h.cbs.Load()
	if cb.accept == nil {
		return true
	}
	cip := C.CString(ip)
	defer C.free(unsafe.Pointer(cip))
	h.slots.enter()
	defer h.slots.leave()
	return C.tcpgo_call_accept(cb.accept, cb.acceptUD, cip, C.int(port), C.int(localPort)) != 0
}

// certCheck is the engine's CertCheckFunc while a certificate callback is
// set (export_tls.go).
func (h *serverHandler) certCheck(cc *engine.CertCheck) bool {
	cb := h.cbs.Load()
	if cb.cert == nil {
		// Removed meanwhile: the built-in verdict (the engine enforces a
		// required client certificate before any check runs).
		return cc.Result == engine.CertOK || cc.Result == engine.CertNoCert
	}
	return callCert(h.slots, cb.cert, cb.certUD, cc)
}

// callCert runs a certificate callback: the tcp_cert_info strings are C
// copies, freed once the callback returned. The call holds a callback slot
// like every other call into the host.
func callCert(s *slots, fn C.tcp_cert_check_fn, ud unsafe.Pointer, cc *engine.CertCheck) bool {
	peer := engine.TLSInfo{PeerChain: cc.Chain}
	errText := ""
	if cc.Err != nil {
		errText = cc.Err.Error()
	}
	strs := [...]string{errText, string(peer.PeerCertPEM()), string(peer.PeerChainPEM()), peer.PeerSubject(), peer.PeerIssuer(), cc.ServerName}
	var cs [len(strs)]*C.char
	for i, v := range strs {
		cs[i] = C.CString(v)
	}
	defer func() {
		for _, p := range cs {
			C.free(unsafe.Pointer(p))
		}
	}()
	s.enter()
	defer s.leave()
	return C.tcpgo_call_cert(fn, ud, C.int(cc.ID), C.int(cc.Result), cs[0], cs[1], cs[2], cs[3], cs[4], cs[5]) != 0
}

type clientCallbacks struct {
	message   C.tcp_client_message_fn
	messageUD unsafe.Pointer
	messageEx C.tcp_client_message_ex_fn
	msgExUD   unsafe.Pointer
	messages  C.tcp_client_messages_fn
	msgsUD    unsafe.Pointer
	closed    C.tcp_client_closed_fn
	closedUD  unsafe.Pointer
	closedEx  C.tcp_client_closed_ex_fn
	closedExU unsafe.Pointer
	ready     C.tcp_client_ready_fn
	readyUD   unsafe.Pointer
	connect   C.tcp_client_connect_fn
	connectUD unsafe.Pointer
	errorFn   C.tcp_client_error_fn
	errorUD   unsafe.Pointer
	cert      C.tcp_cert_check_fn
	certUD    unsafe.Pointer
}

type clientHandler struct {
	cbs   atomic.Pointer[clientCallbacks]
	slots *slots
	// upgrading: tcp_client_starttls was called from a callback and its
	// handshake has not ended; the end goes to the connect callback with
	// attempt 0 (the engine reports it as Established(0), or as Error and
	// Closed).
	upgrading atomic.Bool
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

// Established is, for a client, the end of a STARTTLS upgrade.
func (h *clientHandler) Established(int) {
	if h.upgrading.Swap(false) {
		h.Connect(0, nil)
	}
}

// upgradeFailed reports a pending STARTTLS upgrade that ended without
// success, before its error and closed callbacks.
func (h *clientHandler) upgradeFailed() {
	if h.upgrading.Swap(false) {
		h.Connect(0, &engine.Error{Code: engine.StartConnectInit})
	}
}

func (h *clientHandler) certCheck(cc *engine.CertCheck) bool {
	cb := h.cbs.Load()
	if cb.cert == nil {
		return cc.Result == engine.CertOK
	}
	return callCert(h.slots, cb.cert, cb.certUD, cc)
}

func (h *clientHandler) Message(_ int, data []byte) { h.MessageEx(0, data, false, nil) }

func (h *clientHandler) MessageEx(_ int, data []byte, partial bool, _ any) {
	cb := h.cbs.Load()
	if cb.messages != nil { // precedence: see serverHandler.MessageEx
		h.slots.enter()
		C.tcpgo_call_client_messages1(cb.messages, cb.msgsUD, bytePtr(data), C.size_t(len(data)), msgFlags(partial))
		h.slots.leave()
		return
	}
	if cb.messageEx != nil {
		h.slots.enter()
		C.tcpgo_call_client_message_ex(cb.messageEx, cb.msgExUD, bytePtr(data), C.size_t(len(data)), msgFlags(partial))
		h.slots.leave()
		return
	}
	if cb.message != nil {
		h.slots.enter()
		C.tcpgo_call_client_message(cb.message, cb.messageUD, bytePtr(data), C.size_t(len(data)))
		h.slots.leave()
	}
}

func (h *clientHandler) WantsBatch() bool { return h.cbs.Load().messages != nil }

func (h *clientHandler) Messages(_ int, buf []byte, parts []engine.Part, _ any) {
	cb := h.cbs.Load()
	if cb.messages == nil {
		for _, p := range parts {
			h.MessageEx(0, buf[p.Off:p.Off+p.Len], p.Partial, nil)
		}
		return
	}
	if len(parts) == 0 {
		return
	}
	h.slots.enter()
	C.tcpgo_call_client_messages(cb.messages, cb.msgsUD, bytePtr(buf), partsPtr(parts), C.size_t(len(parts)))
	h.slots.leave()
}

func (h *clientHandler) Closed(int) { h.ClosedEx(0, engine.ClosePeer, nil) }

func (h *clientHandler) ClosedEx(_ int, reason engine.CloseReason, _ any) {
	h.upgradeFailed()
	cb := h.cbs.Load()
	switch {
	case cb.closedEx != nil:
		h.slots.enter()
		C.tcpgo_call_client_closed_ex(cb.closedEx, cb.closedExU, C.int(reason))
		h.slots.leave()
	case cb.closed != nil:
		h.slots.enter()
		C.tcpgo_call_client_closed(cb.closed, cb.closedUD)
		h.slots.leave()
	}
}

func (h *clientHandler) Ready(int, any) {
	if cb := h.cbs.Load(); cb.ready != nil {
		h.slots.enter()
		C.tcpgo_call_client_ready(cb.ready, cb.readyUD)
		h.slots.leave()
	}
}

func (h *clientHandler) Connect(attempt int, err error) {
	if cb := h.cbs.Load(); cb.connect != nil {
		h.slots.enter()
		C.tcpgo_call_client_connect(cb.connect, cb.connectUD, C.int(attempt), C.int(engine.CodeOf(err)))
		h.slots.leave()
	}
}

func (h *clientHandler) Error(_ int, err *engine.Error) {
	h.upgradeFailed()
	if cb := h.cbs.Load(); cb.errorFn != nil {
		msg := C.CString(err.Error())
		defer C.free(unsafe.Pointer(msg))
		h.slots.enter()
		C.tcpgo_call_client_error(cb.errorFn, cb.errorUD, C.int(err.Code), msg)
		h.slots.leave()
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

func msgFlags(partial bool) C.int {
	if partial {
		return 1 // TCP_MSG_PARTIAL
	}
	return 0
}

// partsPtr passes a batch's parts to C for the duration of one call:
// engine.Part holds no Go pointer, and C reads it as tcpgo_part (bridge.h),
// whose layout the declarations below check at compile time.
func partsPtr(p []engine.Part) *C.tcpgo_part {
	return (*C.tcpgo_part)(unsafe.Pointer(unsafe.SliceData(p)))
}

// Compile-time layout checks: engine.Part and C's tcpgo_part must agree
// (a mismatch is a type error here).
var (
	_ [unsafe.Sizeof(engine.Part{})]byte           = [unsafe.Sizeof(C.tcpgo_part{})]byte{}
	_ [unsafe.Offsetof(engine.Part{}.Off)]byte     = [unsafe.Offsetof(C.tcpgo_part{}.off)]byte{}
	_ [unsafe.Offsetof(engine.Part{}.Len)]byte     = [unsafe.Offsetof(C.tcpgo_part{}.len)]byte{}
	_ [unsafe.Offsetof(engine.Part{}.Partial)]byte = [unsafe.Offsetof(C.tcpgo_part{}.partial)]byte{}
	_ [unsafe.Sizeof(engine.Part{}.Partial)]byte   = [unsafe.Sizeof(C.tcpgo_part{}.partial)]byte{}
	_ [unsafe.Sizeof(engine.Part{}.Off)]byte       = [unsafe.Sizeof(C.tcpgo_part{}.off)]byte{}
)
