package main

/*
#include "bridge.h"
*/
import "C"

import (
	"unsafe"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// Sending beyond tcp_send_msg: files, scatter-gather, lines.

// fileProgress delivers a file's progress to its C callback.
type fileProgress struct {
	fn    C.tcp_file_progress_fn
	ud    unsafe.Pointer
	id    int
	slots *slots
	total int64
}

func (p *fileProgress) Progress(sent, total int64) {
	p.total = total
	p.slots.enter()
	C.tcpgo_call_file_progress(p.fn, p.ud, C.int(p.id), C.longlong(sent), C.longlong(total), 1)
	p.slots.leave()
}

func (p *fileProgress) Done(err error) {
	status, sent := C.int(0), p.total
	if err != nil {
		status, sent = C.int(engine.CodeOf(err)), -1
	}
	p.slots.enter()
	C.tcpgo_call_file_progress(p.fn, p.ud, C.int(p.id), C.longlong(sent), C.longlong(p.total), status)
	p.slots.leave()
}

func progressOf(fn C.tcp_file_progress_fn, ud unsafe.Pointer, id int, s *slots) engine.FileProgress {
	if fn == nil {
		return nil
	}
	return &fileProgress{fn: fn, ud: ud, id: id, slots: s}
}

// iovecs views C's buffers for the duration of a call.
func iovecs(iov *C.tcp_iovec, n C.int) ([][]byte, error) {
	if n < 0 || (n > 0 && iov == nil) || n > 1<<16 {
		return nil, invalidArg("%d buffers at %p", int(n), iov)
	}
	out := make([][]byte, 0, int(n))
	for _, v := range unsafe.Slice(iov, int(n)) {
		b, err := goBytes(unsafe.Pointer(v.base), v.len)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

//export tcp_server_send_file
func tcp_server_send_file(s *C.tcp_server, id C.int, path *C.char, offset, length C.longlong, fn C.tcp_file_progress_fn, ud unsafe.Pointer) C.int {
	return perClient(s, func(o *serverObj) error {
		if path == nil {
			return invalidArg("NULL path")
		}
		return o.srv.SendFile(int(id), C.GoString(path), int64(offset), int64(length), progressOf(fn, ud, int(id), o.slots))
	})
}

//export tcp_server_sendv
func tcp_server_sendv(s *C.tcp_server, id C.int, iov *C.tcp_iovec, n C.int) C.int {
	return perClient(s, func(o *serverObj) error {
		bufs, err := iovecs(iov, n)
		if err != nil {
			return err
		}
		return o.srv.SendV(int(id), bufs)
	})
}

//export tcp_server_send_line
func tcp_server_send_line(s *C.tcp_server, id C.int, line *C.char) C.int {
	return perClient(s, func(o *serverObj) error {
		if line == nil {
			return invalidArg("NULL line")
		}
		return o.srv.SendLine(int(id), []byte(C.GoString(line)))
	})
}

// perClientCall runs a client call that returns only an error.
func perClientCall(c *C.tcp_client, f func(o *clientObj) error) (rc C.int) {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	defer catch(&rc, &o.errs, internal)
	return o.errs.result(f(o))
}

//export tcp_client_send_file
func tcp_client_send_file(c *C.tcp_client, path *C.char, offset, length C.longlong, fn C.tcp_file_progress_fn, ud unsafe.Pointer) C.int {
	return perClientCall(c, func(o *clientObj) error {
		if path == nil {
			return invalidArg("NULL path")
		}
		return o.cl.SendFile(C.GoString(path), int64(offset), int64(length), progressOf(fn, ud, 0, o.slots))
	})
}

//export tcp_client_sendv
func tcp_client_sendv(c *C.tcp_client, iov *C.tcp_iovec, n C.int) C.int {
	return perClientCall(c, func(o *clientObj) error {
		bufs, err := iovecs(iov, n)
		if err != nil {
			return err
		}
		return o.cl.SendV(bufs)
	})
}

//export tcp_client_send_line
func tcp_client_send_line(c *C.tcp_client, line *C.char) C.int {
	return perClientCall(c, func(o *clientObj) error {
		if line == nil {
			return invalidArg("NULL line")
		}
		return o.cl.SendLine([]byte(C.GoString(line)))
	})
}
