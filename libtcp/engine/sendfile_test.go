package engine

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type progressRec struct {
	mu    sync.Mutex
	sent  []int64
	done  chan error
	total int64
}

func (p *progressRec) Progress(sent, total int64) {
	p.mu.Lock()
	p.sent = append(p.sent, sent)
	p.total = total
	p.mu.Unlock()
}
func (p *progressRec) Done(err error) { p.done <- err }

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// A file between two messages arrives whole and in its place, with progress.
func TestSendFileInOrderWithProgress(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Framing
	}{{"continuous", Continuous{}}, {"length-prefixed", mustLength(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newExtRec("server")
			s := newServer(t, tc.f, testOptions(), r)
			port := startServer(t, s)
			c := dial(t, port)
			id := r.waitEstablished(t, 1)[0]
			data := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+3) // > 3 chunks
			path := writeTemp(t, data)
			p := &progressRec{done: make(chan error, 1)}
			require.NoError(t, s.Send(id, []byte("before")))
			require.NoError(t, s.SendFile(id, path, 0, -1, p))
			require.NoError(t, s.Send(id, []byte("after")))
			require.NoError(t, recv(t, p.done, "file done"))
			var want bytes.Buffer
			for _, m := range [][]byte{[]byte("before"), data, []byte("after")} {
				enc, err := tc.f.Encode(nil, m)
				require.NoError(t, err)
				want.Write(enc)
			}
			got := make([]byte, want.Len())
			_, err := io.ReadFull(c, got)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want.Bytes(), got), "stream differs")
			p.mu.Lock()
			assert.GreaterOrEqual(t, len(p.sent), 3)
			assert.Equal(t, int64(len(data)), p.sent[len(p.sent)-1])
			p.mu.Unlock()
		})
	}
}

func mustLength(t *testing.T) LengthPrefixed {
	f, err := NewLengthPrefixed(4, binary.BigEndian, 8<<20)
	require.NoError(t, err)
	return f
}

func TestSendFileRefusals(t *testing.T) {
	r := newExtRec("server")
	s := newServer(t, NewDelimited('\n', 1024), testOptions(), r)
	port := startServer(t, s)
	dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	path := writeTemp(t, []byte("abc"))
	requireCode(t, ErrInvalidArg, s.SendFile(id, path, 0, -1, nil), "delimited framing")
	requireCode(t, ErrFile, s.SendFile(id, filepath.Join(t.TempDir(), "missing"), 0, -1, nil))
	requireCode(t, ErrNoClient, s.SendFile(id+5, path, 0, -1, nil))
}

func TestSendFileRangeAndSendVAndLine(t *testing.T) {
	r := newExtRec("server")
	s := newServer(t, Continuous{}, testOptions(), r)
	port := startServer(t, s)
	c := dial(t, port)
	id := r.waitEstablished(t, 1)[0]
	path := writeTemp(t, []byte("0123456789"))
	requireCode(t, ErrInvalidArg, s.SendFile(id, path, 5, 10, nil), "past the end")
	require.NoError(t, s.SendFile(id, path, 2, 3, nil))
	require.NoError(t, s.SendV(id, [][]byte{[]byte("a"), nil, []byte("bc")}))
	require.NoError(t, s.SendLine(id, []byte("line")))
	want := "234abcline\r\n"
	got := make([]byte, len(want))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, want, string(got))
}
