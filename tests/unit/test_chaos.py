"""Host-side faults signal only the container's own processes: the PID check, without an engine.

The faults themselves, injected, journaled and undone on the real engine, are in
../engine/test_chaos.py.
"""

from __future__ import annotations

import os
import subprocess

import pytest

import opskit
from opskit.act.hostpids import checked_pids
from opskit.engine.targets import Ref


def test_pids_outside_the_container_are_refused(bystander: subprocess.Popen[bytes]) -> None:
    """The check itself: a live PID whose cgroup does not name the container, or no live PID
    at all, is refused."""
    ref = Ref(id="ab" * 32, name="web-1", state="running")
    for pids in ([bystander.pid], [os.getpid()], [2 ** 22 + 1], []):
        with pytest.raises(opskit.InvalidTarget, match="PID namespace") as caught:
            checked_pids(ref, pids, "crash")
        assert "Hint:" in str(caught.value)
    assert bystander.poll() is None
