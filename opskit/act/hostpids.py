"""The container's processes as the host sees them: checked before any signal is sent.

``chaos crash`` and ``chaos delay`` signal a container's processes from the host (a real crash,
a real freeze). The engine reports them by PID, in *its* PID namespace; when that is not this
process's (an engine in a VM, behind a forwarded socket, in another namespace), the numbers name
other processes here. So a PID is signalled only when its ``/proc/PID/cgroup`` names the
container, and through a pidfd that pins the process while that is checked.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Sequence
from pathlib import Path

from ..base import errors
from ..engine.targets import Ref

__all__ = ["belongs", "checked_pids", "is_stopped", "signal_pids"]

_FULL_ID = re.compile(r"[0-9a-f]{64}")


def checked_pids(ref: Ref, pids: Sequence[int], kind: str) -> list[int]:
    """The PIDs the engine reported that this host sees as the container's processes.

    The engine reports PIDs in its own PID namespace. When that is not this process's (an
    engine in a VM, behind a forwarded socket, in another namespace), the numbers name other
    processes here, or none. So every PID still alive here must have a cgroup naming the
    container, and at least one must; a PID gone meanwhile (an exec'd probe) is dropped.

    Raises:
        InvalidTarget: a PID is another process here, or none is the container's; no signal
            was sent.
    """
    mine: list[int] = []
    strays: list[int] = []
    for pid in pids:
        cgroup = _cgroup(pid)
        if cgroup is not None:
            (mine if _names(cgroup, ref.id) else strays).append(int(pid))
    if strays or not mine:
        seen = (f"PID(s) {', '.join(map(str, strays))} here belong to other processes"
                if strays else f"none of PID(s) {', '.join(map(str, pids)) or '-'} is a "
                "process of it here")
        raise errors.InvalidTarget(
            ref.name, f"cannot be given a {kind} from the host: the engine reports its "
            f"processes by PID, but {seen} (their /proc/PID/cgroup does not name "
            f"{ref.id[:12]}); the engine's PID namespace is not this process's (a VM, a "
            "forwarded socket, another namespace)",
            hint="use kind='kill' for an API kill, or 'pause' for a freeze, instead; or run "
            "opskit on the engine's host, in its PID namespace.")
    return mine


def _cgroup(pid: int) -> str | None:
    """``/proc/PID/cgroup`` of a host process, or None when there is no such process here."""
    try:
        return Path(f"/proc/{int(pid)}/cgroup").read_text()
    except OSError:
        return None


def _names(cgroup: str, container_id: str) -> bool:
    return bool(_FULL_ID.fullmatch(container_id)) and container_id in cgroup


def belongs(pid: int, container_id: str) -> bool:
    """Whether a host PID is still one of the container's processes (its cgroup names the
    container), so a PID reused since by another process is never signalled."""
    cgroup = _cgroup(pid)
    return cgroup is not None and _names(cgroup, container_id)


def signal_pids(pids: Sequence[int], container_id: str, sig: signal.Signals) -> list[int]:
    """Send ``sig`` to each PID that is still one of the container's processes; return those
    signalled.

    A pidfd pins the process while its cgroup is read: if the PID was reused meanwhile, the
    signal goes to the pinned (dead) process and fails, never to the newcomer.
    """
    sent = []
    for pid in map(int, pids):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        except OSError:  # no pidfd (an old kernel): check, then signal by number
            fd = -1
        try:
            if not belongs(pid, container_id):
                continue
            if fd >= 0:
                signal.pidfd_send_signal(fd, sig)
            else:
                os.kill(pid, sig)
            sent.append(pid)
        except ProcessLookupError:
            continue
        finally:
            if fd >= 0:
                os.close(fd)
    return sent


def is_stopped(pid: int) -> bool:
    """Whether a host process is stopped by a signal (``T`` in ``/proc/PID/stat``)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["T"]
