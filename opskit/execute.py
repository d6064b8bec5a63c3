"""Running a command inside a container: ``docker exec``.

The command's two streams are kept apart and its exit code is read back from the engine, so a
runbook can branch on it. Exec changes a container (it runs code there), so the target must be
in opskit's scope.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import errors
from .engine import Engine
from .targets import resolve_one

__all__ = ["ExecResult", "exec_run"]


@dataclass(frozen=True)
class ExecResult:
    """What a command printed and how it ended.

    Attributes:
        container: the container's name; ``id`` its full ID.
        command: the command run.
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
             env: Mapping[str, str] | None = None, allow_foreign: bool = False) -> ExecResult:
    """Run ``command`` in a running container: ``docker exec [-u U] [-w DIR] TARGET CMD...``.

    A string command runs through ``sh -c``.

    Raises:
        ContainerNotFound, OutOfScope, InvalidTarget (a service of several replicas),
        EngineError (the container is not running, the program does not exist).
    """
    cmd = ("sh", "-c", command) if isinstance(command, str) else tuple(command)
    if not cmd or not all(isinstance(x, str) for x in cmd):
        raise errors.InvalidTarget(target, "was given an empty or non-text command",
                                   hint="pass a list of strings such as ['ls', '-l', '/'].")
    ref = resolve_one(engine, target, action="exec in", allow_foreign=allow_foreign)
    started = time.monotonic()
    try:
        created = engine.api.exec_create(ref.id, list(cmd), stdout=True, stderr=True,
                                         user=user or "", workdir=workdir,
                                         environment=dict(env or {}) or None)
        out, err = engine.api.exec_start(created["Id"], demux=True)
        code = engine.api.exec_inspect(created["Id"]).get("ExitCode")
    except Exception as exc:
        raise errors.translate(exc, f"exec of {cmd[0]!r} in {ref.name}", host=engine.host,
                               target=ref.name) from exc
    return ExecResult(container=ref.name, id=ref.id, command=cmd,
                      exit_code=int(code if code is not None else -1),
                      stdout=(out or b"").decode("utf-8", "replace"),
                      stderr=(err or b"").decode("utf-8", "replace"),
                      duration=time.monotonic() - started)
