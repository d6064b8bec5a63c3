"""Healthcheck history: each probe's start, end, exit code, outcome and (redacted) output.

The engine keeps only the last five probe results per container (``docker inspect``'s
``State.Health.Log``). :class:`HealthHistory` keeps what it has seen, so repeated reads build a
longer history; the probe outcome separates a probe that *failed* (the service answered badly or
timed out) from one that *could not run* (``error``: the exec itself failed, e.g. the program is
missing or the container is paused), which must not count as unhealthy.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..base.redact import redact_text
from ..engine.connection import Engine
from ..engine.targets import resolve
from .inspection import parse_engine_time

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HEALTH_COLUMNS", "HealthHistory", "probe_outcome"]

HEALTH_COLUMNS = ["ts", "end", "container", "exit_code", "outcome", "output"]
_CANNOT_RUN = ("oci runtime exec failed", "executable file not found", "container is paused")


def probe_outcome(exit_code: int | None, output: str) -> str:
    """Classify one probe: ``ok``, ``failed`` or ``error`` (the probe could not run).

    Docker reports a probe that timed out with exit code -1 and counts it as a failure; 126 and
    127 (cannot execute, not found) and the runtime's own exec errors mean no probe ran.
    """
    if exit_code == 0:
        return "ok"
    text = (output or "").lower()
    if exit_code in (126, 127) or any(marker in text for marker in _CANNOT_RUN):
        return "error"
    return "failed"


class HealthHistory:
    """Probe results per container, growing as they are read (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, datetime | None], dict[str, Any]] = {}

    def observe(self, name: str, container_id: str, attrs: dict[str, Any]) -> None:
        """Record the probes of one ``docker inspect`` payload."""
        probes = (((attrs.get("State") or {}).get("Health") or {}).get("Log")) or []
        with self._lock:
            for probe in probes:
                start = parse_engine_time(probe.get("Start"))
                output = redact_text(str(probe.get("Output", "")), table="health")
                code = probe.get("ExitCode")
                self._seen[(container_id, start)] = {
                    "ts": start, "end": parse_engine_time(probe.get("End")), "container": name,
                    "exit_code": code, "outcome": probe_outcome(code, output), "output": output}

    def read(self, engine: Engine, target: str) -> pd.DataFrame:
        """Inspect the target's containers now and return their whole known history.

        Equivalent to ``docker inspect --format '{{json .State.Health}}' TARGET``, accumulated.
        """
        refs = resolve(engine, target)
        for ref in refs:
            try:
                self.observe(ref.name, ref.id, engine.api.inspect_container(ref.id))
            except Exception:  # removed meanwhile: its earlier probes stay in the history
                continue
        ids = {r.id for r in refs}
        with self._lock:
            rows = [row for (cid, _), row in self._seen.items() if cid in ids]
        return health_frame(rows)


def health_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of probe results as a typed DataFrame sorted by time."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=HEALTH_COLUMNS)
    for col in ("ts", "end"):
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[ns, UTC]")
    frame["container"] = frame["container"].astype("category")
    frame["exit_code"] = frame["exit_code"].astype("Int64")
    frame["outcome"] = pd.Categorical(frame["outcome"], categories=["ok", "failed", "error"])
    frame["output"] = frame["output"].astype("string")
    return frame.sort_values("ts", ignore_index=True)
