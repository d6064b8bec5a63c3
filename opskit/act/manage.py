"""Lifecycle verbs: start, stop, restart, pause, unpause, kill, remove.

Each verb takes a target (a container name, an ID, or a service: all its replicas), resolves it
once to full IDs, checks scope, then acts by ID. Over several containers the verb acts
concurrently and returns one :class:`ActionResult` per container; if any failed it raises
:class:`~opskit.base.errors.ActionFailed` carrying all of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from ..base import errors
from ..engine import calls
from ..engine.connection import Engine
from ..engine.targets import Ref, resolve
from ..engine.translate import translate
from .actions import ActionJournal

log = logging.getLogger("opskit")

__all__ = ["DESTRUCTIVE", "VERBS", "ActionResult", "Verb", "kill", "pause", "remove", "restart",
           "run_bulk", "start", "stop", "thaw", "unpause"]

Verb = Literal["start", "stop", "restart", "pause", "unpause", "kill", "remove"]
VERBS: dict[Verb, str] = {
    "start": "start stopped containers (docker start)",
    "stop": "stop containers (docker stop)",
    "restart": "restart containers (docker restart)",
    "pause": "freeze containers (docker pause)",
    "unpause": "thaw paused containers (docker unpause)",
    "kill": "send a signal to containers (docker kill)",
    "remove": "remove containers (docker rm -f)",
}
"""The life-cycle verbs, in the order they are offered (command line, container board)."""
DESTRUCTIVE = frozenset({"stop", "restart", "kill", "remove"})
"""The verbs that interrupt a running service: asked to confirm before acting."""

THAW_TIMEOUT = 60.0
"""Seconds an unpause may wait: longer than the ~30 s Docker 20.10 can hold a paused container's
lock when a health probe raced the pause (see :class:`~opskit.base.errors.EngineTimeout`)."""

SIGNALS = {"SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGSTOP",
           "SIGCONT", "KILL", "TERM", "INT", "HUP", "QUIT", "USR1", "USR2"}


@dataclass(frozen=True)
class ActionResult:
    """What one action did to one container.

    Attributes:
        action: the verb (``"restart"``).
        id: the container's full ID.
        name: its name when the action started.
        ok: whether the engine accepted and completed the action.
        error: the error's message when not ok.
        duration: seconds the action took.
    """

    action: str
    id: str
    name: str
    ok: bool
    error: str = ""
    duration: float = 0.0


def run_bulk(engine: Engine, action: str, refs: list[Ref], call: Callable[[str], Any],
             *, target: str, raise_on_error: bool = True, journal: ActionJournal | None = None,
             reason: str = "manual") -> list[ActionResult]:
    """Run ``call(container_id)`` over containers concurrently, collecting a result for each.

    With a ``journal``, each action is written to it before it starts and when it ends.
    """

    def one(ref: Ref) -> ActionResult:
        started = time.monotonic()
        record = (journal.begin(action, ref.id, ref.name, service=ref.service, reason=reason,
                                state_before=ref.state) if journal else None)
        try:
            call(ref.id)
        except Exception as exc:
            err = translate(exc, f"{action} of {ref.name}", host=engine.host,
                                   target=ref.name)
            result = ActionResult(action, ref.id, ref.name, False, err.message,
                                  time.monotonic() - started)
        else:
            result = ActionResult(action, ref.id, ref.name, True,
                                  duration=time.monotonic() - started)
        log.info("%s %s (%s): %s", action, ref.name, ref.id[:12],
                 "ok" if result.ok else result.error)
        if journal and record:
            journal.finish(record, "ok" if result.ok else "failed", error=result.error,
                           duration_s=result.duration)
        return result

    if len(refs) == 1:
        results = [one(refs[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(16, len(refs))) as pool:
            results = list(pool.map(one, refs))
    if raise_on_error and not all(r.ok for r in results):
        raise errors.ActionFailed(action, target, results)
    return results


def _act(engine: Engine, action: str, target: str, call: Callable[[str], Any],
         allow_foreign: bool, journal: ActionJournal | None) -> list[ActionResult]:
    refs = resolve(engine, target, action=action, allow_foreign=allow_foreign)
    return run_bulk(engine, action, refs, call, target=target, journal=journal)


def _stop_seconds(engine: Engine, cid: str, timeout: float | None) -> int:
    """The ``t`` to send: the caller's, else the container's ``StopTimeout``, else 10."""
    if timeout is not None:
        return max(0, int(timeout))
    config = engine.api.inspect_container(cid).get("Config") or {}
    return int(config.get("StopTimeout") or 10)


def start(engine: Engine, target: str, *, allow_foreign: bool = False,
          journal: ActionJournal | None = None) -> list[ActionResult]:
    """Start stopped containers: ``docker start TARGET``.

    Raises:
        ContainerNotFound, OutOfScope, ActionFailed.
    """
    return _act(engine, "start", target, engine.api.start, allow_foreign, journal)


def stop(engine: Engine, target: str, *, timeout: float | None = None,
         allow_foreign: bool = False,
          journal: ActionJournal | None = None) -> list[ActionResult]:
    """Stop containers (SIGTERM, then SIGKILL after ``timeout``): ``docker stop -t N TARGET``.

    Without ``timeout``, each container's own stop timeout (the spec's ``stop_timeout``, else
    the engine's 10 s) is used, and the request waits that long plus the client timeout.

    Raises:
        ContainerNotFound, OutOfScope, ActionFailed.
    """
    def call(cid: str) -> Any:
        return engine.api.stop(cid, timeout=_stop_seconds(engine, cid, timeout))

    return _act(engine, "stop", target, call, allow_foreign, journal)


def restart(engine: Engine, target: str, *, timeout: float | None = None,
            allow_foreign: bool = False,
          journal: ActionJournal | None = None) -> list[ActionResult]:
    """Restart containers: ``docker restart -t N TARGET``.

    A PID 1 that ignores SIGTERM makes the engine wait the whole ``timeout`` before it kills
    it; without ``timeout`` the container's own stop timeout is used (the spec's
    ``stop_timeout``, else 10 s).

    Raises:
        ContainerNotFound, OutOfScope, ActionFailed.
    """
    def call(cid: str) -> Any:
        return engine.api.restart(cid, timeout=_stop_seconds(engine, cid, timeout))

    return _act(engine, "restart", target, call, allow_foreign, journal)


def pause(engine: Engine, target: str, *, allow_foreign: bool = False,
          journal: ActionJournal | None = None) -> list[ActionResult]:
    """Freeze every process of the containers: ``docker pause TARGET``.

    Raises:
        ContainerNotFound, OutOfScope, ActionFailed.
    """
    return _act(engine, "pause", target, engine.api.pause, allow_foreign, journal)


def unpause(engine: Engine, target: str, *, allow_foreign: bool = False,
          journal: ActionJournal | None = None) -> list[ActionResult]:
    """Thaw paused containers: ``docker unpause TARGET``.

    Raises:
        ContainerNotFound, OutOfScope, ActionFailed.
    """
    return _act(engine, "unpause", target, lambda cid: thaw(engine, cid), allow_foreign, journal)


def thaw(engine: Engine, cid: str) -> None:
    """``POST /containers/{id}/unpause``, waiting up to :data:`THAW_TIMEOUT` for the engine.

    A 409 (the container is not paused) is raised as docker-py's ``APIError``, like
    ``APIClient.unpause`` (see :func:`opskit.engine.calls.unpause`); callers that only want it
    thawed may ignore it.
    """
    calls.unpause(engine.api, cid, timeout=max(engine.timeout, THAW_TIMEOUT))


def kill(engine: Engine, target: str, *, signal: str = "SIGKILL",
         allow_foreign: bool = False,
          journal: ActionJournal | None = None) -> list[ActionResult]:
    """Send a signal to the containers' PID 1: ``docker kill -s SIGNAL TARGET``.

    Raises:
        InvalidTarget: an unknown signal name (checked before anything is sent).
    """
    sig = str(signal).upper()
    if sig not in SIGNALS and not sig.isdigit():
        raise errors.InvalidTarget(target, f"cannot be sent unknown signal {signal!r}",
                                   hint="use a name such as SIGKILL, SIGTERM, SIGHUP or a number.")
    return _act(engine, "kill", target, lambda cid: engine.api.kill(cid, signal=sig),
                allow_foreign, journal)


def remove(engine: Engine, target: str, *, force: bool = True, volumes: bool = False,
           allow_foreign: bool = False,
          journal: ActionJournal | None = None) -> list[ActionResult]:
    """Remove containers: ``docker rm [-f] [-v] TARGET``.

    Args:
        force: stop running containers first (``-f``); on by default.
        volumes: also remove anonymous volumes (``-v``); named volumes stay.

    Raises:
        ContainerNotFound, OutOfScope, ActionFailed.
    """
    return _act(engine, "remove", target,
                lambda cid: engine.api.remove_container(cid, force=force, v=volumes),
                allow_foreign, journal)
