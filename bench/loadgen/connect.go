package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tcpgo/tcpgo/bench/internal/benchnet"
)

// connectWorker is one of -conns loops of -mode connect.
type connectWorker struct {
	hist histogram
	n    uint64 // iterations that ended inside the window
	err  error
}

// runConnect measures connect + one echo + close, repeated by opt.conns
// workers until the window ends; an iteration counts when it ends inside
// the window, and its latency is the whole iteration.
func runConnect(r *run, d *benchnet.Dialer, tlsCfg *tls.Config, res result) result {
	opt := &r.opt
	now := nanotime()
	r.startNs = now + int64(opt.warmup)
	r.endNs = r.startNs + int64(opt.duration)
	workers := make([]connectWorker, opt.conns)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func(id int, w *connectWorker) {
			defer wg.Done()
			msg := make([]byte, opt.size)
			copy(msg[headerLen:], r.filler)
			msg[opt.size-1] = '\n'
			echo := make([]byte, opt.size)
			for seq := uint64(0); ; seq++ {
				t0 := nanotime()
				if t0 >= r.endNs {
					return
				}
				if err := oneConnection(r, d, tlsCfg, msg, echo, seq); err != nil {
					w.err = fmt.Errorf("worker %d, connection %d: %w", id, seq, err)
					return
				}
				if t1 := nanotime(); t1 >= r.startNs && t1 < r.endNs {
					w.n++
					w.hist.record(t1 - t0)
				}
			}
		}(i, &workers[i])
	}
	wg.Wait()

	var hist histogram
	var errs []error
	for i := range workers {
		hist.merge(&workers[i].hist)
		res.Msgs += workers[i].n
		if workers[i].err != nil {
			errs = append(errs, workers[i].err)
		}
	}
	for i, e := range errs {
		if i == 5 {
			fmt.Fprintf(os.Stderr, "loadgen: ... and %d more errors\n", len(errs)-5)
			break
		}
		fmt.Fprintln(os.Stderr, "loadgen:", e)
	}
	res.Errors = len(errs)
	res.Seconds = opt.duration.Seconds()
	res.MsgsPerS = round1(float64(res.Msgs) / res.Seconds)
	res.ConnsPS = res.MsgsPerS
	res.P50us = round1(hist.quantile(0.50) / 1e3)
	res.P99us = round1(hist.quantile(0.99) / 1e3)
	res.P999us = round1(hist.quantile(0.999) / 1e3)
	return res
}

// oneConnection connects, sends msg (stamped with seq), reads the echo
// into echo, checks it and closes.
func oneConnection(r *run, d *benchnet.Dialer, tlsCfg *tls.Config, msg, echo []byte, seq uint64) error {
	opt := &r.opt
	c, err := dial(opt, d, tlsCfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(opt.timeout))
	putHex(msg[:tsLen], uint64(nanotime()))
	putHex(msg[tsLen:headerLen], seq)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, echo); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if string(echo[tsLen:]) != string(msg[tsLen:]) {
		return fmt.Errorf("wrong echo (%.40q)", echo)
	}
	return nil
}
