package engine

import (
	"sync"
	"unsafe"
)

// batcher collects the messages one read decodes for a BatchHandler, so
// that they are delivered in one call (handler.go).
type batcher struct {
	on    bool
	base  []byte // what the decoder was given
	parts []Part
}

// Parts slices go back to a pool after each read, so that an idle
// connection holds none.
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
	if b.parts == nil {
		b.parts = (*partsPool.Get().(*[]Part))[:0]
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
	b.parts = b.parts[:0]
}

// end delivers the rest and lets go of the read's buffer and parts.
func (b *batcher) end(c *conn) {
	b.flush(c)
	if b.parts != nil {
		p := b.parts[:0]
		partsPool.Put(&p)
		b.parts = nil
	}
	b.on, b.base = false, nil
}
