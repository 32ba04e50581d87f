package engine

import (
	"runtime/debug"
	"sync"
	"time"
)

// Large buffers of hostile or bursty peers are garbage once their
// connection is done, but the Go runtime hands freed pages back to the OS
// only slowly (minutes for a gigabyte). After enough big buffers were
// dropped, the releaser returns memory at once -- at most once per
// releaseEvery, so a busy server does not collect in a loop.
const (
	releaseThreshold = 32 << 20
	releaseEvery     = 2 * time.Second
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
	time.AfterFunc(wait, func() {
		releaser.Lock()
		releaser.freed = 0
		releaser.scheduled = false
		releaser.last = time.Now()
		releaser.Unlock()
		debug.FreeOSMemory()
	})
}
