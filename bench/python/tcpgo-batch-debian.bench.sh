#!/usr/bin/env bash
# bench-name: py-tcpgo-batch-debian
# bench-label: Python tcpgo batch handler (/usr/bin/python3)
# bench-baseline: py-uvloop
# bench-order: 65
#
# The py-tcpgo-batch server (on_messages + send_many) under /usr/bin/python3,
# the interpreter of the uvloop row.
set -euo pipefail
py=/usr/bin/python3
if ! [ -x "$py" ]; then
  echo "SKIP no /usr/bin/python3"
  exit 0
fi
export PYTHONPATH="$TCPGO_ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
args=(tcpgo --mode batch)
[ "${1:-tcp}" = tls ] && args+=(--tls "$BENCH_CERTS/server.pem" "$BENCH_CERTS/server.key" "$BENCH_CERTS/ca.pem")
exec "$py" "$TCPGO_ROOT/bench/python_echo.py" "${args[@]}"
