package engine

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Large buffers of hostile or bursty peers are garbage once their
// connection is done, but the Go runtime hands freed pages back to the OS
// only slowly (minutes for a gigabyte). After enough big buffers were
// dropped, the releaser returns memory at once -- at most once per
// releaseEvery, so a busy server does not collect in a loop.
//
// Many small buffers (a burst of ordinary connections) never add up in
// noteBigFree, yet leave the heap as large as the burst needed: without a
// collection (the runtime forces one only every two minutes) the scavenger
// keeps those pages. So a watcher, started with the first server, looks
// once per idleCheck: when the process allocated less than idleAllocs since
// the last look and its heap holds idleSlack or more beyond the bytes live
// at the last collection, it returns memory at once. A release
// leaves the heap near its live size, so a quiet process is released once,
// not in a loop; a busy one allocates too much to be called quiet.
const (
	releaseThreshold = 32 << 20
	releaseEvery     = 2 * time.Second
	idleCheck        = time.Second
	idleAllocs       = 1 << 20
	idleSlack        = 8 << 20
)

var releaser struct {
	sync.Mutex
	freed     int
	scheduled bool
	last      time.Time
}

// noteBigFree records that a buffer of n bytes became garbage.
func noteBigFree(n int) {
	releaser.Lock()
	defer releaser.Unlock()
	releaser.freed += n
	if releaser.freed < releaseThreshold || releaser.scheduled {
		return
	}
	releaser.scheduled = true
	wait := max(time.Until(releaser.last.Add(releaseEvery)), 100*time.Millisecond)
	time.AfterFunc(wait, releaseNow)
}

func releaseNow() {
	releaser.Lock()
	releaser.freed = 0
	releaser.scheduled = false
	releaser.last = time.Now()
	releaser.Unlock()
	debug.FreeOSMemory()
}

var idleWatch sync.Once

// startIdleRelease starts the watcher of quiet processes (once).
func startIdleRelease() {
	idleWatch.Do(func() { go idleReleaseLoop() })
}

func idleReleaseLoop() {
	s := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	var lastAllocs uint64
	t := time.NewTicker(idleCheck)
	defer t.Stop()
	for range t.C {
		metrics.Read(s)
		allocs := s[0].Value.Uint64()
		quiet := allocs-lastAllocs < idleAllocs
		lastAllocs = allocs
		held := s[2].Value.Uint64() + s[3].Value.Uint64() + s[4].Value.Uint64()
		if !quiet || held < s[1].Value.Uint64()+idleSlack {
			continue
		}
		releaser.Lock()
		due := !releaser.scheduled && time.Since(releaser.last) >= releaseEvery
		releaser.Unlock()
		if due {
			releaseNow()
			metrics.Read(s[:1]) // the release's own work is not activity
			lastAllocs = s[0].Value.Uint64()
		}
	}
}
