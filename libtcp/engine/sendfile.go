package engine

import (
	"io"
	"net"
	"os"
	"time"
)

// Sending beyond one message: a file (through the kernel's sendfile for
// plain TCP), several buffers as one message, a line.

// fileChunk is how much of a file is sent between progress reports (and
// write-deadline renewals).
const fileChunk = 1 << 20

// FileProgress hears how far a file got: sent of total bytes, then done
// with nil or the reason the file was not sent whole. It runs on a
// library goroutine, in order for one file, possibly while the
// connection's other events run.
type FileProgress interface {
	Progress(sent, total int64)
	Done(err error)
}

// fileItem is a file queued at byte offset at of the connection's queue.
type fileItem struct {
	f        *os.File
	n        int64
	at       int
	progress FileProgress
}

func (f fileItem) finish(err error) {
	f.f.Close()
	if f.progress != nil {
		f.progress.Done(err)
	}
}

func (c *conn) filesQueuedLocked() int {
	n := int64(0)
	for _, f := range c.files {
		n += f.n
	}
	return int(n)
}

// writeSegments writes the queue's bytes with its files in their places.
func (c *conn) writeSegments(buf []byte, files []fileItem) error {
	pos := 0
	for i, f := range files {
		if err := c.writeAll(buf[pos:f.at]); err != nil {
			for _, rest := range files[i:] {
				rest.finish(err)
			}
			return err
		}
		pos = f.at
		err := c.writeFile(f)
		f.finish(err)
		if err != nil {
			for _, rest := range files[i+1:] {
				rest.finish(err)
			}
			return err
		}
	}
	return c.writeAll(buf[pos:])
}

// writeFile sends f from its current offset: by sendfile(2) for plain TCP
// (no copy through user space), by reads and TLS writes otherwise.
func (c *conn) writeFile(f fileItem) error {
	tcp, zeroCopy := c.nc.(*net.TCPConn)
	var sent int64
	buf := []byte(nil)
	for sent < f.n {
		want := min(f.n-sent, fileChunk)
		if wt := c.opts.WriteTimeout; wt > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(wt))
		}
		var n int64
		var err error
		if zeroCopy {
			n, err = tcp.ReadFrom(io.LimitReader(f.f, want))
		} else {
			if buf == nil {
				buf = make([]byte, 64<<10)
			}
			n, err = io.CopyBuffer(c.nc, io.LimitReader(f.f, want), buf)
		}
		sent += n
		c.countOut(int(n))
		c.mu.Lock()
		c.progress++
		c.mu.Unlock()
		if err == nil && n < want {
			err = newError(ErrFile, nil, "file ended after %d of %d bytes", sent, f.n)
		}
		if err != nil {
			return err
		}
		if f.progress != nil {
			f.progress.Progress(sent, f.n)
		}
	}
	return nil
}

// fileHeader is what goes before a file of n bytes sent as one message: a
// length prefix, or nothing for framings that send bytes as given. Framings
// that end a message with a delimiter refuse files, which may hold it.
func fileHeader(fr Framing, n int64) ([]byte, error) {
	switch f := fr.(type) {
	case Continuous, Records:
		return nil, nil
	case LengthPrefixed:
		if n > int64(f.MaxMessage()) {
			return nil, newError(ErrMessageTooLong, nil, "file of %d bytes, maximum message %d", n, f.MaxMessage())
		}
		return appendLength(nil, f, uint64(n)), nil
	}
	return nil, newError(ErrInvalidArg, nil, "files can be sent with continuous, records or length-prefixed framing only (a file may hold the delimiter)")
}

func appendLength(dst []byte, f LengthPrefixed, n uint64) []byte {
	b := make([]byte, 8)
	switch f.PrefixSize() {
	case 1:
		return append(dst, byte(n))
	case 2:
		f.Order().PutUint16(b, uint16(n))
		return append(dst, b[:2]...)
	case 4:
		f.Order().PutUint32(b, uint32(n))
		return append(dst, b[:4]...)
	}
	f.Order().PutUint64(b, n)
	return append(dst, b...)
}

// sendFile queues length bytes of the file at path from offset (length < 0:
// to the end) as one message. The file is opened now (so a wrong path is
// reported at once) and read when its turn comes.
func (c *conn) sendFile(fr Framing, path string, offset, length int64, p FileProgress) error {
	f, err := os.Open(path)
	if err != nil {
		return newError(ErrFile, err, "")
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return newError(ErrFile, err, "%s is not a regular file", path)
	}
	if offset < 0 || offset > st.Size() {
		f.Close()
		return newError(ErrInvalidArg, nil, "offset %d outside %s (%d bytes)", offset, path, st.Size())
	}
	if length < 0 || offset+length > st.Size() {
		if length >= 0 {
			f.Close()
			return newError(ErrInvalidArg, nil, "%d bytes from offset %d pass the end of %s (%d bytes)", length, offset, path, st.Size())
		}
		length = st.Size() - offset
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return newError(ErrFile, err, "seek")
	}
	hdr, err := fileHeader(fr, length)
	if err != nil {
		f.Close()
		return err
	}
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		f.Close()
		return newError(ErrNoClient, nil, "connection %d is closing", c.id)
	}
	c.out = append(c.out, hdr...)
	c.budget.force(int64(len(hdr)))
	c.held += int64(len(hdr))
	c.files = append(c.files, fileItem{f: f, n: length, at: len(c.out), progress: p})
	c.stats.msgsOut.Add(1)
	if !c.writer && !c.corked {
		c.startWriterLocked()
	}
	c.mu.Unlock()
	return nil
}

// joinBuffers makes one message of several buffers (scatter-gather send).
func joinBuffers(bufs [][]byte) []byte {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	out := make([]byte, 0, n)
	for _, b := range bufs {
		out = append(out, b...)
	}
	return out
}

// lineFor is what SendLine sends for line: the line itself with framings
// that end messages on their own, the line and CRLF with those that send
// bytes as given.
func lineFor(fr Framing, line []byte) []byte {
	switch fr.(type) {
	case Continuous, Records:
		return append(append(make([]byte, 0, len(line)+2), line...), '\r', '\n')
	}
	return line
}

// SendFile queues a file for client id as one message (see conn.sendFile).
func (s *Server) SendFile(id int, path string, offset, length int64, p FileProgress) error {
	c, err := s.client(id)
	if err != nil {
		return err
	}
	return c.sendFile(s.framing, path, offset, length, p)
}

// SendV queues several buffers as one message.
func (s *Server) SendV(id int, bufs [][]byte) error { return s.Send(id, joinBuffers(bufs)) }

// SendLine queues a line (see lineFor).
func (s *Server) SendLine(id int, line []byte) error { return s.Send(id, lineFor(s.framing, line)) }

// SendFile queues a file for the server as one message.
func (cl *Client) SendFile(path string, offset, length int64, p FileProgress) error {
	c, err := cl.live()
	if err != nil {
		return err
	}
	return c.sendFile(cl.framing, path, offset, length, p)
}

// SendV queues several buffers as one message.
func (cl *Client) SendV(bufs [][]byte) error { return cl.Send(joinBuffers(bufs)) }

// SendLine queues a line (see lineFor).
func (cl *Client) SendLine(line []byte) error { return cl.Send(lineFor(cl.framing, line)) }
