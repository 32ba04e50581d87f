#!/usr/bin/env bash
# bench-name: py-tcpgo
# bench-label: Python tcpgo (python3)
# bench-baseline: py-asyncio
# bench-goal: 1.0
# bench-order: 60
#
# tcpgo's Python binding: a fragmented-mode TcpServer/TlsServer whose
# on_message handler sends every message back (bench/python_echo.py).
set -euo pipefail
export PYTHONPATH="$TCPGO_ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
args=(tcpgo --mode msg)
[ "${1:-tcp}" = tls ] && args+=(--tls "$BENCH_CERTS/server.pem" "$BENCH_CERTS/server.key" "$BENCH_CERTS/ca.pem")
exec python3 "$TCPGO_ROOT/bench/python_echo.py" "${args[@]}"
