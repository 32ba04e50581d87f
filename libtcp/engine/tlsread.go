package engine

// readTLS reads into r over TLS (c.rc is nil: crypto/tls buffers records
// itself, so only its Read may wait).
func (c *conn) readTLS(r *recvBuf) (int, error) {
	if r.b == nil {
		return c.readTLSBoundary(r)
	}
	return c.nc.Read(r.b[r.end:])
}

// tlsQuietRead is the buffer of a TLS read at a message boundary after a
// short read. TLS cannot wait for readability without a buffer (its Read
// does the waiting), so a quiet connection -- an idle one, or one whose
// peer sends a request at a time -- waits with these bytes of its own
// instead of a pooled 16 KiB chunk; a read that fills them switches back to
// the chunk (the rest of the record's plaintext stays in the TLS layer).
const tlsQuietRead = 512

// readTLSBoundary reads with nothing pending (TLS): into the connection's
// small buffer while it is quiet, copied into a pooled chunk once bytes
// came, else into the chunk directly.
func (c *conn) readTLSBoundary(r *recvBuf) (int, error) {
	if c.quiet {
		if c.small == nil {
			c.small = make([]byte, tlsQuietRead)
		}
		n, err := c.nc.Read(c.small)
		if n > 0 {
			r.pooled = readPool.Get().(*[]byte)
			r.b = *r.pooled
			copy(r.b[r.end:], c.small[:n])
		}
		c.quiet = n < len(c.small)
		return n, err
	}
	r.pooled = readPool.Get().(*[]byte)
	r.b = *r.pooled
	n, err := c.nc.Read(r.b[r.end:])
	c.quiet = n < tlsQuietRead
	return n, err
}
