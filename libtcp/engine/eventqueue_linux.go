package engine

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// waker is the event queue's wake-up: a futex on a sequence number. A
// poller is usually a host thread inside tcp_*_poll; parked on a channel it
// would need the Go scheduler to hand a P to its locked thread for every
// wake-up (two thread switches), while blocked in the futex system call it
// is woken by the kernel directly and keeps its P when it was not taken
// meanwhile. A push costs one atomic add, and a system call only while a
// poller sleeps.
type waker struct {
	seq      atomic.Uint32
	sleepers atomic.Int32
	pending  atomic.Bool // a wake-up was sent since the last sleeper went to sleep
}

const (
	futexWaitPrivate = 0 | 128 // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
	futexWakePrivate = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
)

func (w *waker) init() {}

// token is read before the poller looks at the queue; wait returns at once
// if a signal came after it.
func (w *waker) token() uint32 { return w.seq.Load() }

func (w *waker) signal() {
	w.seq.Add(1)
	// One system call per sleep, not one per push until the poller runs:
	// a sleeper clears pending before it sleeps, and one that sleeps after
	// this Add returns at once (the futex word changed).
	if w.sleepers.Load() > 0 && w.pending.CompareAndSwap(false, true) {
		syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&w.seq)), futexWakePrivate,
			1<<30, 0, 0, 0)
	}
}

// wait sleeps until a signal after token, at most d (spurious returns are
// fine: the caller looks again).
func (w *waker) wait(token uint32, d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	w.sleepers.Add(1)
	w.pending.Store(false)
	syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&w.seq)), futexWaitPrivate,
		uintptr(token), uintptr(unsafe.Pointer(&ts)), 0, 0)
	w.sleepers.Add(-1)
}

// notifier is the eventfd of EventQueue.NotifyFD. Its methods accept nil.
type notifier struct {
	mu sync.Mutex // a write never reaches a closed (and maybe reused) descriptor number
	fd int
}

func newNotifier() (*notifier, error) {
	fd, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if e != 0 {
		return nil, newError(ErrIO, e, "eventfd")
	}
	return &notifier{fd: int(fd)}, nil
}

func (n *notifier) signal() {
	if n == nil {
		return
	}
	one := [8]byte{1}
	n.mu.Lock()
	if n.fd >= 0 {
		syscall.Write(n.fd, one[:]) // EAGAIN only when the counter is full: readable anyway
	}
	n.mu.Unlock()
}

func (n *notifier) close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	if n.fd >= 0 {
		syscall.Close(n.fd)
		n.fd = -1
	}
	n.mu.Unlock()
}
