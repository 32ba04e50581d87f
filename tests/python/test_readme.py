"""The README's Python examples run as written.

Reads the "## Python" section of README.md when the lead has merged it, else
notes/readme-python.md. Every ```python block runs in a fresh interpreter
(in a temporary directory); a `print(...)  # expected` comment must match
the printed line. ```sh blocks run with bash. A block preceded by
`<!-- readme-test: skip ... -->` is not run; `<!-- readme-test: sigint -->`
runs the block, waits for its first line, sends SIGINT and expects a clean exit.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
from typing import List, Optional, Tuple

from _support import ROOT, TestCase, subprocess_env


def python_section() -> Tuple[str, str]:
    readme = ROOT / "README.md"
    if readme.exists():
        text = readme.read_text(encoding="utf-8")
        m = re.search(r"^## Python\b.*?(?=^## |\Z)", text, re.M | re.S)
        if m:
            return "README.md", m.group(0)
    notes = ROOT / "notes" / "readme-python.md"
    return "notes/readme-python.md", notes.read_text(encoding="utf-8")


def blocks(text: str) -> List[Tuple[str, str, Optional[str], int]]:
    """(language, code, marker, line) of every fenced block."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w+)\s*$", lines[i])
        if m:
            lang, start = m.group(1), i
            marker = None
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0:
                mm = re.match(r"^<!--\s*readme-test:\s*(\w+)", lines[j])
                if mm:
                    marker = mm.group(1)
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append((lang, "\n".join(body) + "\n", marker, start + 1))
        i += 1
    return out


def expected_prints(code: str) -> List[str]:
    return [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+#\s*(.+)$", code, re.M)]


def python_path_dir() -> str:
    """A directory whose python3 is this interpreter (for the shell examples)."""
    d = tempfile.mkdtemp(prefix="tcpgo-readme-bin-")
    os.symlink(sys.executable, os.path.join(d, "python3"))
    return d


class ReadmeExamplesTest(TestCase):
    def test_examples(self) -> None:
        source, text = python_section()
        found = blocks(text)
        self.assertGreaterEqual(sum(1 for b in found if b[0] == "python"), 4, source)
        bindir = python_path_dir()
        env = subprocess_env(PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
        for lang, code, marker, line in found:
            if marker == "skip" or lang not in ("python", "sh"):
                continue
            with self.subTest(block=f"{source} line {line}"):
                with tempfile.TemporaryDirectory(prefix="tcpgo-readme-") as cwd:
                    if marker == "sigint":
                        self.run_sigint(code, cwd, env)
                    elif lang == "python":
                        self.run_python(code, cwd, env)
                    else:
                        self.run_sh(code, cwd, env)

    def run_python(self, code: str, cwd: str, env: dict) -> None:
        r = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, f"{code}\n--- stderr:\n{r.stderr}")
        out = r.stdout.splitlines()
        want = expected_prints(code)
        self.assertEqual(len(out), len(want), f"stdout: {out}\nexpected: {want}")
        for got, exp in zip(out, want):
            self.assertEqual(got.strip(), exp)

    def run_sigint(self, code: str, cwd: str, env: dict) -> None:
        p = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert p.stdout is not None
            first = p.stdout.readline()
            self.assertTrue(first, p.stderr.read() if p.poll() is not None else "")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
            self.assertEqual(p.returncode, 0, err)
            self.assertNotIn("Traceback", err)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def run_sh(self, code: str, cwd: str, env: dict) -> None:
        for port in map(int, re.findall(r"--port (\d+)", code)):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    self.skipTest(f"port {port} of the shell example is in use")
        r = subprocess.run(["bash", "-e", "-c", code], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, f"{code}\n--- stdout:\n{r.stdout}\n--- stderr:\n{r.stderr}")
        for m in re.finditer(r"#\s*prints:\s*(.+)$", code, re.M):
            self.assertIn(m.group(1).strip(), r.stdout.splitlines())


if __name__ == "__main__":
    unittest.main()
