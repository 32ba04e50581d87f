package engine

import (
	"bytes"
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
	})
}
