#!/bin/sh
# install.sh SRC BUILD -- `make install` into temporary prefixes, used the
# way the README's Install section says, for C and Python:
#   1. PREFIX=tmp PYTHON=/usr/bin/python3 (Debian's own Python, PEP 668):
#      - the library is installed before everything else, and make says
#        that tmp/lib needs LD_LIBRARY_PATH or an rpath;
#      - the README's C quick start built with pkg-config: fails to start
#        without either (the error the README names), runs with
#        LD_LIBRARY_PATH, and runs when linked with `--variable=rpath`;
#      - tmp/bin/tcpgo works as installed (--version, serve + send, exit
#        status 130 on SIGINT) and /usr/bin/python3 imports the package with
#        the PYTHONPATH make printed, loading tmp/lib's library;
#      - `make uninstall` leaves no file behind.
#   2. PYTHON=a venv's python, PREFIX=the venv: the package lands where that
#      interpreter looks by itself (no PYTHONPATH needed).
#   3. PYTHON=a missing interpreter: the rest is installed, and the one
#      command that installs the Python package later is printed.
set -eu
src=$(realpath "$1") build=$2
skip() { echo "test-install: SKIPPED: $*"; exit 0; }
fail() { echo "test-install: FAILED: $*"; exit 1; }
step() { printf '\n=== %s\n' "$*"; }
[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3 (Debian package python3)"
command -v pkg-config >/dev/null || skip "no pkg-config"

tmp=$(mktemp -d /tmp/tcpgo-install-XXXXXX)
serve_pid=
cleanup() { [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
# A nested make with a clean environment (no jobserver of the calling make),
# and Python without this checkout's package or library.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u PYTHONPATH -u TCPGO_LIBRARY \
         make -C "$src" --no-print-directory BUILD="$build" "$@"; }
clean_env() { env -u PYTHONPATH -u TCPGO_LIBRARY -u LD_LIBRARY_PATH "$@"; }

# --- 1 -------------------------------------------------------------------------
p=$tmp/prefix
step "make install PREFIX=$p PYTHON=/usr/bin/python3"
mk install PREFIX="$p" PYTHON=/usr/bin/python3 > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "make install"; }
cat "$tmp/install.log"
lib_line=$(grep -n "libtcpserver.so.0 $p/lib/libtcpserver.so.0" "$tmp/install.log" | head -1 | cut -d: -f1)
py_line=$(grep -n "tcpgo: Python package for /usr/bin/python3" "$tmp/install.log" | cut -d: -f1)
[ -n "$lib_line" ] && [ -n "$py_line" ] && [ "$lib_line" -lt "$py_line" ] ||
  fail "the library was not installed before the Python package"
grep -q "LD_LIBRARY_PATH=$p/lib" "$tmp/install.log" || fail "no LD_LIBRARY_PATH note"
site=$(sed -n 's/^  PYTHONPATH=\([^,]*\),.*/\1/p' "$tmp/install.log")
[ -d "$site/tcpgo" ] || fail "no PYTHONPATH=... in make's note (got '$site')"
case $site in "$p"/*) ;; *) fail "package outside the prefix: $site" ;; esac

step "C: README quick start with pkg-config"
export PKG_CONFIG_PATH="$p/lib/pkgconfig"
awk '/^## C quick start/{s=1} s&&/^```c$/{p=1;next} p&&/^```$/{exit} p' "$src/README.md" > "$tmp/quickstart.c"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror "$tmp/quickstart.c" -o "$tmp/plain" $(pkg-config --cflags --libs tcpgo)
if clean_env "$tmp/plain" > "$tmp/plain.out" 2>&1; then fail "ran without LD_LIBRARY_PATH or rpath?"; fi
grep -q "libtcpserver.so.0: cannot open shared object file" "$tmp/plain.out" ||
  fail "unexpected error: $(cat "$tmp/plain.out")"
echo "without LD_LIBRARY_PATH/rpath, as the README says: $(cat "$tmp/plain.out")"
LD_LIBRARY_PATH="$p/lib" timeout 30 "$tmp/plain"
# shellcheck disable=SC2046
cc "$tmp/quickstart.c" -o "$tmp/rpath" $(pkg-config --cflags --libs tcpgo) $(pkg-config --variable=rpath tcpgo)
clean_env timeout 30 "$tmp/rpath"

step "Python: $p/bin/tcpgo and /usr/bin/python3"
cd "$tmp"
head -1 "$p/bin/tcpgo" | grep -qx '#!/usr/bin/python3' || fail "bin/tcpgo is not for /usr/bin/python3"
clean_env "$p/bin/tcpgo" --version | tee "$tmp/version"
grep -qF "library" "$tmp/version" && grep -qF "$p/lib/libtcpserver.so.0" "$tmp/version" ||
  fail "bin/tcpgo does not load $p/lib/libtcpserver.so.0"
# (a background job of sh starts with SIGINT ignored: give it back its default;
# a plain command, not a function, so that $! is the server itself)
env -u PYTHONPATH -u TCPGO_LIBRARY -u LD_LIBRARY_PATH --default-signal=INT "$p/bin/tcpgo" serve --host 127.0.0.1 > "$tmp/serve.out" 2> "$tmp/serve.err" &
serve_pid=$!
i=0
until grep -q "listening on" "$tmp/serve.out"; do
  i=$((i + 1)); [ $i -lt 300 ] || fail "serve did not start: $(cat "$tmp/serve.err")"; sleep 0.1
done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/serve.out")
[ "$(clean_env "$p/bin/tcpgo" send 127.0.0.1 "$port" installed)" = installed ] || fail "send"
kill -INT "$serve_pid"
i=0
while kill -0 "$serve_pid" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "serve did not stop on SIGINT"; sleep 0.1
done
rc=0; wait "$serve_pid" || rc=$?
serve_pid=
[ $rc = 130 ] || fail "serve exited with $rc after SIGINT, want 130"
echo "serve + send ok, exit status $rc after SIGINT"
clean_env PYTHONPATH="$site" /usr/bin/python3 -c "
import tcpgo
assert tcpgo.__file__.startswith('$site/'), tcpgo.__file__
assert tcpgo.library_path() == '$p/lib/libtcpserver.so.0', tcpgo.library_path()
s = tcpgo.TcpServer('\n', host='127.0.0.1')
s.on_message(lambda c, d: s.send(c, d))
print('import + round trip:', tcpgo.request('127.0.0.1', s.start(0), 'hi', timeout=10))
s.close()"

step "make uninstall"
mk uninstall PREFIX="$p" PYTHON=/usr/bin/python3 >/dev/null 2>&1 || fail "make uninstall"
left=$(find "$p" ! -type d)
[ -z "$left" ] || fail "left after make uninstall: $left"

# --- 2 -------------------------------------------------------------------------
step "PYTHON=venv/bin/python PREFIX=venv"
if clean_env /usr/bin/python3 -m venv --without-pip "$tmp/venv" 2>/dev/null; then
  v=$tmp/venv
  mk install PREFIX="$v" PYTHON="$v/bin/python" > "$tmp/venv.log" 2>&1 ||
    { cat "$tmp/venv.log"; fail "make install into the venv"; }
  ! grep -q "does not search" "$tmp/venv.log" || fail "the venv's own site-packages was not chosen"
  ! grep -q "SITE" "$v/bin/tcpgo" || fail "bin/tcpgo needs no sys.path change in the venv"
  clean_env "$v/bin/python" -c "import tcpgo, sys; assert tcpgo.__file__.startswith(sys.prefix)"
  clean_env "$v/bin/tcpgo" --version
else
  echo "(skipped: /usr/bin/python3 has no venv module: Debian package python3-venv)"
fi

# --- 3 -------------------------------------------------------------------------
step "PYTHON=/nonexistent/python3"
q=$tmp/nopy
mk install PREFIX="$q" PYTHON=/nonexistent/python3 > "$tmp/nopy.log" 2>&1 ||
  { cat "$tmp/nopy.log"; fail "make install without a Python"; }
[ -f "$q/lib/libtcpserver.so.0" ] && [ -f "$q/include/tcpgo.h" ] || fail "library not installed"
grep -F "make install-python PYTHON=/path/to/python3 PREFIX=$q" "$tmp/nopy.log" ||
  fail "no command to install the Python package later"
echo "test-install: ok"
