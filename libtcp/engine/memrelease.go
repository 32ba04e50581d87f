package engine

import (
	"math"
	"os"
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
//
// The same watcher bounds the heap of a busy process. With the runtime's
// default (GOGC=100) the heap grows to twice the bytes live before it is
// collected: a server whose budget and connections hold 110 MB reached
// 250-340 MiB RSS against 4,000 hostile peers (bench-hostile, issue 9).
// Four times per idleCheck the watcher sets the runtime's soft memory
// limit to what the runtime holds besides the heap, plus the live heap,
// plus max(limitHeadroom, live/2): below 64 MiB live this is above what
// GOGC=100 reaches anyway (no change); above, the heap grows by at most
// half its live size (64 MiB at least) between collections. A host that
// sets GOMEMLIMIT or GOGC in the environment keeps its own choice.
const (
	releaseThreshold = 32 << 20
	releaseEvery     = 2 * time.Second
	idleCheck        = time.Second
	idleAllocs       = 1 << 20
	idleSlack        = 8 << 20
	limitHeadroom    = 64 << 20
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
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	setLimit := os.Getenv("GOMEMLIMIT") == "" && os.Getenv("GOGC") == ""
	var limit int64 = math.MaxInt64
	var lastAllocs uint64
	t := time.NewTicker(idleCheck / 4)
	defer t.Stop()
	for tick := 1; ; tick++ {
		<-t.C
		metrics.Read(s)
		live := s[1].Value.Uint64()
		held := s[2].Value.Uint64() + s[3].Value.Uint64() + s[4].Value.Uint64()
		if setLimit {
			other := s[5].Value.Uint64() - s[6].Value.Uint64() - held // stacks, runtime structures
			want := int64(other + live + max(limitHeadroom, live/2))
			if d := want - limit; d > limit/8 || -d > limit/8 {
				limit = want
				debug.SetMemoryLimit(limit)
			}
		}
		if tick%4 != 0 {
			continue
		}
		allocs := s[0].Value.Uint64()
		quiet := allocs-lastAllocs < idleAllocs
		lastAllocs = allocs
		if !quiet || held < live+idleSlack {
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
