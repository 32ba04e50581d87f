#!/usr/bin/env bash
# bench-name: py-tcpgo-debian
# bench-label: Python tcpgo (/usr/bin/python3)
# bench-baseline: py-uvloop
# bench-order: 62
#
# The py-tcpgo server under /usr/bin/python3, the interpreter of the uvloop row.
set -euo pipefail
py=/usr/bin/python3
if ! [ -x "$py" ]; then
  echo "SKIP no /usr/bin/python3"
  exit 0
fi
export PYTHONPATH="$TCPGO_ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
args=(tcpgo --mode msg)
[ "${1:-tcp}" = tls ] && args+=(--tls "$BENCH_CERTS/server.pem" "$BENCH_CERTS/server.key" "$BENCH_CERTS/ca.pem")
exec "$py" "$TCPGO_ROOT/bench/python_echo.py" "${args[@]}"
