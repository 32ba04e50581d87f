package main

/*
#include "bridge.h"
*/
import "C"

import (
	"unsafe"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// clientObj is what a tcp_client handle stands for.
type clientObj struct {
	cl      *engine.Client
	handler clientHandler
	handleState
}

func newClient(f engine.Framing) *C.tcp_client {
	o := &clientObj{}
	o.handler.cbs.Store(&clientCallbacks{})
	o.cl = engine.NewClient(f, engine.DefaultOptions(), &o.handler)
	o.handleState = newHandleState(o.cl)
	return (*C.tcp_client)(newHandle(o))
}

//export tcp_client_new
func tcp_client_new() *C.tcp_client {
	defer catch(nil, nil)
	return newClient(engine.Continuous{})
}

//export tcp_client_new_fragmented
func tcp_client_new_fragmented(delim C.char, maxLen C.size_t) *C.tcp_client {
	defer catch(nil, nil)
	return newClient(engine.NewDelimited(byte(delim), clampLen(maxLen)))
}

//export tcp_client_free
func tcp_client_free(c *C.tcp_client) {
	defer catch(nil, nil)
	if o := lookupClient(c); o != nil {
		o.cl.Stop()
		dropHandle(unsafe.Pointer(c))
	}
}

//export tcp_client_set_option
func tcp_client_set_option(c *C.tcp_client, opt C.int, value C.longlong) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.setIntOption(opt, value)
}

//export tcp_client_set_option_str
func tcp_client_set_option_str(c *C.tcp_client, opt C.int, value *C.char) (rc C.int) {
	o := lookupClient(c)
	if o == nil || value == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.setStringOption(opt, value)
}

//export tcp_client_set_on_message
func tcp_client_set_on_message(c *C.tcp_client, fn C.tcp_client_message_fn, ud unsafe.Pointer) {
	if o := lookupClient(c); o != nil {
		o.handler.update(func(cb *clientCallbacks) { cb.message, cb.messageUD = fn, ud })
	}
}

//export tcp_client_set_on_closed
func tcp_client_set_on_closed(c *C.tcp_client, fn C.tcp_client_closed_fn, ud unsafe.Pointer) {
	if o := lookupClient(c); o != nil {
		o.handler.update(func(cb *clientCallbacks) { cb.closed, cb.closedUD = fn, ud })
	}
}

//export tcp_client_set_on_error
func tcp_client_set_on_error(c *C.tcp_client, fn C.tcp_client_error_fn, ud unsafe.Pointer) {
	if o := lookupClient(c); o != nil {
		o.handler.update(func(cb *clientCallbacks) { cb.errorFn, cb.errorUD = fn, ud })
	}
}

func (o *clientObj) start(host *C.char, port C.int, files *engine.TLSFiles) C.int {
	if err := o.prepareStart(&o.handler); err != nil {
		return o.errs.result(err)
	}
	if host == nil {
		return o.errs.result(&engine.Error{Code: engine.ErrInvalidArg, Reason: "no host given"})
	}
	if files == nil {
		return o.errs.result(o.cl.Start(C.GoString(host), int(port)))
	}
	return o.errs.result(o.cl.StartTLS(C.GoString(host), int(port), *files))
}

//export tcp_client_start
func tcp_client_start(c *C.tcp_client, host *C.char, port C.int) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.start(host, port, nil)
}

//export tls_client_start
func tls_client_start(c *C.tcp_client, host *C.char, port C.int, ca, cert, key *C.char) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.start(host, port, &engine.TLSFiles{CA: optString(ca), Cert: optString(cert), Key: optString(key)})
}

//export tcp_client_is_running
func tcp_client_is_running(c *C.tcp_client) C.int {
	if o := lookupClient(c); o != nil && o.cl.Running() {
		return 1
	}
	return 0
}

//export tcp_client_stop
func tcp_client_stop(c *C.tcp_client) {
	if o := lookupClient(c); o != nil {
		defer catch(nil, &o.errs)
		o.cl.Stop()
	}
}

//export tcp_client_send
func tcp_client_send(c *C.tcp_client, data unsafe.Pointer, n C.size_t) (rc C.int) {
	o := lookupClient(c)
	if o == nil || (data == nil && n > 0) {
		return 0
	}
	defer catch(&rc, &o.errs)
	if err := o.cl.Send(goBytes(data, n)); err != nil {
		o.errs.set(err)
		return 0
	}
	return 1
}

//export tcp_client_flush
func tcp_client_flush(c *C.tcp_client, timeoutMS C.int) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.errs.result(o.cl.Flush(msDuration(timeoutMS)))
}

//export tcp_client_server_subj_part
func tcp_client_server_subj_part(c *C.tcp_client, nid C.int, buf *C.char, buflen C.size_t) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	v, err := o.cl.ServerSubjectPart(int(nid))
	if err != nil {
		return o.errs.result(err)
	}
	return copyOut(v, buf, buflen)
}

//export tcp_client_local_port
func tcp_client_local_port(c *C.tcp_client) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	p, err := o.cl.LocalPort()
	if err != nil {
		return C.int(engine.CodeOf(err))
	}
	return C.int(p)
}

//export tcp_client_last_error
func tcp_client_last_error(c *C.tcp_client, buf *C.char, buflen C.size_t) C.int {
	o := lookupClient(c)
	if o == nil {
		return copyOut("invalid client handle", buf, buflen)
	}
	return copyOut(o.errs.get(), buf, buflen)
}

//export tcp_client_poll
func tcp_client_poll(c *C.tcp_client, buf unsafe.Pointer, buflen C.size_t, used *C.size_t, timeoutMS C.int) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return C.int(engine.ErrInvalidArg)
	}
	defer catch(&rc, &o.errs)
	return o.poll(buf, buflen, used, timeoutMS)
}
