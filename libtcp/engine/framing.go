package engine

import "bytes"

// Framing turns a byte stream into messages and back. Each framing is a small
// unit of its own; new ones (length prefix, multi-byte EOL, fixed records)
// implement the same interface.
type Framing interface {
	// NewDecoder returns the per-connection receive state.
	NewDecoder() Decoder
	// Encode appends msg, framed, to dst. It refuses messages the peer could
	// not decode.
	Encode(dst, msg []byte) ([]byte, error)
	// MaxMessage is the largest message the framing accepts; 0 means no
	// message boundaries (continuous mode).
	MaxMessage() int
}

// Emit receives one decoded message. partial is true for a part of an
// overlong message that the framing delivers in parts (TCP_MSG_PARTIAL);
// the last part comes with partial false.
type Emit func(msg []byte, partial bool)

// Decoder cuts received bytes into messages for one connection.
type Decoder interface {
	// Decode calls emit for every complete message at the front of buf and
	// returns how many bytes it consumed. emit's argument aliases buf and is
	// valid only during the call. An error means the stream cannot continue
	// (a message over the maximum); the connection is then closed.
	// Bytes not consumed are passed again, with more appended, next time.
	Decode(buf []byte, emit Emit) (int, error)
}

// Continuous delivers bytes as they arrive and sends them as given.
type Continuous struct{}

func (Continuous) NewDecoder() Decoder { return continuousDecoder{} }
func (Continuous) MaxMessage() int     { return 0 }
func (Continuous) Encode(dst, msg []byte) ([]byte, error) {
	return append(dst, msg...), nil
}

type continuousDecoder struct{}

func (continuousDecoder) Decode(buf []byte, emit Emit) (int, error) {
	if len(buf) > 0 {
		emit(buf, false)
	}
	return len(buf), nil
}

// DefaultMaxMessage is the maximum message length of fragmented mode when
// none is given (TCP_DEFAULT_MAX_MESSAGE).
const DefaultMaxMessage = 16 << 20

// Delimited separates messages with one delimiter byte that Encode appends
// and the decoder strips. Max bounds a message (without delimiter) in both
// directions, and so bounds the receive buffer.
type Delimited struct {
	Delim byte
	Max   int
}

// NewDelimited returns delimiter framing; max <= 0 selects DefaultMaxMessage.
func NewDelimited(delim byte, max int) Delimited {
	if max <= 0 {
		max = DefaultMaxMessage
	}
	return Delimited{Delim: delim, Max: max}
}

func (d Delimited) NewDecoder() Decoder { return &delimitedDecoder{delim: d.Delim, max: d.Max} }
func (d Delimited) MaxMessage() int     { return d.Max }

func (d Delimited) Encode(dst, msg []byte) ([]byte, error) {
	if len(msg) > d.Max {
		return dst, newError(ErrMessageTooLong, nil, "%d bytes, maximum %d", len(msg), d.Max)
	}
	if bytes.IndexByte(msg, d.Delim) >= 0 {
		return dst, newError(ErrContainsDelimiter, nil, "delimiter byte 0x%02x in message", d.Delim)
	}
	dst = append(dst, msg...)
	return append(dst, d.Delim), nil
}

type delimitedDecoder struct {
	delim   byte
	max     int
	scanned int // bytes of the unconsumed tail already known to hold no delimiter
}

func (d *delimitedDecoder) Decode(buf []byte, emit Emit) (int, error) {
	consumed := 0
	from := d.scanned
	for {
		i := bytes.IndexByte(buf[consumed+from:], d.delim)
		if i < 0 {
			break
		}
		end := consumed + from + i
		if end-consumed > d.max {
			return consumed, newError(ErrMessageTooLong, nil, "received message over %d bytes", d.max)
		}
		emit(buf[consumed:end], false)
		consumed = end + 1
		from = 0
	}
	d.scanned = len(buf) - consumed
	if d.scanned > d.max {
		return consumed, newError(ErrMessageTooLong, nil, "received message over %d bytes", d.max)
	}
	return consumed, nil
}
