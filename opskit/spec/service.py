"""What to deploy: :class:`ServiceSpec` and :class:`Healthcheck`, validated before any engine call.

A spec is the ``docker run`` command line of a service written down once: image or build
context, command, ports, env, volumes, networks, healthcheck, restart policy and limits, plus
the number of replicas. Every field is checked when the spec is made; a bad field raises
:class:`~opskit.base.errors.InvalidSpec` naming the field and what is allowed. Unknown keys in a
dict or YAML file are errors, never silently dropped. The field checkers live in
:mod:`opskit.spec.fields`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..base import labels as L
from ..base.errors import InvalidSpec
from ..base.units import parse_bytes
from .dependencies import Dependency, parse_depends_on
from .fields import (
    ENV_NAME_RE,
    INT64_MAX,
    NAME_RE,
    PULL_ALLOWED,
    RESERVED_NETWORKS,
    RESTART_ALLOWED,
    RESTART_RE,
    BuildContext,
    Healthcheck,
    PortMap,
    check_image,
    check_keys,
    check_signal,
    check_volumes,
    parse_command,
    parse_ports,
    seconds,
    str_map,
)
from .policy import RecoveryPolicy

__all__ = ["NAME_RE", "BuildContext", "Healthcheck", "PortMap", "ServiceSpec"]


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
        recovery: the service's :class:`~opskit.spec.policy.RecoveryPolicy` (or a mapping of its
            fields), which a watchdog given this spec follows; it does not shape the containers,
            so changing it replaces none.
        depends_on: services this one needs, as Compose writes it: ``["db"]`` (order only) or
            ``{"db": {"restart": True}}`` (restart this service after ``db`` was recovered).
            Like ``recovery`` it shapes no container.
    """

    name: str
    image: str | None = None
    build: BuildContext | Mapping[str, Any] | str | None = None
    ports: Mapping[Any, Any] | tuple[PortMap, ...] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict, repr=False)
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
    recovery: Any = None
    depends_on: Any = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise InvalidSpec("name", f"{self.name!r} is not a valid service name",
                              allowed="letters, digits, '_', '.', '-', starting with a letter or "
                              "digit, at most 63 characters")
        if self.image is not None:
            check_image(self.image)
        build = BuildContext.from_any(self.build) if self.build is not None else None
        set_(self, "build", build)
        if self.image is None and build is None:
            raise InvalidSpec("image", "is required when no build context is given",
                              hint="set image='opskit/demo-web:latest' or build='path/to/dir'.")
        if self.image is None:
            set_(self, "image", f"opskit-built/{self.name.lower()}:latest")
        set_(self, "ports", parse_ports(self.ports))
        set_(self, "env", str_map("env", self.env, key_re=ENV_NAME_RE))
        user_labels = str_map("labels", self.labels)
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
        if not isinstance(self.restart, str) or not RESTART_RE.match(self.restart) or int(
                self.restart.partition(":")[2] or 0) > 2**31 - 1:
            raise InvalidSpec("restart", f"unknown restart policy {self.restart!r}",
                              allowed=RESTART_ALLOWED)
        networks = [self.networks] if isinstance(self.networks, str) else self.networks
        if not isinstance(networks, list | tuple) or not all(
                isinstance(n, str) and NAME_RE.match(n) for n in networks):
            raise InvalidSpec("networks", f"{self.networks!r} is not a list of network names")
        if len(set(networks)) != len(networks):
            raise InvalidSpec("networks", "names a network twice")
        reserved = [n for n in networks if n in RESERVED_NETWORKS]
        if reserved:
            raise InvalidSpec("networks", f"'{reserved[0]}' is the engine's own network",
                              hint="name a user-defined network (opskit creates it); containers "
                              "reach each other by name only there.")
        set_(self, "networks", tuple(networks))
        set_(self, "volumes", check_volumes(self.volumes))
        if self.memory is not None:
            try:
                memory = parse_bytes(self.memory)
            except ValueError as exc:
                raise InvalidSpec("memory", str(exc), allowed="'64m', '1g' or bytes") from None
            if not 6 * 1024 * 1024 <= memory <= INT64_MAX:
                raise InvalidSpec("memory", f"{memory} bytes is out of range",
                                  allowed="at least '6m' (the engine's minimum)")
            set_(self, "memory", memory)
        if self.cpus is not None and (isinstance(self.cpus, bool) or not isinstance(
                self.cpus, int | float) or not 0.01 <= self.cpus <= 1024):
            raise InvalidSpec("cpus", f"{self.cpus!r} is not a CPU share",
                              allowed="a number of CPUs from 0.01, e.g. 0.5")
        for name in ("pids_limit", "replicas"):
            value = getattr(self, name)
            if name == "pids_limit" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31:
                raise InvalidSpec(name, f"{value!r} is not a whole number >= 1")
        if self.replicas > 1 and any(p.host_port for p in self.port_maps):
            raise InvalidSpec("ports", f"{self.replicas} replicas cannot all publish the same "
                              "fixed host port", hint="publish {PORT: None} for an engine-chosen "
                              "host port per replica, or run one replica.")
        for name in ("user", "workdir", "stop_signal"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidSpec(name, f"{value!r} is not a non-empty string")
        if self.workdir is not None and not self.workdir.startswith("/"):
            raise InvalidSpec("workdir", f"{self.workdir!r} is not an absolute path",
                              allowed="a path starting with '/'")
        if self.stop_signal is not None:
            set_(self, "stop_signal", check_signal("stop_signal", self.stop_signal))
        set_(self, "command", parse_command("command", self.command))
        set_(self, "entrypoint", parse_command("entrypoint", self.entrypoint))
        if not isinstance(self.init, bool):
            raise InvalidSpec("init", f"{self.init!r} is not true or false")
        if self.stop_timeout is not None:
            # the engine counts whole seconds; round up so 0.5 does not become an instant kill
            set_(self, "stop_timeout", float(math.ceil(seconds("stop_timeout",
                                                                self.stop_timeout))))
        if self.pull not in PULL_ALLOWED:
            raise InvalidSpec("pull", f"unknown pull mode {self.pull!r}",
                              allowed=", ".join(PULL_ALLOWED))
        self._check_recovery()
        set_(self, "depends_on", parse_depends_on(self.depends_on))
        if any(d.service == self.name for d in self.depends_on):
            raise InvalidSpec("depends_on", f"service '{self.name}' cannot depend on itself")

    # -- reading and writing ------------------------------------------------------------

    def _check_recovery(self) -> None:

        value = self.recovery
        if value is None or isinstance(value, RecoveryPolicy):
            return
        if not isinstance(value, Mapping):
            raise InvalidSpec("recovery", f"{type(value).__name__} is not a recovery policy",
                              allowed="opskit.RecoveryPolicy(...), a mapping of its fields, or "
                              "None")
        try:
            policy = RecoveryPolicy.from_dict(value)
        except InvalidSpec as exc:
            raise InvalidSpec(f"recovery.{exc.field}", exc.message.partition(": ")[2].rstrip(
                ".") or "is invalid", allowed=exc.allowed, value=exc.value) from None
        object.__setattr__(self, "recovery", policy)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceSpec:
        """Build from a mapping (parsed YAML or JSON); unknown keys raise :class:`InvalidSpec`."""
        if not isinstance(data, Mapping):
            raise InvalidSpec("spec", f"a {type(data).__name__} is not a mapping of fields",
                              allowed="a mapping with name, image, ports, ...")
        check_keys("", data, [f.name for f in dataclasses.fields(cls)])
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
        build = data.get("build") if isinstance(data, dict) else None
        if origin != "YAML text" and build is not None:
            # a relative build context is relative to the YAML file, as in docker compose
            context = build if isinstance(build, str) else (build or {}).get("context")
            if isinstance(context, str) and not Path(context).is_absolute():
                context = str(Path(origin).resolve().parent / context)
                data["build"] = context if isinstance(build, str) else {**build,
                                                                      "context": context}
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping that :meth:`from_dict` reads back (env values included: keep it safe)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "ports":
                value = {p.key: (f"{p.host_ip}:{p.host_port}" if p.host_port else f"{p.host_ip}:")
                         for p in value}
            elif f.name in ("healthcheck", "recovery") and value is not None:
                value = value.to_dict()
            elif f.name == "depends_on":
                value = {d.service: d.to_dict() for d in value}
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
    def dependencies(self) -> tuple[Dependency, ...]:
        """What the service depends on, normalised."""
        return cast(tuple[Dependency, ...], self.depends_on)

    @property
    def build_context(self) -> BuildContext | None:
        """The build context, normalised."""
        return cast(BuildContext | None, self.build)

    def replace(self, **changes: Any) -> ServiceSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def config_hash(self) -> str:
        """A digest of everything that shapes a replica (all fields but ``replicas``,
        ``recovery`` and ``depends_on``)."""
        data = self.to_dict()
        for name in ("replicas", "recovery", "depends_on"):
            data.pop(name)  # what a watchdog does about a replica does not shape it
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def replica_names(self) -> list[str]:
        """Container names: ``name``, then ``name-2`` ... ``name-N``.

        The first replica keeps the service's name whatever the count, so scaling 1 to N and
        back keeps it (``docker logs web`` goes on working).
        """
        return [self.name] + [f"{self.name}-{i}" for i in range(2, self.replicas + 1)]
