#!/usr/bin/env bash
# bench-name: py-tcpgo-batch
# bench-label: Python tcpgo batch handler (python3)
# bench-baseline: py-asyncio
# bench-goal: 1.0
# bench-order: 64
#
# The py-tcpgo server with the batch handler: on_messages(conn, messages) once
# per connection and batch of events, replies with one conn.send_many(messages)
# (bench/python_echo.py --mode batch).
set -euo pipefail
export PYTHONPATH="$TCPGO_ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
args=(tcpgo --mode batch)
[ "${1:-tcp}" = tls ] && args+=(--tls "$BENCH_CERTS/server.pem" "$BENCH_CERTS/server.key" "$BENCH_CERTS/ca.pem")
exec python3 "$TCPGO_ROOT/bench/python_echo.py" "${args[@]}"
