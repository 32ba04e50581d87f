// Command goecho is the pure-Go baseline of tcpgo's echo benchmark: the
// standard library only, one goroutine per connection, a bufio.Reader
// (ReadSlice('\n')) and a bufio.Writer that is flushed when the reader has
// no more buffered input. It echoes every byte it receives.
//
//	goecho [-addr 127.0.0.1] [-port 0] [-tls -cert CERT -key KEY [-ca CA]]
//
// With -ca the TLS server requires a client certificate signed by that CA
// (mutual TLS, as tls_server_start with a CA does); TLS 1.3 as tcpgo's
// default. The first line on stdout is "PORT n" (the port chosen with
// -port 0). The server runs until stdin reaches end of file, or SIGTERM or
// SIGINT arrives.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tcpgo/tcpgo/bench/internal/benchnet"
)

type server struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool // shutting down: new connections are closed at once
	wg    sync.WaitGroup
}

func (s *server) track(c net.Conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case add && s.done:
		c.Close()
	case add:
		s.conns[c] = struct{}{}
	default:
		delete(s.conns, c)
	}
}

func (s *server) serve(c net.Conn) {
	defer s.wg.Done()
	defer s.track(c, false)
	defer c.Close()
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		_ = tc.SetDeadline(time.Time{})
	}
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				return
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			_ = w.Flush()
			return
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

func (s *server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and friends
			continue
		}
		s.track(c, true)
		s.wg.Add(1)
		go s.serve(c)
	}
}

func tlsConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", caFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port (0 = chosen by the system)")
	useTLS := flag.Bool("tls", false, "serve TLS")
	certFile := flag.String("cert", "", "TLS: server certificate (PEM)")
	keyFile := flag.String("key", "", "TLS: server key (PEM)")
	caFile := flag.String("ca", "", "TLS: CA of the client certificates (mutual TLS)")
	flag.Parse()
	if flag.NArg() != 0 || *port < 0 || *port > 65535 || (*useTLS && (*certFile == "" || *keyFile == "")) {
		flag.Usage()
		os.Exit(2)
	}

	// The scale scenario holds 19,000 connections.
	if _, err := benchnet.RaiseFdLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "goecho: raising the descriptor limit:", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*addr, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "goecho:", err)
		os.Exit(1)
	}
	if *useTLS {
		cfg, err := tlsConfig(*certFile, *keyFile, *caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "goecho:", err)
			os.Exit(1)
		}
		ln = tls.NewListener(ln, cfg)
	}
	s := &server{ln: ln, conns: make(map[net.Conn]struct{})}
	fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port)

	stop := make(chan string, 2)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { stop <- (<-sigs).String() }()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop <- "end of stdin"
	}()

	s.wg.Add(1)
	go s.acceptLoop()
	why := <-stop

	ln.Close()
	s.mu.Lock()
	s.done = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		fmt.Fprintln(os.Stderr, "goecho: connections did not close within 5s")
	}
	fmt.Fprintf(os.Stderr, "goecho: stopped (%s)\n", why)
}
