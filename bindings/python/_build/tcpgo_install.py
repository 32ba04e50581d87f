"""Install the ``tcpgo`` Python package for one interpreter under a prefix.

What ``make install`` / ``make install-python`` run (standard library only, no
pip, so it works with Debian's own ``/usr/bin/python3`` under PEP 668 and
never needs ``--break-system-packages``)::

    PYTHON tcpgo_install.py install --prefix /usr/local --library /usr/local/lib/libtcpserver.so.0
    PYTHON tcpgo_install.py uninstall --prefix /usr/local
    PYTHON tcpgo_install.py where --prefix /usr/local

The package goes where *that interpreter* looks for the system packages of
the prefix: the first of its own site directories that lies in the prefix
(``/usr/local/lib/python3.11/dist-packages`` for Debian's python3 and
``/usr/local``, ``/usr/lib/python3/dist-packages`` for ``/usr``, the venv's
site-packages for the venv's prefix). When it searches no directory of the
prefix (``--prefix /opt/tcpgo``), the package goes to the directory the
interpreter would use for that prefix (``lib/python3/dist-packages`` on
Debian, ``lib/pythonX.Y/site-packages`` elsewhere), and ``PREFIX/bin/tcpgo``
adds that directory to ``sys.path`` itself; ``import tcpgo`` then needs
``PYTHONPATH``, which the installer says.

Installed: ``tcpgo/`` with byte-code, ``tcpgo/_install.py`` (the library's
path), ``tcpgo-VERSION.dist-info`` (so that ``importlib.metadata`` and pip see
it) with a RECORD of every file, and the ``PREFIX/bin/tcpgo`` command.
``--destdir`` stages everything under another root (for packages).
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import py_compile
import shutil
import site
import sys
from pathlib import Path
from typing import List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcpgo_build  # noqa: E402

NAME = tcpgo_build.NAME


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def _in_prefix(directory: str, prefix: str) -> bool:
    """directory is PREFIX/lib*/...: a /usr/local directory does not belong to /usr."""
    rel = os.path.relpath(directory, prefix)
    return not rel.startswith("..") and rel.split(os.sep)[0] in ("lib", "lib64")


def site_dir(prefix: str) -> Tuple[str, bool]:
    """(directory for the package, whether this interpreter searches it by default)."""
    prefix = _norm(prefix)
    for d in site.getsitepackages():
        if _in_prefix(_norm(d), prefix):
            return _norm(d), True
    for d in site.getsitepackages([prefix]):
        if _in_prefix(_norm(d), prefix):
            return _norm(d), False
    v = sys.version_info
    return os.path.join(prefix, "lib", f"python{v[0]}.{v[1]}", "site-packages"), False


def _dist_info(directory: str) -> List[str]:
    return sorted(glob.glob(os.path.join(directory, f"{NAME}-*.dist-info")))


def _script(python: str, directory: str, searched: bool) -> bytes:
    path_fix = "" if searched else (
        f"SITE = {directory!r}  # {python} does not search it by itself\n"
        "if SITE not in sys.path:\n"
        "    sys.path.insert(0, SITE)\n")
    return (f"#!{python}\n"
            f"# The tcpgo command, installed by `make install` (tcpgo {tcpgo_build._version()}).\n"
            "import sys\n" + path_fix +
            "from tcpgo.cli import main\n"
            "sys.exit(main())\n").encode()


def uninstall(prefix: str, destdir: str, quiet: bool = False) -> int:
    directory, _ = site_dir(prefix)
    staged = destdir + directory
    removed = 0
    for info in _dist_info(staged):
        record = os.path.join(info, "RECORD")
        paths = []
        if os.path.isfile(record):
            with open(record, encoding="utf-8") as f:
                paths = [line.rsplit(",", 2)[0] for line in f if line.strip()]
        for rel in paths:
            p = os.path.normpath(os.path.join(staged, rel))
            if os.path.isfile(p) or os.path.islink(p):
                os.unlink(p)
                removed += 1
        shutil.rmtree(info, ignore_errors=True)
        # directories left empty by the files above (the package, __pycache__)
        for d in sorted({os.path.dirname(os.path.normpath(os.path.join(staged, r)))
                         for r in paths}, key=len, reverse=True):
            if d.startswith(staged + os.sep):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
    if not quiet:
        print(f"tcpgo: removed the Python package from {staged} ({removed} files)"
              if removed else f"tcpgo: no Python package in {staged}")
    return 0


def install(prefix: str, library: str, destdir: str, bindir: Optional[str],
            installer: str) -> int:
    prefix = _norm(prefix)
    directory, searched = site_dir(prefix)
    bindir = _norm(bindir) if bindir else os.path.join(prefix, "bin")
    staged = destdir + directory
    uninstall(prefix, destdir, quiet=True)  # an earlier version, also one pip installed

    os.environ["TCPGO_BUNDLE_LIBRARY"] = "0"  # the package loads the installed library
    files = [(n, d) for n, d, _ in tcpgo_build._package_files()]
    files.append((f"{NAME}/_install.py", tcpgo_build.install_record(library)))
    record: List[str] = []

    def write(rel: str, data: bytes, mode: int = 0o644) -> None:
        target = os.path.join(staged, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
        os.chmod(target, mode)
        record.append(tcpgo_build._record_line(rel.replace(os.sep, "/"), data))

    for rel, data in files:
        write(rel, data)
    # Byte-code now, as root: later imports by users could not write it.
    for rel, _ in files:
        if rel.endswith(".py"):
            final = os.path.join(directory, rel)
            pyc = importlib.util.cache_from_source(final)
            staged_pyc = destdir + pyc
            py_compile.compile(os.path.join(staged, rel), cfile=staged_pyc, dfile=final,
                               doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
            with open(staged_pyc, "rb") as f:
                record.append(tcpgo_build._record_line(
                    os.path.relpath(pyc, directory).replace(os.sep, "/"), f.read()))

    script = os.path.join(bindir, NAME)
    data = _script(sys.executable, directory, searched)
    os.makedirs(destdir + bindir, exist_ok=True)
    with open(destdir + script, "wb") as f:
        f.write(data)
    os.chmod(destdir + script, 0o755)
    record.append(tcpgo_build._record_line(os.path.relpath(script, directory), data))

    info = f"{NAME}-{tcpgo_build._version()}.dist-info"
    write(f"{info}/METADATA", tcpgo_build._metadata().encode("utf-8"))
    write(f"{info}/entry_points.txt", tcpgo_build.ENTRY_POINTS.encode())
    write(f"{info}/top_level.txt", f"{NAME}\n".encode())
    write(f"{info}/INSTALLER", f"{installer}\n".encode())
    record.append(f"{info}/RECORD,,")
    with open(os.path.join(staged, info, "RECORD"), "w", encoding="utf-8") as f:
        f.write("\n".join(record) + "\n")

    print(f"tcpgo: Python package for {sys.executable} in {staged}/{NAME}, "
          f"command {destdir}{script}")
    if not searched:
        print(f"tcpgo: note: {sys.executable} does not search {directory} by itself.\n"
              f"  The command {script} works as it is; for `import tcpgo` set\n"
              f"  PYTHONPATH={directory}, or give that interpreter its own copy:\n"
              f"  {sys.executable} -m pip install ./bindings/python")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=("install", "uninstall", "where"))
    p.add_argument("--prefix", required=True)
    p.add_argument("--library", help="absolute path of the installed libtcpserver.so.N")
    p.add_argument("--destdir", default="", help="stage under this root")
    p.add_argument("--bindir", help="where the tcpgo command goes (default PREFIX/bin)")
    p.add_argument("--installer", default="make", help="written to dist-info/INSTALLER")
    a = p.parse_args(argv)
    destdir = a.destdir.rstrip("/")
    if destdir:
        destdir = _norm(destdir)
    if a.action == "where":
        directory, searched = site_dir(a.prefix)
        print(directory, "searched" if searched else "not-searched")
        return 0
    if a.action == "uninstall":
        return uninstall(a.prefix, destdir)
    if not a.library or not os.path.isabs(a.library):
        p.error("install needs --library /absolute/path/of/libtcpserver.so.N")
    return install(a.prefix, a.library, destdir, a.bindir, a.installer)


if __name__ == "__main__":
    sys.exit(main())
