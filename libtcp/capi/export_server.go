package main

/*
#include "bridge.h"
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// serverObj is what a tcp_server handle stands for.
type serverObj struct {
	srv     *engine.Server
	handler serverHandler
	handleState
}

func clampLen(n C.size_t) int {
	if uint64(n) > math.MaxInt32*16 {
		return math.MaxInt32 * 16 // "no limit" for any practical purpose
	}
	return int(n)
}

func newServer(f engine.Framing) *C.tcp_server {
	o := &serverObj{}
	o.handler.cbs.Store(&serverCallbacks{})
	o.srv = engine.NewServer(f, engine.DefaultOptions(), &o.handler)
	o.handleState = newHandleState(o.srv)
	return (*C.tcp_server)(newHandle(o))
}

//export tcp_server_new
func tcp_server_new() (h *C.tcp_server) {
	defer catch(nil, nil)
	return newServer(engine.Continuous{})
}

//export tcp_server_new_fragmented
func tcp_server_new_fragmented(delim C.char, maxLen C.size_t) (h *C.tcp_server) {
	defer catch(nil, nil)
	return newServer(engine.NewDelimited(byte(delim), clampLen(maxLen)))
}

//export tcp_server_free
func tcp_server_free(s *C.tcp_server) {
	defer catch(nil, nil)
	if o := lookupServer(s); o != nil {
		o.srv.Stop()
		dropHandle(unsafe.Pointer(s))
	}
}

//export tcp_server_set_option
func tcp_server_set_option(s *C.tcp_server, opt C.int, value C.longlong) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.setIntOption(opt, value)
}

//export tcp_server_set_option_str
func tcp_server_set_option_str(s *C.tcp_server, opt C.int, value *C.char) (rc C.int) {
	o := lookupServer(s)
	if o == nil || value == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.setStringOption(opt, value)
}

//export tcp_server_set_on_established
func tcp_server_set_on_established(s *C.tcp_server, fn C.tcp_established_fn, ud unsafe.Pointer) {
	if o := lookupServer(s); o != nil {
		o.handler.update(func(c *serverCallbacks) { c.established, c.establishedUD = fn, ud })
	}
}

//export tcp_server_set_on_message
func tcp_server_set_on_message(s *C.tcp_server, fn C.tcp_message_fn, ud unsafe.Pointer) {
	if o := lookupServer(s); o != nil {
		o.handler.update(func(c *serverCallbacks) { c.message, c.messageUD = fn, ud })
	}
}

//export tcp_server_set_on_closed
func tcp_server_set_on_closed(s *C.tcp_server, fn C.tcp_closed_fn, ud unsafe.Pointer) {
	if o := lookupServer(s); o != nil {
		o.handler.update(func(c *serverCallbacks) { c.closed, c.closedUD = fn, ud })
	}
}

//export tcp_server_set_on_error
func tcp_server_set_on_error(s *C.tcp_server, fn C.tcp_error_fn, ud unsafe.Pointer) {
	if o := lookupServer(s); o != nil {
		o.handler.update(func(c *serverCallbacks) { c.errorFn, c.errorUD = fn, ud })
	}
}

//export tcp_server_start
func tcp_server_start(s *C.tcp_server, port C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	if err := o.prepareStart(&o.handler); err != nil {
		return o.errs.result(err)
	}
	return o.errs.result(o.srv.Start(int(port)))
}

//export tls_server_start
func tls_server_start(s *C.tcp_server, port C.int, ca, cert, key *C.char) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	if err := o.prepareStart(&o.handler); err != nil {
		return o.errs.result(err)
	}
	files := engine.TLSFiles{CA: optString(ca), Cert: optString(cert), Key: optString(key)}
	return o.errs.result(o.srv.StartTLS(int(port), files))
}

func optString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

//export tcp_server_port
func tcp_server_port(s *C.tcp_server) C.int {
	o := lookupServer(s)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	if p := o.srv.Port(); p > 0 {
		return C.int(p)
	}
	return C.int(engine.ErrNotRunning)
}

//export tcp_server_is_running
func tcp_server_is_running(s *C.tcp_server) C.int {
	if o := lookupServer(s); o != nil && o.srv.Running() {
		return 1
	}
	return 0
}

//export tcp_server_stop
func tcp_server_stop(s *C.tcp_server) {
	if o := lookupServer(s); o != nil {
		defer catch(nil, &o.errs)
		o.srv.Stop()
	}
}

//export tcp_send_msg
func tcp_send_msg(s *C.tcp_server, id C.int, data unsafe.Pointer, n C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil || (data == nil && n > 0) {
		return 0
	}
	defer catch(&rc, &o.errs)
	if err := o.srv.Send(int(id), goBytes(data, n)); err != nil {
		o.errs.set(err)
		return 0
	}
	return 1
}

//export tcp_server_send_batch
func tcp_server_send_batch(s *C.tcp_server, buf unsafe.Pointer, n C.size_t, count C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil || (buf == nil && n > 0) {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	sent, err := sendRecords(goBytes(buf, n), int(count), o.srv.Send)
	if err != nil {
		o.errs.set(err)
		if engine.CodeOf(err) == engine.ErrInvalidArg { // a cut-off buffer
			return C.int(engine.ErrInvalidArg)
		}
	}
	return C.int(sent)
}

// sendRecords queues each record of buf (event-queue format) with send and
// returns how many were queued, and the last refusal.
func sendRecords(buf []byte, count int, send func(id int, msg []byte) error) (int, error) {
	sent := 0
	var last error
	for i := 0; i < count; i++ {
		if len(buf) < engine.EventHeaderSize {
			return sent, &engine.Error{Code: engine.ErrInvalidArg, Reason: fmt.Sprintf("record %d: buffer ends inside its header", i)}
		}
		id := int(int32(binary.NativeEndian.Uint32(buf[4:])))
		size := engine.EventHeaderSize + int(binary.NativeEndian.Uint32(buf[12:]))
		if len(buf) < size {
			return sent, &engine.Error{Code: engine.ErrInvalidArg, Reason: fmt.Sprintf("record %d: buffer ends inside its data", i)}
		}
		if err := send(id, buf[engine.EventHeaderSize:size]); err != nil {
			last = err
		} else {
			sent++
		}
		buf = buf[size:]
	}
	return sent, last
}

//export tcp_server_flush
func tcp_server_flush(s *C.tcp_server, id C.int, timeoutMS C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.errs.result(o.srv.Flush(int(id), msDuration(timeoutMS)))
}

//export tcp_server_broadcast
func tcp_server_broadcast(s *C.tcp_server, data unsafe.Pointer, n C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil || (data == nil && n > 0) {
		return 0
	}
	defer catch(&rc, &o.errs)
	return C.int(o.srv.Broadcast(goBytes(data, n)))
}

//export tcp_server_close_client
func tcp_server_close_client(s *C.tcp_server, id C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.errs.result(o.srv.CloseClient(int(id)))
}

//export tcp_server_client_ids
func tcp_server_client_ids(s *C.tcp_server, ids *C.int, max C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return 0
	}
	defer catch(&rc, &o.errs)
	all := o.srv.ClientIDs()
	if ids != nil && max > 0 {
		dst := unsafe.Slice(ids, int(max))
		for i := 0; i < len(all) && i < len(dst); i++ {
			dst[i] = C.int(all[i])
		}
	}
	return C.int(len(all))
}

//export tcp_server_client_ip
func tcp_server_client_ip(s *C.tcp_server, id C.int, buf *C.char, buflen C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	ip, _, err := o.srv.ClientAddr(int(id))
	if err != nil {
		return noClient(o, err)
	}
	return copyOut(ip, buf, buflen)
}

// noClient reports look-ups on a stopped server as "no such client", the
// answer the header documents for them.
func noClient(o *serverObj, err error) C.int {
	o.errs.set(err)
	return C.int(engine.ErrNoClient)
}

//export tcp_server_client_port
func tcp_server_client_port(s *C.tcp_server, id C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	_, port, err := o.srv.ClientAddr(int(id))
	if err != nil {
		return noClient(o, err)
	}
	return C.int(port)
}

//export get_subj_part
func get_subj_part(s *C.tcp_server, id C.int, nid C.int, buf *C.char, buflen C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	v, err := o.srv.SubjectPart(int(id), int(nid))
	if err != nil {
		if engine.CodeOf(err) == engine.ErrNotRunning {
			return noClient(o, err)
		}
		return o.errs.result(err)
	}
	return copyOut(v, buf, buflen)
}

//export tcp_server_last_error
func tcp_server_last_error(s *C.tcp_server, buf *C.char, buflen C.size_t) C.int {
	o := lookupServer(s)
	if o == nil {
		return copyOut("invalid server handle", buf, buflen)
	}
	return copyOut(o.errs.get(), buf, buflen)
}

//export tcp_server_poll
func tcp_server_poll(s *C.tcp_server, buf unsafe.Pointer, buflen C.size_t, used *C.size_t, timeoutMS C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.poll(buf, buflen, used, timeoutMS)
}
