package engine

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustLengthPrefixed(t testing.TB, size int, order binary.ByteOrder, max int) LengthPrefixed {
	t.Helper()
	l, err := NewLengthPrefixed(size, order, max)
	require.NoError(t, err)
	return l
}

// refLength is the plain reading of a length-prefixed stream.
func refLength(l LengthPrefixed, stream []byte) decodeRun {
	var run decodeRun
	for {
		if len(stream) < l.size {
			run.left = len(stream)
			return run
		}
		n := l.readPrefix(stream)
		if n > uint64(l.max) {
			run.code = ErrMessageTooLong
			return run
		}
		if uint64(len(stream)-l.size) < n {
			run.left = len(stream)
			return run
		}
		run.pieces = append(run.pieces, piece{data: bytes.Clone(stream[l.size : l.size+int(n)])})
		if run.pieces[len(run.pieces)-1].data == nil {
			run.pieces[len(run.pieces)-1].data = []byte{}
		}
		stream = stream[l.size+int(n):]
	}
}

func TestNewLengthPrefixedValidation(t *testing.T) {
	for _, size := range []int{0, 3, 5, 16, -1} {
		_, err := NewLengthPrefixed(size, binary.BigEndian, 10)
		requireCode(t, ErrInvalidArg, err, "size %d", size)
	}
	_, err := NewLengthPrefixed(4, nil, 10)
	requireCode(t, ErrInvalidArg, err, "no byte order")

	_, err = NewLengthPrefixed(1, binary.BigEndian, 256)
	requireCode(t, ErrInvalidArg, err, "a 1-byte prefix counts to 255")
	assert.Equal(t, 255, mustLengthPrefixed(t, 1, binary.BigEndian, 255).MaxMessage())
	assert.Equal(t, 255, mustLengthPrefixed(t, 1, binary.BigEndian, 0).MaxMessage(), "default clamped to the prefix")
	_, err = NewLengthPrefixed(2, binary.LittleEndian, 65536)
	requireCode(t, ErrInvalidArg, err)
	assert.Equal(t, 65535, mustLengthPrefixed(t, 2, binary.LittleEndian, -1).MaxMessage())
	assert.Equal(t, DefaultMaxMessage, mustLengthPrefixed(t, 4, binary.BigEndian, 0).MaxMessage())
	assert.Equal(t, DefaultMaxMessage, mustLengthPrefixed(t, 8, binary.BigEndian, 0).MaxMessage())
	_, err = NewLengthPrefixed(8, binary.BigEndian, math.MaxInt)
	requireCode(t, ErrInvalidArg, err, "prefix plus message must stay addressable")

	l := mustLengthPrefixed(t, 8, binary.LittleEndian, 1000)
	assert.Equal(t, 8, l.PrefixSize())
	assert.Equal(t, binary.LittleEndian, l.Order())
	assert.Equal(t, 1008, ReadBufferLimit(l), "prefix and a whole message")
}

func TestTutorialLengthPrefixed(t *testing.T) {
	l, err := NewTutorialLengthPrefixed(0)
	require.NoError(t, err)
	assert.Equal(t, 4, l.PrefixSize())
	assert.Equal(t, DefaultMaxMessage, l.MaxMessage())
	out, err := l.Encode(nil, []byte("hi"))
	require.NoError(t, err)
	assert.Equal(t, []byte{2, 0, 0, 0, 'h', 'i'}, out, "DWORD size of the data only, little-endian")
}

func TestLengthPrefixedEncode(t *testing.T) {
	cases := []struct {
		size  int
		order binary.ByteOrder
		want  []byte
	}{
		{1, binary.BigEndian, []byte{3}},
		{2, binary.BigEndian, []byte{0, 3}},
		{2, binary.LittleEndian, []byte{3, 0}},
		{4, binary.BigEndian, []byte{0, 0, 0, 3}},
		{4, binary.LittleEndian, []byte{3, 0, 0, 0}},
		{8, binary.BigEndian, []byte{0, 0, 0, 0, 0, 0, 0, 3}},
		{8, binary.LittleEndian, []byte{3, 0, 0, 0, 0, 0, 0, 0}},
	}
	for _, c := range cases {
		l := mustLengthPrefixed(t, c.size, c.order, 5)
		out, err := l.Encode([]byte("x"), []byte("a\x00b"))
		require.NoError(t, err)
		assert.Equal(t, append(append([]byte("x"), c.want...), "a\x00b"...), out, "size %d %v", c.size, c.order)

		out, err = l.Encode(nil, nil)
		require.NoError(t, err)
		assert.Equal(t, make([]byte, c.size), out, "empty message is a zero prefix")

		out, err = l.Encode([]byte("keep"), []byte("123456"))
		requireCode(t, ErrMessageTooLong, err)
		assert.Equal(t, []byte("keep"), out, "a refused message leaves dst as it was")
	}
}

func TestLengthPrefixedDecode(t *testing.T) {
	be := mustLengthPrefixed(t, 2, binary.BigEndian, 10)

	t.Run("round trip at every read boundary", func(t *testing.T) {
		msgs := [][]byte{[]byte("hello"), {}, []byte("0123456789"), {0, 0}, []byte("x")}
		var stream []byte
		for _, m := range msgs {
			var err error
			stream, err = be.Encode(stream, m)
			require.NoError(t, err)
		}
		want := decodeRun{}
		for _, m := range msgs {
			want.pieces = append(want.pieces, piece{data: m})
		}
		requireSameRun(t, want, refLength(be, stream), "reference")
		requireChunkingInvariant(t, be, stream, nil, want)
	})
	t.Run("too long refused at the prefix, before the message", func(t *testing.T) {
		fd := newFeeder(be)
		require.NoError(t, fd.feed([]byte{0, 2, 'o', 'k', 0}))
		assert.Equal(t, [][]byte{[]byte("ok")}, fd.msgs)
		requireCode(t, ErrMessageTooLong, fd.feed([]byte{11}), "refused with the prefix's last byte, no message byte sent")
	})
	t.Run("too long after messages, at every read boundary", func(t *testing.T) {
		stream := []byte{0, 1, 'a', 0, 0, 0xff, 0xff, 'b'}
		want := decodeRun{pieces: []piece{{data: []byte("a")}, {data: []byte{}}}, code: ErrMessageTooLong}
		requireChunkingInvariant(t, be, stream, nil, want)
	})
	t.Run("8-byte prefix over every int", func(t *testing.T) {
		l := mustLengthPrefixed(t, 8, binary.BigEndian, 100)
		fd := newFeeder(l)
		requireCode(t, ErrMessageTooLong, fd.feed(bytes.Repeat([]byte{0xff}, 8)))
		l = mustLengthPrefixed(t, 8, binary.LittleEndian, 100)
		fd = newFeeder(l)
		requireCode(t, ErrMessageTooLong, fd.feed([]byte{0, 0, 0, 0, 0, 0, 0, 0x80}), "high bit set: not a negative length")
	})
	t.Run("byte order matters", func(t *testing.T) {
		le := mustLengthPrefixed(t, 2, binary.LittleEndian, 300)
		fd := newFeeder(le)
		require.NoError(t, fd.feed([]byte{1, 1}))
		assert.Equal(t, 257, fd.dec.(Needer).Need())
		fd = newFeeder(be)
		requireCode(t, ErrMessageTooLong, fd.feed([]byte{1, 0}), "256 in big-endian")
	})
}

// The reader grows its buffer to what Need says: the rest of the prefix,
// then exactly the rest of the message.
func TestLengthPrefixedNeed(t *testing.T) {
	l := mustLengthPrefixed(t, 4, binary.BigEndian, 1000)
	dec := l.NewDecoder()
	need := dec.(Needer)
	assert.Equal(t, 4, need.Need(), "before anything: a prefix")
	emit := func([]byte, bool) {}
	stream, err := l.Encode(nil, bytes.Repeat([]byte("z"), 600))
	require.NoError(t, err)

	n, err := dec.Decode(stream[:3], emit)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	assert.Equal(t, 1, need.Need(), "the prefix's last byte")

	n, err = dec.Decode(stream[:4], emit)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	assert.Equal(t, 600, need.Need(), "the whole message, now that its size is known")

	n, err = dec.Decode(stream[:104], emit)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	assert.Equal(t, 500, need.Need())

	n, err = dec.Decode(stream, emit)
	require.NoError(t, err)
	assert.Equal(t, len(stream), n)
	assert.Equal(t, 4, need.Need(), "the next prefix")
}

func TestLengthPrefixedNoAllocs(t *testing.T) {
	l := mustLengthPrefixed(t, 4, binary.LittleEndian, 100)
	var stream []byte
	for _, m := range []string{"a", "", "bcd", "efgh"} {
		stream, _ = l.Encode(stream, []byte(m))
	}
	requireNoAllocs(t, l, stream)
}

// FuzzLengthPrefixedDecode feeds any bytes as a stream, in the reads cuts
// gives and one byte at a time, and compares with the whole stream at once
// and with the reference reading; then it checks that messages taken from
// raw (cut at '|') come back from their encoding unchanged. decodeChunked
// checks the memory bound after every read.
func FuzzLengthPrefixedDecode(f *testing.F) {
	f.Add(byte(1), true, []byte("\x05hello\x00\x03abc"), []byte{1})
	f.Add(byte(2), true, []byte("\x00\x05hello\xff\xffxx"), []byte{0, 1, 2})
	f.Add(byte(4), false, []byte("\x02\x00\x00\x00hi\x40\x00\x00\x00"), []byte{3})
	f.Add(byte(8), true, []byte("\x80\x00\x00\x00\x00\x00\x00\x00"), []byte{})
	f.Add(byte(8), false, []byte("a|bb||"+string(bytes.Repeat([]byte("c"), fuzzMax+3))), []byte{7, 200})
	f.Fuzz(func(t *testing.T, sizeSel byte, big bool, raw, cuts []byte) {
		size := []int{1, 2, 4, 8}[sizeSel%4]
		var order binary.ByteOrder = binary.LittleEndian
		if big {
			order = binary.BigEndian
		}
		l := mustLengthPrefixed(t, size, order, fuzzMax)

		want := refLength(l, raw)
		requireSameRun(t, want, decodeChunked(t, l, raw, whole, nil), "whole")
		requireSameRun(t, want, decodeChunked(t, l, raw, fuzzChunks(cuts), nil), "fuzzed reads")
		requireSameRun(t, want, decodeChunked(t, l, raw, byteByByte, nil), "byte by byte")

		var stream []byte
		want = decodeRun{}
		for _, m := range bytes.Split(raw, []byte("|")) {
			m = m[:min(len(m), fuzzMax)]
			var err error
			if stream, err = l.Encode(stream, m); err != nil {
				t.Fatalf("encode %q: %v", m, err)
			}
			want.pieces = append(want.pieces, piece{data: m})
		}
		requireSameRun(t, want, decodeChunked(t, l, stream, fuzzChunks(cuts), nil), "round trip")
	})
}
