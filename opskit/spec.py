"""What to deploy: :class:`ServiceSpec` and :class:`Healthcheck`, validated before any engine call.

A spec is the ``docker run`` command line of a service written down once: image or build
context, command, ports, env, volumes, networks, healthcheck, restart policy and limits, plus
the number of replicas. Every field is checked when the spec is made; a bad field raises
:class:`~opskit.errors.InvalidSpec` naming the field and what is allowed. Unknown keys in a dict
or YAML file are errors, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from . import labels as L
from .errors import InvalidSpec
from .units import parse_bytes, parse_duration

__all__ = ["BuildContext", "Healthcheck", "PortMap", "ServiceSpec"]

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[^=\s\x00]+$")
RESTART_RE = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
RESTART_ALLOWED = "'no', 'always', 'unless-stopped', 'on-failure' or 'on-failure:N'"
PULL_ALLOWED = ("never", "missing", "always")


def _seconds(field_name: str, value: Any, *, minimum: float = 0.0) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InvalidSpec(field_name, str(exc), allowed="seconds (1.5) or '30s', '5m'") from None
    if seconds < minimum:
        raise InvalidSpec(field_name, f"{seconds:g}s is below {minimum:g}s",
                          allowed=f"a duration of at least {minimum:g}s")
    return seconds


def _check_keys(kind: str, data: Mapping[str, Any], allowed: list[str]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidSpec(f"{kind}{unknown[0]}" if kind else unknown[0], "unknown field",
                          allowed=", ".join(allowed))


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
        if test[0] != "NONE" and len(test) < 2:
            raise InvalidSpec("healthcheck.test", f"{test[0]} needs a command after it")
        object.__setattr__(self, "test", tuple(test))
        object.__setattr__(self, "interval", _seconds("healthcheck.interval", self.interval,
                                                      minimum=0.001))
        object.__setattr__(self, "timeout", _seconds("healthcheck.timeout", self.timeout,
                                                     minimum=0.001))
        object.__setattr__(self, "start_period",
                           _seconds("healthcheck.start_period", self.start_period))
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidSpec("healthcheck.retries", f"{self.retries!r} is not a whole number "
                              ">= 0", allowed="0, 1, 2, ...")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Healthcheck:
        """Build from a mapping; unknown keys raise :class:`InvalidSpec`."""
        if not isinstance(data, Mapping):
            raise InvalidSpec("healthcheck", "must be a mapping", allowed="test, interval, "
                              "timeout, retries, start_period")
        _check_keys("healthcheck.", data, [f.name for f in dataclasses.fields(cls)])
        if "test" not in data:
            raise InvalidSpec("healthcheck.test", "is required")
        return cls(**data)

    def to_engine(self) -> dict[str, Any]:
        """The ``Healthcheck`` object of the Engine API (durations in nanoseconds)."""
        return {"Test": list(self.test), "Interval": int(float(self.interval) * 1e9),
                "Timeout": int(float(self.timeout) * 1e9), "Retries": self.retries,
                "StartPeriod": int(float(self.start_period) * 1e9)}

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping that :meth:`from_dict` reads back."""
        return {"test": list(self.test), "interval": self.interval, "timeout": self.timeout,
                "retries": self.retries, "start_period": self.start_period}


@dataclass(frozen=True)
class BuildContext:
    """A build context instead of an image: ``docker build -f DOCKERFILE --build-arg ... PATH``."""

    context: str
    dockerfile: str = "Dockerfile"
    args: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_any(cls, value: Any) -> BuildContext:
        """Accept a path string, a mapping, or a BuildContext."""
        if isinstance(value, BuildContext):
            return value
        if isinstance(value, str | Path):
            return cls(context=str(value))
        if isinstance(value, Mapping):
            _check_keys("build.", value, ["context", "dockerfile", "args"])
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


def _parse_ports(ports: Any) -> tuple[PortMap, ...]:
    if isinstance(ports, list | tuple) and all(isinstance(p, PortMap) for p in ports):
        return tuple(ports)
    if not isinstance(ports, Mapping):
        raise InvalidSpec("ports", "must map container ports to host ports",
                          allowed="{8080: 18080}, {'8080/udp': '127.0.0.1:5353'}, {8080: None}")
    result: list[PortMap] = []
    seen: set[tuple[str, int]] = set()
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
        if host_port is not None:
            if (host_ip, host_port) in seen:
                raise InvalidSpec(name, f"host port {host_ip}:{host_port} is published twice")
            seen.add((host_ip, host_port))
        result.append(PortMap(container_port, proto, host_ip.strip("[]") or "127.0.0.1",
                              host_port))
    return tuple(result)


def _str_map(field_name: str, value: Any, *, key_re: re.Pattern[str] | None = None) -> dict[
        str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(field_name, "must be a mapping of names to values")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or (key_re and not key_re.match(key)):
            raise InvalidSpec(f"{field_name}[{key}]", "is not a valid name")
        if isinstance(item, bool):
            item = "true" if item else "false"
        if not isinstance(item, str | int | float):
            raise InvalidSpec(f"{field_name}[{key}]", f"{type(item).__name__} is not a text "
                              "value", allowed="text, numbers or booleans")
        out[key] = str(item)
    return out


def _command(field_name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return ("sh", "-c", value) if field_name == "command" else (value,)
    if isinstance(value, list | tuple) and all(isinstance(x, str) for x in value):
        return tuple(value)
    raise InvalidSpec(field_name, "must be a list of strings or a shell string",
                      allowed="['prog', 'arg'] or 'shell command'")


@dataclass(frozen=True)
class ServiceSpec:
    """A service: one or more identical containers, as ``docker run`` would start them.

    Args:
        name: the service name; containers are named ``name`` (one replica) or ``name-1``, ...
        image: the image reference; never pulled unless ``pull`` says so.
        build: a build context (path or :class:`BuildContext`) used when ``image`` is missing
            locally or always when no image is given (tagged ``opskit-built/NAME:latest``).
        ports: container port to host port; bound to 127.0.0.1 unless an address is given
            (``{8080: 18080}``, ``{"53/udp": "0.0.0.0:5353"}``, ``{8080: None}`` for any port).
        env: environment variables (values are never shown by opskit).
        healthcheck: a :class:`Healthcheck`, a mapping, or None for the image's own.
        restart: the engine's restart policy (``docker run --restart``).
        networks: networks to join; created (labelled opskit) when missing.
        volumes: source to container path (``{"webdata": "/data", "/srv/x": "/x:ro"}``); a
            name is a named volume (created labelled opskit), an absolute path a bind mount.
        memory: memory limit (``"64m"``, bytes); cpus: CPU limit (0.5 = half a core).
        pids_limit: most processes in the container.
        user, workdir, command, entrypoint: as ``docker run``.
        labels: your labels; ``io.opskit.*`` is reserved.
        replicas: how many containers.
        init: run the engine's init as PID 1 (``docker run --init``), so SIGTERM stops fast.
        stop_timeout: seconds ``docker stop`` waits before SIGKILL (engine default 10).
        stop_signal: the signal ``docker stop`` sends first.
        pull: ``"never"`` (default), ``"missing"`` or ``"always"``.
    """

    name: str
    image: str | None = None
    build: BuildContext | Mapping[str, Any] | str | None = None
    ports: Mapping[Any, Any] | tuple[PortMap, ...] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)
    healthcheck: Healthcheck | Mapping[str, Any] | None = None
    restart: str = "no"
    networks: tuple[str, ...] | list[str] = ()
    volumes: Mapping[str, str] = field(default_factory=dict)
    memory: int | str | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    user: str | None = None
    workdir: str | None = None
    command: tuple[str, ...] | list[str] | str | None = None
    entrypoint: tuple[str, ...] | list[str] | str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    init: bool = False
    stop_timeout: float | None = None
    stop_signal: str | None = None
    pull: str = "never"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise InvalidSpec("name", f"{self.name!r} is not a valid service name",
                              allowed="letters, digits, '_', '.', '-', starting with a letter or "
                              "digit, at most 63 characters")
        if self.image is not None and (not isinstance(self.image, str) or not self.image.strip()
                                       or any(c.isspace() for c in self.image)):
            raise InvalidSpec("image", f"{self.image!r} is not an image reference",
                              allowed="'name:tag', 'repo/name@sha256:...'")
        build = BuildContext.from_any(self.build) if self.build is not None else None
        set_(self, "build", build)
        if self.image is None and build is None:
            raise InvalidSpec("image", "is required when no build context is given",
                              hint="set image='opskit/demo-web:latest' or build='path/to/dir'.")
        if self.image is None:
            set_(self, "image", f"opskit-built/{self.name.lower()}:latest")
        set_(self, "ports", _parse_ports(self.ports))
        set_(self, "env", _str_map("env", self.env, key_re=ENV_NAME_RE))
        user_labels = _str_map("labels", self.labels)
        for key in user_labels:
            if key.startswith(L.PREFIX):
                raise InvalidSpec(f"labels[{key}]", f"the prefix '{L.PREFIX}' is reserved for "
                                  "opskit", hint="use a label key of your own namespace.")
        set_(self, "labels", user_labels)
        hc = self.healthcheck
        if isinstance(hc, Mapping):
            hc = Healthcheck.from_dict(hc)
        elif hc is not None and not isinstance(hc, Healthcheck):
            raise InvalidSpec("healthcheck", f"{type(hc).__name__} is not a healthcheck",
                              allowed="opskit.Healthcheck(...), a mapping, or None")
        set_(self, "healthcheck", hc)
        if not isinstance(self.restart, str) or not RESTART_RE.match(self.restart):
            raise InvalidSpec("restart", f"unknown restart policy {self.restart!r}",
                              allowed=RESTART_ALLOWED)
        networks = [self.networks] if isinstance(self.networks, str) else self.networks
        if not isinstance(networks, list | tuple) or not all(
                isinstance(n, str) and NAME_RE.match(n) for n in networks):
            raise InvalidSpec("networks", f"{self.networks!r} is not a list of network names")
        if len(set(networks)) != len(networks):
            raise InvalidSpec("networks", "names a network twice")
        set_(self, "networks", tuple(networks))
        set_(self, "volumes", self._check_volumes(self.volumes))
        if self.memory is not None:
            try:
                memory = parse_bytes(self.memory)
            except ValueError as exc:
                raise InvalidSpec("memory", str(exc), allowed="'64m', '1g' or bytes") from None
            if memory < 6 * 1024 * 1024:
                raise InvalidSpec("memory", f"{memory} bytes is below the engine's minimum of 6m",
                                  allowed="at least '6m'")
            set_(self, "memory", memory)
        if self.cpus is not None and (isinstance(self.cpus, bool) or not isinstance(
                self.cpus, int | float) or not 0.01 <= self.cpus <= 1024):
            raise InvalidSpec("cpus", f"{self.cpus!r} is not a CPU share",
                              allowed="a number of CPUs from 0.01, e.g. 0.5")
        for name in ("pids_limit", "replicas"):
            value = getattr(self, name)
            if name == "pids_limit" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidSpec(name, f"{value!r} is not a whole number >= 1")
        for name in ("user", "workdir", "stop_signal"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidSpec(name, f"{value!r} is not a non-empty string")
        if self.workdir is not None and not self.workdir.startswith("/"):
            raise InvalidSpec("workdir", f"{self.workdir!r} is not an absolute path",
                              allowed="a path starting with '/'")
        set_(self, "command", _command("command", self.command))
        set_(self, "entrypoint", _command("entrypoint", self.entrypoint))
        if not isinstance(self.init, bool):
            raise InvalidSpec("init", f"{self.init!r} is not true or false")
        if self.stop_timeout is not None:
            set_(self, "stop_timeout", _seconds("stop_timeout", self.stop_timeout))
        if self.pull not in PULL_ALLOWED:
            raise InvalidSpec("pull", f"unknown pull mode {self.pull!r}",
                              allowed=", ".join(PULL_ALLOWED))

    @staticmethod
    def _check_volumes(volumes: Any) -> dict[str, str]:
        if not isinstance(volumes, Mapping):
            raise InvalidSpec("volumes", "must map a volume name or host path to a container "
                              "path", allowed="{'webdata': '/data', '/srv/x': '/x:ro'}")
        out: dict[str, str] = {}
        targets: set[str] = set()
        for source, target in volumes.items():
            name = f"volumes[{source}]"
            if not isinstance(source, str) or not source:
                raise InvalidSpec(name, "the source must be a volume name or an absolute path")
            if not source.startswith("/") and not NAME_RE.match(source):
                raise InvalidSpec(name, f"{source!r} is neither a volume name nor an absolute "
                                  "path", allowed="a name like 'webdata' or a path like '/srv/x'")
            if not isinstance(target, str):
                raise InvalidSpec(name, "the target must be a container path")
            path, _, mode = target.partition(":")
            if not path.startswith("/"):
                raise InvalidSpec(name, f"target {path!r} is not an absolute container path")
            if mode not in ("", "ro", "rw"):
                raise InvalidSpec(name, f"unknown mode {mode!r}", allowed="ro, rw")
            if path in targets:
                raise InvalidSpec(name, f"container path {path} is mounted twice")
            targets.add(path)
            out[source] = target
        return out

    # -- reading and writing ------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceSpec:
        """Build from a mapping (parsed YAML or JSON); unknown keys raise :class:`InvalidSpec`."""
        if not isinstance(data, Mapping):
            raise InvalidSpec("spec", f"a {type(data).__name__} is not a mapping of fields",
                              allowed="a mapping with name, image, ports, ...")
        _check_keys("", data, [f.name for f in dataclasses.fields(cls)])
        if "name" not in data:
            raise InvalidSpec("name", "is required")
        return cls(**data)

    @classmethod
    def from_yaml(cls, source: str | Path) -> ServiceSpec:
        """Read a spec from a YAML file path, or from YAML text when it contains a newline."""
        import yaml

        text = str(source)
        origin = "YAML text"
        if "\n" not in text:
            path = Path(text)
            try:
                text = path.read_text()
            except OSError as exc:
                raise InvalidSpec("spec", f"cannot read {path}: {exc.strerror}",
                                  hint="give the path of a YAML spec file.") from None
            origin = str(path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidSpec("spec", f"{origin} is not valid YAML: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping that :meth:`from_dict` reads back (env values included: keep it safe)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "ports":
                value = {p.key: (f"{p.host_ip}:{p.host_port}" if p.host_port else f"{p.host_ip}:")
                         for p in value}
            elif f.name == "healthcheck" and value is not None:
                value = value.to_dict()
            elif f.name == "build" and value is not None:
                value = {"context": value.context, "dockerfile": value.dockerfile,
                         "args": dict(value.args)}
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    @property
    def port_maps(self) -> tuple[PortMap, ...]:
        """The published ports, normalised."""
        return cast(tuple[PortMap, ...], self.ports)

    @property
    def health(self) -> Healthcheck | None:
        """The healthcheck, normalised (None: the image's own)."""
        return cast(Healthcheck | None, self.healthcheck)

    @property
    def build_context(self) -> BuildContext | None:
        """The build context, normalised."""
        return cast(BuildContext | None, self.build)

    def replace(self, **changes: Any) -> ServiceSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def config_hash(self) -> str:
        """A digest of everything that shapes a replica (all fields but ``replicas``)."""
        data = self.to_dict()
        data.pop("replicas")
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def replica_names(self) -> list[str]:
        """Container names: ``name`` for one replica, ``name-1`` ... ``name-N`` otherwise."""
        if self.replicas == 1:
            return [self.name]
        return [f"{self.name}-{i}" for i in range(1, self.replicas + 1)]
