"""Reading one container: ``docker inspect`` as a typed record with the raw payload kept.

Secrets never leave this module: :class:`ContainerInfo` keeps the names of the environment
variables that were set, not their values, and ``attrs`` (the raw payload) is redacted: env
values, secret-looking command arguments (the healthcheck command included), label values under
secret-looking keys, logging-driver options, and secrets in healthcheck output (see
:mod:`opskit.base.redact`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..base import labels as L
from ..base.redact import (
    RedactionReport,
    redact_argv,
    redact_env,
    redact_mapping,
    redact_text,
)
from ..engine.connection import Engine
from ..engine.targets import resolve_one
from ..engine.translate import translate

__all__ = ["ContainerInfo", "inspect_container", "parse_engine_time", "redacted_attrs"]


def parse_engine_time(text: str | None) -> datetime | None:
    """The engine's RFC 3339 nanosecond time as a UTC datetime; None for its zero time."""
    if not text or text.startswith("0001-01-01"):
        return None
    main, _, rest = text.partition(".")
    frac, zone = rest, ""
    for sep in ("Z", "+", "-"):
        if sep in rest:
            idx = rest.index(sep)
            frac, zone = rest[:idx], rest[idx:]
            break
    if not rest:
        zone = main[19:] if len(main) > 19 else "Z"
        main = main[:19]
    stamp = f"{main}.{(frac or '0')[:6].ljust(6, '0')}{'+00:00' if zone in ('Z', '') else zone}"
    return datetime.fromisoformat(stamp).astimezone(UTC)


def _redact_command(value: Any, report: RedactionReport | None, table: str,
                    program: str = "") -> Any:
    """An argv list through :func:`redact_argv` (``program``: the command whose arguments it
    holds, when not its first word), a shell string through :func:`redact_text`."""
    if isinstance(value, list):
        return redact_argv([str(x) for x in value], report=report, table=table,
                           program=program)
    if isinstance(value, str):
        return redact_text(value, report=report, table=table)
    return value


def redacted_attrs(attrs: dict[str, Any], report: RedactionReport | None = None
                   ) -> dict[str, Any]:
    """A copy of a ``docker inspect`` payload with every secret masked (names kept).

    Masked: every ``Config.Env`` value; secrets in ``Config.Cmd``, ``Config.Entrypoint``,
    ``Args`` and the healthcheck command ``Config.Healthcheck.Test`` (argv rules); label values
    under secret-looking keys and secrets in the others; the logging driver's options
    ``HostConfig.LogConfig.Config`` (a splunk token, a URL with credentials); and secrets in the
    healthcheck output ``State.Health.Log[].Output``. The input is not changed.
    """
    out = copy.deepcopy(attrs)
    config = out.get("Config") or {}
    config["Env"] = redact_env(config.get("Env") or [], report=report)
    for key in ("Cmd", "Entrypoint"):
        if config.get(key):
            config[key] = _redact_command(config[key], report, "command")
    if out.get("Args"):
        out["Args"] = _redact_command(out["Args"], report, "command",
                                      program=str(out.get("Path") or ""))
    healthcheck = config.get("Healthcheck") or {}
    if healthcheck.get("Test"):
        healthcheck["Test"] = _redact_command(healthcheck["Test"], report, "healthcheck")
    if config.get("Labels"):
        config["Labels"] = redact_mapping(config["Labels"], report=report)
    log_config = (out.get("HostConfig") or {}).get("LogConfig") or {}
    if log_config.get("Config"):
        log_config["Config"] = redact_mapping(log_config["Config"], report=report,
                                              table="log-config")
    health = (out.get("State") or {}).get("Health") or {}
    for probe in health.get("Log") or []:
        probe["Output"] = redact_text(probe.get("Output") or "", report=report, table="health")
    return out


def health_from_status(status: str) -> str:
    """The health ``docker ps`` shows in its status text (``Up 3 minutes (healthy)``)."""
    return ("unhealthy" if "(unhealthy)" in status else "healthy" if "(healthy)" in status
            else "starting" if "(health: starting)" in status else "")


@dataclass(frozen=True)
class ContainerInfo:
    """One container as ``docker inspect`` shows it, typed.

    Attributes:
        id, name, service, image (the reference it was created from), image_id.
        state: created, running, paused, restarting, exited, dead.
        health: starting, healthy, unhealthy, or "" without a healthcheck.
        exit_code, oom_killed, restart_count, pid.
        created, started_at, finished_at: UTC datetimes (None when never).
        ports: ``{"8080/tcp": "127.0.0.1:18080"}``; networks: names.
        memory_limit: bytes (0: none); cpu_limit: CPUs (0.0: none).
        env_names: the variables set (values are never kept).
        managed: created by opskit (any scope).
        attrs: the raw payload, secrets masked (see :func:`redacted_attrs`).
    """

    id: str
    name: str
    service: str
    image: str
    image_id: str
    state: str
    health: str
    exit_code: int
    oom_killed: bool
    restart_count: int
    pid: int
    created: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    ports: dict[str, str]
    networks: tuple[str, ...]
    memory_limit: int
    cpu_limit: float
    restart_policy: str
    env_names: tuple[str, ...]
    managed: bool
    labels: dict[str, str] = field(repr=False)
    attrs: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> ContainerInfo:
        """Build from a raw ``docker inspect`` payload (secrets are masked on the way in)."""
        attrs = redacted_attrs(attrs)
        state = attrs.get("State") or {}
        config = attrs.get("Config") or {}
        host = attrs.get("HostConfig") or {}
        labels = dict(config.get("Labels") or {})
        ports = {}
        for key, binds in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
            if binds:
                ports[key] = ",".join(f"{b.get('HostIp', '')}:{b.get('HostPort', '')}"
                                      for b in binds)
        policy = (host.get("RestartPolicy") or {}).get("Name") or "no"
        return cls(
            id=attrs["Id"], name=attrs.get("Name", "").lstrip("/"),
            service=labels.get(L.SERVICE, ""), image=config.get("Image", ""),
            image_id=attrs.get("Image", ""), state=state.get("Status", ""),
            health=(state.get("Health") or {}).get("Status", ""),
            exit_code=int(state.get("ExitCode") or 0), oom_killed=bool(state.get("OOMKilled")),
            restart_count=int(attrs.get("RestartCount") or 0), pid=int(state.get("Pid") or 0),
            created=parse_engine_time(attrs.get("Created")),
            started_at=parse_engine_time(state.get("StartedAt")),
            finished_at=parse_engine_time(state.get("FinishedAt")),
            ports=ports,
            networks=tuple(sorted(((attrs.get("NetworkSettings") or {}).get("Networks")
                                   or {}).keys())),
            memory_limit=int(host.get("Memory") or 0),
            cpu_limit=float(host.get("NanoCpus") or 0) / 1e9
            or (float(host.get("CpuQuota") or 0) / float(host.get("CpuPeriod") or 100000)),
            restart_policy=policy,
            env_names=tuple(item.partition("=")[0] for item in config.get("Env") or []),
            managed=labels.get(L.MANAGED) == "true", labels=labels, attrs=attrs)

    @property
    def replica(self) -> str:
        """The opskit replica name it was created as (``""`` for a foreign container)."""
        return self.labels.get(L.REPLICA, "")

    @property
    def health_log(self) -> list[dict[str, Any]]:
        """The engine's last (up to 5) probe results, raw."""
        return list(((self.attrs.get("State") or {}).get("Health") or {}).get("Log") or [])


def inspect_container(engine: Engine, target: str) -> ContainerInfo:
    """``docker inspect TARGET`` as a :class:`ContainerInfo` (reading needs no scope).

    Raises:
        ContainerNotFound, InvalidTarget (a service of several replicas).
    """
    ref = resolve_one(engine, target, allow_foreign=True)
    try:
        attrs = engine.api.inspect_container(ref.id)
    except Exception as exc:
        raise translate(exc, f"inspect of {target}", host=engine.host,
                               target=target) from exc
    return ContainerInfo.from_attrs(attrs)
