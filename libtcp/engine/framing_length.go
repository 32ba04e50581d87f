package engine

import (
	"encoding/binary"
	"math"
)

// LengthPrefixed frames every message with its length, an unsigned integer
// of 1, 2, 4 or 8 bytes in front of it. The length counts the message only,
// not the prefix. Max bounds a message in both directions; a received prefix
// over Max closes the connection as soon as the prefix is read, before any
// of the message is buffered. Build it with NewLengthPrefixed.
type LengthPrefixed struct {
	size  int
	order binary.ByteOrder
	max   int
}

// TutorialPrefixSize and TutorialPrefixOrder are the prefix of the TLS
// tutorials tcpgo was specified from (../shared/seeds/000_*, 001_*): a
// "4-byte DWORD size" in front of the data it counts. The documents do not
// state a byte order; a DWORD written by the Delphi/C++Builder programs they
// describe is in the x86 machine order, little-endian.
const TutorialPrefixSize = 4

// TutorialPrefixOrder: see TutorialPrefixSize.
var TutorialPrefixOrder binary.ByteOrder = binary.LittleEndian

// NewLengthPrefixed returns length-prefixed framing with a size-byte prefix
// (1, 2, 4 or 8) in the given byte order (binary.BigEndian or
// binary.LittleEndian; it does not matter for size 1 but must be given).
// max <= 0 selects DefaultMaxMessage, or the largest length the prefix can
// hold if that is smaller. A max the prefix cannot express is an
// ErrInvalidArg, as are a bad size or order.
func NewLengthPrefixed(size int, order binary.ByteOrder, max int) (LengthPrefixed, error) {
	switch size {
	case 1, 2, 4, 8:
	default:
		return LengthPrefixed{}, newError(ErrInvalidArg, nil, "length prefix of %d bytes: must be 1, 2, 4 or 8", size)
	}
	if order == nil {
		return LengthPrefixed{}, newError(ErrInvalidArg, nil, "length prefix without a byte order")
	}
	if _, ok := order.(binary.AppendByteOrder); !ok {
		return LengthPrefixed{}, newError(ErrInvalidArg, nil, "byte order %v cannot append", order)
	}
	limit := prefixCapacity(size)
	if max <= 0 {
		max = min(DefaultMaxMessage, limit)
	}
	if max > limit {
		return LengthPrefixed{}, newError(ErrInvalidArg, nil, "maximum %d does not fit a %d-byte length prefix (at most %d)", max, size, limit)
	}
	return LengthPrefixed{size: size, order: order, max: max}, nil
}

// NewTutorialLengthPrefixed returns the tutorials' framing (see
// TutorialPrefixSize) with the given maximum (<= 0: DefaultMaxMessage).
func NewTutorialLengthPrefixed(max int) (LengthPrefixed, error) {
	return NewLengthPrefixed(TutorialPrefixSize, TutorialPrefixOrder, max)
}

// prefixCapacity is the largest message length a size-byte prefix can hold
// that also keeps prefix+message addressable as an int.
func prefixCapacity(size int) int {
	held := uint64(math.MaxUint64)
	if size < 8 {
		held = 1<<(8*size) - 1
	}
	return int(min(held, uint64(math.MaxInt-size)))
}

// PrefixSize is the prefix length in bytes.
func (l LengthPrefixed) PrefixSize() int { return l.size }

// Order is the prefix's byte order.
func (l LengthPrefixed) Order() binary.ByteOrder { return l.order }

func (l LengthPrefixed) MaxMessage() int      { return l.max }
func (l LengthPrefixed) ReadBufferLimit() int { return l.size + l.max }
func (l LengthPrefixed) NewDecoder() Decoder {
	return &lengthDecoder{LengthPrefixed: l, need: l.size}
}

func (l LengthPrefixed) Encode(dst, msg []byte) ([]byte, error) {
	if len(msg) > l.max {
		return dst, newError(ErrMessageTooLong, nil, "%d bytes, maximum %d", len(msg), l.max)
	}
	app := l.order.(binary.AppendByteOrder)
	n := len(msg)
	switch l.size {
	case 1:
		dst = append(dst, byte(n))
	case 2:
		dst = app.AppendUint16(dst, uint16(n))
	case 4:
		dst = app.AppendUint32(dst, uint32(n))
	default:
		dst = app.AppendUint64(dst, uint64(n))
	}
	return append(dst, msg...), nil
}

// readPrefix decodes the prefix at the front of b (len(b) >= l.size).
func (l LengthPrefixed) readPrefix(b []byte) uint64 {
	switch l.size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(l.order.Uint16(b))
	case 4:
		return uint64(l.order.Uint32(b))
	default:
		return l.order.Uint64(b)
	}
}

// lengthDecoder keeps no bytes of its own: the unconsumed tail it leaves
// is at most a prefix and a message short of its last byte.
type lengthDecoder struct {
	LengthPrefixed
	need int
}

func (d *lengthDecoder) Decode(buf []byte, emit Emit) (int, error) {
	consumed := 0
	for {
		rest := buf[consumed:]
		if len(rest) < d.size {
			d.need = d.size - len(rest)
			return consumed, nil
		}
		n := d.readPrefix(rest)
		if n > uint64(d.max) {
			d.need = 0
			return consumed, newError(ErrMessageTooLong, nil, "length prefix announces %d bytes, maximum %d", n, d.max)
		}
		end := d.size + int(n)
		if len(rest) < end {
			d.need = end - len(rest)
			return consumed, nil
		}
		emit(rest[d.size:end], false)
		consumed += end
	}
}

func (d *lengthDecoder) Need() int { return d.need }
