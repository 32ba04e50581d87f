package engine

import "sync/atomic"

// budget is a server's memory budget: the bytes held for all connections
// together in receive buffers of partial messages, send queues and the
// event queue. A connection may always use its fair share (limit divided by
// the connections); beyond it, only while the budget is not used up. So
// hostile peers cannot take more than the budget between them, and a
// well-behaved connection is never starved by them: the total stays under
// twice the limit.
type budget struct {
	limit int64
	used  atomic.Int64
	conns atomic.Int64
}

// newBudget is made once per server start, which also starts the watcher
// that returns a quiet process's memory (memrelease.go).
func newBudget(limit int64) *budget {
	startIdleRelease()
	return &budget{limit: limit}
}

// charge takes n bytes for a connection that already holds held bytes;
// false means the connection would exceed both the budget and its share.
// A nil budget or a zero limit always grants.
func (b *budget) charge(held, n int64) bool {
	if b == nil {
		return true
	}
	total := b.used.Add(n)
	if b.limit <= 0 || total <= b.limit {
		return true
	}
	if held+n <= b.limit/max(1, b.conns.Load()) {
		return true
	}
	b.used.Add(-n)
	return false
}

// force takes n bytes unconditionally (memory that waits rather than fails,
// as the event queue's).
func (b *budget) force(n int64) {
	if b != nil {
		b.used.Add(n)
	}
}

func (b *budget) release(n int64) {
	if b != nil && n != 0 {
		b.used.Add(-n)
	}
}

func (b *budget) inUse() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}
