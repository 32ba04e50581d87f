#!/bin/sh
# readme_examples.sh README OUTDIR CXX INCLUDE_DIR BINDINGS_DIR LIB_DIR
# Every ```cpp block of the README's C++ sections is a complete program:
# compile and link each one as written (C++17, -Wall -Wextra -Werror).
set -eu
readme=$1 out=$2 cxx=$3 inc=$4 bind=$5 lib=$6
rm -rf "$out"
mkdir -p "$out"
awk -v out="$out" '
  /^```cpp[ \t]*$/ { n++; file = sprintf("%s/example%02d.cpp", out, n); inblock = 1; next }
  /^```/ && inblock { inblock = 0; close(file); next }
  inblock { print > file }
  END { if (n == 0) { print "no ```cpp blocks found" > "/dev/stderr"; exit 1 } }
' "$readme"
status=0
for f in "$out"/example*.cpp; do
  if "$cxx" -std=c++17 -Wall -Wextra -Werror -I"$inc" -I"$bind" "$f" -o "${f%.cpp}" \
       -L"$lib" -Wl,-rpath,"$lib" -ltcpserver -pthread; then
    echo "ok   $(basename "$f") ($(head -n1 "$f"))"
  else
    echo "FAIL $(basename "$f")"
    status=1
  fi
done
exit $status
