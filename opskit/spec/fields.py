"""The fields of a spec: healthcheck, build context, ports, volumes, names and commands.

Each checker takes what a person typed and returns it normalised, or raises
:class:`~opskit.base.errors.InvalidSpec` naming the field and what is allowed. Pure functions, no
engine.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.errors import InvalidSpec
from ..base.units import parse_duration

__all__ = ["BuildContext", "Healthcheck", "PortMap", "check_image", "check_keys",
           "check_signal", "check_volumes", "parse_command", "parse_ports", "seconds",
           "str_map"]

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[^=\s\x00]+$")
RESTART_RE = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
RESTART_ALLOWED = "'no', 'always', 'unless-stopped', 'on-failure' or 'on-failure:N'"
PULL_ALLOWED = ("never", "missing", "always")
RESERVED_NETWORKS = ("host", "bridge", "none", "default")
INT64_MAX = 2**63 - 1
# a Docker image reference: [host[:port]/]path[:tag][@digest], path in lower case
IMAGE_RE = re.compile(
    r"^(?:(?P<host>[a-zA-Z0-9.-]+(?::\d+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+:[a-fA-F0-9]{32,}))?$")


def seconds(field_name: str, value: Any, *, minimum: float = 0.0,
            maximum: float = 365 * 86400.0) -> float:
    """A finite duration in seconds within [minimum, maximum], or InvalidSpec."""
    try:
        number = parse_duration(value)
    except (ValueError, OverflowError) as exc:
        raise InvalidSpec(field_name, str(exc), allowed="seconds (1.5) or '30s', '5m'") from None
    if not math.isfinite(number) or not minimum <= number <= maximum:
        raise InvalidSpec(field_name, f"{number:g}s is out of range",
                          allowed=f"a duration from {minimum:g}s to {maximum:g}s")
    return number


def check_keys(kind: str, data: Mapping[Any, Any], allowed: list[str]) -> None:
    """Refuse keys that are not fields (``kind`` prefixes the field name in the error)."""
    unknown = sorted(str(k) for k in data if not isinstance(k, str) or k not in allowed)
    if unknown:
        raise InvalidSpec(f"{kind}{unknown[0]}" if kind else unknown[0], "unknown field",
                          allowed=", ".join(allowed))


def check_image(value: Any) -> str:
    """A valid image reference (``name:tag``, ``host:5000/repo/name@sha256:...``)."""
    if not isinstance(value, str) or not IMAGE_RE.match(value):
        raise InvalidSpec("image", f"{value!r} is not an image reference",
                          allowed="lower-case 'name:tag' or 'repo/name@sha256:...'")
    return value


def check_signal(field_name: str, value: Any) -> str:
    """A signal name (``SIGTERM``, ``TERM``) or number the engine accepts."""
    text = str(value).upper()
    names = {s.name for s in signal.Signals}
    if text.isdigit() and 0 < int(text) < 65:
        return text
    if text in names or f"SIG{text}" in names:
        return text
    raise InvalidSpec(field_name, f"unknown signal {value!r}",
                      allowed="a name like SIGTERM, SIGINT, SIGQUIT or a number")


@dataclass(frozen=True)
class Healthcheck:
    """A container healthcheck, as ``docker run --health-cmd ... --health-interval ...``.

    Args:
        test: ``["CMD", "prog", "arg"]``, ``["CMD-SHELL", "cmd"]``, a shell string, or
            ``["NONE"]`` to switch off the image's healthcheck.
        interval: seconds between probes (Docker's default 30).
        timeout: seconds before a probe counts as failed (Docker's default 30).
        retries: consecutive failures before ``unhealthy`` (Docker's default 3).
        start_period: seconds of grace after start (Docker's default 0).
    """

    test: tuple[str, ...] | list[str] | str
    interval: float | str = 30.0
    timeout: float | str = 30.0
    retries: int = 3
    start_period: float | str = 0.0

    def __post_init__(self) -> None:
        test = self.test
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        if not isinstance(test, list | tuple) or not test or not all(
                isinstance(x, str) for x in test):
            raise InvalidSpec("healthcheck.test", "must be a non-empty list of strings or a "
                              "shell string", allowed="['CMD', 'prog', ...], ['CMD-SHELL', "
                              "'cmd'], 'shell cmd' or ['NONE']")
        if test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            test = ["CMD", *test]
        if test[0] != "NONE" and (len(test) < 2 or not "".join(test[1:]).strip()):
            raise InvalidSpec("healthcheck.test", f"{test[0]} needs a command after it")
        object.__setattr__(self, "test", tuple(test))
        object.__setattr__(self, "interval", seconds("healthcheck.interval", self.interval,
                                                      minimum=0.001))
        object.__setattr__(self, "timeout", seconds("healthcheck.timeout", self.timeout,
                                                     minimum=0.001))
        start = seconds("healthcheck.start_period", self.start_period)
        if 0 < start < 0.001:
            raise InvalidSpec("healthcheck.start_period", "the engine needs 0 or at least 1ms")
        object.__setattr__(self, "start_period", start)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or not (
                1 <= self.retries <= 1000):
            raise InvalidSpec("healthcheck.retries", f"{self.retries!r} is not a whole number "
                              "from 1 (0 would mean the engine's default of 3)",
                              allowed="1, 2, 3, ...")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Healthcheck:
        """Build from a mapping; unknown keys raise :class:`InvalidSpec`."""
        if not isinstance(data, Mapping):
            raise InvalidSpec("healthcheck", "must be a mapping", allowed="test, interval, "
                              "timeout, retries, start_period")
        check_keys("healthcheck.", data, [f.name for f in dataclasses.fields(cls)])
        if "test" not in data:
            raise InvalidSpec("healthcheck.test", "is required")
        return cls(**data)

    def to_engine(self) -> dict[str, Any]:
        """The ``Healthcheck`` object of the Engine API (durations in nanoseconds)."""
        return {"Test": list(self.test), "Interval": nanoseconds(self.interval),
                "Timeout": nanoseconds(self.timeout), "Retries": self.retries,
                "StartPeriod": nanoseconds(self.start_period)}

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping that :meth:`from_dict` reads back."""
        return {"test": list(self.test), "interval": self.interval, "timeout": self.timeout,
                "retries": self.retries, "start_period": self.start_period}


@dataclass(frozen=True)
class BuildContext:
    """A build context instead of an image: ``docker build -f DOCKERFILE --build-arg ... PATH``."""

    context: str
    dockerfile: str = "Dockerfile"
    args: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_any(cls, value: Any) -> BuildContext:
        """Accept a path string, a mapping, or a BuildContext."""
        if isinstance(value, BuildContext):
            return value
        if isinstance(value, str | Path):
            return cls(context=str(value))
        if isinstance(value, Mapping):
            check_keys("build.", value, ["context", "dockerfile", "args"])
            if "context" not in value:
                raise InvalidSpec("build.context", "is required")
            return cls(context=str(value["context"]), dockerfile=str(value.get("dockerfile",
                       "Dockerfile")), args=dict(value.get("args") or {}))
        raise InvalidSpec("build", f"{type(value).__name__} is not a build context",
                          allowed="a path, or {context, dockerfile, args}")


@dataclass(frozen=True)
class PortMap:
    """One published port: container port/protocol to host address and port."""

    container_port: int
    protocol: str
    host_ip: str
    host_port: int | None

    @property
    def key(self) -> str:
        """The Engine API's port key, ``8080/tcp``."""
        return f"{self.container_port}/{self.protocol}"


def _port_number(field_name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidSpec(field_name, f"{value!r} is not a port number",
                          allowed="1 to 65535") from None
    if isinstance(value, bool) or not 1 <= number <= 65535 or str(value).strip() != str(number):
        raise InvalidSpec(field_name, f"{value!r} is not a port number", allowed="1 to 65535")
    return number


def parse_ports(ports: Any) -> tuple[PortMap, ...]:
    """Normalise ``ports`` into :class:`PortMap` entries (host IP defaults to 127.0.0.1)."""
    if isinstance(ports, list | tuple) and all(isinstance(p, PortMap) for p in ports):
        return tuple(ports)
    if not isinstance(ports, Mapping):
        raise InvalidSpec("ports", "must map container ports to host ports",
                          allowed="{8080: 18080}, {'8080/udp': '127.0.0.1:5353'}, {8080: None}")
    result: list[PortMap] = []
    seen: dict[tuple[str, int], str] = {}
    for key, value in ports.items():
        name = f"ports[{key}]"
        cport, _, proto = str(key).partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidSpec(name, f"unknown protocol {proto!r}", allowed="tcp, udp, sctp")
        container_port = _port_number(name, cport)
        host_ip, host_port = "127.0.0.1", None
        if isinstance(value, list | tuple) and len(value) == 2:
            host_ip, host_port = str(value[0]), _port_number(name, value[1])
        elif isinstance(value, str) and ":" in value:
            host_ip, _, port_text = value.rpartition(":")
            host_port = _port_number(name, port_text) if port_text else None
        elif value is not None:
            host_port = _port_number(name, value)
        host_ip = _host_ip(name, host_ip.strip("[]") or "127.0.0.1")
        if host_port is not None:
            wildcard = host_ip in ("0.0.0.0", "::")
            for (ip, port), other in seen.items():
                if port == host_port and (ip == host_ip or wildcard or ip in ("0.0.0.0", "::")):
                    raise InvalidSpec(name, f"host port {host_port} is published twice "
                                      f"({other} and {host_ip}:{host_port})")
            seen[(host_ip, host_port)] = f"{host_ip}:{host_port}"
        result.append(PortMap(container_port, proto, host_ip, host_port))
    return tuple(result)


def _host_ip(field_name: str, text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidSpec(field_name, f"host address {text!r} is not an IP address (the engine "
                          "would publish on every interface)",
                          allowed="127.0.0.1 (the default), 0.0.0.0, ::1 or a host address"
                          ) from None


def str_map(field_name: str, value: Any, *, key_re: re.Pattern[str] | None = None) -> dict[
        str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(field_name, "must be a mapping of names to values")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or (key_re and not key_re.match(key)):
            raise InvalidSpec(f"{field_name}[{key}]", "is not a valid name")
        if isinstance(item, bool):
            item = "true" if item else "false"
        if not isinstance(item, str | int | float):
            raise InvalidSpec(f"{field_name}[{key}]", f"{type(item).__name__} is not a text "
                              "value", allowed="text, numbers or booleans")
        if "\x00" in str(item):
            raise InvalidSpec(f"{field_name}[{key}]", "holds a NUL character")
        out[key] = str(item)
    return out


def nanoseconds(value: float | str) -> int:
    """Seconds (already checked) as the Engine API's integer nanoseconds."""
    return int(float(value) * 1e9)


def parse_command(field_name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return ("sh", "-c", value) if field_name == "command" else (value,)
    if isinstance(value, list | tuple) and all(isinstance(x, str) for x in value):
        return tuple(value)
    raise InvalidSpec(field_name, "must be a list of strings or a shell string",
                      allowed="['prog', 'arg'] or 'shell command'")




def check_volumes(volumes: Any) -> dict[str, str]:
    """Normalise ``volumes``: a volume name or absolute host path to ``/container/path[:ro]``."""
    if not isinstance(volumes, Mapping):
        raise InvalidSpec("volumes", "must map a volume name or host path to a container "
                          "path", allowed="{'webdata': '/data', '/srv/x': '/x:ro'}")
    out: dict[str, str] = {}
    targets: set[str] = set()
    for source, target in volumes.items():
        name = f"volumes[{source}]"
        if not isinstance(source, str) or not source:
            raise InvalidSpec(name, "the source must be a volume name or an absolute path")
        if any(c in source for c in ":,\x00"):
            raise InvalidSpec(name, f"{source!r} holds ':' or ','",
                              allowed="a path or name without ':' and ','")
        if not source.startswith("/") and not NAME_RE.match(source):
            raise InvalidSpec(name, f"{source!r} is neither a volume name nor an absolute "
                              "path", allowed="a name like 'webdata' or a path like '/srv/x'")
        if not isinstance(target, str):
            raise InvalidSpec(name, "the target must be a container path")
        path, _, mode = target.partition(":")
        if not path.startswith("/") or "," in path:
            raise InvalidSpec(name, f"target {path!r} is not an absolute container path")
        if mode not in ("", "ro", "rw"):
            raise InvalidSpec(name, f"unknown mode {mode!r}", allowed="ro, rw")
        if path in targets:
            raise InvalidSpec(name, f"container path {path} is mounted twice")
        targets.add(path)
        out[source] = target
    return out
