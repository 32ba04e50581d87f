#!/usr/bin/env bash
# Echo benchmark entry: the C program of c-abi-batch (bench/c_echo_server.c
# -batch) with tcp_set_max_cpus(1). See bench/run.py for the entry contract.
# bench-name: c-abi-batch-1cpu
# bench-label: C on libtcpserver.so, batch callback, 1 CPU
# bench-baseline: tcp=c-epoll tls=go-stdlib-1cpu
# bench-goal: 0.9
# bench-order: 13
# bench-configs: d16 d1 16k connect
set -eu
bin="$TCPGO_BUILD/bench/c_echo_server"
case "$1" in
tcp) exec "$bin" -batch -cpus 1 ;;
tls) exec "$bin" -batch -cpus 1 -tls -ca "$BENCH_CERTS/ca.pem" -cert "$BENCH_CERTS/server.pem" -key "$BENCH_CERTS/server.key" ;;
*) echo "usage: $0 tcp|tls" >&2; exit 2 ;;
esac
