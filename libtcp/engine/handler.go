package engine

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
