#!/bin/sh
# wheel.sh WHEEL PYTHON -- the wheel of `make wheel`, installed as a user
# would: into a fresh venv of PYTHON with pip, offline (--no-index), then
# used from outside the checkout with no TCPGO_LIBRARY: import, a round
# trip on the library the wheel carries, the tcpgo command, and help(tcpgo)
# listing only importable modules (the bundled library is not one).
set -eu
whl=$(realpath "$1") python=$2
skip() { echo "test-wheel: SKIPPED: $*"; exit 0; }
fail() { echo "test-wheel: FAILED: $*"; exit 1; }
[ -f "$whl" ] || fail "$whl missing (make wheel)"
"$python" -c "import sys, zipfile; sys.exit('tcpgo/libtcpserver.so.0' not in zipfile.ZipFile(sys.argv[1]).namelist())" "$whl" ||
  fail "the wheel does not carry tcpgo/libtcpserver.so.0"

tmp=$(mktemp -d /tmp/tcpgo-wheel-XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
"$python" -m venv "$tmp/venv" > "$tmp/venv.log" 2>&1 ||
  skip "$python cannot make a venv with pip: $(tail -1 "$tmp/venv.log") (Debian: python3-venv)"
v=$tmp/venv
env -u PYTHONPATH PIP_NO_INDEX=1 "$v/bin/python" -m pip install --no-index --disable-pip-version-check \
  -q "$whl" || fail "pip install --no-index $whl"
cd "$tmp"
env -u PYTHONPATH -u TCPGO_LIBRARY -u LD_LIBRARY_PATH "$v/bin/python" -c "
import importlib, os, pkgutil, pydoc, tcpgo
here = os.path.dirname(tcpgo.__file__)
assert here.startswith('$v/'), here
assert tcpgo.library_path() == os.path.join(here, 'libtcpserver.so.0'), tcpgo.library_path()
s = tcpgo.TcpServer('\n', host='127.0.0.1')
s.on_message(lambda c, d: s.send(c, d))
print('round trip:', tcpgo.request('127.0.0.1', s.start(0), 'from the wheel', timeout=10))
s.close()
names = [m.name for m in pkgutil.iter_modules(tcpgo.__path__)]
for n in names:
    importlib.import_module('tcpgo.' + n)
contents = pydoc.render_doc(tcpgo, renderer=pydoc.plaintext).split('PACKAGE CONTENTS\n')[1]
contents = contents.split('\n\n')[0].split()
assert sorted(contents) == sorted(names) and 'libtcpserver' not in contents, contents
print('help(tcpgo) lists:', ' '.join(contents))
"
env -u PYTHONPATH -u TCPGO_LIBRARY "$v/bin/tcpgo" --version
echo "test-wheel: ok"
