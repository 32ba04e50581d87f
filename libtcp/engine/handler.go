package engine

import "time"

// Handler receives a server's or client's events. For one connection the
// calls come from one goroutine, in order: Established, Message..., Closed
// exactly once. Different connections call in parallel. A client reports
// with id 0 and has no Established.
//
// Message's data aliases the receive buffer: it is valid only during the
// call. Handlers may call any method of the Server or Client, Stop included.
type Handler interface {
	Established(id int)
	Message(id int, data []byte)
	Closed(id int)
	// Error reports a problem before the connection closes; id is 0 for a
	// connection that never became established (failed TLS handshake).
	Error(id int, err *Error)
}

// lifecycle is implemented by handlers that need to know when their owner
// starts and stops (the event queue, to release blocked producers).
type lifecycle interface {
	started()
	stopping()
	stopped()
}

// HandlerFuncs adapts plain functions to Handler; nil fields are skipped.
type HandlerFuncs struct {
	OnEstablished func(id int)
	OnMessage     func(id int, data []byte)
	OnClosed      func(id int)
	OnError       func(id int, err *Error)

	OnMessageEx func(id int, data []byte, partial bool, user any)
	OnClosedEx  func(id int, reason CloseReason, user any)
	OnReady     func(id int, user any)
	OnConnect   func(attempt int, err error)
}

func (h HandlerFuncs) Established(id int) {
	if h.OnEstablished != nil {
		h.OnEstablished(id)
	}
}

func (h HandlerFuncs) Message(id int, data []byte) {
	if h.OnMessage != nil {
		h.OnMessage(id, data)
	}
}

func (h HandlerFuncs) Closed(id int) {
	if h.OnClosed != nil {
		h.OnClosed(id)
	}
}

func (h HandlerFuncs) Error(id int, err *Error) {
	if h.OnError != nil {
		h.OnError(id, err)
	}
}

// ExtHandler is a Handler that also receives what v2-style handlers cannot:
// the connection's user value (SetUser), parts of overlong messages, why a
// connection closed, and when a refused send may be retried. When a handler
// implements it, MessageEx and ClosedEx replace Message and Closed.
type ExtHandler interface {
	Handler
	MessageEx(id int, data []byte, partial bool, user any)
	ClosedEx(id int, reason CloseReason, user any)
	// Ready: the send queue drained to Options.SendLowWater after a send to
	// this connection was refused.
	Ready(id int, user any)
}

// BatchHandler is an ExtHandler that can take the messages of one read in
// one call instead of one MessageEx call each (fewer calls, e.g. fewer
// crossings into C). WantsBatch is asked before every read's decoding; when
// it says yes, Messages receives that read's messages: each Part is
// buf[Off:Off+Len], in order, buf valid only during the call. A pause
// requested during the call takes effect after it (the batch was already
// read); messages a framing did not decode in place still come one by one
// through MessageEx, in order with the batches.
type BatchHandler interface {
	ExtHandler
	WantsBatch() bool
	Messages(id int, buf []byte, parts []Part, user any)
}

// Part is one message of a batch (BatchHandler).
type Part struct {
	Off, Len int
	Partial  bool // a part of a message over the framing's limit, not its end
}

// ConnectHandler is implemented by client handlers that want to hear of
// reconnection attempts (Options.Reconnect): err is nil on success.
type ConnectHandler interface {
	Connect(attempt int, err error)
}

// MessageEx, ClosedEx and Ready make HandlerFuncs an ExtHandler: the Ex
// functions when set, else the plain ones.
func (h HandlerFuncs) MessageEx(id int, data []byte, partial bool, user any) {
	if h.OnMessageEx != nil {
		h.OnMessageEx(id, data, partial, user)
	} else if h.OnMessage != nil {
		h.OnMessage(id, data)
	}
}

func (h HandlerFuncs) ClosedEx(id int, reason CloseReason, user any) {
	if h.OnClosedEx != nil {
		h.OnClosedEx(id, reason, user)
	} else if h.OnClosed != nil {
		h.OnClosed(id)
	}
}

func (h HandlerFuncs) Ready(id int, user any) {
	if h.OnReady != nil {
		h.OnReady(id, user)
	}
}

func (h HandlerFuncs) Connect(attempt int, err error) {
	if h.OnConnect != nil {
		h.OnConnect(attempt, err)
	}
}

// events adapts any Handler to the full set of events.
type events struct {
	h     Handler
	ext   ExtHandler
	batch BatchHandler
}

func eventsOf(h Handler) events {
	ext, _ := h.(ExtHandler)
	batch, _ := h.(BatchHandler)
	return events{h: h, ext: ext, batch: batch}
}

func (e events) message(c *conn, data []byte, partial bool) {
	if e.ext != nil {
		e.ext.MessageEx(c.id, data, partial, c.User())
	} else {
		e.h.Message(c.id, data)
	}
}

func (e events) closed(c *conn, reason CloseReason) {
	if e.ext != nil {
		e.ext.ClosedEx(c.id, reason, c.User())
	} else {
		e.h.Closed(c.id)
	}
}

func (e events) ready(c *conn) {
	if e.ext != nil {
		e.ext.Ready(c.id, c.User())
	}
}

// addrHandler is implemented by handlers that want the peer's address with
// the established event (the event queue puts it in the record).
type addrHandler interface {
	EstablishedAddr(id int, ip string, port int)
}

// handledWaiter is implemented by handlers that deliver events later (the
// event queue): a connection's reader waits, bounded, for its events to be
// handled before deciding that nothing more will be queued for the peer.
type handledWaiter interface {
	waitHandled(timeout time.Duration)
}

func (e events) established(c *conn) {
	if a, ok := e.h.(addrHandler); ok {
		a.EstablishedAddr(c.id, c.remoteIP, c.remotePort)
	} else {
		e.h.Established(c.id)
	}
}
