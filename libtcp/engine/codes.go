// Package engine is tcpgo's TCP and TLS client/server engine. It is plain Go,
// usable without cgo; libtcp/capi exports it to C.
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Code is a start code or error code. The values are part of the C ABI
// (include/tcpgo.h): start codes are those of nilshenrich/TCP_ServerClient v2,
// other errors are negative.
type Code int

// Start codes.
const (
	StartOK            Code = 0
	StartWrongPort     Code = 10
	StartSetContext    Code = 20
	StartWrongCAPath   Code = 30
	StartWrongCertPath Code = 31
	StartWrongKeyPath  Code = 32
	StartWrongCA       Code = 33
	StartWrongCert     Code = 34
	StartWrongKey      Code = 35
	StartCreateSocket  Code = 40
	StartSetSocketOpt  Code = 41
	StartBindPort      Code = 42
	StartListen        Code = 43
	StartConnect       Code = 50
	StartConnectInit   Code = 60
)

// Error codes.
const (
	ErrAlreadyRunning    Code = -1
	ErrInvalidArg        Code = -2
	ErrNoClient          Code = -3
	ErrNoField           Code = -4
	ErrNotRunning        Code = -5
	ErrInternal          Code = -6
	ErrMessageTooLong    Code = -7
	ErrIO                Code = -8
	ErrHandshake         Code = -9
	ErrBufferTooSmall    Code = -10
	ErrUnknownOption     Code = -11
	ErrTimeout           Code = -12
	ErrContainsDelimiter Code = -13
	ErrQueueFull         Code = -14
	ErrFile              Code = -15
	ErrMemoryBudget      Code = -16
	ErrRefused           Code = -17
	ErrProxy             Code = -18
	ErrAccept            Code = -19
)

var codeText = map[Code]string{
	StartOK:              "success",
	StartWrongPort:       "wrong port number",
	StartSetContext:      "TLS context could not be set up",
	StartWrongCAPath:     "CA certificate file not found or unreadable",
	StartWrongCertPath:   "certificate file not found or unreadable",
	StartWrongKeyPath:    "private key file not found or unreadable",
	StartWrongCA:         "CA certificate file holds no valid certificate",
	StartWrongCert:       "certificate file holds no valid certificate",
	StartWrongKey:        "private key invalid or not matching the certificate",
	StartCreateSocket:    "socket could not be created",
	StartSetSocketOpt:    "socket option could not be set",
	StartBindPort:        "socket could not be bound to the port (in use?)",
	StartListen:          "socket could not listen",
	StartConnect:         "connection to the server failed",
	StartConnectInit:     "connection initialisation (TLS handshake) failed",
	ErrAlreadyRunning:    "already running",
	ErrInvalidArg:        "invalid argument",
	ErrNoClient:          "no such client",
	ErrNoField:           "no such certificate field",
	ErrNotRunning:        "not running",
	ErrInternal:          "internal error",
	ErrMessageTooLong:    "message too long",
	ErrIO:                "connection read or write failed",
	ErrHandshake:         "TLS handshake failed",
	ErrBufferTooSmall:    "buffer too small",
	ErrUnknownOption:     "unknown option",
	ErrTimeout:           "timed out",
	ErrContainsDelimiter: "message contains the delimiter",
	ErrQueueFull:         "send queue full",
	ErrFile:              "file could not be read or written",
	ErrMemoryBudget:      "memory budget used up",
	ErrRefused:           "connection refused",
	ErrProxy:             "PROXY protocol header missing, malformed or untrusted",
	ErrAccept:            "accept failed",
}

// Codes lists every code, for exporting descriptions.
func Codes() []Code {
	out := make([]Code, 0, len(codeText))
	for c := range codeText {
		out = append(out, c)
	}
	return out
}

// String describes the code in a few words.
func (c Code) String() string {
	if t, ok := codeText[c]; ok {
		return t
	}
	return "unknown error code"
}

// Error is an engine failure: a code for programs and a reason for people.
type Error struct {
	Code   Code
	Reason string // detail: a path, an OS error...
	Err    error  // the underlying error, if any
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return e.Code.String()
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// Errno is the OS error number behind err, or 0.
func Errno(err error) int {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return int(errno)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return int(syscall.ETIMEDOUT)
	}
	return 0
}

// CloseReason says why a connection ended (enum tcp_close_reason).
type CloseReason int

const (
	ClosePeer           CloseReason = 1
	CloseReset          CloseReason = 2
	CloseIdleTimeout    CloseReason = 3
	CloseMessageTimeout CloseReason = 4
	CloseWriteTimeout   CloseReason = 5
	CloseStopped        CloseReason = 6
	CloseLocal          CloseReason = 7
	CloseMessageTooLong CloseReason = 8
	CloseTLS            CloseReason = 9
	CloseMemoryBudget   CloseReason = 10
	CloseInternal       CloseReason = 11
)

var reasonText = map[CloseReason]string{
	ClosePeer:           "peer closed",
	CloseReset:          "connection reset or broken",
	CloseIdleTimeout:    "idle timeout",
	CloseMessageTimeout: "message timeout",
	CloseWriteTimeout:   "write timeout",
	CloseStopped:        "stopped",
	CloseLocal:          "closed locally",
	CloseMessageTooLong: "message too long",
	CloseTLS:            "TLS failure",
	CloseMemoryBudget:   "memory budget",
	CloseInternal:       "internal error",
}

// CloseReasons lists every reason, for exporting descriptions.
func CloseReasons() []CloseReason {
	out := make([]CloseReason, 0, len(reasonText))
	for r := range reasonText {
		out = append(out, r)
	}
	return out
}

func (r CloseReason) String() string {
	if t, ok := reasonText[r]; ok {
		return t
	}
	return "unknown close reason"
}

func newError(code Code, err error, format string, args ...any) *Error {
	reason := fmt.Sprintf(format, args...)
	if err != nil {
		// Say each thing once: an *Error of the same code contributes its
		// reason only, and an OS error that starts with our own words
		// ("read: read: ...") replaces them.
		text := err.Error()
		if e, ok := err.(*Error); ok && e.Code == code && e.Reason != "" {
			text = e.Reason
		}
		switch {
		case reason == "":
			reason = text
		case text == reason || strings.HasPrefix(text, reason+": "):
			reason = text
		default:
			reason += ": " + text
		}
	}
	return &Error{Code: code, Reason: reason, Err: err}
}

// CodeOf returns the code of err: StartOK for nil, the Code of an *Error,
// ErrInternal for anything else.
func CodeOf(err error) Code {
	if err == nil {
		return StartOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ErrInternal
}
