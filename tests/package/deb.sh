#!/bin/sh
# deb.sh DEB SRC -- the Debian package, installed the way users install it.
#
# `dpkg -i DEB` runs in a throw-away copy of this machine's own Debian 12
# root: an overlay (lower: /, upper: a temporary directory) in a private
# mount namespace, entered with chroot. dpkg checks the package's
# dependencies against the real package database, runs its ldconfig trigger,
# and nothing reaches the real root. (The nearest honest equivalent of a
# clean Debian 12 that takes seconds: debootstrap plus a compiler would
# download ~200 MB and take minutes; this root has the tools the test uses.)
# Inside it, with no LD_LIBRARY_PATH and no rpath:
#   - the ldconfig trigger made the library known to the dynamic linker;
#   - the README's C quick start, built with `pkg-config --cflags --libs
#     tcpgo`, and a C++ program built with CMake's find_package(tcpgo) run;
#   - Debian's /usr/bin/python3 imports tcpgo (loading the packaged library)
#     and /usr/bin/tcpgo answers;
#   - `dpkg -r tcpgo` removes every file again.
set -eu
deb=$(realpath "$1") src=$(realpath "$2")

skip() { echo "test-deb: SKIPPED: $*"; exit 0; }
[ -f "$deb" ] || { echo "test-deb: $deb missing (make deb)"; exit 1; }
command -v unshare >/dev/null || skip "no unshare (util-linux)"

tmp=$(mktemp -d /tmp/tcpgo-deb-XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/upper" "$tmp/work" "$tmp/root" "$tmp/share"
cp "$deb" "$tmp/share/"
awk '/^## C quick start/{s=1} s&&/^```c$/{p=1;next} p&&/^```$/{exit} p' "$src/README.md" \
  > "$tmp/share/quickstart.c"
mkdir -p "$tmp/share/cmake"
cat > "$tmp/share/cmake/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(deb_consumer CXX)
find_package(tcpgo 0.1 CONFIG REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE tcpgo::tcpgo)
CM
cat > "$tmp/share/cmake/main.cpp" <<'CPP'
#include <tcp/TcpServer.h>
#include <tcpgo.h>
#include <cstdio>
int main() {
  tcp::TcpServer server;                       // header-only classes over the packaged library
  std::printf("tcpgo %s via <tcp/TcpServer.h>\n", tcp_version());
  return 0;
}
CPP

# Inside the root: every check, in order; the first failure stops it.
cat > "$tmp/share/inside.sh" <<'IN'
set -eu
cd /mnt/share
step() { printf '=== %s\n' "$*"; }
fail() { echo "test-deb: FAILED: $*"; exit 1; }
lib=/usr/lib/$(gcc -print-multiarch)/libtcpserver.so.0
# where the dynamic linker finds libtcpserver.so.0 (its cache lists /lib/... on merged-/usr)
linker_finds() { ldconfig -p | awk '$1 == "libtcpserver.so.0" {print $NF}' | xargs -r realpath; }
loads() { ldd "$1" | awk '$1 == "libtcpserver.so.0" {print $3}' | xargs -r realpath; }
if dpkg -s tcpgo >/dev/null 2>&1; then  # installed on the real machine: start from a clean slate
  step "dpkg --purge tcpgo (installed on this machine; only this copy of its root changes)"
  dpkg --purge tcpgo >/dev/null
fi

step "dpkg -i $(basename /mnt/share/*.deb)"
dpkg -i /mnt/share/*.deb
[ "$(linker_finds)" = "$lib" ] || fail "the ldconfig trigger did not make $lib known: $(linker_finds)"

step "C: README quick start, pkg-config --cflags --libs tcpgo"
cc -Wall -Wextra -Werror quickstart.c -o /tmp/quickstart $(pkg-config --cflags --libs tcpgo)
[ "$(loads /tmp/quickstart)" = "$lib" ] || fail "quickstart does not load $lib: $(ldd /tmp/quickstart)"
timeout 30 /tmp/quickstart

step "C++: find_package(tcpgo) and <tcp/TcpServer.h>"
cmake -S cmake -B /tmp/cm >/dev/null
cmake --build /tmp/cm >/dev/null
/tmp/cm/consumer

step "Python: Debian's /usr/bin/python3, /usr/bin/tcpgo"
cd /
/usr/bin/python3 -c "
import tcpgo
assert tcpgo.__file__.startswith('/usr/lib/python3/dist-packages/'), tcpgo.__file__
assert tcpgo.library_path() == '$lib', tcpgo.library_path()
s = tcpgo.TcpServer('\n', host='127.0.0.1')
s.on_message(lambda c, d: s.send(c, d))
print('python round trip:', tcpgo.request('127.0.0.1', s.start(0), 'from the deb', timeout=10))
s.close()"
/usr/bin/tcpgo --version

step "dpkg -r tcpgo"
dpkg -r tcpgo >/dev/null
left=$(dpkg -L tcpgo 2>/dev/null | while read -r f; do [ -f "$f" ] || [ -L "$f" ] && echo "$f"; done || true)
[ -z "$left" ] || fail "left after dpkg -r: $left"
[ ! -e "$lib" ] && [ ! -e /usr/bin/tcpgo ] && [ ! -e /usr/lib/python3/dist-packages/tcpgo ] ||
  fail "files left after dpkg -r"
[ -z "$(linker_finds)" ] || fail "libtcpserver.so.0 still in the linker cache after dpkg -r"
echo "test-deb: ok"
IN

# The overlay: root can mount it directly; others through a user namespace.
ns="unshare -m --propagation private"
[ "$(id -u)" = 0 ] || ns="unshare -m -r --propagation private"
$ns sh -eu -c '
  t=$1
  mount -t overlay overlay -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" "$t/root" ||
    { echo "test-deb: SKIPPED: cannot mount an overlay of / here (needs root or user namespaces)"; exit 77; }
  mount --rbind /dev "$t/root/dev"
  mount -t proc proc "$t/root/proc"
  mount -t tmpfs tmpfs "$t/root/tmp"
  mkdir -p "$t/root/mnt/share"
  mount --bind "$t/share" "$t/root/mnt/share"
  exec chroot "$t/root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 sh /mnt/share/inside.sh
' sh "$tmp" || { rc=$?; [ $rc = 77 ] && exit 0; exit $rc; }
