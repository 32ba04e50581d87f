#!/usr/bin/env bash
# bench-name: py-asyncio
# bench-label: Python asyncio Protocol (python3)
# bench-order: 61
#
# The same message echo written with an asyncio Protocol: split at '\n',
# one handler call and one transport.write per message (bench/python_echo.py).
set -euo pipefail
args=(asyncio --mode msg)
[ "${1:-tcp}" = tls ] && args+=(--tls "$BENCH_CERTS/server.pem" "$BENCH_CERTS/server.key" "$BENCH_CERTS/ca.pem")
exec python3 "$TCPGO_ROOT/bench/python_echo.py" "${args[@]}"
