package engine

import (
	"bytes"
	"math"
)

// Overlong says what a line framing does with a received line longer than
// its maximum.
type Overlong int

const (
	// OverlongClose ends the connection with ErrMessageTooLong as soon as a
	// line is known to be longer than the maximum; Encode refuses such lines.
	OverlongClose Overlong = 0
	// OverlongParts delivers the line in parts of exactly the maximum length
	// with partial=true; the last part, the one that ends at the EOL, comes
	// with partial=false and is never empty (IPWorks' DataIn with EOL=False,
	// then EOL=True). Encode sends such lines: the peer gets them in parts.
	OverlongParts Overlong = 1
)

// MaxEOLLength bounds the end-of-line sequence of EOLLines.
const MaxEOLLength = 256

func checkLineArgs(max, eolLen int, overlong Overlong) (int, error) {
	if overlong != OverlongClose && overlong != OverlongParts {
		return 0, newError(ErrInvalidArg, nil, "overlong line handling %d: must be close (0) or parts (1)", overlong)
	}
	if max <= 0 {
		max = DefaultMaxMessage
	}
	if max > math.MaxInt-eolLen {
		return 0, newError(ErrInvalidArg, nil, "maximum line length %d too large", max)
	}
	return max, nil
}

// EOLLines ends every message with an end-of-line sequence of any bytes
// (NUL included), which Encode appends and the decoder strips. A message is
// cut at the first occurrence of the sequence. Max bounds a line without
// its EOL. Build it with NewEOLLines.
type EOLLines struct {
	eol      []byte
	max      int
	overlong Overlong
}

// NewEOLLines returns multi-byte end-of-line framing. eol holds 1 to
// MaxEOLLength bytes (copied); max <= 0 selects DefaultMaxMessage.
func NewEOLLines(eol []byte, max int, overlong Overlong) (EOLLines, error) {
	if len(eol) == 0 || len(eol) > MaxEOLLength {
		return EOLLines{}, newError(ErrInvalidArg, nil, "end-of-line of %d bytes: must be 1 to %d", len(eol), MaxEOLLength)
	}
	max, err := checkLineArgs(max, len(eol), overlong)
	if err != nil {
		return EOLLines{}, err
	}
	return EOLLines{eol: bytes.Clone(eol), max: max, overlong: overlong}, nil
}

// EOL returns a copy of the end-of-line sequence.
func (l EOLLines) EOL() []byte { return bytes.Clone(l.eol) }

// Overlong says what happens to lines over the maximum.
func (l EOLLines) Overlong() Overlong { return l.overlong }

func (l EOLLines) MaxMessage() int      { return l.max }
func (l EOLLines) ReadBufferLimit() int { return l.max + len(l.eol) }
func (l EOLLines) NewDecoder() Decoder {
	return &eolDecoder{eol: l.eol, max: l.max, parts: l.overlong == OverlongParts}
}

func (l EOLLines) Encode(dst, msg []byte) ([]byte, error) {
	if l.overlong == OverlongClose && len(msg) > l.max {
		return dst, newError(ErrMessageTooLong, nil, "%d bytes, maximum %d", len(msg), l.max)
	}
	if endsEarly(msg, l.eol) {
		return dst, newError(ErrContainsDelimiter, nil, "the end-of-line %q occurs in the message or where it meets the end-of-line", l.eol)
	}
	dst = append(dst, msg...)
	return append(dst, l.eol...), nil
}

// endsEarly reports whether a receiver of msg+eol would find eol before the
// end: inside msg, or starting in msg's last bytes and running into the
// appended eol (msg "xa" with eol "aa" reads as line "x").
func endsEarly(msg, eol []byte) bool {
	if bytes.Contains(msg, eol) {
		return true
	}
	k := len(eol)
	for t := min(k-1, len(msg)); t > 0; t-- {
		// An occurrence made of msg's last t bytes and eol's first k-t.
		if bytes.Equal(msg[len(msg)-t:], eol[:t]) && bytes.Equal(eol[t:], eol[:k-t]) {
			return true
		}
	}
	return false
}

type eolDecoder struct {
	eol   []byte
	max   int
	parts bool
	// scanned counts the leading bytes of the unconsumed tail at which no
	// EOL can start, so that a line arriving in many reads is searched
	// once, not once per read.
	scanned int
}

func (d *eolDecoder) Decode(buf []byte, emit Emit) (int, error) {
	if d.scanned > len(buf) {
		d.scanned = 0 // not the tail we left: search it all again
	}
	k := len(d.eol)
	consumed := 0
	for {
		rest := buf[consumed:]
		p := -1 // where the line's EOL starts, or may start
		if d.scanned < len(rest) {
			if i := bytes.Index(rest[d.scanned:], d.eol); i >= 0 {
				p = d.scanned + i
			}
		}
		if p >= 0 && p <= d.max {
			emit(rest[:p], false)
			consumed += p + k
			d.scanned = 0
			continue
		}
		if p < 0 {
			// No whole EOL. Only the last k-1 bytes may still start one, and
			// only where they are its beginning.
			p = max(d.scanned, len(rest)-k+1)
			for p < len(rest) && !bytes.HasPrefix(d.eol, rest[p:]) {
				p++
			}
			d.scanned = p
			if p <= d.max {
				return consumed, nil // the line may still end in time
			}
		}
		// No EOL can start within the maximum: the line is overlong.
		if !d.parts {
			return consumed, newError(ErrMessageTooLong, nil, "received line over %d bytes", d.max)
		}
		emit(rest[:d.max], true)
		consumed += d.max
		d.scanned = p - d.max
	}
}

// TextLines is the line mode of text protocols: a received line ends at CR,
// LF or CRLF (IPWorks' SingleLineMode), which the decoder strips; Encode
// appends one chosen EOL. Max bounds a line without its EOL. Build it with
// NewTextLines.
type TextLines struct {
	sendEOL  []byte
	max      int
	overlong Overlong
}

// CRLF is the default EOL TextLines sends.
var CRLF = []byte("\r\n")

// NewTextLines returns CR/LF/CRLF line framing that sends sendEOL after
// every line: "\r", "\n" or "\r\n" (nil or empty: "\r\n"). max <= 0
// selects DefaultMaxMessage.
func NewTextLines(sendEOL []byte, max int, overlong Overlong) (TextLines, error) {
	if len(sendEOL) == 0 {
		sendEOL = CRLF
	}
	switch string(sendEOL) {
	case "\r", "\n", "\r\n":
	default:
		return TextLines{}, newError(ErrInvalidArg, nil, "line mode EOL %q: must be CR, LF or CRLF", sendEOL)
	}
	max, err := checkLineArgs(max, 1, overlong)
	if err != nil {
		return TextLines{}, err
	}
	return TextLines{sendEOL: bytes.Clone(sendEOL), max: max, overlong: overlong}, nil
}

// SendEOL returns a copy of the EOL that Encode appends.
func (l TextLines) SendEOL() []byte { return bytes.Clone(l.sendEOL) }

// Overlong says what happens to lines over the maximum.
func (l TextLines) Overlong() Overlong { return l.overlong }

func (l TextLines) MaxMessage() int      { return l.max }
func (l TextLines) ReadBufferLimit() int { return l.max + 1 }
func (l TextLines) NewDecoder() Decoder {
	return &textDecoder{max: l.max, parts: l.overlong == OverlongParts}
}

func (l TextLines) Encode(dst, msg []byte) ([]byte, error) {
	if l.overlong == OverlongClose && len(msg) > l.max {
		return dst, newError(ErrMessageTooLong, nil, "%d bytes, maximum %d", len(msg), l.max)
	}
	if bytes.IndexAny(msg, "\r\n") >= 0 {
		return dst, newError(ErrContainsDelimiter, nil, "CR or LF in a line")
	}
	dst = append(dst, msg...)
	return append(dst, l.sendEOL...), nil
}

type textDecoder struct {
	max   int
	parts bool
	// afterCR: the last line ended with a CR, so a LF that follows belongs
	// to it (CRLF). The line itself was delivered at the CR already: a peer
	// that ends lines with a bare CR is not kept waiting for its next line.
	afterCR bool
	scanned int // leading bytes of the tail known to hold no CR or LF
}

func (d *textDecoder) Decode(buf []byte, emit Emit) (int, error) {
	if d.scanned > len(buf) {
		d.scanned = 0
	}
	consumed := 0
	// Next CR and LF at or after the search start, len(buf) when none;
	// remembered across lines so that a buffer of many short lines ending
	// in one kind is not searched to its end for the other kind every time.
	nextCR, nextLF := -1, -1
	for {
		if d.afterCR {
			if consumed == len(buf) {
				return consumed, nil
			}
			d.afterCR = false
			if buf[consumed] == '\n' {
				consumed++
				continue
			}
		}
		from := consumed + d.scanned
		if nextCR < from {
			nextCR = indexFrom(buf, from, '\r')
		}
		if nextLF < from {
			nextLF = indexFrom(buf, from, '\n')
		}
		end := min(nextCR, nextLF)
		p := end - consumed
		if p <= d.max {
			if end == len(buf) {
				d.scanned = p
				return consumed, nil // the line may still end in time
			}
			emit(buf[consumed:end], false)
			d.afterCR = buf[end] == '\r'
			consumed = end + 1
			d.scanned = 0
			continue
		}
		if !d.parts {
			return consumed, newError(ErrMessageTooLong, nil, "received line over %d bytes", d.max)
		}
		emit(buf[consumed:consumed+d.max], true)
		consumed += d.max
		d.scanned = p - d.max
	}
}

// indexFrom is the index of the first c in buf at or after from, or
// len(buf).
func indexFrom(buf []byte, from int, c byte) int {
	if i := bytes.IndexByte(buf[from:], c); i >= 0 {
		return from + i
	}
	return len(buf)
}
