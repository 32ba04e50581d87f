package engine

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// feeder drives a Decoder the way conn.readLoop does: received bytes are
// appended to the unconsumed tail, and the tail (only) is handed to Decode.
type feeder struct {
	dec     Decoder
	pending []byte
	msgs    [][]byte
}

func newFeeder(f Framing) *feeder { return &feeder{dec: f.NewDecoder()} }

func (fd *feeder) feed(chunk []byte) error {
	fd.pending = append(fd.pending, chunk...)
	n, err := fd.dec.Decode(fd.pending, func(m []byte, _ bool) {
		fd.msgs = append(fd.msgs, append([]byte{}, m...))
	})
	if n < 0 || n > len(fd.pending) {
		panic("Decode consumed a bad count")
	}
	// A fresh slice, as a compacting reader would hand over: Decode must not
	// rely on the identity of the buffer.
	fd.pending = append([]byte(nil), fd.pending[n:]...)
	return err
}

func TestContinuousFraming(t *testing.T) {
	f := Continuous{}
	assert.Equal(t, 0, f.MaxMessage())

	out, err := f.Encode([]byte("head:"), []byte("a\nb\x00c"))
	require.NoError(t, err)
	assert.Equal(t, []byte("head:a\nb\x00c"), out, "continuous adds nothing")

	out, err = f.Encode(nil, nil)
	require.NoError(t, err)
	assert.Empty(t, out)

	dec := f.NewDecoder()
	var got [][]byte
	emit := func(m []byte, _ bool) { got = append(got, append([]byte{}, m...)) }
	n, err := dec.Decode([]byte("abc\x00\ndef"), emit)
	require.NoError(t, err)
	assert.Equal(t, 8, n)
	n, err = dec.Decode(nil, emit)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	assert.Equal(t, [][]byte{[]byte("abc\x00\ndef")}, got, "bytes delivered as they are, nothing for an empty read")
}

func TestNewDelimitedDefaults(t *testing.T) {
	d := NewDelimited('\n', 0)
	assert.Equal(t, DefaultMaxMessage, d.MaxMessage())
	assert.Equal(t, 16<<20, DefaultMaxMessage, "TCP_DEFAULT_MAX_MESSAGE")
	assert.Equal(t, DefaultMaxMessage, NewDelimited('\n', -5).MaxMessage())
	assert.Equal(t, 7, NewDelimited('\n', 7).MaxMessage())
}

func TestDelimitedEncode(t *testing.T) {
	d := NewDelimited('\n', 5)

	out, err := d.Encode([]byte("x\n"), []byte("hello"))
	require.NoError(t, err, "exactly the maximum is allowed")
	assert.Equal(t, []byte("x\nhello\n"), out)

	out, err = d.Encode(nil, []byte{})
	require.NoError(t, err)
	assert.Equal(t, []byte("\n"), out, "empty message is a lone delimiter")

	dst := []byte("keep")
	out, err = d.Encode(dst, []byte("hello!"))
	requireCode(t, ErrMessageTooLong, err)
	assert.Equal(t, []byte("keep"), out, "a refused message leaves dst as it was")

	out, err = d.Encode(dst, []byte("a\nb"))
	requireCode(t, ErrContainsDelimiter, err)
	assert.Equal(t, []byte("keep"), out)

	z := NewDelimited(0, 0)
	out, err = z.Encode(nil, []byte("abc"))
	require.NoError(t, err)
	assert.Equal(t, []byte("abc\x00"), out)
	_, err = z.Encode(nil, []byte("a\x00c"))
	requireCode(t, ErrContainsDelimiter, err)
	out, err = z.Encode(nil, []byte("line\n"))
	require.NoError(t, err, "newline is data when the delimiter is NUL")
	assert.Equal(t, []byte("line\n\x00"), out)
}

func TestDelimitedDecodeBasics(t *testing.T) {
	d := NewDelimited('\n', 10)

	t.Run("many per read", func(t *testing.T) {
		fd := newFeeder(d)
		require.NoError(t, fd.feed([]byte("a\nbb\nccc\n")))
		assert.Equal(t, [][]byte{[]byte("a"), []byte("bb"), []byte("ccc")}, fd.msgs)
		assert.Empty(t, fd.pending)
	})
	t.Run("split across reads", func(t *testing.T) {
		fd := newFeeder(d)
		require.NoError(t, fd.feed([]byte("hel")))
		assert.Empty(t, fd.msgs)
		require.NoError(t, fd.feed([]byte("lo\nwo")))
		assert.Equal(t, [][]byte{[]byte("hello")}, fd.msgs)
		require.NoError(t, fd.feed([]byte("rld")))
		require.NoError(t, fd.feed([]byte("\n")))
		assert.Equal(t, [][]byte{[]byte("hello"), []byte("world")}, fd.msgs)
		assert.Empty(t, fd.pending)
	})
	t.Run("empty messages", func(t *testing.T) {
		fd := newFeeder(d)
		require.NoError(t, fd.feed([]byte("\n\nx\n\n")))
		assert.Equal(t, [][]byte{{}, {}, []byte("x"), {}}, fd.msgs)
	})
	t.Run("NUL delimiter", func(t *testing.T) {
		fd := newFeeder(NewDelimited(0, 10))
		require.NoError(t, fd.feed([]byte("a\nb\x00\x00c")))
		require.NoError(t, fd.feed([]byte("\x00")))
		assert.Equal(t, [][]byte{[]byte("a\nb"), {}, []byte("c")}, fd.msgs)
	})
	t.Run("exactly max in one read", func(t *testing.T) {
		fd := newFeeder(d)
		require.NoError(t, fd.feed([]byte("0123456789\n")))
		assert.Equal(t, [][]byte{[]byte("0123456789")}, fd.msgs)
	})
	t.Run("max+1 with delimiter", func(t *testing.T) {
		fd := newFeeder(d)
		err := fd.feed([]byte("ok\n0123456789X\nlater\n"))
		requireCode(t, ErrMessageTooLong, err)
		assert.Equal(t, [][]byte{[]byte("ok")}, fd.msgs, "messages before the long one are delivered, none after")
	})
	t.Run("max+1 without delimiter", func(t *testing.T) {
		fd := newFeeder(d)
		require.NoError(t, fd.feed([]byte("0123456789")), "max bytes may wait for their delimiter")
		requireCode(t, ErrMessageTooLong, fd.feed([]byte("X")), "the byte past the maximum is refused at once, without a delimiter")
	})
	t.Run("max+1 split across reads", func(t *testing.T) {
		fd := newFeeder(d)
		require.NoError(t, fd.feed([]byte("01234")))
		requireCode(t, ErrMessageTooLong, fd.feed([]byte("56789X\n")))
		assert.Empty(t, fd.msgs)
	})
}

// The decoder remembers how much of the tail holds no delimiter; feeding one
// byte at a time exercises that bookkeeping on every call.
func TestDelimitedDecodeByteByByte(t *testing.T) {
	const max = 300
	d := NewDelimited(';', max)
	var want [][]byte
	var stream []byte
	for _, n := range []int{0, 1, 2, 0, max, 17, max - 1, 0, 255} {
		m := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		want = append(want, m)
		var err error
		stream, err = d.Encode(stream, m)
		require.NoError(t, err)
	}

	fd := newFeeder(d)
	for i := range stream {
		require.NoError(t, fd.feed(stream[i:i+1]), "byte %d", i)
	}
	assert.Equal(t, want, fd.msgs)
	assert.Empty(t, fd.pending)

	// Growing tail handed over without copying (the reader's usual case).
	dec := d.NewDecoder()
	var got [][]byte
	start := 0
	for end := 1; end <= len(stream); end++ {
		n, err := dec.Decode(stream[start:end], func(m []byte, _ bool) { got = append(got, append([]byte{}, m...)) })
		require.NoError(t, err)
		start += n
	}
	assert.Equal(t, want, got)
	assert.Equal(t, len(stream), start)

	// Over the maximum, byte by byte: refused exactly at byte max+1.
	fd = newFeeder(d)
	for i := 0; i < max; i++ {
		require.NoError(t, fd.feed([]byte{'z'}), "byte %d", i)
	}
	requireCode(t, ErrMessageTooLong, fd.feed([]byte{'z'}))

	// A delimiter after exactly max bytes that came one by one is fine.
	fd = newFeeder(d)
	for i := 0; i < max; i++ {
		require.NoError(t, fd.feed([]byte{'z'}))
	}
	require.NoError(t, fd.feed([]byte{';'}))
	require.Len(t, fd.msgs, 1)
	assert.Len(t, fd.msgs[0], max)
}

// A decoder is per connection: two decoders of one framing are independent.
func TestDelimitedDecodersIndependent(t *testing.T) {
	d := NewDelimited('\n', 8)
	a, b := newFeeder(d), newFeeder(d)
	require.NoError(t, a.feed([]byte("12345678")))
	require.NoError(t, b.feed([]byte("x\n")))
	require.NoError(t, a.feed([]byte("\n")))
	assert.Equal(t, [][]byte{[]byte("12345678")}, a.msgs)
	assert.Equal(t, [][]byte{[]byte("x")}, b.msgs)
}

const fuzzMax = 64

// FuzzDelimitedDecode checks decode(encode(msgs)) == msgs for any messages
// and any way the stream is cut into reads. The messages are raw split at
// the delimiter (and cut to the maximum); cuts gives the read sizes.
func FuzzDelimitedDecode(f *testing.F) {
	f.Add(byte('\n'), []byte("hello\nworld\n\nlast"), []byte{1, 2, 3})
	f.Add(byte(0), []byte("a\x00\x00bc\x00"), []byte{0})
	f.Add(byte(';'), bytes.Repeat([]byte("x"), 3*fuzzMax+5), []byte{63, 64, 65, 1})
	f.Add(byte('x'), []byte(""), []byte{})
	f.Add(byte(0xff), []byte{0xff, 0xff, 0xfe, 0xff}, []byte{255, 0, 7})
	f.Fuzz(func(t *testing.T, delim byte, raw, cuts []byte) {
		d := NewDelimited(delim, fuzzMax)
		var msgs [][]byte
		for _, m := range bytes.Split(raw, []byte{delim}) {
			for len(m) > fuzzMax {
				msgs = append(msgs, m[:fuzzMax])
				m = m[fuzzMax:]
			}
			msgs = append(msgs, m)
		}
		var stream []byte
		for _, m := range msgs {
			var err error
			stream, err = d.Encode(stream, m)
			if err != nil {
				t.Fatalf("encode %q: %v", m, err)
			}
		}

		fd := newFeeder(d)
		rest := stream
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = 1 + int(cuts[i%len(cuts)])%(2*fuzzMax)
				if n > len(rest) {
					n = len(rest)
				}
			}
			if err := fd.feed(rest[:n]); err != nil {
				t.Fatalf("decode: %v", err)
			}
			rest = rest[n:]
		}
		if len(fd.pending) != 0 {
			t.Fatalf("%d bytes left undecoded", len(fd.pending))
		}
		if len(fd.msgs) != len(msgs) {
			t.Fatalf("got %d messages, want %d", len(fd.msgs), len(msgs))
		}
		for i := range msgs {
			if !bytes.Equal(fd.msgs[i], msgs[i]) {
				t.Fatalf("message %d: got %q, want %q", i, fd.msgs[i], msgs[i])
			}
		}

		// raw itself as a stream (over-long messages included), in the
		// fuzzed reads and byte by byte, within the memory bound.
		want := refDelimited(delim, fuzzMax, raw)
		requireSameRun(t, want, decodeChunked(t, d, raw, whole, nil), "whole")
		requireSameRun(t, want, decodeChunked(t, d, raw, fuzzChunks(cuts), nil), "fuzzed reads")
		requireSameRun(t, want, decodeChunked(t, d, raw, byteByByte, nil), "byte by byte")
	})
}

// refDelimited reads a delimited stream the plain way.
func refDelimited(delim byte, max int, s []byte) decodeRun {
	var run decodeRun
	for {
		i := bytes.IndexByte(s, delim)
		switch {
		case i > max || (i < 0 && len(s) > max):
			run.code = ErrMessageTooLong
			return run
		case i < 0:
			run.left = len(s)
			return run
		}
		run.pieces = append(run.pieces, piece{data: append([]byte{}, s[:i]...)})
		s = s[i+1:]
	}
}

// piece is one emitted message with its partial flag.
type piece struct {
	data    []byte
	partial bool
}

// decodeRun is what a decoder made of a stream: the pieces in order, the
// code of the error that ended it (StartOK for none) and, without error,
// the bytes still undecoded.
type decodeRun struct {
	pieces []piece
	code   Code
	left   int
}

// chunker returns the size of the i-th read.
type chunker func(i int) int

func whole(int) int { return math.MaxInt }

func byteByByte(int) int { return 1 }

// splitAt cuts the stream once, at position at.
func splitAt(at int) chunker {
	return func(i int) int {
		if i == 0 {
			return at
		}
		return math.MaxInt
	}
}

// randomChunks returns reads of 1..maxRead bytes from a seeded generator.
func randomChunks(seed uint64, maxRead int) chunker {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(int) int { return 1 + r.IntN(maxRead) }
}

// fuzzChunks takes the read sizes from fuzz input (1..2*fuzzMax+8 each).
func fuzzChunks(cuts []byte) chunker {
	if len(cuts) == 0 {
		return whole
	}
	return func(i int) int { return 1 + int(cuts[i%len(cuts)])%(2*fuzzMax+8) }
}

// onPiece may act on the decoder after each piece (change the record
// length); n counts the pieces so far, this one included.
type onPiece func(dec Decoder, n int, p piece)

// decodeChunked drives a new decoder of f as the connection's reader does:
// each read is appended to the unconsumed tail, which is handed over in a
// fresh slice (a decoder must not rely on the buffer's identity). It stops
// at the first error, as the connection closes then. After every Decode
// it checks the decoder's memory bound: fewer than ReadBufferLimit(f)
// bytes left unconsumed, and with them what Need announces fits too, so a
// reader whose buffer never exceeds the limit always has room.
func decodeChunked(t testing.TB, f Framing, stream []byte, size chunker, on onPiece) decodeRun {
	t.Helper()
	dec := f.NewDecoder()
	limit := ReadBufferLimit(f)
	needer, _ := dec.(Needer)
	var run decodeRun
	var pending []byte
	emit := func(m []byte, partial bool) {
		if f.MaxMessage() > 0 && len(m) > f.MaxMessage() {
			t.Fatalf("emitted %d bytes, framing maximum %d", len(m), f.MaxMessage())
		}
		p := piece{data: bytes.Clone(m), partial: partial}
		if p.data == nil {
			p.data = []byte{}
		}
		run.pieces = append(run.pieces, p)
		if on != nil {
			on(dec, len(run.pieces), p)
		}
	}
	rest := stream
	for i := 0; len(rest) > 0; i++ {
		n := min(size(i), len(rest))
		if n <= 0 {
			t.Fatalf("chunker gave read size %d", n)
		}
		pending = append(bytes.Clone(pending), rest[:n]...)
		rest = rest[n:]
		used, err := dec.Decode(pending, emit)
		if used < 0 || used > len(pending) {
			t.Fatalf("Decode consumed %d of %d bytes", used, len(pending))
		}
		pending = pending[used:]
		if err != nil {
			run.code = CodeOf(err)
			if run.code == ErrInternal {
				t.Fatalf("Decode error without a code: %v", err)
			}
			return run
		}
		if limit > 0 && len(pending) >= limit {
			t.Fatalf("%d bytes left unconsumed, read buffer limit %d", len(pending), limit)
		}
		if needer != nil {
			need := needer.Need()
			if need < 0 || (limit > 0 && len(pending)+need > limit) {
				t.Fatalf("Need %d with %d bytes pending, read buffer limit %d", need, len(pending), limit)
			}
		}
	}
	run.left = len(pending)
	return run
}

// requireSameRun fails unless got and want hold the same pieces and end
// the same way.
func requireSameRun(t testing.TB, want, got decodeRun, what string) {
	t.Helper()
	if got.code != want.code {
		t.Fatalf("%s: ended with code %v, want %v", what, got.code, want.code)
	}
	if want.code == StartOK && got.left != want.left {
		t.Fatalf("%s: %d bytes left, want %d", what, got.left, want.left)
	}
	if len(got.pieces) != len(want.pieces) {
		t.Fatalf("%s: %d pieces, want %d\ngot  %s\nwant %s", what, len(got.pieces), len(want.pieces), showPieces(got.pieces), showPieces(want.pieces))
	}
	for i := range want.pieces {
		if !bytes.Equal(got.pieces[i].data, want.pieces[i].data) || got.pieces[i].partial != want.pieces[i].partial {
			t.Fatalf("%s: piece %d is %q partial=%v, want %q partial=%v", what, i,
				got.pieces[i].data, got.pieces[i].partial, want.pieces[i].data, want.pieces[i].partial)
		}
	}
}

func showPieces(ps []piece) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%q", p.data)
		if p.partial {
			b.WriteString("+")
		}
		b.WriteString(" ")
	}
	return b.String()
}

// requireChunkingInvariant decodes stream whole, then cut at every
// position, byte by byte and in random reads, and fails unless every way
// gives the same result as want (the reference's). Keep streams short:
// the cost grows with the square of their length.
func requireChunkingInvariant(t testing.TB, f Framing, stream []byte, on onPiece, want decodeRun) {
	t.Helper()
	requireSameRun(t, want, decodeChunked(t, f, stream, whole, on), "whole")
	for at := 1; at < len(stream); at++ {
		requireSameRun(t, want, decodeChunked(t, f, stream, splitAt(at), on), fmt.Sprintf("split at %d", at))
	}
	requireSameRun(t, want, decodeChunked(t, f, stream, byteByByte, on), "byte by byte")
	for seed := uint64(1); seed <= 20; seed++ {
		requireSameRun(t, want, decodeChunked(t, f, stream, randomChunks(seed, 1+int(seed)*3), on), fmt.Sprintf("random reads, seed %d", seed))
	}
}

// joinParts reassembles pieces delivered in parts into messages.
func joinParts(ps []piece) [][]byte {
	var out [][]byte
	var cur []byte
	open := false
	for _, p := range ps {
		cur = append(cur, p.data...)
		open = p.partial
		if !open {
			out = append(out, append([]byte{}, cur...))
			cur = cur[:0]
		}
	}
	if open {
		out = append(out, append([]byte{}, cur...)) // unfinished: keep it visible
	}
	return out
}

// requireNoAllocs fails if decoding stream (whole) allocates: decoders
// hand out slices of the buffer and keep no copies.
func requireNoAllocs(t *testing.T, f Framing, stream []byte) {
	t.Helper()
	dec := f.NewDecoder()
	emit := func([]byte, bool) {}
	allocs := testing.AllocsPerRun(50, func() {
		_, _ = dec.Decode(stream, emit)
	})
	assert.Zero(t, allocs, "allocations per Decode")
}
