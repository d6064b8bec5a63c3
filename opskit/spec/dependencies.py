"""What a service depends on, from its spec or from Docker Compose's label, and in what order.

A :class:`Dependency` names another service and whether a dependant must be restarted after
that service was recovered (``restart``, as Compose's ``depends_on: {db: {restart: true}}``).
Containers that share a dependency's network namespace (``network_mode: container:...``) need
the restart whatever the flag says: their network went away with it.

Compose writes a service's dependencies on each of its containers as the label
``com.docker.compose.depends_on``: ``db:service_healthy:true,cache:service_started:false``
(service, condition, restart). :func:`from_compose_label` reads it. No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..base.errors import InvalidSpec

__all__ = ["COMPOSE_DEPENDS_ON", "CONDITIONS", "Dependency", "dependency_order",
           "from_compose_label", "parse_depends_on"]

COMPOSE_DEPENDS_ON = "com.docker.compose.depends_on"
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


@dataclass(frozen=True)
class Dependency:
    """One service another depends on.

    Attributes:
        service: the service depended on.
        restart: restart the dependant after this service was recovered.
        condition: what the dependant needs of it (Compose's conditions; ``service_healthy``
            by default here: opskit restarts a dependant once the dependency is healthy).
    """

    service: str
    restart: bool = False
    condition: str = "service_healthy"

    def to_dict(self) -> dict[str, Any]:
        """``{"restart": ..., "condition": ...}``: the long form of Compose's ``depends_on``."""
        return {"restart": self.restart, "condition": self.condition}


def parse_depends_on(value: Any) -> tuple[Dependency, ...]:
    """A spec's ``depends_on``: a list of names (order only, as Compose's short form) or a
    mapping of names to ``{restart: bool, condition: str}``.

    Raises:
        InvalidSpec: names the field (``depends_on[db].restart``) and what is allowed.
    """
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(d, Dependency) for d in value):
        return value
    if isinstance(value, str) or not isinstance(value, Mapping | list | tuple):
        raise InvalidSpec("depends_on", f"{value!r} is not a list or mapping of services",
                          allowed="['db'] or {'db': {'restart': true}}")
    items = value.items() if isinstance(value, Mapping) else ((name, {}) for name in value)
    out: list[Dependency] = []
    for name, options in items:
        if not isinstance(name, str) or not name:
            raise InvalidSpec("depends_on", f"{name!r} is not a service name")
        if isinstance(options, Dependency):
            out.append(options)
            continue
        if not isinstance(options, Mapping):
            raise InvalidSpec(f"depends_on[{name}]", f"{options!r} is not a mapping",
                              allowed="{restart: true|false, condition: ...}")
        unknown = sorted(str(k) for k in options if k not in ("restart", "condition",
                                                               "required"))
        if unknown:
            raise InvalidSpec(f"depends_on[{name}].{unknown[0]}", "unknown field",
                              allowed="restart, condition, required")
        restart = options.get("restart", False)
        if not isinstance(restart, bool):
            raise InvalidSpec(f"depends_on[{name}].restart", f"{restart!r} is not a boolean",
                              allowed="true or false")
        condition = options.get("condition", "service_healthy")
        if condition not in CONDITIONS:
            raise InvalidSpec(f"depends_on[{name}].condition", f"unknown condition "
                              f"{condition!r}", allowed=", ".join(CONDITIONS))
        out.append(Dependency(name, restart, condition))
    if len({d.service for d in out}) != len(out):
        raise InvalidSpec("depends_on", "names a service twice")
    return tuple(out)


def from_compose_label(value: str | None) -> tuple[Dependency, ...]:
    """The dependencies in Compose's ``com.docker.compose.depends_on`` label (malformed
    entries are skipped: the label is read, never trusted to be well formed)."""
    out = []
    for entry in (value or "").split(","):
        parts = entry.strip().split(":")
        if not parts[0]:
            continue
        condition = parts[1] if len(parts) > 1 and parts[1] in CONDITIONS else "service_started"
        out.append(Dependency(parts[0], len(parts) > 2 and parts[2] == "true", condition))
    return tuple(out)


def dependency_order(graph: Mapping[str, Iterable[str]], roots: Iterable[str]) -> list[str]:
    """The services that depend on ``roots``, directly or not, dependencies first.

    ``graph`` maps a service to the services it depends on. A cycle is broken where it is met
    (each service appears once).
    """
    dependants: dict[str, set[str]] = {}
    for service, needs in graph.items():
        for need in needs:
            dependants.setdefault(need, set()).add(service)
    reached: set[str] = set()
    stack = list(roots)
    while stack:
        for child in sorted(dependants.get(stack.pop(), ())):
            if child not in reached:
                reached.add(child)
                stack.append(child)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(service: str) -> None:
        if service in order or service in visiting:
            return
        visiting.add(service)
        for need in sorted(graph.get(service, ())):
            if need in reached:
                visit(need)
        visiting.discard(service)
        order.append(service)

    for service in sorted(reached):
        visit(service)
    return order
