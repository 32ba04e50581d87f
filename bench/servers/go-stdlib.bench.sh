#!/usr/bin/env bash
# Echo benchmark entry: the pure-Go baseline (bench/goecho): standard library,
# goroutine per connection, bufio.Reader.ReadSlice('\n') + bufio.Writer.
# See bench/run.py for the entry contract.
# bench-name: go-stdlib
# bench-label: Go stdlib (goroutine/conn)
# bench-baseline: tcp=c-epoll
# bench-order: 20
# bench-configs: d16 d1 16k connect scale
set -eu
bin="$TCPGO_BUILD/bench/goecho"
case "$1" in
tcp) exec "$bin" ;;
tls) exec "$bin" -tls -ca "$BENCH_CERTS/ca.pem" -cert "$BENCH_CERTS/server.pem" -key "$BENCH_CERTS/server.key" ;;
*) echo "usage: $0 tcp|tls" >&2; exit 2 ;;
esac
