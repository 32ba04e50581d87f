package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procSample is what /proc says about a process at one moment.
type procSample struct {
	At      time.Duration `json:"at_ms"` // since the sampler started
	RSSKB   int64         `json:"rss_kb"`
	HWMKB   int64         `json:"hwm_kb"`
	Threads int           `json:"threads"`
	FDs     int           `json:"fds"`
}

func (s procSample) String() string {
	return fmt.Sprintf("RSS %s, threads %d, fds %d", mib(s.RSSKB), s.Threads, s.FDs)
}

func mib(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

func readProc(pid int) (procSample, error) {
	var s procSample
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		fields := strings.Fields(string(v))
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch string(k) {
		case "VmRSS":
			s.RSSKB = n
		case "VmHWM":
			s.HWMKB = n
		case "Threads":
			s.Threads = int(n)
		}
	}
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return s, err
	}
	s.FDs = len(names)
	return s, nil
}

// sampler reads /proc/<pid> every interval and keeps the peaks and every
// sample.
type sampler struct {
	pid      int
	start    time.Time
	stop     chan struct{}
	done     chan struct{}
	overCap  chan struct{} // closed once RSS went over capKB
	capKB    int64
	mu       sync.Mutex
	samples  []procSample
	peak     procSample // each field its own maximum
	last     procSample
	capFired bool
}

func startSampler(pid int, interval time.Duration, capKB int64) *sampler {
	s := &sampler{pid: pid, start: time.Now(), stop: make(chan struct{}),
		done: make(chan struct{}), overCap: make(chan struct{}), capKB: capKB}
	go s.loop(interval)
	return s
}

func (s *sampler) loop(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.sampleOnce()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

func (s *sampler) sampleOnce() {
	p, err := readProc(s.pid)
	if err != nil || p.RSSKB == 0 {
		return // gone (a zombie has no VmRSS): keep the last real sample
	}
	p.At = time.Since(s.start)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, p)
	s.last = p
	s.peak.RSSKB = max(s.peak.RSSKB, p.RSSKB)
	s.peak.HWMKB = max(s.peak.HWMKB, p.HWMKB)
	s.peak.Threads = max(s.peak.Threads, p.Threads)
	s.peak.FDs = max(s.peak.FDs, p.FDs)
	if s.capKB > 0 && p.RSSKB > s.capKB && !s.capFired {
		s.capFired = true
		close(s.overCap)
	}
}

// Now takes a fresh sample.
func (s *sampler) Now() procSample {
	s.sampleOnce()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Peak returns the maxima since the last ResetPeak (or the start).
func (s *sampler) Peak() procSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

func (s *sampler) ResetPeak() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peak = s.last
}

// PerSecond returns one sample per second (the last of each second): a
// short series for the JSON report.
func (s *sampler) PerSecond() []procSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []procSample
	for i, p := range s.samples {
		if i+1 == len(s.samples) || s.samples[i+1].At/time.Second != p.At/time.Second {
			q := p
			q.At /= time.Millisecond // the JSON field is in ms
			out = append(out, q)
		}
	}
	return out
}

func (s *sampler) Stop() {
	close(s.stop)
	<-s.done
}

// cpuTimes is the first line of /proc/stat: user nice system idle iowait
// irq softirq steal ... in clock ticks.
type cpuTimes []uint64

func readCPU() cpuTimes {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return nil
	}
	var t cpuTimes
	for _, x := range f[1:] {
		n, _ := strconv.ParseUint(x, 10, 64)
		t = append(t, n)
	}
	return t
}

// stealWindow is the hypervisor steal between two /proc/stat readings.
type stealWindow struct {
	Ticks   uint64  `json:"steal_ticks"`
	Percent float64 `json:"steal_pct"` // of all CPU time in the window
	Before  uint64  `json:"steal_before"`
	After   uint64  `json:"steal_after"`
}

func stealBetween(a, b cpuTimes) stealWindow {
	if len(a) < 8 || len(b) < 8 {
		return stealWindow{Percent: -1}
	}
	var total uint64
	for i := 0; i < 8 && i < len(a) && i < len(b); i++ {
		total += b[i] - a[i]
	}
	w := stealWindow{Ticks: b[7] - a[7], Before: a[7], After: b[7]}
	if total > 0 {
		w.Percent = 100 * float64(w.Ticks) / float64(total)
	}
	return w
}

// libraryOf names the tcpgo library a process loaded, with its modification
// time: the commit printed is the tree's, the library may be older.
func libraryOf(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.Contains(f[5], "libtcpserver") {
			continue
		}
		if st, err := os.Stat(f[5]); err == nil {
			return fmt.Sprintf("%s (built %s)", f[5], st.ModTime().UTC().Format("2006-01-02 15:04:05 UTC"))
		}
		return f[5]
	}
	return "unknown"
}

// procTicks is the user+system CPU time of a process in clock ticks (pid 0:
// this process), 0 if unknown.
func procTicks(pid int) uint64 {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')') // the command name may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 { // state is field 3; utime, stime are 14, 15
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return u + s
}

// cpuWindow measures the machine's CPU use over a window, split into the
// server, this program, and everything else (other people's work on a
// shared machine), in % of one CPU; and the hypervisor steal.
type cpuWindow struct {
	pid          int
	at           time.Time
	machine      cpuTimes
	server, self uint64
}

type cpuUse struct {
	ServerPct float64     `json:"server_cpu_pct"`
	PeersPct  float64     `json:"peers_cpu_pct"`
	OtherPct  float64     `json:"other_cpu_pct"`
	Steal     stealWindow `json:"steal"`
}

const ticksPerSecond = 100 // USER_HZ on Linux

func startCPUWindow(pid int) cpuWindow {
	return cpuWindow{pid: pid, at: time.Now(), machine: readCPU(), server: procTicks(pid), self: procTicks(0)}
}

func (w cpuWindow) end() cpuUse {
	secs := time.Since(w.at).Seconds()
	m := readCPU()
	u := cpuUse{Steal: stealBetween(w.machine, m)}
	if secs <= 0 || len(m) < 8 || len(w.machine) < 8 {
		return u
	}
	var busy uint64
	for i, x := range m[:8] {
		if i == 3 || i == 4 || i == 7 { // idle, iowait, steal
			continue
		}
		busy += x - w.machine[i]
	}
	srv, self := procTicks(w.pid)-w.server, procTicks(0)-w.self
	pct := func(t uint64) float64 { return 100 * float64(t) / ticksPerSecond / secs }
	u.ServerPct, u.PeersPct = pct(srv), pct(self)
	if busy > srv+self {
		u.OtherPct = pct(busy - srv - self)
	}
	return u
}
