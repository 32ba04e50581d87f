#!/usr/bin/env bash
# Echo benchmark entry: a C program on libtcpserver.so (bench/c_echo_server.c
# -batch), fragmented mode with '\n'; the messages of each read come in one
# batch callback (tcp_server_set_on_messages) and their replies leave with
# one tcp_server_send_msgs. See bench/run.py for the entry contract.
# bench-name: c-abi-batch
# bench-label: C on libtcpserver.so, batch callback
# bench-baseline: tcp=c-epoll tls=go-stdlib
# bench-goal: 0.9
# bench-order: 11
# bench-configs: d16 d1 16k connect
set -eu
bin="$TCPGO_BUILD/bench/c_echo_server"
case "$1" in
tcp) exec "$bin" -batch ;;
tls) exec "$bin" -batch -tls -ca "$BENCH_CERTS/ca.pem" -cert "$BENCH_CERTS/server.pem" -key "$BENCH_CERTS/server.key" ;;
*) echo "usage: $0 tcp|tls" >&2; exit 2 ;;
esac
