package engine

import (
	"sync"
	"unsafe"
)

// batcher collects the messages one read decodes for a BatchHandler, so
// that they are delivered in one call (handler.go). The reader keeps its
// parts slice from read to read and gives it back before waiting for the
// socket (release), so that an idle connection holds none.
type batcher struct {
	on     bool
	base   []byte // what the decoder was given
	parts  []Part
	pooled *[]Part // where parts came from
}

var partsPool = sync.Pool{New: func() any { p := make([]Part, 0, 32); return &p }}

// begin starts a read's batch over base, if the handler wants one now.
func (b *batcher) begin(c *conn, base []byte) {
	b.on = c.events.batch != nil && c.events.batch.WantsBatch()
	b.base = base
}

// add takes m into the batch; false when m does not lie in base (the
// framing built it elsewhere): the caller delivers it alone.
func (b *batcher) add(m []byte, partial bool) bool {
	off := 0
	if len(m) > 0 {
		off = int(uintptr(unsafe.Pointer(unsafe.SliceData(m))) - uintptr(unsafe.Pointer(unsafe.SliceData(b.base))))
		if off < 0 || off+len(m) > len(b.base) {
			return false
		}
	}
	if b.pooled == nil {
		b.pooled = partsPool.Get().(*[]Part)
		b.parts = (*b.pooled)[:0]
	}
	b.parts = append(b.parts, Part{Off: off, Len: len(m), Partial: partial})
	return true
}

// flush delivers what the batch holds.
func (b *batcher) flush(c *conn) {
	if len(b.parts) == 0 {
		return
	}
	c.evMu.Lock() // (no defer: a panic is recovered where evMu is reset)
	if !c.closing.Load() {
		c.events.batch.Messages(c.id, b.base, b.parts, c.User())
	}
	c.evMu.Unlock()
	clear(b.parts) // (no pointers, but keep the pool's slices clean)
	b.parts = b.parts[:0]
}

// end delivers the rest of a read's batch.
func (b *batcher) end(c *conn) {
	b.flush(c)
	b.on, b.base = false, nil
}

// release gives the parts slice back to the pool.
func (b *batcher) release() {
	if b.pooled != nil {
		*b.pooled = b.parts[:0]
		partsPool.Put(b.pooled)
		b.pooled, b.parts = nil, nil
	}
}
