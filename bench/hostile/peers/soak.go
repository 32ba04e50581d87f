package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type soakConfig struct {
	server          string
	seconds         time.Duration
	sources         int
	maxLen          int
	slowMs          int
	serverOpts      string
	callbackThreads int
	goodTCP         int
	goodTLS         int
	churn           int
	churnTLS        int
	churnPause      time.Duration
	halfClose       int
	halfCloseTLS    int
	drip            int
	noread          int
	oversized       int
	garbageTLS      int
	slowConns       int
	slowEvery       time.Duration
	threadSlack     int
	threadWait      time.Duration
	rssSlackMiB     int64
	rssWait         time.Duration
	fdSlack         int
	rssCapMiB       int64
	jsonPath        string
}

// kind is one sort of soak peer and its outcome.
type kind struct {
	name         string
	server       string // "tcp" or "tls"
	cycles       atomic.Int64
	fails        failures // broken expectations: the soak fails
	notes        failures // tolerated (reported) oddities
	serverClosed atomic.Int64
	lat          latencies // round trips of the good clients
}

type kindReport struct {
	Name         string   `json:"name"`
	Server       string   `json:"server"`
	Cycles       int64    `json:"cycles"`
	Failures     int64    `json:"failures"`
	FirstFails   []string `json:"first_failures,omitempty"`
	Notes        int64    `json:"notes"`
	FirstNotes   []string `json:"first_notes,omitempty"`
	ServerClosed int64    `json:"closed_by_server"`
	P50Ms        float64  `json:"p50_ms,omitempty"`
	P99Ms        float64  `json:"p99_ms,omitempty"`
	MaxMs        float64  `json:"max_ms,omitempty"`
}

type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// soak holds a run's shared state.
type soak struct {
	cfg        *soakConfig
	srv        *child
	tcp, tls   *dialer
	tlsGood    *tls.Config // trusted CA + client certificate
	tlsNoCert  *tls.Config // trusted CA, no certificate
	tlsOtherCA *tls.Config // certificate of an unrelated CA
	kinds      []*kind
	waves      []time.Duration
	wavesMu    sync.Mutex
	dials      atomic.Int64 // connection attempts of every kind
	dialFails  atomic.Int64
}

func (s *soak) kind(name, server string) *kind {
	k := &kind{name: name, server: server}
	s.kinds = append(s.kinds, k)
	return k
}

func runSoak(args []string) int {
	var cfg soakConfig
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	fs.StringVar(&cfg.server, "server", "", "hostile_server binary (required)")
	fs.DurationVar(&cfg.seconds, "duration", 180*time.Second, "load window")
	fs.IntVar(&cfg.sources, "sources", 200, "source addresses 127.0.0.2... to spread connections over")
	fs.IntVar(&cfg.maxLen, "maxlen", 65536, "the servers' maximum message length")
	fs.IntVar(&cfg.slowMs, "slow-ms", 1000, "ms the server's callback sleeps for a SLOW message")
	fs.StringVar(&cfg.serverOpts, "server-opts", "idle_timeout_ms=20000,message_timeout_ms=5000,write_timeout_ms=15000",
		"comma-separated NAME=VALUE options of both servers (hostile_server -o)")
	fs.IntVar(&cfg.callbackThreads, "callback-threads", 64, "TCP_OPT_CALLBACK_THREADS in effect (per server): the bound checked")
	fs.IntVar(&cfg.goodTCP, "good", 12, "well-behaved echo clients over TCP")
	fs.IntVar(&cfg.goodTLS, "good-tls", 4, "well-behaved echo clients over mutual TLS")
	fs.IntVar(&cfg.churn, "churn", 3, "TCP churn workers (connect, maybe a message, reset)")
	fs.IntVar(&cfg.churnTLS, "churn-tls", 1, "TLS churn workers")
	fs.DurationVar(&cfg.churnPause, "churn-pause", 2*time.Millisecond, "pause between churn cycles")
	fs.IntVar(&cfg.halfClose, "half-close", 3, "TCP half-close workers (N requests, shutdown(SHUT_WR), N replies)")
	fs.IntVar(&cfg.halfCloseTLS, "half-close-tls", 1, "TLS half-close workers (close_notify)")
	fs.IntVar(&cfg.drip, "drip", 8, "drip workers (one byte per 100 ms; every 4th never ends its message)")
	fs.IntVar(&cfg.noread, "noread", 4, "non-reading workers")
	fs.IntVar(&cfg.oversized, "oversized", 2, "oversized-frame workers (10 valid + 1 too long in one write)")
	fs.IntVar(&cfg.garbageTLS, "garbage-tls", 2, "garbage TLS workers")
	fs.IntVar(&cfg.slowConns, "slow-conns", 300, "connections per wave of slow callbacks")
	fs.DurationVar(&cfg.slowEvery, "slow-every", 30*time.Second, "a wave of slow callbacks starts this often")
	fs.IntVar(&cfg.threadSlack, "thread-slack", 8, "threads may stay this far above the baseline")
	fs.DurationVar(&cfg.threadWait, "thread-wait", 10*time.Second, "... once this long has passed after the last connection closed")
	fs.Int64Var(&cfg.rssSlackMiB, "rss-slack", 32, "MiB RSS may stay above the baseline")
	fs.DurationVar(&cfg.rssWait, "rss-wait", 15*time.Second, "... once this long has passed after the last connection closed")
	fs.IntVar(&cfg.fdSlack, "fd-slack", 2, "descriptors may stay this far above the baseline (after -thread-wait)")
	fs.Int64Var(&cfg.rssCapMiB, "rss-cap", 4096, "MiB: kill the server (soak failed) when its RSS passes this")
	fs.StringVar(&cfg.jsonPath, "json", "", "write the results as JSON to this file")
	_ = fs.Parse(args)
	if cfg.server == "" {
		fmt.Fprintln(os.Stderr, "peers soak: -server is required")
		return 2
	}
	limit := cfg.seconds + cfg.rssWait + cfg.threadWait + 4*time.Minute
	watchdog := time.AfterFunc(limit, func() {
		fmt.Fprintf(os.Stderr, "peers soak: still running after %v: killing everything\n", limit)
		killChildren()
		os.Exit(1)
	})
	defer watchdog.Stop()

	checks, report := soakRun(&cfg)
	fmt.Println()
	failed := 0
	for _, c := range checks {
		if c.OK {
			fmt.Printf("ok:   %s: %s\n", c.Name, c.Detail)
		} else {
			failed++
			fmt.Printf("FAIL: %s: %s\n", c.Name, c.Detail)
		}
	}
	if cfg.jsonPath != "" {
		report["checks"] = checks
		data, _ := json.MarshalIndent(report, "", " ")
		if err := os.WriteFile(cfg.jsonPath, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "peers soak: %v\n", err)
		} else {
			fmt.Printf("results: %s\n", cfg.jsonPath)
		}
	}
	if failed > 0 {
		fmt.Printf("soak: FAILED (%d of %d checks)\n", failed, len(checks))
		return 1
	}
	fmt.Printf("soak: passed (%d checks)\n", len(checks))
	return 0
}

// soakRun runs the whole soak and returns its checks and a report.
func soakRun(cfg *soakConfig) ([]check, map[string]any) {
	var checks []check
	add := func(name string, ok bool, format string, args ...any) {
		checks = append(checks, check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	report := map[string]any{"commit": gitCommit(), "started_utc": time.Now().UTC().Format("2006-01-02 15:04:05"),
		"duration_s": cfg.seconds.Seconds(), "server_opts": cfg.serverOpts}

	dir, err := os.MkdirTemp("", "tcpgo-soak-")
	if err != nil {
		add("setup", false, "%v", err)
		return checks, report
	}
	defer os.RemoveAll(dir)
	pki, other := filepath.Join(dir, "pki"), filepath.Join(dir, "other")
	for _, d := range []string{pki, other} {
		if err := os.Mkdir(d, 0o700); err == nil {
			err = runQuiet(cfg.server, "-gencerts", d)
		}
		if err != nil {
			add("setup", false, "certificates in %s: %v", d, err)
			return checks, report
		}
	}
	s := &soak{cfg: cfg}
	if s.tlsGood, err = tlsClientConfig(pki, true); err == nil {
		if s.tlsNoCert, err = tlsClientConfig(pki, false); err == nil {
			s.tlsOtherCA, err = tlsClientConfig(other, true)
			if err == nil {
				s.tlsOtherCA.RootCAs = s.tlsGood.RootCAs // trust the server; present a stranger's cert
			}
		}
	}
	if err != nil {
		add("setup", false, "TLS client configuration: %v", err)
		return checks, report
	}

	args := []string{"-maxlen", fmt.Sprint(cfg.maxLen), "-slow-ms", fmt.Sprint(cfg.slowMs),
		"-tls-port", "0", "-ca", filepath.Join(pki, "ca.pem"), "-cert", filepath.Join(pki, "server.pem"),
		"-key", filepath.Join(pki, "server.key")}
	for _, o := range strings.Split(cfg.serverOpts, ",") {
		if o = strings.TrimSpace(o); o != "" {
			args = append(args, "-o", o)
		}
	}
	cpu0 := readCPU()
	s.srv, err = startServer(cfg.server, args, true)
	if err != nil {
		add("server starts", false, "%v", err)
		return checks, report
	}
	defer s.srv.kill()
	report["server_options"] = s.srv.Options
	smp := startSampler(s.srv.Pid, 100*time.Millisecond, cfg.rssCapMiB*1024)
	defer smp.Stop()
	time.Sleep(2 * time.Second) // let the runtime finish starting
	base := smp.Now()
	report["baseline"] = base
	fmt.Printf("soak: %v against one process serving TCP (port %d) and mutual TLS (port %d), commit %s\n",
		cfg.seconds, s.srv.Ports["PORT"], s.srv.Ports["TLSPORT"], gitCommit())
	fmt.Printf("  server options: %s\n", cfg.serverOpts)
	report["library"] = libraryOf(s.srv.Pid)
	fmt.Printf("  library: %s\n", report["library"])
	fmt.Printf("  baseline: %s\n", base)
	s.tcp = newDialer(fmt.Sprintf("127.0.0.1:%d", s.srv.Ports["PORT"]), cfg.sources, 256)
	s.tls = newDialer(fmt.Sprintf("127.0.0.1:%d", s.srv.Ports["TLSPORT"]), cfg.sources, 256)

	// The load.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.seconds)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	cpuWin := startCPUWindow(s.srv.Pid)
	s.startWorkers(ctx, &wg)
	aborted := s.watch(ctx, smp, start)
	cancel()
	cpuUse := cpuWin.end()
	report["cpu_during_load"] = cpuUse
	loadEnd := smp.Now()
	peak := smp.Peak()
	allDone := waitTimeout(&wg, 90*time.Second)
	cpuLoad := readCPU()
	steal := stealBetween(cpu0, cpuLoad)
	report["steal_load"] = steal
	report["peak"] = peak
	report["end_of_load"] = loadEnd
	fmt.Printf("  load done after %.0f s: %s; peak RSS %s, threads %d, fds %d; steal %.2f %%\n",
		time.Since(start).Seconds(), loadEnd, mib(peak.RSSKB), peak.Threads, peak.FDs, steal.Percent)
	fmt.Printf("  CPU during the load: server %.0f %%, peers %.0f %%, other processes %.0f %% (of one CPU)\n",
		cpuUse.ServerPct, cpuUse.PeersPct, cpuUse.OtherPct)

	s.printKinds()
	report["kinds"] = s.kindReports()
	s.wavesMu.Lock()
	var waveSecs []float64
	for _, w := range s.waves {
		waveSecs = append(waveSecs, w.Seconds())
	}
	s.wavesMu.Unlock()
	report["slow_wave_seconds"] = waveSecs

	add("server alive", aborted == "" && s.srv.Alive(), "%s", orText(aborted, "served the whole load"))
	add("workers ended", allDone, "every peer goroutine returned within 90 s of the end of the load")
	for _, k := range s.kinds {
		ok := k.fails.Count() == 0
		detail := fmt.Sprintf("%d cycles, %d failures", k.cycles.Load(), k.fails.Count())
		if !ok {
			detail += ": " + strings.Join(k.fails.Examples(), "; ")
		}
		add(fmt.Sprintf("%s (%s)", k.name, k.server), ok && (k.cycles.Load() > 0 || !mustCycle(k.name)), "%s", detail)
	}
	dials, dialFails := s.dials.Load(), s.dialFails.Load()
	add("connects", dialFails*1000 <= dials, "%d of %d connection attempts failed (allowed: 1 in 1000)", dialFails, dials)
	report["dials"], report["dial_failures"] = dials, dialFails
	add("slow callback waves", len(waveSecs) > 0 || cfg.slowConns == 0, "%d waves of %d connections, each %v",
		len(waveSecs), cfg.slowConns, fmtSecs(waveSecs))

	if !s.srv.Alive() {
		add("server exit", false, "%s", s.srv.ExitText())
		return checks, report
	}
	atLoadEnd, err := s.srv.Stats(10 * time.Second)
	if err == nil {
		for _, a := range atLoadEnd.Servers {
			add(fmt.Sprintf("callbacks bounded (%s)", a.Name), a.CallbacksPeak <= cfg.callbackThreads,
				"at most %d callbacks of this server ran at once (TCP_OPT_CALLBACK_THREADS %d)", a.CallbacksPeak, cfg.callbackThreads)
		}
		fmt.Printf("  callbacks at once in the process: peak %d; threads: peak %d (baseline %d)\n",
			atLoadEnd.CallbacksPeak, peak.Threads, base.Threads)
	}

	// Every connection closes; then the process returns near its baseline.
	drained, last := s.waitAllClosed(30 * time.Second)
	report["server_after_peers_left"] = last
	if last != nil {
		var open []string
		for _, a := range last.Servers {
			open = append(open, fmt.Sprintf("%s %d", a.Name, a.Open))
		}
		add("all connections closed", drained, "open after the peers left: %s", strings.Join(open, ", "))
	}
	idle := s.waitIdle(smp, base)
	report["idle"] = idle
	add("threads back", idle.threadsAt >= 0, "threads %d, bound baseline %d + %d, within %v of the last close: %s",
		idle.last.Threads, base.Threads, cfg.threadSlack, cfg.threadWait, reachedText(idle.threadsAt))
	add("RSS back", idle.rssAt >= 0, "RSS %s, bound baseline %s + %d MiB, within %v: %s",
		mib(idle.last.RSSKB), mib(base.RSSKB), cfg.rssSlackMiB, cfg.rssWait, reachedText(idle.rssAt))
	add("descriptors back", idle.fdsAt >= 0, "fds %d, bound baseline %d + %d, within %v: %s",
		idle.last.FDs, base.FDs, cfg.fdSlack, cfg.threadWait, reachedText(idle.fdsAt))

	final, err := s.srv.Stop(60 * time.Second)
	report["server_final"] = final
	report["steal_all"] = stealBetween(cpu0, readCPU())
	add("server stops cleanly", err == nil, "%s", orText(errText(err), s.srv.ExitText()))
	if final != nil {
		for _, a := range final.Servers {
			add(fmt.Sprintf("one closed event per connection (%s)", a.Name),
				a.Anomalies == 0 && a.Established == a.Closed && a.Untracked == 0,
				"established %d, closed %d; closed twice %d, closed never established %d, established twice %d, message outside %d",
				a.Established, a.Closed, a.DupClosed, a.ClosedUnseen, a.DupEstablished, a.MessageOutside)
			fmt.Printf("  %s: closed by reason: %s; error events: %s; refused sends: %s\n", a.Name,
				describeCounts(a.ClosedByReason, reasonNames), describeCounts(a.ErrorsByCode, codeNames),
				describeCounts(a.SendRefusedByCode, codeNames))
		}
	}
	return checks, report
}

// mustCycle: kinds that must have run at least once in any soak.
func mustCycle(name string) bool { return name == "good" }

func orText(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func fmtSecs(s []float64) string {
	var parts []string
	for _, x := range s {
		parts = append(parts, fmt.Sprintf("%.1f s", x))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func reachedText(at time.Duration) string {
	if at < 0 {
		return "not reached"
	}
	return fmt.Sprintf("reached after %.1f s", at.Seconds())
}

// runQuiet runs a short command, bounded, and returns its failure with its
// output.
func runQuiet(path string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// watch prints progress every 10 s until ctx ends, the server dies or
// passes the RSS cap; it returns why it stopped early ("" if it did not).
func (s *soak) watch(ctx context.Context, smp *sampler, start time.Time) string {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-smp.overCap:
			s.srv.kill()
			return fmt.Sprintf("server RSS passed the cap of %d MiB after %.0f s: killed", s.cfg.rssCapMiB, time.Since(start).Seconds())
		case <-s.srv.exited:
			return fmt.Sprintf("the server exited after %.0f s: %s", time.Since(start).Seconds(), s.srv.ExitText())
		case <-tick.C:
			p := smp.Now()
			cb := ""
			if st, err := s.srv.Stats(5 * time.Second); err == nil {
				cb = fmt.Sprintf(", callbacks now %d (peak %d)", st.CallbacksRunning, st.CallbacksPeak)
			}
			var fails []string
			var cycles int64
			for _, k := range s.kinds {
				cycles += k.cycles.Load()
				if n := k.fails.Count(); n > 0 {
					fails = append(fails, fmt.Sprintf("%s/%s %d", k.name, k.server, n))
				}
			}
			fmt.Fprintf(os.Stderr, "  t=%3.0fs %s%s; %d cycles; failures: %s\n", time.Since(start).Seconds(),
				p, cb, cycles, orText(strings.Join(fails, ", "), "none"))
		}
	}
}

// dialTLS connects to the TLS server and completes a handshake with cfg.
func (s *soak) dialTLS(ctx context.Context, cfg *tls.Config) (*tls.Conn, *net.TCPConn, error) {
	raw, err := s.tls.dial(ctx, 0)
	if err != nil {
		return nil, nil, err
	}
	tc, err := tlsHandshake(ctx, raw, cfg, 15*time.Second)
	if err != nil {
		_ = raw.Close()
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	return tc, raw, nil
}

// connect opens a connection of a kind: plain to the TCP server, mutual TLS
// to the TLS server. raw is the TCP connection underneath.
func (s *soak) connect(ctx context.Context, k *kind, rcvbuf int) (c net.Conn, raw *net.TCPConn, err error) {
	if k.server == "tls" {
		c, raw, err = s.dialTLS(ctx, s.tlsGood)
	} else {
		raw, err = s.tcp.dial(ctx, rcvbuf)
		c = raw
	}
	s.countDial(ctx, k, err)
	return c, raw, err
}

// countDial counts connection attempts. A failed one is a note, not a
// failure: on a loopback this busy a SYN now and then meets a TIME_WAIT of
// the same four-tuple and is dropped (PAWS) until the dial times out. Too
// many of them fail the "connects" check.
func (s *soak) countDial(ctx context.Context, k *kind, err error) {
	if ctx.Err() != nil {
		return
	}
	s.dials.Add(1)
	if err != nil {
		s.dialFails.Add(1)
		k.notes.add("connect: %v", err)
	}
}

// repeat runs one cycle of a kind after another until ctx ends.
func (s *soak) repeat(ctx context.Context, wg *sync.WaitGroup, k *kind, n int, cycle func(ctx context.Context, rng *rand.Rand)) {
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			for ctx.Err() == nil {
				cycle(ctx, rng)
			}
		}()
	}
}

// failUnlessDone records a failure unless the soak is ending (then the
// error is ours: we closed the connection).
func failUnlessDone(ctx context.Context, k *kind, format string, args ...any) {
	if ctx.Err() == nil {
		k.fails.add(format, args...)
	}
}

func (s *soak) startWorkers(ctx context.Context, wg *sync.WaitGroup) {
	cfg := s.cfg
	for _, server := range []string{"tcp", "tls"} {
		n := map[string][]int{"tcp": {cfg.goodTCP, cfg.churn, cfg.halfClose}, "tls": {cfg.goodTLS, cfg.churnTLS, cfg.halfCloseTLS}}[server]
		s.repeat(ctx, wg, s.kind("good", server), n[0], s.goodCycle(s.kinds[len(s.kinds)-1]))
		s.repeat(ctx, wg, s.kind("churn with resets", server), n[1], s.churnCycle(s.kinds[len(s.kinds)-1]))
		s.repeat(ctx, wg, s.kind("half-close", server), n[2], s.halfCloseCycle(s.kinds[len(s.kinds)-1]))
	}
	k := s.kind("drip", "tcp")
	s.repeat(ctx, wg, k, cfg.drip, s.dripCycle(k))
	k = s.kind("non-reading", "tcp")
	s.repeat(ctx, wg, k, cfg.noread, s.noreadCycle(k))
	k = s.kind("oversized frame", "tcp")
	s.repeat(ctx, wg, k, cfg.oversized, s.oversizedCycle(k))
	k = s.kind("garbage TLS", "tls")
	s.repeat(ctx, wg, k, cfg.garbageTLS, s.garbageCycle(k))
	if cfg.slowConns > 0 {
		k = s.kind("slow callbacks", "tcp")
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.slowWaves(ctx, k)
		}()
	}
}

// randomBatch makes 1..8 messages: mostly 1..2000 bytes, some empty, some
// of exactly the maximum length.
func (s *soak) randomBatch(rng *rand.Rand) [][]byte {
	msgs := make([][]byte, 1+rng.IntN(8))
	for i := range msgs {
		switch r := rng.IntN(100); {
		case r < 5:
			msgs[i] = []byte{}
		case r < 7:
			msgs[i] = payload(rng, s.cfg.maxLen)
		default:
			msgs[i] = payload(rng, 1+rng.IntN(2000))
		}
	}
	return msgs
}

// goodCycle: one connection, up to 1000 checked round trips, a normal
// close. Round trips may wait for a wave of slow callbacks: 60 s.
func (s *soak) goodCycle(k *kind) func(ctx context.Context, rng *rand.Rand) {
	return func(ctx context.Context, rng *rand.Rand) {
		c, _, err := s.connect(ctx, k, 0)
		if err != nil {
			sleepCtx(ctx, 200*time.Millisecond)
			return
		}
		defer closeOnCancel(ctx, c)()
		defer c.Close()
		e := newEchoConn(c)
		for i := 0; i < 1000 && ctx.Err() == nil; i++ {
			t := time.Now()
			if err := e.roundTrip(s.randomBatch(rng), 60*time.Second); err != nil {
				failUnlessDone(ctx, k, "round trip %d: %v", i+1, err)
				return
			}
			k.lat.add(time.Since(t))
			k.cycles.Add(1)
		}
	}
}

// churnCycle: connect; nothing, or a checked echo, or a message whose
// reply is never read; then a reset (SO_LINGER 0).
func (s *soak) churnCycle(k *kind) func(ctx context.Context, rng *rand.Rand) {
	return func(ctx context.Context, rng *rand.Rand) {
		c, raw, err := s.connect(ctx, k, 0)
		if err != nil {
			sleepCtx(ctx, 100*time.Millisecond)
			return
		}
		stop := closeOnCancel(ctx, c)
		switch rng.IntN(3) {
		case 1:
			if err := newEchoConn(c).roundTrip([][]byte{payload(rng, 1+rng.IntN(500))}, 60*time.Second); err != nil {
				failUnlessDone(ctx, k, "echo before the reset: %v", err)
			}
		case 2:
			_, _ = c.Write(append(payload(rng, 1+rng.IntN(500)), '\n'))
		}
		stop()
		resetClose(raw)
		k.cycles.Add(1)
		sleepCtx(ctx, s.cfg.churnPause)
	}
}

// halfCloseCycle: N requests written in random pieces, then
// shutdown(SHUT_WR) (TLS: close_notify); every reply must come, then EOF.
func (s *soak) halfCloseCycle(k *kind) func(ctx context.Context, rng *rand.Rand) {
	return func(ctx context.Context, rng *rand.Rand) {
		c, _, err := s.connect(ctx, k, 0)
		if err != nil {
			sleepCtx(ctx, 200*time.Millisecond)
			return
		}
		defer closeOnCancel(ctx, c)()
		defer c.Close()
		n := 1 + rng.IntN(500)
		msgs := make([][]byte, n)
		var out []byte
		for i := range msgs {
			msgs[i] = payload(rng, rng.IntN(200))
			out = append(append(out, msgs[i]...), '\n')
		}
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		for len(out) > 0 {
			piece := min(len(out), 1+rng.IntN(4096))
			if _, err := c.Write(out[:piece]); err != nil {
				failUnlessDone(ctx, k, "write: %v", err)
				return
			}
			out = out[piece:]
		}
		var cerr error
		switch cc := c.(type) {
		case *tls.Conn:
			cerr = cc.CloseWrite()
		case *net.TCPConn:
			cerr = cc.CloseWrite()
		}
		if cerr != nil {
			failUnlessDone(ctx, k, "shutdown(SHUT_WR): %v", cerr)
			return
		}
		e := newEchoConn(c)
		for i, m := range msgs {
			if err := e.expect(m); err != nil {
				failUnlessDone(ctx, k, "%d of %d replies after the half-close, then: %v", i, n, err)
				return
			}
		}
		if err := e.expectEOF(30 * time.Second); err != nil {
			failUnlessDone(ctx, k, "all %d replies, then: %v", n, err)
			return
		}
		k.cycles.Add(1)
	}
}

// dripCycle: three of four connections send two messages one byte per
// 100 ms (each must be echoed); the fourth drips a message that never ends
// for up to 10 s (a message timeout may close it).
func (s *soak) dripCycle(k *kind) func(ctx context.Context, rng *rand.Rand) {
	return func(ctx context.Context, rng *rand.Rand) {
		c, _, err := s.connect(ctx, k, 0)
		if err != nil {
			sleepCtx(ctx, 200*time.Millisecond)
			return
		}
		defer closeOnCancel(ctx, c)()
		defer c.Close()
		k.cycles.Add(1)
		if rng.IntN(4) == 0 {
			end := time.Now().Add(10 * time.Second)
			for time.Now().Before(end) && ctx.Err() == nil {
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write(payload(rng, 1)); err != nil {
					if ctx.Err() == nil {
						k.serverClosed.Add(1)
					}
					return
				}
				sleepCtx(ctx, 300*time.Millisecond)
			}
			return
		}
		e := newEchoConn(c)
		for j := 0; j < 2 && ctx.Err() == nil; j++ {
			m := payload(rng, 10+rng.IntN(11))
			for _, b := range append(append([]byte(nil), m...), '\n') {
				_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.Write([]byte{b}); err != nil {
					failUnlessDone(ctx, k, "drip write: %v", err)
					return
				}
				sleepCtx(ctx, 100*time.Millisecond)
			}
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			if err := e.expect(m); err != nil {
				failUnlessDone(ctx, k, "dripped message %d: %v", j+1, err)
				return
			}
		}
	}
}

// noreadCycle: requests for 3..20 s without reading a reply, then a reset.
func (s *soak) noreadCycle(k *kind) func(ctx context.Context, rng *rand.Rand) {
	return func(ctx context.Context, rng *rand.Rand) {
		c, raw, err := s.connect(ctx, k, 16<<10)
		if err != nil {
			sleepCtx(ctx, 200*time.Millisecond)
			return
		}
		stop := closeOnCancel(ctx, c)
		defer resetClose(raw)
		defer stop()
		var batch []byte
		for len(batch) < 32<<10 {
			batch = append(append(batch, payload(rng, 1023)...), '\n')
		}
		_ = c.SetWriteDeadline(time.Now().Add(time.Duration(3+rng.IntN(18)) * time.Second))
		for {
			if _, err := c.Write(batch); err != nil {
				if !isTimeout(err) && ctx.Err() == nil {
					k.serverClosed.Add(1)
				}
				break
			}
		}
		k.cycles.Add(1)
	}
}

// oversizedCycle: ten valid messages and one over the maximum length in
// one write: the ten replies must arrive, then the server closes.
func (s *soak) oversizedCycle(k *kind) func(ctx context.Context, rng *rand.Rand) {
	return func(ctx context.Context, rng *rand.Rand) {
		c, _, err := s.connect(ctx, k, 0)
		if err != nil {
			sleepCtx(ctx, 200*time.Millisecond)
			return
		}
		defer closeOnCancel(ctx, c)()
		defer c.Close()
		msgs := make([][]byte, 10)
		var out []byte
		for i := range msgs {
			msgs[i] = payload(rng, 10+rng.IntN(991))
			out = append(append(out, msgs[i]...), '\n')
		}
		out = append(append(out, payload(rng, s.cfg.maxLen+1+rng.IntN(4096))...), '\n')
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		_, werr := c.Write(out) // may fail: the server closes before taking it all
		e := newEchoConn(c)
		for i, m := range msgs {
			if err := e.expect(m); err != nil {
				failUnlessDone(ctx, k, "%d of 10 replies before the close (write: %v), then: %v", i, werr, err)
				return
			}
		}
		if !waitClosedByServer(c, 15*time.Second) {
			failUnlessDone(ctx, k, "still open 15 s after a message over the maximum length")
			return
		}
		if ctx.Err() == nil {
			k.serverClosed.Add(1)
		}
		k.cycles.Add(1)
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

// garbageCycle sends the TLS server something that is not a valid client;
// every such connection must be closed by the server within 15 s.
func (s *soak) garbageCycle(k *kind) func(ctx context.Context, rng *rand.Rand) {
	// A variant returns whether it already saw the server close the
	// connection, or a problem (which fails the soak).
	type variant struct {
		name string
		run  func(ctx context.Context, rng *rand.Rand, raw *net.TCPConn) (closed bool, problem error)
	}
	variants := []variant{
		{"random bytes", func(_ context.Context, rng *rand.Rand, raw *net.TCPConn) (bool, error) {
			b := payload(rng, 5+rng.IntN(3000))
			if rng.IntN(2) == 0 {
				copy(b, []byte{0x16, 0x03, 0x01}) // looks like a handshake record
			}
			_, err := raw.Write(b) // fails if the server closed already: fine
			return err != nil, nil
		}},
		{"plain text", func(_ context.Context, _ *rand.Rand, raw *net.TCPConn) (bool, error) {
			_, err := raw.Write([]byte("hello\nthis is not TLS\n"))
			return err != nil, nil
		}},
		{"no client certificate", func(ctx context.Context, _ *rand.Rand, raw *net.TCPConn) (bool, error) {
			return s.rejectedHandshake(ctx, raw, s.tlsNoCert)
		}},
		{"certificate of another CA", func(ctx context.Context, _ *rand.Rand, raw *net.TCPConn) (bool, error) {
			return s.rejectedHandshake(ctx, raw, s.tlsOtherCA)
		}},
		{"garbage after the handshake", func(ctx context.Context, rng *rand.Rand, raw *net.TCPConn) (bool, error) {
			tc, err := tlsHandshake(ctx, raw, s.tlsGood, 15*time.Second)
			if err != nil {
				return false, fmt.Errorf("handshake with a valid certificate: %w", err)
			}
			if err := newEchoConn(tc).roundTrip([][]byte{payload(rng, 100)}, 60*time.Second); err != nil {
				return false, fmt.Errorf("echo before the garbage: %w", err)
			}
			_, err = raw.Write(append([]byte{0x17, 0x03, 0x03, 0x00, 0x40}, payload(rng, 64)...))
			return err != nil, nil
		}},
		{"silence", func(context.Context, *rand.Rand, *net.TCPConn) (bool, error) { return false, nil }},
	}
	var next atomic.Uint64
	return func(ctx context.Context, rng *rand.Rand) {
		v := variants[next.Add(1)%uint64(len(variants))]
		raw, err := s.tls.dial(ctx, 0)
		s.countDial(ctx, k, err)
		if err != nil {
			sleepCtx(ctx, 200*time.Millisecond)
			return
		}
		defer closeOnCancel(ctx, raw)()
		defer raw.Close()
		closed, problem := v.run(ctx, rng, raw)
		if problem != nil {
			failUnlessDone(ctx, k, "%s: %v", v.name, problem)
			return
		}
		if !closed && !waitClosedByServer(raw, 15*time.Second) {
			failUnlessDone(ctx, k, "%s: still open after 15 s", v.name)
			return
		}
		if ctx.Err() == nil {
			k.serverClosed.Add(1)
		}
		k.cycles.Add(1)
	}
}

// rejectedHandshake tries a TLS handshake the server must reject (with TLS
// 1.3 the client's side may complete first: the rejection then arrives on
// the first read).
func (s *soak) rejectedHandshake(ctx context.Context, raw *net.TCPConn, cfg *tls.Config) (bool, error) {
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
			return false, fmt.Errorf("handshake not answered within 15 s: %v", err)
		}
		return true, nil
	}
	_ = tc.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := tc.Read(make([]byte, 1))
	if err == nil || isTimeout(err) {
		return false, fmt.Errorf("the server accepted a client it must reject (read: %v)", err)
	}
	return true, nil
}

// slowWaves opens -slow-conns connections at once every -slow-every, each
// sending one message that the server's callback sleeps on; every echo
// must come back.
func (s *soak) slowWaves(ctx context.Context, k *kind) {
	sleepCtx(ctx, 5*time.Second)
	for ctx.Err() == nil {
		start := time.Now()
		var wg sync.WaitGroup
		for i := 0; i < s.cfg.slowConns; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), rand.Uint64()))
				c, _, err := s.connect(ctx, k, 0)
				if err != nil {
					return
				}
				defer closeOnCancel(ctx, c)()
				defer c.Close()
				m := append([]byte(fmt.Sprintf("SLOW-%d-", i)), payload(rng, 20+rng.IntN(80))...)
				if err := newEchoConn(c).roundTrip([][]byte{m}, 120*time.Second); err != nil {
					failUnlessDone(ctx, k, "slow echo: %v", err)
					return
				}
				k.cycles.Add(1)
			}(i)
		}
		wg.Wait()
		if ctx.Err() == nil {
			s.wavesMu.Lock()
			s.waves = append(s.waves, time.Since(start))
			s.wavesMu.Unlock()
		}
		sleepCtx(ctx, time.Until(start.Add(s.cfg.slowEvery)))
	}
}

// waitAllClosed polls the server until no connection is open (by its own
// account and, when available, the library's).
func (s *soak) waitAllClosed(timeout time.Duration) (bool, *serverStats) {
	deadline := time.Now().Add(timeout)
	var last *serverStats
	for {
		st, err := s.srv.Stats(5 * time.Second)
		if err == nil {
			last = st
			open := false
			for _, a := range st.Servers {
				if a.Open != 0 || (a.Lib != nil && a.Lib.Active != 0) {
					open = true
				}
			}
			if !open {
				return true, last
			}
		}
		if time.Now().After(deadline) {
			return false, last
		}
		time.Sleep(500 * time.Millisecond)
	}
}

type idleResult struct {
	threadsAt, rssAt, fdsAt time.Duration // -1: not reached
	last                    procSample
	series                  []procSample
}

func (r idleResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"threads_back_s": r.threadsAt.Seconds(), "rss_back_s": r.rssAt.Seconds(),
		"fds_back_s": r.fdsAt.Seconds(), "last": r.last, "series": r.series})
}

// waitIdle samples the idle server until threads, RSS and descriptors are
// back near the baseline or their time is up.
func (s *soak) waitIdle(smp *sampler, base procSample) idleResult {
	cfg := s.cfg
	r := idleResult{threadsAt: -1, rssAt: -1, fdsAt: -1}
	start := time.Now()
	until := max(cfg.threadWait, cfg.rssWait)
	for {
		p := smp.Now()
		r.last = p
		at := time.Since(start)
		q := p
		q.At = at / time.Millisecond
		r.series = append(r.series, q)
		if r.threadsAt < 0 && at <= cfg.threadWait && p.Threads <= base.Threads+cfg.threadSlack {
			r.threadsAt = at
		}
		if r.rssAt < 0 && at <= cfg.rssWait && p.RSSKB <= base.RSSKB+cfg.rssSlackMiB*1024 {
			r.rssAt = at
		}
		if r.fdsAt < 0 && at <= cfg.threadWait && p.FDs <= base.FDs+cfg.fdSlack {
			r.fdsAt = at
		}
		if (r.threadsAt >= 0 && r.rssAt >= 0 && r.fdsAt >= 0) || at > until {
			return r
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (s *soak) kindReports() []kindReport {
	var out []kindReport
	for _, k := range s.kinds {
		out = append(out, kindReport{Name: k.name, Server: k.server, Cycles: k.cycles.Load(),
			Failures: k.fails.Count(), FirstFails: k.fails.Examples(), Notes: k.notes.Count(),
			FirstNotes: k.notes.Examples(), ServerClosed: k.serverClosed.Load(),
			P50Ms: ms(k.lat.quantile(0.5)), P99Ms: ms(k.lat.quantile(0.99)), MaxMs: ms(k.lat.Max())})
	}
	return out
}

func (s *soak) printKinds() {
	rows := s.kindReports()
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Server > rows[j].Server })
	fmt.Printf("  %-22s %-4s %9s %9s %14s %6s\n", "peers", "srv", "cycles", "failures", "closed-by-srv", "notes")
	for _, r := range rows {
		lat := ""
		if r.MaxMs > 0 {
			lat = fmt.Sprintf("  round trip p50 %.2f ms, p99 %.1f ms, max %.0f ms", r.P50Ms, r.P99Ms, r.MaxMs)
		}
		fmt.Printf("  %-22s %-4s %9d %9d %14d %6d%s\n", r.Name, r.Server, r.Cycles, r.Failures, r.ServerClosed, r.Notes, lat)
		for _, n := range r.FirstNotes {
			fmt.Printf("      note: %s\n", n)
		}
	}
}
