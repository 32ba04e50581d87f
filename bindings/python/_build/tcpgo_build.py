"""A minimal PEP 517 build backend for the pure-Python ``tcpgo`` package.

Standard library only, so that ``pip install ./bindings/python`` works with no
network access (pip's build isolation would otherwise try to download
setuptools). It builds:

* a wheel holding ``tcpgo/`` (``*.py``, ``py.typed``) and a copy of the
  library as ``tcpgo/libtcpserver.so.0`` -- taken from ``tcpgo/libtcpserver.so*``
  if present, else from ``build/lib`` of the source checkout when ``make`` has
  built it -- which makes the wheel platform-specific and ``import tcpgo``
  work from anywhere. (Named after its SONAME, not ``*.so``, so that pkgutil
  and ``help(tcpgo)`` do not list it as an extension module.)
  ``TCPGO_BUNDLE_LIBRARY=0`` leaves the library out (the package then finds it
  at run time), ``=1`` makes a missing library an error, ``=/path/to/lib``
  bundles that file (what ``make wheel`` does).
  ``TCPGO_INSTALL_LIBRARY=/abs/path`` adds ``tcpgo/_install.py`` recording where
  ``make install`` put the library (what ``make install-python`` does);
* an sdist;
* an editable wheel (``pip install -e``) made of a ``.pth`` file.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "tcpgo"
NAME = "tcpgo"
SUMMARY = ("Fast TCP and TLS servers and clients for Python, on the tcpgo engine "
           "(libtcpserver.so)")


def _version() -> str:
    text = (PKG / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not m:
        raise RuntimeError("no __version__ in tcpgo/__init__.py")
    return m.group(1)


def _metadata() -> str:
    readme = ROOT / "README.md"
    body = readme.read_text(encoding="utf-8") if readme.exists() else ""
    return (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {_version()}\n"
            f"Summary: {SUMMARY}\nLicense: MIT\nRequires-Python: >=3.8\n"
            "Classifier: Programming Language :: Python :: 3\n"
            "Classifier: Operating System :: POSIX :: Linux\n"
            "Classifier: Typing :: Typed\n"
            "Description-Content-Type: text/markdown\n\n" + body)


ENTRY_POINTS = "[console_scripts]\ntcpgo = tcpgo.cli:main\n"


def _checkout_library() -> Optional[Path]:
    """build/lib/libtcpserver.so.0 of the checkout this package lives in, if built."""
    root = ROOT.parent.parent
    lib = root / "build" / "lib" / "libtcpserver.so.0"
    if (root / "include" / "tcpgo.h").is_file() and lib.is_file():
        return lib.resolve()
    return None


BUNDLED = f"{NAME}/libtcpserver.so.0"  # the library inside a wheel


def _library_to_bundle(bundle: str) -> Optional[Path]:
    if bundle == "0":
        return None
    if bundle not in ("auto", "1"):
        path = Path(bundle)
        if not path.is_file():
            raise RuntimeError(f"TCPGO_BUNDLE_LIBRARY={bundle}: no such file")
        return path.resolve()
    beside = sorted(p for p in PKG.iterdir() if p.name.startswith("libtcpserver.so"))
    lib = beside[0].resolve() if beside else _checkout_library()
    if lib is None and bundle == "1":
        raise RuntimeError("TCPGO_BUNDLE_LIBRARY=1 but no library: run `make` first")
    return lib


def _package_files() -> List[Tuple[str, bytes, int]]:
    files: List[Tuple[str, bytes, int]] = []
    lib = _library_to_bundle(os.environ.get("TCPGO_BUNDLE_LIBRARY", "auto"))
    if lib is not None:
        files.append((BUNDLED, lib.read_bytes(), 0o755))
    for p in sorted(PKG.iterdir()):
        if p.name == "_install.py" or p.name.startswith("."):
            continue
        if (p.suffix == ".py" or p.name == "py.typed") and p.is_file():
            files.append((f"{NAME}/{p.name}", p.read_bytes(), 0o644))
    installed = os.environ.get("TCPGO_INSTALL_LIBRARY")
    if installed:
        files.append((f"{NAME}/_install.py", install_record(installed), 0o644))
    return files


def install_record(library: str) -> bytes:
    """tcpgo/_install.py: where `make install` put the library (read by tcpgo._lib)."""
    return ('"""Written at install time by tcpgo_build: where `make install` put the '
            'library."""\n' f"LIBRARY = {library!r}\n").encode()


def _has_binary(files: List[Tuple[str, bytes, int]]) -> bool:
    return any("/libtcpserver.so" in name for name, _, _ in files)


def _tag(binary: bool) -> str:
    if not binary:
        return "py3-none-any"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"py3-none-{plat}"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, files: List[Tuple[str, bytes, int]], tag: str) -> str:
    version = _version()
    dist_info = f"{NAME}-{version}.dist-info"
    wheel_meta = (f"Wheel-Version: 1.0\nGenerator: tcpgo_build\nRoot-Is-Purelib: "
                  f"{'false' if tag != 'py3-none-any' else 'true'}\nTag: {tag}\n")
    all_files = list(files) + [
        (f"{dist_info}/METADATA", _metadata().encode("utf-8"), 0o644),
        (f"{dist_info}/WHEEL", wheel_meta.encode(), 0o644),
        (f"{dist_info}/entry_points.txt", ENTRY_POINTS.encode(), 0o644),
        (f"{dist_info}/top_level.txt", f"{NAME}\n".encode(), 0o644),
    ]
    record = [_record_line(n, d) for n, d, _ in all_files] + [f"{dist_info}/RECORD,,"]
    all_files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode(), 0o644))
    filename = f"{NAME}-{version}-{tag}.whl"
    path = os.path.join(wheel_directory, filename)
    date = time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", "1577836800")))[:6]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in all_files:
            info = zipfile.ZipInfo(name, date_time=date)  # type: ignore[arg-type]
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return filename


# -- PEP 517 hooks ---------------------------------------------------------------------
def get_requires_for_build_wheel(config_settings: Optional[Dict] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[Dict] = None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[Dict] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: Optional[Dict] = None) -> str:
    dist_info = f"{NAME}-{_version()}.dist-info"
    d = Path(metadata_directory) / dist_info
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(_metadata(), encoding="utf-8")
    (d / "entry_points.txt").write_text(ENTRY_POINTS)
    return dist_info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory: str, config_settings: Optional[Dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    files = _package_files()
    return _write_wheel(wheel_directory, files, _tag(_has_binary(files)))


def build_editable(wheel_directory: str, config_settings: Optional[Dict] = None,
                   metadata_directory: Optional[str] = None) -> str:
    pth = (f"{ROOT}\n").encode()
    return _write_wheel(wheel_directory, [(f"__editable__.{NAME}.pth", pth, 0o644)],
                        "py3-none-any")


def build_sdist(sdist_directory: str, config_settings: Optional[Dict] = None) -> str:
    version = _version()
    base = f"{NAME}-{version}"
    filename = f"{base}.tar.gz"
    members = ["pyproject.toml", "README.md", "_build/tcpgo_build.py"]
    members += [f"tcpgo/{p.name}" for p in sorted(PKG.iterdir())
                if p.is_file() and (p.suffix == ".py" or p.name == "py.typed")
                and p.name != "_install.py"]
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            src = ROOT / m
            if src.exists():
                tf.add(str(src), arcname=f"{base}/{m}")
        pkg_info = _metadata().encode("utf-8")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(pkg_info)
        tf.addfile(info, io.BytesIO(pkg_info))
    return filename
