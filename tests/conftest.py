"""What every test needs, with or without an engine: an opskit state folder of the session's
own (no test reads or writes the user's ``~/.opskit``), and a bystander process.

Fixtures on the real engine are in ``engine/conftest.py``; helpers in ``support/``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

os.environ.setdefault("OPSKIT_HOME", tempfile.mkdtemp(prefix="opskit-test-home-"))


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process of this host outside every container: what a PID from an engine in another
    PID namespace (a VM, a forwarded socket) can name here."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()
