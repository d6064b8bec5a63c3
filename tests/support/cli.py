"""Run the ``opskit`` command as a user runs it: a subprocess of this interpreter."""

from __future__ import annotations

import os
import subprocess
import sys


def run(*args: str, scope: str = "", check: bool = False) -> subprocess.CompletedProcess[str]:
    """``opskit [--scope SCOPE] ARGS...``; with ``check``, fail on a non-zero exit."""
    argv = [sys.executable, "-m", "opskit.cli"]
    if scope:
        argv += ["--scope", scope]
    out = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ})
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}: {out.stderr}")
    return out
