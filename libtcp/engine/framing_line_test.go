package engine

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustEOL(t testing.TB, eol string, max int, o Overlong) EOLLines {
	t.Helper()
	l, err := NewEOLLines([]byte(eol), max, o)
	require.NoError(t, err)
	return l
}

func mustText(t testing.TB, sendEOL string, max int, o Overlong) TextLines {
	t.Helper()
	l, err := NewTextLines([]byte(sendEOL), max, o)
	require.NoError(t, err)
	return l
}

func clonePiece(b []byte, partial bool) piece {
	return piece{data: append([]byte{}, b...), partial: partial}
}

// refEOL reads a stream the plain way: a line ends at the first whole
// EOL; where no EOL can end a line within max bytes (none whole, and the
// stream's last bytes do not begin one early enough) the line is overlong.
func refEOL(eol []byte, max int, parts bool, s []byte) decodeRun {
	var run decodeRun
	for {
		p := bytes.Index(s, eol)
		if p < 0 {
			p = 0
			for p < len(s) && !(len(s)-p < len(eol) && bytes.HasPrefix(eol, s[p:])) {
				p++
			}
			if p <= max {
				run.left = len(s)
				return run
			}
		} else if p <= max {
			run.pieces = append(run.pieces, clonePiece(s[:p], false))
			s = s[p+len(eol):]
			continue
		}
		if !parts {
			run.code = ErrMessageTooLong
			return run
		}
		run.pieces = append(run.pieces, clonePiece(s[:max], true))
		s = s[max:]
	}
}

// refText reads CR, LF or CRLF lines the plain way.
func refText(max int, parts bool, s []byte) decodeRun {
	var run decodeRun
	afterCR := false
	for {
		if afterCR && len(s) > 0 {
			afterCR = false
			if s[0] == '\n' {
				s = s[1:]
				continue
			}
		}
		p := bytes.IndexAny(s, "\r\n")
		if p >= 0 && p <= max {
			run.pieces = append(run.pieces, clonePiece(s[:p], false))
			afterCR = s[p] == '\r'
			s = s[p+1:]
			continue
		}
		if p < 0 && len(s) <= max {
			run.left = len(s)
			return run
		}
		if !parts {
			run.code = ErrMessageTooLong
			return run
		}
		run.pieces = append(run.pieces, clonePiece(s[:max], true))
		s = s[max:]
	}
}

func lines(ls ...string) decodeRun {
	var run decodeRun
	for _, l := range ls {
		partial := len(l) > 0 && l[len(l)-1] == '+'
		if partial {
			l = l[:len(l)-1]
		}
		run.pieces = append(run.pieces, piece{data: []byte(l), partial: partial})
	}
	return run
}

func TestNewEOLLinesValidation(t *testing.T) {
	_, err := NewEOLLines(nil, 10, OverlongClose)
	requireCode(t, ErrInvalidArg, err, "empty EOL")
	_, err = NewEOLLines(make([]byte, MaxEOLLength+1), 10, OverlongClose)
	requireCode(t, ErrInvalidArg, err, "EOL too long")
	_, err = NewEOLLines([]byte("\r\n"), 10, Overlong(2))
	requireCode(t, ErrInvalidArg, err, "unknown overlong mode")
	_, err = NewEOLLines([]byte("\r\n"), int(^uint(0)>>1), OverlongClose)
	requireCode(t, ErrInvalidArg, err, "max plus EOL overflows")

	l := mustEOL(t, "\x00\x00", 0, OverlongParts)
	assert.Equal(t, DefaultMaxMessage, l.MaxMessage())
	assert.Equal(t, DefaultMaxMessage+2, ReadBufferLimit(l))
	assert.Equal(t, OverlongParts, l.Overlong())

	eol := []byte("ab")
	l, err = NewEOLLines(eol, 5, OverlongClose)
	require.NoError(t, err)
	eol[0] = 'X'
	got := l.EOL()
	assert.Equal(t, []byte("ab"), got, "the EOL is copied in")
	got[0] = 'Y'
	assert.Equal(t, []byte("ab"), l.EOL(), "and out")
}

func TestNewTextLinesValidation(t *testing.T) {
	for _, bad := range []string{"\n\r", "\r\r", "x", "\r\n\r\n", "\x00"} {
		_, err := NewTextLines([]byte(bad), 10, OverlongClose)
		requireCode(t, ErrInvalidArg, err, "send EOL %q", bad)
	}
	_, err := NewTextLines(nil, 10, Overlong(-1))
	requireCode(t, ErrInvalidArg, err)
	l := mustText(t, "", 0, OverlongClose)
	assert.Equal(t, []byte("\r\n"), l.SendEOL(), "CRLF by default")
	assert.Equal(t, DefaultMaxMessage, l.MaxMessage())
	assert.Equal(t, DefaultMaxMessage+1, ReadBufferLimit(l))
	for _, ok := range []string{"\r", "\n", "\r\n"} {
		assert.Equal(t, []byte(ok), mustText(t, ok, 10, OverlongParts).SendEOL())
	}
}

func TestEOLLinesEncode(t *testing.T) {
	l := mustEOL(t, "\r\n", 5, OverlongClose)
	out, err := l.Encode([]byte(">"), []byte("hello"))
	require.NoError(t, err)
	assert.Equal(t, []byte(">hello\r\n"), out)
	out, err = l.Encode(nil, []byte("a\rb\n\r"))
	require.NoError(t, err, "CR and LF alone are data, a CR at the end too")
	assert.Equal(t, []byte("a\rb\n\r\r\n"), out)

	for _, bad := range []struct {
		eol, msg string
		code     Code
	}{
		{"\r\n", "a\r\nb", ErrContainsDelimiter},
		{"\r\n", "123456", ErrMessageTooLong},
		{"aa", "xa", ErrContainsDelimiter},          // "xaaa" reads as line "x"
		{"aba", "xab", ErrContainsDelimiter},        // "xababa" reads as "x"
		{"\x00\x00", "z\x00", ErrContainsDelimiter}, // "z\x00\x00\x00" reads as "z"
	} {
		l := mustEOL(t, bad.eol, 5, OverlongClose)
		stream := []byte("keep")
		out, err := l.Encode(stream, []byte(bad.msg))
		requireCode(t, bad.code, err, "eol %q msg %q", bad.eol, bad.msg)
		assert.Equal(t, []byte("keep"), out)
	}

	parts := mustEOL(t, "\n", 3, OverlongParts)
	out, err = parts.Encode(nil, []byte("longer"))
	require.NoError(t, err, "in parts mode a long line is sent: the peer gets it in parts")
	assert.Equal(t, []byte("longer\n"), out)
}

// Every message Encode accepts comes back whole from the decoder.
func TestEOLLinesEncodeAgreesWithDecode(t *testing.T) {
	for _, eol := range []string{"aa", "aba", "abab", "\x00\x00\x00", "ab", "\r\n"} {
		l := mustEOL(t, eol, 8, OverlongClose)
		alphabet := []byte("ab\x00\r\n")
		// Every message of up to 4 letters.
		var msgs [][]byte
		var gen func(prefix []byte)
		gen = func(prefix []byte) {
			msgs = append(msgs, append([]byte{}, prefix...))
			if len(prefix) == 4 {
				return
			}
			for _, c := range alphabet {
				gen(append(prefix, c))
			}
		}
		gen(nil)
		for _, m := range msgs {
			enc, err := l.Encode(nil, m)
			run := refEOL([]byte(eol), 8, false, enc)
			decodedWhole := len(run.pieces) == 1 && bytes.Equal(run.pieces[0].data, m) && run.left == 0
			if err == nil {
				require.True(t, decodedWhole, "eol %q: %q accepted but reads as %s", eol, m, showPieces(run.pieces))
			} else {
				require.False(t, decodedWhole, "eol %q: %q refused though it reads back whole", eol, m)
			}
		}
	}
}

func TestTextLinesEncode(t *testing.T) {
	for _, c := range []struct{ eol, want string }{{"", "hi\r\n"}, {"\r", "hi\r"}, {"\n", "hi\n"}, {"\r\n", "hi\r\n"}} {
		out, err := mustText(t, c.eol, 5, OverlongClose).Encode(nil, []byte("hi"))
		require.NoError(t, err)
		assert.Equal(t, []byte(c.want), out)
	}
	l := mustText(t, "", 5, OverlongClose)
	for _, bad := range []string{"a\rb", "a\nb", "\r", "x\n"} {
		out, err := l.Encode([]byte("keep"), []byte(bad))
		requireCode(t, ErrContainsDelimiter, err, "%q", bad)
		assert.Equal(t, []byte("keep"), out)
	}
	_, err := l.Encode(nil, []byte("123456"))
	requireCode(t, ErrMessageTooLong, err)
	out, err := mustText(t, "\n", 5, OverlongParts).Encode(nil, []byte("123456"))
	require.NoError(t, err)
	assert.Equal(t, []byte("123456\n"), out)
	out, err = l.Encode(nil, []byte("a\x00b"))
	require.NoError(t, err, "NUL is data")
	assert.Equal(t, []byte("a\x00b\r\n"), out)
}

func TestEOLLinesDecode(t *testing.T) {
	cases := []struct {
		name, eol string
		max       int
		o         Overlong
		stream    string
		want      decodeRun
	}{
		{"CRLF", "\r\n", 10, OverlongClose, "one\r\ntwo\r\n\r\nthree", withLeft(lines("one", "two", ""), 5)},
		{"bare CR and LF are data", "\r\n", 10, OverlongClose, "a\rb\nc\r\r\n", lines("a\rb\nc\r")},
		{"NUL in EOL", "\x00\xff\x00", 10, OverlongClose, "x\x00\xff\x00\x00\x00\xff\x00y\x00\xff", withLeft(lines("x", "\x00"), 3)},
		{"self-overlapping EOL", "aa", 10, OverlongClose, "xaaayaaaa", withLeft(lines("x", "ay", ""), 0)},
		{"exactly max", "\r\n", 4, OverlongClose, "1234\r\n", lines("1234")},
		{"max+1 closes", "\r\n", 4, OverlongClose, "ok\r\n12345\r\n", withCode(lines("ok"), ErrMessageTooLong)},
		{"max+1 without EOL closes", "\r\n", 4, OverlongClose, "12345", withCode(lines(), ErrMessageTooLong)},
		{"max then half an EOL waits", "\r\n", 4, OverlongClose, "1234\r", withLeft(lines(), 5)},
		{"max then not the EOL closes", "\r\n", 4, OverlongClose, "1234\rx", withCode(lines(), ErrMessageTooLong)},
		{"parts", "\r\n", 4, OverlongParts, "123456789\r\nab\r\n", lines("1234+", "5678+", "9", "ab")},
		{"parts, multiple of max", "\r\n", 4, OverlongParts, "12345678\r\n", lines("1234+", "5678")},
		{"parts, EOL straddles the cut", "\r\n", 4, OverlongParts, "1234\r\n12345\r\n", lines("1234", "1234+", "5")},
		{"parts wait for a possible EOL", "\r\n", 4, OverlongParts, "1234\r", withLeft(lines(), 5)},
		{"parts of a line still open", "\r\n", 4, OverlongParts, "123456789", withLeft(lines("1234+", "5678+"), 1)},
		{"parts, long EOL", "<END>", 3, OverlongParts, "abcd<EN<END>", lines("abc+", "d<E+", "N")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := mustEOL(t, c.eol, c.max, c.o)
			requireSameRun(t, c.want, refEOL([]byte(c.eol), c.max, c.o == OverlongParts, []byte(c.stream)), "reference")
			requireChunkingInvariant(t, l, []byte(c.stream), nil, c.want)
		})
	}
}

func withLeft(r decodeRun, left int) decodeRun { r.left = left; return r }
func withCode(r decodeRun, c Code) decodeRun   { r.code = c; return r }

func TestTextLinesDecode(t *testing.T) {
	cases := []struct {
		name   string
		max    int
		o      Overlong
		stream string
		want   decodeRun
	}{
		{"CR, LF, CRLF", 10, OverlongClose, "a\rb\nc\r\nd", withLeft(lines("a", "b", "c"), 1)},
		{"empty lines", 10, OverlongClose, "\n\n\r\r\r\n\n\r", lines("", "", "", "", "", "", "")},
		// "\r\n" is one end; "\n\r" two.
		{"CRLF vs LFCR", 10, OverlongClose, "x\r\ny\n\rz\r\n", lines("x", "y", "", "z")},
		{"CR at the end is delivered at once", 10, OverlongClose, "cmd\r", lines("cmd")},
		{"NUL is data", 10, OverlongClose, "a\x00b\r\n", lines("a\x00b")},
		{"exactly max", 3, OverlongClose, "abc\rdef\n", lines("abc", "def")},
		{"max+1 closes", 3, OverlongClose, "ab\nabcd\n", withCode(lines("ab"), ErrMessageTooLong)},
		{"max+1 without end closes", 3, OverlongClose, "abcd", withCode(lines(), ErrMessageTooLong)},
		{"max waits", 3, OverlongClose, "abc", withLeft(lines(), 3)},
		{"parts", 3, OverlongParts, "abcdefg\r\nhi\n", lines("abc+", "def+", "g", "hi")},
		{"parts, CR at the cut", 3, OverlongParts, "abc\r\nabcd\r\n", lines("abc", "abc+", "d")},
		{"parts, still open", 3, OverlongParts, "abcdefg", withLeft(lines("abc+", "def+"), 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := mustText(t, "", c.max, c.o)
			requireSameRun(t, c.want, refText(c.max, c.o == OverlongParts, []byte(c.stream)), "reference")
			requireChunkingInvariant(t, l, []byte(c.stream), nil, c.want)
		})
	}
}

// A CRLF split between two reads is one end of line: the CR ends the line
// at once, and the LF that comes next is swallowed, not an empty line.
func TestTextLinesCRLFAcrossReads(t *testing.T) {
	fd := newFeeder(mustText(t, "", 10, OverlongClose))
	require.NoError(t, fd.feed([]byte("one\r")))
	assert.Equal(t, [][]byte{[]byte("one")}, fd.msgs, "no wait for the next byte")
	require.NoError(t, fd.feed([]byte("\n")))
	require.NoError(t, fd.feed([]byte("\n")))
	assert.Equal(t, [][]byte{[]byte("one"), {}}, fd.msgs, "the LF of CRLF is no line; the second LF is an empty one")
	require.NoError(t, fd.feed([]byte("\r")))
	require.NoError(t, fd.feed([]byte("\r")))
	require.NoError(t, fd.feed([]byte("\n")))
	assert.Equal(t, [][]byte{[]byte("one"), {}, {}, {}}, fd.msgs)
	assert.Empty(t, fd.pending)
}

// Many lines of one kind in a buffer: linear work, not a search of the
// whole buffer for the other kind per line.
func TestTextLinesManyShortLines(t *testing.T) {
	l := mustText(t, "", 100, OverlongClose)
	stream := bytes.Repeat([]byte("x\r"), 200000)
	stream = append(stream, "end\n"...)
	n := 0
	_, err := l.NewDecoder().Decode(stream, func([]byte, bool) { n++ })
	require.NoError(t, err)
	assert.Equal(t, 200001, n)
}

func TestLinesNoAllocs(t *testing.T) {
	requireNoAllocs(t, mustEOL(t, "\r\n", 4, OverlongParts), []byte("ab\r\n123456\r\n\r\n"))
	requireNoAllocs(t, mustText(t, "", 4, OverlongParts), []byte("ab\r\n123456\n\r\rx\n"))
}

// Round trips: messages sent with Encode come back, whole or (parts mode)
// as parts that join into them, at every read boundary.
func TestLinesRoundTrip(t *testing.T) {
	msgs := [][]byte{[]byte("hello"), {}, []byte("12345678"), []byte("123456789abcdefgh"), []byte("x\x00y")}
	for _, f := range []Framing{
		mustEOL(t, "\r\n", 8, OverlongParts),
		mustEOL(t, "\x00\x00", 8, OverlongParts),
		mustText(t, "\r", 8, OverlongParts),
		mustText(t, "\n", 8, OverlongParts),
		mustText(t, "\r\n", 8, OverlongParts),
	} {
		t.Run(fmt.Sprintf("%T %q", f, encodedEOL(t, f)), func(t *testing.T) {
			var stream []byte
			var err error
			for _, m := range msgs {
				stream, err = f.Encode(stream, m)
				require.NoError(t, err)
			}
			run := decodeChunked(t, f, stream, whole, nil)
			assert.Equal(t, msgs, joinParts(run.pieces))
			requireChunkingInvariant(t, f, stream, nil, run)
		})
	}
}

func encodedEOL(t *testing.T, f Framing) []byte {
	out, err := f.Encode(nil, nil)
	require.NoError(t, err)
	return out
}

// fuzzEOL makes a 1..8-byte EOL from fuzz input ("\r\n" for none).
func fuzzEOL(raw []byte) []byte {
	if len(raw) == 0 {
		return []byte("\r\n")
	}
	return raw[:min(len(raw), 8)]
}

// FuzzEOLLinesDecode decodes any stream with any EOL (and maximum, and
// overlong mode) in fuzzed reads and byte by byte, and compares with the
// reference reading of the whole stream; then messages cut from the stream
// at the EOL go through Encode and must come back (joined, in parts mode).
func FuzzEOLLinesDecode(f *testing.F) {
	f.Add([]byte("\r\n"), byte(4), true, []byte("123456789\r\nab\r\n1234\r"), []byte{1, 2})
	f.Add([]byte("\x00\x00"), byte(10), false, []byte("a\x00\x00\x00b\x00"), []byte{0})
	f.Add([]byte("aa"), byte(2), true, []byte("xaaayaaaaaa"), []byte{3, 1})
	f.Add([]byte("<END>"), byte(3), true, []byte("abcd<EN<END><E"), []byte{})
	f.Add([]byte("\n"), byte(63), false, bytes.Repeat([]byte("z"), 100), []byte{50})
	f.Fuzz(func(t *testing.T, eolRaw []byte, maxSel byte, parts bool, raw, cuts []byte) {
		eol := fuzzEOL(eolRaw)
		max := 1 + int(maxSel)%fuzzMax
		o := OverlongClose
		if parts {
			o = OverlongParts
		}
		l := mustEOL(t, string(eol), max, o)

		want := refEOL(eol, max, parts, raw)
		requireSameRun(t, want, decodeChunked(t, l, raw, whole, nil), "whole")
		requireSameRun(t, want, decodeChunked(t, l, raw, fuzzChunks(cuts), nil), "fuzzed reads")
		requireSameRun(t, want, decodeChunked(t, l, raw, byteByByte, nil), "byte by byte")

		var stream []byte
		var msgs [][]byte
		for _, m := range bytes.Split(raw, eol) {
			if !parts {
				m = m[:min(len(m), max)]
			}
			var err error
			var out []byte
			if out, err = l.Encode(stream, m); err != nil {
				if CodeOf(err) != ErrContainsDelimiter {
					t.Fatalf("encode %q: %v", m, err)
				}
				continue // its end would begin an EOL early: refused, rightly
			}
			stream = out
			msgs = append(msgs, m)
		}
		run := decodeChunked(t, l, stream, fuzzChunks(cuts), nil)
		if run.code != StartOK || run.left != 0 {
			t.Fatalf("round trip ended with %v, %d bytes left", run.code, run.left)
		}
		if got := joinParts(run.pieces); !equalMsgs(got, msgs) {
			t.Fatalf("round trip: got %q, want %q", got, msgs)
		}
	})
}

// FuzzTextLinesDecode does the same for CR/LF/CRLF lines.
func FuzzTextLinesDecode(f *testing.F) {
	f.Add(byte(0), byte(3), true, []byte("abcdefg\r\nhi\n\r\r\n"), []byte{1})
	f.Add(byte(1), byte(10), false, []byte("x\r\ny\n\rz\r"), []byte{1, 0})
	f.Add(byte(2), byte(2), true, []byte("\r\n\r\n\n\r"), []byte{2})
	f.Add(byte(0), byte(63), false, bytes.Repeat([]byte("q"), 70), []byte{})
	f.Fuzz(func(t *testing.T, eolSel, maxSel byte, parts bool, raw, cuts []byte) {
		sendEOL := []string{"\r\n", "\r", "\n"}[eolSel%3]
		max := 1 + int(maxSel)%fuzzMax
		o := OverlongClose
		if parts {
			o = OverlongParts
		}
		l := mustText(t, sendEOL, max, o)

		want := refText(max, parts, raw)
		requireSameRun(t, want, decodeChunked(t, l, raw, whole, nil), "whole")
		requireSameRun(t, want, decodeChunked(t, l, raw, fuzzChunks(cuts), nil), "fuzzed reads")
		requireSameRun(t, want, decodeChunked(t, l, raw, byteByByte, nil), "byte by byte")

		var stream []byte
		var msgs [][]byte
		for _, b := range splitCRLF(raw) {
			if !parts {
				b = b[:min(len(b), max)]
			}
			var err error
			if stream, err = l.Encode(stream, b); err != nil {
				t.Fatalf("encode %q: %v", b, err)
			}
			msgs = append(msgs, b)
		}
		run := decodeChunked(t, l, stream, fuzzChunks(cuts), nil)
		if run.code != StartOK || run.left != 0 {
			t.Fatalf("round trip ended with %v, %d bytes left", run.code, run.left)
		}
		if got := joinParts(run.pieces); !equalMsgs(got, msgs) {
			t.Fatalf("round trip: got %q, want %q", got, msgs)
		}
	})
}

// splitCRLF cuts b at every CR and LF, keeping empty pieces.
func splitCRLF(b []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			return append(out, b)
		}
		out = append(out, b[:i])
		b = b[i+1:]
	}
}

func equalMsgs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
