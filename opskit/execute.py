"""Running a command inside a container: ``docker exec``.

The command's two streams are kept apart and its exit code is read back from the engine, so a
runbook can branch on it. Exec changes a container (it runs code there), so the target must be
in opskit's scope.

docker-py reads an exec's output with no socket timeout at all, so a command that never ends
blocks its caller forever (RELIABILITY row 6). With ``timeout=`` the output is read on a helper
thread and the caller stops waiting at the deadline; the connection is then shut down, which
ends the reading thread too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import errors
from .engine import Engine
from .redact import redact_argv, redact_text
from .targets import resolve_one

__all__ = ["ExecResult", "exec_run"]


@dataclass(frozen=True, repr=False)
class ExecResult:
    """What a command printed and how it ended.

    The repr masks secrets (in the command and the output) so a notebook can show it; the
    attributes hold what was really run and printed.

    Attributes:
        container: the container's name; ``id`` its full ID.
        command: the command run, as given.
        exit_code: the command's exit code.
        stdout, stderr: the two streams, decoded as UTF-8.
        duration: seconds.
    """

    container: str
    id: str
    command: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration: float

    def __repr__(self) -> str:
        return (f"ExecResult(container={self.container!r}, "
                f"command={tuple(redact_argv(self.command))!r}, exit_code={self.exit_code}, "
                f"stdout={redact_text(self.stdout)!r}, stderr={redact_text(self.stderr)!r}, "
                f"duration={self.duration:.3f})")

    @property
    def output(self) -> str:
        """Both streams, stdout first."""
        return self.stdout + self.stderr

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0


def exec_run(engine: Engine, target: str, command: Sequence[str] | str, *,
             user: str | None = None, workdir: str | None = None,
             env: Mapping[str, str] | None = None, timeout: float | None = None,
             allow_foreign: bool = False) -> ExecResult:
    """Run ``command`` in a running container: ``docker exec [-u U] [-w DIR] TARGET CMD...``.

    A string command runs through ``sh -c``.

    Args:
        engine: the engine.
        target: a container name or ID, or a service of one replica.
        command: argv list, or a shell string.
        user, workdir, env: as ``docker exec -u``, ``-w`` and ``-e``.
        timeout: seconds to wait for the command to finish. ``None`` (the default) waits as
            long as it runs, as ``docker exec`` does. At the deadline opskit stops reading and
            raises; the engine has no way to stop an exec, so the command may still be
            running inside the container.
        allow_foreign: act on a container outside opskit's scope.

    Raises:
        ContainerNotFound, OutOfScope, InvalidTarget (a service of several replicas, an empty
        command, a timeout that is not a positive number),
        EngineError (the container is not running, the program does not exist, or the
        command did not finish within ``timeout``), EngineUnavailable.
    """
    cmd = ("sh", "-c", command) if isinstance(command, str) else tuple(command)
    if not cmd or not all(isinstance(x, str) for x in cmd):
        raise errors.InvalidTarget(target, "was given an empty or non-text command",
                                   hint="pass a list of strings such as ['ls', '-l', '/'].")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or not timeout > 0):
        raise errors.InvalidTarget(target, f"was given exec timeout={timeout!r}",
                                   hint="pass a number of seconds above 0, or None to wait for "
                                   "the command however long it runs.")
    ref = resolve_one(engine, target, action="exec in", allow_foreign=allow_foreign)
    what = f"exec of {cmd[0]!r} in {ref.name}"
    started = time.monotonic()
    try:
        created = engine.api.exec_create(ref.id, list(cmd), stdout=True, stderr=True,
                                         user=user or "", workdir=workdir,
                                         environment=dict(env or {}) or None)
        if timeout is None:
            out, err = engine.api.exec_start(created["Id"], demux=True)
        else:
            out, err = _read_until(engine, created["Id"], timeout, what)
        code = engine.api.exec_inspect(created["Id"]).get("ExitCode")
    except Exception as exc:
        raise errors.translate(exc, what, host=engine.host, target=ref.name) from exc
    return ExecResult(container=ref.name, id=ref.id, command=cmd,
                      exit_code=int(code if code is not None else -1),
                      stdout=(out or b"").decode("utf-8", "replace"),
                      stderr=(err or b"").decode("utf-8", "replace"),
                      duration=time.monotonic() - started)


def _read_until(engine: Engine, exec_id: str, timeout: float, what: str
                ) -> tuple[bytes, bytes]:
    """Start the exec and collect its two streams, giving up at ``timeout`` seconds.

    The blocking read runs on a daemon thread; at the deadline the stream is closed (a socket
    shutdown, which wakes the blocked read) and :class:`~opskit.errors.EngineError` is raised.
    """
    stream = engine.api.exec_start(exec_id, stream=True, demux=True)
    out: list[bytes] = []
    err: list[bytes] = []
    failure: list[BaseException] = []

    def pump() -> None:
        try:
            for stdout, stderr in stream:
                if stdout:
                    out.append(stdout)
                if stderr:
                    err.append(stderr)
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    reader = threading.Thread(target=pump, name=f"opskit-exec-{exec_id[:12]}", daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        _close(stream)
        reader.join(1.0)
        raise errors.EngineError(
            what, f"the command did not finish within {timeout:g}s",
            hint="it may still be running inside the container (the engine cannot stop an "
            "exec); raise the timeout, or end it with exec(['pkill', ...]) or a restart.")
    _close(stream)
    if failure:
        raise failure[0]
    return b"".join(out), b"".join(err)


def _close(stream: Any) -> None:
    """Close an exec stream; over ssh docker-py cannot, and the daemon thread is left behind."""
    try:
        stream.close()
    except Exception:  # already closed, or not closable (ssh): nothing more to do
        return
