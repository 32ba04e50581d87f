package engine

import (
	"bytes"
	"runtime"
	"strconv"
)

// goroutineID returns the current goroutine's id. It is used only to let
// Stop, called from inside a handler, skip waiting for its own goroutine;
// it is called once per connection and once per Stop, never per message.
func goroutineID() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseInt(string(b), 10, 64)
	return id
}
