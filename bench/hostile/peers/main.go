// Command peers drives tcpgo's hostile-peers bench and its soak against
// bench/hostile/server.c (a C program on the public header), which it
// starts itself, samples from /proc and stops.
//
//	peers bench -server build/bench/hostile/hostile_server [flags]
//	peers soak  -server build/bench/hostile/hostile_server [flags]
//
// bench (issue 9): one server with default options; 1,000 peers that send
// bytes without a delimiter, 1,000 that send requests and never read,
// 2,000 that send one byte and stall, all at once, and 50 well-behaved
// clients that check every echoed byte. It reports the server's peak and
// final RSS, threads and descriptors (sampled every 100 ms), the good
// clients' echoes/s and errors, and how many hostile peers the server closed
// and why. Exit status 1 when a good client saw an error, the server died or
// went over -rss-cap, or missed the RSS goal (-strict=false: report it only).
//
// soak (issue 8): a bounded mixed run against one process serving plain TCP
// and mutual TLS: churn with resets, half-closes, drip and non-reading
// peers, garbage TLS, oversized frames, waves of slow callbacks, and
// well-behaved clients. It fails (exit 1, one "FAIL:" line per check) on
// any wrong echo, lost reply, missing or repeated closed event, callback
// concurrency over the bound, or resources not back near the baseline.
//
// Every run is bounded: the server is killed (its process group) when this
// program ends, on SIGINT/SIGTERM, and by a last-resort timer.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func usage() {
	fmt.Fprintf(os.Stderr, "usage: peers bench|soak -server PATH [flags]  (peers bench -h for flags)\n")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	raiseFDLimit()
	go killChildrenOnSignal()
	var code int
	switch os.Args[1] {
	case "bench":
		code = runBench(os.Args[2:])
	case "soak":
		code = runSoak(os.Args[2:])
	default:
		usage()
	}
	killChildren()
	os.Exit(code)
}

// raiseFDLimit lifts the soft descriptor limit to the hard one: thousands of
// peers need more than the usual 1024.
func raiseFDLimit() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			fmt.Fprintf(os.Stderr, "peers: raising RLIMIT_NOFILE: %v\n", err)
		}
	}
}

func killChildrenOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	sig := <-ch
	fmt.Fprintf(os.Stderr, "peers: %v: killing the server and exiting\n", sig)
	killChildren()
	os.Exit(1)
}
