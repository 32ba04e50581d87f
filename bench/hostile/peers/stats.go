package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// latencies is a log-scale histogram of durations (about 4 % resolution
// from 1 us to ~20 min), safe for concurrent use.
type latencies struct {
	mu      sync.Mutex
	buckets map[int]uint64
	n       uint64
	max     time.Duration
}

const bucketsPerDoubling = 16

func (l *latencies) add(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	b := 0
	if us > 1 {
		b = int(math.Log2(us) * bucketsPerDoubling)
	}
	l.mu.Lock()
	if l.buckets == nil {
		l.buckets = map[int]uint64{}
	}
	l.buckets[b]++
	l.n++
	l.max = max(l.max, d)
	l.mu.Unlock()
}

// quantile returns the upper bound of the bucket holding quantile q.
func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return 0
	}
	keys := make([]int, 0, len(l.buckets))
	for k := range l.buckets {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	want := uint64(math.Ceil(q * float64(l.n)))
	var seen uint64
	for _, k := range keys {
		seen += l.buckets[k]
		if seen >= want {
			us := math.Exp2(float64(k+1) / bucketsPerDoubling)
			return min(time.Duration(us*float64(time.Microsecond)), l.max)
		}
	}
	return l.max
}

func (l *latencies) Max() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max
}

// failures counts failures and keeps the first few texts.
type failures struct {
	n     atomic.Int64
	mu    sync.Mutex
	first []string
}

func (f *failures) add(format string, args ...any) {
	if f.n.Add(1) <= 5 {
		f.mu.Lock()
		f.first = append(f.first, fmt.Sprintf(format, args...))
		f.mu.Unlock()
	}
}

func (f *failures) Count() int64 { return f.n.Load() }

func (f *failures) Examples() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.first...)
}

func (f *failures) String() string {
	if f.Count() == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (first: %s)", f.Count(), strings.Join(f.Examples(), "; "))
}

// ms formats a duration in milliseconds for the report.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// reasonNames are the tcp_close_reason values of include/tcpgo.h.
var reasonNames = map[string]string{
	"0": "unknown (no closed_ex)", "1": "peer", "2": "reset", "3": "idle timeout",
	"4": "message timeout", "5": "write timeout", "6": "stopped", "7": "local",
	"8": "message too long", "9": "tls", "10": "memory budget", "11": "internal",
}

// codeNames are the TCP_ERR_* values of include/tcpgo.h.
var codeNames = map[string]string{
	"0": "unknown", "-3": "no client", "-5": "not running", "-6": "internal",
	"-7": "message too long", "-8": "io", "-9": "handshake", "-12": "timeout",
	"-14": "queue full", "-16": "memory budget", "-17": "refused", "-19": "accept",
}

// describeCounts renders {"8": 12, "1": 3} as "message too long 12, peer 3".
func describeCounts(m map[string]uint64, names map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	var parts []string
	for _, k := range keys {
		name := names[k]
		if name == "" {
			name = "code " + k
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}
