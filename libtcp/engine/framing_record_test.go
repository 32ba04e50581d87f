package engine

import (
	"bytes"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustRecords(t testing.TB, length, max int) Records {
	t.Helper()
	r, err := NewRecords(length, max)
	require.NoError(t, err)
	return r
}

// refRecords cuts s into records: the first of length first, each next
// one of the length next gives after the n-th record (n from 1).
func refRecords(first int, next func(n int) int, s []byte) decodeRun {
	var run decodeRun
	length := first
	for len(s) >= length {
		run.pieces = append(run.pieces, clonePiece(s[:length], false))
		s = s[length:]
		if next != nil {
			length = next(len(run.pieces))
		}
	}
	run.left = len(s)
	return run
}

// setLengths changes the record length from the message callback, as
// ChangeRecordLength in DataIn does.
func setLengths(t testing.TB, next func(n int) int) onPiece {
	return func(dec Decoder, n int, _ piece) {
		if err := dec.(RecordLengthSetter).SetRecordLength(next(n)); err != nil {
			t.Fatalf("SetRecordLength: %v", err)
		}
	}
}

func TestNewRecordsValidation(t *testing.T) {
	_, err := NewRecords(-1, 10)
	requireCode(t, ErrInvalidArg, err)
	_, err = NewRecords(11, 10)
	requireCode(t, ErrInvalidArg, err, "longer than the maximum")

	r := mustRecords(t, 16, 0)
	assert.Equal(t, 16, r.RecordLength())
	assert.Equal(t, DefaultMaxMessage, r.MaxMessage())
	r = mustRecords(t, DefaultMaxMessage+5, 0)
	assert.Equal(t, DefaultMaxMessage+5, r.MaxMessage(), "the default maximum makes room for the length")
	r = mustRecords(t, 0, 100)
	assert.Equal(t, 0, r.RecordLength())
	assert.Equal(t, 100, ReadBufferLimit(r))

	dec := mustRecords(t, 4, 100).NewDecoder().(RecordLengthSetter)
	requireCode(t, ErrInvalidArg, dec.SetRecordLength(101))
	requireCode(t, ErrInvalidArg, dec.SetRecordLength(-1))
	assert.Equal(t, 4, dec.RecordLength(), "a refused change changes nothing")
	require.NoError(t, dec.SetRecordLength(100))
	require.NoError(t, dec.SetRecordLength(0))
	assert.Equal(t, 0, dec.RecordLength())
}

// Sending is not framed, as IPWorks' TCPServer sends what it is given.
func TestRecordsEncodeSendsAsGiven(t *testing.T) {
	r := mustRecords(t, 4, 8)
	for _, m := range []string{"", "ab", "abcd", "abcdefghij"} {
		out, err := r.Encode([]byte(">"), []byte(m))
		require.NoError(t, err)
		assert.Equal(t, []byte(">"+m), out)
	}
}

func TestRecordsDecode(t *testing.T) {
	stream := []byte("abcdefghijklmnopq")
	t.Run("fixed", func(t *testing.T) {
		r := mustRecords(t, 4, 10)
		want := refRecords(4, nil, stream)
		assert.Equal(t, 4, len(want.pieces))
		assert.Equal(t, 1, want.left)
		requireChunkingInvariant(t, r, stream, nil, want)
	})
	t.Run("length 1", func(t *testing.T) {
		requireChunkingInvariant(t, mustRecords(t, 1, 10), stream, nil, refRecords(1, nil, stream))
	})
	// A header record announces the next record's length, as a protocol
	// using ChangeRecordLength from DataIn would: the change applies to the
	// very next record whatever the reads were.
	t.Run("changed from the callback", func(t *testing.T) {
		r := mustRecords(t, 1, 10)
		stream := []byte("\x03abc\x05hello\x01x")
		next := func(n int) int { return []int{3, 1, 5, 1, 1, 1}[n-1] }
		want := refRecords(1, next, stream)
		assert.Equal(t, lines("\x03", "abc", "\x05", "hello", "\x01", "x"), want)
		requireChunkingInvariant(t, r, stream, setLengths(t, next), want)
	})
}

// Bytes already buffered when the length changes are cut with the new
// length from the next record boundary: the record being accumulated is
// completed to the new length, delivered ones are never cut again.
func TestRecordsChangeWithBytesBuffered(t *testing.T) {
	r := mustRecords(t, 8, 16)
	fd := newFeeder(r)
	setter := fd.dec.(RecordLengthSetter)
	needer := fd.dec.(Needer)

	require.NoError(t, fd.feed([]byte("12345678abc")))
	assert.Equal(t, [][]byte{[]byte("12345678")}, fd.msgs)
	assert.Equal(t, 5, needer.Need())

	require.NoError(t, setter.SetRecordLength(4))
	assert.Equal(t, 1, needer.Need(), "Need follows the new length at once")
	require.NoError(t, fd.feed([]byte("d")))
	assert.Equal(t, [][]byte{[]byte("12345678"), []byte("abcd")}, fd.msgs)

	require.NoError(t, fd.feed([]byte("xy")))
	require.NoError(t, setter.SetRecordLength(1))
	assert.Equal(t, 0, needer.Need(), "a shorter length completed records in the tail: they wait for the next read")
	require.NoError(t, fd.feed([]byte("z")))
	assert.Equal(t, [][]byte{[]byte("12345678"), []byte("abcd"), []byte("x"), []byte("y"), []byte("z")}, fd.msgs)
}

// Length 0 delivers bytes as they arrive; a length set from the callback
// cuts records again from there.
func TestRecordsLengthZero(t *testing.T) {
	r := mustRecords(t, 0, 10)
	fd := newFeeder(r)
	require.NoError(t, fd.feed([]byte("abc")))
	require.NoError(t, fd.feed([]byte("de")))
	assert.Equal(t, [][]byte{[]byte("abc"), []byte("de")}, fd.msgs)
	assert.Equal(t, 0, fd.dec.(Needer).Need())
	require.NoError(t, fd.feed([]byte("0123456789ABCDEF")))
	assert.Equal(t, [][]byte{[]byte("abc"), []byte("de"), []byte("0123456789"), []byte("ABCDEF")}, fd.msgs, "never more than max at once")

	r = mustRecords(t, 2, 32)
	stream := []byte("HDbody-of-any-size")
	// After the 2-byte header record, switch to "as received".
	run := decodeChunked(t, r, stream, whole, setLengths(t, func(int) int { return 0 }))
	assert.Equal(t, lines("HD", "body-of-any-size"), run)
	for at := 1; at < len(stream); at++ {
		run := decodeChunked(t, r, stream, splitAt(at), setLengths(t, func(int) int { return 0 }))
		assert.Equal(t, "HD", string(run.pieces[0].data))
		var rest []byte
		for _, p := range run.pieces[1:] {
			rest = append(rest, p.data...)
		}
		assert.Equal(t, "body-of-any-size", string(rest), "split at %d: no byte lost or reordered", at)
	}
}

// Changes from another goroutine while the reader decodes: no byte is
// lost or reordered, every record has a length that was in force (run
// with -race).
func TestRecordsConcurrentChange(t *testing.T) {
	r := mustRecords(t, 3, 16)
	fd := newFeeder(r)
	setter := fd.dec.(RecordLengthSetter)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = setter.SetRecordLength([]int{3, 5, 16, 1}[i%4])
		}
	}()
	var stream []byte
	for i := 0; i < 20000; i++ {
		stream = append(stream, byte(i), byte(i>>8))
	}
	chunks := randomChunks(7, 40)
	for i, rest := 0, stream; len(rest) > 0; i++ {
		n := min(chunks(i), len(rest))
		require.NoError(t, fd.feed(rest[:n]))
		rest = rest[n:]
	}
	close(stop)
	wg.Wait()
	got := append(bytes.Join(fd.msgs, nil), fd.pending...)
	assert.Equal(t, stream, got)
	for _, m := range fd.msgs {
		assert.Contains(t, []int{3, 5, 16, 1}, len(m))
	}
}

func TestRecordsNoAllocs(t *testing.T) {
	requireNoAllocs(t, mustRecords(t, 4, 10), []byte("abcdefghijkl"))
}

// FuzzRecordsDecode decodes any stream while the message callback sets
// the next record length from lens (0 included: bytes as received). It
// checks that no byte is lost or reordered, that every record has the
// length in force, the memory bound (decodeChunked), and, when the
// schedule never uses 0 (whose pieces follow the reads), that any reads
// give the reference result.
func FuzzRecordsDecode(f *testing.F) {
	f.Add(byte(4), []byte{}, []byte("abcdefghijklmnopq"), []byte{1, 2, 3})
	f.Add(byte(1), []byte{3, 1, 5, 1}, []byte("\x03abc\x05hello\x01x"), []byte{0})
	f.Add(byte(2), []byte{0}, []byte("HDbody"), []byte{2, 5})
	f.Add(byte(64), []byte{64, 1, 0, 7}, bytes.Repeat([]byte("r"), 200), []byte{63, 64, 65})
	f.Fuzz(func(t *testing.T, first byte, lens, raw, cuts []byte) {
		const max = fuzzMax
		length := int(first) % (max + 1)
		r := mustRecords(t, length, max)
		next := func(n int) int {
			if len(lens) == 0 {
				return length
			}
			return int(lens[(n-1)%len(lens)]) % (max + 1)
		}
		usesZero := length == 0
		for _, l := range lens {
			usesZero = usesZero || int(l)%(max+1) == 0
		}
		for _, size := range []chunker{whole, fuzzChunks(cuts), byteByByte} {
			inForce := length
			run := decodeChunked(t, r, raw, size, func(dec Decoder, n int, p piece) {
				if inForce != 0 && len(p.data) != inForce {
					t.Fatalf("record %d has %d bytes, length in force %d", n, len(p.data), inForce)
				}
				inForce = next(n)
				setLengths(t, next)(dec, n, p)
			})
			var got []byte
			for _, p := range run.pieces {
				got = append(got, p.data...)
			}
			if !bytes.Equal(got, raw[:len(raw)-run.left]) {
				t.Fatalf("records do not add up to the stream")
			}
			if !usesZero {
				requireSameRun(t, refRecords(length, next, raw), run, "reads")
			}
		}
	})
}
