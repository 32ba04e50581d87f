#!/usr/bin/env bash
# Echo benchmark entry: the C baseline (bench/epoll_echo_server.c): one
# thread, epoll edge-triggered, non-blocking, '\n' framing, inline writes.
# No TLS. See bench/run.py for the entry contract.
# bench-name: c-epoll
# bench-label: C epoll echo (1 thread, ET)
# bench-order: 5
# bench-transports: tcp
# bench-configs: d16 d1 16k connect scale
set -eu
bin="$TCPGO_BUILD/bench/epoll_echo_server"
case "$1" in
tcp) exec "$bin" ;;
tls) echo "SKIP the epoll baseline has no TLS"; exit 0 ;;
*) echo "usage: $0 tcp|tls" >&2; exit 2 ;;
esac
