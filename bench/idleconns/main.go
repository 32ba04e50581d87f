// Command idleconns is the client side of tcpgo's scale benchmark
// (bench/scale.py): it opens -n connections to an echo server, sends one
// -size byte message ('\n'-terminated) on each, reads its echo, and then
// holds every connection open and idle, without a goroutine or a buffer of
// its own per connection.
//
//	idleconns -addr 127.0.0.1:PORT -n 9500 [-src 127.0.0.2-127.0.0.5]
//	          [-parallel 64] [-timeout 20s] [-tls -ca CA -cert CERT -key KEY]
//
// -src spreads the connections over those source addresses (one address
// has ~28k ephemeral ports towards one server). The descriptor limit is
// raised to the hard limit first; a process here may hold 20,000, so more
// connections than that need several idleconns processes.
//
// When every connection did its echo (or failed) it prints one JSON line,
// {"conns":N,"errors":E,"seconds":S,"fd_limit":L}, and then waits until
// stdin reaches end of file (or SIGTERM/SIGINT), closes everything and
// exits: status 0 without errors, 1 otherwise.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcpgo/tcpgo/bench/internal/benchnet"
)

type options struct {
	addr     string
	n        int
	size     int
	parallel int
	timeout  time.Duration
	useTLS   bool
	ca       string
	cert     string
	key      string
}

type report struct {
	Conns   int     `json:"conns"`
	Errors  int     `json:"errors"`
	Seconds float64 `json:"seconds"`
	FdLimit uint64  `json:"fd_limit"`
}

func tlsConfig(opt *options) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(opt.addr)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: opt.ca == ""}
	if opt.ca != "" {
		pem, err := os.ReadFile(opt.ca)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", opt.ca)
		}
	}
	if opt.cert != "" {
		cert, err := tls.LoadX509KeyPair(opt.cert, opt.key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// open connects, does one echo and returns the idle connection.
func open(opt *options, d *benchnet.Dialer, cfg *tls.Config, msg []byte) (net.Conn, error) {
	c, err := d.Dial(opt.addr)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		c = tls.Client(c, cfg)
	}
	_ = c.SetDeadline(time.Now().Add(opt.timeout))
	echo := make([]byte, len(msg))
	if _, err = c.Write(msg); err == nil {
		_, err = io.ReadFull(c, echo)
	}
	if err == nil && string(echo) != string(msg) {
		err = fmt.Errorf("wrong echo %.40q", echo)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func main() {
	var opt options
	flag.StringVar(&opt.addr, "addr", "127.0.0.1:7000", "server address host:port")
	flag.IntVar(&opt.n, "n", 1000, "connections to open")
	flag.IntVar(&opt.size, "size", 64, "bytes of the one message per connection, '\\n' included")
	flag.IntVar(&opt.parallel, "parallel", 64, "connections being opened at the same time")
	flag.DurationVar(&opt.timeout, "timeout", 20*time.Second, "deadline of one connect+handshake+echo")
	src := flag.String("src", "", "source addresses, A or A-B")
	flag.BoolVar(&opt.useTLS, "tls", false, "connect with TLS")
	flag.StringVar(&opt.ca, "ca", "", "TLS: CA to verify the server with (default: no verification)")
	flag.StringVar(&opt.cert, "cert", "", "TLS: client certificate")
	flag.StringVar(&opt.key, "key", "", "TLS: client key")
	flag.Parse()
	sources, err := benchnet.ParseRange(*src)
	if err != nil || flag.NArg() != 0 || opt.n < 1 || opt.size < 2 || opt.parallel < 1 {
		fmt.Fprintln(os.Stderr, "idleconns: bad arguments", err)
		flag.Usage()
		os.Exit(2)
	}
	limit, err := benchnet.RaiseFdLimit()
	if err != nil {
		fmt.Fprintln(os.Stderr, "idleconns: raising the descriptor limit:", err)
	}
	var cfg *tls.Config
	if opt.useTLS {
		if cfg, err = tlsConfig(&opt); err != nil {
			fmt.Fprintln(os.Stderr, "idleconns: TLS:", err)
			os.Exit(2)
		}
	}
	msg := make([]byte, opt.size)
	for i := range msg {
		msg[i] = 'a' + byte(i%26)
	}
	msg[len(msg)-1] = '\n'

	d := benchnet.NewDialer(opt.timeout, sources)
	conns := make([]net.Conn, opt.n)
	var failed atomic.Int64
	var firstErrs sync.Map
	start := time.Now()
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < opt.parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= opt.n {
					return
				}
				c, err := open(&opt, d, cfg, msg)
				if err != nil {
					if k := failed.Add(1); k <= 5 {
						firstErrs.Store(k, err)
					}
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	rep := report{Errors: int(failed.Load()), Seconds: time.Since(start).Seconds(), FdLimit: limit}
	rep.Conns = opt.n - rep.Errors
	firstErrs.Range(func(_, v any) bool {
		fmt.Fprintln(os.Stderr, "idleconns:", v)
		return true
	})
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))

	stop := make(chan struct{}, 2)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; stop <- struct{}{} }()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop <- struct{}{} }()
	<-stop
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	if rep.Errors > 0 {
		os.Exit(1)
	}
}
