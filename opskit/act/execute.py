"""Running a command inside a container: ``docker exec``.

The command's two streams are kept apart and its exit code is read back from the engine, so a
runbook can branch on it. Exec changes a container (it runs code there), so the target must be
in opskit's scope.

docker-py reads an exec's output with no socket timeout at all, so a command that never ends
blocks its caller forever, and so would a black-holed host. With ``timeout=`` the output is
read on a helper thread and the caller stops waiting at the deadline; the connection is then
shut down, which ends the reading thread too.

Each stream keeps at most ``max_output`` bytes (1 MiB by default, :data:`DEFAULT_MAX_OUTPUT`):
the rest is read and counted, so the command runs to its end and its exit code is real, but not
kept; the result then says ``truncated=True`` and the stream ends with a marker line.
"""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..base import errors
from ..base.redact import redact_argv, redact_text
from ..engine.connection import Engine
from ..engine.targets import resolve_one
from ..engine.translate import translate

__all__ = ["DEFAULT_MAX_OUTPUT", "ExecResult", "exec_run"]

DEFAULT_MAX_OUTPUT = 2**20
"""Bytes kept of each stream of an exec unless told otherwise (1 MiB): a log dump or a runaway
loop cannot fill the caller's memory, while any answer a runbook branches on fits."""


@dataclass(frozen=True, repr=False)
class ExecResult:
    """What a command printed and how it ended.

    The repr masks secrets (in the command and the output) so a notebook can show it; the
    attributes hold what was really run and printed.

    Attributes:
        container: the container's name; ``id`` its full ID.
        command: the command run, as given.
        exit_code: the command's exit code.
        stdout, stderr: the two streams, decoded as UTF-8. A stream cut at ``max_output``
            ends with the line ``[opskit: output cut at N bytes; M more bytes not kept]``.
        duration: seconds.
        truncated: True when a stream was cut; ``dropped`` says how many bytes of stdout and
            of stderr were read but not kept.
    """

    container: str
    id: str
    command: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration: float
    truncated: bool = False
    dropped: tuple[int, int] = (0, 0)

    def __repr__(self) -> str:
        cut = f", truncated=True, dropped={self.dropped!r}" if self.truncated else ""
        return (f"ExecResult(container={self.container!r}, "
                f"command={tuple(redact_argv(self.command))!r}, exit_code={self.exit_code}, "
                f"stdout={redact_text(self.stdout)!r}, stderr={redact_text(self.stderr)!r}, "
                f"duration={self.duration:.3f}{cut})")

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
             max_output: int | None = DEFAULT_MAX_OUTPUT,
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
        max_output: bytes kept of each stream, 1 MiB by default; ``None`` keeps everything,
            as ``docker exec`` does. What passes the cap is read to the end (so the exit code
            is the command's) but not kept: the result has ``truncated=True`` and the stream
            ends with a marker line. Bound the time with ``timeout``.
        allow_foreign: act on a container outside opskit's scope.

    Raises:
        ContainerNotFound, OutOfScope, InvalidTarget (a service of several replicas, an empty
        command, a timeout that is not a positive number, a ``max_output`` that is not a
        positive whole number),
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
    if max_output is not None and (isinstance(max_output, bool)
                                   or not isinstance(max_output, int) or max_output <= 0):
        raise errors.InvalidTarget(target, f"was given exec max_output={max_output!r}",
                                   hint="pass a number of bytes above 0 (for example 2**20), "
                                   "or None to keep all the output.")
    ref = resolve_one(engine, target, action="exec in", allow_foreign=allow_foreign)
    what = f"exec of {cmd[0]!r} in {ref.name}"
    started = time.monotonic()
    out, err = _Capped(max_output), _Capped(max_output)
    try:
        created = engine.api.exec_create(ref.id, list(cmd), stdout=True, stderr=True,
                                         user=user or "", workdir=workdir,
                                         environment=dict(env or {}) or None)
        stream = engine.api.exec_start(created["Id"], stream=True, demux=True)
        if timeout is None:
            try:
                _pump(stream, out, err)
            finally:
                _close(stream)
        else:
            _read_until(stream, created["Id"], out, err, timeout, what)
        code = engine.api.exec_inspect(created["Id"]).get("ExitCode")
    except Exception as exc:
        raise translate(exc, what, host=engine.host, target=ref.name) from exc
    return ExecResult(container=ref.name, id=ref.id, command=cmd,
                      exit_code=int(code if code is not None else -1),
                      stdout=out.text(), stderr=err.text(),
                      duration=time.monotonic() - started,
                      truncated=bool(out.dropped or err.dropped),
                      dropped=(out.dropped, err.dropped))


class _Capped:
    """One stream's bytes, keeping the first ``limit`` and counting the rest."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.kept = 0
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = len(chunk) if self.limit is None else max(0, self.limit - self.kept)
        if room:
            self.parts.append(chunk[:room])
            self.kept += min(room, len(chunk))
        self.dropped += len(chunk) - min(room, len(chunk))

    def text(self) -> str:
        data = b"".join(self.parts)
        if not self.dropped:
            return data.decode("utf-8", "replace")
        # not final: a character cut in two at the limit is left out, not shown as U+FFFD
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=False)
        newline = "" if not text or text.endswith("\n") else "\n"
        return (f"{text}{newline}[opskit: output cut at {self.limit} bytes; {self.dropped} more "
                "bytes not kept]\n")


def _pump(stream: Any, out: _Capped, err: _Capped) -> None:
    """Read an exec's demultiplexed ``(stdout, stderr)`` chunks to the end of the stream."""
    for stdout, stderr in stream:
        if stdout:
            out.add(stdout)
        if stderr:
            err.add(stderr)


def _read_until(stream: Any, exec_id: str, out: _Capped, err: _Capped, timeout: float,
                what: str) -> None:
    """Collect an exec's two streams, giving up at ``timeout`` seconds.

    The blocking read runs on a daemon thread; at the deadline the stream is closed (a socket
    shutdown, which wakes the blocked read) and :class:`~opskit.base.errors.EngineError` is raised.
    """
    failure: list[BaseException] = []

    def pump() -> None:
        try:
            _pump(stream, out, err)
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


def _close(stream: Any) -> None:
    """Close an exec stream; over ssh docker-py cannot, and the daemon thread is left behind."""
    try:
        stream.close()
    except Exception:  # already closed, or not closable (ssh): nothing more to do
        return
