package main

/*
#include "bridge.h"
*/
import "C"

import (
	"net/netip"
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
	o.handler.slots = o.slots
	return (*C.tcp_client)(newHandle(o))
}

//export tcp_client_new
func tcp_client_new() *C.tcp_client {
	defer catch(nil, nil, 0)
	return newClient(engine.Continuous{})
}

//export tcp_client_new_fragmented
func tcp_client_new_fragmented(delim C.char, maxLen C.size_t) *C.tcp_client {
	defer catch(nil, nil, 0)
	return newClient(engine.NewDelimited(byte(delim), clampLen(maxLen)))
}

//export tcp_client_free
func tcp_client_free(c *C.tcp_client) {
	defer catch(nil, nil, 0)
	if o := lookupClient(c); o != nil {
		o.cl.Stop()
		o.release()
		dropHandle(unsafe.Pointer(c))
	}
}

//export tcp_client_set_option
func tcp_client_set_option(c *C.tcp_client, opt C.int, value C.longlong) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	return o.setIntOption(opt, value)
}

//export tcp_client_set_option_str
func tcp_client_set_option_str(c *C.tcp_client, opt C.int, value *C.char) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	if value == nil {
		return o.errs.result(invalidArg("NULL string for option %d", int(opt)))
	}
	defer catch(&rc, &o.errs, internal)
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
		return o.errs.result(invalidArg("no host given"))
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
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	return o.start(host, port, nil)
}

//export tls_client_start
func tls_client_start(c *C.tcp_client, host *C.char, port C.int, ca, cert, key *C.char) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
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
		defer catch(nil, &o.errs, 0)
		o.cl.Stop()
	}
}

//export tcpgo_x_client_send
func tcpgo_x_client_send(c *C.tcp_client, data unsafe.Pointer, n C.size_t) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		badHandle("client")
		return 0
	}
	defer catch(&rc, &o.errs, 0)
	if o.send(data, n) != 0 {
		return 0
	}
	return 1
}

// send: called through bridge.c, which clears the thread's record (see
// serverObj.send).
func (o *clientObj) send(data unsafe.Pointer, n C.size_t) C.int {
	msg, err := goBytes(data, n)
	if err == nil {
		err = o.cl.Send(msg)
	}
	return o.errs.fail(err)
}

//export tcpgo_x_client_send_ex
func tcpgo_x_client_send_ex(c *C.tcp_client, data unsafe.Pointer, n C.size_t) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	return o.send(data, n)
}

//export tcpgo_x_client_send_msgs
func tcpgo_x_client_send_msgs(c *C.tcp_client, msgs *C.tcp_msg, count C.size_t) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	return sendMsgs(&o.errs, msgs, count, o.cl.SendEach)
}

//export tcp_client_queued
func tcp_client_queued(c *C.tcp_client) C.longlong {
	o := lookupClient(c)
	if o == nil {
		return C.longlong(badHandle("client"))
	}
	n, err := o.cl.Queued()
	if err != nil {
		return C.longlong(o.errs.result(err))
	}
	succeeded()
	return C.longlong(n)
}

//export tcp_client_pause
func tcp_client_pause(c *C.tcp_client) C.int {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	return o.errs.result(o.cl.Pause())
}

//export tcp_client_resume
func tcp_client_resume(c *C.tcp_client) C.int {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	return o.errs.result(o.cl.Resume())
}

//export tcp_client_conn_stats
func tcp_client_conn_stats(c *C.tcp_client, out *C.tcp_conn_stats, outSize C.size_t) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	st, err := o.cl.ConnStats()
	if err != nil {
		return o.errs.result(err)
	}
	v := connStatsC(st)
	return fillStats(unsafe.Pointer(out), outSize, unsafe.Pointer(&v), unsafe.Sizeof(v))
}

//export tcp_client_set_on_messages
func tcp_client_set_on_messages(c *C.tcp_client, fn C.tcp_client_messages_fn, ud unsafe.Pointer) {
	if o := lookupClient(c); o != nil {
		o.handler.update(func(c *clientCallbacks) { c.messages, c.msgsUD = fn, ud })
	}
}

//export tcp_client_set_on_message_ex
func tcp_client_set_on_message_ex(c *C.tcp_client, fn C.tcp_client_message_ex_fn, ud unsafe.Pointer) {
	if o := lookupClient(c); o != nil {
		o.handler.update(func(cb *clientCallbacks) { cb.messageEx, cb.msgExUD = fn, ud })
	}
}

//export tcp_client_set_on_closed_ex
func tcp_client_set_on_closed_ex(c *C.tcp_client, fn C.tcp_client_closed_ex_fn, ud unsafe.Pointer) {
	if o := lookupClient(c); o != nil {
		o.handler.update(func(cb *clientCallbacks) { cb.closedEx, cb.closedExU = fn, ud })
	}
}

//export tcp_client_set_on_ready
func tcp_client_set_on_ready(c *C.tcp_client, fn C.tcp_client_ready_fn, ud unsafe.Pointer) {
	if o := lookupClient(c); o != nil {
		o.handler.update(func(cb *clientCallbacks) { cb.ready, cb.readyUD = fn, ud })
	}
}

//export tcp_client_set_on_connect
func tcp_client_set_on_connect(c *C.tcp_client, fn C.tcp_client_connect_fn, ud unsafe.Pointer) {
	if o := lookupClient(c); o != nil {
		o.handler.update(func(cb *clientCallbacks) { cb.connect, cb.connectUD = fn, ud })
	}
}

//export tcp_client_flush
func tcp_client_flush(c *C.tcp_client, timeoutMS C.int) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	return o.errs.result(o.cl.Flush(msDuration(timeoutMS)))
}

//export tcp_client_server_subj_part
func tcp_client_server_subj_part(c *C.tcp_client, nid C.int, buf *C.char, buflen C.size_t) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	v, err := o.cl.ServerSubjectPart(int(nid))
	if err != nil {
		return o.errs.result(err)
	}
	succeeded()
	return copyOut(v, buf, buflen)
}

//export tcp_client_local_port
func tcp_client_local_port(c *C.tcp_client) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	p, err := o.cl.LocalPort()
	if err != nil {
		return failed(err)
	}
	succeeded()
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
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	return o.poll(buf, buflen, used, timeoutMS)
}

//export tcp_client_set_proxy_header
func tcp_client_set_proxy_header(c *C.tcp_client, version C.int, src, dst *C.char) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	opts := o.cl.Options()
	switch {
	case version == 0:
		opts.ProxyHeader = nil
	case version != 1 && version != 2:
		return o.errs.result(invalidArg("PROXY protocol version %d (want 0, 1 or 2)", int(version)))
	default:
		s, err1 := netip.ParseAddrPort(optString(src))
		d, err2 := netip.ParseAddrPort(optString(dst))
		if err1 != nil || err2 != nil {
			return o.errs.result(invalidArg("PROXY header addresses %q, %q: want ip:port", optString(src), optString(dst)))
		}
		opts.ProxyHeader = &engine.ProxyHeader{Version: byte(version), Src: s, Dst: d}
	}
	return o.errs.result(o.cl.SetOptions(opts))
}

//export tcp_client_event_fd
func tcp_client_event_fd(c *C.tcp_client) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	return o.eventFD()
}
