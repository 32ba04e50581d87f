#!/usr/bin/env bash
# Echo benchmark entry: the pure-Go baseline of go-stdlib (bench/goecho) with
# GOMAXPROCS=1, the TLS baseline of the "1 CPU" tcpgo rows (the same limit on
# both sides). See bench/run.py for the entry contract.
# bench-name: go-stdlib-1cpu
# bench-label: Go stdlib (goroutine/conn), 1 CPU
# bench-baseline: tcp=c-epoll
# bench-order: 21
# bench-configs: d16 d1 16k connect
set -eu
bin="$TCPGO_BUILD/bench/goecho"
case "$1" in
tcp) GOMAXPROCS=1 exec "$bin" ;;
tls) GOMAXPROCS=1 exec "$bin" -tls -ca "$BENCH_CERTS/ca.pem" -cert "$BENCH_CERTS/server.pem" -key "$BENCH_CERTS/server.key" ;;
*) echo "usage: $0 tcp|tls" >&2; exit 2 ;;
esac
