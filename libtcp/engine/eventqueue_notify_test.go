//go:build linux

package engine

import (
	"syscall"
	"testing"
)

// readNotify reads the eventfd: true if it was readable.
func readNotify(t *testing.T, fd int) bool {
	t.Helper()
	var b [8]byte
	n, err := syscall.Read(fd, b[:])
	if err == syscall.EAGAIN {
		return false
	}
	if err != nil || n != 8 {
		t.Fatalf("read eventfd: %d, %v", n, err)
	}
	return true
}

func TestEventQueueNotifyFD(t *testing.T) {
	q := NewEventQueue(0)
	q.started()
	fd, err := q.NotifyFD()
	if err != nil {
		t.Fatal(err)
	}
	if fd2, _ := q.NotifyFD(); fd2 != fd {
		t.Fatalf("second NotifyFD gave %d, want the same %d", fd2, fd)
	}
	if readNotify(t, fd) {
		t.Fatal("readable with nothing queued")
	}
	q.Message(1, []byte("a"))
	if !readNotify(t, fd) {
		t.Fatal("not readable after a message")
	}
	q.Message(1, []byte("b")) // not re-armed: no poll found the queue empty yet
	if readNotify(t, fd) {
		t.Fatal("written again before a poll found the queue empty")
	}
	buf := make([]byte, 1024)
	if n, _, err := q.Poll(buf, 0); n != 2 || err != nil {
		t.Fatalf("poll: %d, %v", n, err)
	}
	if n, _, err := q.Poll(buf, 0); n != 0 || err != nil { // empty: re-arms
		t.Fatalf("poll: %d, %v", n, err)
	}
	q.Closed(1)
	if !readNotify(t, fd) {
		t.Fatal("not readable after a record following an empty poll")
	}
	q.Poll(buf, 0)
	q.Poll(buf, 0)
	q.stopped()
	if !readNotify(t, fd) {
		t.Fatal("not readable after stop")
	}
	if _, _, err := q.Poll(buf, 0); CodeOf(err) != ErrNotRunning {
		t.Fatalf("poll after stop: %v", err)
	}
	q.CloseNotify()
	q.CloseNotify()
	q.Message(2, []byte("c")) // no descriptor any more: nothing written anywhere
}
