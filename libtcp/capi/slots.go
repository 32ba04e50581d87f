package main

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A goroutine that calls into C keeps its OS thread for the whole call, so
// slow callbacks, one per connection, once meant one thread each -- and past
// 10,000 the Go runtime aborts the host ("thread exhaustion"). Every call
// into a user callback therefore holds a slot: at most TCP_OPT_CALLBACK_THREADS
// per handle and maxCallbacksProcess in the process. Events waiting for a
// slot wait in their connection's goroutine, which holds no thread, and that
// connection is not read meanwhile (back-pressure through TCP).
const (
	defaultCallbackThreads = 64
	maxCallbacksProcess    = 4096
)

var processSlots = newSem(maxCallbacksProcess)

// slots bound one handle's concurrent callbacks.
type slots struct{ own atomic.Pointer[sem] }

func newSlots(n int) *slots {
	s := &slots{}
	s.own.Store(newSem(n))
	return s
}

// resize applies TCP_OPT_CALLBACK_THREADS; only while the handle is stopped.
func (s *slots) resize(n int) { s.own.Store(newSem(n)) }

func (s *slots) enter() {
	s.own.Load().acquire()
	processSlots.acquire()
}

func (s *slots) leave() {
	if processSlots.release() == 0 {
		trimmer.poke()
	}
	s.own.Load().release()
}

// sem is a counting semaphore whose uncontended path is one atomic add.
type sem struct {
	n, max  atomic.Int64
	waiters atomic.Int64
	mu      sync.Mutex
	cond    *sync.Cond
}

func newSem(n int) *sem {
	s := &sem{}
	s.max.Store(int64(n))
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *sem) try() bool {
	if s.n.Add(1) <= s.max.Load() {
		return true
	}
	s.n.Add(-1)
	return false
}

func (s *sem) acquire() {
	if s.try() {
		return
	}
	s.mu.Lock()
	s.waiters.Add(1)
	for !s.try() {
		s.cond.Wait()
	}
	s.waiters.Add(-1)
	s.mu.Unlock()
}

// release returns the number of slots still taken.
func (s *sem) release() int64 {
	n := s.n.Add(-1)
	if s.waiters.Load() > 0 {
		s.mu.Lock()
		s.cond.Signal()
		s.mu.Unlock()
	}
	return n
}

// The Go runtime never ends an idle thread. After a burst of slow
// callbacks, the trimmer ends the surplus: a goroutine that locks its thread
// and exits takes the thread with it.
var trimmer = &threadTrimmer{baseline: threadCount()}

func inCallbacks() int64 { return processSlots.n.Load() }

const trimDelay = time.Second

type threadTrimmer struct {
	baseline  int
	scheduled atomic.Bool
}

// poke schedules a trim once callbacks have been idle for trimDelay. It
// runs whenever the last running callback returns: one atomic load when a
// trim is already scheduled.
func (t *threadTrimmer) poke() {
	if !t.scheduled.Load() && t.scheduled.CompareAndSwap(false, true) {
		time.AfterFunc(trimDelay, t.trim)
	}
}

func (t *threadTrimmer) trim() {
	t.scheduled.Store(false)
	if inCallbacks() > 0 {
		return // a later leave() pokes again
	}
	keep := t.baseline + runtime.GOMAXPROCS(0) + 4
	for excess := threadCount() - keep; excess > 0 && inCallbacks() == 0; excess-- {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done)
			// Returning while locked ends this goroutine's thread.
		}()
		<-done
	}
}

// threadCount reads the process's thread count (Linux); 0 if unknown.
func threadCount() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	i := bytes.Index(b, []byte("\nThreads:"))
	if i < 0 {
		return 0
	}
	line := b[i+len("\nThreads:"):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	n, _ := strconv.Atoi(string(bytes.TrimSpace(line)))
	return n
}
