package engine

import "sync/atomic"

// Records cuts received bytes into records of a fixed length, which each
// connection may change while it runs (its decoder is a RecordLengthSetter:
// ChangeRecordLength). Length 0 delivers bytes as they arrive, as
// Continuous does but in pieces of at most Max bytes. Max bounds the record
// length, and so the receive buffer.
//
// Sending is not framed, as in IPWorks' TCPServer (../shared/seeds/002_*),
// whose record length applies to received data only and whose Send sends
// the bytes given: Encode neither pads nor refuses a message of another
// length. A message may hold several records, or a protocol may use other
// record lengths in the other direction; keeping to the peer's record
// length is the sender's business. Build it with NewRecords.
type Records struct {
	length int
	max    int
}

// NewRecords returns fixed-length record framing starting every connection
// with records of length bytes (0: as received). max <= 0 selects
// DefaultMaxMessage, or length if that is larger. ErrInvalidArg for a
// negative length or one over max.
func NewRecords(length, max int) (Records, error) {
	if length < 0 {
		return Records{}, newError(ErrInvalidArg, nil, "record length %d", length)
	}
	if max <= 0 {
		max = DefaultMaxMessage
		if length > max {
			max = length
		}
	}
	if length > max {
		return Records{}, newError(ErrInvalidArg, nil, "record length %d over the maximum %d", length, max)
	}
	return Records{length: length, max: max}, nil
}

// RecordLength is the length new connections start with.
func (r Records) RecordLength() int { return r.length }

func (r Records) MaxMessage() int { return r.max }

// ReadBufferLimit: at most a record short of one byte stays unconsumed.
func (r Records) ReadBufferLimit() int { return r.max }

func (r Records) NewDecoder() Decoder {
	d := &recordDecoder{max: r.max}
	d.length.Store(int64(r.length))
	return d
}

// Encode appends msg as it is (see Records).
func (r Records) Encode(dst, msg []byte) ([]byte, error) {
	return append(dst, msg...), nil
}

type recordDecoder struct {
	max int
	// length is read before every record, so that a change made from the
	// message callback (same goroutine) applies to the next record and one
	// made from elsewhere to the next record boundary Decode reaches.
	length atomic.Int64
	tail   int // bytes left unconsumed by the last Decode (reader's goroutine only)
}

func (d *recordDecoder) SetRecordLength(n int) error {
	if n < 0 || n > d.max {
		return newError(ErrInvalidArg, nil, "record length %d: must be 0 to %d", n, d.max)
	}
	d.length.Store(int64(n))
	return nil
}

func (d *recordDecoder) RecordLength() int { return int(d.length.Load()) }

func (d *recordDecoder) Decode(buf []byte, emit Emit) (int, error) {
	consumed := 0
	for {
		n := int(d.length.Load())
		rest := len(buf) - consumed
		if n == 0 { // as received, in pieces of at most max bytes
			if rest == 0 {
				d.tail = 0
				return consumed, nil
			}
			n = min(rest, d.max)
		} else if rest < n {
			d.tail = rest
			return consumed, nil
		}
		emit(buf[consumed:consumed+n], false)
		consumed += n
	}
}

// Need is computed from the length in force, so that it stays right after
// a change from another goroutine. 0 when the length is 0, or when a
// shorter length completed a record in the tail (decoded at the next read).
func (d *recordDecoder) Need() int {
	return max(0, int(d.length.Load())-d.tail)
}
