#!/bin/sh
# run.sh [LIB_DIR] [CC] -- minimal C repros of library issues found by the
# C++ tests (callbacks after tcp_server_free; send-then-stop losing data),
# kept as regression checks (ctest
# cpp_library_repros). Each program exits non-zero while its issue exists.
#   sh tests/cpp/repro/run.sh            # after `make lib`
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
lib=${1:-$src/build/lib}
cc=${2:-cc}
out=$(mktemp -d /tmp/tcpgo-repro-XXXXXX)
trap 'rm -rf "$out"' EXIT
status=0
for c in "$here"/*.c; do
  exe=$out/$(basename "$c" .c)
  "$cc" -Wall -Wextra -Werror -I"$src/include" "$c" -o "$exe" -L"$lib" -Wl,-rpath,"$lib" \
    -ltcpserver -pthread || exit 1
  if timeout 120 "$exe"; then
    echo "ok    $(basename "$c")"
  else
    echo "ISSUE $(basename "$c")"
    status=1
  fi
done
exit $status
