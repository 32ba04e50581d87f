package main

/*
#include "bridge.h"
*/
import "C"

import (
	"sync"
	"time"
	"unsafe"

	"github.com/tcpgo/tcpgo/libtcp/engine"
)

// endpoint is what engine.Server and engine.Client have in common for the
// handle machinery below.
type endpoint interface {
	Options() engine.Options
	SetOptions(engine.Options) error
	SetHandler(engine.Handler) error
	Running() bool
}

// handleState is the part of a server or client handle that is the same
// for both: the last error, the options and the event-queue settings.
type handleState struct {
	ep   endpoint
	errs lastError

	mu    sync.Mutex // guards option changes, qset and queue
	qset  queueSettings
	queue *engine.EventQueue
}

func newHandleState(ep endpoint) handleState {
	return handleState{ep: ep, qset: defaultQueueSettings()}
}

func (h *handleState) setIntOption(opt C.int, value C.longlong) C.int {
	h.mu.Lock()
	defer h.mu.Unlock()
	opts, q := h.ep.Options(), h.qset
	if err := applyIntOption(&opts, &q, int(opt), int64(value)); err != nil {
		return h.errs.result(err)
	}
	if err := h.ep.SetOptions(opts); err != nil {
		return h.errs.result(err)
	}
	h.qset = q
	return 0
}

func (h *handleState) setStringOption(opt C.int, value *C.char) C.int {
	h.mu.Lock()
	defer h.mu.Unlock()
	opts := h.ep.Options()
	if err := applyStringOption(&opts, int(opt), C.GoString(value)); err != nil {
		return h.errs.result(err)
	}
	return h.errs.result(h.ep.SetOptions(opts))
}

// prepareStart installs the callback handler cb, or a fresh event queue when
// TCP_OPT_EVENT_QUEUE is set.
func (h *handleState) prepareStart(cb engine.Handler) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ep.Running() {
		return &engine.Error{Code: engine.ErrAlreadyRunning, Reason: "already running"}
	}
	if !h.qset.enabled {
		return h.ep.SetHandler(cb)
	}
	q := engine.NewEventQueue(h.qset.limit)
	if err := h.ep.SetHandler(q); err != nil {
		return err
	}
	h.queue = q
	return nil
}

// poll is tcp_server_poll and tcp_client_poll.
func (h *handleState) poll(buf unsafe.Pointer, buflen C.size_t, used *C.size_t, timeoutMS C.int) C.int {
	if used != nil {
		*used = 0
	}
	h.mu.Lock()
	q, enabled := h.queue, h.qset.enabled
	h.mu.Unlock()
	if q == nil {
		if enabled {
			return C.int(engine.ErrNotRunning) // not started yet
		}
		return h.errs.result(&engine.Error{Code: engine.ErrInvalidArg, Reason: "the event queue is not enabled (TCP_OPT_EVENT_QUEUE)"})
	}
	if buf == nil && buflen > 0 {
		return C.int(engine.ErrInvalidArg)
	}
	n, u, err := q.Poll(goBytes(buf, buflen), msDuration(timeoutMS))
	if used != nil {
		*used = C.size_t(u)
	}
	if err != nil {
		if engine.CodeOf(err) == engine.ErrNotRunning {
			return C.int(engine.ErrNotRunning)
		}
		return h.errs.result(err)
	}
	return C.int(n)
}

func msDuration(ms C.int) time.Duration {
	if ms < 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}
