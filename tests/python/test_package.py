"""Packaging and typing: offline pip install, py.typed, annotations, docstrings."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tempfile
import unittest

from _support import PKG_DIR, ROOT, TestCase

import tcpgo
import tcpgo.aio


class PackageTest(TestCase):
    def test_pip_install_offline_and_import_anywhere(self) -> None:
        if subprocess.run([sys.executable, "-m", "pip", "--version"],
                          capture_output=True).returncode != 0:
            self.skipTest("pip not available")
        with tempfile.TemporaryDirectory() as target, tempfile.TemporaryDirectory() as elsewhere:
            env = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "TCPGO_LIBRARY")}
            env["PIP_NO_INDEX"] = "1"  # prove that nothing is downloaded
            r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps",
                                "--disable-pip-version-check", "--root-user-action=ignore",
                                "--target", target, str(PKG_DIR)],
                               capture_output=True, text=True, timeout=300, env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertTrue(os.path.isfile(os.path.join(target, "tcpgo", "py.typed")))
            env["PYTHONPATH"] = target
            code = ("import tcpgo; s = tcpgo.TcpServer('\\n', host='127.0.0.1');"
                    "s.on_message(lambda c, d: s.send(c, d)); p = s.start(0);"
                    "print(tcpgo.request('127.0.0.1', p, 'installed'), tcpgo.__file__)")
            r = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True,
                               text=True, timeout=60, env=env)
            if (ROOT / "build" / "lib" / "libtcpserver.so.0").exists():
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(r.stdout.startswith("b'installed' " + target), r.stdout)
            else:  # nothing to bundle: the installed package must still say what to do
                self.assertIn("ImportError", r.stderr)

    def test_py_typed_and_annotations(self) -> None:
        self.assertTrue((PKG_DIR / "tcpgo" / "py.typed").is_file())
        missing = []
        for mod in (tcpgo, tcpgo.aio):
            for name in getattr(mod, "__all__", []):
                obj = getattr(mod, name)
                targets = []
                if inspect.isclass(obj) and not issubclass(obj, BaseException):
                    targets = [m for n, m in vars(obj).items()
                               if inspect.isfunction(m) and not n.startswith("_")]
                    if not obj.__doc__:
                        missing.append(f"{name}: docstring")
                elif inspect.isfunction(obj):
                    targets = [obj]
                for fn in targets:
                    sig = inspect.signature(fn)
                    if sig.return_annotation is inspect.Signature.empty:
                        missing.append(f"{name}.{fn.__name__}: return annotation")
                    for p in sig.parameters.values():
                        if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty:
                            missing.append(f"{name}.{fn.__name__}({p.name})")
        self.assertEqual(missing, [])

    def test_no_logging_configuration_on_import(self) -> None:
        code = ("import logging, tcpgo, tcpgo.aio; r = logging.getLogger();"
                "print(len(r.handlers), len(logging.getLogger('tcpgo').handlers))")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "PYTHONPATH": str(PKG_DIR)})
        self.assertEqual(r.stdout.split(), ["0", "0"], r.stderr)


if __name__ == "__main__":
    unittest.main()
