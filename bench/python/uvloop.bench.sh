#!/usr/bin/env bash
# bench-name: py-uvloop
# bench-label: Python uvloop Protocol (/usr/bin/python3)
# bench-order: 63
#
# The asyncio Protocol echo on uvloop. Debian's python3-uvloop exists for
# /usr/bin/python3 only, so this row (and py-tcpgo-debian, for comparison)
# runs under that interpreter.
set -euo pipefail
py=/usr/bin/python3
if ! [ -x "$py" ] || ! "$py" -c 'import uvloop' 2>/dev/null; then
  echo "SKIP uvloop is not installed for /usr/bin/python3 (apt-get install python3-uvloop)"
  exit 0
fi
args=(uvloop --mode msg)
[ "${1:-tcp}" = tls ] && args+=(--tls "$BENCH_CERTS/server.pem" "$BENCH_CERTS/server.key" "$BENCH_CERTS/ca.pem")
exec "$py" "$TCPGO_ROOT/bench/python_echo.py" "${args[@]}"
