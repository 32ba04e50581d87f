#!/usr/bin/env bash
# Echo benchmark entry: tcpgo through the C++ classes with v2's message worker
# (bench/cpp_echo_server.cpp -v2): tcp::TcpServer / tcp::TlsServer('\n'),
# setWorkOnMessage (the message copied into a std::string) + sendMsg.
# See bench/run.py for the entry contract.
# bench-name: cpp-v2
# bench-label: tcpgo via C++ tcp::TcpServer (v2 string worker)
# bench-baseline: c-abi
# bench-order: 16
# bench-configs: d16 d1 16k
set -eu
bin="$TCPGO_BUILD/bench/cpp_echo_server"
case "$1" in
tcp) exec "$bin" -v2 ;;
tls) exec "$bin" -v2 -tls -ca "$BENCH_CERTS/ca.pem" -cert "$BENCH_CERTS/server.pem" -key "$BENCH_CERTS/server.key" ;;
*) echo "usage: $0 tcp|tls" >&2; exit 2 ;;
esac
