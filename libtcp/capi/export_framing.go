package main

/*
#include "bridge.h"
*/
import "C"

import (
	"encoding/binary"
	"unsafe"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// The framings beyond v2's two: each constructor makes the framing, then a
// server or client with it; bad arguments give NULL and a per-thread error.

func lengthFraming(prefix C.int, order C.int, maxLen C.size_t) (engine.Framing, error) {
	var bo binary.ByteOrder
	switch order {
	case 0:
		bo = binary.BigEndian
	case 1:
		bo = binary.LittleEndian
	default:
		return nil, invalidArg("byte order %d (want TCP_BIG_ENDIAN or TCP_LITTLE_ENDIAN)", int(order))
	}
	return engine.NewLengthPrefixed(int(prefix), bo, clampLen(maxLen))
}

func eolFraming(eol unsafe.Pointer, eolLen C.size_t, maxLen C.size_t, overlong C.int) (engine.Framing, error) {
	if eol == nil || eolLen == 0 || eolLen > engine.MaxEOLLength {
		return nil, invalidArg("end-of-line of %d bytes (want 1..%d, not NULL)", uint64(eolLen), engine.MaxEOLLength)
	}
	b := C.GoBytes(eol, C.int(eolLen))
	return engine.NewEOLLines(b, clampLen(maxLen), engine.Overlong(overlong))
}

func linesFraming(sendEOL *C.char, maxLen C.size_t, overlong C.int) (engine.Framing, error) {
	var eol []byte
	if sendEOL != nil {
		eol = []byte(C.GoString(sendEOL))
	}
	return engine.NewTextLines(eol, clampLen(maxLen), engine.Overlong(overlong))
}

func recordsFraming(length, maxLen C.size_t) (engine.Framing, error) {
	return engine.NewRecords(clampLen(length), clampLen(maxLen))
}

func serverWith(f engine.Framing, err error) *C.tcp_server {
	if err != nil {
		failed(err)
		return nil
	}
	succeeded()
	return newServer(f)
}

func clientWith(f engine.Framing, err error) *C.tcp_client {
	if err != nil {
		failed(err)
		return nil
	}
	succeeded()
	return newClient(f)
}

//export tcp_server_new_length_prefixed
func tcp_server_new_length_prefixed(prefix C.int, order C.int, maxLen C.size_t) *C.tcp_server {
	defer catch(nil, nil, 0)
	return serverWith(lengthFraming(prefix, order, maxLen))
}

//export tcp_server_new_eol
func tcp_server_new_eol(eol unsafe.Pointer, eolLen C.size_t, maxLen C.size_t, overlong C.int) *C.tcp_server {
	defer catch(nil, nil, 0)
	return serverWith(eolFraming(eol, eolLen, maxLen, overlong))
}

//export tcp_server_new_lines
func tcp_server_new_lines(sendEOL *C.char, maxLen C.size_t, overlong C.int) *C.tcp_server {
	defer catch(nil, nil, 0)
	return serverWith(linesFraming(sendEOL, maxLen, overlong))
}

//export tcp_server_new_records
func tcp_server_new_records(length, maxLen C.size_t) *C.tcp_server {
	defer catch(nil, nil, 0)
	return serverWith(recordsFraming(length, maxLen))
}

//export tcp_server_set_record_length
func tcp_server_set_record_length(s *C.tcp_server, id C.int, length C.size_t) C.int {
	return perClient(s, func(o *serverObj) error { return o.srv.SetRecordLength(int(id), clampLen(length)) })
}

//export tcp_client_new_length_prefixed
func tcp_client_new_length_prefixed(prefix C.int, order C.int, maxLen C.size_t) *C.tcp_client {
	defer catch(nil, nil, 0)
	return clientWith(lengthFraming(prefix, order, maxLen))
}

//export tcp_client_new_eol
func tcp_client_new_eol(eol unsafe.Pointer, eolLen C.size_t, maxLen C.size_t, overlong C.int) *C.tcp_client {
	defer catch(nil, nil, 0)
	return clientWith(eolFraming(eol, eolLen, maxLen, overlong))
}

//export tcp_client_new_lines
func tcp_client_new_lines(sendEOL *C.char, maxLen C.size_t, overlong C.int) *C.tcp_client {
	defer catch(nil, nil, 0)
	return clientWith(linesFraming(sendEOL, maxLen, overlong))
}

//export tcp_client_new_records
func tcp_client_new_records(length, maxLen C.size_t) *C.tcp_client {
	defer catch(nil, nil, 0)
	return clientWith(recordsFraming(length, maxLen))
}

//export tcp_client_set_record_length
func tcp_client_set_record_length(c *C.tcp_client, length C.size_t) C.int {
	o := lookupClient(c)
	if o == nil {
		return badHandle("client")
	}
	return o.errs.result(o.cl.SetRecordLength(clampLen(length)))
}
