//go:build !linux

package engine

import "time"

// waker is the event queue's wake-up (a futex on Linux: eventqueue_linux.go).
type waker struct{ ch chan struct{} }

func (w *waker) init()         { w.ch = make(chan struct{}, 1) }
func (w *waker) token() uint32 { return 0 }

func (w *waker) signal() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

func (w *waker) wait(_ uint32, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.ch:
	case <-t.C:
	}
}

// notifier: EventQueue.NotifyFD is Linux only.
type notifier struct{ fd int }

func newNotifier() (*notifier, error) {
	return nil, newError(ErrInvalidArg, nil, "NotifyFD needs Linux (eventfd)")
}

func (n *notifier) signal() {}
func (n *notifier) close()  {}
