package main

/*
#include "bridge.h"
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"time"
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
	o.handler.slots = o.slots
	return (*C.tcp_server)(newHandle(o))
}

//export tcp_server_new
func tcp_server_new() (h *C.tcp_server) {
	defer catch(nil, nil, 0)
	return newServer(engine.Continuous{})
}

//export tcp_server_new_fragmented
func tcp_server_new_fragmented(delim C.char, maxLen C.size_t) (h *C.tcp_server) {
	defer catch(nil, nil, 0)
	return newServer(engine.NewDelimited(byte(delim), clampLen(maxLen)))
}

//export tcp_server_free
func tcp_server_free(s *C.tcp_server) {
	defer catch(nil, nil, 0)
	if o := lookupServer(s); o != nil {
		o.srv.Stop()
		o.release()
		dropHandle(unsafe.Pointer(s))
	}
}

//export tcp_server_set_option
func tcp_server_set_option(s *C.tcp_server, opt C.int, value C.longlong) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.setIntOption(opt, value)
}

//export tcp_server_set_option_str
func tcp_server_set_option_str(s *C.tcp_server, opt C.int, value *C.char) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	if value == nil {
		return o.errs.result(invalidArg("NULL string for option %d", int(opt)))
	}
	defer catch(&rc, &o.errs, internal)
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

//export tcp_server_set_on_message_ex
func tcp_server_set_on_message_ex(s *C.tcp_server, fn C.tcp_message_ex_fn, ud unsafe.Pointer) {
	if o := lookupServer(s); o != nil {
		o.handler.update(func(c *serverCallbacks) { c.messageEx, c.messageExUD = fn, ud })
	}
}

//export tcp_server_set_on_messages
func tcp_server_set_on_messages(s *C.tcp_server, fn C.tcp_messages_fn, ud unsafe.Pointer) {
	if o := lookupServer(s); o != nil {
		o.handler.update(func(c *serverCallbacks) { c.messages, c.messagesUD = fn, ud })
	}
}

//export tcp_server_set_on_closed_ex
func tcp_server_set_on_closed_ex(s *C.tcp_server, fn C.tcp_closed_ex_fn, ud unsafe.Pointer) {
	if o := lookupServer(s); o != nil {
		o.handler.update(func(c *serverCallbacks) { c.closedEx, c.closedExUD = fn, ud })
	}
}

//export tcp_server_set_on_ready
func tcp_server_set_on_ready(s *C.tcp_server, fn C.tcp_ready_fn, ud unsafe.Pointer) {
	if o := lookupServer(s); o != nil {
		o.handler.update(func(c *serverCallbacks) { c.ready, c.readyUD = fn, ud })
	}
}

//export tcp_server_set_on_accept
func tcp_server_set_on_accept(s *C.tcp_server, fn C.tcp_accept_fn, ud unsafe.Pointer) {
	if o := lookupServer(s); o != nil {
		o.handler.update(func(c *serverCallbacks) { c.accept, c.acceptUD = fn, ud })
		if fn == nil {
			o.srv.SetAcceptFunc(nil)
		} else {
			o.srv.SetAcceptFunc(o.handler.accept)
		}
	}
}

func (o *serverObj) setList(list *C.char, set func([]netip.Prefix)) C.int {
	parsed, err := engine.ParseAddrList(optString(list))
	if err != nil {
		return o.errs.result(err)
	}
	set(parsed)
	return o.errs.result(nil)
}

//export tcp_server_set_allowed
func tcp_server_set_allowed(s *C.tcp_server, list *C.char) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.setList(list, o.srv.SetAllowed)
}

//export tcp_server_set_blocked
func tcp_server_set_blocked(s *C.tcp_server, list *C.char) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.setList(list, o.srv.SetBlocked)
}

//export tcp_server_start
func tcp_server_start(s *C.tcp_server, port C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	if err := o.prepareStart(&o.handler); err != nil {
		return o.errs.result(err)
	}
	return o.errs.result(o.srv.Start(int(port)))
}

//export tls_server_start
func tls_server_start(s *C.tcp_server, port C.int, ca, cert, key *C.char) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
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
		return badHandle("server")
	}
	if p := o.srv.Port(); p > 0 {
		succeeded()
		return C.int(p)
	}
	return failed(&engine.Error{Code: engine.ErrNotRunning, Reason: "server not listening"})
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
		defer catch(nil, &o.errs, 0)
		o.srv.Stop()
	}
}

// send is the shared body of tcp_send_msg and tcp_server_send_ex. These and
// the other per-message sends are called through bridge.c, which clears the
// thread's error record on the C side (see there): they only record
// failures.
func (o *serverObj) send(id C.int, data unsafe.Pointer, n C.size_t) C.int {
	msg, err := goBytes(data, n)
	if err == nil {
		err = o.srv.Send(int(id), msg)
	}
	return o.errs.fail(err)
}

//export tcpgo_x_send_msg
func tcpgo_x_send_msg(s *C.tcp_server, id C.int, data unsafe.Pointer, n C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		badHandle("server")
		return 0
	}
	defer catch(&rc, &o.errs, 0)
	if o.send(id, data, n) != 0 {
		return 0
	}
	return 1
}

//export tcpgo_x_server_send_ex
func tcpgo_x_server_send_ex(s *C.tcp_server, id C.int, data unsafe.Pointer, n C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.send(id, data, n)
}

//export tcpgo_x_server_send_batch
func tcpgo_x_server_send_batch(s *C.tcp_server, buf unsafe.Pointer, n C.size_t, count C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	b, err := goBytes(buf, n)
	if err != nil {
		return o.errs.fail(err)
	}
	sent, err := sendRecords(b, int(min(uint64(count), math.MaxInt32)), o.srv.Send)
	if err != nil {
		code := o.errs.fail(err)
		if code == C.int(engine.ErrInvalidArg) { // a cut-off buffer
			return code
		}
	}
	return C.int(sent)
}

// maxMsgs bounds the count of tcp_*_send_msgs: the result is an int.
const maxMsgs = math.MaxInt32

// msgList views C's tcp_msg array for the duration of a call.
func msgList(msgs *C.tcp_msg, count C.size_t) ([]C.tcp_msg, error) {
	if count == 0 {
		return nil, nil
	}
	if msgs == nil || uint64(count) > maxMsgs {
		return nil, invalidArg("%d messages at %p", uint64(count), msgs)
	}
	return unsafe.Slice(msgs, int(count)), nil
}

// sendMsgs queues msgs in order with sendEach (one engine call for all)
// until one is refused; it returns how many were queued, or a negative
// code when none could be tried. A message with NULL data and a length
// is refused in its turn, as the engine's refusals are.
func sendMsgs(l *lastError, msgs *C.tcp_msg, count C.size_t, sendEach func(n int, msg func(int) []byte) (int, error)) C.int {
	list, err := msgList(msgs, count)
	if err != nil {
		return l.fail(err)
	}
	valid, badErr := len(list), error(nil)
	for i := range list {
		if _, err := goBytes(unsafe.Pointer(list[i].data), list[i].len); err != nil {
			valid, badErr = i, err
			break
		}
	}
	sent, err := sendEach(valid, func(i int) []byte { // checked above
		return unsafe.Slice((*byte)(unsafe.Pointer(list[i].data)), int(list[i].len))
	})
	if err == nil && sent == valid {
		err = badErr
	}
	if err != nil {
		l.fail(err)
	}
	return C.int(sent)
}

//export tcpgo_x_server_send_msgs
func tcpgo_x_server_send_msgs(s *C.tcp_server, id C.int, msgs *C.tcp_msg, count C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return sendMsgs(&o.errs, msgs, count, func(n int, msg func(int) []byte) (int, error) { return o.srv.SendEach(int(id), n, msg) })
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
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.errs.result(o.srv.Flush(int(id), msDuration(timeoutMS)))
}

//export tcp_server_broadcast
func tcp_server_broadcast(s *C.tcp_server, data unsafe.Pointer, n C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		badHandle("server")
		return 0
	}
	defer catch(&rc, &o.errs, 0)
	msg, err := goBytes(data, n)
	if err != nil {
		o.errs.result(err)
		return 0
	}
	succeeded()
	return C.int(o.srv.Broadcast(msg))
}

//export tcp_server_close_client
func tcp_server_close_client(s *C.tcp_server, id C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.errs.result(o.srv.CloseClient(int(id)))
}

//export tcp_server_client_ids
func tcp_server_client_ids(s *C.tcp_server, ids *C.int, max C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		badHandle("server")
		return 0
	}
	defer catch(&rc, &o.errs, 0)
	all := o.srv.ClientIDs()
	if ids != nil && max > 0 {
		dst := unsafe.Slice(ids, int(min(uint64(max), uint64(len(all)))))
		for i := range dst {
			dst[i] = C.int(all[i])
		}
	}
	succeeded()
	return C.int(len(all))
}

//export tcp_server_client_ip
func tcp_server_client_ip(s *C.tcp_server, id C.int, buf *C.char, buflen C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	ip, _, err := o.srv.ClientAddr(int(id))
	if err != nil {
		return noClient(o, err)
	}
	succeeded()
	return copyOut(ip, buf, buflen)
}

// noClient reports look-ups on a stopped server as "no such client", the
// answer the header documents for them.
func noClient(o *serverObj, err error) C.int {
	if engine.CodeOf(err) == engine.ErrNotRunning {
		err = &engine.Error{Code: engine.ErrNoClient, Reason: err.Error()}
	}
	return o.errs.result(err)
}

//export tcp_server_client_port
func tcp_server_client_port(s *C.tcp_server, id C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	_, port, err := o.srv.ClientAddr(int(id))
	if err != nil {
		return noClient(o, err)
	}
	succeeded()
	return C.int(port)
}

//export get_subj_part
func get_subj_part(s *C.tcp_server, id C.int, nid C.int, buf *C.char, buflen C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	v, err := o.srv.SubjectPart(int(id), int(nid))
	if err != nil {
		return noClient(o, err)
	}
	succeeded()
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
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.poll(buf, buflen, used, timeoutMS)
}

//export tcp_server_event_fd
func tcp_server_event_fd(s *C.tcp_server) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.eventFD()
}

//export tcp_server_queued
func tcp_server_queued(s *C.tcp_server, id C.int) (rc C.longlong) {
	o := lookupServer(s)
	if o == nil {
		return C.longlong(badHandle("server"))
	}
	defer func() {
		var r C.int
		catch(&r, &o.errs, internal)
		if r != 0 {
			rc = C.longlong(r)
		}
	}()
	n, err := o.srv.Queued(int(id))
	if err != nil {
		return C.longlong(noClient(o, err))
	}
	succeeded()
	return C.longlong(n)
}

// perClient runs a call that takes a client id and returns only an error.
func perClient(s *C.tcp_server, f func(o *serverObj) error) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	if err := f(o); err != nil {
		return noClient(o, err)
	}
	return o.errs.result(nil)
}

//export tcp_server_pause
func tcp_server_pause(s *C.tcp_server, id C.int) C.int {
	return perClient(s, func(o *serverObj) error { return o.srv.Pause(int(id)) })
}

//export tcp_server_resume
func tcp_server_resume(s *C.tcp_server, id C.int) C.int {
	return perClient(s, func(o *serverObj) error { return o.srv.Resume(int(id)) })
}

//export tcp_server_set_idle_timeout
func tcp_server_set_idle_timeout(s *C.tcp_server, id C.int, ms C.int) C.int {
	if ms < 0 {
		return failed(invalidArg("negative idle timeout %d ms", int(ms)))
	}
	return perClient(s, func(o *serverObj) error {
		return o.srv.SetIdleTimeout(int(id), time.Duration(ms)*time.Millisecond)
	})
}

//export tcp_server_set_conn_data
func tcp_server_set_conn_data(s *C.tcp_server, id C.int, data unsafe.Pointer) C.int {
	return perClient(s, func(o *serverObj) error { return o.srv.SetUser(int(id), data) })
}

//export tcp_server_conn_data
func tcp_server_conn_data(s *C.tcp_server, id C.int) unsafe.Pointer {
	o := lookupServer(s)
	if o == nil {
		badHandle("server")
		return nil
	}
	v, err := o.srv.User(int(id))
	if err != nil {
		noClient(o, err)
		return nil
	}
	succeeded()
	return connData(v)
}

//export tcp_server_stop_listening
func tcp_server_stop_listening(s *C.tcp_server) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.errs.result(o.srv.StopListening())
}

//export tcp_server_shutdown
func tcp_server_shutdown(s *C.tcp_server, timeoutMS C.int) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	return o.errs.result(o.srv.Shutdown(msDuration(timeoutMS)))
}

// fillStats copies the fields of src (a C struct value) that fit into the
// caller's out_size bytes, so that old callers keep working when fields are
// appended.
func fillStats(out unsafe.Pointer, outSize C.size_t, src unsafe.Pointer, size uintptr) C.int {
	if out == nil {
		return failed(invalidArg("NULL stats pointer"))
	}
	n := min(uintptr(outSize), size)
	copy(unsafe.Slice((*byte)(out), n), unsafe.Slice((*byte)(src), n))
	succeeded()
	return 0
}

//export tcp_server_get_stats
func tcp_server_get_stats(s *C.tcp_server, out *C.tcp_server_stats, outSize C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	st := o.srv.Stats()
	v := C.tcp_server_stats{
		active: C.ulonglong(st.Active), established: C.ulonglong(st.Established),
		accepted: C.ulonglong(st.Accepted), refused: C.ulonglong(st.Refused),
		refused_limit: C.ulonglong(st.RefusedLimit), handshake_failed: C.ulonglong(st.HandshakeFailed),
		timed_out: C.ulonglong(st.TimedOut), closed_for_limits: C.ulonglong(st.ClosedForLimits),
		accept_errors: C.ulonglong(st.AcceptErrors),
		bytes_in:      C.ulonglong(st.BytesIn), bytes_out: C.ulonglong(st.BytesOut),
		msgs_in: C.ulonglong(st.MsgsIn), msgs_out: C.ulonglong(st.MsgsOut),
		memory_used: C.ulonglong(st.MemoryUsed),
	}
	return fillStats(unsafe.Pointer(out), outSize, unsafe.Pointer(&v), unsafe.Sizeof(v))
}

func connStatsC(st engine.ConnStats) C.tcp_conn_stats {
	return C.tcp_conn_stats{
		bytes_in: C.ulonglong(st.BytesIn), bytes_out: C.ulonglong(st.BytesOut),
		msgs_in: C.ulonglong(st.MsgsIn), msgs_out: C.ulonglong(st.MsgsOut),
		connected_unix_ms: C.longlong(st.Connected.UnixMilli()),
		queued:            C.ulonglong(st.Queued),
	}
}

//export tcp_server_conn_stats
func tcp_server_conn_stats(s *C.tcp_server, id C.int, out *C.tcp_conn_stats, outSize C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	st, err := o.srv.ConnStats(int(id))
	if err != nil {
		return noClient(o, err)
	}
	v := connStatsC(st)
	return fillStats(unsafe.Pointer(out), outSize, unsafe.Pointer(&v), unsafe.Sizeof(v))
}

//export tcp_server_proxy_tlv
func tcp_server_proxy_tlv(s *C.tcp_server, id C.int, typ C.int, buf unsafe.Pointer, buflen C.size_t) (rc C.int) {
	o := lookupServer(s)
	if o == nil {
		return badHandle("server")
	}
	defer catch(&rc, &o.errs, internal)
	v, err := o.srv.ProxyTLV(int(id), int(typ))
	if err != nil {
		return noClient(o, err)
	}
	if dst, err := goBytes(buf, buflen); err == nil {
		copy(dst, v)
	}
	succeeded()
	return C.int(len(v))
}
