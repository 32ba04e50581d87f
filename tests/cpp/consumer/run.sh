#!/bin/sh
# run.sh SRC CMAKE_BUILD CXX CMAKE -- packaging tests of the C++ binding.
#
#  1. `make install PREFIX=$tmp/make INSTALL_TARGETS=install-cpp` (the
#     project's own install recipe, C++ part only), then
#     a. an out-of-tree CMake project: find_package(tcpgo CONFIG REQUIRED)
#     b. an out-of-tree Makefile project: pkg-config --cflags --libs tcpgo
#     c. a program written only against nilshenrich/TCP_ServerClient v2,
#        compiled with v2's flags and include paths
#        (-I<prefix>/include/tcp for "TcpServer.h", -ltcpserver -ltcpclient
#        -ltlsserver -ltlsclient -lssl -lcrypto -pthread)
#  2. `cmake --install CMAKE_BUILD --prefix $tmp/cmake`, then 1a and 1b
#     again, and 1a once more after moving the installed tree.
#  3. an out-of-tree CMake project that uses add_subdirectory(tcpgo), which
#     builds the library with go (fast with a warm go build cache).
# Every program is run. TCPGO_TEST_CERTS names v2-style certificates
# (made here when unset).
set -eu
src=$1 build=$2 cxx=$3 cmake=$4
tmp=$(mktemp -d /tmp/tcpgo-cpp-consumer-XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
step() { printf '\n=== %s\n' "$*"; }

certs=${TCPGO_TEST_CERTS:-}
if [ -z "$certs" ] || [ ! -f "$certs/rsa/ca.pem" ]; then
  certs=$tmp/certs
  sh "$src/tests/cpp/make_v2_certs.sh" "$certs" >/dev/null
fi

# --- 1. make install ---------------------------------------------------------
p=$tmp/make
step "make install PREFIX=$p"
# The project's `install` recipe (library, compatibility names, tcpgo.h)
# with only the C++ part's install step: other parts' steps may install
# outside PREFIX (the Python package goes to the running interpreter's
# site-packages), which a test must not do. A clean environment for the
# nested make (no jobserver of a parent make).
# An existing library is taken as is (-o): the test installs what the
# enclosing build made and never starts a second Go build next to it.
old=""
[ -e "$src/build/lib/libtcpserver.so.0" ] && old="-o build/lib/libtcpserver.so.0 -o build/lib/libtcpserver.so"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
  make -C "$src" --no-print-directory $old install PREFIX="$p" INSTALL_TARGETS=install-cpp
for f in lib/libtcpserver.so.0 lib/libtcpserver.so lib/libtcpclient.so lib/libtlsserver.so \
         lib/libtlsclient.so include/tcpgo.h include/tcp/TcpServer.h include/tcp/TlsServer.h \
         include/tcp/TcpClient.h include/tcp/TlsClient.h include/tcp/ServerDefines.h \
         include/tcp/ClientDefines.h include/tcp/detail/Common.h \
         lib/cmake/tcpgo/tcpgoConfig.cmake lib/cmake/tcpgo/tcpgoConfigVersion.cmake \
         lib/pkgconfig/tcpgo.pc; do
  [ -e "$p/$f" ] || { echo "missing after make install: $f" >&2; exit 1; }
done
for n in libtcpserver.so libtcpclient.so libtlsserver.so libtlsclient.so; do
  [ "$(readlink "$p/lib/$n")" = libtcpserver.so.0 ] || { echo "$n is not a link to the SONAME" >&2; exit 1; }
done

step "CMake consumer (find_package) against $p"
"$cmake" -S "$src/tests/cpp/consumer/cmake" -B "$tmp/cm1" -DCMAKE_PREFIX_PATH="$p" \
  -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
"$cmake" --build "$tmp/cm1"
"$tmp/cm1/consumer"

step "pkg-config consumer against $p"
mkdir -p "$tmp/pc1"
PKG_CONFIG_PATH=$p/lib/pkgconfig make -C "$src/tests/cpp/consumer/pkgconfig" \
  --no-print-directory OUT="$tmp/pc1" CXX="$cxx"
LD_LIBRARY_PATH=$p/lib "$tmp/pc1/consumer"

step "v2 program with v2's flags against $p"
v2=$src/tests/cpp/consumer/v2compat
ssl="-lssl -lcrypto"
if ! printf 'int main(){return 0;}' | "$cxx" -x c++ - -o "$tmp/ssltest" $ssl 2>/dev/null; then
  echo "(libssl-dev not installed: linking without -lssl -lcrypto)"
  ssl=""
fi
flags="-std=c++17 -Wall -Wextra -Werror -I$p/include -I$p/include/tcp"
libs="-L$p/lib -ltcpserver -ltcpclient -ltlsserver -ltlsclient $ssl -pthread"
# exactly v2's API (no tcpgo call at all): must compile and link
"$cxx" $flags "$v2/server_part.cpp" "$v2/client_part.cpp" -o "$tmp/v2compat-pure" $libs
# the same with the loopback bind for running it here
"$cxx" $flags -DTCPGO_TEST_LOOPBACK "$v2/server_part.cpp" "$v2/client_part.cpp" \
  -o "$tmp/v2compat" $libs
readelf -d "$tmp/v2compat" | grep NEEDED
mkdir -p "$tmp/files"
port=$(( 20000 + ($$ % 20000) ))
LD_LIBRARY_PATH=$p/lib "$tmp/v2compat" "$port" "$certs" "$tmp/files"

# --- 2. cmake --install ----------------------------------------------------------
q=$tmp/cmake
step "cmake --install $build --prefix $q"
"$cmake" --install "$build" --prefix "$q" >/dev/null
for f in include/tcpgo.h include/tcp/TcpServer.h; do
  [ -e "$q/$f" ] || { echo "missing after cmake --install: $f" >&2; exit 1; }
done
cfg=$(find "$q" -name tcpgoConfig.cmake | head -n1)
[ -n "$cfg" ] || { echo "no tcpgoConfig.cmake after cmake --install" >&2; exit 1; }
"$cmake" -S "$src/tests/cpp/consumer/cmake" -B "$tmp/cm2" -DCMAKE_PREFIX_PATH="$q" \
  -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
"$cmake" --build "$tmp/cm2"
"$tmp/cm2/consumer"
pc=$(find "$q" -name tcpgo.pc | head -n1)
mkdir -p "$tmp/pc2"
PKG_CONFIG_PATH=$(dirname "$pc") make -C "$src/tests/cpp/consumer/pkgconfig" \
  --no-print-directory OUT="$tmp/pc2" CXX="$cxx"
LD_LIBRARY_PATH=$(pkg-config --variable=libdir "$pc") "$tmp/pc2/consumer"

# the installed tree is relocatable for CMake: move it and find it again
mv "$q" "$tmp/moved"
"$cmake" -S "$src/tests/cpp/consumer/cmake" -B "$tmp/cm3" -DCMAKE_PREFIX_PATH="$tmp/moved" \
  -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
"$cmake" --build "$tmp/cm3"
"$tmp/cm3/consumer"

# --- 3. add_subdirectory ----------------------------------------------------------
step "CMake consumer with add_subdirectory (builds the library with go)"
"$cmake" -S "$src/tests/cpp/consumer/subdir" -B "$tmp/sub" -DTCPGO_SOURCE_DIR="$src" \
  -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
"$cmake" --build "$tmp/sub"
readelf -d "$tmp/sub/tcpgo/lib/libtcpserver.so.0" | grep -q 'SONAME.*libtcpserver.so.0' ||
  { echo "the CMake-built library has no SONAME libtcpserver.so.0" >&2; exit 1; }
"$tmp/sub/consumer"

step "all consumer tests passed"
