#!/usr/bin/env bash
# Echo benchmark entry: a C program on libtcpserver.so (bench/c_echo_server.c),
# fragmented mode with '\n', echo from the message callback with tcp_send_msg.
# See bench/run.py for the entry contract.
# bench-name: c-abi
# bench-label: C on libtcpserver.so
# bench-baseline: tcp=c-epoll tls=go-stdlib
# bench-goal: 0.9
# bench-order: 10
# bench-configs: d16 d1 16k connect scale
set -eu
bin="$TCPGO_BUILD/bench/c_echo_server"
case "$1" in
tcp) exec "$bin" ;;
tls) exec "$bin" -tls -ca "$BENCH_CERTS/ca.pem" -cert "$BENCH_CERTS/server.pem" -key "$BENCH_CERTS/server.key" ;;
*) echo "usage: $0 tcp|tls" >&2; exit 2 ;;
esac
