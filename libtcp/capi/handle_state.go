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
// for both: the last error, the options, the callback slots and the
// event-queue settings.
type handleState struct {
	ep    endpoint
	errs  lastError
	slots *slots

	mu    sync.Mutex // guards option changes, set and queue
	set   handleSettings
	queue *engine.EventQueue
}

func newHandleState(ep endpoint) handleState {
	return handleState{ep: ep, set: defaultHandleSettings(), slots: newSlots(defaultCallbackThreads)}
}

func (h *handleState) setIntOption(opt C.int, value C.longlong) C.int {
	h.mu.Lock()
	defer h.mu.Unlock()
	opts, q := h.ep.Options(), h.set
	if err := applyIntOption(&opts, &q, int(opt), int64(value)); err != nil {
		return h.errs.result(err)
	}
	if err := h.ep.SetOptions(opts); err != nil {
		return h.errs.result(err)
	}
	if q.callbackThreads != h.set.callbackThreads {
		h.slots.resize(q.callbackThreads)
	}
	h.set = q
	return h.errs.result(nil)
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
	if !h.set.queueEnabled {
		return h.ep.SetHandler(cb)
	}
	q := engine.NewEventQueue(h.set.queueLimit)
	if err := h.ep.SetHandler(q); err != nil {
		return err
	}
	if h.queue != nil {
		h.queue.CloseNotify() // the previous start's descriptor (documented)
	}
	h.queue = q
	return nil
}

// eventFD is tcp_server_event_fd and tcp_client_event_fd.
func (h *handleState) eventFD() C.int {
	q, err := h.liveQueue()
	if err != nil {
		return h.errs.result(err)
	}
	fd, err := q.NotifyFD()
	if err != nil {
		return h.errs.result(&engine.Error{Code: engine.ErrInternal, Reason: "eventfd", Err: err})
	}
	succeeded()
	return C.int(fd)
}

// release closes what the handle holds beyond its endpoint (at free).
func (h *handleState) release() {
	h.mu.Lock()
	q := h.queue
	h.mu.Unlock()
	if q != nil {
		q.CloseNotify()
	}
}

// liveQueue is the event queue of the current start, or why there is none.
func (h *handleState) liveQueue() (*engine.EventQueue, error) {
	h.mu.Lock()
	q, enabled := h.queue, h.set.queueEnabled
	h.mu.Unlock()
	switch {
	case q != nil:
		return q, nil
	case enabled:
		return nil, &engine.Error{Code: engine.ErrNotRunning, Reason: "not started yet"}
	}
	return nil, &engine.Error{Code: engine.ErrInvalidArg, Reason: "the event queue is not enabled (TCP_OPT_EVENT_QUEUE)"}
}

// poll is tcp_server_poll and tcp_client_poll.
func (h *handleState) poll(buf unsafe.Pointer, buflen C.size_t, used *C.size_t, timeoutMS C.int) C.int {
	if used != nil {
		*used = 0
	}
	q, err := h.liveQueue()
	if err != nil {
		if engine.CodeOf(err) == engine.ErrNotRunning {
			return failed(err)
		}
		return h.errs.result(err)
	}
	dst, err := goBytes(buf, buflen)
	if err != nil {
		return h.errs.result(err)
	}
	n, u, err := q.Poll(dst, msDuration(timeoutMS))
	if used != nil {
		*used = C.size_t(u)
	}
	if err != nil {
		if engine.CodeOf(err) == engine.ErrNotRunning {
			return failed(err)
		}
		return h.errs.result(err)
	}
	succeeded()
	return C.int(n)
}

func msDuration(ms C.int) time.Duration {
	if ms < 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}
