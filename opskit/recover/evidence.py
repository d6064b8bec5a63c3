"""Evidence first: what a failing container looked like, captured before anyone acts on it.

A restart wipes the state that explains a failure (the exit code, the health log, the process's
last words). :func:`capture_evidence` takes, in a few milliseconds and before any action: the
inspect payload, its probe history, the last log lines, the recent events, and the last stats
sample if a collector is running. Everything is redacted (:mod:`opskit.base.redact`) and written
atomically to ``state_dir()/incidents/<container>-<key digest>-<capture ms>.json``, so the
record survives the watchdog; one file per capture, so a second attempt on one incident keeps
the first attempt's record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.durable import atomic_write, state_dir
from ..base.redact import redact_lines, redact_text
from ..engine.connection import Engine
from ..observe.inspection import redacted_attrs
from ..records.event_records import Event
from ..records.findings import Finding

log = logging.getLogger("opskit")

__all__ = ["Evidence", "capture_evidence", "incidents_dir", "write_evidence"]

LOG_LINES = 50


def incidents_dir() -> Path:
    """Where incident evidence is written: ``state_dir()/incidents``."""
    return state_dir() / "incidents"


@dataclass(frozen=True)
class Evidence:
    """One incident's evidence.

    Attributes:
        finding: the finding that triggered it; captured_at: Unix time.
        inspect: the redacted ``docker inspect`` payload; health: its probe log.
        logs: the last log lines (redacted); events: recent events (type, action, time).
        stats: the last stats sample, if one was at hand; path: where it was written.
    """

    finding: Finding
    captured_at: float
    inspect: Mapping[str, Any] = field(repr=False)
    health: Sequence[Mapping[str, Any]] = field(repr=False)
    logs: Sequence[str] = field(repr=False)
    events: Sequence[Mapping[str, Any]] = field(repr=False)
    stats: Mapping[str, Any] | None = field(default=None, repr=False)
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping (what the JSON file holds)."""
        return {"finding": self.finding.to_dict(), "captured_at": self.captured_at,
                "inspect": self.inspect, "health": list(self.health), "logs": list(self.logs),
                "events": list(self.events), "stats": self.stats}


def _last_logs(engine: Engine, container_id: str) -> list[str]:
    try:
        raw = engine.api.logs(container_id, stdout=True, stderr=True, timestamps=True,
                              tail=LOG_LINES)
    except Exception as exc:  # evidence is best effort: say what could not be read
        return [f"(logs could not be read: {exc})"]
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return redact_lines(text.splitlines(), table="logs")


def capture_evidence(engine: Engine, finding: Finding, *, events: Sequence[Event] = (),
                     stats: Mapping[str, Any] | None = None, write: bool = True) -> Evidence:
    """Capture and (by default) write one incident's evidence before acting.

    Equivalent to ``docker inspect``, ``docker logs --tail 50 -t`` and the recent lines of
    ``docker events`` for the container, saved together.

    Raises:
        StorageError: writing the record failed (the caller decides whether to act anyway).
    """
    try:
        attrs = redacted_attrs(engine.api.inspect_container(finding.container_id))
    except Exception as exc:  # gone already: the finding's own evidence still says why
        attrs = {"error": f"inspect failed: {exc}"}
    health = list(((attrs.get("State") or {}).get("Health") or {}).get("Log") or [])
    recent = [{"time_nano": e.time_nano, "type": e.type,
               "action": redact_text(e.action, table="events"),
               "exit_code": e.attributes.get("exitCode")} for e in events[-100:]]
    evidence = Evidence(finding=finding, captured_at=time.time(), inspect=attrs, health=health,
                        logs=_last_logs(engine, finding.container_id), events=recent,
                        stats=dict(stats) if stats else None)
    return write_evidence(evidence) if write else evidence


def write_evidence(evidence: Evidence) -> Evidence:
    """Write captured evidence to ``incidents_dir()`` atomically; return it with its path.

    Raises:
        StorageError: the disk is full or the folder not writable; nothing partial is left.
    """
    digest = hashlib.sha256(evidence.finding.key.encode()).hexdigest()[:16]
    stamp = int(evidence.captured_at * 1000)
    path = incidents_dir() / f"{evidence.finding.container}-{digest}-{stamp}.json"
    blob = json.dumps(evidence.to_dict(), default=str, indent=1).encode()
    atomic_write(path, lambda fh: fh.write(blob))
    return dataclasses.replace(evidence, path=path)
