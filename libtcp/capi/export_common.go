package main

/*
#include "bridge.h"
*/
import "C"

import (
	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// Keep in step with TCPGO_VERSION_* in include/tcpgo.h (the tests compare).
const (
	versionMajor = 0
	versionMinor = 1
	versionPatch = 0
)

// Static C strings, allocated once and never freed.
var (
	versionC = C.CString("0.1.0")
	codeC    = map[engine.Code]*C.char{}
	unknownC = C.CString(engine.Code(-9999).String())
)

func init() {
	for _, c := range engine.Codes() {
		codeC[c] = C.CString(c.String())
	}
}

//export tcp_version
func tcp_version() *C.char { return versionC }

//export tcp_version_number
func tcp_version_number() C.int {
	return versionMajor*10000 + versionMinor*100 + versionPatch
}

//export tcp_strerror
func tcp_strerror(code C.int) *C.char {
	if s, ok := codeC[engine.Code(code)]; ok {
		return s
	}
	return unknownC
}

//export tcp_generate_certs
func tcp_generate_certs(dir, hosts *C.char) (rc C.int) {
	defer catch(&rc, nil)
	if dir == nil {
		return C.int(engine.ErrInvalidArg)
	}
	return C.int(engine.CodeOf(engine.GenerateTestCerts(C.GoString(dir), optString(hosts))))
}
