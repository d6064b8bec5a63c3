"""What people type into the deploy form, as the mapping :meth:`ServiceSpec.from_dict` reads.

Pure text handling, no engine: ports as ``CONTAINER[:[HOST_IP:]HOST_PORT]`` items separated by
commas or spaces (``"8080:18080"`` publishes the container's 8080 on 127.0.0.1:18080, the order
of the spec's ``{8080: 18080}``), env as ``KEY=VALUE`` lines. A line that cannot be read
raises :class:`~opskit.base.errors.InvalidSpec` naming the field; values of env lines are never
quoted back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..base.errors import InvalidSpec

__all__ = ["FORM_FIELDS", "form_field", "form_mapping", "parse_env_text", "parse_ports_text"]

#: The form's fields, in the order they are shown.
FORM_FIELDS = ("name", "image", "ports", "env", "replicas", "memory", "cpus", "restart",
               "healthcheck", "health_interval")


def parse_ports_text(text: str) -> dict[str, str | None]:
    """``"8080:18080, 9090"`` as ``{"8080": "18080", "9090": None}`` (None: any host port).

    Raises:
        InvalidSpec: a container port is given twice (field ``ports``).
    """
    ports: dict[str, str | None] = {}
    for item in text.replace(",", " ").split():
        key, _, host = item.partition(":")
        if key in ports:
            raise InvalidSpec("ports", f"container port {key} is given twice")
        ports[key] = host or None
    return ports


def parse_env_text(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines and ``#`` comments skipped) as a mapping.

    Raises:
        InvalidSpec: a line has no ``=`` (field ``env``; the line's text is not shown).
    """
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep:
            raise InvalidSpec("env", f"line {number} is not KEY=VALUE",
                              hint="write one variable per line, as NAME=value.")
        env[key.strip()] = value
    return env


def _optional_number(field: str, text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidSpec(field, f"{text!r} is not a number",
                          allowed="a number of CPUs such as 0.5, or empty for no limit"
                          ) from None


def _whole(field: str, value: object) -> int:
    """A whole number from a form value (an int from ``BoundedIntText``, or its text)."""
    try:
        if isinstance(value, int | float | str):
            return int(value)
    except ValueError:
        pass
    raise InvalidSpec(field, f"{value!r} is not a whole number", allowed="a whole number")


def form_mapping(values: Mapping[str, object]) -> dict[str, object]:
    """The spec mapping of the form's values (keys of :data:`FORM_FIELDS`).

    Empty optional fields are left out, so the spec's defaults apply.

    Raises:
        InvalidSpec: ports, env, replicas or cpus cannot be read.
    """
    spec: dict[str, object] = {"name": str(values.get("name", "")).strip(),
                               "image": str(values.get("image", "")).strip() or None,
                               "ports": parse_ports_text(str(values.get("ports", ""))),
                               "env": parse_env_text(str(values.get("env", ""))),
                               "replicas": _whole("replicas", values.get("replicas", 1)),
                               "restart": str(values.get("restart", "no"))}
    memory = str(values.get("memory", "")).strip()
    if memory:
        spec["memory"] = memory
    cpus = _optional_number("cpus", str(values.get("cpus", "")))
    if cpus is not None:
        spec["cpus"] = cpus
    command = str(values.get("healthcheck", "")).strip()
    if command:
        check: dict[str, object] = {"test": command}
        interval = str(values.get("health_interval", "")).strip()
        if interval:
            check["interval"] = interval
        spec["healthcheck"] = check
    return spec


def form_field(spec_field: str) -> str:
    """The form field an :class:`InvalidSpec` field belongs to (``"ports[8080]"`` is
    ``"ports"``, ``"healthcheck.interval"`` is ``"health_interval"``); ``""`` if none."""
    if spec_field == "healthcheck.interval":
        return "health_interval"
    root = re.split(r"[\[.]", spec_field, maxsplit=1)[0]
    return root if root in FORM_FIELDS else ""
