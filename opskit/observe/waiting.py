"""Waiting for a container to reach a condition: ``running`` or ``healthy``.

A wait polls ``docker inspect`` (a local call of about a millisecond) every ``poll`` seconds and
gives up early when the condition can no longer be met (the container exited with no restart
policy to bring it back). An ``unhealthy`` container may still recover, so that one is waited
for until the timeout, unless the caller asks to stop at the first ``unhealthy`` verdict (a
recovery's verify: the next step of its ladder should not wait). On failure it raises
:class:`~opskit.base.errors.WaitTimeout` carrying the state, exit code, last probe output and last
log lines, so the message says why.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ..base import errors
from ..engine.connection import Engine
from ..engine.translate import translate
from .inspection import parse_engine_time

__all__ = ["CONDITIONS", "last_logs", "wait_for"]

CONDITIONS = ("running", "healthy")


def last_logs(engine: Engine, container_id: str, lines: int = 5) -> list[str]:
    """The last log lines of a container (both streams), or ``[]`` if they cannot be read."""
    try:
        raw = engine.api.logs(container_id, stdout=True, stderr=True, tail=lines)
    except Exception:
        return []
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return [line for line in text.splitlines() if line.strip()]


def _running_for(data: dict[str, Any]) -> float:
    """Seconds since the engine started the container (0 if unknown)."""
    started = parse_engine_time((data.get("State") or {}).get("StartedAt"))
    return (datetime.now(UTC) - started).total_seconds() if started else 0.0


def _last_probe_at(data: dict[str, Any]) -> datetime:
    probes = (((data.get("State") or {}).get("Health") or {}).get("Log")) or []
    started = parse_engine_time(probes[-1].get("Start")) if probes else None
    return started or datetime.min.replace(tzinfo=UTC)


def _state(data: dict[str, Any]) -> tuple[str, str, int | None, str]:
    state = data.get("State") or {}
    health = state.get("Health") or {}
    probes = health.get("Log") or []
    probe = probes[-1].get("Output", "") if probes else ""
    return state.get("Status", ""), health.get("Status", ""), state.get("ExitCode"), probe


def wait_for(engine: Engine, container_id: str, condition: str, *, timeout: float,
             name: str = "", poll: float = 0.1, settle: float = 1.0,
             unhealthy_after: datetime | None = None) -> dict[str, Any]:
    """Wait until the container is ``running`` or ``healthy``; return its inspect payload.

    A container without a healthcheck counts as healthy once it has kept running for
    ``settle`` seconds (so a process that dies at once is not taken for a healthy one).
    With ``unhealthy_after``, an ``unhealthy`` status whose last probe began after that time
    ends the wait at once.

    Raises:
        WaitTimeout: the condition was not met in time, or can no longer be met.
        InvalidTarget: an unknown condition.
    """
    if condition not in CONDITIONS:
        raise errors.InvalidTarget(name or container_id, f"cannot be waited for {condition!r}",
                                   hint="wait for 'running', 'healthy' or None.")
    name = name or container_id[:12]
    deadline = time.monotonic() + timeout
    running_since: float | None = None
    while True:
        try:
            data: dict[str, Any] = engine.api.inspect_container(container_id)
        except Exception as exc:
            raise translate(exc, f"inspect of {name}", host=engine.host,
                                   target=name) from exc
        status, health, exit_code, probe = _state(data)
        policy = ((data.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name", "")
        restarting_policy = policy not in ("", "no")
        now = time.monotonic()
        running_since = (running_since or now) if status == "running" else None
        if status == "running" and (condition == "running" or health == "healthy"):
            return data
        if status == "running" and not health and running_since is not None and (
                max(now - running_since, _running_for(data)) >= settle
                or now + poll >= deadline):
            return data
        dead = status in ("exited", "dead") and not restarting_policy
        judged = unhealthy_after is not None and health == "unhealthy" and \
            _last_probe_at(data) > unhealthy_after
        if dead or judged or time.monotonic() >= deadline:
            reason = ""
            if dead:
                reason = f"it exited with code {exit_code}"
            elif health == "unhealthy":
                reason = "its healthcheck reports unhealthy"
            raise errors.WaitTimeout(name, condition, timeout, state=status, health=health,
                                     exit_code=exit_code, last_probe=probe,
                                     last_logs=last_logs(engine, container_id), reason=reason)
        time.sleep(poll)
