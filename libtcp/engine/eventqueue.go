package engine

import (
	"encoding/binary"
	"strconv"
	"sync"
	"time"
)

// Event kinds of the queue's records (TCP_EVENT_* in the C header).
const (
	EventEstablished = 1
	EventMessage     = 2
	EventClosed      = 3
	EventError       = 4
	EventReady       = 5
	EventConnect     = 6
)

// EventHeaderSize is the size of a record header: kind, client id, code and
// payload length, each 32 bits in native byte order.
const EventHeaderSize = 16

// EventQueue is a Handler that queues events as packed records for a poller
// that takes many at once (tcp_*_poll), which is far cheaper for hosts like
// Python than a callback per event. Messages wait (back-pressure on the
// connections) while more than Limit payload bytes are queued.
type EventQueue struct {
	limit int

	mu        sync.Mutex
	space     *sync.Cond
	buf       []byte
	rd        int
	msgBytes  int
	running   bool
	releasing bool
	budget    *budget // the server's, charged for queued payload

	// The poller waits on wake (eventqueue_linux.go: a futex on seq, so
	// that a poller that is a host thread blocks in the kernel and is woken
	// by one system call, without the Go scheduler handing a P to its
	// locked thread; elsewhere a channel).
	wake waker

	// A descriptor a host's event loop can watch instead of blocking in
	// Poll (NotifyFD): written when a record arrives after a poll found the
	// queue empty, so the host polls with timeout 0 until Poll returns 0.
	notify *notifier
	armed  bool // a poll found the queue empty since the last write

	// Connections whose sends wait for the poller to finish its batch:
	// while it handles the records a Poll took, sends (its replies) are
	// corked and go out when it polls again -- one write per connection
	// and batch instead of one per message. A timer bounds the wait for a
	// poller that takes long.
	deferred      []*conn
	deferredTimer *time.Timer

	// Records pushed, and records known handled: those a Poll took, once
	// the poller calls Poll again (a poller handles a batch -- and sends
	// its replies -- before it polls again).
	pushed, handled, taken uint64
	handledCond            *sync.Cond
}

// NewEventQueue returns a queue holding at most limit bytes of message
// payload before producers wait (0 = no limit).
func NewEventQueue(limit int) *EventQueue {
	q := &EventQueue{limit: limit}
	q.wake.init()
	q.space = sync.NewCond(&q.mu)
	q.handledCond = sync.NewCond(&q.mu)
	return q
}

func (q *EventQueue) Established(id int) { q.push(EventEstablished, id, 0, nil) }

// EstablishedAddr queues an established event whose payload is the peer's
// address as "ip port", so that a poller need not look it up (the
// connection may be gone by the time it handles the record).
func (q *EventQueue) EstablishedAddr(id int, ip string, port int) {
	q.push(EventEstablished, id, 0, []byte(ip+" "+strconv.Itoa(port)))
}

// waitHandled waits up to timeout until every record pushed so far was
// handled by the poller (see handled), or the queue stops.
func (q *EventQueue) waitHandled(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, func() {
		q.mu.Lock()
		q.handledCond.Broadcast()
		q.mu.Unlock()
	})
	defer t.Stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	want := q.pushed
	for q.handled < want && q.running && !q.releasing && time.Now().Before(deadline) {
		q.handledCond.Wait()
	}
}
func (q *EventQueue) Message(id int, data []byte) {
	q.push(EventMessage, id, 0, data)
}
func (q *EventQueue) Closed(id int) { q.push(EventClosed, id, 0, nil) }

// MessageEx queues a message; code 1 (TCP_MSG_PARTIAL) marks a part.
func (q *EventQueue) MessageEx(id int, data []byte, partial bool, _ any) {
	code := 0
	if partial {
		code = 1
	}
	q.push(EventMessage, id, code, data)
}

// ClosedEx queues a closed event with its reason in the code field.
func (q *EventQueue) ClosedEx(id int, reason CloseReason, _ any) {
	q.push(EventClosed, id, int(reason), nil)
}

func (q *EventQueue) Ready(id int, _ any) { q.push(EventReady, id, 0, nil) }

// Connect queues a reconnection attempt: client_id is the attempt, code
// its start code.
func (q *EventQueue) Connect(attempt int, err error) {
	q.push(EventConnect, attempt, int(CodeOf(err)), nil)
}

func (q *EventQueue) useBudget(b *budget) {
	q.mu.Lock()
	q.budget = b
	q.mu.Unlock()
}
func (q *EventQueue) Error(id int, err *Error) {
	q.push(EventError, id, int(err.Code), []byte(err.Error()))
}

func (q *EventQueue) push(kind, id, code int, payload []byte) {
	q.mu.Lock()
	if kind == EventMessage {
		for q.limit > 0 && q.msgBytes >= q.limit && !q.releasing {
			q.space.Wait()
		}
		q.msgBytes += len(payload)
		q.budget.force(int64(len(payload)))
	}
	var h [EventHeaderSize]byte
	binary.NativeEndian.PutUint32(h[0:], uint32(kind))
	binary.NativeEndian.PutUint32(h[4:], uint32(int32(id)))
	binary.NativeEndian.PutUint32(h[8:], uint32(int32(code)))
	binary.NativeEndian.PutUint32(h[12:], uint32(len(payload)))
	q.buf = append(q.buf, h[:]...)
	q.buf = append(q.buf, payload...)
	q.pushed++
	nf := q.takeArmedLocked()
	q.mu.Unlock()
	q.wake.signal()
	nf.signal()
}

// takeArmedLocked is the notifier to write once q.mu is released, if armed.
func (q *EventQueue) takeArmedLocked() *notifier {
	if !q.armed {
		return nil
	}
	q.armed = false
	return q.notify
}

// NotifyFD returns a descriptor that becomes readable when events arrive: a
// host event loop watches it and polls with timeout 0 until Poll returns 0
// events (which re-arms it), instead of a thread blocking in Poll. The
// descriptor belongs to the queue (CloseNotify closes it); reading it is the
// host's business (eventfd semantics: 8 bytes). Linux only.
func (q *EventQueue) NotifyFD() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.notify == nil {
		nf, err := newNotifier()
		if err != nil {
			return -1, err
		}
		q.notify = nf
	}
	if q.rd < len(q.buf) || !q.running {
		q.notify.signal() // something to take already (or the end to see)
	} else {
		q.armed = true
	}
	return q.notify.fd, nil
}

// CloseNotify closes the descriptor of NotifyFD, if any.
func (q *EventQueue) CloseNotify() {
	q.mu.Lock()
	nf := q.notify
	q.notify, q.armed = nil, false
	q.mu.Unlock()
	nf.close()
}

func (q *EventQueue) started() {
	q.mu.Lock()
	q.running = true
	q.releasing = false
	q.mu.Unlock()
}

// stopping lets producers blocked on a full queue go on, so Stop cannot hang
// on a poller that stopped polling.
func (q *EventQueue) stopping() {
	q.mu.Lock()
	q.releasing = true
	q.space.Broadcast()
	q.handledCond.Broadcast()
	q.mu.Unlock()
	q.flushDeferred()
}

func (q *EventQueue) stopped() {
	q.mu.Lock()
	q.running = false
	q.releasing = true
	q.space.Broadcast()
	nf := q.notify // the poller must see the end
	q.armed = false
	q.mu.Unlock()
	q.flushDeferred()
	q.wake.signal()
	nf.signal()
}

// Poll waits up to timeout for events and copies as many whole records as
// fit into dst. It returns the number of events and bytes written; with
// ErrBufferTooSmall, used is the size the next record needs; ErrNotRunning
// once the owner stopped and the queue is empty.
func (q *EventQueue) Poll(dst []byte, timeout time.Duration) (n, used int, err error) {
	var deadline time.Time
	q.mu.Lock()
	if q.handled != q.taken { // the previous batch was handled
		q.handled = q.taken
		q.handledCond.Broadcast()
	}
	deferred := q.takeDeferredLocked()
	q.mu.Unlock()
	uncorkAll(deferred)
	for {
		token := q.wake.token() // before looking: a push after this ends the wait
		q.mu.Lock()
		if q.rd < len(q.buf) {
			n, used, err = q.take(dst)
			q.taken += uint64(n)
			q.mu.Unlock()
			return n, used, err
		}
		running := q.running
		if q.notify != nil && running {
			q.armed = true // write the descriptor for the next record
		}
		q.mu.Unlock()
		if !running {
			return 0, 0, newError(ErrNotRunning, nil, "stopped and every event taken")
		}
		if timeout <= 0 {
			return 0, 0, nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(timeout)
		}
		left := time.Until(deadline)
		if left <= 0 {
			timeout = 0 // look once more, then return
			continue
		}
		q.wake.wait(token, left)
	}
}

// deferSend is asked by c.send (c.mu held) before writing inline: true when
// the poller is handling a batch it took, and c was corked until it polls
// again (or deferDelay passed).
func (q *EventQueue) deferSend(c *conn) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.taken == q.handled || !q.running || q.releasing {
		return false
	}
	q.deferred = append(q.deferred, c)
	if q.deferredTimer == nil {
		q.deferredTimer = time.AfterFunc(deferDelay, q.flushDeferred)
	}
	return true
}

// deferDelay bounds how long a reply waits for its poller's next poll.
const deferDelay = 2 * time.Millisecond

// flushDeferred uncorks the connections deferSend corked: each writes what
// its sends queued, at once. (If the reader corked one meanwhile, what is
// queued goes out a little before its own uncork: harmless.)
func (q *EventQueue) flushDeferred() {
	q.mu.Lock()
	list := q.takeDeferredLocked()
	q.mu.Unlock()
	uncorkAll(list)
}

// takeDeferredLocked empties the deferred list and stops its timer.
func (q *EventQueue) takeDeferredLocked() []*conn {
	list := q.deferred
	q.deferred = nil
	if q.deferredTimer != nil {
		q.deferredTimer.Stop()
		q.deferredTimer = nil
	}
	return list
}

func uncorkAll(list []*conn) {
	for _, c := range list {
		c.uncork()
	}
}

// take copies whole records; q.mu is held.
func (q *EventQueue) take(dst []byte) (n, used int, err error) {
	off := q.rd
	freed := 0
	for off < len(q.buf) {
		kind := binary.NativeEndian.Uint32(q.buf[off:])
		size := EventHeaderSize + int(binary.NativeEndian.Uint32(q.buf[off+12:]))
		if used+size > len(dst) {
			if n == 0 {
				return 0, size, newError(ErrBufferTooSmall, nil, "next event needs %d bytes", size)
			}
			break
		}
		copy(dst[used:], q.buf[off:off+size])
		if kind == EventMessage {
			freed += size - EventHeaderSize
		}
		used += size
		off += size
		n++
	}
	q.rd = off
	if q.rd == len(q.buf) {
		q.rd = 0
		if cap(q.buf) > 4<<20 {
			q.buf = nil // give a burst's memory back
		} else {
			q.buf = q.buf[:0]
		}
	} else if q.rd > len(q.buf)/2 {
		q.buf = q.buf[:copy(q.buf, q.buf[q.rd:])]
		q.rd = 0
	}
	if freed > 0 {
		q.budget.release(int64(freed))
		q.msgBytes -= freed
		q.space.Broadcast()
	}
	return n, used, nil
}
