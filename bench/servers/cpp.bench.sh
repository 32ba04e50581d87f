#!/usr/bin/env bash
# Echo benchmark entry: tcpgo through the C++ classes (bench/cpp_echo_server.cpp):
# tcp::TcpServer / tcp::TlsServer('\n'), the zero-copy setWorkOnMessageView
# (std::string_view of the library's buffer) + sendMsg. The v2 string worker: cpp-v2.
# See bench/run.py for the entry contract.
# bench-name: cpp
# bench-label: tcpgo via C++ tcp::TcpServer (view worker)
# bench-baseline: c-abi
# bench-goal: 0.95
# bench-order: 15
# bench-configs: d16 d1 16k
set -eu
bin="$TCPGO_BUILD/bench/cpp_echo_server"
case "$1" in
tcp) exec "$bin" ;;
tls) exec "$bin" -tls -ca "$BENCH_CERTS/ca.pem" -cert "$BENCH_CERTS/server.pem" -key "$BENCH_CERTS/server.key" ;;
*) echo "usage: $0 tcp|tls" >&2; exit 2 ;;
esac
