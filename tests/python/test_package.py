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

    def test_aio_connect_and_tls_server_spell_out_their_options(self) -> None:
        # Type checkers see only explicit parameters: no **kwargs, and every
        # option of the classes the arguments are passed on to, same default.
        def keywords(*fns: object) -> "dict[str, object]":
            out: "dict[str, object]" = {}
            for fn in fns:
                for p in inspect.signature(fn).parameters.values():  # type: ignore[arg-type]
                    if p.kind is p.KEYWORD_ONLY:
                        out.setdefault(p.name, p.default)
            return out

        cases = [(tcpgo.aio.connect, (tcpgo.aio.Client, tcpgo.TcpClient, tcpgo.TlsClient)),
                 (tcpgo.aio.TlsServer, (tcpgo.aio.TcpServer, tcpgo.TcpServer, tcpgo.TlsServer)),
                 (tcpgo.aio.TcpServer, (tcpgo.TcpServer,)),
                 (tcpgo.aio.Client, (tcpgo.TcpClient, tcpgo.TlsClient)),
                 (tcpgo.TlsServer, (tcpgo.TcpServer,)),
                 (tcpgo.TlsClient, (tcpgo.TcpClient,))]
        for fn, targets in cases:
            with self.subTest(fn=fn.__qualname__):
                params = inspect.signature(fn).parameters
                self.assertFalse([p.name for p in params.values() if p.kind is p.VAR_KEYWORD])
                mine = keywords(fn)
                for name, default in keywords(*targets).items():
                    self.assertIn(name, mine)
                    self.assertEqual(mine[name], default, name)

    def test_aio_all(self) -> None:
        self.assertTrue(tcpgo.aio.__all__)
        for name in tcpgo.aio.__all__:
            self.assertTrue(hasattr(tcpgo.aio, name), name)

    def test_help_lists_only_importable_modules(self) -> None:
        # A bundled library must not show up in help(tcpgo) as a module.
        import importlib
        import pkgutil
        import pydoc

        names = [m.name for m in pkgutil.iter_modules(tcpgo.__path__)]
        self.assertIn("aio", names)
        for name in names:
            if name != "__main__":
                importlib.import_module(f"tcpgo.{name}")
        text = pydoc.render_doc(tcpgo, renderer=pydoc.plaintext)
        contents = text.split("PACKAGE CONTENTS\n", 1)[1].split("\n\n", 1)[0].split()
        self.assertEqual(sorted(contents), sorted(names))

    def test_log_lines_do_not_repeat_the_logger_name(self) -> None:
        import asyncio
        import logging

        records: "list[logging.LogRecord]" = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.append(record)

        async def main() -> None:
            async with tcpgo.aio.TcpServer("\n", host="127.0.0.1") as srv:
                def boom(cid: int, data: bytes) -> None:
                    raise RuntimeError("handler failed")

                srv.on_message(boom)
                port = await srv.start(0)
                client = await tcpgo.aio.connect("127.0.0.1", port, delimiter="\n")
                await client.send("x")
                for _ in range(1000):
                    if records:
                        break
                    await asyncio.sleep(0.01)
                await client.close()

        logger = logging.getLogger("tcpgo")
        handler = Keep()
        logger.addHandler(handler)
        try:
            asyncio.run(asyncio.wait_for(main(), 30))
        finally:
            logger.removeHandler(handler)
        self.assertTrue(records)
        for r in records:
            self.assertFalse(r.getMessage().startswith("tcpgo"), r.getMessage())

    def test_no_logging_configuration_on_import(self) -> None:
        code = ("import logging, tcpgo, tcpgo.aio; r = logging.getLogger();"
                "print(len(r.handlers), len(logging.getLogger('tcpgo').handlers))")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "PYTHONPATH": str(PKG_DIR)})
        self.assertEqual(r.stdout.split(), ["0", "0"], r.stderr)


if __name__ == "__main__":
    unittest.main()
