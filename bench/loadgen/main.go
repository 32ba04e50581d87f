// Command loadgen is the load client of tcpgo's echo benchmarks.
//
// It opens -conns connections to an echo server and keeps -inflight
// messages outstanding on each (pipelined). A message is -size bytes whose
// last byte is '\n'; the rest holds the send time and a per-connection
// sequence number in hex, then filler, so every echo can be checked and
// timed:
//
//	[0:16)  send time, ns since the start of the run (monotonic clock)
//	[16:32) sequence number of the message on its connection
//	[32:n-1) filler 'a'..'z'
//	[n-1]   '\n'
//
// Each echo that comes back whole and in order triggers the next message
// (a closed loop), so exactly -inflight messages per connection are in
// flight. Echoes received during the first -warmup are not counted; the
// measurement window is the -duration that follows. At the end one JSON
// line goes to stdout:
//
//	{"msgs_per_s":..., "p50_us":..., "p99_us":..., "errors":..., ...}
//
// msgs_per_s counts echoed messages per second over all connections; p50_us
// and p99_us are per-message round-trip latencies (send to echo) in
// microseconds, measured with a log-linear histogram (about 3% resolution);
// errors counts connections that failed (dial, handshake, I/O, a wrong or
// missing echo, or no echo for -timeout); a failed connection stops.
//
// The run is bounded even if the server dies or hangs: dials and handshakes
// have a deadline, a watchdog closes any connection that receives nothing
// for -timeout, and a last-resort timer ends the process.
//
// Exit status: 0 when messages were measured and there were no errors, 1
// otherwise (the JSON line is printed in both cases), 2 for bad flags.
//
// A connection reads and writes from one goroutine, so -inflight * -size
// should stay well below the socket buffers (a few hundred KiB); the
// watchdog turns the contrary into an error instead of a hang.
//
// With -mode connect each of the -conns workers repeats: connect (and TLS
// handshake), send one message, read its echo, close. msgs_per_s (and
// conns_per_s) then counts these iterations per second and the latencies
// are those of a whole iteration. -src 127.0.0.2-127.0.0.17 spreads the
// connections over those source addresses, so that the ~28k ephemeral ports
// of one address (and their TIME_WAIT) do not limit the run.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/bits"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpgo/tcpgo/bench/internal/benchnet"
)

const (
	tsLen     = 16
	seqLen    = 16
	headerLen = tsLen + seqLen
	minSize   = headerLen + 1
)

// base is the origin of all timestamps; time.Since uses the monotonic clock.
var base = time.Now()

func nanotime() int64 { return int64(time.Since(base)) }

const hexDigits = "0123456789abcdef"

func putHex(b []byte, v uint64) {
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

func parseHex(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b[:16] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// histogram is a log-linear latency histogram in nanoseconds: values below
// 2*subBuckets are exact, above that each power of two is split into
// subBuckets buckets (relative error below 1/subBuckets).
const (
	subBits    = 5
	subBuckets = 1 << subBits
	histSize   = 64 * subBuckets
)

type histogram struct {
	counts [histSize]uint64
	total  uint64
}

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	if u < 2*subBuckets {
		return int(u)
	}
	shift := bits.Len64(u) - (subBits + 1)
	return shift*subBuckets + int(u>>uint(shift))
}

// bucketMid is the middle of the values that fall into bucket i.
func bucketMid(i int) float64 {
	if i < 2*subBuckets {
		return float64(i)
	}
	shift := i/subBuckets - 1
	low := uint64(i-shift*subBuckets) << uint(shift)
	return float64(low) + float64(uint64(1)<<uint(shift))/2
}

func (h *histogram) record(v int64) {
	h.counts[bucketOf(v)]++
	h.total++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// quantile returns the q-quantile (0 < q <= 1) in nanoseconds.
func (h *histogram) quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return bucketMid(i)
		}
	}
	return bucketMid(histSize - 1)
}

type options struct {
	addr     string
	conns    int
	inflight int
	size     int
	duration time.Duration
	warmup   time.Duration
	timeout  time.Duration
	useTLS   bool
	ca       string
	cert     string
	key      string
	verbose  bool
	mode     string
	src      string
}

// run holds what all connections share.
type run struct {
	opt      options
	filler   []byte
	startNs  int64 // begin of the measurement window
	endNs    int64 // end of the measurement window
	stopping atomic.Bool
}

type worker struct {
	id       int
	conn     net.Conn
	hist     histogram
	msgs     uint64
	progress atomic.Int64 // nanotime of the last echo (or of the start)
	failed   atomic.Bool
	finished atomic.Bool // loop returned
	errMu    sync.Mutex
	err      error
}

// fail records the first error of the connection and closes it.
func (w *worker) fail(err error) {
	if w.failed.CompareAndSwap(false, true) {
		w.errMu.Lock()
		w.err = err
		w.errMu.Unlock()
	}
	w.conn.Close()
}

func (w *worker) loop(r *run) {
	opt := &r.opt
	bufSize := 64 << 10
	if 2*opt.size > bufSize {
		bufSize = 2 * opt.size
	}
	br := bufio.NewReaderSize(w.conn, bufSize)
	bw := bufio.NewWriterSize(w.conn, bufSize)
	msg := make([]byte, opt.size)
	copy(msg[headerLen:], r.filler)
	msg[opt.size-1] = '\n'
	var sent, want uint64
	send := func() error {
		putHex(msg[:tsLen], uint64(nanotime()))
		putHex(msg[tsLen:headerLen], sent)
		sent++
		_, err := bw.Write(msg)
		return err
	}
	for i := 0; i < opt.inflight; i++ {
		if err := send(); err != nil {
			w.ioError(r, err)
			return
		}
	}
	for {
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				w.ioError(r, err)
				return
			}
		}
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = fmt.Errorf("echo longer than %d bytes", bufSize)
			}
			w.ioError(r, err)
			return
		}
		now := nanotime()
		ts, ok1 := uint64(0), false
		seq, ok2 := uint64(0), false
		if len(line) == opt.size {
			ts, ok1 = parseHex(line[:tsLen])
			seq, ok2 = parseHex(line[tsLen:headerLen])
		}
		if !ok1 || !ok2 || seq != want || string(line[headerLen:len(line)-1]) != string(r.filler) {
			w.fail(fmt.Errorf("conn %d: echo %d is wrong (%d bytes: %.40q)", w.id, want, len(line), line))
			return
		}
		want++
		w.progress.Store(now)
		if now >= r.startNs {
			if now >= r.endNs {
				return // this connection is done; main closes it
			}
			w.msgs++
			w.hist.record(now - int64(ts))
		}
		if err := send(); err != nil {
			w.ioError(r, err)
			return
		}
	}
}

// ioError counts an I/O error unless the run is over (main closed the
// connection) or the watchdog already recorded why it closed it.
func (w *worker) ioError(r *run, err error) {
	if r.stopping.Load() || w.failed.Load() {
		return
	}
	w.fail(fmt.Errorf("conn %d: %w", w.id, err))
}

func dial(opt *options, d *benchnet.Dialer, tlsCfg *tls.Config) (net.Conn, error) {
	c, err := d.Dial(opt.addr)
	if err != nil {
		return nil, err
	}
	if tlsCfg == nil {
		return c, nil
	}
	tc := tls.Client(c, tlsCfg)
	_ = tc.SetDeadline(time.Now().Add(opt.timeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

func tlsConfig(opt *options) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(opt.addr)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if opt.ca != "" {
		pem, err := os.ReadFile(opt.ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", opt.ca)
		}
		cfg.RootCAs = pool
	} else {
		// The bench client only measures; without -ca it does not verify.
		cfg.InsecureSkipVerify = true
	}
	if opt.cert != "" || opt.key != "" {
		cert, err := tls.LoadX509KeyPair(opt.cert, opt.key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

type result struct {
	MsgsPerS float64 `json:"msgs_per_s"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	Errors   int     `json:"errors"`
	P999us   float64 `json:"p999_us"`
	Msgs     uint64  `json:"msgs"`
	Seconds  float64 `json:"seconds"`
	Conns    int     `json:"conns"`
	Inflight int     `json:"inflight"`
	Size     int     `json:"size"`
	TLS      bool    `json:"tls"`
	Mode     string  `json:"mode"`
	ConnsPS  float64 `json:"conns_per_s,omitempty"`
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func emit(res result) {
	b, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	fmt.Println(string(b))
}

func main() {
	var opt options
	flag.StringVar(&opt.addr, "addr", "127.0.0.1:7000", "server address host:port")
	flag.IntVar(&opt.conns, "conns", 50, "number of connections")
	flag.IntVar(&opt.inflight, "inflight", 16, "messages outstanding per connection")
	flag.IntVar(&opt.size, "size", 64, fmt.Sprintf("message size in bytes, '\\n' included (>= %d)", minSize))
	flag.DurationVar(&opt.duration, "duration", 5*time.Second, "measurement window")
	flag.DurationVar(&opt.warmup, "warmup", time.Second, "warm-up before the window (not counted)")
	flag.DurationVar(&opt.timeout, "timeout", 5*time.Second, "connect/handshake deadline, and longest wait for an echo")
	flag.BoolVar(&opt.useTLS, "tls", false, "connect with TLS")
	flag.StringVar(&opt.ca, "ca", "", "TLS: CA file to verify the server with (default: no verification)")
	flag.StringVar(&opt.cert, "cert", "", "TLS: client certificate (PEM)")
	flag.StringVar(&opt.key, "key", "", "TLS: client key (PEM)")
	flag.BoolVar(&opt.verbose, "v", false, "print progress to stderr")
	flag.StringVar(&opt.mode, "mode", "echo", "echo: pipelined echoes on long-lived connections; "+
		"connect: connect, one echo, close, repeated")
	flag.StringVar(&opt.src, "src", "", "source addresses to connect from, A or A-B (e.g. 127.0.0.2-127.0.0.17)")
	flag.Parse()
	sources, srcErr := benchnet.ParseRange(opt.src)
	if flag.NArg() != 0 || opt.conns < 1 || opt.inflight < 1 || opt.size < minSize ||
		opt.duration <= 0 || opt.warmup < 0 || opt.timeout <= 0 || srcErr != nil ||
		(opt.mode != "echo" && opt.mode != "connect") {
		if srcErr != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", srcErr)
		}
		fmt.Fprintf(os.Stderr, "loadgen: bad arguments (need conns, inflight >= 1, size >= %d, duration, timeout > 0)\n", minSize)
		flag.Usage()
		os.Exit(2)
	}
	res := result{Conns: opt.conns, Inflight: opt.inflight, Size: opt.size, TLS: opt.useTLS, Mode: opt.mode}

	// Last resort: whatever happens, the process ends.
	limit := opt.timeout + opt.warmup + opt.duration + opt.timeout + 10*time.Second
	time.AfterFunc(limit, func() {
		fmt.Fprintf(os.Stderr, "loadgen: run did not finish within %v, giving up\n", limit)
		emit(result{Errors: opt.conns, Conns: opt.conns, Inflight: opt.inflight, Size: opt.size, TLS: opt.useTLS, Mode: opt.mode})
		os.Exit(1)
	})

	var tlsCfg *tls.Config
	if opt.useTLS {
		var err error
		if tlsCfg, err = tlsConfig(&opt); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: TLS setup:", err)
			res.Errors = opt.conns
			emit(res)
			os.Exit(1)
		}
	}

	r := &run{opt: opt, filler: make([]byte, opt.size-minSize)}
	for i := range r.filler {
		r.filler[i] = 'a' + byte(i%26)
	}
	dialer := benchnet.NewDialer(opt.timeout, sources)
	if opt.mode == "connect" {
		res = runConnect(r, dialer, tlsCfg, res)
		emit(res)
		if res.Errors > 0 || res.Msgs == 0 {
			os.Exit(1)
		}
		return
	}

	// Connect everything first, concurrently.
	workers := make([]*worker, opt.conns)
	dialErrs := make([]error, opt.conns)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := dial(&opt, dialer, tlsCfg)
			if err != nil {
				dialErrs[i] = err
				return
			}
			workers[i] = &worker{id: i, conn: c}
		}(i)
	}
	wg.Wait()
	var errList []error
	live := workers[:0]
	for i, w := range workers {
		if w == nil {
			errList = append(errList, fmt.Errorf("conn %d: %w", i, dialErrs[i]))
			continue
		}
		live = append(live, w)
	}
	workers = live
	if opt.verbose {
		fmt.Fprintf(os.Stderr, "loadgen: %d/%d connections up\n", len(workers), opt.conns)
	}

	now := nanotime()
	r.startNs = now + int64(opt.warmup)
	r.endNs = r.startNs + int64(opt.duration)
	done := make(chan struct{})
	for _, w := range workers {
		w.progress.Store(now)
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			defer w.finished.Store(true)
			w.loop(r)
		}(w)
	}
	go func() { wg.Wait(); close(done) }()

	// Watchdog: a connection without an echo for -timeout is failed.
	tick := time.NewTicker(100 * time.Millisecond)
	end := time.Duration(r.endNs)
	timer := time.NewTimer(end - time.Since(base))
wait:
	for {
		select {
		case <-done:
			break wait
		case <-timer.C:
			break wait
		case <-tick.C:
			t := nanotime()
			for _, w := range workers {
				if !w.finished.Load() && !w.failed.Load() && t-w.progress.Load() > int64(opt.timeout) {
					w.fail(fmt.Errorf("conn %d: no echo for %v", w.id, opt.timeout))
				}
			}
		}
	}
	tick.Stop()
	// The window is over. Healthy connections return at their next echo;
	// give them a moment, then fail those still silent and close all.
	grace := time.NewTimer(2 * time.Second)
	select {
	case <-done:
	case <-grace.C:
	}
	r.stopping.Store(true)
	for _, w := range workers {
		if !w.finished.Load() && !w.failed.Load() && w.progress.Load() < r.endNs {
			// Still blocked: no echo since the window ended.
			w.fail(fmt.Errorf("conn %d: no echo at the end of the run", w.id))
		}
		w.conn.Close()
	}
	<-done

	var hist histogram
	for _, w := range workers {
		hist.merge(&w.hist)
		res.Msgs += w.msgs
		if w.failed.Load() {
			w.errMu.Lock()
			if w.err != nil {
				errList = append(errList, w.err)
			}
			w.errMu.Unlock()
		}
	}
	res.Errors += len(errList)
	res.Seconds = opt.duration.Seconds()
	res.MsgsPerS = round1(float64(res.Msgs) / res.Seconds)
	res.P50us = round1(hist.quantile(0.50) / 1e3)
	res.P99us = round1(hist.quantile(0.99) / 1e3)
	res.P999us = round1(hist.quantile(0.999) / 1e3)
	for i, e := range errList {
		if i == 5 {
			fmt.Fprintf(os.Stderr, "loadgen: ... and %d more errors\n", len(errList)-5)
			break
		}
		fmt.Fprintln(os.Stderr, "loadgen:", e)
	}
	emit(res)
	if res.Errors > 0 || res.Msgs == 0 {
		os.Exit(1)
	}
}
