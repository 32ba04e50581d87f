package engine

// Optional interfaces of framings and decoders, for the connection's reader
// and for per-connection control. A framing or decoder implements only those
// that apply to it; callers test with a type assertion.

// ReadBufferLimiter is implemented by framings whose decoders may keep more
// than MaxMessage()+1 bytes unconsumed, because of a header or a multi-byte
// end-of-line next to a message of the maximum length.
type ReadBufferLimiter interface {
	// ReadBufferLimit is the largest receive buffer a decoder of this
	// framing needs: after a Decode that returned no error, fewer than
	// ReadBufferLimit() bytes are left unconsumed, so a buffer of this size
	// always has room for the next byte.
	ReadBufferLimit() int
}

// ReadBufferLimit returns the receive buffer that decoders of f need at
// most (see ReadBufferLimiter); 0 means f's decoders consume everything they
// are given (continuous mode), so any buffer size works.
func ReadBufferLimit(f Framing) int {
	if l, ok := f.(ReadBufferLimiter); ok {
		return l.ReadBufferLimit()
	}
	if m := f.MaxMessage(); m > 0 {
		return m + 1 // a message of m bytes and its one-byte delimiter
	}
	return 0
}

// Needer is implemented by decoders that know how many more bytes the
// message at the front of the unconsumed tail needs, so that the reader can
// grow its buffer once to the message's size instead of doubling it.
type Needer interface {
	// Need is the number of bytes that must arrive, after the tail left by
	// the last Decode, before the decoder can emit its next message. It is
	// exact once the message's size is known (a length prefix was read) and
	// a lower bound before (the rest of the header); 0 means the decoder
	// takes whatever arrives. The tail plus Need never exceeds the
	// framing's ReadBufferLimit.
	Need() int
}

// RecordLengthSetter is implemented by the decoders of fixed-length record
// framing (Records): the record length of one connection may change while
// it runs (ChangeRecordLength).
type RecordLengthSetter interface {
	// SetRecordLength makes n the length of the records that follow; 0
	// delivers bytes as they arrive. Bytes already received but not yet
	// delivered are cut with the new length, starting at the next record
	// boundary: a record already delivered is never cut again, the one
	// being accumulated is completed to the new length. It is safe to call
	// from any goroutine; called from the message callback of this
	// connection, it applies to the very next record. ErrInvalidArg when n
	// is negative or over the framing's maximum.
	SetRecordLength(n int) error
	// RecordLength is the length currently in force.
	RecordLength() int
}
